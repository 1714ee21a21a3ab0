"""virtualNetworks and their subnets: the address space internal frontends and pools live in.

A virtual network has IPv4 `addressSpace.addressPrefixes`; each subnet one `addressPrefix`
inside it, not overlapping another (NetcfgSubnetRangeOutsideVnet, NetcfgSubnetRangesOverlap).
Subnets are written inline or through `virtualNetworks/V/subnets/S` (a PUT of the network with
that subnet replaced). A subnet an internal frontend uses cannot go, alone or with its network
(InUseSubnetCannotBeDeleted); a network an IP-based backend pool names cannot go either. Azure
keeps the first four addresses and the last of every subnet: `free_private_ip` skips them,
the world's VMs and every frontend's address.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .errors import bad_request, invalid
from .ids import Rid
from .kinds import Kind, child_entry, children


def network(value: Any, field: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(str(value), strict=True)
    except ValueError:
        raise invalid(field, value, "an IPv4 CIDR block (host bits zero)") from None


class VirtualNetworks(Kind):
    type = "virtualNetworks"
    writable_children = ("subnets",)
    readable_children = ("subnets",)

    def properties(self, rid: Rid, body: dict[str, Any], props: dict[str, Any],
                   current: dict[str, Any] | None, location: str) -> dict[str, Any]:
        space = props.get("addressSpace") or {}
        prefixes = space.get("addressPrefixes") if isinstance(space, dict) else None
        if not isinstance(prefixes, list) or not prefixes:
            raise invalid("properties.addressSpace.addressPrefixes", prefixes,
                          "one or more CIDR blocks")
        blocks = [network(p, "properties.addressSpace.addressPrefixes") for p in prefixes]
        subnets = []
        taken: list[tuple[str, ipaddress.IPv4Network]] = []
        for child, sub in children(rid, "subnets", props.get("subnets"), "properties.subnets"):
            raw = sub.get("addressPrefix") or (sub.get("addressPrefixes") or [None])[0]
            block = network(raw, f"subnets[{child.child_name}].addressPrefix")
            if not any(block.subnet_of(b) for b in blocks):
                raise bad_request("NetcfgSubnetRangeOutsideVnet",
                                  f"Subnet '{child.child_name}' is not valid because its IP "
                                  f"address range is outside the IP address range of virtual "
                                  f"network '{rid.name}'.")
            for other, other_block in taken:
                if block.overlaps(other_block):
                    raise bad_request("NetcfgSubnetRangesOverlap",
                                      f"Subnet '{child.child_name}' is not valid because its "
                                      f"IP address range overlaps with that of an existing "
                                      f"subnet '{other}' in virtual network '{rid.name}'.")
            taken.append((child.child_name, block))
            entry: dict[str, Any] = {"addressPrefix": str(block)}
            if isinstance(sub.get("networkSecurityGroup"), dict):
                entry["networkSecurityGroup"] = {"id": str(sub["networkSecurityGroup"]["id"])}
            subnets.append(child_entry(child, entry))
        if current is not None:
            kept = {s["id"].lower() for s in subnets}
            for old in current["properties"].get("subnets", []):
                if old["id"].lower() not in kept:
                    self._check_subnet_unused(rid.child("subnets", old["name"]))
        return {"addressSpace": {"addressPrefixes": [str(b) for b in blocks]},
                "subnets": subnets}

    def _check_subnet_unused(self, subnet: Rid) -> None:
        users = self.store.users(subnet)
        if users:
            raise bad_request("InUseSubnetCannotBeDeleted",
                              f"Subnet {subnet.child_name} is in use by {users[0]} and cannot "
                              "be deleted. In order to delete the subnet, delete all the "
                              "resources within the subnet.")

    def check_delete(self, rid: Rid, obj: dict[str, Any]) -> None:
        for sub in obj["properties"].get("subnets", []):
            self._check_subnet_unused(rid.child("subnets", sub["name"]))
        users = self.store.users(rid)
        if users:
            raise bad_request("InUseVirtualNetworkCannotBeDeleted",
                              f"Virtual network {rid.path} is in use by {users[0]} and cannot "
                              "be deleted.")

    def render(self, obj: dict[str, Any]) -> dict[str, Any]:
        out = super().render(obj)
        for sub in out["properties"].get("subnets", []):
            users = [u for u in self.store.users(_sub_rid(sub["id"]))
                     if "/frontendipconfigurations/" in u.lower()]
            if users:
                sub["properties"]["ipConfigurations"] = [{"id": u} for u in users]
        return out


def _sub_rid(subnet_id: str) -> Rid:
    parts = subnet_id.strip("/").split("/")
    return Rid(parts[1], parts[3], parts[6], parts[7], parts[8], parts[9])


def free_private_ip(subnet: dict[str, Any], held: set[str]) -> str:
    """The first usable address of `subnet` not in `held`."""
    block = ipaddress.IPv4Network(subnet["properties"]["addressPrefix"])
    for host in block.hosts():
        if int(host) - int(block.network_address) >= 4 and str(host) not in held:
            return str(host)
    raise bad_request("SubnetIsFull", f"Subnet {subnet['id']} has no free address left.")


def check_private_ip(subnet: dict[str, Any], address: Any, field: str, held: set[str]) -> str:
    """A static private address: in the subnet, not reserved by Azure, not in `held`."""
    try:
        ip = ipaddress.IPv4Address(str(address))
    except ValueError:
        raise invalid(field, address, "an IPv4 address") from None
    block = ipaddress.IPv4Network(subnet["properties"]["addressPrefix"])
    offset = int(ip) - int(block.network_address)
    if ip not in block or offset < 4 or ip == block.broadcast_address:
        raise bad_request("PrivateIPAddressNotInSubnet",
                          f"IP configuration {field} references private IP address {ip} which "
                          f"is not within the usable range of subnet {subnet['id']}.")
    if str(ip) in held:
        raise bad_request("PrivateIPAddressInUse",
                          f"IP configuration {field} is using the private IP address {ip} which "
                          "is already allocated to another resource.")
    return str(ip)


def held_private_ips(store: Any, besides_lb: str = "") -> set[str]:
    """Private addresses the world's VMs and the frontends of other load balancers hold."""
    return {n.ip for n in store.nodes} | {
        fe["properties"]["privateIPAddress"]
        for lb in store.of_type("loadBalancers") if lb["id"].lower() != besides_lb.lower()
        for fe in lb["properties"].get("frontendIPConfigurations", [])
        if fe["properties"].get("privateIPAddress")}
