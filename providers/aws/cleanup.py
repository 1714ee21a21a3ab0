"""Deleting, releasing and listing what lbctl owns, found by tags rather than by following
the NLB alone: a crash after DeleteLoadBalancer leaves target groups, rules and a security group
that upstream leaks forever; here the next delete (or orphan collection, which sees them through
`list_owned`) removes them.

delete(ref), in dependency order: listeners -> NLB -> target groups (the NLB's listeners' and
every one tagged for the balancer) -> our rules on the VPC's groups (revoked) -> the frontend
group (DependencyViolation while AWS releases the NLB's interfaces -> RetryAfter) -> the
cluster's backend group, when no load balancer of the cluster is left (best effort: a refusal
is logged and `list_owned` tries again later, so one Service's delete never waits on another
cluster object). Every step treats "not found" as done, so any crash point converges.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from providers.errors import RetryAfter
from providers.spec import BalancerRef

from . import groups, names, observe, tagging
from .client import ApiError, AwsClient
from .ingress import by_group, revoke, rules_of

log = logging.getLogger(__name__)


def delete_target_group(client: AwsClient, arn: str,
                        sleep: Callable[[float], None] = time.sleep, attempts: int = 5) -> None:
    """DeleteTargetGroup, waiting briefly while AWS still sees it in use; gone is success."""
    for attempt in range(attempts):
        try:
            client.elbv2("DeleteTargetGroup", TargetGroupArn=arn)
            return
        except ApiError as exc:
            if exc.not_found:
                return
            if exc.code != "ResourceInUse" or attempt == attempts - 1:
                raise
            sleep(0.5 * 2 ** attempt)


def ignore_missing(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Make the call; a not-found answer means the work is already done."""
    try:
        call(*args, **kwargs)
    except ApiError as exc:
        if not exc.not_found:
            raise


class Cleaner:
    """delete / release / list_owned for one cluster; see the module docstring."""

    def __init__(self, client: AwsClient, cluster: str, vpc_id: str | None,
                 gate: groups.BackendGate, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self.cluster, self.vpc_id = client, cluster, vpc_id
        self.gate, self.sleep = gate, sleep

    def _owned_lb(self, balancer: str) -> dict[str, Any] | None:
        raw = observe.find_load_balancer(self.client, names.load_balancer_name(balancer))
        if raw is None:
            return None
        arn = raw["LoadBalancerArn"]
        tags = observe.describe_tags(self.client, [arn]).get(arn, {})
        return raw if names.is_owned(tags, self.cluster, balancer) else None

    def delete(self, ref: BalancerRef) -> None:
        balancer, lb_arn = ref.name, ""
        vpcs: set[str] = {self.vpc_id} if self.vpc_id else set()
        target_groups: set[str] = set()
        raw_lb = self._owned_lb(balancer)
        if raw_lb is not None:
            lb_arn = raw_lb["LoadBalancerArn"]
            vpcs.add(raw_lb.get("VpcId", ""))
            target_groups |= self._delete_lb(lb_arn)
        tagged = tagging.owned(self.client, self.cluster,
                               [tagging.TARGET_GROUP, tagging.SECURITY_GROUP], balancer)
        target_groups |= {t.arn for t in tagged if t.kind == "targetgroup"}
        frontends = {t.id for t in tagged if t.kind == "security-group"}
        if not vpcs - {""}:  # the NLB is gone already: its groups tell the VPC
            vpcs |= {g.get("VpcId", "") for g in observe.describe_security_groups(
                self.client, sorted(frontends))} if frontends else set()
            vpcs |= {tg.get("VpcId", "") for tg in tagging.existing_target_groups(
                self.client, sorted(target_groups))} if not vpcs - {""} else set()
        for arn in sorted(target_groups):
            delete_target_group(self.client, arn, self.sleep)
        raw_groups = self._vpc_groups(vpcs - {""})
        frontend = names.frontend_group_name(balancer)
        frontends |= {g["GroupId"] for g in raw_groups if g.get("GroupName") == frontend
                      and names.is_owned(names.tag_dict(g.get("Tags")), self.cluster, balancer)}
        doomed = [g for g in raw_groups if g["GroupId"] not in frontends]
        for group, rules in by_group(list(rules_of(doomed, balancer))):
            revoke(self.client, group, rules)
        for group_id in sorted(frontends):
            groups.delete_group(self.client, group_id, f"frontend of {balancer}")
        backend = [g["GroupId"] for g in raw_groups
                   if g.get("GroupName") == names.backend_group_name(self.cluster)
                   and names.is_backend(names.tag_dict(g.get("Tags")), self.cluster)]
        if backend:
            self.delete_backend(backend, ignore=[lb_arn] if lb_arn else [])

    def _delete_lb(self, arn: str) -> set[str]:
        """Listeners, then the NLB; answers the target groups its listeners forwarded to."""
        forwarded: set[str] = set()
        try:
            for page in self.client.pages("elbv2", "DescribeListeners", LoadBalancerArn=arn):
                for li in page.get("Listeners", []):
                    forwarded |= {a["TargetGroupArn"] for a in li.get("DefaultActions", [])
                                  if a.get("TargetGroupArn")}
                    ignore_missing(self.client.elbv2, "DeleteListener",
                                   ListenerArn=li["ListenerArn"])
        except ApiError as exc:
            if not exc.not_found:
                raise
        ignore_missing(self.client.elbv2, "DeleteLoadBalancer", LoadBalancerArn=arn)
        return forwarded

    def _vpc_groups(self, vpcs: set[str]) -> list[dict[str, Any]]:
        """Every group of the balancer's VPCs (of the region when none is known)."""
        scopes: list[str | None] = [*sorted(vpcs)] or [None]
        return [g for vpc in scopes
                for g in observe.describe_security_groups(self.client, vpc_id=vpc)]

    def delete_backend(self, group_ids: Iterable[str], ignore: Iterable[str] = ()) -> bool:
        """Delete the cluster's backend group when no load balancer of the cluster is left
        (besides `ignore`, just deleted) and no rule admits it any more (another Service's
        delete may not have revoked its node rules yet: the last one to look deletes it; AWS
        would refuse anyway, moto would not); best effort. Answers whether it is gone."""
        ids = sorted(set(group_ids))
        with self.gate.alone():
            if tagging.any_cluster_nlb(self.client, self.cluster, ignore):
                return False
            referencing = [g["GroupId"] for page in self.client.pages(
                "ec2", "DescribeSecurityGroups",
                Filters=[{"Name": "ip-permission.group-id", "Values": ids}])
                for g in page.get("SecurityGroups", [])]
            if referencing:
                log.info("keeping the backend security group: rules of %s still admit it",
                         ", ".join(sorted(referencing)))
                return False
            try:
                for group_id in ids:
                    groups.delete_group(self.client, group_id, "the cluster's backend")
            except RetryAfter as exc:
                log.warning("keeping the backend security group for now (orphan collection "
                            "tries again): %s", exc)
                return False
        return True

    def release(self, ref: BalancerRef) -> None:
        """Drop lbctl's ownership tags (lbctl.io/*) from the NLB, its target groups and its
        frontend group; they stay and keep serving. Rules keep their description."""
        tagged = {t.arn: t for t in tagging.owned(
            self.client, self.cluster, [tagging.TARGET_GROUP, tagging.SECURITY_GROUP], ref.name)}
        raw_lb = self._owned_lb(ref.name)
        if raw_lb is not None:
            arn = raw_lb["LoadBalancerArn"]
            tagged[arn] = tagging.Tagged(arn, observe.describe_tags(self.client, [arn])[arn])
        for arn, item in sorted(tagged.items()):
            keys = [k for k in item.tags if k.startswith(names.LBCTL_TAG_PREFIX)]
            if not keys:
                continue
            if item.kind == "security-group":
                self.client.ec2("DeleteTags", Resources=[item.id],
                                Tags=[{"Key": k} for k in keys])
            else:
                self.client.elbv2("RemoveTags", ResourceArns=[arn], TagKeys=keys)

    def list_owned(self) -> list[BalancerRef]:
        """Every balancer with an NLB, target group or frontend group tagged for the cluster.
        The shared backend group belongs to no balancer: when nothing else of the cluster is
        left, it is deleted here (best effort), so orphan collection also catches one that
        a delete had to leave behind."""
        owned = tagging.owned(self.client, self.cluster, [
            tagging.LOAD_BALANCER, tagging.TARGET_GROUP, tagging.SECURITY_GROUP])
        refs: dict[str, BalancerRef] = {}
        for item in owned:
            ref = names.ref_from_tags(item.tags)
            if ref is not None:
                refs.setdefault(ref.name, ref)
        backend = [t.id for t in owned if t.kind == "security-group"
                   and names.is_backend(t.tags, self.cluster)]
        if backend and not refs:
            self.delete_backend(backend)
        return [refs[k] for k in sorted(refs)]
