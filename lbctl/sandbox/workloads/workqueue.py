"""A per-controller work queue on the event loop, shaped like client-go's workqueue.

Store listeners run inside a write, so controllers never act there: they only `add` keys here.
A key queued twice before it is processed runs once (dedupe); a key re-added while it is being
processed runs again afterwards, so nothing is lost. The worker yields to the event loop after
every key, so API requests (lease renewals above all) are served between reconciles however deep
the queue is. A reconcile that fails is retried with per-key exponential backoff; one that asks
for it (minReadySeconds, a pod IP range that is full) is re-run after a delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from .. import errors

K = TypeVar("K", bound=Hashable)
log = logging.getLogger(__name__)

Reconcile = Callable[[K], float | None]
"""Bring one key in step; return seconds after which to look again, or None."""

_BASE_DELAY, _MAX_DELAY = 0.005, 10.0
_QUIET = (403, 404, 409)
"""Answers that only mean the world moved on (namespace terminating, gone, written meanwhile)."""


class WorkQueue(Generic[K]):
    """Keys waiting for one controller, processed by one asyncio task."""

    def __init__(self, name: str, reconcile: Reconcile[K]) -> None:
        self.name = name
        self._reconcile = reconcile
        self._order: deque[K] = deque()
        self._dirty: set[K] = set()
        self._failures: dict[K, int] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, key: K) -> None:
        if key not in self._dirty:
            self._dirty.add(key)
            self._order.append(key)
            self._wake.set()

    def add_after(self, key: K, delay: float) -> None:
        """Queue `key` in `delay` seconds (an earlier pending timer for it wins)."""
        if self._loop is None or key in self._timers:
            return
        self._timers[key] = self._loop.call_later(delay, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def __len__(self) -> int:
        return len(self._order)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name=f"workqueue-{self.name}")

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            if not self._order:
                self._wake.clear()
                await self._wake.wait()
                continue
            key = self._order.popleft()
            self._dirty.discard(key)
            self._process(key)
            await asyncio.sleep(0)  # let requests and other controllers in between keys

    def _process(self, key: K) -> None:
        try:
            again = self._reconcile(key)
        except errors.ApiError as err:
            if err.code not in _QUIET:
                log.warning("%s: %s: %s %s", self.name, key, err.code, err.message)
            self._retry(key)
            return
        except Exception:
            log.exception("%s: reconciling %s failed", self.name, key)
            self._retry(key)
            return
        self._failures.pop(key, None)
        if again is not None:
            self.add_after(key, again)

    def _retry(self, key: K) -> None:
        count = self._failures.get(key, 0)
        self._failures[key] = count + 1
        self.add_after(key, min(_BASE_DELAY * 2 ** count, _MAX_DELAY))
