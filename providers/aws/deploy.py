"""Make AWS match the desired NLB: diff against what was observed and write only real
differences, in an order that is safe to interrupt at any point.

Order (each step only needs what the previous ones made, so a crash anywhere leaves objects a
re-run finds by name and tags and finishes): security groups lbctl owns (frontend, backend;
unique names per VPC, a crash-left one is adopted) -> load balancer (looked up first, never
created twice; created with its security groups, the only time AWS takes them) -> target
groups (a crash-left group with our name and tags is adopted) -> targets (deregister before
register, 100 a call) -> listeners (create, or switch the default action) -> attributes
(changed keys only) -> target groups no longer wanted (after no listener uses them) -> ingress
rules on the node and frontend groups (authorize missing, revoke ours no longer wanted) -> a
frontend group no longer used. The security group steps live in `deploy_groups`.
A target group whose protocol, port or target type changes gets a new name (see `names`), so
replacement falls out of the order: create the new group, switch the listener, delete the old.

`Deployer(dry_run=True)` walks the same code and only records the words: that is `plan`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from providers.errors import NotOwnedError

from . import names, observe
from .cleanup import delete_target_group, ignore_missing
from .client import ApiError, AwsClient
from .deploy_groups import GroupSteps
from .model import (
    DesiredNlb,
    DesiredTargetGroup,
    HealthCheckSettings,
    Observed,
    ObservedTargetGroup,
)

log = logging.getLogger(__name__)

TARGETS_PER_CALL = 100
LB_ATTRIBUTE_DEFAULTS = {"load_balancing.cross_zone.enabled": "false"}


def target_group_defaults(protocol: str, target_type: str) -> dict[str, str]:
    """AWS's value for each attribute lbctl manages, for a group that never set it."""
    keep_ip = "true" if target_type == "instance" or protocol != "TCP" else "false"
    return {"proxy_protocol_v2.enabled": "false", "preserve_client_ip.enabled": keep_ip,
            "deregistration_delay.timeout_seconds": "300"}


@dataclass
class Result:
    """What the deploy left: the NLB's identity and the words of every write (made or planned)."""

    words: list[str] = field(default_factory=list)
    lb_arn: str | None = None
    dns_name: str = ""
    state: str = ""
    target_group_arns: dict[str, str] = field(default_factory=dict)
    security_groups: tuple[str, ...] = ()
    """The NLB's security groups (IDs; names in a dry run)."""


class Deployer(GroupSteps):
    """One pass of desired-vs-observed for one balancer; `run()` returns the Result."""

    def __init__(self, client: AwsClient, desired: DesiredNlb, observed: Observed, *,
                 cluster: str, balancer: str, dry_run: bool = False,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self.d, self.o = client, desired, observed
        self.cluster, self.balancer, self.dry_run, self.sleep = cluster, balancer, dry_run, sleep
        self.result = Result()
        self.groups: dict[str, ObservedTargetGroup] = dict(observed.target_groups)
        self.group_ids: dict[str, str] = {}

    def _write(self, words: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Record `words`; unless dry-running, make the call."""
        self.result.words.append(words)
        return None if self.dry_run else call(*args, **kwargs)

    def run(self) -> Result:
        self.managed_groups()
        self.load_balancer()
        self.target_groups()
        self.targets()
        self.listeners()
        self.attributes()
        self.old_target_groups()
        self.rules()
        self.old_groups()
        return self.result

    # -- load balancer ---------------------------------------------------------------------
    def load_balancer(self) -> None:
        d, o, r = self.d.load_balancer, self.o.load_balancer, self.result
        r.security_groups = tuple(self.attached())
        if o is not None and (o.scheme != d.scheme or o.type != d.type):
            self._write(f"replace load balancer {d.name} ({o.type}/{o.scheme} -> "
                        f"{d.type}/{d.scheme}; its DNS name changes)", self._drop_lb, o.arn)
            self.o = Observed(None, self.o.target_groups, (), self.o.sg_rules,
                              self.o.security_groups)
            o = None
        if o is None:
            groups = f" with security groups {', '.join(self.attached())}" if self.attached() \
                else ""
            raw = self._write(
                f"create {d.scheme} network load balancer {d.name} in "
                f"{', '.join(m.subnet_id for m in d.subnet_mappings)}{groups}", self._create_lb)
            if raw is not None:
                r.lb_arn, r.dns_name = raw["LoadBalancerArn"], raw.get("DNSName", "")
                r.state = raw.get("State", {}).get("Code", "provisioning")
            return
        r.lb_arn, r.dns_name, r.state = o.arn, o.dns_name, o.state
        wanted = tuple(sorted(m.subnet_id for m in d.subnet_mappings))
        if wanted != o.subnet_ids:
            self._write(f"set subnets of {d.name}: {', '.join(o.subnet_ids)} -> "
                        f"{', '.join(wanted)}", self.client.elbv2, "SetSubnets",
                        LoadBalancerArn=o.arn, SubnetMappings=_subnet_mappings(d.subnet_mappings))
        if d.ip_address_type != o.ip_address_type:
            self._write(f"set IP address type of {d.name} to {d.ip_address_type}",
                        self.client.elbv2, "SetIpAddressType", LoadBalancerArn=o.arn,
                        IpAddressType=d.ip_address_type)
        self.nlb_groups(o.arn, o.security_groups)
        self._tags(o.arn, d.name, o.tags, d.tags)

    def _create_lb(self) -> dict[str, Any]:
        d = self.d.load_balancer
        groups = {"SecurityGroups": self.attached()} if self.attached() else {}
        try:
            found: dict[str, Any] = self.client.elbv2(
                "CreateLoadBalancer", Name=d.name, Type=d.type, Scheme=d.scheme,
                IpAddressType=d.ip_address_type,
                SubnetMappings=_subnet_mappings(d.subnet_mappings),
                Tags=names.tag_list(d.tags), **groups)["LoadBalancers"][0]
            return found
        except ApiError as exc:
            if exc.code != "DuplicateLoadBalancerName":
                raise
        raw = observe.find_load_balancer(self.client, d.name)  # created meanwhile
        if raw is None:
            raise ApiError("CreateLoadBalancer", "DuplicateLoadBalancerName", d.name)
        tags = observe.describe_tags(self.client, [raw["LoadBalancerArn"]])
        if not names.is_owned(tags.get(raw["LoadBalancerArn"], {}), self.cluster, self.balancer):
            raise NotOwnedError("load balancer", d.name)
        return raw

    def _drop_lb(self, arn: str) -> None:
        for li in self.o.listeners:
            ignore_missing(self.client.elbv2, "DeleteListener", ListenerArn=li.arn)
        ignore_missing(self.client.elbv2, "DeleteLoadBalancer", LoadBalancerArn=arn)

    def _tags(self, arn: str, name: str, have: dict[str, str],
              want: Iterable[tuple[str, str]]) -> None:
        missing = [(k, v) for k, v in want if have.get(k) != v]
        if missing:
            self._write(f"tag {name}: {', '.join(k for k, _ in missing)}", self.client.elbv2,
                        "AddTags", ResourceArns=[arn], Tags=names.tag_list(missing))

    # -- target groups ---------------------------------------------------------------------
    def target_groups(self) -> None:
        for tg in self.d.target_groups:
            have = self.groups.get(tg.name)
            if have is None:
                have = self._write(f"create target group {tg.name} ({tg.protocol} "
                                   f"{tg.target_type}:{tg.port})", self._create_tg, tg)
                if have is None:  # dry run
                    continue
                self.groups[tg.name] = have
            self.result.target_group_arns[tg.name] = have.arn
            if have.health_check != tg.health_check:
                self._write(f"change health check of {tg.name}: {_hc(have.health_check)} -> "
                            f"{_hc(tg.health_check)}", self.client.elbv2, "ModifyTargetGroup",
                            TargetGroupArn=have.arn, **_hc_params(tg.health_check))
            self._tags(have.arn, tg.name, have.tags, tg.tags)

    def _create_tg(self, tg: DesiredTargetGroup) -> ObservedTargetGroup:
        try:
            raw = self.client.elbv2(
                "CreateTargetGroup", Name=tg.name, Protocol=tg.protocol, Port=tg.port,
                VpcId=tg.vpc_id, TargetType=tg.target_type, HealthCheckEnabled=True,
                Tags=names.tag_list(tg.tags), **_hc_params(tg.health_check))["TargetGroups"][0]
        except ApiError as exc:
            if exc.code != "DuplicateTargetGroupName":
                raise
            found = observe.target_group_by_name(self.client, tg.name)
            if found is None:
                raise
            raw, tags = found
            if not names.is_owned(tags, self.cluster, self.balancer):
                raise NotOwnedError("target group", tg.name) from exc
            log.info("adopting target group %s left by an earlier run", tg.name)
            return observe.target_group(self.client, raw, tags)
        return observe.target_group(self.client, raw, dict(tg.tags), details=False)

    def targets(self) -> None:
        for tg in self.d.target_groups:
            have = self.groups.get(tg.name)
            current = have.targets if have is not None else frozenset()
            gone = sorted(current - set(tg.targets))
            new = sorted(set(tg.targets) - current)
            arn = have.arn if have is not None else tg.name
            for chunk in _chunks(gone, TARGETS_PER_CALL):
                self._write(f"deregister {', '.join(chunk)} from {tg.name}", self.client.elbv2,
                            "DeregisterTargets", TargetGroupArn=arn,
                            Targets=[{"Id": t} for t in chunk])
            for chunk in _chunks(new, TARGETS_PER_CALL):
                self._write(f"register {', '.join(chunk)} in {tg.name}", self.client.elbv2,
                            "RegisterTargets", TargetGroupArn=arn,
                            Targets=[{"Id": t} for t in chunk])

    # -- listeners -------------------------------------------------------------------------
    def listeners(self) -> None:
        lb = self.result.lb_arn or self.d.load_balancer.name
        by_port = {li.port: li for li in self.o.listeners}
        for want in self.d.listeners:
            tg_arn = self.result.target_group_arns.get(want.target_group, want.target_group)
            have = by_port.pop(want.port, None)
            if have is None:
                self._write(f"create listener {want.protocol}:{want.port} -> {want.target_group}",
                            self.client.elbv2, "CreateListener", LoadBalancerArn=lb,
                            Protocol=want.protocol, Port=want.port,
                            DefaultActions=_forward(tg_arn))
            elif have.protocol != want.protocol or have.target_group_arn != tg_arn:
                self._write(f"switch listener {have.protocol}:{want.port} to "
                            f"{want.protocol} -> {want.target_group}", self.client.elbv2,
                            "ModifyListener", ListenerArn=have.arn,
                            DefaultActions=_forward(tg_arn),
                            **({"Protocol": want.protocol} if have.protocol != want.protocol
                               else {}))
        for gone in by_port.values():
            self._write(f"delete listener {gone.protocol}:{gone.port}", ignore_missing,
                        self.client.elbv2, "DeleteListener", ListenerArn=gone.arn)

    # -- attributes ------------------------------------------------------------------------
    def attributes(self) -> None:
        d, o = self.d.load_balancer, self.o.load_balancer
        have = (o.attributes if o is not None else None) or {}
        changed = [(k, v) for k, v in d.attributes
                   if have.get(k, LB_ATTRIBUTE_DEFAULTS.get(k)) != v]
        if changed:
            self._write(f"set {_kv(changed)} on {d.name}", self.client.elbv2,
                        "ModifyLoadBalancerAttributes", LoadBalancerArn=self.result.lb_arn,
                        Attributes=[{"Key": k, "Value": v} for k, v in changed])
        for tg in self.d.target_groups:
            group = self.groups.get(tg.name)
            current = (group.attributes if group is not None else None) or {}
            defaults = target_group_defaults(tg.protocol, tg.target_type)
            diff = [(k, v) for k, v in tg.attributes if current.get(k, defaults.get(k)) != v]
            arn = self.result.target_group_arns.get(tg.name)
            if diff:
                self._write(f"set {_kv(diff)} on {tg.name}", self.client.elbv2,
                            "ModifyTargetGroupAttributes", TargetGroupArn=arn,
                            Attributes=[{"Key": k, "Value": v} for k, v in diff])

    def old_target_groups(self) -> None:
        wanted = {tg.name for tg in self.d.target_groups}
        for name, group in sorted(self.o.target_groups.items()):
            if name not in wanted:
                self._write(f"delete target group {name}", delete_target_group, self.client,
                            group.arn, self.sleep)


def _subnet_mappings(mappings: Iterable[Any]) -> list[dict[str, str]]:
    out = []
    for m in mappings:
        entry = {"SubnetId": m.subnet_id}
        if m.allocation_id:
            entry["AllocationId"] = m.allocation_id
        if m.private_ipv4:
            entry["PrivateIPv4Address"] = m.private_ipv4
        out.append(entry)
    return out


def _hc_params(hc: HealthCheckSettings) -> dict[str, Any]:
    params: dict[str, Any] = {
        "HealthCheckProtocol": hc.protocol, "HealthCheckPort": hc.port,
        "HealthCheckIntervalSeconds": hc.interval, "HealthCheckTimeoutSeconds": hc.timeout,
        "HealthyThresholdCount": hc.healthy_threshold,
        "UnhealthyThresholdCount": hc.unhealthy_threshold}
    if hc.path:
        params["HealthCheckPath"] = hc.path
    return params


def _forward(tg_arn: str) -> list[dict[str, str]]:
    return [{"Type": "forward", "TargetGroupArn": tg_arn}]


def _hc(hc: HealthCheckSettings) -> str:
    where = f"{hc.port}{hc.path or ''}"
    return (f"{hc.protocol} {where} every {hc.interval}s "
            f"{hc.healthy_threshold}/{hc.unhealthy_threshold}")


def _kv(pairs: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{k}={v}" for k, v in pairs)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
