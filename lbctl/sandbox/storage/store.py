"""The object store: every object, one resourceVersion counter, and the change log.

Like etcd behind kube-apiserver, the store knows nothing of admission or HTTP: it keeps objects
(plain JSON dicts, never mutated once stored), hands out a monotonically increasing
resourceVersion on every write, and keeps a bounded log of changes. The log serves three things
kube clients rely on: watches that resume from a resourceVersion, consistent paginated lists
(`continue` tokens list a snapshot at the first page's version) and `410 Gone` once a version has
been compacted away.
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import orjson

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects


class Change:
    """One committed write: the object after it (`obj`) and before it (`old`)."""

    __slots__ = ("_raw", "key", "obj", "old", "rv", "type")

    def __init__(self, rv: int, key: str, type_: str, obj: Obj, old: Obj | None) -> None:
        self.rv = rv
        self.key = key
        self.type = type_
        self.obj = obj
        self.old = old
        self._raw: bytes | None = None

    @property
    def raw(self) -> bytes:
        """The object's JSON, encoded once however many watchers receive it."""
        if self._raw is None:
            self._raw = orjson.dumps(self.obj)
        return self._raw


Listener = Callable[[Change], None]


class ObjectStore:
    """Objects by storage key and (namespace, name), plus the change log."""

    def __init__(self, history: int = 200_000) -> None:
        self.rv = 1
        self.compacted_rv = 0
        """Changes with rv <= this are gone from the log: older versions answer 410."""
        self._history = history
        self._objects: dict[str, dict[Key, Obj]] = {}
        self._log: deque[Change] = deque()
        self._listeners: dict[str, set[Listener]] = {}

    # -- reads ---------------------------------------------------------------------------
    def get(self, key: str, namespace: str, name: str) -> Obj | None:
        return self._objects.get(key, {}).get((namespace, name))

    def items(self, key: str, namespace: str | None = None) -> list[tuple[Key, Obj]]:
        """All objects of a type (in one namespace if given), sorted by (namespace, name)."""
        objs = self._objects.get(key, {})
        if namespace is None:
            return sorted(objs.items())
        return sorted((k, o) for k, o in objs.items() if k[0] == namespace)

    def count(self, key: str) -> int:
        return len(self._objects.get(key, {}))

    def snapshot(self, key: str, rv: int) -> dict[Key, Obj] | None:
        """The objects of one type as they were at `rv`, or None when compacted away."""
        if rv < self.compacted_rv:
            return None
        objs = dict(self._objects.get(key, {}))
        for change in reversed(self._log):
            if change.rv <= rv:
                break
            if change.key != key:
                continue
            k = _key_of(change.obj)
            if change.old is None:
                objs.pop(k, None)
            else:
                objs[k] = change.old
        return objs

    # -- writes --------------------------------------------------------------------------
    def commit(self, key: str, type_: str, obj: Obj, old: Obj | None) -> Change:
        """Store (or, for DELETED, remove) `obj` at the next resourceVersion.

        `obj` must be a fresh dict owned by the store from now on; its
        `metadata.resourceVersion` is set here.
        """
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        objs = self._objects.setdefault(key, {})
        k = _key_of(obj)
        if type_ == "DELETED":
            del objs[k]
        else:
            objs[k] = obj
        change = Change(self.rv, key, type_, obj, old)
        self._log.append(change)
        if self.rv % 5000 == 0:
            # Stored objects are acyclic JSON: move them out of the GC's generations, or full
            # collections scanning a large log stall the event loop for hundreds of ms.
            gc.freeze()
        if len(self._log) > self._history:
            self.compacted_rv = self._log.popleft().rv
        for listener in list(self._listeners.get(key, ())):
            listener(change)
        return change

    def compact(self) -> None:
        """Forget the whole log, as an etcd compaction would: every older version is 410."""
        self._log.clear()
        self.compacted_rv = self.rv

    # -- watches -------------------------------------------------------------------------
    def changes_since(self, key: str, rv: int) -> Iterator[Change] | None:
        """The logged changes of one type after `rv`, or None when `rv` is too old."""
        if rv < self.compacted_rv:
            return None
        found: list[Change] = []
        for change in reversed(self._log):  # resumes are usually near the tip: walk from there
            if change.rv <= rv:
                break
            if change.key == key:
                found.append(change)
        return reversed(found)

    def subscribe(self, key: str, listener: Listener) -> None:
        self._listeners.setdefault(key, set()).add(listener)

    def unsubscribe(self, key: str, listener: Listener) -> None:
        self._listeners.get(key, set()).discard(listener)


def _key_of(obj: Obj) -> Key:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])

