"""Active health checks for the balancer's targets, and passive ejection.

A balancer must stop sending new connections to a node that stopped answering (or, with
`externalTrafficPolicy: Local`, to a node whose kube-proxy healthCheckNodePort answers 503
because it has no local endpoints) and send to it again once it recovers, without flapping on
one lost SYN: so state changes only after `unhealthy_threshold` / `healthy_threshold`
consecutive results, as HAProxy and cloud LBs do. New targets start UP (HAProxy's default) so a
scale-out is served at once, and their first probe runs right away (jittered by at most 10% of
the interval, so thousands of targets do not probe in lockstep).

One probe stream per distinct probe (address, check type, probed port, path), whoever asks:
the owners of an endpoint (the listeners of a dual-stack Service, ...) share it, and so do
targets that differ only in their port when the check names a port of its own: a Service's
ports on one node share its `/healthz` on healthCheckNodePort, and every Service's targets on
a node share kube-proxy's `:10256/healthz` (one probe per node per interval, not one per
nodePort). If owners disagree on the check, each distinct check is probed and the endpoint is
up only while all of them pass: the data plane has one entry per endpoint.

When the data plane itself sees a connect fail it calls `report_failure`: that target (not the
others sharing its probes) is out at once and must earn `healthy_threshold` active successes
of probes started after the failure to come back (its probes are re-run immediately).
Probes (`probes.py`) run behind one semaphore, so 10k targets never hold 10k sockets at once.

Not split: `HealthChecker` is one state machine (probe streams shared by targets and owners,
thresholds, passive ejections that outlive a stream's verdict); splitting it would spread the
sharing invariant over modules.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lbctl.balancer.model import HealthCheckConfig
from lbctl.balancer.probes import TIMED_OUT, Limit, describe_errno, hostport, http, tcp

log = logging.getLogger(__name__)

TargetKey = tuple[str, int]
"""(address, port) of a target: the data-plane endpoint."""
OnChange = Callable[[TargetKey, bool, str], None]
_ProbeId = tuple[str, str, int, str]
"""(address, check type, probed port, path): what one probe stream checks."""
_Owner = tuple[str, TargetKey]
"""(owner, target): who asked for a stream, for which of its targets."""

DEFAULT_MAX_CONCURRENCY = 256
_JITTER = 0.1


@dataclass(frozen=True)
class TargetHealth:
    """One endpoint as `status()` reports it."""

    up: bool
    reason: str
    """Why it is in its current state (the reason given with the last change)."""
    last_change: float
    """The checker's clock (monotonic) at the last change, or when first watched."""
    consecutive_successes: int
    consecutive_failures: int
    probes: int
    failures: int
    owners: tuple[str, ...]


@dataclass(eq=False)
class _Stream:
    pid: _ProbeId
    owners: dict[_Owner, HealthCheckConfig]
    up: bool
    reason: str
    check: HealthCheckConfig = field(init=False)
    keys: Counter[TargetKey] = field(default_factory=Counter)
    """The targets this probe decides for, each with the number of owners asking."""
    ejected: set[TargetKey] = field(default_factory=set)
    """Those of `keys` out by a passive failure, waiting for successes of this probe."""
    successes: int = 0
    fails: int = 0
    probes: int = 0
    failures: int = 0
    due: float = 0.0
    last_start: float | None = None
    waker: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        """The fastest-probing owner sets the pace (ties: the first owner id)."""
        self.check = min(self.owners.items(), key=lambda kv: (kv[1].interval_seconds, kv[0]))[1]


@dataclass(eq=False)
class _Target:
    up: bool
    reason: str
    last_change: float
    streams: dict[_ProbeId, _Stream] = field(default_factory=dict)
    ejected_at: float | None = None
    """Loop time of the passive failure that took it out (None: not ejected)."""
    recovered: int = 0
    """Successes since then, of probes started after it."""


def _probe_id(key: TargetKey, check: HealthCheckConfig) -> _ProbeId:
    address, port = key
    if check.type == "none":
        return (address, "none", port, "")
    return (address, check.type, check.port or port, check.path if check.type == "http" else "")


def _describe(pid: _ProbeId) -> str:
    address, kind, port, path = pid
    if kind == "http":
        return f"HTTP {path} on {hostport(address, port)}"
    return f"TCP connect to {hostport(address, port)}"


def _passed(n: int) -> str:
    return f"{n} check{'s' if n != 1 else ''} passed"


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class HealthChecker:
    """Probes watched targets and calls `on_change(key, up, reason)` on every transition.

    Targets start UP; `on_change` is not called for that initial state, so a consumer treats
    an endpoint it has not heard about as up (`is_up` does). Methods other than `close` are
    synchronous but must be called from inside the running event loop.
    """

    def __init__(self, on_change: OnChange, *, clock: Callable[[], float] = time.monotonic,
                 max_concurrency: int = DEFAULT_MAX_CONCURRENCY) -> None:
        self._on_change = on_change
        self._clock = clock
        self._limit = Limit(max_concurrency)
        self._targets: dict[TargetKey, _Target] = {}
        self._streams: dict[_ProbeId, _Stream] = {}
        self._watching: dict[str, dict[TargetKey, _ProbeId]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._probes = self._failures = self._ejections = self._transitions = 0

    # --- counters (for a Prometheus collector) ------------------------------------------------

    @property
    def probes_total(self) -> int:
        return self._probes

    @property
    def probe_failures_total(self) -> int:
        return self._failures

    @property
    def ejections_total(self) -> int:
        """Passive failures that took an UP target out."""
        return self._ejections

    @property
    def transitions_total(self) -> int:
        return self._transitions

    @property
    def probe_streams(self) -> int:
        """Distinct probes being run (after de-duplication across owners and targets)."""
        return sum(1 for s in self._streams.values() if s.task is not None)

    # --- what to watch ----------------------------------------------------------------------

    def watch(self, key: TargetKey, check: HealthCheckConfig, *, owner: str) -> None:
        """Start checking `key` for `owner`, or switch that owner to a new `check`."""
        if self._closed:
            raise RuntimeError("HealthChecker is closed")
        loop = asyncio.get_running_loop()
        pid = _probe_id(key, check)
        mine = self._watching.setdefault(owner, {})
        old = mine.get(key)
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _Target(True, "new target", self._clock())
        stream = self._streams.get(pid)
        if stream is None:
            stream = self._add_stream(loop, target, pid, (owner, key), check)
        elif (owner, key) not in stream.owners or stream.owners[(owner, key)] != check:
            stream.owners[(owner, key)] = check
            stream.refresh()
            if stream.last_start is not None:  # a shorter interval applies now, not next time
                self._wake(stream, stream.last_start + stream.check.interval_seconds)
        if old != pid:
            stream.keys[key] += 1
            target.streams[pid] = stream
            if target.ejected_at is not None and stream.task is not None:
                stream.ejected.add(key)
            mine[key] = pid
            if old is not None:  # added first, so the target's state carries over
                self._detach(key, old, owner)
            self._reconcile(key, target, stream.reason)

    def unwatch(self, key: TargetKey, owner: str) -> None:
        """Stop checking `key` for `owner`; probing stops when no owner is left."""
        mine = self._watching.get(owner)
        if not mine or key not in mine:
            return
        pid = mine.pop(key)
        if not mine:
            del self._watching[owner]
        self._detach(key, pid, owner)

    def set_owner_targets(self, owner: str,
                          items: Iterable[tuple[TargetKey, HealthCheckConfig]]) -> None:
        """Watch exactly `items` for `owner` (the last entry wins for a repeated key)."""
        wanted = dict(items)
        for key, check in wanted.items():
            self.watch(key, check, owner=owner)
        for key in [k for k in self._watching.get(owner, {}) if k not in wanted]:
            self.unwatch(key, owner)

    # --- passive results --------------------------------------------------------------------

    def report_failure(self, key: TargetKey, reason: str) -> None:
        """The data plane failed to reach `key`: DOWN now, its probes re-run at once, and back
        only after `healthy_threshold` successes of probes started from now. Unwatched and
        `none` targets ignore it; so does an ejected target (its schedule stands)."""
        target = self._targets.get(key)
        if target is None:
            return
        probed = [s for s in target.streams.values() if s.task is not None]
        if not probed:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        again = target.ejected_at is not None
        target.ejected_at, target.recovered = now, 0
        if again:
            return
        for stream in probed:
            stream.ejected.add(key)
            if stream.up:  # already-failing probes keep their schedule: no re-probe storm
                self._wake(stream, now)
        if target.up:
            self._ejections += 1
        self._reconcile(key, target, f"ejected: {reason}")

    def report_success(self, key: TargetKey) -> None:
        """Accepted for symmetry; recovery is decided by active probes alone."""

    # --- reading ----------------------------------------------------------------------------

    def is_up(self, key: TargetKey) -> bool:
        target = self._targets.get(key)
        return target is None or target.up

    def reason(self, key: TargetKey) -> str:
        """Why `key` is up or down now, in words ("" when unwatched): O(1), for status pages
        that ask about every target."""
        target = self._targets.get(key)
        return target.reason if target is not None else ""

    def verdicts(self) -> dict[TargetKey, bool]:
        """Every watched target's verdict; the copy is made in one step under the GIL, so
        another thread may ask while this checker's loop runs."""
        return {key: target.up for key, target in list(self._targets.items())}

    def status(self) -> dict[TargetKey, TargetHealth]:
        """Every target in detail (tests, debugging): O(targets x owners of their probes)."""
        out: dict[TargetKey, TargetHealth] = {}
        for key, target in self._targets.items():
            streams = list(target.streams.values())
            out[key] = TargetHealth(
                up=target.up, reason=target.reason, last_change=target.last_change,
                consecutive_successes=min(s.successes for s in streams),
                consecutive_failures=max(s.fails for s in streams),
                probes=sum(s.probes for s in streams), failures=sum(s.failures for s in streams),
                owners=tuple(sorted({o for s in streams for (o, k) in s.owners if k == key})))
        return out

    async def close(self) -> None:
        """Cancel every probe and wait for them; the checker cannot be reused."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._targets.clear()
        self._streams.clear()
        self._watching.clear()

    async def __aenter__(self) -> HealthChecker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- internals --------------------------------------------------------------------------

    def _add_stream(self, loop: asyncio.AbstractEventLoop, target: _Target, pid: _ProbeId,
                    owner: _Owner, check: HealthCheckConfig) -> _Stream:
        if check.type == "none":
            stream = _Stream(pid, {owner: check}, True, "not checked")
        else:  # a new check of a known target inherits its state: no flap on a config change
            up = target.up or target.ejected_at is not None  # an ejection stays the target's
            stream = _Stream(pid, {owner: check}, up, target.reason)
            jitter = random.uniform(0, _JITTER * check.interval_seconds)  # noqa: S311
            stream.due = loop.time() + jitter
            task = loop.create_task(self._run(stream), name=f"health: {_describe(pid)}")
            stream.task = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._streams[pid] = stream
        return stream

    def _detach(self, key: TargetKey, pid: _ProbeId, owner: str) -> None:
        stream = self._streams[pid]
        del stream.owners[(owner, key)]
        stream.keys[key] -= 1
        if stream.keys[key] <= 0:
            del stream.keys[key]
            stream.ejected.discard(key)
            target = self._targets[key]
            del target.streams[pid]
            if not target.streams:
                del self._targets[key]
            else:
                self._reconcile(key, target, f"no longer checked: {_describe(pid)}")
        if stream.owners:
            stream.refresh()
            return
        del self._streams[pid]
        if stream.task is not None:
            stream.task.cancel()

    def _wake(self, stream: _Stream, when: float) -> None:
        if when < stream.due:
            stream.due = when
            if stream.waker is not None:
                _resolve(stream.waker)

    async def _run(self, stream: _Stream) -> None:
        loop = asyncio.get_running_loop()
        while True:
            delay = stream.due - loop.time()
            if delay > 0:  # sleep, but let an ejection or a shorter interval cut it short
                stream.waker = fut = loop.create_future()
                handle = loop.call_later(delay, _resolve, fut)
                try:
                    await fut
                finally:
                    handle.cancel()
                    stream.waker = None
                continue
            stream.last_start = started = loop.time()
            stream.due = started + stream.check.interval_seconds
            ok, reason = await self._probe(stream)
            self._record(stream, ok, reason, started)

    async def _probe(self, stream: _Stream) -> tuple[bool, str]:
        limit = self._limit
        if not limit.try_acquire():
            await limit.wait()
        try:
            return await self._probe_once(stream)
        finally:
            limit.release()

    async def _probe_once(self, stream: _Stream) -> tuple[bool, str]:
        address, kind, port, path = stream.pid
        timeout = stream.check.timeout_seconds
        if kind != "http":  # the hot path: no timeout context, no exception on failure
            err = await tcp(address, port, timeout)
            if err == 0:
                return True, "connected"
            if err == TIMED_OUT:
                return False, f"{_describe(stream.pid)} timed out after {timeout:g}s"
            return False, f"{_describe(stream.pid)} {describe_errno(err)}"
        what = _describe(stream.pid)
        try:
            async with asyncio.timeout(timeout):
                return await http(address, port, path, what)
        except TimeoutError:
            return False, f"{what} timed out after {timeout:g}s"
        except ConnectionRefusedError:
            return False, f"{what} refused"
        except OSError as exc:
            return False, f"{what} failed: {exc.strerror or exc}"
        except Exception as exc:  # a probe must never kill its stream
            return False, f"{what} failed: {type(exc).__name__}: {exc}"

    def _record(self, stream: _Stream, ok: bool, reason: str, started: float) -> None:
        stream.probes += 1
        self._probes += 1
        if not ok:
            stream.failures += 1
            self._failures += 1
        check = stream.check
        was = stream.up
        if ok:
            stream.successes, stream.fails = stream.successes + 1, 0
            if not stream.up and stream.successes >= check.healthy_threshold:
                stream.up, stream.reason = True, _passed(stream.successes)
        else:
            stream.successes, stream.fails = 0, stream.fails + 1
            if stream.up and stream.fails >= check.unhealthy_threshold:
                stream.up, stream.reason = False, reason
        for key in list(stream.ejected):  # passive failures wait for probes started after
            target = self._targets[key]
            assert target.ejected_at is not None
            if not ok:
                target.recovered = 0
            elif started >= target.ejected_at:
                target.recovered += 1
                if target.recovered >= check.healthy_threshold:
                    target.ejected_at = None
                    for s in target.streams.values():
                        s.ejected.discard(key)
                    self._reconcile(key, target, _passed(target.recovered))
        if stream.up != was:
            for key in stream.keys:
                self._reconcile(key, self._targets[key], stream.reason)

    def _reconcile(self, key: TargetKey, target: _Target, reason: str) -> None:
        up = target.ejected_at is None and all(s.up for s in target.streams.values())
        if up == target.up:
            return
        target.up, target.reason, target.last_change = up, reason, self._clock()
        self._transitions += 1
        log.info("target %s is %s: %s", hostport(*key), "up" if up else "down", reason)
        try:
            self._on_change(key, up, reason)
        except Exception:
            log.exception("health on_change callback failed for %s", hostport(*key))
