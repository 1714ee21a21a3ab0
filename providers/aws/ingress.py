"""Node security group ingress: lbctl's rules, written in as few calls as AWS allows.

A rule's identity is (group, protocol, port, CIDR); its description (`lbctl:<balancer>:<purpose>`)
marks it as ours. Writes batch every rule of one group into one call; when AWS refuses the batch
because one rule already exists (or is already gone), they fall back to one call per rule and
tolerate that answer, so a re-run after a crash converges instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
    perms: dict[tuple[str, int], dict[str, Any]] = {}
    for r in sorted(rules):
        perm = perms.setdefault((r.protocol, r.port), {
            "IpProtocol": r.protocol, "FromPort": r.port, "ToPort": r.port})
        v6 = ":" in r.cidr
        entry = {"CidrIpv6" if v6 else "CidrIp": r.cidr}
        if descriptions:
            entry["Description"] = r.description
        perm.setdefault("Ipv6Ranges" if v6 else "IpRanges", []).append(entry)
    return list(perms.values())


def by_group(rules: list[SgRule]) -> list[tuple[str, list[SgRule]]]:
    out: dict[str, list[SgRule]] = {}
    for r in sorted(rules):
        out.setdefault(r.group_id, []).append(r)
    return sorted(out.items())


def rules_text(rules: list[SgRule]) -> str:
    return ", ".join(f"{r.protocol}/{r.port} from {r.cidr}" for r in rules)
