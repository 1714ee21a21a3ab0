"""Security group ingress: lbctl's rules, written in as few calls as AWS allows.

A rule's identity is (group, protocol, port, source), the source a CIDR or a security group
(`UserIdGroupPairs`: the node rules admit the NLBs' backend group); its description
(`lbctl:<balancer>:<purpose>`) marks it as ours. Writes batch every rule of one group into one
call; when AWS refuses the batch because one rule already exists (or is already gone), they fall
back to one call per rule and tolerate that answer, so a re-run after a crash converges instead
of failing. A revoke of a group-sourced rule carries its description: AWS matches rules without
it, moto only with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import names
from .client import ApiError, AwsClient
from .model import SgRule


def authorize(client: AwsClient, group: str, rules: list[SgRule]) -> None:
    """One call for all rules; when AWS calls one a duplicate, rule by rule, tolerating it."""
    try:
        client.ec2("AuthorizeSecurityGroupIngress", GroupId=group,
                   IpPermissions=describe(rules))
    except ApiError as exc:
        if exc.code != "InvalidPermission.Duplicate" or len(rules) == 1:
            if exc.code == "InvalidPermission.Duplicate":
                return
            raise
        for rule in rules:
            authorize(client, group, [rule])


def revoke(client: AwsClient, group: str, rules: list[SgRule]) -> None:
    """One call for all rules; rule by rule when one is already gone (tolerated)."""
    try:
        client.ec2("RevokeSecurityGroupIngress", GroupId=group,
                   IpPermissions=describe(rules, descriptions=False))
    except ApiError as exc:
        if exc.code not in ("InvalidPermission.NotFound", "InvalidGroup.NotFound"):
            raise
        if exc.code == "InvalidPermission.NotFound" and len(rules) > 1:
            for rule in rules:
                revoke(client, group, [rule])


def describe(rules: Iterable[SgRule], descriptions: bool = True) -> list[dict[str, Any]]:
    """`IpPermissions` for `rules`, one permission per (protocol, port)."""
    perms: dict[tuple[str, int], dict[str, Any]] = {}
    for r in sorted(rules):
        perm = perms.setdefault((r.protocol, r.port), {
            "IpProtocol": r.protocol, "FromPort": r.port, "ToPort": r.port})
        if r.from_group:
            key, entry = "UserIdGroupPairs", {"GroupId": r.source}
        elif ":" in r.source:
            key, entry = "Ipv6Ranges", {"CidrIpv6": r.source}
        else:
            key, entry = "IpRanges", {"CidrIp": r.source}
        if descriptions or r.from_group:
            entry["Description"] = r.description
        perm.setdefault(key, []).append(entry)
    return list(perms.values())


def rules_of(raw_groups: Iterable[dict[str, Any]], balancer: str) -> tuple[SgRule, ...]:
    """The ingress rules lbctl wrote for `balancer` on `raw_groups` (DescribeSecurityGroups
    answers): their description starts with `lbctl:<balancer>:`."""
    prefix = names.rule_prefix(balancer)
    out: set[SgRule] = set()
    for group in raw_groups:
        for perm in group.get("IpPermissions", []):
            port = perm.get("FromPort")
            if port is None or port != perm.get("ToPort"):
                continue
            sources = [(r.get("CidrIp", ""), r.get("Description", ""))
                       for r in perm.get("IpRanges", [])]
            sources += [(r.get("CidrIpv6", ""), r.get("Description", ""))
                        for r in perm.get("Ipv6Ranges", [])]
            sources += [(r.get("GroupId", ""), r.get("Description", ""))
                        for r in perm.get("UserIdGroupPairs", [])]
            out |= {SgRule(group["GroupId"], perm.get("IpProtocol", ""), int(port), source, desc)
                    for source, desc in sources if source and desc.startswith(prefix)}
    return tuple(sorted(out))


def by_group(rules: list[SgRule]) -> list[tuple[str, list[SgRule]]]:
    out: dict[str, list[SgRule]] = {}
    for r in sorted(rules):
        out.setdefault(r.group_id, []).append(r)
    return sorted(out.items())


def rules_text(rules: list[SgRule]) -> str:
    return ", ".join(f"{r.protocol}/{r.port} from {r.source}" for r in rules)


def resolve(rule: SgRule, ids: dict[str, str]) -> SgRule:
    """`rule` with managed groups' names (in `group_id` or `source`) replaced by their IDs."""
    return SgRule(ids.get(rule.group_id, rule.group_id), rule.protocol, rule.port,
                  ids.get(rule.source, rule.source), rule.description)
