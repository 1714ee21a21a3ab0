"""Long-running operations: every PUT and DELETE answers one, polled through Azure-AsyncOperation.

The write is applied when accepted (provisioningState `Updating` or `Deleting`); its operation
stays `InProgress` for the configured `operationDelay`, then `Succeeded` (the object's state
turns `Succeeded`, or it is gone), or `Failed` when a fault said so: the write is rolled back
and the operation answers `{"status": "Failed", "error": {"code", "message"}}` behind an HTTP
200, which the SDK's poller raises as HttpResponseError carrying that code. The timer runs
whether anyone polls or not, as in Azure: a client that dies after its call leaves the write
done. While an operation runs, its object is `busy`: another write meets 409
AnotherOperationInProgress. `Location` polls (`operationResults/ID`) answer 202 until done,
then 204, or 200 with the action's `result` (a POST action such as a load-balancing rule's
`health`: it holds no object busy and changes nothing, so there is nothing to roll back).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import ArmError
from .ids import Rid
from .store import Store


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(eq=False)
class Operation:
    id: str
    rid: Rid
    verb: str
    path: str
    """The Azure-AsyncOperation path (without scheme, host and query)."""
    start: str = field(default_factory=now)
    status: str = "InProgress"
    error: ArmError | None = None
    end: str = ""
    due: float = 0.0
    """When it ends (the event loop's clock)."""
    result: dict[str, Any] | None = None
    """What an action's `Location` answers once it Succeeded (None: 204, no body)."""

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.path, "name": self.id, "status": self.status,
                                "startTime": self.start}
        if self.end:
            body["endTime"] = self.end
        if self.error is not None:
            body["error"] = self.error.error()
        return body


class Operations:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.known: dict[str, Operation] = {}
        self.timers: set[asyncio.TimerHandle] = set()

    def start(self, rid: Rid, verb: str, location: str, finish: Callable[[], None],
              rollback: Callable[[], None], failure: ArmError | None,
              busy: bool = True) -> Operation:
        """Run a write accepted on `rid`: `finish` after the delay, or `rollback` and fail
        with `failure` (an injected fault). `busy=False` (an action that writes nothing): the
        object takes other writes meanwhile."""
        op_id = self.store.new_uuid()
        path = (f"/subscriptions/{self.store.subscription}/providers/Microsoft.Network/"
                f"locations/{location}/operations/{op_id}")
        op = Operation(op_id, rid, verb, path)
        self.known[op_id] = op
        op.due = asyncio.get_running_loop().time() + max(0.0, self.store.settings.operation_delay)
        if busy:
            self.store.busy[rid.key] = path
        delay = self.store.settings.operation_delay
        if delay <= 0:
            self._finish(op, finish, rollback, failure)
            return op
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self.timers.discard(handle)
            self._finish(op, finish, rollback, failure)

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self.timers.add(handle)
        return op

    def _finish(self, op: Operation, finish: Callable[[], None], rollback: Callable[[], None],
                failure: ArmError | None) -> None:
        if self.store.busy.get(op.rid.key) == op.path:
            del self.store.busy[op.rid.key]
        if failure is not None:
            rollback()
            op.status, op.error = "Failed", failure
        else:
            finish()
            op.status = "Succeeded"
        op.end = now()

    def retry_headers(self, op: Operation) -> dict[str, str]:
        """How long a poller should wait: ARM's `Retry-After` seconds when configured
        (`operationRetryAfter`), else the time left in milliseconds (`retry-after-ms`, which
        azure-core's poller reads first), so a client polls about once per operation instead
        of once per its default interval (1 s and more)."""
        configured = self.store.settings.operation_retry_after
        if configured > 0:
            return {"Retry-After": str(configured)}
        if op.status != "InProgress":
            return {}
        left = op.due - asyncio.get_running_loop().time()  # and a little: done by then
        return {"retry-after-ms": str(max(10, round(left * 1000) + 20))}

    def get(self, op_id: str) -> Operation:
        op = self.known.get(op_id.lower()) or self.known.get(op_id)
        if op is None:
            raise ArmError(404, "NotFound", f"Operation {op_id} was not found.")
        return op

    def reset(self) -> None:
        """Drop every operation and its timer (the admin reset drops the objects with them)."""
        for handle in self.timers:
            handle.cancel()
        self.timers.clear()
        self.known.clear()
        self.store.busy.clear()
