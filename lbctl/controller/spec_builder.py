"""`build_spec(service, nodes, config)`: the desired balancer, computed purely.

In the `endpoints` target mode (see `endpoints`) the caller also passes the Service's
EndpointSlices: the spec then names the pods that get traffic instead of the nodes.

No I/O, no clock, no randomness: the same inputs always give the same frozen spec, so specs can be
compared to decide whether anything changed, golden-tested as JSON and printed by `lbctl plan`.
Bad input (an unparsable source range, a requested IP that is not an IP) raises PermanentError
naming the field or annotation, which the controller turns into a Warning event and a condition.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Iterable

from providers.cluster import NodeView, ServiceView
from providers.errors import PermanentError
from providers.spec import (
    BalancerRef,
    HealthCheck,
    Listener,
    LoadBalancerSpec,
    ServiceRef,
    Target,
)

from .config import Config
from .endpoints import endpoints_for, target_mode
from .node_selection import select_nodes
from .records import EndpointSliceView

SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
REQUESTED_IPS_ANNOTATIONS = ("lbctl.io/load-balancer-ips", "metallb.io/loadBalancerIPs",
                             "metallb.universe.tf/loadBalancerIPs")
"""Aliases (MetalLB's current and older prefixes, lbctl's own): set to different addresses,
they are an error naming both."""
PROVIDER_ANNOTATION_PREFIXES = (
    "service.beta.kubernetes.io/", "service.kubernetes.io/", "lbctl.io/", "metallb.io/",
    "metallb.universe.tf/",
    "networking.gke.io/", "cloud.google.com/",
)
_ADDRESS_ORDER = {"InternalIP": 0, "ExternalIP": 1}


def balancer_name(cluster: str, service: ServiceView) -> str:
    """`lb-<ns>-<name>-<hash>`: deterministic per cluster and Service UID, <= 32 characters,
    starts with a letter, never upstream's `a<uid32>` (which another controller may delete)."""
    digest = hashlib.sha256(f"{cluster}/{service.uid}".encode()).digest()
    tag = base64.b32encode(digest).decode().lower()[:10]
    ns = re.sub(r"[^a-z0-9]", "", service.namespace.lower())[:6]
    name = re.sub(r"[^a-z0-9]", "", service.name.lower())[:8]
    return "-".join(p for p in ("lb", ns, name, tag) if p)


def _cidrs(values: Iterable[str], field: str) -> tuple[str, ...]:
    out = []
    for raw in values:
        text = raw.strip()
        if not text:
            continue
        try:
            out.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise PermanentError(field, f"{text!r} is not a CIDR") from None
    return tuple(out)


def source_ranges(service: ServiceView) -> tuple[str, ...]:
    """spec.loadBalancerSourceRanges, else the annotation, else everyone (per IP family)."""
    if service.source_ranges:
        return _cidrs(service.source_ranges, "spec.loadBalancerSourceRanges")
    note = service.annotations.get(SOURCE_RANGES_ANNOTATION)
    if note is not None and note.strip():
        field = f"metadata.annotations[{SOURCE_RANGES_ANNOTATION}]"
        return _cidrs(note.split(","), field)
    everyone = {"IPv4": "0.0.0.0/0", "IPv6": "::/0"}
    return tuple(everyone[f] for f in service.ip_families if f in everyone) or ("0.0.0.0/0",)


def requested_ips(service: ServiceView) -> tuple[str, ...]:
    """Addresses the Service asks for: loadBalancerIP, or lbctl's/MetalLB's annotation."""
    found: list[tuple[str, str]] = []
    if service.load_balancer_ip:
        found.append(("spec.loadBalancerIP", service.load_balancer_ip))
    for key in REQUESTED_IPS_ANNOTATIONS:
        found += [(f"metadata.annotations[{key}]", p.strip())
                  for p in service.annotations.get(key, "").split(",") if p.strip()]
    out: list[str] = []
    by_field: dict[str, set[str]] = {}
    for field, text in found:  # every value valid first: a bad one is named as such
        try:
            ip = str(ipaddress.ip_address(text))
        except ValueError:
            raise PermanentError(field, f"{text!r} is not an IP address") from None
        by_field.setdefault(field, set()).add(ip)
        if ip not in out:
            out.append(ip)
    asked = [(f, ips) for f, ips in by_field.items() if f.startswith("metadata.")]
    for field, ips in asked[1:]:  # aliases set to different addresses
        if ips != asked[0][1]:
            first = asked[0][0][len("metadata.annotations["):-1]
            raise PermanentError(field, f'"{",".join(sorted(ips))}" disagrees with {first} '
                                        f'("{",".join(sorted(asked[0][1]))}")')
    return tuple(out)


def health_check(service: ServiceView) -> HealthCheck:
    if service.external_traffic_policy == "Local" and service.health_check_node_port:
        return HealthCheck("HTTP", service.health_check_node_port, "/healthz")
    return HealthCheck("TCP", None)


def targets(nodes: Iterable[NodeView]) -> tuple[Target, ...]:
    out = []
    for node in select_nodes(nodes):
        addrs = sorted((a for a in node.addresses if a[0] in _ADDRESS_ORDER),
                       key=lambda a: _ADDRESS_ORDER[a[0]])
        out.append(Target(node.name, node.provider_id, tuple(a for _, a in addrs), node.zone))
    return tuple(out)


def build_spec(service: ServiceView, nodes: Iterable[NodeView], config: Config, *,
               annotation_prefixes: tuple[str, ...] = (),
               slices: Iterable[EndpointSliceView] = (),
               default_target_mode: str = "nodePort") -> LoadBalancerSpec:
    """The balancer `service` should have, given the cluster's nodes and the config.
    `annotation_prefixes` adds the provider's own annotation prefixes to the well-known ones;
    `default_target_mode` is the provider's (`Capabilities.default_target_mode`); `slices`
    are the Service's EndpointSlices, read only in the `endpoints` mode. In that mode the
    spec has no node targets and a TCP check of each endpoint's own port: no node is in the
    path, so neither nodePorts nor the Local policy's healthCheckNodePort mean anything."""
    prefixes = PROVIDER_ANNOTATION_PREFIXES + annotation_prefixes
    mode = target_mode(service, default_target_mode)
    direct = mode == "endpoints"
    ref = BalancerRef(balancer_name(config.cluster_name, service), config.cluster_name,
                      ServiceRef(service.namespace, service.name, service.uid))
    listeners = tuple(Listener(p.name, p.protocol, p.port, p.node_port) for p in service.ports)
    notes = tuple(sorted((k, v) for k, v in service.annotations.items()
                         if k.startswith(prefixes)))
    return LoadBalancerSpec(
        ref=ref,
        listeners=listeners,
        targets=() if direct else targets(nodes),
        health_check=HealthCheck("TCP", None) if direct else health_check(service),
        source_ranges=source_ranges(service),
        requested_ips=requested_ips(service),
        ip_families=service.ip_families,
        session_affinity=service.session_affinity,
        affinity_timeout_seconds=(service.affinity_timeout
                                  if service.session_affinity == "ClientIP" else None),
        external_traffic_policy=service.external_traffic_policy,
        load_balancer_class=service.load_balancer_class,
        annotations=notes,
        target_mode=mode,
        endpoints=endpoints_for(service, slices) if direct else (),
    )
