"""The userspace UDP data plane: per-client flows, each with its own connected upstream socket.

Why a socket per flow: the target's reply must go back to the client that caused it, and a
connected UDP socket per (client address, port) lets the kernel do that demultiplexing (and
reports ICMP unreachable as an error on exactly that flow). All sockets are raw, nonblocking and
driven by `add_reader` with a reused receive buffer: no Task, no transport and no per-datagram
allocation beyond the kernel copy. Flows are swept by one periodic timer, not one timer each,
and a flow whose target stopped being eligible is re-picked on its next datagram, so health
ejection and drain apply to UDP as they do to TCP.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

from lbctl.balancer import loops
from lbctl.balancer.acl import Acl
from lbctl.balancer.backends import Backend, BackendSet, ListenerStats
from lbctl.balancer.tcp_proxy import bind_socket

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65535
RECV_BATCH = 64


class _Flow:
    """One client (address, port) and its connected socket to the picked backend."""

    __slots__ = ("backend", "client", "frontend", "last", "own_end", "sock", "token")

    def __init__(self, frontend: UdpFrontend, client: tuple[str, int], backend: Backend,
                 sock: socket.socket, now: float) -> None:
        self.frontend = frontend
        self.client = client
        self.backend = backend
        self.sock = sock
        self.last = now
        self.token = backend.attach(self.close)
        self.own_end = loops.track(sock, (backend.address, backend.port))
        """Our socket's local end towards the target (`loops`)."""

    def on_reply(self) -> None:
        frontend = self.frontend
        stats = frontend.stats
        listen = frontend.sock
        buf = frontend.reply_buf
        for _ in range(RECV_BATCH):
            try:
                n = self.sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                stats.dropped += 1  # ICMP port unreachable from the target
                if frontend.on_unreachable is not None:
                    frontend.on_unreachable(self.backend)
                return
            except OSError:
                stats.dropped += 1
                return
            if listen is None:
                return
            self.last = frontend.now
            try:
                listen.sendto(frontend.reply_view[:n], self.client)
            except OSError:
                stats.dropped += 1
                continue
            stats.datagrams_out += 1
            stats.bytes_out += n

    def close(self) -> None:
        frontend = self.frontend
        if frontend.flows.get(self.client) is self:
            del frontend.flows[self.client]
        if self.sock.fileno() >= 0:
            frontend.loop.remove_reader(self.sock.fileno())
            loops.forget(self.own_end)
            self.sock.close()
            frontend.stats.active -= 1
        self.backend.detach(self.token)


class UdpFrontend:
    """One UDP VIP:port forwarding flows to a BackendSet."""

    def __init__(self, vip: str, port: int, backends: BackendSet, acl: Acl, *,
                 idle_timeout: float, stats: ListenerStats,
                 on_unreachable: Callable[[Backend], None] | None = None) -> None:
        self.vip = vip
        self.port = port
        self.backends = backends
        self.acl = acl
        self.idle_timeout = idle_timeout
        self.stats = stats
        self.on_unreachable = on_unreachable
        """Called when a target answers a flow with ICMP port unreachable."""
        self.flows: dict[tuple[str, int], _Flow] = {}
        self.sock: socket.socket | None = None
        self.now = 0.0
        """Loop time of the last receive: one clock read per batch, not per datagram."""
        self.recv_buf = bytearray(MAX_DATAGRAM)
        self.recv_view = memoryview(self.recv_buf)
        self.reply_buf = bytearray(MAX_DATAGRAM)
        self.reply_view = memoryview(self.reply_buf)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "UdpFrontend not started"
        return self._loop

    @property
    def sweep_interval(self) -> float:
        return min(max(self.idle_timeout / 4, 0.05), 5.0)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.now = self._loop.time()
        sock = bind_socket(self.vip, self.port, socket.SOCK_DGRAM)
        self.sock = sock
        self.port = sock.getsockname()[1]
        self._loop.add_reader(sock.fileno(), self._on_datagram)
        self._sweeper = self._loop.call_later(self.sweep_interval, self._sweep)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self.sock is not None:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
        for flow in list(self.flows.values()):
            flow.close()

    def _sweep(self) -> None:
        now = self.loop.time()
        self.now = now
        deadline = now - self.idle_timeout
        for flow in [f for f in self.flows.values() if f.last < deadline]:
            flow.close()
        self._sweeper = self.loop.call_later(self.sweep_interval, self._sweep)

    def _open_flow(self, client: tuple[str, int]) -> _Flow | None:
        backend = self.backends.pick(client[0], client_port=client[1])
        if backend is None:
            self.stats.refused_no_target += 1
            return None
        family = socket.AF_INET6 if ":" in backend.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect((backend.address, backend.port))
        except OSError as exc:
            sock.close()
            self.stats.connect_failures += 1
            log.debug("udp connect to %s: %s", backend.endpoint, exc)
            return None
        flow = _Flow(self, client, backend, sock, self.now)
        self.flows[client] = flow
        self.loop.add_reader(sock.fileno(), flow.on_reply)
        self.stats.connections += 1
        self.stats.active += 1
        return flow

    def _on_datagram(self) -> None:
        sock = self.sock
        if sock is None:
            return
        stats = self.stats
        acl = self.acl
        flows = self.flows
        buf, view = self.recv_buf, self.recv_view
        self.now = now = self.loop.time()
        for _ in range(RECV_BATCH):
            try:
                n, addr = sock.recvfrom_into(buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.EBADF:
                    return
                continue
            stats.datagrams_in += 1
            client = (addr[0], addr[1])
            if not acl.allows(client[0]):
                stats.refused_acl += 1
                continue
            flow = flows.get(client)
            if flow is not None and not flow.backend.eligible:
                flow.close()
                flow = None
            if flow is None:
                if loops.came_back(client):
                    stats.refused_loop += 1
                    loops.refused(f"{self.vip}:{self.port}/UDP", client)
                    continue
                flow = self._open_flow(client)
                if flow is None:
                    stats.dropped += 1
                    continue
            flow.last = now
            try:
                flow.sock.send(view[:n])
            except ConnectionRefusedError:
                stats.dropped += 1  # a previous datagram drew ICMP unreachable
                if self.on_unreachable is not None:
                    self.on_unreachable(flow.backend)
                continue
            except OSError:
                stats.dropped += 1
                continue
            stats.bytes_in += n
