"""The endpoints target mode on the balancer daemons: pods as targets, each pod checked.

In this mode (`lbctl.io/target-mode: endpoints`, `baremetal.targetMode`, or a Service without
nodePorts) a daemon sends a listener's traffic straight to the Service's endpoints chosen by
the controller (`LoadBalancerSpec.endpoints`: ready pods, else serving-and-terminating ones)
instead of each node's nodePort: no kube-proxy hop, no second balancing decision, the
client's address reaches the pod's node unchanged. The daemon's own active checks then probe
each pod, which replaces kube-proxy's `/healthz` on the healthCheckNodePort: there is no node
in the path for `externalTrafficPolicy: Local` to keep traffic on.
"""

from __future__ import annotations

from typing import Any

from providers.spec import Listener, LoadBalancerSpec


def endpoint_targets(spec: LoadBalancerSpec, li: Listener) -> list[dict[str, Any]]:
    """The listener's endpoints as targets, named by pod (health reports read as pods)."""
    return [{"name": ep.name or _endpoint(ep.address, ep.target_port), "address": ep.address,
             "port": ep.target_port}
            for ep in spec.endpoints if (ep.port, ep.protocol) == (li.port, li.protocol)]


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def endpoint_check(spec: LoadBalancerSpec, protocol: str, timing: dict[str, Any]
                   ) -> dict[str, Any]:
    """The endpoints mode: each pod is checked itself, so a pod that stops answering leaves
    the rotation in about `unhealthyThreshold` intervals, long before its readiness reaches
    the EndpointSlice. TCP: a connect to the target's own port. UDP: a connect to the pods'
    TCP port of the Service's first TCP port, when the pods agree on one number; else no
    active check (readiness alone decides)."""
    if protocol == "TCP":
        return {"type": "tcp", **timing}
    sibling = next((li for li in spec.listeners if li.protocol == "TCP"), None)
    ports = {ep.target_port for ep in spec.endpoints
             if sibling is not None and (ep.port, ep.protocol) == (sibling.port, "TCP")}
    if len(ports) != 1:
        return {"type": "none"}
    return {"type": "tcp", "port": ports.pop(), **timing}
