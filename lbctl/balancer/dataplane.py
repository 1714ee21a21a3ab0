"""The userspace data plane's runtime: desired balancers in, running listeners out.

`Dataplane.apply(balancers)` is the daemon's only write path, so a static file, the HTTP API and
a state file read after a restart all converge the same way: one frontend per (protocol, VIP,
port), diffed against what runs. A changed target list is applied in place (`BackendSet.update`
keeps health and counters of targets that stay and drains those that leave); a change of ACL,
algorithm, affinity or PROXY header replaces the frontend (the new one binds first, SO_REUSEPORT,
so no connection is refused in between). Health verdicts from the `HealthChecker` and passive
ejections from the frontends meet here, in `BackendSet.set_up`.

`dataplane: nftables` balancers go to the kernel (`nft`, one atomic transaction per change)
when this process holds CAP_NET_ADMIN and nft works; the same health verdicts drive the kernel's
target maps (a verdict change re-renders the table, bursts merged). Without the capability they
fall back to this userspace path, and the status (-> the Service's Degraded condition and a
Warning event), a log line and `lbctl_balancer_nftables_available` say why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .acl import Acl
from .backends import Backend, BackendSet, ListenerStats
from .health import HealthChecker
from .health_process import HealthProcess
from .model import BalancerConfig, HealthCheckConfig, ListenerConfig
from .nft import NftablesDataplane, NftError
from .status import balancer_status
from .tcp_proxy import TcpFrontend, congestion_problem
from .udp_proxy import UdpFrontend
from .workers import WorkerPool

log = logging.getLogger(__name__)

FrontKey = tuple[str, str, int]
"""(protocol, vip, port)"""

NFTABLES_FALLBACK = "nftables data plane not available ({why}): served by the userspace data plane"
KERNEL_DEBOUNCE = 0.02
"""Health verdicts arriving within this window cost one nft transaction."""


@dataclass
class Running:
    """One bound frontend and what it was built from."""

    balancer: str
    listener: ListenerConfig
    signature: tuple[Any, ...]
    backends: BackendSet
    frontend: TcpFrontend | UdpFrontend
    stats: ListenerStats
    error: str | None = None


@dataclass
class Problems:
    """Per balancer: what keeps it from being served fully."""

    by_balancer: dict[str, list[str]] = field(default_factory=dict)

    def add(self, balancer: str, message: str) -> None:
        found = self.by_balancer.setdefault(balancer, [])
        if message not in found:  # the same cause on several VIPs or ports is said once
            found.append(message)


def _signature(b: BalancerConfig, li: ListenerConfig) -> tuple[Any, ...]:
    """What cannot change under a running frontend."""
    return (b.source_ranges, b.session_affinity, li.algorithm, li.proxy_protocol,
            li.idle_timeout_seconds)


def _owner(balancer: str, li: ListenerConfig) -> str:
    return f"{balancer}/{li.protocol}/{li.port}"


def _checks(li: ListenerConfig) -> list[tuple[tuple[str, int], HealthCheckConfig]]:
    return [((t.address, t.port), li.health_check) for t in li.targets]


class Dataplane:
    """Userspace frontends for every balancer; call from one event loop."""

    def __init__(self, health: HealthChecker | HealthProcess | None = None,
                 kernel: NftablesDataplane | str | None = "auto", *,
                 log_health: bool = True, log_format: str = "text",
                 event_loop: str = "auto") -> None:
        self.health: HealthChecker | HealthProcess = health or HealthProcess(
            self._on_health, log_format=log_format, event_loop=event_loop)
        """Probes run in a process of their own (`HealthProcess`), never on this loop."""
        self.log_health = log_health
        self.workers: WorkerPool | None = None
        """Worker processes serving the same userspace frontends (SO_REUSEPORT)."""
        self.running: dict[FrontKey, Running] = {}
        self.problems = Problems()
        self.desired: dict[str, BalancerConfig] = {}
        self._lock = asyncio.Lock()
        self.kernel: NftablesDataplane | None = None
        self.kernel_reason = "disabled"
        if kernel == "auto":
            ok, why = NftablesDataplane.available()
            self.kernel, self.kernel_reason = (NftablesDataplane(), "") if ok else (None, why)
        elif isinstance(kernel, NftablesDataplane):
            self.kernel, self.kernel_reason = kernel, ""
        self.in_kernel: dict[str, BalancerConfig] = {}
        self.kernel_seconds = 0.0
        self.kernel_transactions = 0
        self._kernel_keys: set[tuple[str, int]] = set()
        self._watched: dict[str, ListenerConfig] = {}
        """The listener each health-check owner was last watched with."""
        self._kernel_pending = False
        self._verdict_batch: dict[tuple[str, int], tuple[bool, str]] = {}
        self._index: dict[tuple[str, int], list[BackendSet]] | None = None
        """Target -> the frontends' backend sets that have it (None: to be rebuilt)."""
        self._kernel_applied = False
        """Whether lbctl's nft table was written (status says a kernel balancer is bound)."""
        self.kernel_error: str | None = None
        self.verdict_listeners: list[Callable[[], None]] = []
        """Called after each batch of health verdicts (BGP re-plans its announcements)."""

    # -- health -----------------------------------------------------------------------------
    def set_verdict(self, key: tuple[str, int], up: bool) -> bool:
        """Apply a health verdict to every running frontend; answers whether one changed."""
        return self.set_verdicts({key: up})

    def set_verdicts(self, verdicts: dict[tuple[str, int], bool]) -> bool:
        """Apply many verdicts with at most one rebuild per frontend; answers whether any
        changed. A probe round that takes 10,000 targets down at once costs one pass over the
        frontends' targets, not 10,000 passes over the frontends."""
        if self._index is None:  # target -> the frontends that have it, rebuilt after changes
            index: dict[tuple[str, int], list[BackendSet]] = {}
            for run in self.running.values():
                for backend in run.backends.backends:
                    index.setdefault(backend.key, []).append(run.backends)
            self._index = index
        by_set: dict[int, tuple[BackendSet, list[tuple[tuple[str, int], bool]]]] = {}
        for key, up in verdicts.items():
            for backends in self._index.get(key, ()):
                by_set.setdefault(id(backends), (backends, []))[1].append((key, up))
        changed = False
        for backends, mine in by_set.values():
            changed |= backends.set_many(mine)
        return changed

    def _sync_verdicts(self, backends: BackendSet) -> None:
        """A target the checker already holds down starts down, not "up" (only ever marks
        down: a verdict copied from a replaced frontend is never undone here)."""
        backends.set_many((b.key, False) for b in backends.backends
                          if not self.health.is_up(b.key))

    def _on_health(self, key: tuple[str, int], up: bool, reason: str) -> None:
        """Verdicts are applied in batches: every verdict that arrives in one turn of the loop
        (a probe round's worth, read from the checker's pipe at once) lands together."""
        if not self._verdict_batch:
            asyncio.get_running_loop().call_soon(self._apply_verdicts)
        self._verdict_batch[key] = (up, reason)

    def _apply_verdicts(self) -> None:
        batch, self._verdict_batch = self._verdict_batch, {}
        if not batch:
            return
        verdicts = {key: up for key, (up, _) in batch.items()}
        changed = self.set_verdicts(verdicts)
        for listener in self.verdict_listeners:
            listener()
        if self.workers is not None:
            self.workers.set_verdicts(verdicts)
        if not self._kernel_keys.isdisjoint(verdicts):
            changed = True
            if not self._kernel_pending:
                self._kernel_pending = True
                asyncio.get_running_loop().create_task(self._reprogram_kernel())
        if changed and self.log_health and not isinstance(self.health, HealthProcess):
            # (the checker's process logs every transition itself: once is enough)
            for key, (up, reason) in batch.items():
                log.info("target %s:%d %s: %s", key[0], key[1], "up" if up else "down", reason)

    async def _reprogram_kernel(self) -> None:
        await asyncio.sleep(KERNEL_DEBOUNCE)
        async with self._lock:
            self._kernel_pending = False
            await self._program_kernel(list(self.in_kernel.values()))

    async def _program_kernel(self, kernel: list[BalancerConfig]) -> None:
        """One nft transaction for every kernel balancer, with the current verdicts."""
        if self.kernel is None or (not kernel and not self._kernel_applied):
            return
        verdicts = self.health.verdicts()

        def is_up(key: tuple[str, int]) -> bool:
            return verdicts.get(key, True)

        try:
            seconds = await asyncio.to_thread(self.kernel.apply, kernel, is_up)
        except NftError as exc:
            self.kernel_error = f"nft transaction failed, the previous rules stay: {exc}"
            log.error("nft transaction failed: %s %s", exc, exc.stderr)
            return
        self.kernel_error = None
        self._kernel_applied = bool(kernel)
        self.kernel_seconds += seconds
        self.kernel_transactions += 1

    def _connect_failed(self, backend: Backend) -> None:
        self.health.report_failure((backend.address, backend.port),
                                   f"connection to {backend.address}:{backend.port} failed")

    # -- apply ------------------------------------------------------------------------------
    async def apply(self, balancers: list[BalancerConfig]) -> None:
        """Converge the running frontends on `balancers` (each name once, no clashes)."""
        async with self._lock:
            await self._apply(balancers)

    async def _apply(self, balancers: list[BalancerConfig]) -> None:
        problems = Problems()
        wanted: dict[FrontKey, tuple[BalancerConfig, ListenerConfig]] = {}
        kernel: list[BalancerConfig] = []
        userspace: list[BalancerConfig] = []
        for b in balancers:
            if b.dataplane == "nftables":
                if self.kernel is not None:
                    kernel.append(b)
                    continue
                problems.add(b.name, NFTABLES_FALLBACK.format(why=self.kernel_reason))
            userspace.append(b)
            for li in b.listeners:
                for vip in b.addresses:
                    wanted[(li.protocol, vip, li.port)] = (b, li)
        for key in [k for k in self.running if k not in wanted]:
            await self._stop(key)
        owners: dict[str, ListenerConfig] = {_owner(b.name, li): li
                                             for b in kernel for li in b.listeners}
        for key, (b, li) in wanted.items():
            owners[_owner(b.name, li)] = li
            run = self.running.get(key)
            if run is not None and run.balancer == b.name and \
                    run.signature == _signature(b, li):
                if run.listener != li:
                    run.backends.update(li.targets, b.drain_seconds)
                    self._index = None
                    self._sync_verdicts(run.backends)
                    run.listener = li
                    await asyncio.sleep(0)  # one frontend at a time, then traffic
                if isinstance(run.frontend, TcpFrontend):  # both are read at each connect
                    run.frontend.connect_timeout = li.connect_timeout
                    run.frontend.congestion = self._congestion(b.name, li, problems)
                continue
            try:
                await self._start(key, b, li, problems)
            except OSError as exc:
                message = f"cannot serve {key[1]}:{key[2]}/{key[0]}: {exc.strerror or exc}"
                problems.add(b.name, message)
                log.error("balancer %s: %s", b.name, message)
            await asyncio.sleep(0)
        await self._watch_owners(owners)
        self.in_kernel = {b.name: b for b in kernel}
        self._kernel_keys = {(t.address, t.port) for b in kernel for li in b.listeners
                             for t in li.targets}
        await self._program_kernel(kernel)
        if self.workers is not None:
            verdicts = self.health.verdicts()
            for name, found in (await self.workers.apply(userspace, verdicts)).items():
                for message in found:
                    problems.add(name, f"a data plane worker {message}")
        self.desired = {b.name: b for b in balancers}
        self.problems = problems

    async def _watch_owners(self, owners: dict[str, ListenerConfig]) -> None:
        """Tell the checker what each listener's targets are: only for listeners that changed
        (the store hands back the same object for an unchanged balancer), so re-programming one
        balancer of many costs its own targets, not everyone's; one listener at a time."""
        for owner in [o for o in self._watched if o not in owners]:
            self.health.set_owner_targets(owner, [])
            del self._watched[owner]
        for owner, li in owners.items():
            if self._watched.get(owner) is li:
                continue
            self.health.set_owner_targets(owner, _checks(li))
            self._watched[owner] = li
            await asyncio.sleep(0)

    @staticmethod
    def _congestion(balancer: str, li: ListenerConfig, problems: Problems) -> bytes:
        """The listener's upstream congestion control if this process may set it; else b""
        and the reason among the balancer's problems."""
        name = li.upstream_congestion_control
        if not name:
            return b""
        problem = congestion_problem(name)
        if problem is not None:
            problems.add(balancer, problem)
            return b""
        return name.encode()

    async def _start(self, key: FrontKey, b: BalancerConfig, li: ListenerConfig,
                     problems: Problems) -> None:
        protocol, vip, port = key
        old = self.running.get(key)
        backends = BackendSet(li.targets, li.algorithm, b.session_affinity)
        if old is not None:  # keep health verdicts across a replacement
            backends.set_many(((b.address, b.port), b.up) for b in old.backends.backends)
        self._sync_verdicts(backends)
        stats = ListenerStats()
        acl = Acl(b.source_ranges)
        frontend: TcpFrontend | UdpFrontend
        if protocol == "TCP":
            frontend = TcpFrontend(vip, port, backends, acl,
                                   proxy_protocol=li.proxy_protocol == "v2", stats=stats,
                                   on_connect_failure=self._connect_failed,
                                   connect_timeout=li.connect_timeout)
            frontend.congestion = self._congestion(b.name, li, problems)
        else:
            frontend = UdpFrontend(vip, port, backends, acl,
                                   idle_timeout=li.idle_timeout_seconds, stats=stats,
                                   on_unreachable=self._connect_failed)
        await frontend.start()
        self.running[key] = Running(b.name, li, _signature(b, li), backends, frontend, stats)
        self._index = None
        if old is not None:
            await self._close(old)
        log.info("serving %s:%d/%s for balancer %s (%d targets)", vip, port, protocol, b.name,
                 len(li.targets))

    async def _stop(self, key: FrontKey) -> None:
        run = self.running.pop(key)
        self._index = None
        await self._close(run)
        log.info("stopped %s:%d/%s of balancer %s", key[1], key[2], key[0], run.balancer)

    @staticmethod
    async def _close(run: Running) -> None:
        await run.frontend.stop()
        run.backends.close_all()

    async def close(self) -> None:
        """Stop serving: frontends closed, lbctl's nft table deleted (conntrack keeps the
        NAT of established flows; new ones wait for the next instance)."""
        async with self._lock:
            for key in list(self.running):
                await self._stop(key)
            if self.kernel is not None and self._kernel_applied:
                try:
                    await asyncio.to_thread(self.kernel.clear)
                except NftError as exc:
                    log.error("could not delete the nft table: %s", exc)
            children = [self.health.close()]
            if self.workers is not None:
                children.append(self.workers.close())
            await asyncio.gather(*children)  # side by side: each has a deadline of its own

    # -- reporting --------------------------------------------------------------------------
    def status(self, name: str) -> dict[str, Any]:
        """Target health and problems of one balancer, as the API reports it."""
        return balancer_status(self, name)

    def totals(self, key: FrontKey) -> ListenerStats:
        """A frontend's counters over this process and its workers."""
        run = self.running.get(key)
        local = run.stats if run is not None else ListenerStats()
        if self.workers is None:
            return local
        total = self.workers.stats(key)
        for name, value in local.as_dict().items():
            setattr(total, name, getattr(total, name) + value)
        return total

    @property
    def kernel_applied(self) -> bool:
        return self._kernel_applied
