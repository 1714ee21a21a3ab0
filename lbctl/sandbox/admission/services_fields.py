"""Reading a Service dict as Go would see it: the spec's constants and typed field readers.

Defaulting, allocation and validation all port Go code that works on typed structs, where a
missing string is "" and a missing port is 0. The requests they get are loosely typed JSON, so
every one of them reads fields through these small helpers instead of `dict.get` plus its own
type checks, and names Service types, IP family policies and the headless marker by the same
constants. Nothing here mutates its argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CLUSTER_IP = "ClusterIP"
NODE_PORT = "NodePort"
LOAD_BALANCER = "LoadBalancer"
EXTERNAL_NAME = "ExternalName"
HEADLESS = "None"
SINGLE_STACK = "SingleStack"
PREFER_DUAL_STACK = "PreferDualStack"
REQUIRE_DUAL_STACK = "RequireDualStack"
OTHER_FAMILY = {"IPv4": "IPv6", "IPv6": "IPv4"}
LB_SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"


def text(value: Any) -> str:
    """A string field: "" when missing or not a string."""
    return value if isinstance(value, str) else ""


def number(value: Any) -> int:
    """An integer field: 0 when missing or not an integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def strings(value: Any) -> list[str]:
    """A []string field: [] when missing; non-strings read as ""."""
    return [text(v) for v in value] if isinstance(value, list) else []


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def spec_of(svc: dict[str, Any]) -> dict[str, Any]:
    return mapping(svc.get("spec"))


def service_name(svc: Mapping[str, Any]) -> str:
    return text(mapping(svc.get("metadata")).get("name"))


def annotations_of(svc: dict[str, Any]) -> dict[str, Any]:
    return mapping(mapping(svc.get("metadata")).get("annotations"))


def ports_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    ports = spec.get("ports")
    return [p if isinstance(p, dict) else {} for p in ports] if isinstance(ports, list) else []


def service_type(spec: dict[str, Any]) -> str:
    return text(spec.get("type"))


def cluster_ips(spec: dict[str, Any]) -> list[str]:
    return strings(spec.get("clusterIPs"))


def ip_families(spec: dict[str, Any]) -> list[str]:
    return strings(spec.get("ipFamilies"))


def is_headless(spec: dict[str, Any]) -> bool:
    return cluster_ips(spec) == [HEADLESS]


def headless_first(spec: dict[str, Any]) -> bool:
    """clusterIPs[0] is "None", whatever follows: the allocator's test for a headless Service."""
    ips = cluster_ips(spec)
    return bool(ips) and ips[0] == HEADLESS


def headless_without_selector(spec: dict[str, Any]) -> bool:
    """clusterIP "None" and no selector: kube gives such Services both IP families."""
    return text(spec.get("clusterIP")) == HEADLESS and not mapping(spec.get("selector"))


def externally_accessible(spec: dict[str, Any]) -> bool:
    kind = service_type(spec)
    return kind in (LOAD_BALANCER, NODE_PORT) or (
        kind == CLUSTER_IP and bool(strings(spec.get("externalIPs"))))


def needs_cluster_ip(spec: dict[str, Any]) -> bool:
    return service_type(spec) != EXTERNAL_NAME


def needs_node_port(spec: dict[str, Any]) -> bool:
    return service_type(spec) in (NODE_PORT, LOAD_BALANCER)


def needs_health_check(spec: dict[str, Any]) -> bool:
    """`apiservice.NeedsHealthCheck`: a LoadBalancer with externalTrafficPolicy Local."""
    return (service_type(spec) == LOAD_BALANCER
            and text(spec.get("externalTrafficPolicy")) == "Local")


def node_ports(spec: dict[str, Any]) -> list[int]:
    """`collectServiceNodePorts`: every non-zero nodePort, in port order."""
    return [n for n in (number(p.get("nodePort")) for p in ports_of(spec)) if n]


def should_allocate_node_ports(spec: dict[str, Any]) -> bool:
    kind = service_type(spec)
    if kind == NODE_PORT:
        return True
    return kind == LOAD_BALANCER and spec.get("allocateLoadBalancerNodePorts") is not False
