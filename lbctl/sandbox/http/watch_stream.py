"""Writing a watch to the wire: chunked JSON lines, batched, with bookmarks and a deadline.

A busy server must not deliver events one `write` at a time: whatever a watcher has queued is
encoded into one chunk (each change's JSON is encoded once however many watchers get it), so
delivery keeps up with writes. Bookmarks are sent only when nothing is queued, so a bookmark's
resourceVersion never overtakes an event the client has not seen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import orjson
from aiohttp import web

from ..storage.registry import Registry
from ..storage.store import Obj
from ..storage.watch import INITIAL_EVENTS_END, Watcher, WatchItem
from . import negotiation
from .requests import Target

MAX_BATCH = 500


class WatchStream:
    """One client's watch response."""

    def __init__(self, registry: Registry, target: Target, watcher: Watcher,
                 response: web.StreamResponse, *, timeout: float, bookmarks: bool,
                 bookmark_interval: float, accept: str = "",
                 query: Mapping[str, str] | None = None) -> None:
        self.registry = registry
        self.target = target
        self.watcher = watcher
        self.response = response
        self.deadline = time.monotonic() + timeout
        self.bookmarks = bookmarks
        self.interval = bookmark_interval
        self._convert = bool(target.resource.store_as and target.resource.group)
        self._accept = accept
        self._query: Mapping[str, str] = query or {}
        self._as_table = bool(negotiation.target(accept, listing=False).kind)
        self._first = True

    async def run(self, request: web.Request) -> None:
        queue = self.watcher.queue
        next_mark = time.monotonic() + self.interval
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0 or request.transport is None or request.transport.is_closing():
                return
            if queue.empty():
                try:
                    first = await asyncio.wait_for(queue.get(), min(left, 1.0))
                except TimeoutError:
                    if self.bookmarks and time.monotonic() >= next_mark:
                        await self.response.write(self._bookmark(None))
                        next_mark = time.monotonic() + self.interval
                    continue
                items: list[WatchItem] = [first]
            else:
                items = []
            while len(items) < MAX_BATCH and not queue.empty():
                items.append(queue.get_nowait())
            chunk, ended = self._encode(items)
            if chunk:
                await self.response.write(chunk)
            if ended:
                return

    def _encode(self, items: list[WatchItem]) -> tuple[bytes, bool]:
        lines: list[bytes] = []
        for item in items:
            if item is None:
                return b"".join(lines), True
            kind, obj, change = item
            if kind == INITIAL_EVENTS_END:
                lines.append(self._bookmark({"k8s.io/initial-events-end": "true"}))
                continue
            if self._as_table:  # kubectl get -w: rows, column definitions on the first only
                raw = orjson.dumps(negotiation.render_watched(
                    self._accept, self.target.resource,
                    self.registry.outward(self.target.resource, obj), self._query, self._first))
                self._first = False
            elif self._convert:
                raw = orjson.dumps(self.registry.outward(self.target.resource, obj))
            else:
                raw = change.raw if change is not None else orjson.dumps(obj)
            lines.append(b'{"type":"' + kind.encode() + b'","object":' + raw + b"}\n")
        return b"".join(lines), False

    def _bookmark(self, annotations: dict[str, str] | None) -> bytes:
        res = self.target.resource
        meta: Obj = {"resourceVersion": str(self.registry.store.rv)}
        if annotations:
            meta["annotations"] = annotations
        obj = {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"
