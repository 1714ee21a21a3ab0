"""Active health checks for the balancer's targets, and passive ejection.

A balancer must stop sending new connections to a node that stopped answering (or, with
`externalTrafficPolicy: Local`, to a node whose kube-proxy healthCheckNodePort answers 503
because it has no local endpoints) and send to it again once it recovers, without flapping on
one lost SYN: so state changes only after `unhealthy_threshold` / `healthy_threshold`
consecutive results, as HAProxy and cloud LBs do. New targets start UP (HAProxy's default) so a
scale-out is served at once, and their first probe runs right away (jittered by at most 10% of
the interval, so thousands of targets do not probe in lockstep).

One endpoint is often listed by several owners (the listeners of a dual-stack Service, ...):
they share one probe stream per (endpoint, check type, check port, path), so a node is not
probed N times per interval. If owners disagree on the check, each distinct check is probed and
the endpoint is up only while all of them pass: the data plane has one entry per endpoint.

When the data plane itself sees a connect fail it calls `report_failure`: the target is out at
once and must earn `healthy_threshold` active successes to come back (re-probed immediately).
Probes are raw asyncio streams (one socket, a few syscalls, works under uvloop) behind one
semaphore, so 10k targets never hold 10k sockets at once.

Not split: `HealthChecker` is one state machine (probe streams shared by owners, thresholds,
passive reports that cut a stream short); its helpers are private to it, and splitting them out
would spread the sharing invariant over modules for ~100 lines' gain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

from lbctl.balancer.model import HealthCheckConfig

log = logging.getLogger(__name__)

TargetKey = tuple[str, int]
"""(address, port) of a target: the data-plane endpoint."""
OnChange = Callable[[TargetKey, bool, str], None]
_ProbeId = tuple[str, int, str, int, str]
"""(address, port, check type, effective check port, path): what one probe stream checks."""

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
    owners: dict[str, HealthCheckConfig]
    up: bool
    reason: str
    check: HealthCheckConfig = field(init=False)
    successes: int = 0
    fails: int = 0
    probes: int = 0
    failures: int = 0
    epoch: int = 0
    """Bumped by an ejection: a probe started before it must not count towards recovery."""
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


def _probe_id(key: TargetKey, check: HealthCheckConfig) -> _ProbeId:
    address, port = key
    if check.type == "none":
        return (address, port, "none", 0, "")
    return (address, port, check.type, check.port or port, check.path if check.type == "http"
            else "")


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _describe(pid: _ProbeId) -> str:
    address, _, kind, port, path = pid
    if kind == "http":
        return f"HTTP {path} on {_hostport(address, port)}"
    return f"TCP connect to {_hostport(address, port)}"


def _passed(n: int) -> str:
    return f"{n} check{'s' if n != 1 else ''} passed"


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _tcp(address: str, port: int) -> tuple[bool, str]:
    _, writer = await asyncio.open_connection(address, port)
    await _close(writer)
    return True, "connected"


async def _http(address: str, port: int, path: str, what: str) -> tuple[bool, str]:
    reader, writer = await asyncio.open_connection(address, port)
    try:
        writer.write(f"GET {quote(path, safe='/%?&=:@!$()*+,;~-._')} HTTP/1.1\r\n"
                     f"Host: {_hostport(address, port)}\r\nUser-Agent: lbctl-health\r\n"
                     "Accept: */*\r\nConnection: close\r\n\r\n".encode("ascii"))
        await writer.drain()
        line = await reader.readline()
    finally:
        await _close(writer)
    if not line:
        return False, f"{what} closed the connection without answering"
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return False, f"{what} answered something that is not HTTP"
    code = int(parts[1])
    return 200 <= code < 300, f"{what} answered {code}"


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
        self._sem = asyncio.Semaphore(max_concurrency)
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
        """Distinct probes being run (after de-duplication across owners)."""
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
        stream = self._streams.get(pid)
        if stream is None:
            self._add_stream(loop, key, pid, owner, check)
        else:
            stream.owners[owner] = check
            stream.refresh()
            if stream.last_start is not None:  # a shorter interval applies now, not next time
                self._wake(stream, stream.last_start + stream.check.interval_seconds)
        mine[key] = pid
        if old is not None and old != pid:  # added first, so the target's state carries over
            self._detach(key, old, owner)

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
        """The data plane failed to reach `key`: DOWN now, re-probed at once, and back only
        after `healthy_threshold` active successes. Unwatched and `none` targets ignore it."""
        target = self._targets.get(key)
        if target is None:
            return
        ejected = False
        loop = asyncio.get_running_loop()
        for stream in target.streams.values():
            if stream.task is None:
                continue
            stream.epoch += 1
            stream.successes = 0
            if stream.up:  # already-down streams keep their schedule: no re-probe storm
                stream.up, stream.reason, ejected = False, f"ejected: {reason}", True
                self._wake(stream, loop.time())
        if ejected:
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
        another thread may ask while this checker's loop runs (`HealthThread`)."""
        return {key: target.up for key, target in list(self._targets.items())}

    def status(self) -> dict[TargetKey, TargetHealth]:
        out: dict[TargetKey, TargetHealth] = {}
        for key, target in self._targets.items():
            streams = list(target.streams.values())
            out[key] = TargetHealth(
                up=target.up, reason=target.reason, last_change=target.last_change,
                consecutive_successes=min(s.successes for s in streams),
                consecutive_failures=max(s.fails for s in streams),
                probes=sum(s.probes for s in streams), failures=sum(s.failures for s in streams),
                owners=tuple(sorted({o for s in streams for o in s.owners})))
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

    def _add_stream(self, loop: asyncio.AbstractEventLoop, key: TargetKey, pid: _ProbeId,
                    owner: str, check: HealthCheckConfig) -> None:
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _Target(True, "new target", self._clock())
        if check.type == "none":
            stream = _Stream(pid, {owner: check}, True, "not checked")
        else:  # a new check on a known endpoint inherits its state: no flap on a config change
            stream = _Stream(pid, {owner: check}, target.up, target.reason)
            jitter = random.uniform(0, _JITTER * check.interval_seconds)  # noqa: S311
            stream.due = loop.time() + jitter
            task = loop.create_task(self._run(key, stream), name=f"health: {_describe(pid)}")
            stream.task = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        target.streams[pid] = stream
        self._streams[pid] = stream

    def _detach(self, key: TargetKey, pid: _ProbeId, owner: str) -> None:
        stream = self._streams[pid]
        del stream.owners[owner]
        if stream.owners:
            stream.refresh()
            return
        del self._streams[pid]
        if stream.task is not None:
            stream.task.cancel()
        target = self._targets[key]
        del target.streams[pid]
        if not target.streams:
            del self._targets[key]
        else:
            self._reconcile(key, target, f"no longer checked: {_describe(pid)}")

    def _wake(self, stream: _Stream, when: float) -> None:
        if when < stream.due:
            stream.due = when
            if stream.waker is not None:
                _resolve(stream.waker)

    async def _run(self, key: TargetKey, stream: _Stream) -> None:
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
            epoch = stream.epoch
            ok, reason = await self._probe(stream)
            self._record(key, stream, ok, reason, counts=stream.epoch == epoch)

    async def _probe(self, stream: _Stream) -> tuple[bool, str]:
        address, _, kind, port, path = stream.pid
        what = _describe(stream.pid)
        timeout = stream.check.timeout_seconds
        async with self._sem:
            try:
                async with asyncio.timeout(timeout):
                    if kind == "http":
                        return await _http(address, port, path, what)
                    return await _tcp(address, port)
            except TimeoutError:
                return False, f"{what} timed out after {timeout:g}s"
            except ConnectionRefusedError:
                return False, f"{what} refused"
            except OSError as exc:
                return False, f"{what} failed: {exc.strerror or exc}"
            except Exception as exc:  # a probe must never kill its stream
                return False, f"{what} failed: {type(exc).__name__}: {exc}"

    def _record(self, key: TargetKey, stream: _Stream, ok: bool, reason: str, *,
                counts: bool) -> None:
        stream.probes += 1
        self._probes += 1
        if not ok:
            stream.failures += 1
            self._failures += 1
        if not counts:  # started before an ejection: says nothing about the recovery
            return
        check = stream.check
        if ok:
            stream.successes, stream.fails = stream.successes + 1, 0
            if not stream.up and stream.successes >= check.healthy_threshold:
                stream.up, stream.reason = True, _passed(stream.successes)
        else:
            stream.successes, stream.fails = 0, stream.fails + 1
            if stream.up and stream.fails >= check.unhealthy_threshold:
                stream.up, stream.reason = False, reason
        target = self._targets.get(key)
        if target is not None:
            self._reconcile(key, target, stream.reason)

    def _reconcile(self, key: TargetKey, target: _Target, reason: str) -> None:
        up = all(s.up for s in target.streams.values())
        if up == target.up:
            return
        target.up, target.reason, target.last_change = up, reason, self._clock()
        self._transitions += 1
        log.info("target %s is %s: %s", _hostport(*key), "up" if up else "down", reason)
        try:
            self._on_change(key, up, reason)
        except Exception:
            log.exception("health on_change callback failed for %s", _hostport(*key))
