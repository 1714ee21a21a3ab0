"""A load balancer's parts besides its frontends: backend pools, probes, rules, as ARM checks them.

- Backend pools are IP-based: `loadBalancerBackendAddresses` of `{name, ipAddress,
  virtualNetwork}`, the network existing and holding the address, names and addresses unique
  in a pool (NIC-based pools are not emulated).
- Probes: Tcp, Http or Https on a port; a `requestPath` starting with `/` for Http(s) and none
  for Tcp; an interval of at least 5 seconds.
- Rules: a frontend, a pool (or `backendAddressPools`) and an optional probe of THE SAME load
  balancer (InvalidResourceReference otherwise, which is also what removing a probe or pool a
  rule still uses meets); one rule per (frontend, protocol, frontendPort); rules without
  floating IP cannot share a (pool, protocol, backendPort); ports 0 (HA ports) only with
  protocol All on an internal frontend; an idle timeout of 4-100 minutes.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .errors import bad_request, invalid, invalid_reference
from .ids import Rid, ref
from .kinds import Refs, child_entry, children


def pools(lb: Rid, items: Any, refs: Refs, max_addresses: int) -> list[dict[str, Any]]:
    out = []
    for child, props in children(lb, "backendAddressPools", items,
                                 "properties.backendAddressPools"):
        addresses = []
        names: set[str] = set()
        ips: set[str] = set()
        listed = props.get("loadBalancerBackendAddresses") or []
        if len(listed) > max_addresses:
            raise bad_request("BackendAddressPoolAddressesLimitReached",
                              f"Backend pool {child.child_name} would hold {len(listed)} "
                              f"addresses; the limit is {max_addresses}.")
        for index, address in enumerate(listed):
            field = f"backendAddressPools[{child.child_name}].loadBalancerBackendAddresses[{index}]"
            if not isinstance(address, dict) or not address.get("name"):
                raise invalid(f"{field}.name", address, "every backend address needs a name")
            name = str(address["name"])
            inner = address.get("properties") or {}
            ip = inner.get("ipAddress")
            try:
                ip = str(ipaddress.IPv4Address(str(ip)))
            except ValueError:
                raise invalid(f"{field}.ipAddress", ip, "an IPv4 address") from None
            if name.lower() in names or ip in ips:
                raise bad_request("DuplicateBackendAddress",
                                  f"Backend pool {child.child_name} lists {name} / {ip} twice.")
            names.add(name.lower())
            ips.add(ip)
            _, vnet = refs.require(inner.get("virtualNetwork"), f"{field}.virtualNetwork",
                                          child.path, "virtualNetworks")
            space = [ipaddress.IPv4Network(p)
                     for p in vnet["properties"]["addressSpace"]["addressPrefixes"]]
            if not any(ipaddress.IPv4Address(ip) in block for block in space):
                raise bad_request("InvalidIPAddressInBackendAddressPool",
                                  f"The IP address {ip} of {field} is not in the address space "
                                  f"of virtual network {vnet['id']}.")
            addresses.append({"name": name, "properties": {
                "ipAddress": ip, "virtualNetwork": {"id": vnet["id"]}}})
        out.append(child_entry(child, {"loadBalancerBackendAddresses": addresses}))
    return out


def probes(lb: Rid, items: Any) -> list[dict[str, Any]]:
    out = []
    for child, props in children(lb, "probes", items, "properties.probes"):
        field = f"probes[{child.child_name}]"
        protocol = str(props.get("protocol", ""))
        if protocol not in ("Tcp", "Http", "Https"):
            raise invalid(f"{field}.protocol", protocol, "Tcp, Http or Https")
        port = props.get("port")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise invalid(f"{field}.port", port, "a port 1-65535")
        path = props.get("requestPath")
        if protocol == "Tcp" and path:
            raise bad_request("InvalidProbeRequestPath",
                              f"Probe {child.child_name} of protocol Tcp cannot have a "
                              "requestPath.")
        if protocol != "Tcp" and (not isinstance(path, str) or not path.startswith("/")):
            raise bad_request("InvalidProbeRequestPath",
                              f"Probe {child.child_name} of protocol {protocol} needs a "
                              "requestPath starting with '/'.")
        interval = props.get("intervalInSeconds", 15)
        count = props.get("numberOfProbes", 2)
        threshold = props.get("probeThreshold", 1)
        for name, value, low in (("intervalInSeconds", interval, 5), ("numberOfProbes", count, 1),
                                 ("probeThreshold", threshold, 1)):
            if not isinstance(value, int) or value < low:
                raise invalid(f"{field}.{name}", value, f"an integer of at least {low}")
        entry: dict[str, Any] = {"protocol": protocol, "port": port,
                                 "intervalInSeconds": interval, "numberOfProbes": count,
                                 "probeThreshold": threshold}
        if path:
            entry["requestPath"] = path
        out.append(child_entry(child, entry))
    return out


def _own(lb: Rid, value: Any, field: str, collection: str, names: dict[str, str],
         by: str) -> str:
    """A reference to one of this load balancer's own `collection`: its canonical id."""
    rid = ref(value, field)
    if rid is None:
        raise bad_request("InvalidRequestFormat", f"{field} is required.")
    if rid.top.path.lower() != lb.path.lower() or rid.child_type != collection:
        raise invalid_reference(rid.path, by, f"is not a {collection} of load balancer "
                                              f"{lb.path}")
    if rid.child_name.lower() not in names:
        raise invalid_reference(rid.path, by, "was not found (a rule still refers to it)")
    return lb.child(collection, names[rid.child_name.lower()]).path


def rules(lb: Rid, items: Any, frontends: list[dict[str, Any]], pool_list: list[dict[str, Any]],
          probe_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def names(entries: list[dict[str, Any]]) -> dict[str, str]:
        return {e["name"].lower(): e["name"] for e in entries}

    fe_names, pool_names, probe_names = names(frontends), names(pool_list), names(probe_list)
    internal = {fe["name"].lower() for fe in frontends if "subnet" in fe["properties"]}
    out = []
    front_slots: dict[tuple[str, str, int], str] = {}
    back_slots: dict[tuple[str, str, int], str] = {}
    for child, props in children(lb, "loadBalancingRules", items,
                                 "properties.loadBalancingRules"):
        field = f"loadBalancingRules[{child.child_name}]"
        frontend = _own(lb, props.get("frontendIPConfiguration"),
                        f"{field}.frontendIPConfiguration", "frontendIPConfigurations",
                        fe_names, child.path)
        refs = props.get("backendAddressPools") or (
            [props["backendAddressPool"]] if props.get("backendAddressPool") else [])
        pools_used = [_own(lb, r, f"{field}.backendAddressPool", "backendAddressPools",
                           pool_names, child.path) for r in refs]
        probe = (_own(lb, props["probe"], f"{field}.probe", "probes", probe_names, child.path)
                 if props.get("probe") else None)
        protocol = str(props.get("protocol", ""))
        if protocol not in ("Tcp", "Udp", "All"):
            raise invalid(f"{field}.protocol", protocol, "Tcp, Udp or All")
        front, back = props.get("frontendPort"), props.get("backendPort", props.get("frontendPort"))
        if not isinstance(front, int) or not 0 <= front <= 65534:
            raise invalid(f"{field}.frontendPort", front, "a port 0-65534")
        if not isinstance(back, int) or not 0 <= back <= 65535:
            raise invalid(f"{field}.backendPort", back, "a port 0-65535")
        if (front == 0 or back == 0) and not (
                protocol == "All" and front == back == 0
                and frontend.rsplit("/", 1)[1].lower() in internal):
            raise bad_request("InvalidLoadBalancingRulePorts",
                              f"{field}: ports 0 (HA ports) need protocol All on an internal "
                              "frontend, on both ports.")
        idle = props.get("idleTimeoutInMinutes", 4)
        if not isinstance(idle, int) or not 4 <= idle <= 100:
            raise invalid(f"{field}.idleTimeoutInMinutes", idle, "4 to 100 minutes")
        distribution = str(props.get("loadDistribution", "Default"))
        if distribution not in ("Default", "SourceIP", "SourceIPProtocol"):
            raise invalid(f"{field}.loadDistribution", distribution,
                          "Default, SourceIP or SourceIPProtocol")
        floating = bool(props.get("enableFloatingIP", False))
        slot = (frontend.lower(), protocol, front)
        if slot in front_slots:
            raise bad_request("LoadBalancingRuleFrontendPortConflict",
                              f"Load balancing rules {front_slots[slot]} and {child.child_name} "
                              f"use the same frontend, protocol {protocol} and port {front}.")
        front_slots[slot] = child.child_name
        for pool in pools_used if not floating else []:
            back_slot = (pool.lower(), protocol, back)
            if back_slot in back_slots:
                raise bad_request("RulesUseSameBackendPortProtocolAndPool",
                                  f"Load balancing rules {back_slots[back_slot]} and "
                                  f"{child.child_name} with floating IP disabled use the same "
                                  f"protocol {protocol} and backend port {back}, and must not "
                                  f"be used with the same backend address pool {pool}.")
            back_slots[back_slot] = child.child_name
        entry: dict[str, Any] = {
            "frontendIPConfiguration": {"id": frontend}, "protocol": protocol,
            "frontendPort": front, "backendPort": back, "idleTimeoutInMinutes": idle,
            "enableFloatingIP": floating, "enableTcpReset": bool(props.get("enableTcpReset")),
            "loadDistribution": distribution,
            "disableOutboundSnat": bool(props.get("disableOutboundSnat"))}
        if pools_used:
            entry["backendAddressPool"] = {"id": pools_used[0]}
            entry["backendAddressPools"] = [{"id": p} for p in pools_used]
        if probe:
            entry["probe"] = {"id": probe}
        out.append(child_entry(child, entry))
    return out
