"""Regional forwarding rules on a backend service: a passthrough Network Load Balancer's frontend.

GCE's rules kept here (schemes EXTERNAL and INTERNAL; `target` rules answer 501):
- `backendService` is required, a backend service of the same region with the same scheme;
  `IPProtocol` TCP (default), UDP or L3_DEFAULT, matching the backend service's protocol (an
  UNSPECIFIED one takes any; L3_DEFAULT needs UNSPECIFIED and `allPorts`);
- exactly one of `ports` (at most 5: "Maximum is 5"), `portRange` (not for INTERNAL; rendered
  `80-80` for `80`) and `allPorts`;
- `IPAddress` empty: an ephemeral IP (the region's pool, or the subnetwork's for INTERNAL); a
  reference or a literal IP: a static address of the region of the matching type (an EXTERNAL
  literal must be reserved; an INTERNAL one may be any free IP of the subnetwork), with the
  same network tier;
- rules sharing an IP: EXTERNAL ones only on a reserved address and never on overlapping
  ports of one protocol (400 "Specified IP address is in-use and would result in a
  conflict."); INTERNAL ones only on a SHARED_LOADBALANCER_VIP address (409
  IP_IN_USE_BY_ANOTHER_RESOURCE);
- `allowGlobalAccess` only on INTERNAL rules; `networkTier` PREMIUM or STANDARD, PREMIUM for
  INTERNAL;
- PATCH needs the current `fingerprint` and may change only `allowGlobalAccess` and
  `networkTier`: anything else means a new rule (400); labels through `setLabels`.
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

from .addresses import ip_in_use
from .errors import GceError, invalid, not_implemented
from .fields import Body, port_range
from .ips import allocate_external, allocate_internal, internal_in_use, usable
from .kinds import Kind
from .links import Key, parse_ref
from .store import uses_address

SCHEMES = ("EXTERNAL", "INTERNAL")
OTHER_SCHEMES = ("EXTERNAL_MANAGED", "INTERNAL_MANAGED", "INTERNAL_SELF_MANAGED")
PROTOCOLS = ("TCP", "UDP", "L3_DEFAULT")
OTHER_PROTOCOLS = ("ESP", "AH", "SCTP", "ICMP")
PATCHABLE = frozenset({"allowGlobalAccess", "networkTier"})
CONFLICT = "Specified IP address is in-use and would result in a conflict."


class ForwardingRules(Kind):
    collection = "forwardingRules"
    kind = "compute#forwardingRule"
    api: ClassVar[dict[str, str]] = {"regions": "forwardingRules"}
    label = "forwarding_rule"
    patchable = True
    fingerprinted = True
    labelled = True
    fields = frozenset({
        "IPAddress", "IPProtocol", "allPorts", "allowGlobalAccess", "backendService",
        "creationTimestamp", "description", "fingerprint", "id", "ipVersion", "kind",
        "labelFingerprint", "labels", "loadBalancingScheme", "name", "network", "networkTier",
        "portRange", "ports", "region", "selfLink", "subnetwork", "target"})
    supported = frozenset({
        "name", "description", "IPAddress", "IPProtocol", "ports", "portRange", "allPorts",
        "backendService", "loadBalancingScheme", "network", "subnetwork", "networkTier",
        "allowGlobalAccess", "labels", "ipVersion", "fingerprint"})

    def normalize(self, key: Key, body: Body, current: dict[str, Any] | None) -> dict[str, Any]:
        scheme = body.option("loadBalancingScheme", SCHEMES + OTHER_SCHEMES, "EXTERNAL")
        protocol = body.option("IPProtocol", PROTOCOLS + OTHER_PROTOCOLS, "TCP")
        if scheme in OTHER_SCHEMES or protocol in OTHER_PROTOCOLS:
            raise not_implemented(f"A forwarding rule with scheme {scheme} and protocol "
                                  f"{protocol}")
        if body.choice("ipVersion", ("IPV4", "IPV6"), "IPV4") != "IPV4":
            raise not_implemented("An IPv6 forwarding rule")
        service = parse_ref(body.text("backendService", need=True), "resource.backendService",
                            key, "backendServices")
        if service.scope != key.scope:
            raise invalid("resource.backendService", service.url,
                          f"The backend service must be in region {key.region}.")
        obj: dict[str, Any] = {"name": key.name, "loadBalancingScheme": scheme,
                               "IPProtocol": protocol, "backendService": service.url}
        obj.update(_ports(body, scheme, protocol))
        description = body.text("description", max_len=2048)
        if description:
            obj["description"] = description
        labels = body.labels()
        if labels:
            obj["labels"] = labels
        tier = body.choice("networkTier", ("PREMIUM", "STANDARD"), "PREMIUM")
        access = body.boolean("allowGlobalAccess")
        if scheme == "EXTERNAL":
            for name in ("subnetwork", "network"):
                if body.has(name):
                    raise invalid(f"resource.{name}", body.raw(name),
                                  "Only an INTERNAL forwarding rule has it.")
            if access:
                raise invalid("resource.allowGlobalAccess", "true",
                              "Global access is only for INTERNAL forwarding rules.")
            obj["networkTier"] = tier
            obj["IPAddress"] = self._external_ip(key, body, current)
            return obj
        if tier != "PREMIUM":
            raise invalid("resource.networkTier", tier, "An INTERNAL rule is always PREMIUM.")
        subnet_key = parse_ref(body.text("subnetwork", "default"), "resource.subnetwork", key,
                               "subnetworks")
        if subnet_key.scope != key.scope:
            raise invalid("resource.subnetwork", subnet_key.url,
                          f"The subnetwork must be in region {key.region}.")
        subnet = self.store.require(subnet_key)
        network = body.text("network")
        if network and parse_ref(network, "resource.network", key,
                                 "networks").url != subnet["network"]:
            raise invalid("resource.network", network, "The subnetwork is not in this network.")
        obj.update(networkTier="PREMIUM", subnetwork=subnet_key.url, network=subnet["network"])
        if access is not None:
            obj["allowGlobalAccess"] = access
        obj["IPAddress"] = self._internal_ip(key, body, current, subnet_key, subnet)
        return obj

    def _given_ip(self, key: Key, body: Body, kind: str) -> tuple[str | None, bool]:
        """(the literal IP asked for or None, whether a reserved address of `kind` has it)."""
        value = body.text("IPAddress")
        if value is None:
            return None, False
        try:
            ip = str(ipaddress.IPv4Address(value))
        except ValueError:
            address_key = parse_ref(value, "resource.IPAddress", key, "addresses")
            if address_key.scope != key.scope:
                raise invalid("resource.IPAddress", value,
                              f"The address must be in region {key.region}.") from None
            address = self.store.require(address_key)
            if address.get("addressType") != kind:
                raise invalid("resource.IPAddress", value,
                              f"A {kind} forwarding rule needs a {kind} address.") from None
            return str(address["address"]), True
        reserved = any(o.get("address") == ip and o.get("addressType") == kind
                       for k, o in self.store.view("addresses") if k.scope == key.scope)
        return ip, reserved

    def _external_ip(self, key: Key, body: Body, current: dict[str, Any] | None) -> str:
        if current is not None and body.raw("IPAddress") == current.get("IPAddress"):
            return str(current["IPAddress"])
        ip, reserved = self._given_ip(key, body, "EXTERNAL")
        if ip is None:
            return allocate_external(self.store, key.region or "")
        if not reserved:
            raise invalid("resource.IPAddress", ip, f"The IP address is not a static address "
                          f"reserved in region {key.region}: reserve it first.")
        return ip

    def _internal_ip(self, key: Key, body: Body, current: dict[str, Any] | None,
                     subnet_key: Key, subnet: dict[str, Any]) -> str:
        if current is not None and body.raw("IPAddress") == current.get("IPAddress"):
            return str(current["IPAddress"])
        ip, reserved = self._given_ip(key, body, "INTERNAL")
        if ip is None:
            return allocate_internal(self.store, subnet_key, subnet)
        if not usable(subnet, ip):
            raise invalid("resource.IPAddress", ip, f"Not in the usable range of "
                                                    f"{subnet_key.path}.")
        if not reserved and ip in internal_in_use(self.store, subnet_key.url):
            raise ip_in_use(ip)
        return ip

    def verify(self, key: Key, obj: dict[str, Any]) -> None:
        service = self.store.require(parse_ref(obj["backendService"], "resource.backendService",
                                               key, "backendServices"))
        scheme, protocol = obj["loadBalancingScheme"], obj["IPProtocol"]
        if service["loadBalancingScheme"] != scheme:
            raise invalid("resource.backendService", obj["backendService"], f"Forwarding rule "
                          f"with loadBalancingScheme {scheme} cannot point to a backend service "
                          f"with loadBalancingScheme {service['loadBalancingScheme']}.")
        wanted = service["protocol"]
        if wanted not in ("UNSPECIFIED", protocol) or (
                protocol == "L3_DEFAULT" and wanted != "UNSPECIFIED"):
            raise invalid("resource.IPProtocol", protocol, f"The IPProtocol of the forwarding "
                          f"rule does not match the protocol {wanted} of its backend service.")
        if scheme == "INTERNAL":
            self.store.require(parse_ref(obj["subnetwork"], "resource.subnetwork", key,
                                         "subnetworks"))
        addresses = [o for k, o in self.store.view("addresses") if k.scope == key.scope
                     and o.get("address") == obj["IPAddress"] and uses_address(obj, o)]
        if addresses and addresses[0].get("networkTier", "PREMIUM") != obj["networkTier"]:
            raise invalid("resource.networkTier", obj["networkTier"], f"The network tier of "
                          f"the IP address is {addresses[0].get('networkTier')}: the forwarding "
                          f"rule's must be the same.")
        sharing = [o for k, o in self.store.view("forwardingRules") if k != key
                   and k.scope == key.scope and o.get("IPAddress") == obj["IPAddress"]
                   and o.get("loadBalancingScheme") == scheme]
        if not sharing:
            return
        if scheme == "INTERNAL":
            shared = addresses and addresses[0].get("purpose") == "SHARED_LOADBALANCER_VIP"
            if not shared:
                raise ip_in_use(obj["IPAddress"])
        elif not addresses or any(_overlap(obj, other) for other in sharing):
            raise GceError(400, "ipInUseByAnotherResource", CONFLICT)

    def check_change(self, current: dict[str, Any], new: dict[str, Any]) -> None:
        before = self.inputs(current)
        for name in sorted((set(before) | set(new)) - PATCHABLE):
            if before.get(name) != new.get(name):
                raise invalid(f"resource.{name}", str(new.get(name, "")), "A forwarding rule "
                              "can only be patched in allowGlobalAccess and networkTier: "
                              "delete it and create a new one to change anything else.")


def _ports(body: Body, scheme: str, protocol: str) -> dict[str, Any]:
    ports = body.strings("ports")
    span = body.text("portRange")
    every = body.boolean("allPorts", False)
    chosen = [name for name, given in (("ports", ports), ("portRange", span),
                                        ("allPorts", every)) if given]
    if len(chosen) > 1:
        raise invalid(f"resource.{chosen[1]}", str(body.raw(chosen[1])),
                      "Only one of ports, portRange and allPorts may be set.")
    if protocol == "L3_DEFAULT" and not every:
        raise invalid("resource.allPorts", "false", "The L3_DEFAULT protocol requires allPorts.")
    if every:
        return {"allPorts": True}
    if ports:
        if len(ports) > 5:
            raise invalid("resource.ports", ",".join(ports), "Maximum is 5.")
        for index, port in enumerate(ports):
            port_range(port, f"resource.ports[{index}]")
        if len(set(ports)) != len(ports):
            raise invalid("resource.ports", ",".join(ports), "Duplicate ports.")
        return {"ports": ports}
    if span:
        if scheme == "INTERNAL":
            raise invalid("resource.portRange", span, "An INTERNAL forwarding rule takes ports "
                                                      "or allPorts, not portRange.")
        low, high = port_range(span, "resource.portRange")
        return {"portRange": f"{low}-{high}"}
    raise invalid("resource.ports", "", "One of ports, portRange and allPorts must be set on a "
                                        "forwarding rule with a backend service.")


def _spans(rule: dict[str, Any]) -> list[tuple[int, int]]:
    if rule.get("allPorts"):
        return [(1, 65535)]
    if rule.get("portRange"):
        return [port_range(rule["portRange"], "portRange")]
    return [port_range(p, "ports") for p in rule.get("ports", [])]


def _overlap(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two rules on one IP would take the same packets."""
    if one["IPProtocol"] != other.get("IPProtocol"):
        return False
    return any(a <= d and c <= b for a, b in _spans(one) for c, d in _spans(other))
