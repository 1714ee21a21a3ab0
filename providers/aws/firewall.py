"""Which security groups an NLB carries and which ingress rules lbctl owns for it (pure).

Why groups on the NLB: AWS allows 60 inbound rules per security group by default. The old
scheme wrote, on every node group, one rule per (protocol, nodePort, source range) plus one per
(health port, VPC CIDR), so a cluster filled its node group after ~29 one-port Services. An NLB
can carry security groups (only if given at creation), so lbctl does what the AWS Load Balancer
Controller does for NLBs:

- managed (the default): every NLB gets a frontend group of its own, whose rules enforce
  loadBalancerSourceRanges on the listener ports (`0.0.0.0/0`, plus `::/0` for a dualstack NLB,
  when the Service sets none), and the cluster's shared backend group. Node groups admit the
  backend group: one rule per (protocol, nodePort), plus a TCP rule for the health-check port
  only when it is not already covered (Local's healthCheckNodePort, an annotation's port, or a
  UDP listener's TCP check). A one-port Cluster Service costs one rule per node group. Both
  groups keep AWS's default egress (everything), which is what lets the NLB reach the nodes.
- annotation (`aws-load-balancer-security-groups`): the user's groups replace the frontend
  group and, as in the ALBC, lbctl writes no node rules and attaches no backend group unless
  `aws-load-balancer-manage-backend-security-group-rules` is true.
- legacy: an NLB an older lbctl created without groups can never get any (AWS refuses), and
  lbctl does not replace it behind the user's back (its DNS name would change): its node rules
  stay per CIDR as before, and the Service is told so (a note in status.degraded).

Client IP preservation and `ip` targets: with groups on the NLB, a node rule whose source is the
NLB's (backend) group admits the NLB's traffic and health checks whatever source address the
target sees (client or NLB), so the old special case (adding the VPC CIDRs for `ip` targets
without client IP preservation) only remains on the legacy path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from providers.errors import PermanentError
from providers.spec import LoadBalancerSpec

from . import names
from .annotation_keys import SECURITY_GROUPS
from .annotation_reader import annotation_field, is_security_group_id
from .annotations import AwsOptions
from .model import (
    SG_ANNOTATION,
    SG_LEGACY,
    SG_MANAGED,
    DesiredListener,
    DesiredSecurityGroup,
    DesiredTargetGroup,
    Discovered,
    Instance,
    SgRule,
)
from .settings import AwsSettings

EVERYONE_V4, EVERYONE_V6 = "0.0.0.0/0", "::/0"
LEGACY_NOTE = ("this NLB was created without security groups (by an older lbctl) and AWS cannot "
               "add them: its node rules stay per source range; delete and recreate the "
               "Service to move it to security groups")


@dataclass(frozen=True, slots=True)
class Plan:
    """What `plan()` decided, in the shape `desired` assembles into a DesiredNlb."""

    mode: str
    attach: tuple[str, ...]
    """The NLB's groups: IDs, or names of `groups` (resolved by `deploy`)."""
    groups: tuple[DesiredSecurityGroup, ...]
    rules: tuple[SgRule, ...]


def node_security_group(instance: Instance, cluster: str, found: Discovered) -> str | None:
    """Upstream's choice: the only group, else the one tagged for the cluster, else the first."""
    if len(instance.security_groups) <= 1:
        return instance.security_groups[0] if instance.security_groups else None
    tagged = {g.id for g in found.security_groups
              if f"{names.K8S_CLUSTER_TAG_PREFIX}{cluster}" in dict(g.tags)}
    mine = sorted(g for g in instance.security_groups if g in tagged)
    return mine[0] if mine else sorted(instance.security_groups)[0]


def plan(spec: LoadBalancerSpec, options: AwsOptions, settings: AwsSettings, found: Discovered,
         groups: tuple[DesiredTargetGroup, ...], listeners: Iterable[DesiredListener],
         instances: list[Instance], notes: list[str], *, legacy: bool = False) -> Plan:
    """The NLB's groups, the groups lbctl must own and every rule lbctl owns for `spec`."""
    node_groups = sorted({sg for i in instances
                          if (sg := node_security_group(i, spec.ref.cluster, found))})
    if instances and not node_groups:
        notes.append("node instances have no security group; no node rules written")
    if legacy:
        notes.append(LEGACY_NOTE)
        return Plan(SG_LEGACY, (), (), _legacy_rules(spec, options, found, groups, node_groups))
    backend = DesiredSecurityGroup(
        name=names.backend_group_name(spec.ref.cluster), role="backend",
        description=f"lbctl: the NLBs of cluster {spec.ref.cluster}; nodes admit this group",
        vpc_id=found.vpc_id, tags=names.backend_tags(spec.ref.cluster, settings.extra_tags))
    if options.security_groups:
        attach = _user_groups(options.security_groups, found)
        if not options.manage_backend_rules:
            return Plan(SG_ANNOTATION, attach, (), ())
        rules = _node_rules(spec, groups, node_groups, backend.name)
        return Plan(SG_ANNOTATION, (*attach, backend.name), (backend,), rules)
    frontend_name = names.frontend_group_name(spec.name)
    frontend = DesiredSecurityGroup(
        name=frontend_name, role="frontend",
        description=f"lbctl: clients of NLB {names.load_balancer_name(spec.name)}",
        vpc_id=found.vpc_id,
        tags=names.object_tags(spec.ref, settings.extra_tags, options.additional_tags,
                               ((names.TAG_GROUP_ROLE, "frontend"), ("Name", frontend_name))))
    rules = _node_rules(spec, groups, node_groups, backend.name)
    rules += _frontend_rules(spec, options, listeners, frontend.name)
    return Plan(SG_MANAGED, (frontend.name, backend.name), (frontend, backend),
                _unique(rules))


def _user_groups(wanted: tuple[str, ...], found: Discovered) -> tuple[str, ...]:
    by_name = dict(found.named_groups)
    out = []
    for entry in wanted:
        group = entry if is_security_group_id(entry) else by_name.get(entry)
        if group is None:
            raise PermanentError(annotation_field(SECURITY_GROUPS),
                                 f"no security group named {entry!r} (Name tag) in "
                                 f"{found.vpc_id}")
        out.append(group)
    return tuple(dict.fromkeys(out))


def _protocols(protocol: str) -> list[str]:
    return [p.lower() for p in protocol.split("_")]


def _health_port(tg: DesiredTargetGroup) -> int:
    return tg.port if tg.health_check.port == "traffic-port" else int(tg.health_check.port)


def _node_rules(spec: LoadBalancerSpec, groups: tuple[DesiredTargetGroup, ...],
                node_groups: list[str], source: str) -> tuple[SgRule, ...]:
    """Per node group: (protocol, nodePort) and the TCP health port, from `source`."""
    traffic = names.rule_description(spec.name, "traffic")
    health = names.rule_description(spec.name, "health")
    wanted = [(proto, tg.port, traffic) for tg in groups for proto in _protocols(tg.protocol)]
    wanted += [("tcp", _health_port(tg), health) for tg in groups]
    return _unique(SgRule(sg, proto, port, source, description)
                   for sg in node_groups for proto, port, description in wanted)


def _frontend_rules(spec: LoadBalancerSpec, options: AwsOptions,
                    listeners: Iterable[DesiredListener], frontend: str) -> tuple[SgRule, ...]:
    sources = list(spec.source_ranges) or [EVERYONE_V4]
    if options.ip_address_type == "dualstack" and sources == [EVERYONE_V4]:
        sources.append(EVERYONE_V6)  # clients of a dualstack NLB may come over IPv6
    description = names.rule_description(spec.name, "frontend")
    return _unique(SgRule(frontend, proto, li.port, cidr, description)
                   for li in listeners for proto in _protocols(li.protocol) for cidr in sources)


def _legacy_rules(spec: LoadBalancerSpec, options: AwsOptions, found: Discovered,
                  groups: tuple[DesiredTargetGroup, ...],
                  node_groups: list[str]) -> tuple[SgRule, ...]:
    """The pre-security-group scheme, kept for NLBs that have none: nodePorts from the source
    ranges, health-check ports from the VPC CIDRs (traffic rules win on the same key), and the
    VPC CIDRs on the nodePorts for `ip` targets without client IP preservation (the NLB's own
    addresses connect then)."""
    traffic = names.rule_description(spec.name, "traffic")
    health = names.rule_description(spec.name, "health")
    vpc = found.vpc_cidrs
    wanted: list[tuple[str, int, str, str]] = []
    for tg in groups:
        sources = list(spec.source_ranges)
        if tg.target_type == "ip" and options.preserve_client_ip is not True:
            sources += vpc
        wanted += [(proto, tg.port, cidr, traffic) for proto in _protocols(tg.protocol)
                   for cidr in sources]
    wanted += [("tcp", _health_port(tg), cidr, health) for tg in groups for cidr in vpc]
    return _unique(SgRule(sg, proto, port, cidr, description)
                   for sg in node_groups for proto, port, cidr, description in wanted)


def _unique(rules: Iterable[SgRule]) -> tuple[SgRule, ...]:
    """One rule per key, the first kept (traffic before health), sorted."""
    out: dict[tuple[str, str, int, str], SgRule] = {}
    for rule in rules:
        out.setdefault(rule.key, rule)
    return tuple(sorted(out.values()))
