"""An HTTP/1.1 server on one address:port, as the traffic process's simulated servers use it.

aiohttp's low-level server (keep-alive, pipelining, request bodies and HEAD handled as a real
server would); a subclass answers each request in `_handle`. Closing also closes the
connections it holds open.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Self

from aiohttp import web

KEEPALIVE_TIMEOUT = 30.0


class HttpListener(ABC):
    """One listening HTTP server; `start` binds it, `close` stops it."""

    def __init__(self, address: str, port: int) -> None:
        self.address, self.port = address, port
        self._web = web.Server(self._handle, access_log=None,
                               keepalive_timeout=KEEPALIVE_TIMEOUT)
        self._server: asyncio.Server | None = None

    async def start(self) -> Self:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._web, self.address, self.port,
                                                reuse_address=True)
        return self

    @abstractmethod
    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """The answer to one request."""

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._web.shutdown(0.2)
            await self._server.wait_closed()
            self._server = None
