"""Coalescing whole-object writes: many Services' changes to one shared ARM object (the
cluster's load balancer, its network security group) folded into one guarded PUT.

Why: ARM replaces a load balancer whole on every PUT and runs one operation on it at a time.
Upstream writes it once per Service behind one process-wide lock (users report an hour per pass
at ~500 Services), and writers that race lose frontends. Here a change is a pure function of the
object's current body (`Change`), submitted under a key (the balancer's name, for logs). One
writer per object collects the changes that arrive within `window` seconds, reads the object
once, applies them all in submission order, and writes the result once, guarded by its etag
(`If-Match`; a create by `If-None-Match: *`), or deletes it when the result is None. A 412
(another writer: a user, another lbctl across a leader hand-over) re-reads and re-applies the
same changes, so nothing is lost and nothing is written from a stale read. A result equal to
what was read costs no write: the steady state reads once per batch.

Each submitter blocks until its batch is done and gets the body as written (Azure fills in
what it allocates, such as a frontend's private IP). A write that fails fails every Service of
its batch (each retries through the controller); a change that raises (bad input found late)
fails only its own Service. Changes must not mutate their argument (no deep copies are made:
a body with hundreds of frontends is copied only where a change touches it).

The writer is whichever submitter found no writer running; it keeps writing batches until none
is pending, so no thread is owned here and nothing needs closing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from providers.errors import TransientError

log = logging.getLogger(__name__)

Body = dict[str, Any]
Change = Callable[[Body | None], Body | None]
"""The object's body as it is (None: absent) -> as it should be (None: delete it)."""


class PreconditionFailed(Exception):
    """The object's etag changed since it was read (HTTP 412)."""


class Store(Protocol):
    """One ARM object: read with its etag, written or deleted guarded by it."""

    def read(self) -> tuple[Body | None, str | None]:
        """(body, etag), or (None, None) when absent."""

    def write(self, body: Body, etag: str | None) -> Body:
        """PUT `body` if the etag is still `etag` (None: only if absent); answers the body
        as stored. Raises PreconditionFailed on 412."""

    def delete(self, etag: str) -> None:
        """DELETE if the etag is still `etag`. Raises PreconditionFailed on 412."""


@dataclass(eq=False)
class _Item:
    key: str
    change: Change
    done: threading.Event = field(default_factory=threading.Event)
    result: Body | None = None
    error: BaseException | None = None


@dataclass
class Stats:
    """What the writer did (the bench and the tests read it)."""

    batches: int = 0
    changes: int = 0
    reads: int = 0
    writes: int = 0
    deletes: int = 0
    conflicts: int = 0


class Coalescer:
    """See the module docstring. Thread-safe."""

    def __init__(self, store: Store, name: str, window: float = 0.5, max_attempts: int = 8,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.name = name
        self.window = window
        self.max_attempts = max_attempts
        self.stats = Stats()
        self._sleep = sleep
        self._lock = threading.Lock()
        self._pending: list[_Item] = []
        self._writing = False

    def submit(self, key: str, change: Change) -> Body | None:
        """Apply `change` with whatever else arrives in the window; answers the body as
        written (or as read, when nothing needed writing)."""
        item = _Item(key, change)
        with self._lock:
            self._pending.append(item)
            lead = not self._writing
            self._writing = True
        if lead:
            self._lead()
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.result

    def _lead(self) -> None:
        while True:
            if self.window > 0:
                self._sleep(self.window)  # let the others of this wave arrive
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._writing = False
                    return
            try:
                self._run(batch)
            except BaseException as exc:  # never leave a submitter waiting
                for item in batch:
                    if not item.done.is_set():
                        item.error = exc
                        item.done.set()
                raise

    def _run(self, batch: list[_Item]) -> None:
        self.stats.batches += 1
        self.stats.changes += len(batch)
        live = list(batch)
        for attempt in range(1, self.max_attempts + 1):
            body, etag = self.store.read()
            self.stats.reads += 1
            result = body
            applied: list[_Item] = []
            for item in live:
                try:
                    result = item.change(result)
                except Exception as exc:  # this Service's own problem
                    item.error = exc
                    item.done.set()
                    continue
                applied.append(item)
            live = applied
            try:
                written = self._write(body, result, etag)
            except PreconditionFailed:
                self.stats.conflicts += 1
                log.info("%s changed while %d change(s) were applied (attempt %d): reading "
                         "it again", self.name, len(live), attempt)
                continue
            except Exception as exc:
                self._finish(live, None, exc)
                return
            self._finish(live, written, None)
            return
        self._finish(live, None, TransientError(
            f"{self.name} changed under every one of {self.max_attempts} writes (another "
            "writer is busy with it): will try again"))

    def _write(self, body: Body | None, result: Body | None, etag: str | None) -> Body | None:
        if result == body:
            return body
        if result is None:
            assert etag is not None
            self.store.delete(etag)
            self.stats.deletes += 1
            return None
        written = self.store.write(result, etag)
        self.stats.writes += 1
        return written

    @staticmethod
    def _finish(items: list[_Item], result: Body | None, error: BaseException | None) -> None:
        for item in items:
            item.result, item.error = result, error
            item.done.set()
