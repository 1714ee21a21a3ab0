"""VPC firewall rules (`global/firewalls`): how traffic and Google's health checkers reach nodes.

GCE's rules kept here: the network must exist (default `global/networks/default`); exactly one
of `allowed` and `denied`, each entry an `IPProtocol` (tcp, udp, icmp, esp, ah, sctp, ipip, all
or a number 0-255) with `ports` only for tcp, udp and sctp; ranges in CIDR notation (at most
5,000 per rule); tags that are valid names (at most 30 source and 70 target tags), never mixed
with service accounts on the same side; no source tags on EGRESS rules; priority 0-65535
(default 1000); direction INGRESS (default) or EGRESS. PATCH merges and PUT replaces, but the
network and the direction never change. Firewalls have no labels and no fingerprint.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from .errors import invalid
from .fields import Body, cidr, port_range
from .kinds import Kind
from .links import Key, parse_ref, valid_name

PROTOCOLS = frozenset({"tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all"})
WITH_PORTS = frozenset({"tcp", "udp", "sctp", "6", "17", "132"})
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class Firewalls(Kind):
    collection = "firewalls"
    kind = "compute#firewall"
    api: ClassVar[dict[str, str]] = {"global": "firewalls"}
    label = "firewall"
    patchable = True
    replaceable = True
    fields = frozenset({
        "allowed", "creationTimestamp", "denied", "description", "destinationRanges",
        "direction", "disabled", "id", "kind", "logConfig", "name", "network", "params",
        "priority", "selfLink", "sourceRanges", "sourceServiceAccounts", "sourceTags",
        "targetServiceAccounts", "targetTags"})
    supported = frozenset({
        "name", "description", "network", "priority", "direction", "allowed", "denied",
        "sourceRanges", "destinationRanges", "sourceTags", "targetTags", "disabled",
        "sourceServiceAccounts", "targetServiceAccounts", "logConfig"})

    def normalize(self, key: Key, body: Body, current: dict[str, Any] | None) -> dict[str, Any]:
        network = parse_ref(body.text("network", "global/networks/default"), "resource.network",
                            Key(key.project, "global", "networks", ""), "networks")
        obj: dict[str, Any] = {
            "name": key.name, "network": network.url,
            "direction": body.choice("direction", ("INGRESS", "EGRESS"), "INGRESS"),
            "priority": body.integer("priority", 0, 65535, 1000),
            "disabled": body.boolean("disabled", False)}
        description = body.text("description", max_len=2048)
        if description:
            obj["description"] = description
        allowed, denied = _rules(body, "allowed"), _rules(body, "denied")
        if bool(allowed) == bool(denied):
            raise invalid("resource.allowed", "", "Exactly one of 'allowed' and 'denied' must "
                                                  "be specified.")
        obj["allowed" if allowed else "denied"] = allowed or denied
        ranges = 0
        for name in ("sourceRanges", "destinationRanges"):
            values = body.strings(name)
            for i, value in enumerate(values):
                cidr(value, f"{body.field(name)}[{i}]")
            ranges += len(values)
            if values:
                obj[name] = values
        if ranges > 5000:
            raise invalid("resource.sourceRanges", ranges, "At most 5000 ranges per rule.")
        for name, limit in (("sourceTags", 30), ("targetTags", 70)):
            tags = body.strings(name)
            if len(tags) > limit:
                raise invalid(body.field(name), len(tags), f"At most {limit} tags per rule.")
            for i, tag in enumerate(tags):
                if not valid_name(tag):
                    raise invalid(f"{body.field(name)}[{i}]", tag, "Must be a valid tag name.")
            if tags:
                obj[name] = tags
        for side in ("source", "target"):
            accounts = body.strings(f"{side}ServiceAccounts")
            for i, account in enumerate(accounts):
                if not _EMAIL.fullmatch(account):
                    raise invalid(f"resource.{side}ServiceAccounts[{i}]", account,
                                  "Must be a service account email.")
            if accounts and f"{side}Tags" in obj:
                raise invalid(f"resource.{side}ServiceAccounts", accounts[0],
                              f"Cannot be combined with {side}Tags.")
            if accounts:
                obj[f"{side}ServiceAccounts"] = accounts
        if obj["direction"] == "EGRESS" and "sourceTags" in obj:
            raise invalid("resource.sourceTags", obj["sourceTags"][0],
                          "Source tags cannot be set on an EGRESS rule.")
        log = body.child("logConfig", ("enable", "metadata"))
        obj["logConfig"] = {"enable": bool(log.boolean("enable", False)) if log else False}
        return obj

    def verify(self, key: Key, obj: dict[str, Any]) -> None:
        self.store.require(_network(key, obj))

    def check_change(self, current: dict[str, Any], new: dict[str, Any]) -> None:
        for name in ("network", "direction"):
            if current.get(name) != new.get(name):
                raise invalid(f"resource.{name}", new.get(name) or "",
                              f"The {name} of a firewall rule cannot be changed.")


def _network(key: Key, obj: dict[str, Any]) -> Key:
    return parse_ref(obj["network"], "resource.network", key, "networks")


def _rules(body: Body, name: str) -> list[dict[str, Any]]:
    out = []
    for rule in body.children(name, ("IPProtocol", "ports")):
        protocol = rule.text("IPProtocol", need=True)
        assert protocol is not None
        if protocol not in PROTOCOLS and not (protocol.isdigit() and int(protocol) <= 255):
            raise invalid(rule.field("IPProtocol"), protocol,
                          f"Must be one of [{', '.join(sorted(PROTOCOLS))}] or 0-255.")
        ports = rule.strings("ports")
        if ports and protocol not in WITH_PORTS:
            raise invalid(rule.field("ports"), ports[0],
                          f"Ports can only be given for tcp, udp and sctp, not {protocol}.")
        for i, port in enumerate(ports):
            port_range(port, f"{rule.field('ports')}[{i}]")
        out.append({"IPProtocol": protocol, **({"ports": ports} if ports else {})})
    return out
