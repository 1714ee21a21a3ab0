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

from providers.spec import TargetHealth

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
    name: str = ""
    vpc_id: str = ""


@dataclass(frozen=True, slots=True)
class Discovered:
    """What `desired` needs from AWS: the node instances, the VPC's subnets and CIDRs, and the
    instances' security groups (with tags, to pick the node group as upstream does)."""

    vpc_id: str
    vpc_cidrs: tuple[str, ...]
    instances: tuple[Instance, ...] = ()
    subnets: tuple[Subnet, ...] = ()
    security_groups: tuple[SecurityGroup, ...] = ()
    named_groups: tuple[tuple[str, str], ...] = ()
    """Name tag -> group ID, for the names given in `aws-load-balancer-security-groups`."""


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
    security_groups: tuple[str, ...] = ()
    """Attached at creation (an NLB gets security groups then or never): group IDs, or the
    names of the groups in `DesiredNlb.security_groups` (resolved by `deploy`). Empty only for
    a legacy NLB that exists without any."""


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
    """One ingress permission lbctl owns: (group, protocol, port, source) is its identity.

    `source` is a CIDR or a security group (an SG-referencing rule, `UserIdGroupPairs`). In the
    desired model `group_id` and `source` may name a group of `DesiredNlb.security_groups`
    that may not exist yet; `deploy` resolves names to IDs before it compares."""

    group_id: str
    protocol: str  # tcp | udp
    port: int
    source: str
    description: str

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.group_id, self.protocol, self.port, self.source)

    @property
    def from_group(self) -> bool:
        """True when the source is a security group (an ID or a managed group's name)."""
        return "/" not in self.source


@dataclass(frozen=True, slots=True)
class DesiredSecurityGroup:
    """A group lbctl creates and owns: `frontend` (one NLB) or `backend` (the cluster's)."""

    name: str
    role: str
    description: str
    vpc_id: str
    tags: tuple[tuple[str, str], ...]


SG_MANAGED, SG_ANNOTATION, SG_LEGACY = "managed", "annotation", "legacy"


@dataclass(frozen=True, slots=True)
class DesiredNlb:
    load_balancer: DesiredLoadBalancer
    target_groups: tuple[DesiredTargetGroup, ...]
    listeners: tuple[DesiredListener, ...]
    sg_rules: tuple[SgRule, ...]
    """On the node groups, and (managed mode) on the frontend group."""
    security_groups: tuple[DesiredSecurityGroup, ...] = ()
    """The groups lbctl must own for this NLB (frontend and/or the shared backend)."""
    security_group_mode: str = SG_MANAGED
    """managed (frontend + backend) | annotation (the user's groups, plus the backend when
    `manage-backend-security-group-rules` is true) | legacy (an NLB made without groups)."""
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
    security_groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ObservedSecurityGroup:
    """A group found under one of the names lbctl gives its groups (ours only by its tags)."""

    id: str
    name: str
    vpc_id: str
    tags: dict[str, str] = field(default_factory=dict)


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
    health: TargetHealth | None = None
    """DescribeTargetHealth's counts (targets in state `healthy` of those not draining); None
    when the group's health was not read."""


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
    security_groups: tuple[ObservedSecurityGroup, ...] = ()
    """Groups carrying the names of this balancer's frontend or the cluster's backend."""


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
