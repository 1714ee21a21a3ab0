"""Slim records of the four kinds the traffic process watches, decoded straight from raw JSON.

The traffic process keeps every Node, Service, Pod and EndpointSlice of the cluster in memory,
so it holds only the fields that decide what to serve and where to forward (frozen slots
dataclasses, not client models), and decodes defensively: a malformed object is skipped with a
log line, never a crash, because the API may store things the traffic side does not expect.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from ..nodes import SIMULATED, STOPPED

"""Node annotation: "true" powers the node off (every listener closed), removing it restarts."""
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")

Key = tuple[str, str]
"""(namespace, name); namespace is "" for cluster-scoped objects."""


def is_loopback(address: str | None) -> bool:
    """Only 127.0.0.0/8 addresses are ever bound or dialled by the traffic process."""
    if not address:
        return False
    try:
        return ipaddress.ip_address(address) in LOOPBACK
    except ValueError:
        return False


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta["name"])


@dataclass(frozen=True, slots=True)
class NodeRec:
    name: str
    ip: str | None
    """The InternalIP, the address kube-proxy serves NodePorts on."""
    simulated: bool
    stopped: bool


@dataclass(frozen=True, slots=True)
class ServicePortRec:
    name: str
    protocol: str
    node_port: int


@dataclass(frozen=True, slots=True)
class ServiceRec:
    namespace: str
    name: str
    type: str
    local: bool
    """externalTrafficPolicy: Local."""
    health_port: int
    """healthCheckNodePort, 0 when none."""
    ports: tuple[ServicePortRec, ...]
    affinity_seconds: int = 0
    """sessionAffinity ClientIP: how long a client IP keeps its endpoint (0: no affinity)."""


@dataclass(frozen=True, slots=True)
class PodRec:
    namespace: str
    name: str
    node: str
    ip: str
    running: bool
    created: str
    ports: tuple[tuple[int, str], ...]
    """Every declared (containerPort, protocol)."""


@dataclass(frozen=True, slots=True)
class EndpointRec:
    address: str
    node: str
    ready: bool
    serving: bool
    terminating: bool


@dataclass(frozen=True, slots=True)
class SliceRec:
    namespace: str
    service: str
    ports: tuple[tuple[str, int, str], ...]
    """(name, port, protocol) of each slice port that names a port number."""
    endpoints: tuple[EndpointRec, ...]


def _annotations(obj: dict[str, Any]) -> dict[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def parse_node(obj: dict[str, Any]) -> NodeRec:
    notes = _annotations(obj)
    addresses = (obj.get("status") or {}).get("addresses") or []
    ip = next((a.get("address") for a in addresses if a.get("type") == "InternalIP"), None)
    return NodeRec(name=str(obj["metadata"]["name"]), ip=ip,
                   simulated=notes.get(SIMULATED) == "true",
                   stopped=notes.get(STOPPED) == "true")


def parse_service(obj: dict[str, Any]) -> ServiceRec:
    ns, name = key_of(obj)
    spec = obj.get("spec") or {}
    ports = tuple(ServicePortRec(str(p.get("name") or ""), str(p.get("protocol") or "TCP"),
                                 int(p.get("nodePort") or 0))
                  for p in spec.get("ports") or [])
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":  # kube-proxy's default timeout: 3 hours
        config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        affinity = int(config.get("timeoutSeconds") or 10800)
    return ServiceRec(namespace=ns, name=name, type=str(spec.get("type") or "ClusterIP"),
                      local=spec.get("externalTrafficPolicy") == "Local",
                      health_port=int(spec.get("healthCheckNodePort") or 0), ports=ports,
                      affinity_seconds=affinity)


def parse_pod(obj: dict[str, Any]) -> PodRec:
    ns, name = key_of(obj)
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    containers = list(spec.get("containers") or [])
    # Sidecars (restartable init containers) run beside the main containers and serve too.
    containers += [c for c in spec.get("initContainers") or []
                   if c.get("restartPolicy") == "Always"]
    ports = tuple(sorted({(int(p["containerPort"]), str(p.get("protocol") or "TCP"))
                          for c in containers for p in c.get("ports") or []
                          if p.get("containerPort")}))
    return PodRec(namespace=ns, name=name, node=str(spec.get("nodeName") or ""),
                  ip=str(status.get("podIP") or ""), running=status.get("phase") == "Running",
                  created=str((obj.get("metadata") or {}).get("creationTimestamp") or ""),
                  ports=ports)


def parse_slice(obj: dict[str, Any]) -> SliceRec:
    ns, _ = key_of(obj)
    labels = (obj.get("metadata") or {}).get("labels") or {}
    ipv4 = obj.get("addressType", "IPv4") == "IPv4"
    ports = tuple((str(p.get("name") or ""), int(p["port"]), str(p.get("protocol") or "TCP"))
                  for p in obj.get("ports") or [] if p.get("port"))
    endpoints: list[EndpointRec] = []
    for ep in obj.get("endpoints") or [] if ipv4 else []:
        cond = ep.get("conditions") or {}
        # EndpointSlice semantics: an unknown `ready` means ready, an unknown `serving` means
        # whatever `ready` says, an unknown `terminating` means not terminating.
        ready = cond.get("ready") is not False
        serving = cond["serving"] is not False if cond.get("serving") is not None else ready
        terminating = cond.get("terminating") is True
        node = str(ep.get("nodeName") or "")
        endpoints.extend(EndpointRec(str(a), node, ready, serving, terminating)
                         for a in ep.get("addresses") or [])
    return SliceRec(namespace=ns, service=str(labels.get(SERVICE_NAME_LABEL) or ""),
                    ports=ports, endpoints=tuple(endpoints))
