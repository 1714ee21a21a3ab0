"""How the daemon's API listens: TLS when given, a cap on connections, and timeouts.

Why not a plain `web.TCPSite`: the chart binds the API on `0.0.0.0` of every LB node's host
network, so anyone who can reach the node can open connections to it before authenticating.
1,100 idle connections once took every file descriptor and the VIPs with them. Here:
- at most `max_connections` at once; one more is answered `503` and closed at once (a few
  bytes, no handler, no request parsed);
- a connection must send a complete request head within `header_timeout` seconds of opening
  (or of its last answer), and a request body must arrive within `body_timeout`; idle
  keep-alive connections close after the same `header_timeout` (aiohttp's keep-alive timer,
  which also covers a connection that never sends a whole head); an unread body is drained
  for at most a second after the answer (aiohttp's default: ten);
- TLS (`--tls-cert`/`--tls-key`, PEM) with TLS 1.2 at least and a handshake timeout; the files
  are re-read when they change (a rotated Secret, cert-manager's renewal), for new connections.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from aiohttp import web

log = logging.getLogger(__name__)

_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n"
         b"Retry-After: 1\r\n\r\n")


@dataclass(frozen=True)
class ApiLimits:
    max_connections: int = 256
    header_timeout: float = 10.0
    """Seconds to send a whole request head (and the idle keep-alive time)."""
    body_timeout: float = 10.0
    handshake_timeout: float = 5.0
    shutdown_timeout: float = 0.5
    """Seconds a stopping daemon waits for requests in flight (SIGTERM must end fast)."""


class TlsFiles:
    """A server SSLContext loaded from PEM files, re-loaded when either file changes."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert, self.key = cert, key
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._stamp: tuple[float, float] | None = None
        self.refresh(first=True)

    def _mtimes(self) -> tuple[float, float]:
        return self.cert.stat().st_mtime, self.key.stat().st_mtime

    def refresh(self, first: bool = False) -> bool:
        """Load the pair when it changed; a bad pair at start raises (ssl.SSLError/OSError),
        later it is logged and the last good pair keeps serving. Answers whether it loaded."""
        try:
            stamp = self._mtimes()
            if stamp == self._stamp:
                return False
            self.context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            if first:
                raise
            log.error("TLS files %s/%s unusable (%s); the last good pair keeps serving",
                      self.cert, self.key, exc)
            return False
        self._stamp = stamp
        if not first:
            log.info("TLS certificate %s re-loaded", self.cert)
        return True


class _Busy(asyncio.Protocol):
    """The answer past the cap: 503 and close, nothing read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = cast(asyncio.WriteTransport, transport)  # uvloop's are not subclasses
        writer.write(_BUSY)
        writer.close()


class ApiServer:
    """Serves an aiohttp application on one HOST:PORT; `start()` answers the bound port."""

    def __init__(self, app: web.Application, limits: ApiLimits,
                 tls: TlsFiles | None = None) -> None:
        self.limits = limits
        self.tls = tls
        self.runner = web.AppRunner(app, access_log=None,
                                    keepalive_timeout=limits.header_timeout,
                                    lingering_time=min(1.0, limits.body_timeout),
                                    shutdown_timeout=limits.shutdown_timeout)
        self.refused = 0
        """Connections answered 503 at the cap."""
        self._server: asyncio.Server | None = None

    def _factory(self) -> asyncio.BaseProtocol:
        handlers = self.runner.server
        assert handlers is not None
        if len(handlers.connections) >= self.limits.max_connections:
            self.refused += 1
            if self.refused in (1, 10, 100) or self.refused % 1000 == 0:
                log.warning("API connection cap %d reached: %d connections refused so far",
                            self.limits.max_connections, self.refused)
            return _Busy()
        return handlers()

    async def start(self, host: str, port: int) -> int:
        await self.runner.setup()
        loop = asyncio.get_running_loop()
        extra: dict[str, Any] = {}
        if self.tls is not None:
            extra = {"ssl": self.tls.context,
                     "ssl_handshake_timeout": self.limits.handshake_timeout}
        self._server = await loop.create_server(
            self._factory, host or None, port, reuse_address=True,
            backlog=min(self.limits.max_connections, socket.SOMAXCONN), **extra)
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connections(self) -> int:
        handlers = self.runner.server
        return len(handlers.connections) if handlers is not None else 0

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()  # no new connections; the runner ends the open ones
        await self.runner.cleanup()
        if self._server is not None:
            self._server = None
