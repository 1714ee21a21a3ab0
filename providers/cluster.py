"""What providers may see of the cluster: slim, immutable views of Services and Nodes, and
Namespaces' labels.

The controller's informers decode API objects straight into these records (no client models:
they cost several times the memory), and providers receive a read-only `ClusterView` of them for
decisions that span Services: IP address management, shared balancers. Records are frozen
slots dataclasses, so a provider can neither mutate the cache nor hold more than it needs.

Namespaces are cached only on demand: `namespace_labels` starts the controller's Namespace
informer on its first call, so a provider asks only when it needs them (the baremetal provider:
when some pool selects on namespace labels). Labels come back read-only; None means unknown (not
listed yet, or no such Namespace), which a provider must not mistake for "no labels".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    protocol: str
    port: int
    node_port: int | None
    target_port: int | str
    app_protocol: str | None = None


@dataclass(frozen=True, slots=True)
class Ingress:
    """One `status.loadBalancer.ingress[]` entry."""

    ip: str | None = None
    hostname: str | None = None
    ip_mode: str | None = None
    port_errors: tuple[tuple[int, str, str], ...] = ()  # (port, protocol, error)


@dataclass(frozen=True, slots=True)
class Condition:
    """One `status.conditions[]` entry (metav1.Condition)."""

    type: str
    status: str
    reason: str = ""
    message: str = ""
    observed_generation: int = 0
    last_transition_time: str = ""


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A Service as a LoadBalancer controller needs it."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    type: str
    ports: tuple[ServicePort, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    finalizers: tuple[str, ...] = ()
    deleting: bool = False
    load_balancer_class: str | None = None
    load_balancer_ip: str | None = None
    source_ranges: tuple[str, ...] = ()
    session_affinity: str = "None"
    affinity_timeout: int | None = None
    external_traffic_policy: str = "Cluster"
    health_check_node_port: int | None = None
    ip_families: tuple[str, ...] = ("IPv4",)
    ip_family_policy: str = "SingleStack"
    cluster_ips: tuple[str, ...] = ()
    external_ips: tuple[str, ...] = ()
    allocate_node_ports: bool = True
    ingress: tuple[Ingress, ...] = ()
    conditions: tuple[Condition, ...] = ()
    generation: int = 0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class NodeView:
    """A Node as a LoadBalancer controller needs it."""

    name: str
    uid: str
    provider_id: str
    addresses: tuple[tuple[str, str], ...]  # (type, address), e.g. ("InternalIP", "10.0.0.5")
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[tuple[str, str], ...] = ()  # (key, effect)
    deleting: bool = False
    ready: bool = True
    unschedulable: bool = False

    def addresses_of(self, kind: str) -> tuple[str, ...]:
        return tuple(a for t, a in self.addresses if t == kind)

    @property
    def zone(self) -> str:
        return self.labels.get("topology.kubernetes.io/zone", "")


class ClusterView(Protocol):
    """Read-only access to the controller's cache, for decisions spanning Services."""

    def services(self) -> Iterable[ServiceView]: ...
    def service(self, namespace: str, name: str) -> ServiceView | None: ...
    def nodes(self) -> Iterable[NodeView]: ...
    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        """The labels of Namespace `name`, read-only; None while unknown. The first call
        may start watching Namespaces (see the module docstring): ask only when needed."""
        ...


class StaticView:
    """A ClusterView over Services, Nodes and Namespaces held in memory (`lbctl plan`, which
    runs without a cluster cache; tests). `by_key` maps "namespace/name" to the Service;
    `namespaces` maps a Namespace's name to its labels (a name absent is unknown)."""

    def __init__(self, services: Iterable[ServiceView] = (),
                 nodes: Iterable[NodeView] = (),
                 namespaces: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.by_key: dict[str, ServiceView] = {f"{s.namespace}/{s.name}": s for s in services}
        self.node_list: list[NodeView] = list(nodes)
        self.namespaces: dict[str, Mapping[str, str]] = {
            name: MappingProxyType(dict(labels)) for name, labels in (namespaces or {}).items()}

    def services(self) -> Iterable[ServiceView]:
        return list(self.by_key.values())

    def service(self, namespace: str, name: str) -> ServiceView | None:
        return self.by_key.get(f"{namespace}/{name}")

    def nodes(self) -> Iterable[NodeView]:
        return list(self.node_list)

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        return self.namespaces.get(name)
