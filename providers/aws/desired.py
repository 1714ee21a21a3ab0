"""The desired NLB for one spec: a pure function of the spec, the annotations, the settings and
what discovery found, so every decision is golden-tested without AWS.

`desired()` picks the subnets (annotation, else one role-tagged subnet per zone), turns ports
into target groups and listeners (TCP and UDP on one port number become a TCP_UDP pair),
chooses health checks as upstream does (Cluster: TCP traffic-port 30 s 3/3; Local: HTTP
healthCheckNodePort `/healthz` 10 s 2/2; annotations override), maps nodes to targets (instance
IDs parsed from providerIDs, or node IPs) and asks `firewall` for the NLB's security groups and
the ingress rules lbctl owns. Anything it has to leave out (a node without an AWS instance ID)
becomes a note, not an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from providers.errors import PermanentError
from providers.spec import LoadBalancerSpec, Target

from . import firewall, names
from .annotation_keys import EIP_ALLOCATIONS, PRIVATE_IPV4_ADDRESSES, SUBNETS
from .annotation_reader import annotation_field, is_subnet_id
from .annotations import AwsOptions
from .model import (
    DesiredListener,
    DesiredLoadBalancer,
    DesiredNlb,
    DesiredTargetGroup,
    Discovered,
    HealthCheckSettings,
    Instance,
    Subnet,
    SubnetMapping,
)
from .settings import AwsSettings

SUBNETS_FIELD = annotation_field(SUBNETS)
EIPS_FIELD = annotation_field(EIP_ALLOCATIONS)
PRIVATE_IPS_FIELD = annotation_field(PRIVATE_IPV4_ADDRESSES)

CLUSTER_HEALTH = HealthCheckSettings("TCP", "traffic-port", None, 30, 10, 3, 3)
"""Upstream's NLB default for externalTrafficPolicy Cluster."""
LOCAL_HEALTH_INTERVAL, LOCAL_HEALTH_TIMEOUT, LOCAL_HEALTH_THRESHOLD = 10, 6, 2
"""Upstream's NLB default for Local: HTTP healthCheckNodePort /healthz."""

_PROVIDER_ID = re.compile(r"^aws://(?:/[^/]*)?/(i-[0-9a-f]+)$")
_BARE_ID = re.compile(r"^i-[0-9a-f]+$")


@dataclass(frozen=True, slots=True)
class Context:
    """Inputs besides the spec; `node_labels` only matters with target-node-labels."""

    options: AwsOptions
    settings: AwsSettings
    discovered: Discovered
    node_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def instance_id(provider_id: str) -> str | None:
    """`aws:///zone/i-x`, `aws:////i-x` or a bare `i-x` -> `i-x`; anything else -> None."""
    text = provider_id.strip()
    if _BARE_ID.fullmatch(text):
        return text
    match = _PROVIDER_ID.fullmatch(text)
    return match.group(1) if match else None


def options_for(spec: LoadBalancerSpec, parsed: AwsOptions) -> AwsOptions:
    """The options the NLB for `spec` is built with: the annotations' (`parsed`, read once per
    ensure), with `spec.loadBalancerIP` as the private addresses of an internal NLB; an
    internet-facing NLB takes its addresses from Elastic IPs, so a requested IP is refused."""
    if spec.requested_ips and parsed.scheme != "internal":
        raise PermanentError("spec.loadBalancerIP",
                             "an internet-facing NLB takes its addresses from Elastic IP "
                             f"allocations: use the {EIP_ALLOCATIONS} annotation")
    if spec.requested_ips and not parsed.private_ipv4_addresses:
        return replace(parsed, private_ipv4_addresses=spec.requested_ips)
    return parsed


def keeps_legacy_rules(existing: Mapping[str, Any] | None, scheme: str) -> bool:
    """Whether the NLB that exists (`existing`, DescribeLoadBalancers' item, or None) stays on
    the legacy per-CIDR node rules: AWS cannot add security groups to an NLB created without
    any, and replacing it would change its DNS name behind the user's back. One whose scheme
    changes is replaced anyway, and then gets groups."""
    return (existing is not None and not existing.get("SecurityGroups")
            and existing.get("Scheme") == scheme
            and existing.get("Type", "network") == "network")


def own_group_names(spec: LoadBalancerSpec, legacy: bool) -> tuple[str, ...]:
    """The security groups lbctl owns for this NLB (its frontend group and the cluster's
    backend group); none on the legacy path."""
    if legacy:
        return ()
    return (names.frontend_group_name(spec.name), names.backend_group_name(spec.ref.cluster))


def desired(spec: LoadBalancerSpec, options: AwsOptions, settings: AwsSettings,
            discovered: Discovered,
            node_labels: Mapping[str, Mapping[str, str]] | None = None, *,
            legacy: bool = False) -> DesiredNlb:
    """The NLB, target groups, listeners, security groups and rules `spec` needs. `legacy`: the
    NLB exists without security groups (see `firewall`)."""
    ctx = Context(options, settings, discovered, node_labels or {})
    tags = names.object_tags(spec.ref, settings.extra_tags, options.additional_tags)
    notes: list[str] = []
    lb = DesiredLoadBalancer(
        name=names.load_balancer_name(spec.name),
        scheme=options.scheme,
        ip_address_type=options.ip_address_type,
        subnet_mappings=subnet_mappings(spec, ctx),
        tags=tags,
        attributes=(() if options.cross_zone is None else
                    (("load_balancing.cross_zone.enabled", _bool(options.cross_zone)),)),
    )
    instances, targets = _targets(spec, ctx, notes)
    health = health_check(spec, options)
    groups: dict[str, DesiredTargetGroup] = {}
    listeners: list[DesiredListener] = []
    for port, protocol, node_port in _ports(spec):
        name = names.target_group_name(spec.name, protocol, node_port, options.target_type)
        groups.setdefault(name, DesiredTargetGroup(
            name=name, protocol=protocol, port=node_port, target_type=options.target_type,
            vpc_id=discovered.vpc_id, health_check=health,
            attributes=_target_group_attributes(options), targets=targets, tags=tags))
        listeners.append(DesiredListener(port, protocol, name))
    sg = firewall.plan(spec, options, settings, discovered, tuple(groups.values()), listeners,
                       instances, notes, legacy=legacy)
    return DesiredNlb(replace(lb, security_groups=sg.attach), tuple(groups.values()),
                      tuple(listeners), sg.rules, sg.groups, sg.mode, tuple(notes))


# -- load balancer ---------------------------------------------------------------------------
def subnet_mappings(spec: LoadBalancerSpec, ctx: Context) -> tuple[SubnetMapping, ...]:
    """The annotation's subnets in its order, else one role-tagged subnet per zone."""
    opts = ctx.options
    subnets = (_named_subnets(opts.subnets, ctx.discovered) if opts.subnets
               else _role_subnets(spec.ref.cluster, opts.scheme, ctx.discovered))
    eips, private = opts.eip_allocations, opts.private_ipv4_addresses
    if eips and opts.scheme != "internet-facing":
        raise PermanentError(EIPS_FIELD, "Elastic IPs need an internet-facing balancer")
    if private and opts.scheme != "internal":
        raise PermanentError(PRIVATE_IPS_FIELD, "private IPv4 addresses need an internal balancer")
    for values, where in ((eips, EIPS_FIELD), (private, PRIVATE_IPS_FIELD)):
        if values and len(values) != len(subnets):
            raise PermanentError(where, f"{len(values)} given for {len(subnets)} subnets "
                                        f"({', '.join(s.id for s in subnets)}); give one each")
    return tuple(SubnetMapping(s.id, eips[i] if eips else None, private[i] if private else None)
                 for i, s in enumerate(subnets))


def _named_subnets(wanted: tuple[str, ...], found: Discovered) -> list[Subnet]:
    by_id = {s.id: s for s in found.subnets}
    by_name = {s.tag("Name"): s for s in found.subnets if s.tag("Name")}
    out: list[Subnet] = []
    for entry in wanted:
        subnet = by_id.get(entry) if is_subnet_id(entry) else by_name.get(entry)
        if subnet is None:
            raise PermanentError(SUBNETS_FIELD, f"no subnet {entry!r} in {found.vpc_id}")
        if any(s.zone == subnet.zone for s in out):
            raise PermanentError(SUBNETS_FIELD, f"two subnets in zone {subnet.zone}; "
                                                "an NLB takes one per zone")
        out.append(subnet)
    return out


def _role_subnets(cluster: str, scheme: str, found: Discovered) -> list[Subnet]:
    role = names.ROLE_INTERNAL_ELB if scheme == "internal" else names.ROLE_ELB
    ours = f"{names.K8S_CLUSTER_TAG_PREFIX}{cluster}"
    best: dict[str, Subnet] = {}
    for subnet in sorted(found.subnets, key=lambda s: s.id):
        tags = dict(subnet.tags)
        if subnet.vpc_id != found.vpc_id or tags.get(role) not in ("", "1", "true"):
            continue
        other = any(k.startswith(names.K8S_CLUSTER_TAG_PREFIX) and k != ours for k in tags)
        if other and ours not in tags:
            continue  # another cluster's subnet
        held = best.get(subnet.zone)
        if held is None or (ours in tags and ours not in dict(held.tags)):
            best[subnet.zone] = subnet
    if not best:
        raise PermanentError(SUBNETS_FIELD, f"no subnet in {found.vpc_id} is tagged {role}; "
                                            "tag one per zone or name them in this annotation")
    return [best[zone] for zone in sorted(best)]


# -- target groups and listeners -------------------------------------------------------------
def _ports(spec: LoadBalancerSpec) -> list[tuple[int, str, int]]:
    """(port, protocol, nodePort) per listener; TCP+UDP on one port number -> TCP_UDP."""
    by_port: dict[int, dict[str, int]] = {}
    for i, li in enumerate(spec.listeners):
        if li.node_port is None:
            raise PermanentError("spec.allocateLoadBalancerNodePorts",
                                 f"spec.ports[{i}] has no nodePort; an NLB targets nodePorts")
        by_port.setdefault(li.port, {})[li.protocol] = li.node_port
    out: list[tuple[int, str, int]] = []
    for port, protocols in by_port.items():
        if len(protocols) == 1:
            (protocol, node_port), = protocols.items()
            out.append((port, protocol, node_port))
        elif len(set(protocols.values())) == 1:
            out.append((port, "TCP_UDP", next(iter(protocols.values()))))
        else:
            pairs = ", ".join(f"{p}->{n}" for p, n in sorted(protocols.items()))
            raise PermanentError("spec.ports", f"port {port} has TCP and UDP with different "
                                               f"nodePorts ({pairs}); an NLB needs one nodePort "
                                               "for a TCP_UDP listener")
    return out


def health_check(spec: LoadBalancerSpec, options: AwsOptions) -> HealthCheckSettings:
    """Upstream's defaults by traffic policy, then the health-check annotations."""
    hc = spec.health_check
    if hc.protocol == "HTTP" and hc.port is not None:
        base = HealthCheckSettings("HTTP", str(hc.port), hc.path or "/healthz",
                                   LOCAL_HEALTH_INTERVAL, LOCAL_HEALTH_TIMEOUT,
                                   LOCAL_HEALTH_THRESHOLD, LOCAL_HEALTH_THRESHOLD)
    else:
        base = CLUSTER_HEALTH
    protocol = (options.hc_protocol or base.protocol).upper()
    http = protocol in ("HTTP", "HTTPS")
    path = (options.hc_path or base.path or "/") if http else None
    default_timeout = base.timeout if protocol == base.protocol else (6 if http else 10)
    interval = options.hc_interval or base.interval
    if options.hc_timeout is None:
        # AWS refuses a timeout that is not below the interval: an interval annotation alone
        # (say 5 s) must not inherit the 10 s default timeout.
        default_timeout = min(default_timeout, max(2, interval - 1))
    return HealthCheckSettings(
        protocol=protocol,
        port=options.hc_port or base.port,
        path=path,
        interval=interval,
        timeout=options.hc_timeout or default_timeout,
        healthy_threshold=options.hc_healthy_threshold or base.healthy_threshold,
        unhealthy_threshold=options.hc_unhealthy_threshold or base.unhealthy_threshold,
    )


def _target_group_attributes(options: AwsOptions) -> tuple[tuple[str, str], ...]:
    attrs = {"proxy_protocol_v2.enabled": _bool(options.proxy_protocol)}
    if options.preserve_client_ip is not None:
        attrs["preserve_client_ip.enabled"] = _bool(options.preserve_client_ip)
    if options.deregistration_delay is not None:
        attrs["deregistration_delay.timeout_seconds"] = str(options.deregistration_delay)
    return tuple(sorted(attrs.items()))


def _targets(spec: LoadBalancerSpec, ctx: Context,
             notes: list[str]) -> tuple[list[Instance], tuple[str, ...]]:
    """The node instances (for security groups) and the target IDs to register."""
    known = {i.id: i for i in ctx.discovered.instances}
    instances: list[Instance] = []
    ids: set[str] = set()
    for target in _selected(spec.targets, ctx):
        iid = instance_id(target.provider_id)
        instance = known.get(iid) if iid else None
        if instance is not None and instance.vpc_id != ctx.discovered.vpc_id:
            notes.append(f"node {target.node}: instance {iid} is in {instance.vpc_id}, "
                         f"not {ctx.discovered.vpc_id}; skipped")
            continue
        if instance is not None:
            instances.append(instance)
        if ctx.options.target_type == "ip":
            ipv4 = next((a for a in target.addresses if "." in a), None)
            if ipv4 is None:
                notes.append(f"node {target.node}: no IPv4 address; skipped")
            else:
                ids.add(ipv4)
        elif iid is None:
            notes.append(f"node {target.node}: providerID {target.provider_id!r} is not an "
                         "AWS instance ID; skipped")
        elif instance is None:
            notes.append(f"node {target.node}: instance {iid} not found; skipped")
        else:
            ids.add(iid)
    return instances, tuple(sorted(ids))


def _selected(targets: tuple[Target, ...], ctx: Context) -> list[Target]:
    wanted = ctx.options.target_node_labels
    if not wanted:
        return list(targets)
    return [t for t in targets
            if all(ctx.node_labels.get(t.node, {}).get(k) == v for k, v in wanted)]


def _bool(value: bool) -> str:
    return "true" if value else "false"
