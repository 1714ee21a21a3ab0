"""The plumbing every child process of the daemon shares (data plane workers, the checker).

A child speaks JSON lines: in on stdin, out on what was stdout. fd 1 is moved aside and pointed
at stderr first, so a stray print can never corrupt the protocol. EOF on stdin (the daemon
closed it, or exited, even by SIGKILL) ends the child after its `close()`; with
`stop_on_sigterm` a SIGTERM does too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from .workers import LINE_LIMIT

log = logging.getLogger(__name__)


class Child(Protocol):
    async def handle(self, message: dict[str, Any]) -> None: ...

    async def report(self) -> None: ...

    async def close(self) -> None: ...


class Sender:
    """Writes JSON lines to the daemon; silent once the pipe is closing."""

    def __init__(self, out: asyncio.WriteTransport) -> None:
        self._out = out

    def __call__(self, message: dict[str, Any]) -> None:
        if not self._out.is_closing():
            self._out.write(orjson.dumps(message) + b"\n")


async def serve_child(make: Callable[[Sender], Child], *, stop_on_sigterm: bool) -> None:
    """Run the child `make` builds until EOF on stdin (or SIGTERM, if asked)."""
    loop = asyncio.get_running_loop()
    out_fd = os.dup(1)
    os.dup2(2, 1)  # prints go to stderr; the protocol has its own fd
    out, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(out_fd, "wb", 0))
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    child = make(Sender(out))
    stop = asyncio.Event()
    if stop_on_sigterm:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    reporter = asyncio.create_task(child.report())

    async def read() -> None:
        while line := await reader.readline():
            try:
                await child.handle(orjson.loads(line))
            except Exception:  # one bad message must not take the child down
                log.exception("pid %d: cannot handle a message from the daemon", os.getpid())
        stop.set()

    reading = asyncio.create_task(read())
    await stop.wait()
    for task in (reporter, reading):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await child.close()
    out.close()
