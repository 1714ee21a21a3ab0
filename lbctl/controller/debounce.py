"""Batching bursts of changes into one pass: keys collected over a window, handled together.

A rolling update of a 50-pod Deployment rewrites its EndpointSlices dozens of times in a few
seconds; re-ensuring the Service on every write would program the balancer daemons dozens of
times for the same end state. Like node sync, changes are collected for a window (the
controller's `nodeSyncDebounceSeconds`) and then handled once per key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class KeyDebouncer:
    """`add(key)` from any thread; `handle(keys)` runs on a timer thread once per window."""

    def __init__(self, window: Callable[[], float], handle: Callable[[set[str]], None],
                 name: str = "debounce") -> None:
        self._window = window
        self._handle = handle
        self._name = name
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        self._timer: threading.Timer | None = None
        self._running = 0

    def add(self, key: str) -> None:
        with self._lock:
            self._keys.add(key)
            if self._timer is not None:
                return
            timer = self._timer = threading.Timer(self._window(), self._fire)
        timer.name = self._name
        timer.daemon = True
        timer.start()

    def quiet(self) -> bool:
        """No key waiting and no pass running."""
        with self._lock:
            return self._timer is None and not self._running

    def cancel(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
            self._keys.clear()
        if timer is not None:
            timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            keys, self._keys = self._keys, set()
            self._timer = None  # a key added from now on schedules the next pass
            self._running += 1
        try:
            self._handle(keys)
        finally:
            with self._lock:
                self._running -= 1
