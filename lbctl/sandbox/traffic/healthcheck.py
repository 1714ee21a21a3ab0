"""kube-proxy's health checks: per Service on NodeIP:healthCheckNodePort, per node on :10256.

Cloud balancers probe this port to learn which nodes have a local endpoint of an
`externalTrafficPolicy: Local` Service. The answer copies kube-proxy's
(pkg/proxy/healthcheck/service_health.go): any path, 200 when the node has a ready local endpoint
and 503 otherwise, `Content-Type: application/json`, `X-Content-Type-Options: nosniff`, and the
same tab-indented JSON body without a trailing newline. The node's own `/healthz` (port 10256,
cmd/kube-proxy's healthz server) answers 200 with `lastUpdated`, `currentTime` and
`nodeEligible` while the node runs; a stopped node answers nothing, like a dead one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiohttp import web

from .http_listener import HttpListener
from .plan import HealthListener, ProxyHealthListener
from .router import Router


def body(namespace: str, name: str, local_endpoints: int, healthy: bool = True) -> str:
    """kube-proxy's body, byte for byte (Go's %q matches JSON for Kubernetes names)."""
    return (
        "{\n"
        '\t"service": {\n'
        f'\t\t"namespace": {json.dumps(namespace)},\n'
        f'\t\t"name": {json.dumps(name)}\n'
        "\t},\n"
        f'\t"localEndpoints": {local_endpoints},\n'
        f'\t"serviceProxyHealthy": {"true" if healthy else "false"}\n'
        "}")


class HealthCheck(HttpListener):
    """One node's health check server for one Local Service."""

    def __init__(self, address: str, port: int, spec: HealthListener, router: Router) -> None:
        super().__init__(address, port)
        self.spec, self.router = spec, router

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        ns, name = self.spec.service
        count = self.router.local_endpoints(self.spec.service, self.spec.node)
        return web.Response(status=200 if count else 503, body=body(ns, name, count).encode(),
                            content_type="application/json",
                            headers={"X-Content-Type-Options": "nosniff"})


class ProxyHealth(HttpListener):
    """One node's kube-proxy `/healthz` (other paths: 404, as kube-proxy's mux answers)."""

    def __init__(self, address: str, port: int, spec: ProxyHealthListener) -> None:
        super().__init__(address, port)
        self.spec = spec

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.path not in ("/healthz", "/livez"):
            return web.Response(status=404, text="404 page not found\n")
        now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        doc = {"lastUpdated": now, "currentTime": now, "nodeEligible": True}
        return web.Response(status=200, body=json.dumps(doc).encode(),
                            content_type="application/json",
                            headers={"X-Content-Type-Options": "nosniff"})
