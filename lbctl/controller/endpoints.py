"""The `endpoints` target mode, decided purely: which mode a Service uses, which pods get traffic.

A balancer normally sends traffic to every node's nodePort and lets kube-proxy pick a pod. A
Service with `allocateLoadBalancerNodePorts: false` has no nodePort to send to, and a software
balancer (the `baremetal` provider's daemons) can skip that hop anyway: it can send straight
to the Service's endpoints, read from EndpointSlices. These functions decide both things
without I/O, so `build_spec` stays pure and the controller asks the same question (does this
Service need EndpointSlices?) with the same answer.

Readiness follows kube-proxy: per Service port, the ready endpoints; when there are none, the
ones still serving while terminating (a rolling update's last pods), else none. Externally
`externalTrafficPolicy: Local` means "no second hop, keep the client's address": with no node
hop at all it is moot here, and the balancer's own checks of each endpoint replace kube-proxy's
`/healthz` on the healthCheckNodePort.
"""

from __future__ import annotations

from collections.abc import Iterable

from providers.cluster import ServiceView
from providers.errors import PermanentError
from providers.interface import TARGET_MODE_ANNOTATION
from providers.spec import TARGET_MODES, Endpoint

from .records import EndpointSliceView, SliceEndpoint

__all__ = ["TARGET_MODE_ANNOTATION", "endpoints_for", "target_mode"]


def target_mode(service: ServiceView, default: str = "nodePort") -> str:
    """The annotation `lbctl.io/target-mode` when set; else `endpoints` when some port has no
    nodePort (nodePort mode could not serve it); else the provider's `default`."""
    raw = service.annotations.get(TARGET_MODE_ANNOTATION)
    if raw is not None:
        value = raw.strip()
        if value not in TARGET_MODES:
            raise PermanentError(f"metadata.annotations[{TARGET_MODE_ANNOTATION}]",
                                 f"{raw!r} must be one of {', '.join(TARGET_MODES)}")
        return value
    if any(port.node_port is None for port in service.ports):
        return "endpoints"
    return default


def endpoints_for(service: ServiceView, slices: Iterable[EndpointSliceView]
                  ) -> tuple[Endpoint, ...]:
    """The endpoints that get traffic, per Service port (matched to slice ports by name and
    protocol, as kube-proxy does), sorted; the same address:port in two slices (an endpoint
    moving between them) counts once. Slices of another address family are skipped."""
    usable = [s for s in slices if s.address_type in service.ip_families]
    out: list[Endpoint] = []
    for port in service.ports:
        found: dict[tuple[str, int], SliceEndpoint] = {}
        for piece in usable:
            number = next((n for name, protocol, n in piece.ports
                           if name == port.name and protocol == port.protocol), None)
            if number is None:
                continue
            for ep in piece.endpoints:
                found.setdefault((ep.address, number), ep)
        chosen = [k for k, ep in found.items() if ep.ready] or [
            k for k, ep in found.items() if ep.serving and ep.terminating]
        out += [Endpoint(port.port, port.protocol, address, number, found[address, number].node,
                         found[address, number].pod)
                for address, number in sorted(chosen)]
    return tuple(out)
