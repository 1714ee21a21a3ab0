"""The verbs of the API over the store, with kube-apiserver's generic registry semantics.

Create, update, patch, delete, list and watch are the same for every resource: uid and
creationTimestamp on create, optimistic concurrency on resourceVersion, finalizers holding a
deleted object until the last one is removed, the status subresource and the main resource each
keeping the other half, generation bumped on spec changes, no write at all for a no-op update.
What differs per resource comes from its `Strategy` (defaulting, validation, allocation).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from .. import errors
from ..admission.meta import generate_name, validate_object_meta, validate_object_meta_update
from ..encoding.events import to_core, to_events_v1
from .resources import Resource
from .store import Obj, ObjectStore

_SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                "generation", "resourceVersion")


class Strategy(Protocol):
    """Per-resource admission: defaulting, validation, allocation. Raise ApiError to refuse.

    `problems` are the generic metadata errors found so far: a strategy reports them in the
    same 422 as its own (metadata first, as upstream), and on any refusal or `dry_run` nothing
    it allocated stays allocated.
    """

    def create(self, res: Resource, obj: Obj, problems: list[errors.FieldError],
               dry_run: bool) -> Obj: ...
    def update(self, res: Resource, old: Obj, new: Obj, problems: list[errors.FieldError],
               dry_run: bool) -> Obj: ...
    def update_status(self, res: Resource, old: Obj, new: Obj,
                      problems: list[errors.FieldError]) -> Obj: ...
    def release(self, res: Resource, obj: Obj) -> None: ...


def refuse(res: Resource, obj: Obj, problems: list[errors.FieldError]) -> None:
    """Raise the 422 for `problems`, if any."""
    if problems:
        raise errors.invalid_object(res.kind, res.group, obj["metadata"].get("name", ""),
                                    problems)


class PlainStrategy:
    """Resources with no rules of their own beyond ObjectMeta."""

    def create(self, res: Resource, obj: Obj, problems: list[errors.FieldError],
               dry_run: bool) -> Obj:
        refuse(res, obj, problems)
        return obj

    def update(self, res: Resource, old: Obj, new: Obj, problems: list[errors.FieldError],
               dry_run: bool) -> Obj:
        refuse(res, new, problems)
        return new

    def update_status(self, res: Resource, old: Obj, new: Obj,
                      problems: list[errors.FieldError]) -> Obj:
        refuse(res, new, problems)
        return new

    def release(self, res: Resource, obj: Obj) -> None:
        return None


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(obj: Obj) -> Obj:
    """What counts for generation: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _same(a: Obj, b: Obj) -> bool:
    """Equal apart from resourceVersion and managedFields (a no-op update)."""
    ma = {k: v for k, v in a["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    mb = {k: v for k, v in b["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    return ma == mb and {k: v for k, v in a.items() if k != "metadata"} == {
        k: v for k, v in b.items() if k != "metadata"}


class Registry:
    """Create/read/update/delete with kube semantics; the HTTP layer's only way to the store."""

    def __init__(self, store: ObjectStore, strategies: dict[str, Strategy],
                 clock: Callable[[], str] = now) -> None:
        self.store = store
        self._strategies = strategies
        self._plain = PlainStrategy()
        self._clock = clock

    def strategy(self, res: Resource) -> Strategy:
        return self._strategies.get(res.storage_key, self._plain)

    # -- views ---------------------------------------------------------------------------
    @staticmethod
    def outward(res: Resource, obj: Obj) -> Obj:
        """A stored object as this resource's endpoint shows it."""
        return to_events_v1(obj) if res.store_as == "events" and res.group else obj

    @staticmethod
    def inward(res: Resource, obj: Obj) -> Obj:
        return to_core(obj) if res.store_as == "events" and res.group else obj

    # -- reads ---------------------------------------------------------------------------
    def get(self, res: Resource, ns: str, name: str) -> Obj:
        obj = self.store.get(res.storage_key, ns, name)
        if obj is None:
            raise errors.not_found(res.plural, res.group, name)
        return self.outward(res, obj)

    # -- create --------------------------------------------------------------------------
    def create(self, res: Resource, ns: str, body: Obj, dry_run: bool = False) -> Obj:
        body = self.inward(res, body)
        meta = dict(body.get("metadata") or {})
        if res.namespaced:
            if meta.get("namespace", ns) != ns:
                raise errors.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            meta["namespace"] = ns
            self._check_namespace_open(ns)
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generate_name(meta["generateName"])
        for k in _SERVER_META:
            meta.pop(k, None)
        obj: Obj = {**body, "metadata": meta}
        obj.setdefault("apiVersion", res.api_version)
        obj.setdefault("kind", res.kind)
        if res.store_as == "events":
            obj["apiVersion"] = "v1"
        name = meta.get("name", "")
        problems = validate_object_meta(obj, res.namespaced, res.name_rule)
        if not problems and self.store.get(res.storage_key, meta.get("namespace", ""),
                                           name) is not None:
            raise errors.already_exists(res.plural, res.group, name)
        if res.reset_status_on_create:
            obj.pop("status", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self._clock()
        if "spec" in obj:
            meta["generation"] = 1
        obj = self.strategy(res).create(res, obj, problems, dry_run)
        if dry_run:
            obj["metadata"]["resourceVersion"] = str(self.store.rv)
            return self.outward(res, obj)
        self.store.commit(res.storage_key, "ADDED", obj, None)
        return self.outward(res, obj)

    def _check_namespace_open(self, ns: str) -> None:
        namespace = self.store.get("namespaces", "", ns)
        if namespace is None:
            raise errors.not_found("namespaces", "", ns)
        if namespace["metadata"].get("deletionTimestamp"):
            raise errors.ApiError(
                403, "Forbidden", f"unable to create new content in namespace {ns} because it "
                "is being terminated", {"name": ns, "kind": "namespaces",
                                        "causes": [{"reason": "NamespaceTerminating",
                                                    "message": f"namespace {ns} is being "
                                                    "terminated",
                                                    "field": "metadata.namespace"}]})

    # -- update --------------------------------------------------------------------------
    def update(self, res: Resource, ns: str, name: str, body: Obj, subresource: str = "",
               dry_run: bool = False) -> Obj:
        body = self.inward(res, body)
        old = self.store.get(res.storage_key, ns, name)
        if old is None:
            raise errors.not_found(res.plural, res.group, name)
        new_meta = dict(body.get("metadata") or {})
        if new_meta.get("name", name) != name:
            raise errors.bad_request(f"the name of the object ({new_meta.get('name')}) does not "
                                     f"match the name on the URL ({name})")
        want_rv = new_meta.get("resourceVersion")
        if want_rv and want_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(res.plural, res.group, name, errors.STALE_OBJECT)
        return self._apply_update(res, old, body, subresource, dry_run)

    def _apply_update(self, res: Resource, old: Obj, body: Obj, subresource: str,
                      dry_run: bool) -> Obj:
        old_meta = old["metadata"]
        meta = dict(body.get("metadata") or {})
        meta["name"] = old_meta["name"]
        if res.namespaced:
            meta["namespace"] = old_meta["namespace"]
        for k in _SERVER_META:
            if k in old_meta:
                meta[k] = old_meta[k]
            else:
                meta.pop(k, None)
        if subresource == "status":
            new: Obj = {k: v for k, v in old.items() if k not in ("metadata", "status")}
            if "status" in body:
                new["status"] = body["status"]
        else:
            new = {k: v for k, v in body.items() if k not in ("metadata", "status")}
            if res.has_status and "status" in old:
                new["status"] = old["status"]
            elif not res.has_status and "status" in body:
                new["status"] = body["status"]
        new["metadata"] = meta
        new["apiVersion"] = old.get("apiVersion", res.api_version)
        new["kind"] = old.get("kind", res.kind)
        problems = validate_object_meta(new, res.namespaced, res.name_rule)
        problems += validate_object_meta_update(old, new)
        strategy = self.strategy(res)
        if subresource == "status":
            new = strategy.update_status(res, old, new, problems)
        else:
            new = strategy.update(res, old, new, problems, dry_run)
        if "generation" in old_meta and _body(new) != _body(old):
            new["metadata"]["generation"] = old_meta["generation"] + 1
        if _same(old, new) or dry_run:
            return self.outward(res, old if _same(old, new) else new)
        if old_meta.get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self.store.commit(res.storage_key, "DELETED", new, old)
            strategy.release(res, new)
            self._after_delete(res, new)
        else:
            self.store.commit(res.storage_key, "MODIFIED", new, old)
        return self.outward(res, new)

    def update_with(self, res: Resource, ns: str, name: str, subresource: str,
                    change: Callable[[Obj], Obj], *, dry_run: bool = False) -> Obj:
        """Read-modify-write for PATCH: `change` gets the object as the endpoint shows it.

        With `dry_run` (`?dryRun=All`) the patched object is admitted and answered as it would
        be stored, but nothing is stored and no IP or port is taken or released."""
        old = self.store.get(res.storage_key, ns, name)
        if old is None:
            raise errors.not_found(res.plural, res.group, name)
        patched = change(self.outward(res, old))
        want_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if want_rv and want_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(res.plural, res.group, name, errors.STALE_OBJECT)
        return self._apply_update(res, old, self.inward(res, patched), subresource, dry_run)

    # -- delete --------------------------------------------------------------------------
    def delete(self, res: Resource, ns: str, name: str, options: Obj | None = None) -> Obj:
        old = self.store.get(res.storage_key, ns, name)
        if old is None:
            raise errors.not_found(res.plural, res.group, name)
        pre = (options or {}).get("preconditions") or {}
        meta = old["metadata"]
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise errors.conflict(res.plural, res.group, name,
                                  f"Precondition failed: UID in precondition: {pre['uid']}, "
                                  f"UID in object meta: {meta['uid']}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise errors.conflict(res.plural, res.group, name,
                                  f"Precondition failed: ResourceVersion in precondition: "
                                  f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                  f"{meta['resourceVersion']}")
        if (options or {}).get("dryRun"):
            return self.outward(res, old)
        if res.key == "namespaces":
            return self._delete_namespace(old)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return self.outward(res, old)
            marked = {**old, "metadata": {**meta, "deletionTimestamp": self._clock(),
                                          "deletionGracePeriodSeconds": 0}}
            self.store.commit(res.storage_key, "MODIFIED", marked, old)
            return self.outward(res, marked)
        gone = {**old, "metadata": dict(meta)}
        self.store.commit(res.storage_key, "DELETED", gone, old)
        self.strategy(res).release(res, gone)
        self._after_delete(res, gone)
        return self.outward(res, gone)

    def _delete_namespace(self, old: Obj) -> Obj:
        """Mark Terminating, delete what it holds, and go once it is empty (the ns controller)."""
        name = old["metadata"]["name"]
        if not old["metadata"].get("deletionTimestamp"):
            marked = {**old, "metadata": {**old["metadata"], "deletionTimestamp": self._clock(),
                                          "deletionGracePeriodSeconds": 0},
                      "status": {**old.get("status", {}), "phase": "Terminating"}}
            self.store.commit("namespaces", "MODIFIED", marked, old)
        from .resources import RESOURCES  # noqa: PLC0415  (avoid a cycle at import time)

        for res in RESOURCES:
            if res.namespaced and not res.store_as:
                for (_, obj_name), _obj in self.store.items(res.key, name):
                    self.delete(res, name, obj_name)
        self._finish_namespace(name)
        # Gone once emptied (maybe already while deleting its last object), else Terminating.
        return self.store.get("namespaces", "", name) or {
            **old, "metadata": {**old["metadata"], "deletionTimestamp": self._clock()}}

    def _finish_namespace(self, name: str) -> Obj | None:
        ns = self.store.get("namespaces", "", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        from .resources import RESOURCES  # noqa: PLC0415

        if any(r.namespaced and self.store.items(r.key, name) for r in RESOURCES
               if not r.store_as):
            return None
        gone = {**ns, "metadata": dict(ns["metadata"])}
        self.store.commit("namespaces", "DELETED", gone, ns)
        return gone

    def _after_delete(self, res: Resource, obj: Obj) -> None:
        if res.namespaced:
            self._finish_namespace(obj["metadata"]["namespace"])


def list_object(res: Resource, items: list[Obj], rv: int, cont: str = "",
                remaining: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if cont:
        meta["continue"] = cont
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    return {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta,
            "items": items}
