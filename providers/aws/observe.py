"""What exists in AWS, found by ownership and never by guesswork, with as few calls as possible.

Two ways in, for two jobs:
- `observe_balancer` (ensure, plan, observe) starts from the deterministic NLB name and follows
  the balancer's own links (its listeners, attached target groups and security groups),
  batching DescribeTags (20 ARNs a call). An NLB with our name but without our tags raises
  NotOwnedError. Target groups tagged for the balancer that it no longer links (a crash between
  switching a listener and deleting the old group) come from `tagging` (a cached scan of the
  cluster's groups) and are described by ARN only when the NLB does not already list them.
- `tagging` (delete, list_owned) asks the Resource Groups Tagging API for what carries the
  cluster's tags, so what a crash after DeleteLoadBalancer left is still found (upstream
  returns early and leaks it) at a cost in the objects owned, not in the account's.
`discover` reads the node instances (one DescribeInstances for all of them), the VPC's subnets
and CIDRs (cached: they rarely change) and, in one DescribeSecurityGroups, the node security
groups and the NLB's own groups (frontend, backend), whose lbctl rules `ingress.rules_of`
recognises by description prefix.
Each target group's DescribeTargetHealth (read anyway: which targets are registered) also gives
the balancer's target counts (`LoadBalancerStatus.targets`) at no extra call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from providers.errors import NotOwnedError
from providers.spec import TargetHealth

from . import groups, names
from .client import ApiError, AwsClient
from .ingress import rules_of
from .model import (
    Discovered,
    HealthCheckSettings,
    Instance,
    Observed,
    ObservedListener,
    ObservedLoadBalancer,
    ObservedTargetGroup,
    SecurityGroup,
    Subnet,
)
from .tagging import existing_target_groups

log = logging.getLogger(__name__)

TAGS_PER_CALL = 20
FILTER_VALUES = 200


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# -- discovery -------------------------------------------------------------------------------
INSTANCES_TTL = 5.0
"""How long one DescribeInstances answer serves every Service asking about the same nodes."""


class _Shared:
    """One DescribeInstances answer for a set of instance IDs, and the lock that makes
    concurrent askers wait for the first one's call instead of making their own."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at: float | None = None
        self.value: list[Instance] = []


class Discovery:
    """Security groups on every call; node instances shared across Services for INSTANCES_TTL
    (a node change re-ensures every Service at once: one DescribeInstances serves them all);
    the VPC's CIDRs and subnets cached for `ttl` seconds (a new subnet is picked up within
    that time)."""

    def __init__(self, client: AwsClient, vpc_id: str | None, ttl: float = 300.0,
                 clock: Callable[[], float] = time.monotonic,
                 instances_ttl: float = INSTANCES_TTL) -> None:
        self._client, self._vpc_id, self._ttl, self._clock = client, vpc_id, ttl, clock
        self._cache: dict[str, tuple[float, tuple[str, ...], tuple[Subnet, ...]]] = {}
        self._instances: dict[tuple[str, ...], _Shared] = {}
        self._instances_ttl = instances_ttl
        self._lock = threading.Lock()

    def instances(self, ids: tuple[str, ...]) -> list[Instance]:
        """The running instances among `ids`, from a call at most `instances_ttl` old; callers
        asking at the same moment share one call."""
        now = self._clock()
        with self._lock:
            for key in [k for k, v in self._instances.items()
                        if v.at is not None and now - v.at >= self._instances_ttl]:
                del self._instances[key]  # old node sets do not pile up
            shared = self._instances.setdefault(ids, _Shared())
        with shared.lock:
            if shared.at is None or self._clock() - shared.at >= self._instances_ttl:
                shared.value = describe_instances(self._client, list(ids))
                shared.at = self._clock()
            return list(shared.value)

    def discover(self, instance_ids: Iterable[str], extra_groups: Iterable[str] = (),
                 ) -> tuple[Discovered, list[dict[str, Any]]]:
        """The facts `desired` needs, plus the raw security groups (for their rules): the
        nodes' and `extra_groups` (the NLB's), in one call."""
        instances = self.instances(tuple(sorted(set(instance_ids))))
        vpc_id = self._vpc_id or _majority(i.vpc_id for i in instances)
        if vpc_id is None:
            return Discovered(vpc_id="", vpc_cidrs=(), instances=tuple(instances)), []
        cidrs, subnets = self.vpc(vpc_id)
        group_ids = sorted({g for i in instances if i.vpc_id == vpc_id for g in i.security_groups}
                           | set(extra_groups))
        raw_groups = describe_security_groups(self._client, group_ids) if group_ids else []
        found = tuple(SecurityGroup(g["GroupId"],
                                    tuple(sorted(names.tag_dict(g.get("Tags")).items())),
                                    g.get("GroupName", ""), g.get("VpcId", ""))
                      for g in raw_groups)
        return Discovered(vpc_id, cidrs, tuple(instances), subnets, found), raw_groups

    def vpc(self, vpc_id: str) -> tuple[tuple[str, ...], tuple[Subnet, ...]]:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(vpc_id)
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1], hit[2]
        vpcs = self._client.ec2("DescribeVpcs", VpcIds=[vpc_id]).get("Vpcs", [])
        cidrs = tuple(sorted({a["CidrBlock"] for v in vpcs
                              for a in v.get("CidrBlockAssociationSet", [])
                              if a.get("CidrBlockState", {}).get("State", "associated")
                              == "associated"} | {v["CidrBlock"] for v in vpcs
                                                   if v.get("CidrBlock")}))
        subnets = tuple(
            Subnet(s["SubnetId"], s.get("AvailabilityZone", ""), s.get("VpcId", vpc_id),
                   s.get("CidrBlock", ""), tuple(sorted(names.tag_dict(s.get("Tags")).items())))
            for page in self._client.pages("ec2", "DescribeSubnets",
                                           Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
            for s in page.get("Subnets", []))
        with self._lock:
            self._cache[vpc_id] = (now, cidrs, subnets)
        return cidrs, subnets

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
            self._instances.clear()


def _majority(values: Iterable[str]) -> str | None:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return max(sorted(counts), key=lambda v: counts[v]) if counts else None


def describe_instances(client: AwsClient, ids: list[str]) -> list[Instance]:
    """Running instances among `ids` (a filter, so unknown IDs are skipped, not an error)."""
    out: list[Instance] = []
    for chunk in _chunks(ids, FILTER_VALUES):
        for page in client.pages("ec2", "DescribeInstances",
                                 Filters=[{"Name": "instance-id", "Values": chunk}]):
            for reservation in page.get("Reservations", []):
                for i in reservation.get("Instances", []):
                    if i.get("State", {}).get("Name") in ("terminated", "shutting-down"):
                        continue
                    out.append(Instance(
                        i["InstanceId"], i.get("VpcId", ""), i.get("SubnetId", ""),
                        i.get("Placement", {}).get("AvailabilityZone", ""),
                        tuple(g["GroupId"] for g in i.get("SecurityGroups", [])),
                        i.get("PrivateIpAddress", "")))
    return sorted(out, key=lambda i: i.id)


def groups_by_name_tag(client: AwsClient, vpc_id: str,
                       tags: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Name tag -> group ID in `vpc_id`, for `aws-load-balancer-security-groups` entries that
    are names (a name two groups carry is left out: `desired` then reports it unknown)."""
    wanted = sorted(set(tags))
    if not wanted:
        return ()
    found: dict[str, list[str]] = {}
    for page in client.pages("ec2", "DescribeSecurityGroups", Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "tag:Name", "Values": wanted}]):
        for g in page.get("SecurityGroups", []):
            found.setdefault(names.tag_dict(g.get("Tags")).get("Name", ""), []).append(
                g["GroupId"])
    return tuple(sorted((name, ids[0]) for name, ids in found.items() if len(ids) == 1))


def describe_security_groups(client: AwsClient, group_ids: list[str] | None = None,
                             vpc_id: str | None = None) -> list[dict[str, Any]]:
    """Groups by ID (a filter: a vanished group is skipped), or every group of a VPC/region."""
    filters = []
    if group_ids is not None:
        filters.append({"Name": "group-id", "Values": group_ids})
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    return [g for page in client.pages("ec2", "DescribeSecurityGroups", Filters=filters)
            for g in page.get("SecurityGroups", [])]


# -- the balancer by name --------------------------------------------------------------------
def find_load_balancer(client: AwsClient, name: str) -> dict[str, Any] | None:
    """The NLB called `name`, or None. Two with one name (moto creates duplicates; AWS does
    not) -> the oldest, with a warning."""
    try:
        found = client.elbv2("DescribeLoadBalancers", Names=[name]).get("LoadBalancers", [])
    except ApiError as exc:
        if exc.code == "LoadBalancerNotFound":
            return None
        raise
    if len(found) > 1:
        log.warning("%d load balancers are named %s; using the oldest", len(found), name)
        found.sort(key=lambda lb: str(lb.get("CreatedTime", "")))
    return found[0] if found else None


def describe_tags(client: AwsClient, arns: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for chunk in _chunks(arns, TAGS_PER_CALL):
        for d in client.elbv2("DescribeTags", ResourceArns=chunk).get("TagDescriptions", []):
            out[d["ResourceArn"]] = names.tag_dict(d.get("Tags"))
    return out


def load_balancer(raw: dict[str, Any], tags: dict[str, str],
                  attributes: dict[str, str] | None = None) -> ObservedLoadBalancer:
    return ObservedLoadBalancer(
        arn=raw["LoadBalancerArn"], name=raw["LoadBalancerName"],
        dns_name=raw.get("DNSName", ""), state=raw.get("State", {}).get("Code", "active"),
        scheme=raw.get("Scheme", ""), type=raw.get("Type", ""),
        ip_address_type=raw.get("IpAddressType", "ipv4"), vpc_id=raw.get("VpcId", ""),
        subnet_ids=tuple(sorted(z["SubnetId"] for z in raw.get("AvailabilityZones", [])
                                if z.get("SubnetId"))),
        tags=tags, attributes=attributes,
        security_groups=tuple(sorted(raw.get("SecurityGroups") or ())))


def health_check_of(raw: dict[str, Any]) -> HealthCheckSettings:
    protocol = str(raw.get("HealthCheckProtocol") or "TCP")
    return HealthCheckSettings(
        protocol=protocol, port=str(raw.get("HealthCheckPort") or "traffic-port"),
        path=raw.get("HealthCheckPath") if protocol in ("HTTP", "HTTPS") else None,
        interval=int(raw.get("HealthCheckIntervalSeconds") or 30),
        timeout=int(raw.get("HealthCheckTimeoutSeconds") or 10),
        healthy_threshold=int(raw.get("HealthyThresholdCount") or 3),
        unhealthy_threshold=int(raw.get("UnhealthyThresholdCount") or 3))


def target_group(client: AwsClient, raw: dict[str, Any], tags: dict[str, str], *,
                 details: bool = True) -> ObservedTargetGroup:
    """A target group with (when `details`) its registered targets and attributes."""
    arn = raw["TargetGroupArn"]
    targets: frozenset[str] = frozenset()
    unhealthy: tuple[str, ...] = ()
    attributes: dict[str, str] | None = None
    counts: TargetHealth | None = None
    if details:
        health = client.elbv2("DescribeTargetHealth", TargetGroupArn=arn)
        states = {d["Target"]["Id"]: d.get("TargetHealth", {}).get("State", "")
                  for d in health.get("TargetHealthDescriptions", [])}
        targets = frozenset(t for t, s in states.items() if s != "draining")
        unhealthy = tuple(sorted(t for t, s in states.items() if s == "unhealthy"))
        # initial, unused and unavailable targets take no traffic: not healthy, still counted
        counts = TargetHealth(sum(1 for t in targets if states[t] == "healthy"), len(targets))
        attributes = {a["Key"]: str(a.get("Value", "")) for a in client.elbv2(
            "DescribeTargetGroupAttributes", TargetGroupArn=arn).get("Attributes", [])}
    return ObservedTargetGroup(
        arn=arn, name=raw["TargetGroupName"], protocol=raw.get("Protocol", ""),
        port=int(raw.get("Port") or 0), target_type=raw.get("TargetType", "instance"),
        vpc_id=raw.get("VpcId", ""), health_check=health_check_of(raw),
        load_balancer_arns=tuple(raw.get("LoadBalancerArns", [])), tags=tags,
        attributes=attributes, targets=targets, unhealthy=unhealthy, health=counts)


def observe_balancer(client: AwsClient, cluster: str, balancer: str,
                     raw_lb: dict[str, Any] | None, *, lb_attributes: bool,
                     raw_groups: Iterable[dict[str, Any]] = (), group_names: Iterable[str] = (),
                     details: bool = True, tagged_groups: Iterable[str] = ()) -> Observed:
    """The NLB `raw_lb` (found by name, or None), its listeners and its target groups that are
    ours, our rules on `raw_groups` and the groups among them called one of `group_names`.
    `tagged_groups`: ARNs of groups tagged for the balancer (a cached scan), checked when the
    NLB does not link them. NotOwnedError when the NLB exists without our tags."""
    raw_groups = list(raw_groups)
    rules = rules_of(raw_groups, balancer)
    managed = groups.observed(raw_groups, group_names)
    if raw_lb is None:
        return Observed(None, {}, (), rules, managed)
    lb_arn = raw_lb["LoadBalancerArn"]
    listeners = tuple(
        ObservedListener(li["ListenerArn"], int(li["Port"]), li.get("Protocol", ""),
                         _forward_target(li.get("DefaultActions", [])))
        for page in client.pages("elbv2", "DescribeListeners", LoadBalancerArn=lb_arn)
        for li in page.get("Listeners", []))
    raw_tgs = _target_groups(client, LoadBalancerArn=lb_arn)
    # a group a listener forwards to is attached, but not every API (moto) says so; a group
    # tagged for us that no load balancer uses any more (a crash between switching a listener
    # and deleting the old group) is read too, and deleted as not desired
    known = {tg["TargetGroupArn"] for tg in raw_tgs}
    linked = {li.target_group_arn for li in listeners if li.target_group_arn} - known
    stray = set(tagged_groups) - known - linked
    raw_tgs += existing_target_groups(client, sorted(linked)) if linked else []
    raw_tgs += [tg for tg in existing_target_groups(client, sorted(stray))
                if set(tg.get("LoadBalancerArns") or ()) <= {lb_arn}] if stray else []
    tags = describe_tags(client, [lb_arn] + [tg["TargetGroupArn"] for tg in raw_tgs])
    if not names.is_owned(tags.get(lb_arn, {}), cluster, balancer):
        raise NotOwnedError("load balancer", raw_lb.get("LoadBalancerName", ""))
    attrs = None
    if lb_attributes:
        attrs = {a["Key"]: str(a.get("Value", "")) for a in client.elbv2(
            "DescribeLoadBalancerAttributes", LoadBalancerArn=lb_arn).get("Attributes", [])}
    found = {tg["TargetGroupName"]: target_group(client, tg, tags.get(tg["TargetGroupArn"], {}),
                                                 details=details)
             for tg in raw_tgs
             if names.is_owned(tags.get(tg["TargetGroupArn"], {}), cluster, balancer)}
    return Observed(load_balancer(raw_lb, tags.get(lb_arn, {}), attrs), found, listeners, rules,
                    managed)


def _target_groups(client: AwsClient, **params: Any) -> list[dict[str, Any]]:
    """DescribeTargetGroups; "none found" (how moto answers for a bare NLB) is empty."""
    try:
        return [tg for page in client.pages("elbv2", "DescribeTargetGroups", **params)
                for tg in page.get("TargetGroups", [])]
    except ApiError as exc:
        if exc.code == "TargetGroupNotFound":
            return []
        raise


def _forward_target(actions: list[dict[str, Any]]) -> str | None:
    for action in actions:
        if action.get("Type") == "forward":
            if action.get("TargetGroupArn"):
                return str(action["TargetGroupArn"])
            groups = action.get("ForwardConfig", {}).get("TargetGroups", [])
            if groups:
                return str(groups[0]["TargetGroupArn"])
    return None


def target_group_by_name(client: AwsClient,
                         name: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    """One target group and its tags, or None (used to adopt what a crash left behind)."""
    try:
        found = client.elbv2("DescribeTargetGroups", Names=[name]).get("TargetGroups", [])
    except ApiError as exc:
        if exc.code == "TargetGroupNotFound":
            return None
        raise
    if not found:
        return None
    arn = found[0]["TargetGroupArn"]
    return found[0], describe_tags(client, [arn]).get(arn, {})
