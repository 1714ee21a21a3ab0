"""Printers for the core/v1 resources a LoadBalancer controller deals with.

Ports of `printService`, `printNode`, `printEndpoints`, `printNamespace`, `printConfigMap`,
`printSecret` and `printServiceAccount` from kube's `pkg/printers/internalversion/printers.go`;
the pod and event printers, longer, are in `pods`. Cells are computed from the stored
(defaulted) object exactly as the Go code reads the internal type.
"""

from __future__ import annotations

from typing import Any

from ..storage.store import Obj
from .base import AGE, NAME, Column, Printer
from .durations import since
from .format import NONE, format_labels, join_host_port
from .pods import EVENT, POD

CORE = "io.k8s.api.core.v1."
SPEC = CORE + "ServiceSpec"
NODE_INFO = CORE + "NodeSystemInfo"


def _age(obj: Obj) -> str:
    return since(obj.get("metadata", {}).get("creationTimestamp"))


def _name(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


# -- services -------------------------------------------------------------------------------
def _load_balancer_ips(status: Obj) -> str:
    """`loadBalancerStatusStringer` with wide=true (the apiserver always prints wide)."""
    found = {i.get("ip") or i.get("hostname") for i in (status.get("ingress") or [])}
    return ",".join(sorted(a for a in found if a))


def external_ip(svc: Obj) -> str:
    """`getServiceExternalIP`."""
    spec, external = svc.get("spec") or {}, (svc.get("spec") or {}).get("externalIPs") or []
    kind = spec.get("type", "")
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else NONE
    if kind == "LoadBalancer":
        lb = _load_balancer_ips((svc.get("status") or {}).get("loadBalancer") or {})
        if external:
            return ",".join([*(lb.split(",") if lb else []), *external])
        return lb or "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


def port_string(ports: Any) -> str:
    """`makePortString`: `80/TCP`, or `80:30008/TCP` with a nodePort."""
    pieces = []
    for port in ports or []:
        proto = port.get("protocol") or "TCP"
        node_port = port.get("nodePort") or 0
        pieces.append(f"{port.get('port')}:{node_port}/{proto}" if node_port > 0
                      else f"{port.get('port')}/{proto}")
    return ",".join(pieces)


def _service(svc: Obj) -> list[Any]:
    spec = svc.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [_name(svc), spec.get("type", ""), ips[0] if ips else NONE, external_ip(svc),
            port_string(spec.get("ports")) or NONE, _age(svc),
            format_labels(spec.get("selector"))]


SERVICE = Printer((
    NAME, Column("Type", doc=(SPEC, "type")), Column("Cluster-IP", doc=(SPEC, "clusterIP")),
    Column("External-IP", doc=(SPEC, "externalIPs")), Column("Port(s)", doc=(SPEC, "ports")),
    AGE, Column("Selector", doc=(SPEC, "selector"), priority=1)), _service)


# -- endpoints ------------------------------------------------------------------------------
def format_endpoints(ep: Obj, limit: int = 3) -> str:
    """`formatEndpoints` with all ports: `ip:port` per ready address and port."""
    subsets = ep.get("subsets") or []
    if not subsets:
        return NONE
    shown: list[str] = []
    count = 0
    for subset in subsets:
        addresses = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        if not ports:  # headless services with no ports
            count += len(addresses)
            shown.extend(addresses)
            continue
        for port in ports:
            count += len(addresses)
            shown.extend(join_host_port(ip, port.get("port")) for ip in addresses)
    text = ",".join(shown[:limit])
    return f"{text} + {count - limit} more..." if len(shown) > limit else text


ENDPOINTS = Printer((NAME, Column("Endpoints", doc=(CORE + "Endpoints", "subsets")), AGE),
                    lambda ep: [_name(ep), format_endpoints(ep), _age(ep)])


# -- nodes ----------------------------------------------------------------------------------
def node_roles(node: Obj) -> str:
    """`findNodeRoles`: node-role.kubernetes.io/<role> labels and kubernetes.io/role."""
    roles = set()
    for key, value in (node.get("metadata", {}).get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key[24:]:
            roles.add(key[24:])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or NONE


def node_status(node: Obj) -> str:
    conditions = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
    ready = conditions.get("Ready")
    status = ["Unknown"] if ready is None else [
        "Ready" if ready.get("status") == "True" else "NotReady"]
    if (node.get("spec") or {}).get("unschedulable"):
        status.append("SchedulingDisabled")
    return ",".join(status)


def _address(node: Obj, kind: str) -> str:
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == kind:
            return str(addr.get("address", ""))
    return NONE


def _node(node: Obj) -> list[Any]:
    info = (node.get("status") or {}).get("nodeInfo") or {}
    return [_name(node), node_status(node), node_roles(node), _age(node),
            info.get("kubeletVersion", ""), _address(node, "InternalIP"),
            _address(node, "ExternalIP"), info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


_ADDRESSES = (CORE + "NodeStatus", "addresses")
NODE = Printer((
    NAME, Column("Status", doc="The status of the node"),
    Column("Roles", doc="The roles of the node"), AGE,
    Column("Version", doc=(NODE_INFO, "kubeletVersion")),
    Column("Internal-IP", doc=_ADDRESSES, priority=1),
    Column("External-IP", doc=_ADDRESSES, priority=1),
    Column("OS-Image", doc=(NODE_INFO, "osImage"), priority=1),
    Column("Kernel-Version", doc=(NODE_INFO, "kernelVersion"), priority=1),
    Column("Container-Runtime", doc=(NODE_INFO, "containerRuntimeVersion"), priority=1)),
    _node)


# -- small ones -----------------------------------------------------------------------------
NAMESPACE = Printer(
    (NAME, Column("Status", doc="The status of the namespace"), AGE),
    lambda ns: [_name(ns), (ns.get("status") or {}).get("phase", ""), _age(ns)])
CONFIGMAP = Printer(
    (NAME, Column("Data", doc=(CORE + "ConfigMap", "data")), AGE),
    lambda cm: [_name(cm), len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
                _age(cm)])
SECRET = Printer(
    (NAME, Column("Type", doc=(CORE + "Secret", "type")),
     Column("Data", doc=(CORE + "Secret", "data")), AGE),
    lambda s: [_name(s), s.get("type", ""), len(s.get("data") or {}), _age(s)])
SERVICE_ACCOUNT = Printer(
    (NAME, Column("Secrets", doc=(CORE + "ServiceAccount", "secrets")), AGE),
    lambda sa: [_name(sa), len(sa.get("secrets") or []), _age(sa)])

PRINTERS: dict[str, Printer] = {
    "services": SERVICE, "endpoints": ENDPOINTS, "nodes": NODE, "namespaces": NAMESPACE,
    "configmaps": CONFIGMAP, "secrets": SECRET, "serviceaccounts": SERVICE_ACCOUNT,
    "pods": POD, "events": EVENT, "events.events.k8s.io": EVENT,
}
