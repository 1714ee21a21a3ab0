"""Service events written off the sync path, with client-go's per-object spam filter.

Aggregation of repeats (count and lastTimestamp on one Event, surviving restarts) is done by
`lbctl.kube.EventRecorder`; this module adds what the sync path needs on top: a reconcile never
waits for an Event write (a bounded queue and one writer thread), and each object gets a token
bucket (burst 25, one token per 5 minutes, as client-go's spam filter), so a Service failing in a
hot loop cannot flood the API server. Events are best effort: failures are logged and dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from providers.cluster import ServiceView

log = logging.getLogger("lbctl.controller.events")
BURST = 25
REFILL_SECONDS = 300.0

Write = Callable[[ServiceView, str, str, str], None]
"""Writes one event now: (service, type, reason, message)."""


class BackgroundEvents:
    """`event(svc, type, reason, message)` from any thread; written by one background thread."""

    def __init__(self, write: Write, clock: Callable[[], float] = time.monotonic,
                 max_queue: int = 1000) -> None:
        self._write = write
        self._clock = clock
        self._tokens: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[ServiceView, str, str, str] | None] = queue.Queue(
            max_queue)
        self.dropped = 0
        self._closed = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def event(self, svc: ServiceView, type_: str, reason: str, message: str) -> None:
        if self._closed.is_set():
            self.dropped += 1
            return
        with self._lock:
            if not self._take_token(svc.uid, self._clock()):
                self.dropped += 1
                return
        try:
            self._queue.put_nowait((svc, type_, reason, message))
        except queue.Full:
            self.dropped += 1

    def _take_token(self, uid: str, now: float) -> bool:
        tokens, at = self._tokens.get(uid, (float(BURST), now))
        tokens = min(BURST, tokens + (now - at) / REFILL_SECONDS)
        if tokens < 1:
            self._tokens[uid] = (tokens, now)
            return False
        self._tokens[uid] = (tokens - 1, now)
        if len(self._tokens) > 10_000:  # forget full buckets of objects long quiet
            self._tokens = {k: v for k, v in self._tokens.items() if v[0] < BURST - 1}
        return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._closed.is_set() and time.monotonic() > self._deadline:
                    self.dropped += 1  # shutting down: past the deadline, count, don't write
                    continue
                try:
                    self._write(*item)
                except Exception as exc:  # events are best effort: log and go on
                    log.warning("event %s on %s failed: %s", item[2], item[0].key, exc)
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every queued event is written (tests, shutdown)."""
        self._queue.join()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued for up to `timeout` seconds, drop (and count) the rest, and
        stop the writer before the client it writes through is closed."""
        self._deadline = time.monotonic() + timeout
        self._closed.set()
        self._queue.put(None)
        self._thread.join(timeout + 5)
