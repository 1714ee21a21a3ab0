"""What every cloud emulator does besides being its cloud: serve, stop, talk to its admin API.

The GCE and ARM emulators are aiohttp apps run on an event loop of their own in a daemon
thread (`ThreadedServer`), so a test, the demo and the CLI all hold one emulator object and
call it synchronously while it serves; each talks to itself, or to one in another process,
through its `/_emulator/` admin API with the same small JSON client (`AdminClient`). `Served`
is the context manager every emulator (moto's included) is, and `files_note` the end of each
one's `ready` line. Only the lifecycle lives here: what a cloud answers, its errors and its
admin routes stay in its own package, as they differ.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web


class Served:
    """`with emulator:` starts it and stops it again; the class gives `start` and `stop`."""

    def start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class AdminClient:
    """The `/_emulator/` admin API of an emulator at `endpoint` (this process's or another's):
    JSON in and out; an HTTP error is a RuntimeError naming the call and the answer."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (our own http URL)
            f"{self.endpoint}/_emulator/{path}", data=data, method=method,
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                return json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise RuntimeError(f"{method} /_emulator/{path}: {exc.code} {detail}") from None


class ThreadedServer(Served):
    """`app()` served on (`host`, `port`; 0 picks a free port) from a daemon thread's event
    loop named `thread_name`; `start` answers the URL (also `endpoint`), `stop` undoes it."""

    thread_name = "emulator"

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.endpoint = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> str:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=self.thread_name, daemon=True)
        thread.start()

        async def boot() -> str:
            runner = web.AppRunner(self.app(), handle_signals=False, access_log=None,
                                   shutdown_timeout=1.0)
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.port)
            try:
                await site.start()
            except OSError:
                await runner.cleanup()
                raise
            self._runner = runner
            server = site._server
            assert isinstance(server, asyncio.Server)
            host, port = server.sockets[0].getsockname()[:2]
            return f"http://{f'[{host}]' if ':' in host else host}:{port}"

        try:
            self.endpoint = asyncio.run_coroutine_threadsafe(boot(), loop).result(30)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
            raise
        self._loop, self._thread = loop, thread
        return self.endpoint

    def stop(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = self._runner = None


def write_files(nodes_file: Path | None, nodes_text: str, config_out: Path | None,
                config_text: str) -> None:
    """The sandbox's nodes file and `lbctl run`'s config, each where asked (None: not)."""
    if nodes_file is not None:
        nodes_file.write_text(nodes_text)
    if config_out is not None:
        config_out.write_text(config_text)


def files_note(nodes_file: Path | None, config_out: Path | None) -> str:
    """The end of a `ready` line: where the nodes file and the config were written."""
    return "".join([f" nodes-file={nodes_file}" if nodes_file else "",
                    f" config={config_out}" if config_out else ""])
