"""VPC networks and their subnetworks: where nodes live and internal load balancers take IPs.

Creatable through the SDK, so a test can build the network an internal load balancer needs
(a second subnetwork for `networking.gke.io/internal-load-balancer-subnet`). GCE's rules kept
here: a network is auto mode (`autoCreateSubnetworks: true`: a subnetwork named like it in every
region, 10.128.0.0/20, 10.132.0.0/20, ... by region) or custom mode (false); an unset mode means
a legacy network, which is not emulated (501). A subnetwork needs its network and an IPv4
`ipCidrRange` (/8 to /29, no host bits) that overlaps no other subnetwork of that network.
Deleting a network in use (subnetworks of its own, firewalls, instances, instance groups,
backend services) or a subnetwork in use (instances, internal addresses, forwarding rules) is
refused; an auto-mode network takes its own subnetworks with it. No PATCH.
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

from .errors import invalid, not_implemented
from .fields import Body
from .kinds import Kind
from .links import Key, parse_ref
from .store import Store, fingerprint, now, public


class Networks(Kind):
    collection = "networks"
    kind = "compute#network"
    api: ClassVar[dict[str, str]] = {"global": "networks"}
    label = "network"
    fields = frozenset({
        "IPv4Range", "autoCreateSubnetworks", "creationTimestamp", "description",
        "gatewayIPv4", "id", "kind", "mtu", "name", "routingConfig", "selfLink", "subnetworks"})
    supported = frozenset({"name", "description", "autoCreateSubnetworks", "mtu",
                           "routingConfig"})

    def normalize(self, key: Key, body: Body, current: dict[str, Any] | None) -> dict[str, Any]:
        auto = body.boolean("autoCreateSubnetworks")
        if auto is None:
            raise not_implemented("A legacy network (autoCreateSubnetworks unset)")
        routing = body.child("routingConfig", ("routingMode",))
        obj: dict[str, Any] = {
            "name": key.name, "autoCreateSubnetworks": auto,
            "mtu": body.integer("mtu", 1300, 8896, 1460),
            "routingConfig": {"routingMode": routing.option(
                "routingMode", ("REGIONAL", "GLOBAL"), "REGIONAL") if routing else "REGIONAL"}}
        description = body.text("description", max_len=2048)
        if description:
            obj["description"] = description
        return obj

    def _store(self, key: Key, obj: dict[str, Any], before: dict[str, Any] | None) -> None:
        super()._store(key, obj, before)
        if obj["autoCreateSubnetworks"]:
            auto_subnetworks(self.store, key)

    def render(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        out = public(obj)
        subnets = [k.url for k, o in self.store.items("subnetworks") if o["network"] == key.url]
        if subnets:
            out["subnetworks"] = subnets
        return out

    def removed(self, key: Key) -> None:
        for subnet, obj in self.store.items("subnetworks"):
            if obj["network"] == key.url:
                del self.store.objects[subnet]
                self.store.seeded.discard(subnet)


class Subnetworks(Kind):
    collection = "subnetworks"
    kind = "compute#subnetwork"
    api: ClassVar[dict[str, str]] = {"regions": "subnetworks"}
    label = "subnetwork"
    fields = frozenset({
        "creationTimestamp", "description", "fingerprint", "gatewayAddress", "id",
        "ipCidrRange", "kind", "name", "network", "privateIpGoogleAccess", "purpose", "region",
        "selfLink", "stackType", "state"})
    supported = frozenset({"name", "description", "network", "ipCidrRange",
                           "privateIpGoogleAccess", "purpose", "stackType"})

    def normalize(self, key: Key, body: Body, current: dict[str, Any] | None) -> dict[str, Any]:
        network = parse_ref(body.text("network", need=True), "resource.network",
                            Key(key.project, "global", "networks", ""), "networks")
        text = body.text("ipCidrRange", need=True)
        assert text is not None
        try:
            span = ipaddress.IPv4Network(text)
        except ValueError:
            raise invalid("resource.ipCidrRange", text, "Must be an IPv4 range in CIDR "
                                                        "notation without host bits.") from None
        if not 8 <= span.prefixlen <= 29:
            raise invalid("resource.ipCidrRange", text, "The prefix length must be /8 to /29.")
        if body.option("purpose", ("PRIVATE",), "PRIVATE") != "PRIVATE" or body.option(
                "stackType", ("IPV4_ONLY",), "IPV4_ONLY") != "IPV4_ONLY":
            raise not_implemented("A subnetwork other than a PRIVATE IPV4_ONLY one")
        obj: dict[str, Any] = {
            "name": key.name, "network": network.url, "ipCidrRange": str(span),
            "gatewayAddress": str(span.network_address + 1), "purpose": "PRIVATE",
            "stackType": "IPV4_ONLY", "state": "READY",
            "privateIpGoogleAccess": body.boolean("privateIpGoogleAccess", False),
            "fingerprint": fingerprint([key.path, str(span)])}
        description = body.text("description", max_len=2048)
        if description:
            obj["description"] = description
        return obj

    def verify(self, key: Key, obj: dict[str, Any]) -> None:
        self.store.require(parse_ref(obj["network"], "resource.network", key, "networks"))
        span = ipaddress.IPv4Network(obj["ipCidrRange"])
        for other, found in self.store.view("subnetworks"):
            if other != key and found["network"] == obj["network"] and span.overlaps(
                    ipaddress.IPv4Network(found["ipCidrRange"])):
                raise invalid("resource.ipCidrRange", obj["ipCidrRange"],
                              f"Invalid IPCidrRange: {obj['ipCidrRange']} conflicts with "
                              f"existing subnetwork '{other.name}' in region "
                              f"'{other.region}'.")


def auto_subnetworks(store: Store, network: Key) -> None:
    """An auto-mode network's subnetworks: one named like it per region."""
    for index, region in enumerate(store.regions):
        subnet = Key(store.project, f"regions/{region}", "subnetworks", network.name)
        base = f"10.{128 + 4 * index}.0"
        store.objects[subnet] = {
            "kind": "compute#subnetwork", "id": store.new_id(), "name": subnet.name,
            "creationTimestamp": now(), "selfLink": subnet.url, "region": subnet.scope_url,
            "network": network.url, "ipCidrRange": f"{base}.0/20", "gatewayAddress": f"{base}.1",
            "privateIpGoogleAccess": False, "purpose": "PRIVATE", "stackType": "IPV4_ONLY",
            "state": "READY", "fingerprint": fingerprint([subnet.path]), "_auto": True}
