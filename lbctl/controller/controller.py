"""The controller: informers feed a work queue, workers run the reconciler, timers repair drift.

    Service informer --needs_sync--> queue <--debounced node sync-- Node informer
                                       |    <--debounced endpoint sync-- EndpointSlice informer
                                       |                   <--jittered drift resync--
                                   N workers (one key at a time) -> Reconciler.sync
    orphan collection: provider.list_owned() vs the Services in the cache

Informers run on every replica (a standby is ready with warm caches); workers, timers and
orphan collection run only while this replica leads (`start_leading` / `stop_leading`).
The EndpointSlice informer exists only once some Service uses the `endpoints` target mode
(see `slice_cache`); its changes re-ensure only the Services in that mode whose slices changed.
The Namespace informer likewise exists only once the provider asks for a namespace's labels
(see `namespace_cache`); a Namespace whose labels change re-ensures the LoadBalancer Services in
it, and only those.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from providers.cluster import NodeView, ServiceView
from providers.errors import PermanentError
from providers.interface import ChangeNotifier, Provider, Reconfigurable
from providers.spec import BalancerRef

from ..kube import NODES, SERVICES, ApiError, Handlers, Informer, Kube
from .cache import Cache
from .config import Config
from .debounce import KeyDebouncer
from .decisions import held_finalizer, needs_sync, owned, wants_balancer
from .endpoints import target_mode
from .metrics import MeteredProvider, Metrics
from .namespace_cache import NamespaceCache
from .reconciler import Reconciler, Recorder, ServiceWrites
from .records import node_view, service_view
from .slice_cache import SliceCache
from .spec_builder import targets
from .workqueue import WorkQueue

log = logging.getLogger("lbctl.controller.controller")
ORPHAN_DEBOUNCE_SECONDS = 1.0
"""How long a provider's report of a balancer without a Service waits for others like it, so
a balancer host that comes back holding ten stale balancers costs one collection."""


class Controller:
    def __init__(self, kube: Kube, config: Callable[[], Config],
                 make_provider: Callable[[Cache], Provider], writes: ServiceWrites,
                 recorder: Recorder, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.services = Informer(kube, SERVICES, service_view, name="services")
        self.nodes = Informer(kube, NODES, node_view, name="nodes")
        self.slices = SliceCache(kube, self._slices_changed)
        self._endpoint_sync = KeyDebouncer(
            lambda: self.config().controller.node_sync_debounce_seconds, self._endpoints_changed,
            name="endpoint-sync")
        self.namespaces = NamespaceCache(kube, self._namespace_changed)
        self.cache = Cache(self.services, self.nodes, self.slices, self.namespaces)
        self.inner_provider = make_provider(self.cache)
        self._provider_settings = config().provider_settings()
        """The provider section the provider last took (see `config_changed`)."""
        self.provider: Provider = MeteredProvider(self.inner_provider, metrics)
        provider = self.provider
        self.reconciler = Reconciler(self.cache, provider, config, writes, recorder)
        self.queue: WorkQueue[str] | None = None
        self._forced: set[str] = set()
        self._lock = threading.Lock()
        self._leading = threading.Event()
        self._node_timer: threading.Timer | None = None
        self._node_syncing = 0
        """Node sync passes running now (their timer is already cleared)."""
        self._ticker: threading.Thread | None = None
        self._orphan_timer: threading.Timer | None = None
        self.services.add_handlers(Handlers(self._svc_added, self._svc_updated,
                                            self._svc_deleted))
        self.nodes.add_handlers(Handlers(self._node_event, self._node_updated,
                                         self._node_event))

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, sync_timeout: float = 60.0) -> None:
        """Start the informers and wait for their first list (every replica does this)."""
        self.services.start()
        self.nodes.start()
        for informer in (self.services, self.nodes):
            if not informer.wait_for_sync(sync_timeout):
                raise TimeoutError(f"informer {informer} did not sync in {sync_timeout} s")

    def ready(self) -> bool:
        return (self.services.has_synced() and self.nodes.has_synced()
                and self.slices.synced() and self.namespaces.synced())

    def quiet(self) -> bool:
        """Nothing to do right now: no node sync waiting or running, no key queued or being
        synced (keys waiting out a delay aside: `WorkQueue.due_in` tells when). Whatever the
        informers delivered before this answered True has been acted on, so a test that waits
        for it (after the informers caught up) may assert that something did not happen."""
        with self._lock:
            if self._node_timer is not None or self._node_syncing:
                return False
            queue = self.queue
        return self._endpoint_sync.quiet() and (queue is None or queue.idle())

    def start_leading(self) -> None:
        """Workers, drift repair and orphan collection: only on the leader."""
        with self._lock:
            if self.queue is not None:
                return
            self.queue = WorkQueue("services")
            self._leading.set()
            self.queue.start(self._process, self.config().controller.workers)
        self.metrics.leader.set(1)
        for svc in self.cache.services():
            self._enqueue(svc)
        self._ticker = threading.Thread(target=self._tick, name="resync", daemon=True)
        self._ticker.start()
        if isinstance(self.inner_provider, ChangeNotifier):
            self.inner_provider.subscribe(self._provider_changed)

    def stop_leading(self, timeout: float = 30.0) -> None:
        """Finish in-flight syncs, then stop taking work."""
        with self._lock:
            queue, self.queue = self.queue, None
            self._leading.clear()
        self.metrics.leader.set(0)
        if queue is not None:
            queue.shutdown(wait=True, timeout=timeout)

    def stop(self) -> None:
        self.stop_leading()
        if self._node_timer is not None:
            self._node_timer.cancel()
        if self._orphan_timer is not None:
            self._orphan_timer.cancel()
        self._endpoint_sync.cancel()
        self.services.stop()
        self.nodes.stop()
        self.slices.stop()
        self.namespaces.stop()

    def config_changed(self) -> None:
        """A reloaded config: a changed provider section goes to the provider (one that is
        `Reconfigurable`; others keep theirs until a restart, said in the log), and every
        cached Service is offered again, since the config may own other classes now. Specs
        that did not change cost no provider call, unless the provider took new settings:
        then every Service is ensured again (a balancer instance that joined gets them all)."""
        config = self.config()
        settings = config.provider_settings()
        force = False
        if settings != self._provider_settings:
            provider = config.provider
            if isinstance(self.inner_provider, Reconfigurable):
                try:
                    problems = self.inner_provider.apply_settings(settings)
                except Exception:  # a provider bug must not stop the Services' re-offer;
                    # the settings are not recorded, so the next reload tries them again
                    log.exception("provider %s failed to take the reloaded settings", provider)
                else:
                    force = True
                    self._provider_settings = settings
                    log.info("provider %s took the reloaded settings%s", provider,
                             f" ({len(problems)} problem(s) logged)" if problems else "")
            else:
                log.warning("provider %s cannot take new settings while running: the ones it "
                            "started with stay in effect until a restart", provider)
                self._provider_settings = settings
        for svc in self.cache.services():
            self._watch_endpoints_for(svc)
            self._enqueue(svc, force=force)

    def _provider_changed(self, ref: BalancerRef) -> None:
        """The provider saw something change (target health, a daemon that lost its state, a
        balancer it holds that no Service asked for): look at that Service again now, or,
        when the Service is gone (deleted while a balancer host was down, which then came back
        with it), collect orphans in a moment rather than at the next resync."""
        svc = self.cache.service(ref.service.namespace, ref.service.name)
        if svc is not None and svc.uid == ref.service.uid and (
                wants_balancer(svc) or held_finalizer(svc, self.config())):
            self._enqueue(svc, force=True)
            return
        # gone, or going without our finalizer (its object not yet out of the cache)
        with self._lock:
            if self._orphan_timer is not None or not self._leading.is_set():
                return
            timer = self._orphan_timer = threading.Timer(ORPHAN_DEBOUNCE_SECONDS,
                                                         self._collect_orphans_now)
        timer.daemon = True
        timer.start()

    def _collect_orphans_now(self) -> None:
        with self._lock:
            self._orphan_timer = None
        if self._leading.is_set():
            self.collect_orphans()

    # -- events from the informers ------------------------------------------------------------
    def _enqueue(self, svc: ServiceView, force: bool = False) -> None:
        queue = self.queue
        config = self.config()
        held = held_finalizer(svc, config)
        if queue is None or not (owned(svc, config) or held):
            return
        if not (wants_balancer(svc) or held):
            return
        if force:
            with self._lock:
                self._forced.add(svc.key)
        queue.add(svc.key)

    def _svc_added(self, svc: ServiceView) -> None:
        self._watch_endpoints_for(svc)
        self._enqueue(svc)

    def _svc_updated(self, old: ServiceView, new: ServiceView) -> None:
        if needs_sync(old, new):
            self._watch_endpoints_for(new)
            self._enqueue(new)

    # -- the endpoints target mode -------------------------------------------------------------
    def uses_endpoints(self, svc: ServiceView) -> bool:
        """The Service's balancer sends traffic to its endpoints: lbctl's, wanting one, and
        the provider has the mode and picks it (annotation, no nodePorts, or its default)."""
        caps = self.provider.capabilities
        if "endpoints" not in caps.target_modes or not owned(svc, self.config()):
            return False
        if not wants_balancer(svc):
            return False
        try:
            return target_mode(svc, caps.default_target_mode) == "endpoints"
        except PermanentError:
            return False  # a bad annotation: the sync reports it

    def _watch_endpoints_for(self, svc: ServiceView) -> None:
        """Every replica: the first Service in the mode starts the EndpointSlice informer
        (a standby's cache is warm when it takes over)."""
        if self.slices.informer is None and self.uses_endpoints(svc):
            self.slices.want()

    def _slices_changed(self, service_key: str) -> None:
        self._endpoint_sync.add(service_key)

    def _endpoints_changed(self, keys: set[str]) -> None:
        """Debounced: queue the Services in the endpoints mode whose slices changed; a
        Service whose chosen endpoints did not change costs no provider call (same spec)."""
        for key in keys:
            namespace, _, name = key.partition("/")
            svc = self.cache.service(namespace, name)
            if svc is not None and self.uses_endpoints(svc):
                self.metrics.endpoint_sync_queued.inc()
                self._enqueue(svc)

    # -- namespace labels ---------------------------------------------------------------------
    def _namespace_changed(self, name: str) -> None:
        """A Namespace's labels changed (or it appeared): its LoadBalancer Services are
        ensured again, forced since their specs did not change. The provider decides anew
        only for what they lack (a Service keeps the addresses it holds)."""
        for svc in self.cache.services():
            if svc.namespace == name and wants_balancer(svc):
                self.metrics.namespace_sync_queued.inc()
                self._enqueue(svc, force=True)

    def _svc_deleted(self, svc: ServiceView) -> None:
        if self.queue is not None:
            self.queue.add(svc.key)  # forgets its applied spec; orphans are collected later

    def _node_updated(self, old: NodeView, new: NodeView) -> None:
        if targets([old]) != targets([new]):
            self._node_event(new)

    def _node_event(self, _node: NodeView) -> None:
        """Debounce: node changes within the window cost one pass over the Services."""
        with self._lock:
            if self._node_timer is not None:
                return
            delay = self.config().controller.node_sync_debounce_seconds
            self._node_timer = threading.Timer(delay, self._node_sync)
            self._node_timer.daemon = True
            self._node_timer.start()

    def _node_sync(self) -> None:
        """Queue every Service whose applied targets differ from the nodes' now. Counted
        when done, so a pass that was counted has queued all it meant to."""
        with self._lock:
            self._node_timer = None  # a node event from now on schedules the next pass
            self._node_syncing += 1
        try:
            wanted = targets(self.cache.nodes())
            for svc in self.cache.services():
                applied = self.reconciler.applied(svc.key)
                if (applied is not None and applied.target_mode == "nodePort"
                        and applied.targets != wanted):  # no node carries endpoints' traffic
                    self.metrics.node_sync_queued.inc()
                    self._enqueue(svc)
        finally:
            with self._lock:
                self._node_syncing -= 1
            self.metrics.node_syncs.inc()

    # -- work ---------------------------------------------------------------------------------
    def _process(self, key: str) -> None:
        queue = self.queue
        if queue is None:
            return
        with self._lock:
            force = key in self._forced
            self._forced.discard(key)
        started = time.monotonic()
        try:
            outcome = self.reconciler.sync(key, force=force)
        except ApiError as err:
            self.metrics.errors.labels(reason=f"api_{err.status}").inc()
            if err.not_found:
                queue.forget(key)
            elif err.conflict:
                queue.add_after(key, 0.5)  # a fresher cache is moments away
            else:  # back off, and never sooner than the server's Retry-After
                queue.add_after(key, max(queue.backoff(key), err.retry_after or 0.0))
            return
        finally:
            self.metrics.operation_seconds.labels(operation="sync").observe(
                time.monotonic() - started)
            self.metrics.queue_depth.set(queue.depth())
        self.metrics.syncs.labels(outcome=outcome.action).inc()
        if outcome.error:
            self.metrics.errors.labels(reason=outcome.action).inc()
        if outcome.action == "backoff":
            queue.add_rate_limited(key)
            return
        queue.forget(key)
        if outcome.action == "after":
            queue.add_after(key, outcome.delay)

    # -- timers -------------------------------------------------------------------------------
    def _tick(self) -> None:
        """Drift repair and orphan collection, jittered so replicas and clusters don't align."""
        while True:
            period = self.config().controller.resync_seconds
            if not self._sleep(period * random.uniform(0.8, 1.2)):  # noqa: S311
                return
            self.collect_orphans()
            for svc in self.cache.services():
                self._enqueue(svc, force=True)

    def _sleep(self, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if not self._leading.is_set():
                return False
            time.sleep(min(0.5, end - time.monotonic()))
        return self._leading.is_set()

    def collect_orphans(self) -> int:
        """Delete owned balancers no cached Service accounts for (deleted or changed while
        lbctl was down, finalizer stripped by someone else). Answers how many."""
        config = self.config()
        live = {s.uid for s in self.cache.services()
                if held_finalizer(s, config) or (owned(s, config) and wants_balancer(s))
                or s.annotations.get("lbctl.io/release") == "true"}
        removed = 0
        try:
            refs = list(self.provider.list_owned())
        except Exception as exc:  # a provider hiccup must not kill the timer thread
            log.warning("orphan collection: list_owned failed: %s", exc)
            return 0
        self.metrics.balancers.set(len(refs))
        for ref in refs:
            if ref.cluster != config.cluster_name or ref.service.uid in live:
                continue
            try:
                self.provider.delete(ref)
                removed += 1
                self.metrics.orphans.inc()
                log.info("deleted orphaned balancer %s of %s", ref.name, ref.service.key)
            except Exception as exc:
                log.warning("orphan %s: delete failed: %s", ref.name, exc)
        return removed
