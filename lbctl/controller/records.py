"""Decoding API objects (raw JSON dicts) into the slim records the controller caches.

Client models cost ~2.5x the memory of what a LoadBalancer controller needs (see the reference
figures), so informers decode each Service and Node straight into frozen `ServiceView` /
`NodeView` records: only the fields used, no managedFields, no last-applied annotation.
EndpointSlices (cached only once some Service uses the `endpoints` target mode) become
`EndpointSliceView`s defined here: the controller alone reads them, providers see the
endpoints chosen from them in the spec. Namespaces (cached only once a provider asks for
namespace labels) become `NamespaceView`s; providers see only their labels.
Decoding is total: a malformed field becomes a default, never an exception, because one bad
object must not stop the informer for every other Service.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from providers.cluster import Condition, Ingress, NodeView, ServicePort, ServiceView

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
"""Which Service an EndpointSlice belongs to (set by the EndpointSlice controller)."""


def _str_map(value: Any, drop: tuple[str, ...] = ()) -> MappingProxyType[str, str]:
    if not isinstance(value, dict):
        return MappingProxyType({})
    return MappingProxyType({str(k): str(v) for k, v in value.items()
                             if k not in drop and isinstance(v, str)})


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _port(raw: Any) -> ServicePort | None:
    if not isinstance(raw, dict) or _int(raw.get("port")) is None:
        return None
    target = raw.get("targetPort", raw["port"])
    return ServicePort(
        name=str(raw.get("name", "")), protocol=str(raw.get("protocol", "TCP")),
        port=raw["port"], node_port=_int(raw.get("nodePort")),
        target_port=target if isinstance(target, int | str) else raw["port"],
        app_protocol=raw.get("appProtocol") if isinstance(raw.get("appProtocol"), str) else None)


def _ingress(raw: Any) -> Ingress | None:
    if not isinstance(raw, dict):
        return None
    errors = tuple((p["port"], str(p.get("protocol", "TCP")), str(p["error"]))
                   for p in raw.get("ports") or []
                   if isinstance(p, dict) and _int(p.get("port")) is not None and p.get("error"))
    return Ingress(raw.get("ip"), raw.get("hostname"), raw.get("ipMode"), errors)


def _condition(raw: Any) -> Condition | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        return None
    return Condition(raw["type"], str(raw.get("status", "")), str(raw.get("reason", "")),
                     str(raw.get("message", "")), _int(raw.get("observedGeneration")) or 0,
                     str(raw.get("lastTransitionTime", "")))


def service_view(obj: dict[str, Any]) -> ServiceView:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = (obj.get("status") or {}).get("loadBalancer") or {}
    affinity = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
    ports = tuple(p for p in (_port(r) for r in spec.get("ports") or []) if p is not None)
    ingress = tuple(i for i in (_ingress(r) for r in status.get("ingress") or [])
                    if i is not None)
    conditions = tuple(c for c in (_condition(r) for r in
                                   (obj.get("status") or {}).get("conditions") or [])
                       if c is not None)
    return ServiceView(
        namespace=str(meta.get("namespace", "")), name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")), resource_version=str(meta.get("resourceVersion", "")),
        type=str(spec.get("type", "ClusterIP")), ports=ports,
        annotations=_str_map(meta.get("annotations"), (LAST_APPLIED,)),
        labels=_str_map(meta.get("labels")), finalizers=_strs(meta.get("finalizers")),
        deleting=bool(meta.get("deletionTimestamp")),
        load_balancer_class=spec.get("loadBalancerClass") or None,
        load_balancer_ip=spec.get("loadBalancerIP") or None,
        source_ranges=_strs(spec.get("loadBalancerSourceRanges")),
        session_affinity=str(spec.get("sessionAffinity", "None")),
        affinity_timeout=_int(affinity.get("timeoutSeconds")),
        external_traffic_policy=str(spec.get("externalTrafficPolicy") or "Cluster"),
        health_check_node_port=_int(spec.get("healthCheckNodePort")),
        ip_families=_strs(spec.get("ipFamilies")) or ("IPv4",),
        ip_family_policy=str(spec.get("ipFamilyPolicy") or "SingleStack"),
        cluster_ips=_strs(spec.get("clusterIPs")), external_ips=_strs(spec.get("externalIPs")),
        allocate_node_ports=spec.get("allocateLoadBalancerNodePorts", True) is not False,
        ingress=ingress, conditions=conditions, generation=_int(meta.get("generation")) or 0,
    )


def node_view(obj: dict[str, Any]) -> NodeView:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    addresses = tuple((str(a.get("type")), str(a.get("address")))
                      for a in status.get("addresses") or []
                      if isinstance(a, dict) and a.get("type") and a.get("address"))
    taints = tuple((str(t.get("key", "")), str(t.get("effect", "")))
                   for t in spec.get("taints") or [] if isinstance(t, dict))
    ready = any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [])
    return NodeView(
        name=str(meta.get("name", "")), uid=str(meta.get("uid", "")),
        provider_id=str(spec.get("providerID", "")), addresses=addresses,
        labels=_str_map(meta.get("labels")), taints=taints,
        deleting=bool(meta.get("deletionTimestamp")), ready=ready,
        unschedulable=bool(spec.get("unschedulable")),
    )


@dataclass(frozen=True, slots=True)
class SliceEndpoint:
    """One endpoint of a slice: its first address (kube-proxy uses only that one), where it
    runs and its conditions, decoded with the API's defaults (an unset `ready` means ready,
    an unset `serving` means what `ready` says, an unset `terminating` means not)."""

    address: str
    node: str = ""
    pod: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False


@dataclass(frozen=True, slots=True)
class EndpointSliceView:
    """An EndpointSlice as the `endpoints` target mode needs it."""

    namespace: str
    name: str
    service: str
    """The owning Service's name (label kubernetes.io/service-name)."""
    address_type: str
    ports: tuple[tuple[str, str, int], ...]
    """(name, protocol, port) of each slice port with a number."""
    endpoints: tuple[SliceEndpoint, ...]

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.service}"


def _slice_endpoint(raw: Any) -> SliceEndpoint | None:
    if not isinstance(raw, dict):
        return None
    addresses = _strs(raw.get("addresses"))
    if not addresses:
        return None
    cond: dict[str, Any] = raw["conditions"] if isinstance(raw.get("conditions"), dict) else {}
    ready = cond.get("ready") is not False
    serving = cond["serving"] is not False if cond.get("serving") is not None else ready
    ref: dict[str, Any] = raw["targetRef"] if isinstance(raw.get("targetRef"), dict) else {}
    node = raw.get("nodeName")
    return SliceEndpoint(
        address=addresses[0],
        node=sys.intern(node) if isinstance(node, str) else "",  # a few hundred distinct
        pod=str(ref.get("name") or "") if ref.get("kind", "Pod") == "Pod" else "",
        ready=ready, serving=serving, terminating=cond.get("terminating") is True)


def endpoint_slice_view(obj: dict[str, Any]) -> EndpointSliceView:
    meta = obj.get("metadata") or {}
    labels: dict[str, Any] = meta["labels"] if isinstance(meta.get("labels"), dict) else {}
    # names, protocols, namespaces and address types repeat across thousands of slices:
    # interned, each is held once (about a fifth of a slice's record)
    ports = tuple((sys.intern(str(p.get("name") or "")),
                   sys.intern(str(p.get("protocol") or "TCP")), p["port"])
                  for p in obj.get("ports") or []
                  if isinstance(p, dict) and _int(p.get("port")) is not None)
    endpoints = tuple(e for e in (_slice_endpoint(r) for r in obj.get("endpoints") or [])
                      if e is not None)
    return EndpointSliceView(
        namespace=sys.intern(str(meta.get("namespace", ""))), name=str(meta.get("name", "")),
        service=str(labels.get(SERVICE_NAME_LABEL) or ""),
        address_type=sys.intern(str(obj.get("addressType") or "IPv4")), ports=ports,
        endpoints=endpoints)


@dataclass(frozen=True, slots=True)
class NamespaceView:
    """A Namespace as pools' `namespaceSelectors` need it: its name and labels (read-only).
    Cached only once a provider asks for namespace labels (see `namespace_cache`)."""

    name: str
    labels: MappingProxyType[str, str]


def namespace_view(obj: dict[str, Any]) -> NamespaceView:
    meta = obj.get("metadata") or {}
    return NamespaceView(name=str(meta.get("name", "")), labels=_str_map(meta.get("labels")))
