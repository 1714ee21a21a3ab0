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

from .http_listener import HttpListener
from .plan import PodListener


class PodHttp(HttpListener):
    """One pod's TCP containerPort."""

    def __init__(self, address: str, port: int, pod: PodListener) -> None:
        super().__init__(address, port)
        self.pod = pod
        self.body = f"pod {pod.pod} on node {pod.node}\n".encode()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=self.body, content_type="text/plain", headers={
            "X-Sandbox-Pod": f"{self.pod.namespace}/{self.pod.pod}",
            "X-Sandbox-Node": self.pod.node})


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
