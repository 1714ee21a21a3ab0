"""networkSecurityGroups and their securityRules (inline or as `.../securityRules/R` children).

A rule is checked as ARM checks it: protocol, access, direction; a priority of 100-4096, unique
per direction within the group (SecurityRuleConflict); a source and a destination given either
as one `...AddressPrefix` or a `...AddressPrefixes` list, never both (address prefixes are `*`,
an IPv4 address or CIDR block, or a service tag such as `Internet`); ports likewise (`*`, `80`,
`1000-2000`); at most 1,000 rules a group. The six default rules render read-only under
`defaultSecurityRules`, as in Azure. A group a subnet names cannot be deleted.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from .errors import bad_request, invalid
from .ids import Rid
from .kinds import Kind, child_entry, children

PROTOCOLS = ("Tcp", "Udp", "Icmp", "Esp", "Ah", "*")
TAG = re.compile(r"[A-Za-z][A-Za-z0-9.]*")
DEFAULTS = (
    ("AllowVnetInBound", 65000, "Inbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
    ("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "AzureLoadBalancer", "*"),
    ("DenyAllInBound", 65500, "Inbound", "Deny", "*", "*"),
    ("AllowVnetOutBound", 65000, "Outbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
    ("AllowInternetOutBound", 65001, "Outbound", "Allow", "*", "Internet"),
    ("DenyAllOutBound", 65500, "Outbound", "Deny", "*", "*"),
)


def _prefix(value: Any, field: str) -> str:
    text = str(value)
    if text == "*" or TAG.fullmatch(text):
        return text
    try:
        return str(ipaddress.IPv4Network(text, strict=False)) if "/" in text else str(
            ipaddress.IPv4Address(text))
    except ValueError:
        raise bad_request("SecurityRuleInvalidAddressPrefix",
                          f"Security rule has invalid Address prefix. Value provided: {text} "
                          f"({field}).") from None


def _port(value: Any, field: str) -> str:
    text = str(value)
    if text == "*":
        return text
    low, _, high = text.partition("-")
    try:
        ok = 0 <= int(low) <= 65535 and (not high or int(low) <= int(high) <= 65535)
    except ValueError:
        ok = False
    if not ok:
        raise bad_request("SecurityRuleInvalidPortRange",
                          f"Security rule has invalid Port range. Value provided: {text} "
                          f"({field}). Value should be an integer OR integer range with '-' "
                          "delimiter. Valid range 0-65535.")
    return text


def _pair(props: dict[str, Any], one: str, many: str, check: Any, field: str,
          out: dict[str, Any]) -> None:
    single, listed = props.get(one), props.get(many) or []
    if single and listed:
        raise bad_request("SecurityRuleParameterContainsUnsupportedValue",
                          f"Security rule {field}: give {one} or {many}, not both.")
    if listed:
        if not isinstance(listed, list):
            raise invalid(f"{field}.{many}", listed, "a list")
        out[many] = [check(v, f"{field}.{many}") for v in listed]
    elif single:
        out[one] = check(single, f"{field}.{one}")
    else:
        raise bad_request("SecurityRuleParameterMissing",
                          f"Security rule {field}: {one} or {many} is required.")


def rule(props: dict[str, Any], field: str) -> dict[str, Any]:
    protocol = str(props.get("protocol", ""))
    if protocol not in PROTOCOLS:
        raise invalid(f"{field}.protocol", protocol, f"one of {PROTOCOLS}")
    access, direction = str(props.get("access", "")), str(props.get("direction", ""))
    if access not in ("Allow", "Deny"):
        raise invalid(f"{field}.access", access, "Allow or Deny")
    if direction not in ("Inbound", "Outbound"):
        raise invalid(f"{field}.direction", direction, "Inbound or Outbound")
    priority = props.get("priority")
    if not isinstance(priority, int) or not 100 <= priority <= 4096:
        raise bad_request("SecurityRuleInvalidPriority",
                          f"Security rule {field} has invalid Priority. Value provided: "
                          f"{priority}. Allowed range 100-4096.")
    out: dict[str, Any] = {"protocol": protocol, "access": access, "direction": direction,
                           "priority": priority}
    _pair(props, "sourceAddressPrefix", "sourceAddressPrefixes", _prefix, field, out)
    _pair(props, "destinationAddressPrefix", "destinationAddressPrefixes", _prefix, field, out)
    _pair(props, "sourcePortRange", "sourcePortRanges", _port, field, out)
    _pair(props, "destinationPortRange", "destinationPortRanges", _port, field, out)
    if props.get("description"):
        out["description"] = str(props["description"])[:140]
    return out


class NetworkSecurityGroups(Kind):
    type = "networkSecurityGroups"
    writable_children = ("securityRules",)
    readable_children = ("securityRules", "defaultSecurityRules")

    def properties(self, rid: Rid, body: dict[str, Any], props: dict[str, Any],
                   current: dict[str, Any] | None, location: str) -> dict[str, Any]:
        rules = []
        seen: dict[tuple[str, int], str] = {}
        items = children(rid, "securityRules", props.get("securityRules"),
                         "properties.securityRules")
        if len(items) > self.store.settings.max_security_rules:
            raise bad_request("SecurityRulesLimitReached",
                              f"Network security group {rid.name} would have {len(items)} "
                              f"rules; the limit is {self.store.settings.max_security_rules}.")
        for child, raw in items:
            entry = rule(raw, f"securityRules[{child.child_name}]")
            slot = (entry["direction"], entry["priority"])
            if slot in seen:
                raise bad_request("SecurityRuleConflict",
                                  f"Security rule {child.child_name} conflicts with rule "
                                  f"{seen[slot]}. Rules cannot have the same Priority and "
                                  "Direction. To learn more, see aka.ms/nsgrules.")
            seen[slot] = child.child_name
            rules.append(child_entry(child, entry))
        return {"securityRules": rules}

    def check_delete(self, rid: Rid, obj: dict[str, Any]) -> None:
        users = self.store.users(rid)
        if users:
            raise bad_request("InUseNetworkSecurityGroupCannotBeDeleted",
                              f"Network security group {rid.path} cannot be deleted because "
                              f"it is in use by the following resources: {users[0]}.")

    def render(self, obj: dict[str, Any]) -> dict[str, Any]:
        out = super().render(obj)
        rid_path = obj["id"]
        out["properties"]["defaultSecurityRules"] = [{
            "name": name, "id": f"{rid_path}/defaultSecurityRules/{name}",
            "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
            "etag": obj.get("etag", ""),
            "properties": {"protocol": "*", "sourcePortRange": "*", "destinationPortRange": "*",
                           "sourceAddressPrefix": source, "destinationAddressPrefix": dest,
                           "access": access, "priority": priority, "direction": direction,
                           "provisioningState": "Succeeded"}}
            for name, priority, direction, access, source, dest in DEFAULTS]
        return out
