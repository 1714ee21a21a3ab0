"""What every emulated resource kind shares: insert, get, patch, update, delete, setLabels.

A kind says how to read a body into the object it stores (`normalize`: fields, defaults,
references resolved to self links), what must hold against the rest of the project (`verify`:
references exist and are ready, nothing collides; checked when the write arrives and again when
its operation completes), what cannot change in place (`check_change`) and how it renders.
The verbs here turn that into GCE's behaviour: a name taken -> 409 alreadyExists; a write to an
object with an operation in flight -> 400 resourceNotReady; a stale or missing `fingerprint` on
a kind that has one -> 412 conditionNotMet; a delete of something in use -> 400
resourceInUseByAnotherResource; `setLabels` without the current `labelFingerprint` -> 412.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from .errors import GceError, already_exists, condition_not_met, in_use, not_found, required
from .fields import OUTPUT_ONLY, Body, check_region
from .links import Key, check_name
from .operations import Operations, Write
from .store import Store, fingerprint, now, public

Action = Callable[[Key, dict[str, Any], Mapping[str, str]], "Write | dict[str, Any]"]
"""A POST verb on one object: (key, body, query) -> a write, or the answer of a read."""


class Kind:
    collection: ClassVar[str]
    kind: ClassVar[str]
    api: ClassVar[dict[str, str]]
    """Scope kind (`global`, `regions`, `zones`) -> the API's resource name in call ids."""
    fields: ClassVar[frozenset[str]]
    """Top-level fields of the resource (what a list filter may name)."""
    supported: ClassVar[frozenset[str]] = frozenset()
    """Input fields this emulator models; others in a body are refused (501)."""
    label: ClassVar[str]
    """How GCE names the kind in messages (`health_check`)."""
    writable: ClassVar[bool] = True
    patchable: ClassVar[bool] = False
    replaceable: ClassVar[bool] = False
    fingerprinted: ClassVar[bool] = False
    labelled: ClassVar[bool] = False

    def __init__(self, store: Store, operations: Operations) -> None:
        self.store = store
        self.operations = operations

    # -- what a kind defines ------------------------------------------------------------------
    def normalize(self, key: Key, body: Body, current: dict[str, Any] | None) -> dict[str, Any]:
        raise NotImplementedError

    def verify(self, key: Key, obj: dict[str, Any]) -> None:
        """References and collisions, against the project as it is now."""

    def check_change(self, current: dict[str, Any], new: dict[str, Any]) -> None:
        """Refuse changes GCE cannot make in place."""

    def render(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        return public(obj)

    def actions(self) -> dict[str, tuple[str, Action]]:
        """POST verbs on one object: name -> (family `read`|`write`, handler)."""
        return {}

    def removed(self, key: Key) -> None:
        """Clean up after a delete (instance group members)."""

    # -- verbs --------------------------------------------------------------------------------
    def get(self, key: Key) -> dict[str, Any]:
        obj = self.store.get(key)
        if obj is None:
            raise not_found(key.path)
        return self.render(key, obj)

    def insert(self, home: Key, data: dict[str, Any]) -> Write:
        body = Body(data, supported=self.supported)
        if home.scope.startswith("regions/"):
            check_region(body, home.region or "")
        key = home.sibling(self.collection, check_name(body.raw("name")))
        pending = self.store.pending.get(key)
        if key in self.store.objects or (pending is not None and pending.verb == "insert"):
            raise already_exists(key.path)
        obj = self.normalize(key, body, None)
        self.verify(key, obj)

        def verify() -> None:
            if key in self.store.objects:
                raise already_exists(key.path)
            self.verify(key, obj)
            self.store.check_quota(key, obj)

        return Write(key, "insert", obj, verify, lambda: self._store(key, obj, None))

    def patch(self, key: Key, data: dict[str, Any]) -> Write:
        return self._change(key, data, "patch")

    def update(self, key: Key, data: dict[str, Any]) -> Write:
        return self._change(key, data, "update")

    def delete(self, key: Key) -> Write:
        if self.store.get(key) is None:
            raise not_found(key.path)
        self._check_unused(key)

        def apply() -> None:
            self.store.objects.pop(key, None)
            self.removed(key)

        return Write(key, "delete", None, lambda: self._check_exists_unused(key), apply)

    def set_labels(self, key: Key, data: dict[str, Any]) -> Write:
        current = self.store.get(key)
        if current is None:
            raise not_found(key.path)
        body = Body(data, "", supported=("labels", "labelFingerprint"), ignored=())
        labels = body.labels()
        given = body.text("labelFingerprint")
        if given is None:
            raise required("labelFingerprint")
        if given != current.get("labelFingerprint"):
            raise condition_not_met("Labels fingerprint either invalid or resource labels "
                                    "have changed")

        def apply() -> None:
            obj = self.store.objects[key]
            obj["labels"] = labels
            if not labels:
                obj.pop("labels")
            obj["labelFingerprint"] = fingerprint(labels)

        def verify() -> None:
            if self.store.get(key) is None:
                raise not_found(key.path)

        return Write(key, "setLabels", None, verify, apply)

    # -- shared steps -------------------------------------------------------------------------
    def _change(self, key: Key, data: dict[str, Any], verb: str) -> Write:
        current = self.store.get(key)
        if current is None:
            raise not_found(key.path)
        body = Body(data, supported=self.supported)
        if key.scope.startswith("regions/"):
            check_region(body, key.region or "")
        if body.has("name") and body.raw("name") != key.name:
            raise GceError(400, "invalid", f"Invalid value for field 'resource.name': "
                                           f"'{body.raw('name')}'. The name cannot change.")
        if self.fingerprinted and body.raw("fingerprint") != current.get("fingerprint"):
            raise condition_not_met()
        merged = _merge(self.inputs(current), data) if verb == "patch" else dict(data)
        merged["name"] = key.name
        obj = self.normalize(key, Body(merged, supported=self.supported), current)
        self.check_change(current, obj)
        self.verify(key, obj)

        def verify() -> None:
            if self.store.get(key) is None:
                raise not_found(key.path)
            self.verify(key, obj)

        return Write(key, verb, obj, verify, lambda: self._store(key, obj, current))

    def inputs(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The stored object as a body (what a PATCH merges into)."""
        return {k: v for k, v in obj.items()
                if k not in OUTPUT_ONLY and k != "fingerprint" and not k.startswith("_")}

    def _store(self, key: Key, obj: dict[str, Any], before: dict[str, Any] | None) -> None:
        out = dict(obj)
        out.update(kind=self.kind, name=key.name, selfLink=key.url,
                   id=before["id"] if before else self.store.new_id(),
                   creationTimestamp=before["creationTimestamp"] if before else now())
        kind = key.scope.partition("/")[0]
        if kind in ("regions", "zones"):
            out["region" if kind == "regions" else "zone"] = key.scope_url
        if self.fingerprinted:
            out["fingerprint"] = fingerprint(self.inputs(out))
        if self.labelled:
            labels = before.get("labels", {}) if before else out.get("labels", {})
            if labels:
                out["labels"] = labels
            out["labelFingerprint"] = fingerprint(labels)
        self.store.objects[key] = out

    def _check_unused(self, key: Key) -> None:
        users = self.store.users(key)
        if users:
            raise in_use(self.label, key.path, users[0].path)

    def _check_exists_unused(self, key: Key) -> None:
        if self.store.get(key) is None:
            raise not_found(key.path)
        self._check_unused(key)


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7396), GCE's PATCH: objects merge, lists and scalars replace."""
    out = dict(base)
    for name, value in patch.items():
        if value is None:
            out.pop(name, None)
        elif isinstance(value, dict) and isinstance(out.get(name), dict) and name != "labels":
            out[name] = _merge(out[name], value)
        else:
            out[name] = value
    return out
