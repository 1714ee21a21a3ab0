"""Watches: per-client filtered queues of changes, as kube-apiserver's cacheWatcher keeps them.

A watcher subscribes to one resource type, optionally one namespace and label/field selectors.
An object that stops matching a selector is sent as DELETED and one that starts matching as
ADDED, as the watch cache does, so a client's view stays the set of matching objects. A watcher
that falls too far behind is closed (the client relists), rather than growing without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from .store import Change, Obj

Predicate = Callable[[Obj], bool]
WatchItem = tuple[str, Obj, Change | None] | None
"""(event type, object, the change whose cached encoding fits) or None for end-of-stream."""


INITIAL_EVENTS_END = "INITIAL_EVENTS_END"
"""Queue marker: the initial events are all sent (a bookmark follows, for sendInitialEvents)."""


def _always(_obj: Obj) -> bool:
    return True


@dataclass(eq=False)
class Watcher:
    """One open watch."""

    key: str
    namespace: str | None = None
    matches: Predicate = _always
    max_backlog: int = 100_000
    queue: asyncio.Queue[WatchItem] = field(default_factory=asyncio.Queue)
    closed: bool = False

    def initial(self, obj: Obj) -> None:
        """Send an object that exists when the watch starts (watch from rv 0 or unset)."""
        if self._in_scope(obj) and self.matches(obj):
            self.queue.put_nowait(("ADDED", obj, None))

    def offer(self, change: Change) -> None:
        """Called by the store for every committed change of this watcher's type."""
        if self.closed or not self._in_scope(change.obj):
            return
        new_ok = change.type != "DELETED" and self.matches(change.obj)
        old = change.old
        old_ok = old is not None and self.matches(old)
        if change.type == "DELETED":
            if old_ok or self.matches(change.obj):
                self._put(("DELETED", change.obj, change))
        elif new_ok and old_ok:
            self._put((change.type, change.obj, change))
        elif new_ok:
            self._put(("ADDED", change.obj, change if change.type == "ADDED" else None))
        elif old_ok and old is not None:
            gone = {**old, "metadata": {**old["metadata"],
                                        "resourceVersion": str(change.rv)}}
            self._put(("DELETED", gone, None))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)

    def _in_scope(self, obj: Obj) -> bool:
        return self.namespace is None or obj["metadata"].get("namespace") == self.namespace

    def _put(self, item: WatchItem) -> None:
        if self.queue.qsize() >= self.max_backlog:
            self.close()  # too slow: the client will relist, as with kube-apiserver
            return
        self.queue.put_nowait(item)
