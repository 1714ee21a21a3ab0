"""The desired balancer (`LoadBalancerSpec`) and what a provider reports back.

A spec is built purely from a Service, the selected Nodes and the config (see
`lbctl.controller.spec_builder.build_spec`); it is frozen and JSON-serialisable, so it can be
diffed, golden-tested, logged and printed by `lbctl plan`. Providers turn a spec into cloud
state and answer with a `LoadBalancerStatus`; neither side ever sees the other's types.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ServiceRef:
    """Which Service a balancer serves; enough to find its objects when the Service is gone."""

    namespace: str
    name: str
    uid: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Listener:
    """One front-end port: traffic on `port` goes to every target's `node_port`."""

    name: str
    protocol: str
    port: int
    node_port: int | None


@dataclass(frozen=True, slots=True)
class Target:
    """One backend node."""

    node: str
    provider_id: str
    addresses: tuple[str, ...]
    zone: str = ""


TARGET_MODES = ("nodePort", "endpoints")
"""Where a balancer sends traffic. `nodePort`: every selected node's nodePort (kube-proxy
takes it from there; what every cloud's balancer does). `endpoints`: straight to the
Service's ready endpoints (pod IP : target port, from EndpointSlices), one hop fewer, and the
only way for a Service without nodePorts (`allocateLoadBalancerNodePorts: false`)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One backend pod of one listener, for the `endpoints` target mode: traffic to the
    listener `protocol`/`port` goes to `address`:`target_port` directly. Only endpoints that
    should get traffic are in a spec (ready ones; when a port has none, those serving while
    terminating, as kube-proxy does), so a readiness change is a spec change."""

    port: int
    """The listener's (Service port's) `port`."""
    protocol: str
    address: str
    target_port: int
    node: str = ""
    name: str = ""
    """The pod (the endpoint's targetRef), for health reports; "" when the slice names none."""


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """How the balancer checks a node. Cluster policy: TCP on each listener's nodePort
    (`port` None); Local policy: HTTP `/healthz` on the healthCheckNodePort."""

    protocol: str
    port: int | None
    path: str = ""
    interval_seconds: int = 10
    timeout_seconds: int = 5
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2


@dataclass(frozen=True, slots=True)
class BalancerRef:
    """A balancer's identity: its deterministic name and owner. All `delete` needs."""

    name: str
    cluster: str
    service: ServiceRef


@dataclass(frozen=True, slots=True)
class LoadBalancerSpec:
    """Everything a provider needs to make one Service's balancer real."""

    ref: BalancerRef
    listeners: tuple[Listener, ...]
    targets: tuple[Target, ...]
    health_check: HealthCheck
    source_ranges: tuple[str, ...] = ("0.0.0.0/0",)
    requested_ips: tuple[str, ...] = ()
    ip_families: tuple[str, ...] = ("IPv4",)
    session_affinity: str = "None"
    affinity_timeout_seconds: int | None = None
    external_traffic_policy: str = "Cluster"
    load_balancer_class: str | None = None
    annotations: tuple[tuple[str, str], ...] = ()
    """The Service's balancer-related annotations (sorted); each provider parses its own."""
    target_mode: str = "nodePort"
    """One of `TARGET_MODES`. In `endpoints` mode `targets` is empty (no node carries the
    traffic) and `endpoints` holds the backends; in `nodePort` mode `endpoints` is empty."""
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def name(self) -> str:
        return self.ref.name

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)

    def to_json(self) -> dict[str, Any]:
        """A stable JSON form (golden tests, `lbctl plan`, logs)."""
        out: dict[str, Any] = _lists(asdict(self))
        return out


@dataclass(frozen=True, slots=True)
class IngressPoint:
    ip: str | None = None
    hostname: str | None = None
    ip_mode: str | None = None  # VIP | Proxy, only with ip


@dataclass(frozen=True, slots=True)
class PortStatus:
    port: int
    protocol: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TargetHealth:
    """How many of a balancer's targets (nodes, or pods in the endpoints mode) pass its health
    checks, as the cloud or the balancer daemon last said. Structured, so the controller can
    publish it and `lbctl status` show it without parsing anyone's prose.

    One balancer checks the same targets once per listener (a target group per port, a backend
    service per protocol, a daemon per instance): a provider reports the worst of those views
    (`worst`), the one to act on, never a sum that would count a node twice."""

    healthy: int
    total: int

    @staticmethod
    def worst(views: Iterable[TargetHealth | None]) -> TargetHealth | None:
        """The view with the lowest healthy share (no targets at all counts as none healthy;
        ties: fewer healthy); None when no view is known."""
        known = [v for v in views if v is not None]
        if not known:
            return None
        return min(known, key=lambda v: (v.healthy / v.total if v.total else 0.0, v.healthy,
                                         -v.total))


@dataclass(frozen=True, slots=True)
class LoadBalancerStatus:
    """What the provider built: addresses for `status.loadBalancer`, and health."""

    ingress: tuple[IngressPoint, ...]
    ports: tuple[PortStatus, ...] = ()
    degraded: str | None = None
    """Why the balancer serves but not fully (e.g. "2 of 3 targets unhealthy"), or None."""
    serving: bool = True
    """False when the provider knows no traffic can flow (e.g. no healthy target anywhere)."""
    details: tuple[tuple[str, str], ...] = field(default=())
    """Provider-specific facts worth showing (ARNs, object names), sorted."""
    targets: TargetHealth | None = None
    """Healthy and total targets as the cloud last reported them; None when the provider has
    no honest source (or did not read one in this call): unknown, never a guess."""


def _lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value
