"""publicIPAddresses: Standard/Static addresses allocated from a made-up public range per location.

Each location owns one /16 of 20.0.0.0/8 (eastus 20.62.0.0/16, ...; others by a stable hash),
so addresses look public and never collide with the node subnet. An address is allocated once
and kept for the object's life (a PUT that asks for another one is refused); `ipAddress` in a
create is honoured only when no other public IP holds it. Standard (the default) must be Static;
Basic exists only so a Standard load balancer can refuse it. A `dnsSettings.domainNameLabel` is
unique per location and gives `<label>.<location>.cloudapp.azure.com`. An address used by a
load balancer frontend cannot be deleted (400 PublicIPAddressInUse) and shows that frontend as
its read-only `ipConfiguration`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Any

from .errors import bad_request, invalid
from .ids import Rid, parse_id
from .kinds import Kind

RANGES = {"eastus": "20.62.0.0/16", "eastus2": "20.65.0.0/16", "westus": "20.66.0.0/16",
          "westus2": "20.69.0.0/16", "centralus": "20.80.0.0/16", "northeurope": "20.82.0.0/16",
          "westeurope": "20.86.0.0/16", "uksouth": "20.90.0.0/16"}
DNS_LABEL = re.compile(r"[a-z][a-z0-9-]{1,61}[a-z0-9]")


def public_range(location: str) -> ipaddress.IPv4Network:
    if location in RANGES:
        return ipaddress.IPv4Network(RANGES[location])
    second = 100 + int(hashlib.sha256(location.encode()).hexdigest(), 16) % 150
    return ipaddress.IPv4Network(f"20.{second}.0.0/16")


class PublicIPAddresses(Kind):
    type = "publicIPAddresses"

    def sku(self, body: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
        sku = body.get("sku") or {}
        if not isinstance(sku, dict):
            raise invalid("sku", sku, "an object")
        name = str(sku.get("name", "Standard"))
        if name not in ("Standard", "Basic"):
            raise invalid("sku.name", name, "Standard or Basic")
        tier = str(sku.get("tier", "Regional"))
        if tier != "Regional":
            raise invalid("sku.tier", tier, "only Regional is emulated")
        if current is not None and current["sku"]["name"] != name:
            raise bad_request("PublicIPAddressSkuCannotBeChanged",
                              f"The sku of {current['id']} cannot change from "
                              f"{current['sku']['name']} to {name}.")
        return {"name": name, "tier": tier}

    def properties(self, rid: Rid, body: dict[str, Any], props: dict[str, Any],
                   current: dict[str, Any] | None, location: str) -> dict[str, Any]:
        sku = self.sku(body, current)["name"]
        method = str(props.get("publicIPAllocationMethod")
                     or ("Static" if sku == "Standard" else "Dynamic"))
        if method not in ("Static", "Dynamic"):
            raise invalid("properties.publicIPAllocationMethod", method, "Static or Dynamic")
        if sku == "Standard" and method != "Static":
            raise bad_request("StandardSkuPublicIPAddressMustBeStatic",
                              f"Standard sku publicIp {rid.path} must have AllocationMethod set "
                              "to Static.")
        version = str(props.get("publicIPAddressVersion", "IPv4"))
        if version != "IPv4":
            raise invalid("properties.publicIPAddressVersion", version, "only IPv4 is emulated")
        idle = props.get("idleTimeoutInMinutes", 4)
        if not isinstance(idle, int) or not 4 <= idle <= 30:
            raise invalid("properties.idleTimeoutInMinutes", idle, "4 to 30 minutes")
        out: dict[str, Any] = {"publicIPAllocationMethod": method,
                               "publicIPAddressVersion": version, "idleTimeoutInMinutes": idle,
                               "ipAddress": self._address(rid, props.get("ipAddress"), current,
                                                          location)}
        dns = props.get("dnsSettings")
        if isinstance(dns, dict) and dns.get("domainNameLabel"):
            label = str(dns["domainNameLabel"])
            if not DNS_LABEL.fullmatch(label):
                raise invalid("properties.dnsSettings.domainNameLabel", label,
                              "3-63 lowercase letters, digits and '-', starting with a letter")
            for other in self.store.of_type(self.type):
                other_dns = other["properties"].get("dnsSettings", {})
                if (other["id"].lower() != rid.path.lower() and other["location"] == location
                        and other_dns.get("domainNameLabel") == label):
                    raise bad_request("DnsRecordInUse",
                                      f"DNS record {label}.{location}.cloudapp.azure.com is "
                                      "already used by another public IP.")
            out["dnsSettings"] = {"domainNameLabel": label,
                                  "fqdn": f"{label}.{location}.cloudapp.azure.com"}
        if isinstance(props.get("ipTags"), list):
            out["ipTags"] = props["ipTags"]
        return out

    def _address(self, rid: Rid, wanted: Any, current: dict[str, Any] | None,
                 location: str) -> str:
        held = {o["properties"]["ipAddress"] for o in self.store.of_type(self.type)
                if o["id"].lower() != rid.path.lower()}
        if current is not None:
            mine = str(current["properties"]["ipAddress"])
            if wanted not in (None, "", mine):
                raise bad_request("PublicIPAddressCannotChangeIpAddress",
                                  f"The IP address of {rid.path} is {mine}; it cannot change "
                                  f"to {wanted}.")
            return mine
        if wanted:
            try:
                address = ipaddress.IPv4Address(str(wanted))
            except ValueError:
                raise invalid("properties.ipAddress", wanted, "an IPv4 address") from None
            if not address.is_global or str(address) in held:
                raise bad_request("PublicIPAddressNotAvailable",
                                  f"The IP address {wanted} is not available for {rid.path}.")
            return str(address)
        for host in public_range(location).hosts():
            if host.packed[-1] >= 4 and str(host) not in held:
                return str(host)
        raise bad_request("PublicIPCountLimitReached", f"No address left in {location}.")

    def render(self, obj: dict[str, Any]) -> dict[str, Any]:
        out = super().render(obj)
        users = self.store.users(parse_id(obj["id"], "id"))
        if users:
            out["properties"]["ipConfiguration"] = {"id": users[0]}
        return out

    def check_delete(self, rid: Rid, obj: dict[str, Any]) -> None:
        users = self.store.users(rid)
        if users:
            raise bad_request("PublicIPAddressInUse",
                              f"Public IP address {rid.path} can not be deleted since it is "
                              f"still allocated to resource {users[0]}. In order to delete the "
                              "public IP, disassociate/detach the Public IP address from the "
                              "resource.")

