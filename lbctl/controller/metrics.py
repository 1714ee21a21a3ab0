"""Prometheus metrics and the health endpoints, on one small HTTP server.

Figures an operator needs to trust a LoadBalancer controller, and none upstream exports: latency
and errors per provider operation, queue depth, balancers managed, leadership, config reloads.
No metric carries a per-Service label (cardinality grows with the cluster, not with lbctl).
`/healthz` answers while the process works; `/readyz` once the caches are synced, for a standby
replica as well as for the leader (a standby is ready, just not leading).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from providers.errors import ProviderError
from providers.interface import Capabilities, Provider
from providers.spec import BalancerRef, LoadBalancerSpec, LoadBalancerStatus

T = TypeVar("T")


class Metrics:
    """The controller's metrics, in a registry of its own (tests can build several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.operation_seconds = Histogram(
            "lbctl_provider_operation_seconds", "Provider call latency by operation.",
            ["operation"], registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.errors = Counter("lbctl_sync_errors_total", "Failed syncs by reason.", ["reason"],
                              registry=self.registry)
        self.syncs = Counter("lbctl_syncs_total", "Service syncs by outcome.", ["outcome"],
                             registry=self.registry)
        self.queue_depth = Gauge("lbctl_workqueue_depth", "Keys waiting in the work queue.",
                                 registry=self.registry)
        self.balancers = Gauge("lbctl_managed_load_balancers",
                               "Balancers lbctl currently manages.", registry=self.registry)
        self.leader = Gauge("lbctl_leader", "1 while this replica leads.",
                            registry=self.registry)
        # counted from the informer cache at scrape time (runner.py): the same on every replica
        self.without_address = Gauge(
            "lbctl_services_without_address",
            "LoadBalancer Services lbctl owns with no address in their status yet.",
            registry=self.registry)
        self.config_errors = Counter("lbctl_config_reload_errors_total",
                                     "Config reloads refused (the last good config serves).",
                                     registry=self.registry)
        self.config_ok = Gauge("lbctl_config_last_reload_successful",
                               "0 while the last config reload was refused (in whole or in "
                               "part), else 1.", registry=self.registry)
        self.node_syncs = Counter("lbctl_node_syncs_total", "Debounced node sync passes.",
                                  registry=self.registry)
        self.node_sync_queued = Counter(
            "lbctl_node_sync_queued_total",
            "Services node sync passes queued because their targets changed.",
            registry=self.registry)
        self.endpoint_sync_queued = Counter(
            "lbctl_endpoint_sync_queued_total",
            "Services in the endpoints target mode queued because their EndpointSlices "
            "changed.", registry=self.registry)
        self.namespace_sync_queued = Counter(
            "lbctl_namespace_sync_queued_total",
            "LoadBalancer Services queued because their Namespace's labels changed.",
            registry=self.registry)
        self.orphans = Counter("lbctl_orphans_deleted_total",
                               "Owned balancers deleted because their Service was gone.",
                               registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HealthServer:
    """Serves /metrics, /healthz and /readyz on `host:port` in a daemon thread."""

    def __init__(self, metrics: Metrics, host: str, port: int,
                 ready: Callable[[], bool]) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
                elif self.path == "/healthz":
                    self._send(200, b"ok", "text/plain")
                elif self.path == "/readyz":
                    ok = outer.ready()
                    self._send(200 if ok else 503, b"ok" if ok else b"not ready", "text/plain")
                else:
                    self._send(404, b"not found", "text/plain")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.ready = ready
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="health",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MeteredProvider:
    """Wraps a provider: every call's latency lands in `lbctl_provider_operation_seconds`
    by operation, and its errors in `lbctl_sync_errors_total` by the error's reason."""

    def __init__(self, provider: Provider, metrics: Metrics) -> None:
        self._provider = provider
        self._metrics = metrics

    @property
    def capabilities(self) -> Capabilities:
        """The provider's own, read each time: a reconfigured provider may change its
        default target mode."""
        return self._provider.capabilities

    def _timed(self, op: str, call: Callable[[], T]) -> T:
        started = time.monotonic()
        try:
            return call()
        except ProviderError as exc:
            self._metrics.errors.labels(reason=exc.reason).inc()
            raise
        finally:
            self._metrics.operation_seconds.labels(operation=op).observe(
                time.monotonic() - started)

    def validate(self, spec: LoadBalancerSpec) -> None:
        self._provider.validate(spec)

    def ensure(self, spec: LoadBalancerSpec) -> LoadBalancerStatus:
        return self._timed("ensure", lambda: self._provider.ensure(spec))

    def plan(self, spec: LoadBalancerSpec) -> list[str]:
        return self._provider.plan(spec)

    def observe(self, ref: BalancerRef) -> LoadBalancerStatus | None:
        return self._timed("observe", lambda: self._provider.observe(ref))

    def delete(self, ref: BalancerRef) -> None:
        self._timed("delete", lambda: self._provider.delete(ref))

    def release(self, ref: BalancerRef) -> None:
        release = getattr(self._provider, "release", None)
        if release is None:  # a plugin written before release() existed: nothing to drop
            return
        self._timed("release", lambda: release(ref))

    def list_owned(self) -> Iterable[BalancerRef]:
        return self._timed("list_owned", lambda: list(self._provider.list_owned()))

    def close(self) -> None:
        self._provider.close()
