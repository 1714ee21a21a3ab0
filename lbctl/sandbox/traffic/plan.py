"""What should be listening and where each NodePort forwards: a pure function of the caches.

Every change recomputes one `Plan` from the current Nodes, Services, Pods and EndpointSlices
(cheap at sandbox scale, and impossible to get subtly out of step the way incremental updates
can). The listener sets are compared with what is open (see `listeners.py`); the routes replace the
router's table at once, so open listeners forward by the newest endpoints without rebinding.

Endpoint choice follows kube-proxy: ready endpoints; when none, serving-and-terminating ones;
`externalTrafficPolicy: Local` keeps only this node's; `sessionAffinity: ClientIP` keeps a
client IP on its endpoint (see `router`); the health check counts this node's ready endpoints.
Each live node also gets kube-proxy's own `/healthz` on :10256. Anything not on
127.0.0.0/8 is left out, so traffic never leaves loopback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .records import EndpointRec, Key, NodeRec, PodRec, ServiceRec, SliceRec, is_loopback

log = logging.getLogger(__name__)
PROTOCOLS = ("TCP", "UDP")
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")
ListenerKey = tuple[str, int, str]
"""(address, port, protocol) of one listening socket."""
RouteKey = tuple[str, str, str, str]
"""(namespace, service, port name, protocol)."""


@dataclass(frozen=True, slots=True)
class PodListener:
    namespace: str
    pod: str
    node: str


@dataclass(frozen=True, slots=True)
class NodePortListener:
    node: str
    route: RouteKey


@dataclass(frozen=True, slots=True)
class HealthListener:
    node: str
    service: Key


@dataclass(frozen=True, slots=True)
class ProxyHealthListener:
    """kube-proxy's own `/healthz` on NodeIP:10256, one per node (KEP-3836: what cloud
    balancers probe for `externalTrafficPolicy: Cluster` instead of every nodePort)."""

    node: str


PROXY_HEALTHZ_PORT = 10256
Listener = PodListener | NodePortListener | HealthListener | ProxyHealthListener


@dataclass(frozen=True, slots=True)
class Backend:
    address: str
    port: int
    node: str


@dataclass(frozen=True, slots=True)
class Route:
    local: bool
    cluster: tuple[Backend, ...]
    """The endpoints any node forwards to under externalTrafficPolicy Cluster."""
    by_node: Mapping[str, tuple[Backend, ...]]
    """Each node's own usable endpoints (Local)."""
    affinity_seconds: int = 0
    """sessionAffinity ClientIP: a client IP keeps its endpoint this long (0: none)."""

    def backends(self, node: str) -> tuple[Backend, ...]:
        return self.by_node.get(node, ()) if self.local else self.cluster


@dataclass
class Plan:
    listeners: dict[ListenerKey, Listener] = field(default_factory=dict)
    routes: dict[RouteKey, Route] = field(default_factory=dict)
    local_ready: dict[Key, dict[str, int]] = field(default_factory=dict)
    """Per Service, per node: ready local endpoints (the health check's localEndpoints)."""


def live_nodes(nodes: Iterable[NodeRec]) -> dict[str, NodeRec]:
    """Nodes whose traffic the sandbox serves: simulated, powered on, on loopback."""
    return {n.name: n for n in nodes
            if n.simulated and not n.stopped and n.ip is not None and is_loopback(n.ip)}


def build(nodes: Iterable[NodeRec], services: Iterable[ServiceRec], pods: Iterable[PodRec],
          slices: Iterable[SliceRec]) -> Plan:
    plan = Plan()
    live = live_nodes(nodes)
    for node in live.values():
        assert node.ip is not None
        _claim(plan, (node.ip, PROXY_HEALTHZ_PORT, "TCP"), ProxyHealthListener(node.name))
    _pods(plan, live, pods)
    by_service: dict[Key, list[SliceRec]] = {}
    for s in slices:
        if s.service:
            by_service.setdefault((s.namespace, s.service), []).append(s)
    for svc in sorted(services, key=lambda s: (s.namespace, s.name)):
        _service(plan, live, svc, by_service.get((svc.namespace, svc.name), []))
    return plan


def _claim(plan: Plan, key: ListenerKey, listener: Listener) -> None:
    held = plan.listeners.get(key)
    if held is None:
        plan.listeners[key] = listener
    elif held != listener:
        log.warning("%s:%d/%s wanted by %s, already held by %s", *key, listener, held)


def _pods(plan: Plan, live: Mapping[str, NodeRec], pods: Iterable[PodRec]) -> None:
    # When two pods claim one ip:port (a stale one not yet gone), the newest wins.
    ordered = sorted(pods, key=lambda p: (p.created, p.namespace, p.name), reverse=True)
    for pod in ordered:
        if not (pod.running and pod.node in live and is_loopback(pod.ip)):
            continue
        for port, protocol in pod.ports:
            if protocol in PROTOCOLS:
                plan.listeners.setdefault((pod.ip, port, protocol),
                                          PodListener(pod.namespace, pod.name, pod.node))


def _service(plan: Plan, live: Mapping[str, NodeRec], svc: ServiceRec,
             slices: list[SliceRec]) -> None:
    if svc.type not in NODE_PORT_TYPES:
        return
    skey = (svc.namespace, svc.name)
    ready_local: dict[str, set[str]] = {}
    for port in svc.ports:
        if port.protocol not in PROTOCOLS:
            continue
        eps = _endpoints(slices, port.name, port.protocol)
        for ep, _ in eps:
            if ep.ready and ep.node:
                ready_local.setdefault(ep.node, set()).add(ep.address)
        rkey = (svc.namespace, svc.name, port.name, port.protocol)
        plan.routes[rkey] = _route(svc.local, eps, svc.affinity_seconds)
        if port.node_port <= 0:
            continue
        for node in live.values():
            assert node.ip is not None
            _claim(plan, (node.ip, port.node_port, port.protocol),
                   NodePortListener(node.name, rkey))
    plan.local_ready[skey] = {node: len(addrs) for node, addrs in ready_local.items()}
    if svc.local and svc.health_port > 0 and svc.type == "LoadBalancer":
        for node in live.values():
            assert node.ip is not None
            _claim(plan, (node.ip, svc.health_port, "TCP"), HealthListener(node.name, skey))


def _endpoints(slices: list[SliceRec], name: str,
               protocol: str) -> list[tuple[EndpointRec, int]]:
    """The Service port's endpoints with their target port, deduplicated across slices."""
    seen: dict[tuple[str, int], tuple[EndpointRec, int]] = {}
    for s in slices:
        for pname, number, proto in s.ports:
            if pname != name or proto != protocol:
                continue
            for ep in s.endpoints:
                if is_loopback(ep.address):
                    seen.setdefault((ep.address, number), (ep, number))
    return [seen[k] for k in sorted(seen)]


def _usable(eps: list[tuple[EndpointRec, int]]) -> tuple[Backend, ...]:
    ready = [Backend(ep.address, port, ep.node) for ep, port in eps if ep.ready]
    if ready:
        return tuple(ready)
    return tuple(Backend(ep.address, port, ep.node) for ep, port in eps
                 if ep.serving and ep.terminating)


def _route(local: bool, eps: list[tuple[EndpointRec, int]], affinity_seconds: int = 0
           ) -> Route:
    per_node: dict[str, list[tuple[EndpointRec, int]]] = {}
    for ep, port in eps:
        per_node.setdefault(ep.node, []).append((ep, port))
    by_node = {node: _usable(group) for node, group in per_node.items() if node}
    return Route(local=local, cluster=_usable(eps),
                 by_node={n: b for n, b in by_node.items() if b},
                 affinity_seconds=affinity_seconds)
