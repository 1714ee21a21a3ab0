"""The userspace data plane end to end on loopback: real sockets, real splice, both event loops.

Addresses: VIPs on 127.0.101.x and targets on 127.0.102.x (ports from the kernel), each test
its own x, so parallel workers and other suites do not collide. Every wait is on an event the
test causes; timeouts only stop a broken run from hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

import pytest
import uvloop

from lbctl.balancer import tcp_proxy
from lbctl.balancer.acl import Acl
from lbctl.balancer.backends import Backend, BackendSet, ListenerStats
from lbctl.balancer.dataplane import Dataplane
from lbctl.balancer.model import TargetConfig, parse_balancer
from lbctl.balancer.proxy_protocol import SIGNATURE
from lbctl.balancer.tcp_proxy import TcpFrontend
from lbctl.balancer.udp_proxy import UdpFrontend

pytestmark = pytest.mark.integration

LOOPS = pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
SAFETY = 10.0


def run(loop: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    if loop == "uvloop":
        uvloop.run(asyncio.wait_for(main(), 20))
    else:
        asyncio.run(asyncio.wait_for(main(), 20))


async def until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + SAFETY
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


# --- TCP backends -------------------------------------------------------------------------------


class _EchoProtocol(asyncio.Protocol):
    """Echoes, and after the client's EOF sends `<eof>` then closes: proves half-close works."""

    def __init__(self, server: EchoServer) -> None:
        self.server = server
        self.received = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.server.accepted += 1
        self.server.received.append(self.received)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.received += data
        self.transport.write(data)

    def eof_received(self) -> bool | None:
        assert self.transport is not None
        self.transport.write(b"<eof>")
        return None  # close once the buffer is flushed

    def pause_writing(self) -> None:
        assert self.transport is not None
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        assert self.transport is not None
        self.transport.resume_reading()


class EchoServer:
    def __init__(self, host: str) -> None:
        self.host = host
        self.port = 0
        self.accepted = 0
        self.received: list[bytearray] = []
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> EchoServer:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _EchoProtocol(self), self.host, 0,
                                               reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def target(self) -> TargetConfig:
        return TargetConfig(address=self.host, port=self.port)

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()


def dead_port(host: str) -> int:
    """A port on `host` where nothing listens (bound once, then released)."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


class Rig:
    """A TcpFrontend on `vip` over echo servers; records connect failures."""

    def __init__(self, vip: str, backends: BackendSet, acl: Acl | None = None,
                 proxy_protocol: bool = False, splice: bool = True,
                 connect_timeout: float = 2.0) -> None:
        self.stats = ListenerStats()
        self.failures: list[Backend] = []
        self.backends = backends
        self.frontend = TcpFrontend(vip, 0, backends, acl or Acl(), proxy_protocol=proxy_protocol,
                                    stats=self.stats, on_connect_failure=self.failures.append,
                                    connect_timeout=connect_timeout, splice=splice)

    async def __aenter__(self) -> Rig:
        await self.frontend.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.frontend.stop()
        self.backends.close_all()
        assert self.stats.active == 0

    async def open(self, local: str | None = None
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(
            self.frontend.vip, self.frontend.port,
            local_addr=(local, 0) if local else None)

    async def echo(self, payload: bytes = b"ping", local: str | None = None) -> bytes:
        reader, writer = await self.open(local)
        writer.write(payload)
        writer.write_eof()
        data = await reader.read()
        writer.close()
        return data


async def servers(host: str, n: int) -> list[EchoServer]:
    return [await EchoServer(host).start() for _ in range(n)]


# --- TCP tests ----------------------------------------------------------------------------------


@LOOPS
@pytest.mark.parametrize("mode", ["splice", "copy", "einval"])
def test_tcp_20mib_both_ways_intact(loop: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if mode == "einval":
        def no_splice(*args: Any) -> int:
            raise OSError(errno.EINVAL, "splice not supported")
        monkeypatch.setattr(tcp_proxy, "_splice", no_splice)
    payload = os.urandom(20 << 20)

    async def main() -> None:
        (echo,) = await servers("127.0.102.1", 1)
        async with Rig("127.0.101.1", BackendSet((echo.target(),)),
                       splice=mode != "copy") as rig:
            reader, writer = await rig.open()

            async def send() -> None:
                for i in range(0, len(payload), 1 << 20):
                    writer.write(payload[i:i + (1 << 20)])
                    await writer.drain()
                writer.write_eof()

            sender = asyncio.create_task(send())
            got = await reader.read()
            await sender
            writer.close()
            assert len(got) == len(payload) + 5
            assert hashlib.sha256(got).digest() == hashlib.sha256(payload + b"<eof>").digest()
            assert bytes(echo.received[0]) == payload
            await until(lambda: rig.stats.active == 0)
            assert rig.stats.bytes_in == len(payload)
            assert rig.stats.bytes_out == len(payload) + 5
        await echo.close()

    run(loop, main)


@LOOPS
def test_small_exchanges_copy_and_bulk_streams_switch_to_splice(
        loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """splice-auto: request/response traffic never opens a pipe; a bulk stream does, once per
    direction that carries it, and its bytes then move by splice."""
    pipes: list[int] = []
    spliced: list[int] = []
    real_pipe2, real_splice = os.pipe2, tcp_proxy._splice

    def counting_pipe2(flags: int) -> tuple[int, int]:
        pipes.append(flags)
        return real_pipe2(flags)

    def counting_splice(*args: Any) -> int:
        moved: int = real_splice(*args)
        spliced.append(moved)
        return moved

    monkeypatch.setattr(os, "pipe2", counting_pipe2)
    monkeypatch.setattr(tcp_proxy, "_splice", counting_splice)

    async def main() -> None:
        (echo,) = await servers("127.0.102.30", 1)
        async with Rig("127.0.101.30", BackendSet((echo.target(),))) as rig:
            for i in range(20):
                assert await rig.echo(b"GET / %d" % i) == b"GET / %d<eof>" % i
            reader, writer = await rig.open()
            for _ in range(50):  # keep-alive: many small messages on one connection
                writer.write(b"x" * 100)
                assert await reader.readexactly(100) == b"x" * 100
            assert pipes == [] and spliced == []
            payload = os.urandom(8 << 20)
            writer.write(payload)
            writer.write_eof()
            got = await reader.read()
            writer.close()
            assert got == payload + b"<eof>"
            assert len(pipes) == 2  # one per direction: both carried the bulk stream
            assert sum(spliced) >= len(payload)  # in, and out again, mostly by splice
            await until(lambda: rig.stats.active == 0)
            requests = sum(len(b"GET / %d" % i) for i in range(20))
            assert rig.stats.bytes_in == requests + 50 * 100 + len(payload)
        await echo.close()

    run(loop, main)


def test_two_loops_in_two_threads_never_mix_their_bytes() -> None:
    """Each event-loop thread copies through its own scratch buffer (recv/send release the GIL:
    a shared one would hand one thread's bytes to the other's connections), e.g. two balancer
    daemons in one process. Many concurrent copy-mode streams per loop, odd chunk sizes."""
    results: list[tuple[int, int]] = []

    async def main(vip: str) -> None:
        (echo,) = await servers("127.0.102.31", 1)
        async with Rig(vip, BackendSet((echo.target(),)), splice=False) as rig:
            async def one(size: int) -> bool:
                reader, writer = await rig.open()
                data = os.urandom(size)
                for i in range(0, len(data), 7000):
                    writer.write(data[i:i + 7000])
                    await writer.drain()
                writer.write_eof()
                got = await reader.read()
                writer.close()
                return got == data + b"<eof>"

            ok = await asyncio.gather(*(one((1000, 200_000, 1_500_000)[i % 3])
                                        for i in range(60)))
            results.append((sum(ok), len(ok)))
        await echo.close()

    threads = [threading.Thread(target=run, args=("asyncio", lambda v=vip: main(v)))
               for vip in ("127.0.101.31", "127.0.101.32")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [(60, 60), (60, 60)]


@LOOPS
def test_tcp_half_close_keeps_the_other_direction(loop: str) -> None:
    async def main() -> None:
        (echo,) = await servers("127.0.102.2", 1)
        async with Rig("127.0.101.2", BackendSet((echo.target(),))) as rig:
            reader, writer = await rig.open()
            writer.write(b"hello")
            assert await reader.readexactly(5) == b"hello"
            writer.write_eof()  # client -> target is done; target -> client must still flow
            assert await reader.read() == b"<eof>"
            writer.close()
            await until(lambda: rig.stats.active == 0)
        await echo.close()

    run(loop, main)


@LOOPS
def test_tcp_many_concurrent_connections(loop: str) -> None:
    async def main() -> None:
        echoes = await servers("127.0.102.3", 3)
        async with Rig("127.0.101.3", BackendSet(tuple(e.target() for e in echoes))) as rig:

            async def one(i: int) -> None:
                data = os.urandom(1024 + i)
                assert await rig.echo(data) == data + b"<eof>"

            await asyncio.gather(*(one(i) for i in range(200)))
            assert rig.stats.connections == 200
            assert sum(e.accepted for e in echoes) == 200
            await until(lambda: rig.stats.active == 0)
            assert all(b.active == 0 for b in rig.backends.backends)
        for e in echoes:
            await e.close()

    run(loop, main)


@LOOPS
def test_tcp_round_robin_spreads_evenly(loop: str) -> None:
    async def main() -> None:
        echoes = await servers("127.0.102.4", 3)
        async with Rig("127.0.101.4", BackendSet(tuple(e.target() for e in echoes))) as rig:
            for _ in range(30):
                assert await rig.echo() == b"ping<eof>"
            assert [e.accepted for e in echoes] == [10, 10, 10]
        for e in echoes:
            await e.close()

    run(loop, main)


@LOOPS
def test_tcp_source_range_refuses_outsiders(loop: str) -> None:
    async def main() -> None:
        (echo,) = await servers("127.0.102.5", 1)
        acl = Acl(("127.0.103.0/24",))
        async with Rig("127.0.101.5", BackendSet((echo.target(),)), acl=acl) as rig:
            reader, writer = await rig.open(local="127.0.0.1")
            with contextlib.suppress(ConnectionResetError):
                assert await reader.read() == b""  # accepted by the kernel, closed by us
            writer.close()
            assert rig.stats.refused_acl == 1
            assert echo.accepted == 0
            assert await rig.echo(b"in", local="127.0.103.7") == b"in<eof>"
            assert echo.accepted == 1
            assert rig.stats.connections == 1
        await echo.close()

    run(loop, main)


@LOOPS
@pytest.mark.parametrize("affinity", ["None", "ClientIP"])
def test_tcp_dead_target_is_retried_elsewhere(loop: str, affinity: str) -> None:
    async def main() -> None:
        (echo,) = await servers("127.0.102.6", 1)
        dead = TargetConfig(address="127.0.102.7", port=dead_port("127.0.102.7"))
        backends = BackendSet((dead, echo.target()), "roundRobin",
                              "ClientIP" if affinity == "ClientIP" else "None")
        async with Rig("127.0.101.6", backends) as rig:
            sources = [f"127.0.104.{i}" for i in range(1, 25)]
            for source in sources:  # the callback only records: nobody ejects the dead target
                assert await rig.echo(b"x", local=source) == b"x<eof>"
            assert echo.accepted == len(sources)
            assert rig.failures, "some client must have been sent to the dead target first"
            assert {b.key for b in rig.failures} == {dead_key(dead)}
            assert rig.stats.connect_failures == len(rig.failures)
            assert backends.get(dead_key(dead)) is not None
        await echo.close()

    run(loop, main)


def dead_key(t: TargetConfig) -> tuple[str, int]:
    return (t.address, t.port)


@LOOPS
def test_tcp_connect_timeout_is_a_failure_and_retried(loop: str) -> None:
    async def main() -> None:
        (echo,) = await servers("127.0.102.8", 1)
        # A listener with a full accept queue drops SYNs: connects to it hang until timeout.
        full = socket.socket()
        full.bind(("127.0.102.9", 0))
        full.listen(0)
        fillers = []
        for _ in range(2):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(full.getsockname())
            fillers.append(s)
        await asyncio.sleep(0.05)
        stuck = TargetConfig(address="127.0.102.9", port=full.getsockname()[1])
        async with Rig("127.0.101.8", BackendSet((stuck, echo.target())),
                       connect_timeout=0.2) as rig:
            started = time.monotonic()
            assert await rig.echo(b"t") == b"t<eof>"  # round robin tries the stuck one first
            assert time.monotonic() - started >= 0.19
            assert [b.key for b in rig.failures] == [("127.0.102.9", stuck.port)]
        for s in [*fillers, full]:
            s.close()
        await echo.close()

    run(loop, main)


def test_the_listener_connect_timeout_reaches_the_frontend_and_follows_changes() -> None:
    """A dead host's SYNs go unanswered: its connects are cut after the listener's connect
    timeout (by default the health check's), which the running frontend takes without a
    restart when the check changes."""
    async def main() -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.101.31", 0))
            port = probe.getsockname()[1]

        def body(timeout: float) -> dict[str, Any]:
            return {"name": "t", "vip": "127.0.101.31", "listeners": [{
                "protocol": "TCP", "port": port, "targets": ["127.0.102.31:9"],
                "healthCheck": {"type": "tcp", "intervalSeconds": 60,
                                "timeoutSeconds": timeout}}]}

        dp = Dataplane(kernel=None, log_health=False)
        try:
            await dp.apply([parse_balancer(body(2.0))])
            front = dp.running[("TCP", "127.0.101.31", port)].frontend
            assert isinstance(front, TcpFrontend) and front.connect_timeout == 2.0
            await dp.apply([parse_balancer(body(3.0))])
            assert dp.running[("TCP", "127.0.101.31", port)].frontend is front
            assert front.connect_timeout == 3.0
        finally:
            await dp.close()

    run("asyncio", main)


def test_upstream_congestion_control_is_set_on_target_connections_or_reported() -> None:
    with socket.socket() as fresh:  # what a socket gets from the host
        default = fresh.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0")

    async def main() -> None:
        (echo,) = await servers("127.0.102.32", 1)
        with socket.socket() as probe:
            probe.bind(("127.0.101.32", 0))
            port = probe.getsockname()[1]

        def body(cc: str) -> dict[str, Any]:
            return {"name": "cc", "vip": "127.0.101.32", "listeners": [{
                "protocol": "TCP", "port": port, "targets": [f"127.0.102.32:{echo.port}"],
                "healthCheck": {"type": "none"}, "upstreamCongestionControl": cc}]}

        async def upstream_cc(dp: Dataplane) -> bytes:
            front = dp.running[("TCP", "127.0.101.32", port)].frontend
            assert isinstance(front, TcpFrontend)
            reader, writer = await asyncio.open_connection("127.0.101.32", port)
            writer.write(b"x")
            assert await reader.readexactly(1) == b"x"
            (conn,) = front.connections
            assert conn.upstream is not None
            name = conn.upstream.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
            writer.close()
            for _ in range(200):  # the next call must find only its own connection
                if not front.connections:
                    break
                await asyncio.sleep(0.01)
            return name.rstrip(b"\0")

        dp = Dataplane(kernel=None, log_health=False)
        try:
            await dp.apply([parse_balancer(body("reno"))])  # always allowed
            assert await upstream_cc(dp) == b"reno"
            assert dp.problems.by_balancer.get("cc", []) == []
            # a name the kernel does not know: reported, and the host's default is used
            await dp.apply([parse_balancer(body("nosuchcc"))])
            assert any("upstreamCongestionControl nosuchcc: not available in this kernel"
                       in p for p in dp.problems.by_balancer.get("cc", []))
            assert await upstream_cc(dp) == default
        finally:
            await dp.close()
            await echo.close()

    run("asyncio", main)


@LOOPS
def test_tcp_drain_cuts_leftover_connections(loop: str) -> None:
    async def main() -> None:
        old, new = await servers("127.0.102.10", 2)
        backends = BackendSet((old.target(),))
        async with Rig("127.0.101.10", backends) as rig:
            reader, writer = await rig.open()
            writer.write(b"a")
            assert await reader.readexactly(1) == b"a"
            leaving = backends.backends[0]
            backends.update((new.target(),), drain_seconds=0.3)
            drained_at = time.monotonic()
            assert leaving.draining and leaving.active == 1
            writer.write(b"b")  # still served while draining
            assert await reader.readexactly(1) == b"b"
            assert await rig.echo(b"n") == b"n<eof>"
            assert (old.accepted, new.accepted) == (1, 1)
            with contextlib.suppress(ConnectionResetError):
                assert await reader.read() == b""  # cut
            assert time.monotonic() - drained_at >= 0.25
            writer.close()
            assert [b.key for b in backends.backends] == [(new.host, new.port)]
            await until(lambda: rig.stats.active == 0)
        await old.close()
        await new.close()

    run(loop, main)


def parse_v2(data: bytes) -> tuple[tuple[str, int], tuple[str, int], bytes]:
    """(source, destination, rest) from a PROXY v2 header (TCP over IPv4/IPv6)."""
    assert data[:12] == SIGNATURE
    command, family, length = struct.unpack("!BBH", data[12:16])
    assert command == 0x21
    body, rest = data[16:16 + length], data[16 + length:]
    af, size = (socket.AF_INET, 4) if family == 0x11 else (socket.AF_INET6, 16)
    src, dst = socket.inet_ntop(af, body[:size]), socket.inet_ntop(af, body[size:2 * size])
    sport, dport = struct.unpack("!HH", body[2 * size:2 * size + 4])
    return (src, sport), (dst, dport), rest


@LOOPS
def test_tcp_proxy_protocol_v2_reaches_the_target(loop: str) -> None:
    async def main() -> None:
        (echo,) = await servers("127.0.102.11", 1)
        async with Rig("127.0.101.11", BackendSet((echo.target(),)), proxy_protocol=True) as rig:
            reader, writer = await rig.open(local="127.0.105.1")
            client = writer.get_extra_info("sockname")
            writer.write(b"payload")
            writer.write_eof()
            await reader.read()
            writer.close()
            src, dst, rest = parse_v2(bytes(echo.received[0]))
            assert src == ("127.0.105.1", client[1])
            assert dst == ("127.0.101.11", rig.frontend.port)
            assert rest == b"payload"
        await echo.close()

    run(loop, main)


# --- UDP ----------------------------------------------------------------------------------------


class _UdpEcho(asyncio.DatagramProtocol):
    def __init__(self, name: bytes) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name + b":" + data, addr)


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.replies.put_nowait(data)


async def udp_echo(host: str, name: bytes) -> tuple[asyncio.DatagramTransport, TargetConfig]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _UdpEcho(name),
                                                       local_addr=(host, 0))
    return transport, TargetConfig(address=host, port=transport.get_extra_info("sockname")[1])


async def udp_client(frontend: UdpFrontend, local: str = "127.0.0.1"
                     ) -> tuple[asyncio.DatagramTransport, Callable[[bytes], Awaitable[bytes]]]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        _UdpClient, local_addr=(local, 0), remote_addr=(frontend.vip, frontend.port))

    async def ask(data: bytes) -> bytes:
        transport.sendto(data)
        return await asyncio.wait_for(proto.replies.get(), SAFETY)

    return transport, ask


@LOOPS
def test_udp_flows_stick_spread_and_repick(loop: str) -> None:
    async def main() -> None:
        ta, a = await udp_echo("127.0.102.20", b"A")
        tb, b = await udp_echo("127.0.102.21", b"B")
        backends = BackendSet((a, b))
        stats = ListenerStats()
        front = UdpFrontend("127.0.101.20", 0, backends, Acl(), idle_timeout=30, stats=stats)
        await front.start()
        clients = [await udp_client(front) for _ in range(4)]
        owners = []
        for _, ask in clients:
            replies = {await ask(f"m{i}".encode()) for i in range(5)}
            names = {r.split(b":")[0] for r in replies}
            assert len(names) == 1, "a flow stays on one target"
            assert {r.split(b":")[1] for r in replies} == {f"m{i}".encode() for i in range(5)}
            owners.append(names.pop())
        assert sorted(owners) == [b"A", b"A", b"B", b"B"]  # round robin per flow
        assert stats.connections == 4 and stats.active == 4
        assert stats.datagrams_in == stats.datagrams_out == 20
        # The first client's target goes down: its next datagram is re-picked.
        first_owner = a if owners[0] == b"A" else b
        assert backends.set_up((first_owner.address, first_owner.port), False)
        reply = await clients[0][1](b"again")
        assert reply.split(b":")[0] != owners[0]
        assert stats.connections == 5
        await front.stop()
        assert stats.active == 0
        for t, _ in clients:
            t.close()
        ta.close()
        tb.close()

    run(loop, main)


@LOOPS
def test_udp_idle_flows_expire_and_acl_drops(loop: str) -> None:
    async def main() -> None:
        ta, a = await udp_echo("127.0.102.22", b"A")
        stats = ListenerStats()
        front = UdpFrontend("127.0.101.22", 0, BackendSet((a,)), Acl(("127.0.106.0/24",)),
                            idle_timeout=0.2, stats=stats)
        await front.start()
        t1, ask = await udp_client(front, local="127.0.106.1")
        assert await ask(b"1") == b"A:1"
        assert stats.active == 1
        await until(lambda: stats.active == 0)
        assert not front.flows
        assert await ask(b"2") == b"A:2"
        assert stats.connections == 2
        t2, _ = await udp_client(front, local="127.0.0.1")
        t2.sendto(b"refused")
        await until(lambda: stats.refused_acl == 1)
        assert stats.connections == 2
        await front.stop()
        for t in (t1, t2, ta):
            t.close()

    run(loop, main)


def test_a_local_shortage_is_not_the_targets_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ephemeral port left (EADDRNOTAVAIL) is this host's problem: the client is retried
    on another target and then closed, but no target is ejected for it (ejecting every
    healthy target for a local shortage once took a whole balancer out); a refused connect
    is the target's and still ejects it."""
    import errno
    import types

    failing = {"err": errno.EADDRNOTAVAIL}

    class Short(socket.socket):
        def connect_ex(self, address: Any) -> int:
            return failing["err"]

    async def closed_at_once(rig: Rig) -> bool:
        reader, writer = await rig.open()
        try:
            data = await reader.read()
        except ConnectionError:
            data = b""
        writer.close()
        return data == b""

    async def main() -> None:
        (echo,) = await servers("127.0.102.41", 1)
        async with Rig("127.0.101.41", BackendSet((echo.target(),))) as rig:
            # the proxy's own `socket` module, with sockets whose connect fails (only there)
            fake = types.SimpleNamespace(**{**vars(socket), "socket": Short})
            monkeypatch.setattr("lbctl.balancer.tcp_proxy.socket", fake)
            assert await closed_at_once(rig)  # no connect could be made
            assert rig.failures == []  # ...and nobody was ejected for it
            assert (rig.stats.connect_failures, rig.stats.local_failures) == (1, 1)  # one target
            failing["err"] = errno.ECONNREFUSED
            assert await closed_at_once(rig)
            assert [b.key for b in rig.failures] == [(echo.target().address, echo.target().port)]
            monkeypatch.undo()
        await echo.close()

    run("asyncio", main)
