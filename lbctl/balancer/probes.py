"""One health probe: a TCP connect, or an HTTP GET whose status decides (kube-proxy's 200/503).

Why raw sockets for TCP: the checker runs 5,000 connects a second at 10,000 targets, and
`asyncio.open_connection` builds a transport, a protocol, a reader and a writer for a socket
that is closed at once; `loop.sock_connect` on a plain nonblocking socket is one `connect()`,
one readiness callback and one `close()`. HTTP keeps the stream helpers: it reads a reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from urllib.parse import quote


def hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


async def tcp(address: str, port: int) -> tuple[bool, str]:
    """Connect and close (raises OSError/TimeoutError on failure, as the caller expects)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
    finally:
        sock.close()
    return True, "connected"


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
