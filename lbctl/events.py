"""Events on Services, aggregated like client-go's recorder, written off the sync path.

A controller that syncs often must not flood the API with identical events: an event identical
to one sent in the last 10 minutes (same object, type, reason, message) bumps that event's count
and lastTimestamp instead of creating another, and each object gets a token bucket (burst 25,
one token per 5 minutes, as client-go's spam filter). Writes go through a bounded queue and one
background thread, so a slow API server never stalls a reconcile; failed writes are logged and
dropped (events are best effort).
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from providers.cluster import ServiceView

log = logging.getLogger("lbctl.events")
WINDOW = 600.0
BURST = 25
REFILL_SECONDS = 300.0


class EventSink(Protocol):
    def create_event(self, namespace: str, body: dict[str, Any]) -> None: ...
    def patch_event(self, namespace: str, name: str, body: dict[str, Any]) -> None: ...


@dataclass
class _Seen:
    name: str
    count: int
    first: str
    at: float


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """`event(svc, type, reason, message)` from any thread; written in the background."""

    def __init__(self, sink: EventSink, component: str = "lbctl",
                 clock: Callable[[], float] = time.monotonic, max_queue: int = 1000) -> None:
        self.sink = sink
        self.component = component
        self.host = socket.gethostname()
        self.clock = clock
        self._seen: dict[tuple[str, str, str, str], _Seen] = {}
        self._tokens: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, str, str, dict[str, Any]] | None] = queue.Queue(
            max_queue)
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()
        self.dropped = 0

    def event(self, svc: ServiceView, type_: str, reason: str, message: str) -> None:
        now = self.clock()
        key = (svc.uid, type_, reason, message)
        with self._lock:
            if not self._take_token(svc.uid, now):
                self.dropped += 1
                return
            seen = self._seen.get(key)
            stamp = _stamp()
            if seen is not None and now - seen.at < WINDOW:
                seen.count += 1
                seen.at = now
                self._put(("patch", svc.namespace, seen.name,
                           {"count": seen.count, "lastTimestamp": stamp}))
                return
            name = f"{svc.name}.{uuid.uuid4().hex[:16]}"
            self._seen[key] = _Seen(name, 1, stamp, now)
            self._prune(now)
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": svc.namespace},
            "involvedObject": {"kind": "Service", "apiVersion": "v1", "namespace": svc.namespace,
                               "name": svc.name, "uid": svc.uid,
                               "resourceVersion": svc.resource_version},
            "reason": reason, "message": message[:1024], "type": type_,
            "source": {"component": self.component, "host": self.host},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.host,
        }
        self._put(("create", svc.namespace, name, body))

    def _take_token(self, uid: str, now: float) -> bool:
        tokens, at = self._tokens.get(uid, (float(BURST), now))
        tokens = min(BURST, tokens + (now - at) / REFILL_SECONDS)
        if tokens < 1:
            self._tokens[uid] = (tokens, now)
            return False
        self._tokens[uid] = (tokens - 1, now)
        return True

    def _prune(self, now: float) -> None:
        if len(self._seen) > 4096:
            for key in [k for k, v in self._seen.items() if now - v.at >= WINDOW]:
                del self._seen[key]

    def _put(self, item: tuple[str, str, str, dict[str, Any]]) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            op, namespace, name, body = item
            try:
                if op == "create":
                    self.sink.create_event(namespace, body)
                else:
                    self.sink.patch_event(namespace, name, body)
            except Exception as exc:  # events are best effort: log and go on
                log.warning("event %s %s/%s failed: %s", op, namespace, name, exc)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until queued events are written (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._thread.join(5)
