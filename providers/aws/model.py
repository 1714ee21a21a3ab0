"""The data the AWS provider reasons about: what the VPC offers (`Discovered`), what lbctl wants
(`Desired*`) and what exists (`Observed*`).

Desired and observed are different types on purpose (the aws-load-balancer-controller's
`resLB` vs `sdkLB`): the desired model is built purely from the spec and is golden-tested as
JSON; the observed model is read from AWS by ownership; `deploy` diffs the two. No SDK type
appears here, so the pure parts never import boto3.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# -- what discovery found in the VPC ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instance:
    id: str
    vpc_id: str
    subnet_id: str
    zone: str
    security_groups: tuple[str, ...]
    private_ip: str = ""


@dataclass(frozen=True, slots=True)
class Subnet:
    id: str
    zone: str
    vpc_id: str
    cidr: str = ""
    tags: tuple[tuple[str, str], ...] = ()

    def tag(self, key: str) -> str | None:
        return dict(self.tags).get(key)


@dataclass(frozen=True, slots=True)
class SecurityGroup:
    id: str
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Discovered:
    """What `desired` needs from AWS: the node instances, the VPC's subnets and CIDRs, and the
    instances' security groups (with tags, to pick the node group as upstream does)."""

    vpc_id: str
    vpc_cidrs: tuple[str, ...]
    instances: tuple[Instance, ...] = ()
    subnets: tuple[Subnet, ...] = ()
    security_groups: tuple[SecurityGroup, ...] = ()


# -- desired ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubnetMapping:
    subnet_id: str
    allocation_id: str | None = None
    private_ipv4: str | None = None


@dataclass(frozen=True, slots=True)
class DesiredLoadBalancer:
    name: str
    scheme: str
    ip_address_type: str
    subnet_mappings: tuple[SubnetMapping, ...]
    tags: tuple[tuple[str, str], ...]
    attributes: tuple[tuple[str, str], ...]
    """Only the keys lbctl manages; others are left as they are."""
    type: str = "network"


@dataclass(frozen=True, slots=True)
class HealthCheckSettings:
    protocol: str
    port: str  # "traffic-port" or a number
    path: str | None
    interval: int
    timeout: int
    healthy_threshold: int
    unhealthy_threshold: int


@dataclass(frozen=True, slots=True)
class DesiredTargetGroup:
    name: str
    protocol: str  # TCP | UDP | TCP_UDP
    port: int  # the nodePort
    target_type: str  # instance | ip
    vpc_id: str
    health_check: HealthCheckSettings
    attributes: tuple[tuple[str, str], ...]
    targets: tuple[str, ...]  # instance IDs or IPs, sorted
    tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class DesiredListener:
    port: int
    protocol: str
    target_group: str  # name of a DesiredTargetGroup


@dataclass(frozen=True, slots=True, order=True)
class SgRule:
    """One ingress permission lbctl owns: (group, protocol, port, CIDR) is its identity."""

    group_id: str
    protocol: str  # tcp | udp
    port: int
    cidr: str
    description: str

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.group_id, self.protocol, self.port, self.cidr)


@dataclass(frozen=True, slots=True)
class DesiredNlb:
    load_balancer: DesiredLoadBalancer
    target_groups: tuple[DesiredTargetGroup, ...]
    listeners: tuple[DesiredListener, ...]
    sg_rules: tuple[SgRule, ...]
    notes: tuple[str, ...] = ()
    """Why the result is short of the spec (skipped targets); goes to status.degraded."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _plain(asdict(self))
        return out


# -- observed --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObservedLoadBalancer:
    arn: str
    name: str
    dns_name: str
    state: str
    scheme: str
    type: str
    ip_address_type: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] | None = None  # None: not read (nothing managed)


@dataclass(frozen=True, slots=True)
class ObservedTargetGroup:
    arn: str
    name: str
    protocol: str
    port: int
    target_type: str
    vpc_id: str
    health_check: HealthCheckSettings
    load_balancer_arns: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] | None = None
    targets: frozenset[str] = frozenset()
    unhealthy: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ObservedListener:
    arn: str
    port: int
    protocol: str
    target_group_arn: str | None


@dataclass(frozen=True, slots=True)
class Observed:
    load_balancer: ObservedLoadBalancer | None
    target_groups: dict[str, ObservedTargetGroup]  # by name
    listeners: tuple[ObservedListener, ...]
    sg_rules: tuple[SgRule, ...]  # ours only, on the groups looked at


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
