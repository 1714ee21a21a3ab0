"""A work queue of keys for N worker threads, with client-go's guarantees.

Informer handlers and the node path only `add` keys here; workers do the slow part (cloud calls
that may take seconds). The guarantees are client-go's workqueue's:

- dedupe: a key added many times before a worker takes it is processed once;
- per-key serialisation: a key is never processed by two workers at once. A key re-added while
  it is being processed is marked dirty and queued again when `done` is called, so the change
  that caused the re-add is never lost;
- `add_after(key, seconds)`: delayed adds (an earlier pending time for the same key wins);
- `add_rate_limited(key)`: per-key exponential backoff, 5 s doubling to 300 s (upstream's service
  controller), with +/-10 % jitter so keys that failed together do not retry in lockstep;
  `forget(key)` resets it after a success;
- `shutdown()`: no new work is taken, queued and delayed keys are dropped (the next leader
  relists anyway), keys in flight finish; `depth()` feeds the queue-depth metric.

Upstream's default of one worker made provisioning serial (cloud-provider-azure#5909); per-key
serialisation is what makes many workers safe.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
log = logging.getLogger("lbctl.controller.workqueue")


class WorkQueue(Generic[K]):
    """Keys waiting for workers: `start(process, workers)` or drive `get`/`done` yourself."""

    def __init__(self, name: str = "queue", *, base_delay: float = 5.0,
                 max_delay: float = 300.0, jitter: float = 0.1,
                 rng: random.Random | None = None) -> None:
        self.name = name
        self.base_delay, self.max_delay, self.jitter = base_delay, max_delay, jitter
        self._rng = rng or random.Random()  # noqa: S311  (retry spreading, not secrets)
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # workers: a key is queued
        self._tick = threading.Condition(self._lock)  # the delay thread: an earlier due time
        self._idle = threading.Condition(self._lock)  # shutdown: a key in flight finished
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._waiting: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._closed = False
        self._timer: threading.Thread | None = None
        self._workers: list[threading.Thread] = []

    # -- adding -------------------------------------------------------------------------------
    def add(self, key: K) -> None:
        with self._lock:
            self._add_locked(key)

    def _add_locked(self, key: K) -> None:
        if self._closed or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # queued again by done()
        self._queue.append(key)
        self._ready.notify()

    def add_after(self, key: K, seconds: float) -> None:
        """Add `key` once `seconds` have passed; an earlier pending time for it wins."""
        if seconds <= 0:
            self.add(key)
            return
        with self._lock:
            if self._closed:
                return
            due = time.monotonic() + seconds
            if key in self._waiting and self._waiting[key] <= due:
                return
            self._waiting[key] = due
            heapq.heappush(self._heap, (due, next(self._seq), key))
            if self._timer is None:
                self._timer = threading.Thread(target=self._release_due, daemon=True,
                                               name=f"{self.name}-delay")
                self._timer.start()
            self._tick.notify()

    def backoff(self, key: K) -> float:
        """The next backoff delay for `key` (counts a failure): 5, 10, 20 .. 300 s, jittered."""
        with self._lock:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        nominal = min(self.max_delay, self.base_delay * 2.0 ** min(failures, 62))
        return nominal * self._rng.uniform(1 - self.jitter, 1 + self.jitter)

    def add_rate_limited(self, key: K) -> float:
        """Add `key` after its backoff delay; answer that delay."""
        delay = self.backoff(key)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """Reset `key`'s backoff (after a success); a pending delayed add stays."""
        with self._lock:
            self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        with self._lock:
            return self._failures.get(key, 0)

    # -- taking -------------------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> K | None:
        """The next key, marked in flight until `done(key)`; None on shutdown or timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._queue:
                if self._closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._ready.wait(left)
            key = self._queue.popleft()
            self._processing.add(key)
            self._dirty.discard(key)
            return key

    def done(self, key: K) -> None:
        """Processing of `key` finished: if it was re-added meanwhile, queue it again."""
        with self._lock:
            self._processing.discard(key)
            if key in self._dirty and not self._closed:
                self._queue.append(key)
                self._ready.notify()
            self._idle.notify_all()

    # -- metrics ------------------------------------------------------------------------------
    def depth(self) -> int:
        """Keys queued and not yet taken by a worker (delayed ones not counted)."""
        with self._lock:
            return len(self._queue)

    def delayed(self) -> int:
        with self._lock:
            return len(self._waiting)

    def in_flight(self) -> int:
        with self._lock:
            return len(self._processing)

    def idle(self) -> bool:
        """Nothing queued and nothing in flight, read in one step (`depth()` then
        `in_flight()` can miss a key that `done` queues again in between); delayed keys
        aside."""
        with self._lock:
            return not self._queue and not self._processing

    def due_in(self, key: K) -> float | None:
        """Seconds until `key`'s delayed add (`add_after`, `add_rate_limited`); None when
        none is pending."""
        with self._lock:
            due = self._waiting.get(key)
        return None if due is None else due - time.monotonic()

    @property
    def shutting_down(self) -> bool:
        return self._closed

    # -- workers ------------------------------------------------------------------------------
    def start(self, process: Callable[[K], None], workers: int) -> None:
        """Run `process(key)` on `workers` threads. `process` calls `forget`, `add_after` or
        `add_rate_limited` itself; if it raises, the key is requeued with backoff."""
        for i in range(workers):
            thread = threading.Thread(target=self._work, args=(process,), daemon=True,
                                      name=f"{self.name}-worker-{i}")
            self._workers.append(thread)
            thread.start()

    def _work(self, process: Callable[[K], None]) -> None:
        while (key := self.get()) is not None:
            try:
                process(key)
            except Exception:
                log.exception("%s: processing %r failed", self.name, key)
                self.add_rate_limited(key)
            finally:
                self.done(key)

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> bool:
        """Stop: drop queued and delayed keys, let keys in flight finish. With `wait`, block
        until they have (or `timeout` passed); answer whether nothing is in flight."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._dirty.clear()
            self._heap.clear()
            self._waiting.clear()
            self._ready.notify_all()
            self._tick.notify_all()
            while wait and self._processing:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._idle.wait(left)
            idle = not self._processing
        if wait:
            for thread in self._workers:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(left)
        return idle

    def _release_due(self) -> None:
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    due, _, key = heapq.heappop(self._heap)
                    if self._waiting.get(key) == due:
                        del self._waiting[key]
                        self._add_locked(key)
                self._tick.wait(self._heap[0][0] - now if self._heap else None)
