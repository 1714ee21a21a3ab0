"""The userspace TCP data plane: accept on a VIP, pick a target, move bytes with `os.splice`.

Why this shape (see data-plane-figures.md): a Python copy loop tops out near 3 Gbit/s on a core,
and `os.splice` with a thread per connection reached 2.3x HAProxy's throughput but wrecked the
connection rate and tail latency. So bytes move in the kernel (socket -> pipe -> socket, no copy
into Python) while readiness comes from the event loop (`add_reader`/`add_writer` on raw fds, a
few callbacks per chunk, no thread and no Task per connection). Connects are nonblocking with a
timer, not coroutines, for the same reason. A failed connect tells the caller (passive ejection)
and is retried once on another target, so a node that died a moment ago costs the client nothing.
Like HAProxy's `splice-auto`, a direction only splices once it carries a bulk stream: short
request/response traffic is copied through one shared buffer, so a new connection costs no
pipe (2 fds, a 1 MiB pipe allocation and 6 syscalls saved per connection). Works on the
default asyncio loop and on uvloop; a socket pair that cannot splice (EINVAL) falls back to
copying for that direction.

Not split: the hot path (`_Direction`, `_AutoDirection`, `_Connection`, `TcpFrontend`) shares the
per-loop scratch buffer and raw-fd callbacks; keeping them in one module keeps the per-chunk
path readable in one place and reviewed together, which matters more here than module size.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import socket
import threading
from collections.abc import Callable

from lbctl.balancer import loops
from lbctl.balancer.acl import Acl
from lbctl.balancer.backends import Backend, BackendSet, ListenerStats
from lbctl.balancer.proxy_protocol import v2_header

log = logging.getLogger(__name__)

IP_FREEBIND = 15  # linux/in.h: bind an address not (yet) configured on any interface
IPV6_FREEBIND = 78  # linux/in6.h, Linux >= 4.15
F_SETPIPE_SZ = 1031  # linux/fcntl.h
PIPE_SIZE = int(os.environ.get("LBCTL_PIPE_SIZE", str(1024 * 1024)))
COPY_CHUNK = 64 * 1024
BULK = 128 * 1024
"""A direction that has copied this many bytes is a bulk (or long-lived) stream: it switches
to splice, so the pipe's cost is paid once per connection that carries real volume."""
SCRATCH_SIZE = 256 * 1024
_scratch = threading.local()


def scratch_buffer() -> tuple[bytearray, memoryview]:
    """The copy buffer every connection of this thread's event loop reads small messages into
    (a read is written out, or parked, before the loop runs anything else; recv/send release
    the GIL, so each thread needs its own)."""
    found: tuple[bytearray, memoryview] | None = getattr(_scratch, "buffer", None)
    if found is None:
        buf = bytearray(SCRATCH_SIZE)
        found = _scratch.buffer = (buf, memoryview(buf))
    return found
BACKLOG = 4096
READ_BUDGET = int(os.environ.get("LBCTL_READ_BUDGET", "8"))
"""Reads per readiness event before yielding to other connections (fairness vs wake-ups)."""
ACCEPT_BATCH = 64
SPLICE_FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
_splice = os.splice  # module attribute so tests can simulate a kernel without splice support


LOCAL_ERRNOS = frozenset({errno.EADDRNOTAVAIL, errno.EAGAIN, errno.EADDRINUSE, errno.EMFILE,
                          errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
"""A connect that failed for this host's own reasons (no ephemeral port left: EADDRNOTAVAIL,
or EAGAIN for TCP on Linux; no file descriptor, no buffer): the target is not to blame, so it
is not ejected (ejecting every healthy target for a local shortage turns a blip into an
outage); the connection is still retried once on another target, then closed."""


def congestion_problem(name: str) -> str | None:
    """Why this process cannot give its sockets congestion control `name`, or None (also
    when it cannot tell, e.g. out of file descriptors: each connect tries anyway)."""
    try:
        probe = socket.socket()
    except OSError:
        return None
    with probe:
        try:
            probe.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, name.encode())
        except OSError as exc:
            why = ("not in net.ipv4.tcp_allowed_congestion_control (or no CAP_NET_ADMIN)"
                   if exc.errno == errno.EPERM else
                   "not available in this kernel" if exc.errno == errno.ENOENT else
                   exc.strerror or str(exc))
            return f"upstreamCongestionControl {name}: {why}; the host's default is used"
    return None


def bind_socket(vip: str, port: int, kind: socket.SocketKind) -> socket.socket:
    """A nonblocking socket bound to vip:port with SO_REUSEADDR, SO_REUSEPORT (several balancer
    processes may share a port) and IP_FREEBIND (bind the VIP before it is on an interface)."""
    family = socket.AF_INET6 if ":" in vip else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        if family == socket.AF_INET6:
            # Older kernels lack it; SOL_IP/IP_FREEBIND already covers IPv6 binds there.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
        sock.setblocking(False)
        sock.bind((vip, port))
    except BaseException:
        sock.close()
        raise
    return sock


class _Direction:
    """Bytes from `src` to `dst`. Reads only when the buffer is empty; when `dst` would block
    it stops reading `src` and waits for `dst` to drain (backpressure without buffering more)."""

    __slots__ = ("blocked", "conn", "done", "dst", "dst_fd", "loop", "pending", "src", "src_fd",
                 "upstream", "want")

    def __init__(self, conn: _Connection, src: socket.socket, dst: socket.socket,
                 upstream: bool) -> None:
        self.conn = conn
        self.loop = conn.loop
        self.src, self.dst = src, dst
        self.src_fd, self.dst_fd = src.fileno(), dst.fileno()
        self.upstream = upstream  # client -> target
        self.pending = 0
        self.want = 0
        """How many bytes the last `_read` asked for: fewer came = the socket is drained."""
        self.blocked = False
        self.done = False

    def _read(self) -> int:
        raise NotImplementedError

    def _write(self) -> int:
        raise NotImplementedError

    def release(self) -> None:
        """Free buffers/pipes (the connection removes fd callbacks and closes sockets)."""

    def start(self) -> None:
        self.loop.add_reader(self.src_fd, self.on_readable)

    def on_readable(self) -> None:
        # A read that came back short has drained the socket (the loop's readiness is
        # level-triggered: what arrives later wakes us again), so a request/response exchange
        # costs one recv per message, not a second one failing with EAGAIN. Reads that come
        # back full go on, up to READ_BUDGET per wake-up, while the destination keeps up.
        conn = self.conn
        for _ in range(READ_BUDGET):
            try:
                n = self._read()
            except BlockingIOError:
                return
            except OSError as exc:
                conn.error(self, exc)
                return
            if n == 0:
                self._eof()
                return
            self.pending = n
            self._drain()
            if self.pending or n < self.want or conn.state != "established":
                return

    def on_writable(self) -> None:
        self._drain()

    def _drain(self) -> None:
        stats = self.conn.stats
        while self.pending:
            try:
                moved = self._write()
            except BlockingIOError:
                if not self.blocked:
                    self.blocked = True
                    self.loop.remove_reader(self.src_fd)
                    self.loop.add_writer(self.dst_fd, self.on_writable)
                return
            except OSError as exc:
                self.conn.error(self, exc)
                return
            self.pending -= moved
            if self.upstream:
                stats.bytes_in += moved
            else:
                stats.bytes_out += moved
        if self.blocked:
            self.blocked = False
            self.loop.remove_writer(self.dst_fd)
            self.loop.add_reader(self.src_fd, self.on_readable)

    def _eof(self) -> None:
        self.loop.remove_reader(self.src_fd)
        with contextlib.suppress(OSError):  # the peer is gone: the other direction will notice
            self.dst.shutdown(socket.SHUT_WR)
        self.done = True
        self.conn.direction_done()


class _AutoDirection(_Direction):
    """HAProxy's splice-auto, per direction: small messages are copied through one scratch
    buffer shared by every connection of the process (no per-connection buffer, no pipe: a
    short HTTP exchange costs no extra syscalls), and once a direction has copied BULK bytes
    it switches the direction to splice through a pipe created at that moment (socket -> pipe
    -> socket, the bytes never enter Python). Bytes that cannot be sent at once are parked
    in a private copy, since the scratch buffer belongs to whoever reads next."""

    __slots__ = ("bulk", "can_splice", "chunk", "copied", "parked", "pipe_r", "pipe_w",
                 "scratch", "scratch_view", "splicing")

    def __init__(self, conn: _Connection, src: socket.socket, dst: socket.socket,
                 upstream: bool) -> None:
        super().__init__(conn, src, dst, upstream)
        self.splicing = False
        self.bulk = False
        self.can_splice = conn.frontend.splice
        self.scratch, self.scratch_view = conn.frontend.scratch
        self.copied = 0
        self.parked: bytes | None = None
        self.pipe_r = self.pipe_w = -1
        self.chunk = COPY_CHUNK

    def _read(self) -> int:
        if self.splicing or (self.bulk and self.can_splice and self._open_pipe()):
            self.want = self.chunk
            return _splice(self.src_fd, self.pipe_w, self.chunk, None, None, SPLICE_FLAGS)
        self.want = SCRATCH_SIZE
        n = self.src.recv_into(self.scratch)
        self.copied += n
        if self.copied >= BULK:
            self.bulk = True
        return n

    def _open_pipe(self) -> bool:
        """Start splicing; False (keep copying, try again after another BULK bytes) when no
        pipe can be had, e.g. out of file descriptors."""
        try:
            self.pipe_r, self.pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            log.debug("no pipe for splicing (%s); copying on", exc)
            self.bulk, self.copied = False, 0
            return False
        try:
            self.chunk = fcntl.fcntl(self.pipe_w, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            self.chunk = COPY_CHUNK  # the default pipe holds 64 KiB
        self.splicing = True
        return True

    def _write(self) -> int:
        if self.splicing:
            return _splice(self.pipe_r, self.dst_fd, self.pending, None, None, SPLICE_FLAGS)
        if self.parked is None:
            try:
                sent = self.dst.send(self.scratch_view[: self.pending])
            except BlockingIOError:
                self.parked = bytes(self.scratch_view[: self.pending])
                raise
            if sent < self.pending:
                self.parked = bytes(self.scratch_view[sent: self.pending])
            return sent
        sent = self.dst.send(self.parked)
        self.parked = self.parked[sent:] if sent < len(self.parked) else None
        return sent

    def release(self) -> None:
        if self.pipe_r >= 0:
            os.close(self.pipe_r)
            os.close(self.pipe_w)
            self.pipe_r = self.pipe_w = -1

    def stop_splicing(self) -> None:
        """splice said EINVAL (a socket type or kernel without it): copy from now on, keeping
        whatever is already in the pipe."""
        leftover = os.read(self.pipe_r, self.pending) if self.pending and self.splicing else b""
        self.release()
        self.splicing = self.can_splice = False
        if leftover:
            self.parked = leftover


class _Connection:
    """One client connection: connecting (with one retry), then two directions, then closed."""

    __slots__ = ("attempts", "backend", "client", "client_addr", "directions", "frontend",
                 "loop", "own_end", "state", "stats", "timer", "token", "upstream")

    def __init__(self, frontend: TcpFrontend, client: socket.socket,
                 client_addr: tuple[str, int]) -> None:
        self.frontend = frontend
        self.loop = frontend.loop
        self.stats = frontend.stats
        self.client = client
        self.client_addr = client_addr
        self.upstream: socket.socket | None = None
        self.backend: Backend | None = None
        self.token = 0
        self.attempts = 0
        self.timer: asyncio.TimerHandle | None = None
        self.directions: list[_Direction] = []
        self.state = "connecting"
        self.own_end: tuple[str, int] | None = None
        """Our socket's local end towards the target (`loops`)."""

    def connect(self, exclude: Backend | None = None) -> None:
        backend = self.frontend.backends.pick(self.client_addr[0], client_port=self.client_addr[1],
                                              exclude=exclude)
        if backend is None:
            self.stats.refused_no_target += 1
            self.close()
            return
        self.attempts += 1
        self.backend = backend
        self.token = backend.attach(self.close)
        family = socket.AF_INET6 if ":" in backend.address else socket.AF_INET
        up = self.upstream = socket.socket(family, socket.SOCK_STREAM)
        up.setblocking(False)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        congestion = self.frontend.congestion
        if congestion:
            try:
                up.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, congestion)
            except OSError as exc:  # checked when the listener started; the host may change
                log.debug("TCP_CONGESTION %s: %s", congestion.decode(), exc)
        err = up.connect_ex((backend.address, backend.port))
        if err in (0, errno.EINPROGRESS):
            self.own_end = loops.track(up, (backend.address, backend.port))
        if err == 0:
            self._established()
        elif err == errno.EINPROGRESS:  # (EAGAIN from a TCP connect: no ephemeral port left)
            self.loop.add_writer(up.fileno(), self._on_connect_ready)
            self.timer = self.loop.call_later(self.frontend.connect_timeout,
                                              self._connect_failed, errno.ETIMEDOUT)
        else:
            self._connect_failed(err)

    def _on_connect_ready(self) -> None:
        assert self.upstream is not None
        self.loop.remove_writer(self.upstream.fileno())
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        err = self.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._connect_failed(err)
        else:
            self._established()

    def _connect_failed(self, err: int) -> None:
        backend, up = self.backend, self.upstream
        assert backend is not None and up is not None
        self.timer = None
        self.loop.remove_writer(up.fileno())
        loops.forget(self.own_end)
        self.own_end = None
        up.close()
        self.upstream = None
        backend.detach(self.token)
        backend.failures += 1
        self.backend = None
        self.stats.connect_failures += 1
        log.debug("connect to %s failed: %s", backend.endpoint, os.strerror(err))
        if err in LOCAL_ERRNOS:
            self.stats.local_failures += 1
        else:
            try:
                self.frontend.on_connect_failure(backend)
            except Exception:
                log.exception("on_connect_failure(%s) raised", backend.endpoint)
        if self.state != "connecting":
            return  # the callback (or a drain it triggered) closed us
        if self.attempts < 2:
            self.connect(exclude=backend)
        else:
            self.close()

    def _established(self) -> None:
        up = self.upstream
        assert up is not None
        if self.frontend.proxy_protocol:
            header = v2_header(self.client_addr[0], self.client_addr[1],
                               self.frontend.vip, self.frontend.port)
            try:
                # A fresh socket's send buffer (>= 4 KiB) always takes the <= 52-byte header.
                if up.send(header) != len(header):
                    raise OSError(errno.EAGAIN, "short write of the PROXY header")
            except OSError:
                self._connect_failed(errno.EPIPE)
                return
        self.state = "established"
        self.directions = [_AutoDirection(self, self.client, up, True),
                           _AutoDirection(self, up, self.client, False)]
        for d in self.directions:
            d.start()

    def error(self, direction: _Direction, exc: OSError) -> None:
        if (exc.errno == errno.EINVAL and isinstance(direction, _AutoDirection)
                and direction.splicing and self.state == "established"):
            log.debug("splice unsupported here, copying instead")
            self.loop.remove_reader(direction.src_fd)
            if direction.blocked:
                direction.blocked = False
                self.loop.remove_writer(direction.dst_fd)
            direction.stop_splicing()
            direction.start()
            if direction.pending:
                direction._drain()
            return
        self.close()

    def direction_done(self) -> None:
        if all(d.done for d in self.directions):
            self.close()

    def close(self) -> None:
        if self.state == "closed":
            return
        self.state = "closed"
        loop = self.loop
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for sock in (self.client, self.upstream):
            if sock is not None and sock.fileno() >= 0:
                loop.remove_reader(sock.fileno())
                loop.remove_writer(sock.fileno())
        for d in self.directions:
            d.release()
        self.client.close()
        if self.upstream is not None:
            loops.forget(self.own_end)
            self.upstream.close()
        if self.backend is not None:
            self.backend.detach(self.token)
        self.stats.active -= 1
        self.frontend.connections.discard(self)


class TcpFrontend:
    """One listening VIP:port forwarding to a BackendSet."""

    def __init__(self, vip: str, port: int, backends: BackendSet, acl: Acl, *,
                 proxy_protocol: bool, stats: ListenerStats,
                 on_connect_failure: Callable[[Backend], None], connect_timeout: float = 2.0,
                 splice: bool = True) -> None:
        self.vip = vip
        self.port = port
        self.backends = backends
        self.acl = acl
        self.proxy_protocol = proxy_protocol
        self.stats = stats
        self.on_connect_failure = on_connect_failure
        self.connect_timeout = connect_timeout
        self.congestion = b""
        """TCP_CONGESTION for the connections to targets (b"": the host's default); the data
        plane sets it from the listener once `congestion_problem` found nothing against it."""
        self.splice = splice
        """False: always copy through Python (benchmarks, kernels without splice)."""
        self.connections: set[_Connection] = set()
        self.scratch = scratch_buffer()
        """This loop thread's copy buffer (taken again in start(), on the loop's thread)."""
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "TcpFrontend not started"
        return self._loop

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.scratch = scratch_buffer()
        sock = bind_socket(self.vip, self.port, socket.SOCK_STREAM)
        sock.listen(BACKLOG)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._loop.add_reader(sock.fileno(), self._on_accept)

    async def stop(self) -> None:
        """Stop listening and close every open connection."""
        if self._sock is not None:
            self.loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for conn in list(self.connections):
            conn.close()

    def _pause_accept(self) -> None:
        """Out of file descriptors: stop accepting for a moment instead of spinning on a
        listening socket that stays readable."""
        sock = self._sock
        if sock is None:
            return
        self.loop.remove_reader(sock.fileno())

        def resume() -> None:
            if self._sock is sock:
                self.loop.add_reader(sock.fileno(), self._on_accept)

        self.loop.call_later(0.1, resume)

    def _on_accept(self) -> None:
        sock = self._sock
        stats = self.stats
        for _ in range(ACCEPT_BATCH):
            if sock is None or self._sock is not sock:
                return
            try:
                client, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("accept on %s:%d: %s; pausing", self.vip, self.port, exc)
                    self._pause_accept()
                    return
                continue  # ECONNABORTED and friends: that client is gone
            if not self.acl.allows(addr[0]):
                stats.refused_acl += 1
                client.close()
                continue
            if loops.tcp_loop((addr[0], addr[1]), client):
                stats.refused_loop += 1
                loops.refused(f"{self.vip}:{self.port}/TCP", (addr[0], addr[1]))
                client.close()
                continue
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stats.connections += 1
            stats.active += 1
            conn = _Connection(self, client, (addr[0], addr[1]))
            self.connections.add(conn)
            conn.connect()
