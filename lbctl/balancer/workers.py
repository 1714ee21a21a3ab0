"""Worker processes for the userspace data plane: more than one core for its connections.

Why processes: the TCP proxy moves bytes in the kernel (splice), but accepting, connecting and
every readiness callback run Python under one GIL, so one process tops out on one core (new
connections/s and small requests are what hit it first). `--workers N` runs N-1 worker
processes next to the daemon (worker.py); every process binds the same VIP:port with
SO_REUSEPORT and the kernel spreads new connections (TCP) and flows (UDP: by 4-tuple hash, so a
flow stays in one process) across them. The daemon stays the only brain: it owns the store, the
API, the health probes, nftables and L2. Workers get the userspace balancers and the verdicts
over a pipe and report passive connect failures (-> the daemon's checker ejects the target and
tells everyone) and counters (-> metrics and status) back. A worker that dies is restarted
with the current balancers and verdicts (backoff up to 30 s); its counters are kept so the
metrics' counters never go backwards; the connections it held are lost, the other processes'
are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from .backends import EndpointKey, ListenerStats
from .model import BalancerConfig, to_json

log = logging.getLogger(__name__)

FrontKey = tuple[str, str, int]
APPLY_TIMEOUT = 30.0
RESTART_MAX_SECONDS = 30.0
STABLE_SECONDS = 60.0
"""A worker up this long starts its restart backoff afresh."""
LINE_LIMIT = 256 * 1024 * 1024
"""The largest message (an apply of every balancer) either side's pipe reader accepts."""
_COUNTERS = [f.name for f in fields(ListenerStats) if f.name != "active"]


def run_on_loop(event_loop: str, main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on the loop the daemon and its workers share: `auto` (uvloop when
    installed), `uvloop` (required) or `asyncio`."""
    if event_loop in ("uvloop", "auto"):
        try:
            import uvloop  # noqa: PLC0415 - optional accelerator
        except ImportError:
            if event_loop == "uvloop":
                main.close()
                raise
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


async def read_messages(proc: asyncio.subprocess.Process, who: str,
                        handle: Callable[[dict[str, Any]], None]) -> None:
    """Hand every JSON line a child writes to `handle` until EOF. A line over LINE_LIMIT
    makes the stream unusable: the child is killed (and restarted by its owner); one
    message `handle` cannot use is logged and skipped."""
    assert proc.stdout is not None
    while True:
        try:
            line = await proc.stdout.readline()
        except ValueError as exc:
            log.error("%s: %s; restarting it", who, exc)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            return
        if not line:
            return
        try:
            handle(orjson.loads(line))
        except Exception as exc:  # one bad message must not stop the reading
            log.error("%s sent a message the daemon cannot use: %r", who, exc)


@dataclass
class FrontendStats:
    """One frontend's counters in one worker, and its targets' (active, total, failures)."""

    stats: ListenerStats = field(default_factory=ListenerStats)
    targets: dict[EndpointKey, tuple[int, int, int]] = field(default_factory=dict)


class _Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.frontends: dict[FrontKey, FrontendStats] = {}
        self.acks: dict[int, asyncio.Future[dict[str, list[str]]]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.started = 0.0
        self.failures = 0
        """Restarts in a row without STABLE_SECONDS of uptime (the backoff's exponent)."""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def send(self, message: dict[str, Any]) -> None:
        if self.alive and self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.write(orjson.dumps(message) + b"\n")


class WorkerPool:
    """`count` worker processes mirroring the daemon's userspace balancers."""

    def __init__(self, count: int, on_failure: Callable[[EndpointKey, str], None], *,
                 log_format: str = "text", event_loop: str = "auto") -> None:
        self.workers = [_Worker(i + 1) for i in range(count)]
        self._on_failure = on_failure
        self._argv = [sys.executable, "-m", "lbctl.balancer.worker", "--log-format", log_format,
                      "--event-loop", event_loop]
        self._seq = 0
        self._last: dict[str, Any] | None = None
        self._verdicts: dict[EndpointKey, bool] = {}
        self._retired: dict[FrontKey, ListenerStats] = {}
        self._closing = False
        self._restarts: set[asyncio.Task[None]] = set()
        self.restarts = 0

    async def start(self) -> None:
        for worker in self.workers:
            await self._spawn(worker)

    async def _spawn(self, worker: _Worker) -> None:
        worker.proc = await asyncio.create_subprocess_exec(
            *self._argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT)
        loop = asyncio.get_running_loop()
        worker.started = loop.time()
        worker.reader = loop.create_task(self._read(worker))
        log.info("data plane worker %d started (pid %d)", worker.index, worker.proc.pid)
        if self._last is not None:
            worker.send(self._apply_message())

    def _apply_message(self) -> dict[str, Any]:
        assert self._last is not None
        self._seq += 1
        return {**self._last, "seq": self._seq,
                "verdicts": [[a, p, up] for (a, p), up in self._verdicts.items()]}

    async def _read(self, worker: _Worker) -> None:
        proc = worker.proc
        assert proc is not None
        await read_messages(proc, f"worker {worker.index}", lambda m: self._handle(worker, m))
        await proc.wait()
        for ack in worker.acks.values():
            if not ack.done():
                ack.set_result({})
        worker.acks.clear()
        self._retire(worker)
        if not self._closing:
            task = asyncio.get_running_loop().create_task(
                self._restart(worker, f"pid {proc.pid} exited with {proc.returncode}"))
            self._restarts.add(task)
            task.add_done_callback(self._restarts.discard)

    async def _restart(self, worker: _Worker, why: str) -> None:
        """Spawn `worker` again after a backoff, unless the daemon started stopping meanwhile
        (a SIGTERM to the whole process group reaches the workers first: not a crash)."""
        loop = asyncio.get_running_loop()
        if loop.time() - worker.started >= STABLE_SECONDS:
            worker.failures = 0
        while not self._closing:
            delay = min(RESTART_MAX_SECONDS, 0.5 * 2 ** min(worker.failures, 6))
            worker.failures += 1
            await asyncio.sleep(delay)
            if self._closing:
                return
            log.error("data plane worker %d: %s; restarting", worker.index, why)
            self.restarts += 1
            try:
                await self._spawn(worker)
                return
            except OSError as exc:  # no fork, no pipe (EAGAIN, EMFILE, ENOMEM): try again
                log.error("cannot restart data plane worker %d: %s", worker.index, exc)

    def _handle(self, worker: _Worker, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "failed":
            self._on_failure((str(message["key"][0]), int(message["key"][1])),
                             str(message["reason"]))
        elif op == "applied":
            ack = worker.acks.pop(int(message["seq"]), None)
            if ack is not None and not ack.done():
                ack.set_result(message["problems"])
        elif op == "stats":
            frontends: dict[FrontKey, FrontendStats] = {}
            for protocol, vip, port, stats, targets in message["frontends"]:
                frontends[(protocol, vip, int(port))] = FrontendStats(
                    ListenerStats(**stats),
                    {(a, int(p)): (active, total, failures)
                     for a, p, active, total, failures in targets})
            worker.frontends = frontends

    def _retire(self, worker: _Worker) -> None:
        """Keep a dead worker's counters so the sums never go backwards."""
        for key, front in worker.frontends.items():
            kept = self._retired.setdefault(key, ListenerStats())
            for name in _COUNTERS:
                setattr(kept, name, getattr(kept, name) + getattr(front.stats, name))
        worker.frontends = {}

    # -- what the daemon calls --------------------------------------------------------------
    async def apply(self, balancers: list[BalancerConfig],
                    verdicts: dict[EndpointKey, bool]) -> dict[str, list[str]]:
        """Send every worker the userspace balancers and the verdicts; wait until each bound
        them (or died). Returns the problems the workers found, per balancer."""
        self._last = {"op": "apply", "balancers": [
            to_json(b.model_copy(update={"dataplane": "userspace"})) for b in balancers]}
        wanted = {(li.protocol, vip, li.port) for b in balancers for li in b.listeners
                  for vip in b.addresses}
        for key in [k for k in self._retired if k not in wanted]:
            del self._retired[key]  # a later balancer on that VIP:port starts from zero
        self._verdicts = dict(verdicts)
        waits: list[asyncio.Future[dict[str, list[str]]]] = []
        loop = asyncio.get_running_loop()
        for worker in self.workers:
            if not worker.alive:
                continue  # it gets the latest balancers when it is restarted
            message = self._apply_message()
            ack: asyncio.Future[dict[str, list[str]]] = loop.create_future()
            worker.acks[message["seq"]] = ack
            worker.send(message)
            waits.append(ack)
        problems: dict[str, list[str]] = {}
        if not waits:
            return problems
        done, pending = await asyncio.wait(waits, timeout=APPLY_TIMEOUT)
        for ack in pending:
            ack.cancel()
        for worker in self.workers:
            for seq in [n for n, ack in worker.acks.items() if ack.done()]:
                del worker.acks[seq]
        for ack in done:
            for name, found in ack.result().items():
                for problem in found:
                    if problem not in problems.setdefault(name, []):
                        problems[name].append(problem)
        if pending:
            log.error("%d data plane workers did not confirm the update in %.0f s",
                      len(pending), APPLY_TIMEOUT)
        return problems

    def set_verdict(self, key: EndpointKey, up: bool) -> None:
        self.set_verdicts({key: up})

    def set_verdicts(self, verdicts: dict[EndpointKey, bool]) -> None:
        """Tell every worker, in one message per worker however many verdicts."""
        self._verdicts.update(verdicts)
        items = [[a, p, up] for (a, p), up in verdicts.items()]
        for worker in self.workers:
            worker.send({"op": "health", "verdicts": items})

    def stats(self, key: FrontKey) -> ListenerStats:
        """Counters of one frontend summed over the workers (dead ones included)."""
        total = ListenerStats()
        parts = [w.frontends[key].stats for w in self.workers if key in w.frontends]
        if key in self._retired:
            parts.append(self._retired[key])
        for part in parts:
            for name in _COUNTERS:
                setattr(total, name, getattr(total, name) + getattr(part, name))
        total.active = sum(w.frontends[key].stats.active for w in self.workers
                           if key in w.frontends)
        return total

    def target_active(self, key: FrontKey, target: EndpointKey) -> int:
        return sum(w.frontends[key].targets.get(target, (0, 0, 0))[0] for w in self.workers
                   if key in w.frontends)

    def alive(self) -> int:
        return sum(w.alive for w in self.workers)

    def closing(self) -> None:
        """The daemon is stopping: workers that exit from now on (a SIGTERM sent to the whole
        process group) are not restarted."""
        self._closing = True

    async def close(self, grace: float = 1.0) -> None:
        """EOF to every worker (each closes its frontends and exits); kill those still there
        after `grace` seconds (a stopping daemon must be gone within 2 s)."""
        self._closing = True
        for task in list(self._restarts):
            task.cancel()
        for worker in self.workers:
            if worker.alive and worker.proc is not None and worker.proc.stdin is not None:
                worker.proc.stdin.close()
        deadline = asyncio.get_running_loop().time() + grace
        for worker in self.workers:
            if worker.proc is None:
                continue
            try:
                left = max(0.0, deadline - asyncio.get_running_loop().time())
                await asyncio.wait_for(worker.proc.wait(), left)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.kill()
                await worker.proc.wait()
            if worker.reader is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.reader
