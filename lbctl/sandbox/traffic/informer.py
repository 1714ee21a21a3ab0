"""List-then-watch over plain HTTP into a dict of slim records, as client-go's reflector does.

The traffic process must never fall behind or stall the API server, so it lists in pages of 500,
then watches the raw chunked JSON lines (its own line splitting: any object size, linear cost),
resumes from the last resourceVersion seen (bookmarks included) when a watch ends or drops, and
relists from scratch only on 410. Transient failures (connection errors, 429/5xx, injected faults)
back off exponentially with jitter; the loop runs until cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import aiohttp
import orjson

from .records import Key, key_of

R = TypeVar("R")
log = logging.getLogger(__name__)
PAGE = 500


class Gone(Exception):
    """410: the resourceVersion is compacted away; only a fresh list helps."""


class ApiFailure(Exception):
    """Any other error answer from the API server: retried after a backoff (or Retry-After)."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _failure(what: str, resp: aiohttp.ClientResponse, body: bytes) -> ApiFailure:
    try:
        retry_after = float(resp.headers.get("Retry-After", "0"))
    except ValueError:
        retry_after = 0.0
    return ApiFailure(f"{what} answered {resp.status}: {body[:200]!r}", min(retry_after, 10.0))


class Informer(Generic[R]):
    """One resource's cache: `items` is current once `synced` is set."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, path: str,
                 parse: Callable[[dict[str, Any]], R], on_change: Callable[[], None], *,
                 watch_timeout: int = 300, read_timeout: float = 60.0) -> None:
        self.session = session
        self.url = base_url.rstrip("/") + path
        self.path = path
        self.parse = parse
        self.on_change = on_change
        self.watch_timeout = watch_timeout
        self.read_timeout = read_timeout
        self.items: dict[Key, R] = {}
        self.synced = asyncio.Event()
        self.rv = ""
        self.relists = 0

    async def run(self) -> None:
        delay = 0.0
        while True:
            try:
                if not self.rv:
                    await self._list()
                await self._watch()
                delay = 0.0
            except Gone:
                log.info("%s: resourceVersion %s is gone, relisting", self.path, self.rv)
                self.rv = ""
            except (aiohttp.ClientError, ApiFailure, TimeoutError, ValueError, KeyError,
                    TypeError, AttributeError) as exc:  # the last four: a malformed reply
                delay = min(max(delay * 2, 0.1), 5.0)
                wait = delay * random.uniform(0.8, 1.2)  # noqa: S311
                if isinstance(exc, ApiFailure):
                    wait = max(wait, exc.retry_after)
                log.warning("%s: %s; retrying in %.1fs", self.path,
                            str(exc) or type(exc).__name__, wait)
                await asyncio.sleep(wait)

    async def _list(self) -> None:
        items: dict[Key, R] = {}
        params = {"limit": str(PAGE)}
        while True:
            async with self.session.get(self.url, params=params) as resp:
                body = await resp.read()
                if resp.status == 410:
                    raise Gone()
                if resp.status != 200:
                    raise _failure("list", resp, body)
            doc = orjson.loads(body)
            for obj in doc.get("items") or []:
                self._put(items, obj)
            meta = doc.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                break
            params = {"limit": str(PAGE), "continue": str(token)}
        self.items = items
        self.rv = str(meta.get("resourceVersion") or "")
        self.relists += 1
        self.synced.set()
        self.on_change()

    async def _watch(self) -> None:
        params = {"watch": "true", "resourceVersion": self.rv, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(self.watch_timeout)}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10,
                                        sock_read=self.read_timeout)
        async with self.session.get(self.url, params=params, timeout=timeout) as resp:
            if resp.status == 410:
                raise Gone()
            if resp.status != 200:
                raise _failure("watch", resp, await resp.read())
            buf = bytearray()
            async for chunk in resp.content.iter_any():
                buf.extend(chunk)
                end = buf.rfind(b"\n")
                if end < 0:
                    continue
                lines = bytes(buf[:end]).split(b"\n")
                del buf[:end + 1]
                changed = False
                try:
                    for line in lines:
                        if line.strip():
                            changed |= self._event(orjson.loads(line))
                finally:
                    if changed:
                        self.on_change()

    def _event(self, event: dict[str, Any]) -> bool:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise Gone()
            raise ApiFailure(f"watch error {code}: {obj.get('message')}")
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            self.rv = str(rv or self.rv)
            return False
        if kind in ("ADDED", "MODIFIED"):
            self._put(self.items, obj)
        elif kind == "DELETED" and (obj.get("metadata") or {}).get("name"):
            self.items.pop(key_of(obj), None)
        if rv:
            self.rv = str(rv)
        return True

    def _put(self, items: dict[Key, R], obj: dict[str, Any]) -> None:
        try:
            items[key_of(obj)] = self.parse(obj)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("%s: skipping an object I cannot read (%s): %.200s", self.path,
                        exc, obj.get("metadata"))
