"""The daemon's side of the health checker process: what to watch goes out, verdicts come back.

`HealthProcess` offers the `HealthChecker` calls the data plane makes, backed by
`python -m lbctl.balancer.checker` (see checker.py for why a process). It keeps:
- what each owner (a listener) watches: the source of truth, sent again whole to a checker that
  restarts, and the per-target count that says when a target is no longer watched at all;
- a mirror of the verdicts the checker reported: `is_up`, `reason` and `verdicts` read it in
  O(1) on the data plane's loop, never waiting on the other process. A target the checker has
  said nothing about is up (as in the checker: new targets start up). Verdicts about a target
  nobody watches any more are dropped, so a target that comes back starts afresh.
The counters (probes, failures, ejections, transitions) come with each verdict and once a
second, so a scrape may lag the checker by up to a second. A checker that dies is started
again after a backoff: every target it had taken down is put
back up ("health checker restarted") and the new one probes them all again. `flush()` waits
until the checker has applied everything sent so far (for tests and orderly shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson

from .health import OnChange, TargetKey
from .model import HealthCheckConfig
from .workers import LINE_LIMIT, RESTART_MAX_SECONDS, STABLE_SECONDS, read_messages

log = logging.getLogger(__name__)


class HealthProcess:
    """A `HealthChecker` in a process of its own; call every method from one event loop."""

    def __init__(self, on_change: OnChange, *, log_format: str = "text",
                 event_loop: str = "auto") -> None:
        self._on_change = on_change
        self._argv = [sys.executable, "-m", "lbctl.balancer.checker", "--log-format", log_format,
                      "--event-loop", event_loop]
        self._owners: dict[str, list[tuple[TargetKey, HealthCheckConfig]]] = {}
        self._watched: Counter[TargetKey] = Counter()
        self._state: dict[TargetKey, tuple[bool, str]] = {}
        self._counters = {"probes": 0, "failures": 0, "ejections": 0, "transitions": 0}
        self._base = dict(self._counters)
        """Counters of checkers that exited, so the totals never go backwards."""
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[None] | None = None
        self._flushes: dict[int, asyncio.Future[None]] = {}
        self._seq = 0
        self._closing = False
        self._failures = 0
        self._started_at = 0.0
        self.restarts = 0

    # -- life cycle --------------------------------------------------------------------------
    def _ensure(self) -> None:
        if self._proc is None and self._starting is None and not self._closing:
            self._starting = asyncio.get_running_loop().create_task(self._spawn())

    async def _spawn(self) -> None:
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self._argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                limit=LINE_LIMIT)
        except OSError as exc:  # no fork, no pipe: every target stays up, try again later
            log.error("cannot start the health checker: %s", exc)
            self._starting = None
            await self._restart(f"could not start: {exc}")
            return
        loop = asyncio.get_running_loop()
        self._started_at = loop.time()
        self._starting = None
        self._reader = loop.create_task(self._read(self._proc))
        log.info("health checker started (pid %d)", self._proc.pid)
        for owner, items in self._owners.items():
            self._send({"op": "owner", "owner": owner, "items": _items(items)})

    def _send(self, message: dict[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return  # sent again whole when the checker (re)starts
        proc.stdin.write(orjson.dumps(message) + b"\n")

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        await read_messages(proc, "health checker", self._handle)
        await proc.wait()
        self._proc = None
        for fut in self._flushes.values():
            if not fut.done():
                fut.set_result(None)
        self._flushes.clear()
        for key, value in self._counters.items():
            self._base[key] += value
            self._counters[key] = 0
        if not self._closing:
            await self._restart(f"pid {proc.pid} exited with {proc.returncode}")

    async def _restart(self, why: str) -> None:
        """Every target the old checker held down goes back up (the new one probes them all
        again), then a new checker after a backoff that resets once one ran for a while."""
        down = [key for key, (up, _) in self._state.items() if not up]
        self._state.clear()
        for key in down:
            self._on_change(key, True, "health checker restarted: probing again")
        loop = asyncio.get_running_loop()
        if loop.time() - self._started_at >= STABLE_SECONDS:
            self._failures = 0
        delay = min(RESTART_MAX_SECONDS, 0.5 * 2 ** min(self._failures, 6))
        self._failures += 1
        log.error("health checker: %s; restarting in %.1f s", why, delay)
        await asyncio.sleep(delay)
        if not self._closing and self._proc is None and self._starting is None:
            self.restarts += 1
            self._ensure()

    def _handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if "counters" in message:
            self._take_counters(message["counters"])
        if op == "verdict":
            key = (str(message["key"][0]), int(message["key"][1]))
            if not self._watched.get(key):
                return  # about a target nobody watches any more: it starts afresh if back
            up, reason = bool(message["up"]), str(message["reason"])
            self._state[key] = (up, reason)
            self._on_change(key, up, reason)
        elif op == "counters":
            self._take_counters(message)
        elif op == "flushed":
            fut = self._flushes.pop(int(message["seq"]), None)
            if fut is not None and not fut.done():
                fut.set_result(None)

    def _take_counters(self, doc: dict[str, Any]) -> None:
        for name in self._counters:
            self._counters[name] = int(doc[name])

    async def flush(self) -> None:
        """Wait until the checker has applied everything sent to it so far."""
        if self._starting is not None:
            await asyncio.shield(self._starting)
        if self._proc is None:
            return
        self._seq += 1
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushes[self._seq] = fut
        self._send({"op": "flush", "seq": self._seq})
        await fut

    async def close(self, grace: float = 0.5) -> None:
        """Stop the checker (EOF, then SIGKILL after `grace` seconds: it keeps no state worth
        waiting for, and a stopping daemon must be gone within 2 s); not reusable after."""
        self._closing = True
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
        proc = self._proc
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    # -- changes -----------------------------------------------------------------------------
    def set_owner_targets(self, owner: str,
                          items: Iterable[tuple[TargetKey, HealthCheckConfig]]) -> None:
        """Watch exactly `items` for `owner` (an empty list forgets the owner)."""
        wanted = list(items)
        old = self._owners.pop(owner, [])
        if wanted:
            self._owners[owner] = wanted
        self._watched.update(key for key, _ in wanted)
        self._watched.subtract(key for key, _ in old)
        for key, _ in old:
            if self._watched[key] <= 0:
                del self._watched[key]
                self._state.pop(key, None)
        self._ensure()
        self._send({"op": "owner", "owner": owner, "items": _items(wanted)})

    def report_failure(self, key: TargetKey, reason: str) -> None:
        if self._watched.get(key):
            self._send({"op": "failed", "key": [key[0], key[1]], "reason": reason})

    # -- reads: the mirror, O(1) --------------------------------------------------------------
    def is_up(self, key: TargetKey) -> bool:
        return self._state.get(key, (True, ""))[0]

    def reason(self, key: TargetKey) -> str:
        state = self._state.get(key)
        if state is not None:
            return state[1]
        return "up: no failed check yet" if self._watched.get(key) else ""

    def verdicts(self) -> dict[TargetKey, bool]:
        return {key: up for key, (up, _) in self._state.items()}

    @property
    def probes_total(self) -> int:
        return self._base["probes"] + self._counters["probes"]

    @property
    def probe_failures_total(self) -> int:
        return self._base["failures"] + self._counters["failures"]

    @property
    def ejections_total(self) -> int:
        return self._base["ejections"] + self._counters["ejections"]

    @property
    def transitions_total(self) -> int:
        return self._base["transitions"] + self._counters["transitions"]


def _items(items: list[tuple[TargetKey, HealthCheckConfig]]) -> list[list[Any]]:
    docs: dict[int, dict[str, Any]] = {}  # one dump per distinct check, not per target
    out = []
    for key, check in items:
        doc = docs.get(id(check))
        if doc is None:
            doc = docs[id(check)] = check.model_dump(mode="json", by_alias=True)
        out.append([key[0], key[1], doc])
    return out
