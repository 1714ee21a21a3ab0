"""The garbage collector: objects whose owners are all gone are deleted (background propagation).

As kube-controller-manager's garbagecollector: every object's ownerReferences are indexed by
owner uid; when an owner is deleted its dependents are looked at again, and a dependent is
deleted once none of its owners exists any more (a namespaced owner must live in the dependent's
namespace), or loses just the dangling references while some owner remains. Deleting a
Deployment so takes its ReplicaSets with it, and they their pods; a Service its EndpointSlices.
Not modelled: `propagationPolicy` Orphan and Foreground (the registry does not record them), so
every delete propagates in the background, kubectl's and the client libraries' default.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..storage.registry import Registry
from ..storage.resources import RESOURCES, by_key
from ..storage.store import Change, Obj
from .cache import Cache
from .controller import Controller

Where = tuple[str, str, str]
"""(storage key, namespace, name) of a dependent."""


class GarbageCollector(Controller[Where]):
    name = "garbage-collector"
    watches = tuple(r.key for r in RESOURCES if not r.store_as)

    def __init__(self, registry: Registry, cache: Cache) -> None:
        super().__init__(registry, cache)
        self._live: dict[str, str] = {}
        """uid -> namespace ("" when cluster-scoped) of every stored object."""
        self._dependents: dict[str, set[Where]] = {}

    def on_change(self, change: Change) -> None:
        meta = change.obj["metadata"]
        where = (change.key, meta.get("namespace", ""), meta["name"])
        refs = meta.get("ownerReferences") or ()
        old_refs = (change.old["metadata"].get("ownerReferences") or ()) if change.old else ()
        if change.type == "DELETED":
            self._unindex(old_refs, where)
            self._live.pop(meta["uid"], None)
            for dependent in self._dependents.get(meta["uid"], ()):
                self.queue.add(dependent)
            return
        self._live[meta["uid"]] = where[1]
        if refs != old_refs:
            self._unindex(old_refs, where)
            self._index(refs, where)

    def _index(self, refs: Iterable[Obj], where: Where) -> None:
        for ref in refs:
            uid = ref.get("uid", "")
            self._dependents.setdefault(uid, set()).add(where)
            if uid not in self._live:
                self.queue.add(where)

    def _unindex(self, refs: Iterable[Obj], where: Where) -> None:
        for ref in refs:
            uid = ref.get("uid", "")
            found = self._dependents.get(uid)
            if found is not None:
                found.discard(where)
                if not found:
                    del self._dependents[uid]

    def resync(self) -> None:
        store = self.cache.store
        for key in self.watches:
            for _, obj in store.items(key):
                self._live[obj["metadata"]["uid"]] = obj["metadata"].get("namespace", "")
        for key in self.watches:
            for (ns, name), obj in store.items(key):
                self._index(obj["metadata"].get("ownerReferences") or (), (key, ns, name))

    def _alive(self, ref: Obj, namespace: str) -> bool:
        owner_ns = self._live.get(ref.get("uid", ""))
        return owner_ns is not None and owner_ns in ("", namespace)

    def reconcile(self, key: Where) -> float | None:
        store_key, ns, name = key
        obj = self.cache.store.get(store_key, ns, name)
        if obj is None:
            return None
        refs = obj["metadata"].get("ownerReferences") or []
        dead = [r for r in refs if not self._alive(r, ns)]
        if not dead:
            return None
        res = by_key(store_key)
        if len(dead) == len(refs):
            if not obj["metadata"].get("deletionTimestamp"):
                self.registry.delete(res, ns, name)
            return None
        gone = {r.get("uid") for r in dead}
        self.registry.update_with(res, ns, name, "", lambda o: {**o, "metadata": {
            **o["metadata"], "ownerReferences": [r for r in o["metadata"].get("ownerReferences")
                                                 or () if r.get("uid") not in gone]}})
        return None
