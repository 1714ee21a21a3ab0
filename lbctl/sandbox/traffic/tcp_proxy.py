"""A node's TCP NodePort: accept on NodeIP:nodePort, relay byte for byte to one endpoint.

The kube-proxy role for TCP, in userspace: each accepted connection asks the router for this
node's backends (round-robin), dials the first and relays both ways with asyncio streams. A
half-close travels through (EOF from one side becomes a FIN to the other, and the other direction
keeps flowing), so request/response protocols that shut down their write side work. With no
usable endpoint the connection is reset at once, which is what kube-proxy's REJECT looks like to
a client; a refused dial falls through to the next endpoint (kube-proxy's old userspace mode did
the same), so a pod that died a moment ago does not fail the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct

from .plan import NodePortListener
from .router import Router

log = logging.getLogger(__name__)
CHUNK = 64 * 1024
DIAL_TIMEOUT = 2.0
DIAL_ATTEMPTS = 3


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN: the client sees 'connection reset', as with REJECT."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then pass the EOF on as a half-close."""
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof() and not writer.is_closing():
        writer.write_eof()


async def relay(a_reader: asyncio.StreamReader, a_writer: asyncio.StreamWriter,
                b_reader: asyncio.StreamReader, b_writer: asyncio.StreamWriter) -> None:
    """Both directions until both are done; an error on either (a reset) resets both sides."""
    back = asyncio.ensure_future(_pump(b_reader, a_writer))

    def torn(task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            reset(a_writer)
            reset(b_writer)

    back.add_done_callback(torn)
    try:
        await _pump(a_reader, b_writer)
        await back
    except OSError:
        reset(a_writer)
        reset(b_writer)
    finally:
        back.cancel()
        for w in (a_writer, b_writer):
            w.close()


class TcpNodePort:
    """One node's listener for one TCP Service port."""

    def __init__(self, address: str, port: int, spec: NodePortListener,
                 router: Router) -> None:
        self.address, self.port, self.spec, self.router = address, port, spec, router
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.StreamWriter, asyncio.Task[None] | None] = {}

    async def start(self) -> TcpNodePort:
        self._server = await asyncio.start_server(self._serve, self.address, self.port,
                                                  reuse_address=True, backlog=1024)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients[writer] = asyncio.current_task()
        try:
            peer = writer.get_extra_info("peername")
            upstream = await self._dial(str(peer[0]) if peer else None)
            if upstream is None:
                reset(writer)
                return
            await relay(reader, writer, *upstream)
        except OSError:
            reset(writer)
        finally:
            self._clients.pop(writer, None)

    async def _dial(self, client: str | None,
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        route, node = self.spec.route, self.spec.node
        for backend in self.router.candidates(route, node, client)[:DIAL_ATTEMPTS]:
            try:
                async with asyncio.timeout(DIAL_TIMEOUT):
                    upstream = await asyncio.open_connection(backend.address, backend.port)
                self.router.chose(route, node, client, backend)
                return upstream
            except (OSError, TimeoutError) as exc:
                log.debug("%s:%d -> %s:%d: %s", self.address, self.port, backend.address,
                          backend.port, exc)
        return None

    async def close(self) -> None:
        """Stop listening and drop the connections in flight (the node or Service is gone)."""
        if self._server is None:
            return
        self._server.close()
        for writer, task in list(self._clients.items()):
            reset(writer)
            if task is not None:
                task.cancel()
        await self._server.wait_closed()
        self._server = None
