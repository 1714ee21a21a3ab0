"""`lbctl run`: the controller process, from flags to a clean exit.

Wires config (reloaded when the mounted ConfigMap changes, the last good one kept on error),
the Kubernetes client, the provider, the controller, leader election and the health server;
on SIGTERM it stops taking work, finishes in-flight syncs, releases the Lease so a standby takes
over at once, and exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from providers.interface import Provider
from providers.registry import load

from ..kube import ApiError, EventRecorder, Kube, LeaderConfig, LeaderElector, ObjectRef
from .cache import Cache
from .config import Config, ConfigError, load_config
from .controller import Controller
from .decisions import owned, wants_balancer
from .events import BackgroundEvents
from .kube_writes import KubeEventWriter, KubeServiceWrites
from .metrics import HealthServer, Metrics

log = logging.getLogger("lbctl.run")
LEASE_NAME = "lbctl-controller"


class ConfigHolder:
    """The current config; a poller swaps in a new one when the file changes and parses."""

    def __init__(self, path: Path, metrics: Metrics,
                 on_error: Callable[[str], None] | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.path = path
        self.metrics = metrics
        self.on_error = on_error
        self.on_change = on_change
        self._config = load_config(path)
        self._seen = self._stamp()
        metrics.config_ok.set(1)
        self._stop = threading.Event()

    def __call__(self) -> Config:
        return self._config

    def _stamp(self) -> tuple[float, int]:
        try:
            st = self.path.stat()
        except OSError:
            return (0.0, -1)
        return (st.st_mtime, st.st_size)

    def reload(self) -> bool:
        """Re-read the file if it changed; answer whether a new config took effect."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        if stamp[1] == 0:
            # An empty file is a write in progress (an editor or `>` truncates before it
            # writes), never a config: kubelet swaps ConfigMap files whole. Look again later.
            return False
        self._seen = stamp
        try:
            new = load_config(self.path)
        except ConfigError as exc:
            self.metrics.config_errors.inc()
            self.metrics.config_ok.set(0)
            log.error("config reload refused, the last good config keeps serving:\n%s", exc)
            if self.on_error is not None:
                self.on_error(f"config reload refused, the last good config keeps serving: "
                              f"{exc}")
            return False
        old = self._config
        if (new.provider, new.cluster_name) != (old.provider, old.cluster_name):
            self.metrics.config_errors.inc()
            log.error("config reload: provider and clusterName changes need a restart; "
                      "keeping %s/%s for them", old.provider, old.cluster_name)
            new = replace_identity(new, old)
            self.metrics.config_ok.set(0)
        else:
            self.metrics.config_ok.set(1)
        self._config = new
        log.info("config reloaded from %s", self.path)
        if self.on_change is not None:
            self.on_change()
        return True

    def watch(self, interval: float = 2.0) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.reload()
                except Exception:  # the reload thread must never die: log, keep the last good
                    log.exception("config reload failed; the last good config keeps serving")

        threading.Thread(target=loop, name="config", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


def _config_event(kube: Kube) -> Callable[[str], None] | None:
    """A Warning event on the ConfigMap named by LBCTL_CONFIGMAP ("namespace/name"), which the
    Helm chart sets, so `kubectl describe configmap` shows why a reload was refused."""
    where = os.environ.get("LBCTL_CONFIGMAP", "")
    namespace, _, name = where.partition("/")
    if not (namespace and name):
        return None
    recorder = EventRecorder(kube)

    def emit(message: str) -> None:
        try:
            recorder.create_or_update_event(ObjectRef("ConfigMap", namespace, name, ""),
                                            "Warning", "InvalidConfig", message)
        except ApiError as exc:
            log.warning("could not record the config event: %s", exc)

    return emit


def replace_identity(new: Config, old: Config) -> Config:
    return new.model_copy(update={"provider": old.provider, "cluster_name": old.cluster_name})


def without_address(cache: Cache, config: Config) -> float:
    """`lbctl_services_without_address`: LoadBalancer Services lbctl owns (not being deleted or
    released) whose status has no ingress yet, counted from the informer cache at scrape time,
    so a standby replica reports the same figure as the leader."""
    return float(sum(1 for s in cache.services()
                     if owned(s, config) and wants_balancer(s) and not s.ingress))


def run(kubeconfig: str | None, config_path: Path, metrics_bind: str, leader_elect: bool,
        stop: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or `stop` is set); answer the exit code."""
    metrics = Metrics()
    config = ConfigHolder(config_path, metrics)
    settings = config().controller
    kube = Kube.connect(kubeconfig, qps=settings.qps, burst=settings.burst)
    config.on_error = _config_event(kube)
    # Events get a rate limit of their own: they must never hold back status and finalizers.
    events = BackgroundEvents(KubeEventWriter(kube.with_limits(settings.qps, settings.burst)))
    factory = load(config().provider)

    def make_provider(cache: Cache) -> Provider:
        return factory(config().provider_settings(), config().cluster_name, cache)

    controller = Controller(kube, config, make_provider, KubeServiceWrites(kube), events,
                            metrics)
    metrics.without_address.set_function(lambda: without_address(controller.cache, config()))
    host, _, port = metrics_bind.rpartition(":")
    health = HealthServer(metrics, host or "0.0.0.0", int(port), controller.ready)
    health.start()
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    config.on_change = controller.config_changed
    config.watch()
    controller.start()
    elector = None
    if leader_elect:
        identity = f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
        namespace = os.environ.get("POD_NAMESPACE", "kube-system")
        elector = LeaderElector(kube.with_limits(5, 10),
                                LeaderConfig(namespace, LEASE_NAME, identity),
                                on_started_leading=controller.start_leading,
                                on_stopped_leading=controller.stop_leading)
        elector.start()
    else:
        controller.start_leading()
    log.info("lbctl running (provider %s, leader election %s)", config().provider,
             "on" if leader_elect else "off")
    stop.wait()
    log.info("stopping: finishing in-flight syncs")
    controller.stop_leading()
    if elector is not None:
        elector.stop(release=True)
    controller.stop()
    config.stop()
    events.close()
    health.stop()
    controller.provider.close()
    kube.close()
    return 0


__all__ = ["ConfigHolder", "run", "without_address"]
