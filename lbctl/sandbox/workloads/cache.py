"""The controllers' shared informer cache: the store's objects, indexed as controllers look them up.

The store answers a get by name and a sorted list of a whole type; the controllers need "the pods
of this namespace" and "the pods this ReplicaSet controls" on every reconcile, which a scan of
every pod would make quadratic under load. The cache is fed the same committed changes as the
controllers (always before them), and holds the store's own immutable dicts: the indexes cost
dict entries, never copies.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..storage.store import Change, Key, Obj, ObjectStore
from .objects import controller_of


class Cache:
    """Objects of some types by namespace, and by the uid of their controlling owner."""

    def __init__(self, store: ObjectStore, keys: Iterable[str]) -> None:
        self.store = store
        self._by_ns: dict[str, dict[str, dict[str, Obj]]] = {k: {} for k in keys}
        self._owned: dict[str, dict[str, set[Key]]] = {k: {} for k in self._by_ns}

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._by_ns)

    def fill(self) -> None:
        """Load what the store holds now (the informers' initial list)."""
        for key in self._by_ns:
            for _, obj in self.store.items(key):
                self._put(key, obj)

    def observe(self, change: Change) -> None:
        if change.key not in self._by_ns:
            return
        if change.old is not None:
            self._drop(change.key, change.old)
        if change.type != "DELETED":
            self._put(change.key, change.obj)

    # -- reads ---------------------------------------------------------------------------
    def get(self, key: str, namespace: str, name: str) -> Obj | None:
        return self.store.get(key, namespace, name)

    def in_namespace(self, key: str, namespace: str) -> list[Obj]:
        return list(self._by_ns[key].get(namespace, {}).values())

    def all(self, key: str) -> list[Obj]:
        return [obj for objs in self._by_ns[key].values() for obj in objs.values()]

    def owned(self, key: str, uid: str) -> list[Obj]:
        """Objects of type `key` whose controlling ownerReference names `uid`."""
        found = []
        for ns, name in self._owned[key].get(uid, ()):
            obj = self._by_ns[key].get(ns, {}).get(name)
            if obj is not None:
                found.append(obj)
        return found

    # -- indexing ------------------------------------------------------------------------
    def _put(self, key: str, obj: Obj) -> None:
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        self._by_ns[key].setdefault(ns, {})[name] = obj
        ref = controller_of(obj)
        if ref is not None:
            self._owned[key].setdefault(ref["uid"], set()).add((ns, name))

    def _drop(self, key: str, obj: Obj) -> None:
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        objs = self._by_ns[key].get(ns)
        if objs is not None:
            objs.pop(name, None)
            if not objs:
                del self._by_ns[key][ns]
        ref = controller_of(obj)
        if ref is not None:
            owned = self._owned[key].get(ref["uid"])
            if owned is not None:
                owned.discard((ns, name))
                if not owned:
                    del self._owned[key][ref["uid"]]
