"""One health probe: a TCP connect, or an HTTP GET whose status decides (kube-proxy's 200/503).

Why a hand-made TCP probe: the checker runs 5,000 connects a second at 10,000 targets (2 s
interval), and every microsecond of it is a microsecond the data plane's process may wait for a
core. `asyncio.open_connection` builds a transport, a protocol, a reader and a writer for a
socket closed at once; `loop.sock_connect` resolves the address again (IDNA, getaddrinfo); an
`asyncio.timeout` and a semaphore per probe add timers and waiter scans. Here: a nonblocking
`connect_ex` (a refused or already-connected probe ends without yielding), else one writer
callback and one timer, and a plain future. Measured in-process at 10,000 targets: ~200 us of
CPU per probe before, see `bench/balancer_scale.py` for the effect on traffic. HTTP keeps the
stream helpers: it reads a reply.

`Limit` bounds probes in flight (sockets held) at O(1) per probe, unlike asyncio.Semaphore,
whose waiters are scanned on every release in Python 3.11.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from collections import deque
from types import TracebackType
from urllib.parse import quote


def hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


TIMED_OUT = -1
"""`tcp`'s answer when the timeout ran out (else 0 for connected, or the errno)."""


def tcp(address: str, port: int, timeout: float) -> asyncio.Future[int]:
    """Connect and close: a future of 0 (connected), an errno, or TIMED_OUT. Never raises
    for the probe's own failure (a socket that cannot be made is its errno too)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET,
                             socket.SOCK_STREAM)
    except OSError as exc:
        fut.set_result(exc.errno or errno.EIO)
        return fut
    sock.setblocking(False)
    err = sock.connect_ex((address, port))
    if err != errno.EINPROGRESS:
        sock.close()
        fut.set_result(err)
        return fut
    fd = sock.fileno()

    def finish(result: int) -> None:
        loop.remove_writer(fd)
        timer.cancel()
        sock.close()
        if not fut.done():
            fut.set_result(result)

    def ready() -> None:
        finish(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))

    def cancelled(_: asyncio.Future[int]) -> None:
        if fut.cancelled():
            finish(0)

    loop.add_writer(fd, ready)
    timer = loop.call_later(timeout, finish, TIMED_OUT)
    fut.add_done_callback(cancelled)
    return fut


def describe_errno(err: int) -> str:
    return "refused" if err == errno.ECONNREFUSED else f"failed: {os.strerror(err)}"


class Limit:
    """At most `size` holders at once; waiters served in order; O(1) enter and exit."""

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_acquire(self) -> bool:
        """Take a slot if one is free now (no coroutine: the common case)."""
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        return False

    async def __aenter__(self) -> None:
        if self.try_acquire():
            return
        await self.wait()

    async def wait(self) -> None:
        """Queue for a slot (after `try_acquire` said no); `release` it when done."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut  # the slot is handed over by the holder that leaves
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed over, then cancelled: pass it on
            raise

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.release()

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def http(address: str, port: int, path: str, what: str) -> tuple[bool, str]:
    """GET `path`; 2xx passes. `what` names the probe in the reason."""
    reader, writer = await asyncio.open_connection(address, port)
    try:
        writer.write(f"GET {quote(path, safe='/%?&=:@!$()*+,;~-._')} HTTP/1.1\r\n"
                     f"Host: {hostport(address, port)}\r\nUser-Agent: lbctl-health\r\n"
                     "Accept: */*\r\nConnection: close\r\n\r\n".encode("ascii"))
        await writer.drain()
        line = await reader.readline()
    finally:
        await _close(writer)
    if not line:
        return False, f"{what} closed the connection without answering"
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return False, f"{what} answered something that is not HTTP"
    code = int(parts[1])
    return 200 <= code < 300, f"{what} answered {code}"
