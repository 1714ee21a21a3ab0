"""Regional static addresses: the IP a Service keeps while its forwarding rules come and go.

GCE's rules kept here: EXTERNAL addresses (the default) come from the region's pool; asking for
a particular external IP works only to promote an ephemeral IP a forwarding rule of the region
holds (GCE cannot hand out an arbitrary public address). INTERNAL addresses come from a
subnetwork of the region (default: the `default` network's), optionally at a free IP of its
range (409 IP_IN_USE_BY_ANOTHER_RESOURCE when taken), with purpose GCE_ENDPOINT or
SHARED_LOADBALANCER_VIP (the only one several internal forwarding rules may share). Labels with
`setLabels` and `labelFingerprint`; no PATCH. `status` is IN_USE with `users` while forwarding
rules use the IP, else RESERVED; an address in use cannot be deleted.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .errors import GceError, invalid, not_implemented
from .fields import Body, ipv4
from .ips import allocate_external, allocate_internal, external_pool, internal_in_use, usable
from .kinds import Kind
from .links import Key, parse_ref
from .store import public


class Addresses(Kind):
    collection = "addresses"
    kind = "compute#address"
    api: ClassVar[dict[str, str]] = {"regions": "addresses"}
    label = "address"
    labelled = True
    fields = frozenset({
        "address", "addressType", "creationTimestamp", "description", "id", "ipVersion", "kind",
        "labelFingerprint", "labels", "name", "network", "networkTier", "prefixLength",
        "purpose", "region", "selfLink", "status", "subnetwork", "users"})
    supported = frozenset({"name", "description", "address", "addressType", "networkTier",
                           "purpose", "subnetwork", "ipVersion", "labels"})

    def normalize(self, key: Key, body: Body, current: dict[str, Any] | None) -> dict[str, Any]:
        kind = body.choice("addressType", ("EXTERNAL", "INTERNAL"), "EXTERNAL")
        if body.choice("ipVersion", ("IPV4", "IPV6"), "IPV4") != "IPV4":
            raise not_implemented("An IPv6 address")
        obj: dict[str, Any] = {"name": key.name, "addressType": kind}
        description = body.text("description", max_len=2048)
        if description:
            obj["description"] = description
        labels = body.labels()
        if labels:
            obj["labels"] = labels
        wanted = body.text("address")
        if wanted is not None:
            ipv4(wanted, "resource.address")
        if kind == "EXTERNAL":
            for name in ("purpose", "subnetwork"):
                if body.has(name):
                    raise invalid(f"resource.{name}", body.raw(name),
                                  "Only an INTERNAL address has it.")
            obj["networkTier"] = body.choice("networkTier", ("PREMIUM", "STANDARD"), "PREMIUM")
            obj["address"] = self._external(key, wanted)
            return obj
        if body.choice("networkTier", ("PREMIUM", "STANDARD"), "PREMIUM") != "PREMIUM":
            raise invalid("resource.networkTier", body.raw("networkTier"),
                          "An INTERNAL address is always PREMIUM.")
        obj["networkTier"] = "PREMIUM"
        obj["purpose"] = body.choice("purpose", ("GCE_ENDPOINT", "SHARED_LOADBALANCER_VIP"),
                                     "GCE_ENDPOINT")
        subnet_key = parse_ref(body.text("subnetwork", "default"), "resource.subnetwork", key,
                               "subnetworks")
        if subnet_key.scope != key.scope:
            raise invalid("resource.subnetwork", subnet_key.url,
                          f"The subnetwork must be in region {key.region}.")
        subnet = self.store.require(subnet_key)
        obj["subnetwork"] = subnet_key.url
        if wanted is None:
            obj["address"] = allocate_internal(self.store, subnet_key, subnet)
        elif not usable(subnet, wanted):
            raise invalid("resource.address", wanted,
                          f"The IP address is not in the usable range of {subnet_key.path}.")
        else:
            obj["address"] = wanted
        return obj

    def _external(self, key: Key, wanted: str | None) -> str:
        region = key.region or ""
        if wanted is None:
            return allocate_external(self.store, region)
        ephemeral = {o["IPAddress"] for k, o in self.store.view("forwardingRules")
                     if k.scope == key.scope and o.get("loadBalancingScheme") == "EXTERNAL"}
        if wanted not in ephemeral:
            raise invalid("resource.address", wanted,
                          f"An external IP can only be reserved by value when a resource of "
                          f"region {region} holds it as an ephemeral IP (pool "
                          f"{external_pool(self.store, region)}).")
        return wanted

    def verify(self, key: Key, obj: dict[str, Any]) -> None:
        taken = [k for k, o in self.store.view("addresses") if k != key and k.scope == key.scope
                 and o.get("address") == obj["address"]]
        if obj["addressType"] == "INTERNAL":
            subnet_key = parse_ref(obj["subnetwork"], "resource.subnetwork", key, "subnetworks")
            self.store.require(subnet_key)
            busy = internal_in_use(self.store, subnet_key.url) - self._rule_ips(key)
            if taken or obj["address"] in busy:
                raise ip_in_use(obj["address"])
        elif taken:
            raise ip_in_use(obj["address"])

    def _rule_ips(self, key: Key) -> set[str]:
        """Internal IPs held by forwarding rules (reserving one promotes it)."""
        return {o["IPAddress"] for k, o in self.store.view("forwardingRules")
                if k.scope == key.scope and o.get("loadBalancingScheme") == "INTERNAL"}

    def render(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        out = public(obj)
        users = self.store.users(key)
        out["status"] = "IN_USE" if users else "RESERVED"
        if users:
            out["users"] = [u.url for u in users]
        return out


def ip_in_use(ip: str) -> GceError:
    return GceError(409, "ipInUseByAnotherResource",
                    f"IP_IN_USE_BY_ANOTHER_RESOURCE - IP '{ip}' is already being used by "
                    f"another resource.")
