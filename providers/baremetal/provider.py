"""`BaremetalProvider`: IP pools behind the provider interface (MetalLB's job, done better).

State and restarts: the provider keeps nothing but memory, and no store but the Services. Its
ledger is rebuilt from the `status.loadBalancer.ingress` of the Services in the ClusterView on
construction and again, under the lock, before every allocation, observation and listing (see
`ledger`; the rebuild is incremental, so it stays cheap with thousands of Services). A
restarted controller, or a new leader, therefore converges: it starts from the addresses
Services already hold, gives each Service back its own on its first ensure, and hands none of
them to anyone else; a Service whose status patch was lost to the crash simply receives the
lowest free address again (usually the same one). Only two things live in memory alone and are
forgotten by a restart: the cool-down of addresses released in the last `cooldownSeconds`, and
which of two sharers made an incompatible edit that was still unreconciled at the restart
(then the one first by namespace/name keeps the address). Construct the provider once the
informer caches have synced; until then the view holds no Service to rebuild from (each
allocation rebuilds again, so an early construction only delays the adoption).

Threads: the controller calls from several workers (one Service at a time each). Every ledger
read and write happens under one lock, so two Services can never be granted the same address;
programming the daemons (see `programming`) happens outside it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from providers.cluster import ClusterView, ServiceView
from providers.errors import ProviderError, RetryAfter, allocation_failed
from providers.interface import Capabilities
from providers.spec import (
    BalancerRef,
    IngressPoint,
    LoadBalancerSpec,
    LoadBalancerStatus,
    PortStatus,
    TargetHealth,
)

from .addresses import IPAddress
from .allocator import Grant, allocate, check_request
from .claims import NAMESPACE_NAME_LABEL, Request
from .intake import request_for
from .ledger import Holding, Ledger
from .programming import NoProgramming, Programmer
from .settings import BalancerDaemon, Settings, parse_settings

log = logging.getLogger(__name__)

CAPABILITIES = Capabilities(
    protocols=frozenset({"TCP", "UDP"}), mixed_protocols=True, static_ips=True,
    source_ranges=True, health_check_protocols=frozenset({"TCP", "HTTP"}),
    ip_families=frozenset({"IPv4", "IPv6"}), shared_objects=True, ingress="ip",
    target_modes=frozenset({"nodePort", "endpoints"}))
"""The default target mode comes from the settings (`baremetal.targetMode`): see
`BaremetalProvider.capabilities`."""


def _status(spec: LoadBalancerSpec, ips: tuple[IPAddress, ...], pools: tuple[str, ...],
            degraded: list[str], ip_mode: str, serving: bool = True,
            targets: TargetHealth | None = None) -> LoadBalancerStatus:
    return LoadBalancerStatus(
        serving=serving, targets=targets,
        ingress=tuple(IngressPoint(ip=str(ip), ip_mode=ip_mode) for ip in ips),
        ports=tuple(PortStatus(li.port, li.protocol) for li in spec.listeners),
        degraded="; ".join(d for d in degraded if d) or None,
        details=(("addressPools", ",".join(dict.fromkeys(pools))),) if pools else ())


class BaremetalProvider:
    """Allocates addresses from the configured pools; see the module docstring."""

    def __init__(self, settings: Settings, cluster_name: str, cluster: ClusterView, *,
                 programmer: Programmer | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 problems: tuple[tuple[str, str], ...] = ()) -> None:
        self.cluster_name = cluster_name
        self.problems = problems
        """What was wrong with the settings (bad pools are frozen, not fatal)."""
        self._settings = settings
        self.capabilities = _capabilities(settings)
        self._cluster = cluster
        self._programmer: Programmer = programmer or _programmer_for(settings, cluster_name)
        self._notify: Callable[[BalancerRef], None] | None = None
        self._clock = clock
        self._lock = threading.Lock()
        self._ledger = Ledger()
        with self._lock:
            self._rebuild(self._clock())

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def ip_mode(self) -> str:
        """`Proxy` when balancer daemons carry the traffic: they proxy to NodePorts, so
        kube-proxy must not short-circuit in-cluster traffic to the VIP. `VIP` otherwise."""
        return "Proxy" if self._settings.balancers else "VIP"

    def subscribe(self, notify: Callable[[BalancerRef], None]) -> None:
        """`ChangeNotifier`: the daemons' health and lost state reach the controller."""
        self._notify = notify
        subscribe = getattr(self._programmer, "subscribe", None)
        if subscribe is not None:
            subscribe(notify)

    # -- helpers (callers hold the lock where noted) --------------------------------------------
    def _rebuild(self, now: float) -> None:
        """Lock held."""
        self._ledger.rebuild(self._cluster.services(), self._settings.pools, now,
                             self._settings.cooldown_seconds)

    def _view(self, spec: LoadBalancerSpec) -> ServiceView | None:
        return self._cluster.service(spec.ref.service.namespace, spec.ref.service.name)

    def _request(self, spec: LoadBalancerSpec) -> Request:
        """Not under the lock: the first read of namespace labels may wait for the cluster's
        Namespace cache to list (see `ClusterView.namespace_labels`)."""
        request = request_for(spec, self._view(spec))
        if not self._settings.reads_namespace_labels:
            return request  # only kubernetes.io/metadata.name is selected on: no lookup
        namespace = spec.ref.service.namespace
        labels = self._cluster.namespace_labels(namespace)
        items = (tuple(sorted({**labels, NAMESPACE_NAME_LABEL: namespace}.items()))
                 if labels is not None else None)
        return replace(request, claimant=replace(request.claimant,
                                                 namespace_label_items=items))

    def _decide(self, request: Request) -> tuple[Request, Grant, float]:
        """Lock held: rebuild, then the allocation `request` should have now."""
        if self._settings.reads_namespace_labels and request.claimant.namespace_label_items == ():
            # the settings changed to select on namespace labels since `_request` looked
            raise RetryAfter(0.1, "the address pools changed while deciding: looking again")
        now = self._clock()
        self._rebuild(now)
        try:
            return request, allocate(request, self._settings.pools, self._ledger, now), now
        except ProviderError as exc:
            raise allocation_failed(exc) from None

    # -- Provider -------------------------------------------------------------------------------
    def validate(self, spec: LoadBalancerSpec) -> None:
        """Annotations and requested addresses against the pools (no allocation)."""
        request = self._request(spec)
        with self._lock:
            held = self._ledger.holding(spec.ref.service.uid)
        try:
            check_request(request, self._settings.pools,
                          frozenset(held.ips) if held is not None else frozenset())
        except ProviderError as exc:
            raise allocation_failed(exc) from None

    def ensure(self, spec: LoadBalancerSpec) -> LoadBalancerStatus:
        """Allocate or keep the Service's addresses, then program the daemons."""
        request = self._request(spec)
        with self._lock:
            request, grant, now = self._decide(request)
            self._ledger.assign(Holding(request.claimant, grant.ips, spec.ref), now,
                                self._settings.cooldown_seconds)
        reason = self._programmer.program(spec, tuple(str(ip) for ip in grant.ips))
        return _status(spec, grant.ips, grant.pools, [*grant.notes, reason or ""],
                       self.ip_mode, self._programmer.serving(spec.name),
                       self._programmer.targets(spec.name))

    def plan(self, spec: LoadBalancerSpec) -> list[str]:
        """The allocations `ensure(spec)` would make now, in words, without making them."""
        request = self._request(spec)
        with self._lock:
            request, grant, _ = self._decide(request)
            held = self._ledger.holding(request.claimant.uid)
            sharers = {ip: sorted({h.claimant.key for h in self._ledger.holders(ip)
                                   if h.claimant.uid != request.claimant.uid})
                       for ip in grant.ips}
        before = held.ips if held is not None else ()
        changes = [f'allocate {ip} from pool "{pool}"'
                   + (f" (shared with {', '.join(sharers[ip])})" if sharers[ip] else "")
                   for ip, pool in zip(grant.ips, grant.pools, strict=True) if ip not in before]
        changes += [f"release {ip} (cools down for {self._settings.cooldown_seconds:g}s)"
                    for ip in before if ip not in grant.ips]
        return changes + self._programmer.plan(spec, tuple(str(ip) for ip in grant.ips))

    def observe(self, ref: BalancerRef) -> LoadBalancerStatus | None:
        """The addresses the Service holds (from memory or its status), or None."""
        with self._lock:
            self._rebuild(self._clock())
            holding = self._ledger.holding(ref.service.uid)
        if holding is None:
            return None
        pools = tuple(p.name for ip in holding.ips
                      if (p := self._settings.pools.owner(ip)) is not None)
        return LoadBalancerStatus(
            ingress=tuple(IngressPoint(ip=str(ip), ip_mode=self.ip_mode)
                          for ip in holding.ips),
            ports=tuple(PortStatus(port, protocol) for protocol, port in holding.claimant.ports),
            targets=self._programmer.targets(ref.name),
            details=(("addressPools", ",".join(dict.fromkeys(pools))),) if pools else ())

    def delete(self, ref: BalancerRef) -> None:
        """Unprogram, then release the addresses to cool-down. Idempotent."""
        self._programmer.unprogram(ref)
        with self._lock:
            released = self._ledger.release(ref.service.uid, self._clock(),
                                            self._settings.cooldown_seconds)
        if released:
            log.info("released %s from %s", ", ".join(map(str, released)), ref.service.key)

    def release(self, ref: BalancerRef) -> None:
        """Let go without tearing down: balancer daemons keep serving what they were
        programmed with; the addresses leave lbctl's books (cool-down as on delete)."""
        with self._lock:
            released = self._ledger.release(ref.service.uid, self._clock(),
                                            self._settings.cooldown_seconds)
        if released:
            log.info("let go of %s for %s", ", ".join(map(str, released)), ref.service.key)

    def list_owned(self) -> Iterable[BalancerRef]:
        """Balancers this process ensured and still holds, plus what the daemons carry.
        Holdings cannot be orphaned: a Service that leaves the view releases its addresses
        on the next rebuild."""
        with self._lock:
            self._rebuild(self._clock())
            refs = list(self._ledger.granted_refs())
        refs += [r for r in self._programmer.programmed() if r not in refs]
        return [r for r in refs if r.cluster == self.cluster_name]

    def reconfigure(self, settings: Settings) -> None:
        """New pools without forgetting cool-downs (a config reload can call this instead of
        building a new provider). Balancer instances that left the config (by URL) get this
        cluster's balancers deleted, in the background and best effort: one still running
        must not go on serving, or announcing, addresses the pools may hand out again."""
        with self._lock:
            old = self._settings
            self._settings = settings
            self.capabilities = _capabilities(settings)
            self._ledger.forget_observations()
            self._rebuild(self._clock())
        if (old.balancers, old.daemon, old.bgp) != (settings.balancers, settings.daemon,
                                                     settings.bgp):
            self._programmer.close()
            self._programmer = _programmer_for(settings, self.cluster_name)
            if self._notify is not None:
                self.subscribe(self._notify)
            staying = {d.url for d in settings.balancers}
            left = tuple(d for d in old.balancers if d.url not in staying)
            if left:
                threading.Thread(target=_withdraw, args=(left, old, self.cluster_name),
                                 name="baremetal-withdraw", daemon=True).start()

    def apply_settings(self, settings: Mapping[str, Any]) -> list[tuple[str, str]]:
        """A reloaded `baremetal` section (see `Reconfigurable`): parsed as `create` does,
        problems logged and kept for `validate`, then `reconfigure`."""
        parsed, problems = parse_settings(settings)
        for path, message in problems:
            log.warning("config %s: %s", path, message)
        self.problems = tuple(problems)
        self.reconfigure(parsed)
        return list(problems)

    def close(self) -> None:
        self._programmer.close()


def _capabilities(settings: Settings) -> Capabilities:
    return replace(CAPABILITIES, default_target_mode=settings.daemon.target_mode)


def _withdraw(daemons: tuple[BalancerDaemon, ...], settings: Settings,
              cluster_name: str) -> None:
    from .daemons import DaemonProgrammer  # noqa: PLC0415 - only with daemons configured

    programmer = DaemonProgrammer(daemons, settings.daemon, cluster_name)
    try:
        programmer.withdraw()
    except Exception:  # best effort: an instance that is gone keeps nothing we can reach
        log.exception("withdrawing balancers from instances that left the config")
    finally:
        programmer.close()


def _programmer_for(settings: Settings, cluster_name: str) -> Programmer:
    if not settings.balancers:
        return NoProgramming()
    from .daemons import DaemonProgrammer  # noqa: PLC0415 - only with daemons configured

    return DaemonProgrammer(settings.balancers, settings.daemon, cluster_name,
                            bgp=settings.bgp)


def create(settings: Mapping[str, Any], cluster_name: str,
           cluster: ClusterView) -> BaremetalProvider:
    """The `baremetal` provider factory. Bad pools are frozen and logged, never fatal; the
    same problems come from `validate_settings` for `lbctl config validate`."""
    parsed, problems = parse_settings(settings)
    for path, message in problems:
        log.warning("config %s: %s", path, message)
    return BaremetalProvider(parsed, cluster_name, cluster, problems=tuple(problems))
