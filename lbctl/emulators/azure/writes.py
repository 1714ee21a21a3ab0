"""ARM's write verbs on the emulated objects: PUT, PATCH (tags), DELETE, and child writes.

- PUT creates or replaces an object whole: 201 on create, 200 on update, the body as stored
  (provisioningState `Updating`) and `Azure-AsyncOperation` to poll.
- PATCH with `{"tags": ...}` (updateTags) changes the tags at once: 200, no operation.
- DELETE answers 202 with `Azure-AsyncOperation` and `Location`, or 204 when there is nothing
  to delete; an object in use is refused (400, the kind's code).
- A child PUT/DELETE (`backendAddressPools`, `securityRules`, `subnets`) is a PUT of its parent.
Every write gets a new etag (children carry their parent's); `If-Match` with another etag (or
on a missing object) and `If-None-Match: *` on an existing one answer 412 PreconditionFailed;
a write to an object whose operation still runs answers 409 AnotherOperationInProgress.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ArmError, bad_request, precondition_failed
from .ids import Rid, check_name
from .kinds import Kind
from .operations import Operations
from .store import Store


@dataclass(frozen=True)
class Context:
    """What a write needs of its request besides the body."""

    headers: Mapping[str, str]
    origin: str
    """`http://host:port` as the client reached us: operation URLs point back there."""
    api_version: str
    failure: ArmError | None = None
    """An injected fault that fails this write's operation."""


@dataclass
class Answer:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


def _bare(etag: str) -> str:
    etag = etag.strip()
    return etag[2:] if etag.startswith("W/") else etag


def preconditions(rid: Rid, current: dict[str, Any] | None, headers: Mapping[str, str],
                  exists: bool | None = None) -> None:
    """412 unless `If-Match` names `current`'s etag and `If-None-Match` does not; `exists`
    (a child's existence, judged apart from its parent's etag) defaults to `current`'s."""
    match, none_match = headers.get("If-Match"), headers.get("If-None-Match")
    etag = _bare(current["etag"]) if current is not None else None
    if match is not None:
        wanted = {_bare(m) for m in match.split(",")}
        if etag is None or ("*" not in wanted and etag not in wanted):
            raise precondition_failed(rid.path)
    if exists is None:
        exists = current is not None
    if none_match is not None and current is not None and exists:
        unwanted = {_bare(m) for m in none_match.split(",")}
        if "*" in unwanted or etag in unwanted:
            raise precondition_failed(rid.path)


def stamp(obj: dict[str, Any], state: str, etag: str | None = None) -> None:
    """Set the provisioningState (and etag) of an object and of its children."""
    if etag is not None:
        obj["etag"] = etag
    obj["properties"]["provisioningState"] = state
    for items in obj["properties"].values():
        if isinstance(items, list):
            for child in items:
                if isinstance(child, dict) and "id" in child and "properties" in child:
                    if etag is not None:
                        child["etag"] = etag
                    child["properties"]["provisioningState"] = state


class Writes:
    def __init__(self, store: Store, operations: Operations) -> None:
        self.store = store
        self.operations = operations

    def put(self, kind: Kind, rid: Rid, body: dict[str, Any], ctx: Context) -> Answer:
        self.store.check_scope(rid)
        check_name(rid.name, kind.type)
        current = self.store.get(rid)
        if rid.child_type:
            check_name(rid.child_name, rid.child_type)
            parent = self.store.require(rid)
            existed = any(c["name"].lower() == rid.child_name.lower()
                          for c in parent["properties"].get(rid.child_type, []))
            preconditions(rid, parent, ctx.headers, existed)
            self.store.check_idle(rid)
            whole = kind.with_child(parent, rid.child_type, rid.child_name, body)
            answer = self._write(kind, rid.top, whole, parent, ctx)
            answer.body = kind.find_child(self.store.objects[rid.key], rid)
            answer.status = 200 if existed else 201
            return answer
        preconditions(rid, current, ctx.headers)
        self.store.check_idle(rid)
        return self._write(kind, rid, body, current, ctx)

    def _write(self, kind: Kind, rid: Rid, body: dict[str, Any],
               current: dict[str, Any] | None, ctx: Context) -> Answer:
        new = kind.build(rid, body, current)
        stamp(new, "Updating", self.store.new_etag())
        before = copy.deepcopy(current)
        self.store.objects[rid.key] = new

        def finish() -> None:
            obj = self.store.objects.get(rid.key)
            if obj is not None:
                stamp(obj, "Succeeded")

        def rollback() -> None:
            if before is None:
                self.store.objects.pop(rid.key, None)
            else:
                self.store.objects[rid.key] = before

        op = self.operations.start(rid, "put", new["location"], finish, rollback, ctx.failure)
        return Answer(201 if current is None else 200, kind.render(new),
                      self.async_headers(ctx, op.path))

    def patch(self, kind: Kind, rid: Rid, body: dict[str, Any], ctx: Context) -> Answer:
        obj = self.store.require(rid)
        preconditions(rid, obj, ctx.headers)
        self.store.check_idle(rid)
        unknown = sorted(set(body) - {"tags"})
        if unknown:
            raise bad_request("InvalidRequestFormat",
                              f"Only tags can be patched ({unknown[0]!r} given).")
        from .kinds import tags  # noqa: PLC0415 - keeps the module's import list short

        obj["tags"] = tags(body.get("tags"))
        obj["etag"] = self.store.new_etag()
        for items in obj["properties"].values():
            if isinstance(items, list):
                for child in items:
                    if isinstance(child, dict) and "etag" in child:
                        child["etag"] = obj["etag"]
        return Answer(200, kind.render(obj))

    def delete(self, kind: Kind, rid: Rid, ctx: Context) -> Answer:
        self.store.check_scope(rid)
        current = self.store.get(rid)
        if current is None:
            return Answer(204, None)
        if rid.child_type:
            if not any(c["name"].lower() == rid.child_name.lower()
                       for c in current["properties"].get(rid.child_type, [])):
                return Answer(204, None)
            preconditions(rid, current, ctx.headers)
            self.store.check_idle(rid)
            whole = kind.with_child(current, rid.child_type, rid.child_name, None)
            answer = self._write(kind, rid.top, whole, current, ctx)
            op_path = self.store.busy.get(rid.key) or _path(answer.headers["Azure-AsyncOperation"])
            return Answer(202, None, self.async_headers(ctx, op_path, location=True))
        preconditions(rid, current, ctx.headers)
        self.store.check_idle(rid)
        kind.check_delete(rid, current)
        before = copy.deepcopy(current)
        current["properties"]["provisioningState"] = "Deleting"

        def finish() -> None:
            self.store.objects.pop(rid.key, None)

        def rollback() -> None:
            self.store.objects[rid.key] = before

        op = self.operations.start(rid, "delete", current["location"], finish, rollback,
                                   ctx.failure)
        return Answer(202, None, self.async_headers(ctx, op.path, location=True))

    def async_headers(self, ctx: Context, op_path: str, location: bool = False
                      ) -> dict[str, str]:
        """`Azure-AsyncOperation` (and `Location`) of an accepted operation, with its wait."""
        query = f"?api-version={ctx.api_version}"
        out = {"Azure-AsyncOperation": f"{ctx.origin}{op_path}{query}"}
        if location:
            results = op_path.replace("/operations/", "/operationResults/")
            out["Location"] = f"{ctx.origin}{results}{query}"
        op_id = op_path.rsplit("/", 1)[-1]
        out.update(self.operations.retry_headers(self.operations.get(op_id)))
        return out


def _path(url: str) -> str:
    """The path of an absolute URL (without query)."""
    after_scheme = url.split("://", 1)[-1]
    return "/" + after_scheme.split("/", 1)[1].split("?", 1)[0]
