"""Operations: every write answers one; it stays RUNNING for the configured delay, then the write
is checked again, applied (or refused) and the operation is DONE.

The timer runs whether or not anyone polls, as in GCE: a client that dies after its call still
leaves the write done. A write that fails on completion (quota, a reference deleted meanwhile,
an injected failure) ends DONE with `error.errors[].code` and `httpErrorStatusCode` +
`httpErrorMessage`, which make the SDK's `.result()` raise. `wait` answers once DONE or after
`waitTimeout` with the operation as it is (GCE's own wait gives up after about two minutes).
A `requestId` seen before answers the operation it started instead of writing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import GceError, invalid, not_found, not_ready
from .links import Key, scope_url
from .store import Pending, Store, now

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
USER = "emulator@lbctl.local"


@dataclass
class Write:
    """A validated write: `verify` checks it again on completion, `apply` does it."""

    key: Key
    verb: str
    obj: dict[str, Any] | None
    verify: Callable[[], None]
    apply: Callable[[], None]


@dataclass(eq=False)
class Operation:
    name: str
    id: str
    target: Key
    verb: str
    insert_time: str
    status: str = "RUNNING"
    end_time: str = ""
    error: GceError | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def scope(self) -> str:
        return self.target.scope

    def json(self) -> dict[str, Any]:
        where = scope_url(self.target.project, self.scope)
        body: dict[str, Any] = {
            "kind": "compute#operation", "id": self.id, "name": self.name,
            "operationType": self.verb, "targetLink": self.target.url, "status": self.status,
            "user": USER, "progress": 100 if self.status == "DONE" else 0,
            "insertTime": self.insert_time, "startTime": self.insert_time,
            "selfLink": f"{where}/operations/{self.name}"}
        kind = self.scope.partition("/")[0]
        if kind == "regions":
            body["region"] = where
        elif kind == "zones":
            body["zone"] = where
        if self.status == "DONE":
            body["endTime"] = self.end_time
        if self.error is not None:
            body.update(self.error.operation_fields())
        return body


class Operations:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.known: dict[tuple[str, str], Operation] = {}
        self.request_ids: dict[str, Operation] = {}
        self.timers: set[asyncio.TimerHandle] = set()

    def submit(self, write: Write, request_id: str | None = None,
               failure: GceError | None = None) -> Operation:
        """Start `write`; `failure` (an injected fault) fails its operation instead."""
        if request_id is not None:
            if not _UUID.fullmatch(request_id) or set(request_id) <= {"0", "-"}:
                raise invalid("requestId", request_id, "Must be a valid UUID (not zero).")
            if request_id in self.request_ids:
                return self.request_ids[request_id]
        if write.key in self.store.pending:
            raise not_ready(write.key.path)
        op = Operation(self.store.new_operation_name(), self.store.new_id(), write.key,
                       write.verb, now())
        self.known[(op.scope, op.name)] = op
        if request_id is not None:
            self.request_ids[request_id] = op
        self.store.pending[write.key] = Pending(op.name, write.verb, write.obj)
        delay = self.store.settings.operation_delay
        if delay <= 0:
            self._finish(op, write, failure)
        else:
            loop = asyncio.get_running_loop()
            handle: asyncio.TimerHandle | None = None

            def fire() -> None:
                if handle is not None:
                    self.timers.discard(handle)
                self._finish(op, write, failure)

            handle = loop.call_later(delay, fire)
            self.timers.add(handle)
        return op

    def _finish(self, op: Operation, write: Write, failure: GceError | None) -> None:
        pending = self.store.pending.get(write.key)
        if pending is not None and pending.operation == op.name:
            del self.store.pending[write.key]
        try:
            if failure is not None:
                raise failure
            write.verify()
            write.apply()
        except GceError as exc:
            op.error = exc
        op.status = "DONE"
        op.end_time = now()
        op.done.set()

    def get(self, project: str, scope: str, name: str) -> Operation:
        op = self.known.get((scope, name))
        if op is None or op.target.project != project:
            raise not_found(f"projects/{project}/{scope}/operations/{name}")
        return op

    async def wait(self, op: Operation) -> Operation:
        if op.status != "DONE":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(op.done.wait(), self.store.settings.wait_timeout)
        return op

    def listed(self, scope: str) -> list[Operation]:
        return [op for (s, _), op in sorted(self.known.items()) if s == scope]

    def forget(self, project: str, scope: str, name: str) -> None:
        self.known.pop((self.get(project, scope, name).scope, name))

    def reset(self) -> None:
        """Drop every operation; writes in flight are abandoned, waiters answered."""
        for handle in self.timers:
            handle.cancel()
        self.timers.clear()
        for op in self.known.values():
            op.done.set()
        self.known.clear()
        self.request_ids.clear()
        self.store.pending.clear()
