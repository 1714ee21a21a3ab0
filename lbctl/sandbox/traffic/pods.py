"""Simulated pods' servers: what a container listening on each declared containerPort answers.

TCP ports speak HTTP/1.1 (aiohttp's low-level server: keep-alive, pipelining, request bodies and
HEAD handled as a real server would) and answer 200 with `pod NAME on node NODE`, so a client can
count which pods and nodes served it; UDP ports echo each datagram prefixed with `NAME: `. Both
bind the pod's own loopback address (127.0.20.x), and close with their connections when the pod
stops running, is deleted or its node is stopped.
"""

from __future__ import annotations

import asyncio
from typing import cast

from aiohttp import web

from .plan import PodListener

KEEPALIVE_TIMEOUT = 30.0


class PodHttp:
    """One pod's TCP containerPort."""

    def __init__(self, address: str, port: int, pod: PodListener) -> None:
        self.address, self.port, self.pod = address, port, pod
        self.body = f"pod {pod.pod} on node {pod.node}\n".encode()
        self._web = web.Server(self._handle, access_log=None,
                               keepalive_timeout=KEEPALIVE_TIMEOUT)
        self._server: asyncio.Server | None = None

    async def start(self) -> PodHttp:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._web, self.address, self.port,
                                                reuse_address=True)
        return self

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=self.body, content_type="text/plain", headers={
            "X-Sandbox-Pod": f"{self.pod.namespace}/{self.pod.pod}",
            "X-Sandbox-Node": self.pod.node})

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._web.shutdown(0.2)
            await self._server.wait_closed()
            self._server = None


class _Echo(asyncio.DatagramProtocol):
    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(self.prefix + data, addr)

    def error_received(self, exc: Exception) -> None:
        """A client gone away (ICMP unreachable) or an oversized reply: nothing to do."""


class PodUdp:
    """One pod's UDP containerPort: an echo naming the pod."""

    def __init__(self, address: str, port: int, pod: PodListener) -> None:
        self.address, self.port, self.pod = address, port, pod
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> PodUdp:
        loop = asyncio.get_running_loop()
        prefix = f"{self.pod.pod}: ".encode()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Echo(prefix), local_addr=(self.address, self.port))
        return self

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
