"""ARM resource ids: how paths and `{"id": ...}` references name Microsoft.Network objects.

`/subscriptions/S/resourceGroups/G/providers/Microsoft.Network/TYPE/NAME[/CHILD/NAME]`. ARM
compares ids case-insensitively (the SDK writes `resourceGroups`, the portal `resourcegroups`),
so the store keys objects by the lowercased id while answers keep the names as created. Names
follow ARM's rule for network resources: 1-80 word characters, `.`, `-`, `_`, starting with a
word character and ending with one or `_`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import bad_request, invalid_name

PROVIDER = "Microsoft.Network"
NAME = re.compile(r"\w(?:[\w.-]{0,78}\w)?", re.ASCII)
TYPES = ("loadBalancers", "publicIPAddresses", "networkSecurityGroups", "virtualNetworks")
CHILDREN = {
    "loadBalancers": ("frontendIPConfigurations", "backendAddressPools", "probes",
                      "loadBalancingRules"),
    "networkSecurityGroups": ("securityRules", "defaultSecurityRules"),
    "virtualNetworks": ("subnets",),
}
"""Child collections of each type, in the spelling of ids and of `properties`."""


def canonical(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """`word` spelt as in `choices` (case-insensitively), None when not one of them."""
    lowered = word.lower()
    return next((c for c in choices if c.lower() == lowered), None)


def check_name(name: str, kind: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise invalid_name(str(name), kind)
    return name


@dataclass(frozen=True)
class Rid:
    subscription: str
    group: str
    type: str
    name: str
    child_type: str = ""
    child_name: str = ""

    @property
    def top(self) -> Rid:
        return Rid(self.subscription, self.group, self.type, self.name)

    @property
    def path(self) -> str:
        out = (f"/subscriptions/{self.subscription}/resourceGroups/{self.group}/providers/"
               f"{PROVIDER}/{self.type}/{self.name}")
        return f"{out}/{self.child_type}/{self.child_name}" if self.child_type else out

    @property
    def key(self) -> str:
        """The top-level object's store key (lowercased id)."""
        return self.top.path.lower()

    def child(self, child_type: str, name: str) -> Rid:
        return Rid(self.subscription, self.group, self.type, self.name, child_type, name)

    @property
    def arm_type(self) -> str:
        base = f"{PROVIDER}/{self.type}"
        return f"{base}/{self.child_type}" if self.child_type else base


def parse_id(value: object, field: str) -> Rid:
    """A reference's `id` as a Rid; a malformed one is ARM's LinkedInvalidPropertyId."""
    text = value if isinstance(value, str) else ""
    parts = text.strip("/").split("/")
    ok = (text.startswith("/") and len(parts) in (8, 10)
          and parts[0].lower() == "subscriptions" and parts[2].lower() == "resourcegroups"
          and parts[4].lower() == "providers" and parts[5].lower() == PROVIDER.lower())
    kind = canonical(parts[6], TYPES) if ok else None
    child = ""
    if ok and kind is not None and len(parts) == 10:
        child = canonical(parts[8], CHILDREN.get(kind, ())) or ""
    if not ok or kind is None or (len(parts) == 10 and not child) or not all(parts):
        raise bad_request("LinkedInvalidPropertyId",
                          f"Property id '{value}' at path '{field}' is invalid. Expect fully "
                          "qualified resource Id that start with '/subscriptions/"
                          "{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.")
    if len(parts) == 10:
        return Rid(parts[1], parts[3], kind, parts[7], child, parts[9])
    return Rid(parts[1], parts[3], kind, parts[7])


def ref(value: object, field: str) -> Rid | None:
    """The Rid of a `{"id": ...}` reference (None when absent); anything else is refused."""
    if value is None:
        return None
    if not isinstance(value, dict) or "id" not in value:
        raise bad_request("InvalidRequestFormat", f"{field} must be an object with an 'id'.")
    return parse_id(value["id"], f"{field}.id")


__all__ = ["CHILDREN", "TYPES", "Rid", "canonical", "check_name", "parse_id", "ref"]
