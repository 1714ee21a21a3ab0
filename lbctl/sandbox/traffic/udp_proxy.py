"""A node's UDP NodePort: per-client flows to one endpoint each, forgotten when idle.

conntrack's role for kube-proxy's UDP rules: the first datagram from a client address picks an
endpoint (round-robin) and opens a connected socket to it from the node's address; later
datagrams of that client follow the same flow, and the endpoint's replies go back to the client
from NodeIP:nodePort. A flow ends after `idle_timeout` without traffic, when its endpoint stops
being routable (kube-proxy clears conntrack entries of removed UDP endpoints) or when the
endpoint answers ICMP unreachable. Flows per listener and datagrams queued per new flow are
bounded; with no usable endpoint a datagram is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import cast

from .plan import Backend, NodePortListener
from .router import Router

log = logging.getLogger(__name__)
Addr = tuple[str | int, int]
MAX_FLOWS = 4096
MAX_PENDING = 64


class _Upstream(asyncio.DatagramProtocol):
    """The flow's socket to its endpoint: replies go back to the client."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.flow.last = time.monotonic()
        self.flow.owner.reply(data, self.flow.client)

    def error_received(self, exc: Exception) -> None:
        self.flow.owner.forget(self.flow.client)


class Flow:
    def __init__(self, owner: UdpNodePort, client: Addr, backend: Backend) -> None:
        self.owner, self.client, self.backend = owner, client, backend
        self.last = time.monotonic()
        self.pending: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.closed = False

    async def open(self, local: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Upstream(self), local_addr=(local, 0),
                remote_addr=(self.backend.address, self.backend.port))
        except OSError as exc:
            log.debug("udp flow to %s: %s", self.backend, exc)
            self.owner.forget(self.client)
            return
        if self.closed:
            transport.close()
            return
        self.transport = transport
        for data in self.pending:
            transport.sendto(data)
        self.pending.clear()

    def send(self, data: bytes) -> None:
        self.last = time.monotonic()
        if self.transport is not None:
            self.transport.sendto(data)
        elif len(self.pending) < MAX_PENDING:
            self.pending.append(data)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UdpNodePort(asyncio.DatagramProtocol):
    """One node's listener for one UDP Service port."""

    def __init__(self, address: str, port: int, spec: NodePortListener, router: Router, *,
                 idle_timeout: float = 30.0) -> None:
        self.address, self.port, self.spec, self.router = address, port, spec, router
        self.idle_timeout = idle_timeout
        self.flows: OrderedDict[Addr, Flow] = OrderedDict()
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> UdpNodePort:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self,
                                            local_addr=(self.address, self.port))
        self._sweeper = asyncio.create_task(self._sweep())
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        flow = self.flows.get(addr)
        if flow is not None and not self.router.still_routes(self.spec.route, self.spec.node,
                                                              flow.backend):
            self.forget(addr)
            flow = None
        if flow is None:
            client = str(addr[0])
            backends = self.router.candidates(self.spec.route, self.spec.node, client)
            if not backends:
                return
            self.router.chose(self.spec.route, self.spec.node, client, backends[0])
            while len(self.flows) >= MAX_FLOWS:
                self.forget(next(iter(self.flows)))
            flow = self.flows[addr] = Flow(self, addr, backends[0])
            task = asyncio.ensure_future(flow.open(self.address))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self.flows.move_to_end(addr)
        flow.send(data)

    def error_received(self, exc: Exception) -> None:
        """ICMP about a reply to a client that went away: its flow ages out."""

    def reply(self, data: bytes, client: Addr) -> None:
        if self._transport is not None:
            self._transport.sendto(data, client)

    def forget(self, client: Addr) -> None:
        flow = self.flows.pop(client, None)
        if flow is not None:
            flow.close()

    async def _sweep(self) -> None:
        period = max(0.05, min(self.idle_timeout / 4, 5.0))
        while True:
            await asyncio.sleep(period)
            cutoff = time.monotonic() - self.idle_timeout
            for client in [c for c, f in self.flows.items() if f.last < cutoff]:
                self.forget(client)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for client in list(self.flows):
            self.forget(client)
        for task in list(self._tasks):
            task.cancel()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
