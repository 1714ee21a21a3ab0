"""What every cloud emulator does besides being its cloud: serve, stop, talk to its admin API.

The GCE and ARM emulators are aiohttp apps run on an event loop of their own in a daemon
thread (`ThreadedServer`), so a test, the demo and the CLI all hold one emulator object and
call it synchronously while it serves; each talks to itself, or to one in another process,
through its `/_emulator/` admin API with the same small JSON client (`AdminClient`), served by
the same handlers for faults, rate limits, settings, the call log and seeding (`AdminApi`; each
cloud adds its world's routes and answers in its own error shape). `Served`
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
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from aiohttp import web

from .faults_base import CallLog

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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

    def add_fault(self, **fault: Any) -> None:
        """`api=` (a shell-style pattern on the API id), `method=`, `path=` (regex), `count=`
        (None: for ever), `probability=`, `status=`, `message=`, `mode=` ("http" |
        "operation" | "lost"), and the cloud's own fields (its class docstring names them)."""
        self.call("POST", "faults", fault)

    def faults(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "faults")["faults"])

    def clear_faults(self) -> None:
        self.call("DELETE", "faults")

    def set_rate_limit(self, limits: dict[str, Any]) -> None:
        """`{"write": {"rate": 1, "burst": 2}, ...}` and the cloud's own option; `{}` lifts it."""
        self.call("PUT", "rate-limit", limits)

    def settings(self, **values: Any) -> dict[str, Any]:
        """Change the emulator's settings (the cloud's class docstring names them); none: read
        them."""
        if values:
            return dict(self.call("PUT", "settings", values))
        return dict(self.call("GET", "settings"))

    def calls(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "calls")["calls"])

    def counts(self) -> dict[str, int]:
        """Calls per API id."""
        return dict(self.call("GET", "calls")["counts"])

    def clear_calls(self) -> None:
        self.call("DELETE", "calls")

    def snapshot(self, seeded: bool = False) -> dict[str, Any]:
        return dict(self.call("GET", f"snapshot?seeded={'true' if seeded else 'false'}"))

    def seed_random(self, seed: int) -> None:
        self.call("POST", "seed-random", {"seed": seed})


class WireError(Protocol):
    """A cloud's error as it answers it: an HTTP status and a JSON body."""

    status: int

    def body(self) -> dict[str, Any]: ...


class AdminApi:
    """The `/_emulator/` handlers every emulator serves alike: faults, the rate limit,
    settings, the call log, `seed-random`, and the JSON-in, JSON-out wrapping of each.

    A cloud's subclass names its error (`error_type`, and `bad_request` for a malformed body),
    its fault class (`fault_type.from_json`), answers `reset`, `world` and `snapshot` its own
    way, and adds its world's edits to `common_routes()`. `base_settings` are the settings a
    reset goes back to."""

    error_type: type[Exception]
    fault_type: Any

    def __init__(self, log: CallLog[Any, Any], store: Any, base_settings: Any) -> None:
        self.log = log
        self.store = store
        self.base_settings = base_settings

    def bad_request(self, message: str) -> Exception:
        raise NotImplementedError

    def reset(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        raise NotImplementedError

    def world(self) -> dict[str, Any]:
        raise NotImplementedError

    def snapshot(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        raise NotImplementedError

    def wrap(self, handler: Callable[[dict[str, Any], web.Request], Any]) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                raw = await request.read()
                body = json.loads(raw) if raw.strip() else {}
                if not isinstance(body, dict):
                    raise self.bad_request("expected a JSON object")
                return web.json_response(handler(body, request))
            except self.error_type as exc:
                return self._answer(exc)
            except (ValueError, TypeError, KeyError) as exc:
                return self._answer(self.bad_request(str(exc)))

        return run

    @staticmethod
    def _answer(exc: Any) -> web.StreamResponse:
        error: WireError = exc
        return web.json_response(error.body(), status=error.status)

    def common_routes(self) -> list[web.RouteDef]:
        r, wrap = "/_emulator", self.wrap
        return [
            web.post(f"{r}/reset", wrap(self.reset)),
            web.get(f"{r}/world", wrap(lambda b, q: self.world())),
            web.get(f"{r}/snapshot", wrap(self.snapshot)),
            web.get(f"{r}/faults", wrap(lambda b, q: self.faults())),
            web.post(f"{r}/faults", wrap(self.add_fault)),
            web.delete(f"{r}/faults", wrap(lambda b, q: self._clear_faults())),
            web.put(f"{r}/rate-limit", wrap(self.rate_limit)),
            web.get(f"{r}/settings", wrap(lambda b, q: self.store.settings.json())),
            web.put(f"{r}/settings", wrap(self.set_settings)),
            web.get(f"{r}/calls", wrap(lambda b, q: self.calls())),
            web.delete(f"{r}/calls", wrap(lambda b, q: self._clear_calls())),
            web.post(f"{r}/seed-random", wrap(self.seed_random)),
        ]

    def faults(self) -> dict[str, Any]:
        return {"faults": [f.json() for f in self.log.rules]}

    def add_fault(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        self.log.rules.append(self.fault_type.from_json(body))
        return self.faults()

    def _clear_faults(self) -> dict[str, Any]:
        self.log.rules.clear()
        return self.faults()

    def rate_limit(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        self.log.set_rate_limit(body)  # type: ignore[attr-defined]
        return {"families": sorted(self.log.buckets)}

    def set_settings(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        self.store.settings = self.store.settings.changed(body)
        return dict(self.store.settings.json())

    def calls(self) -> dict[str, Any]:
        return {"calls": [c.json() for c in self.log.calls], "counts": dict(self.log.counts())}

    def _clear_calls(self) -> dict[str, Any]:
        self.log.calls.clear()
        return {"calls": [], "counts": {}}

    def seed_random(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        seed = int(body.get("seed", 0))
        self.store.rng.seed(seed)
        self.log.rng.seed(seed)
        return {"seed": seed}


class WorldFiles(Protocol):
    """A cloud's `world` module, as far as the files the CLI writes go."""

    def nodes_file(self, world: Any) -> str: ...

    def config_text(self, world: Any, endpoint: str) -> str: ...


class ThreadedServer(Served):
    """`app()` served on (`host`, `port`; 0 picks a free port) from a daemon thread's event
    loop named `thread_name`; `start` answers the URL (also `endpoint`), `stop` undoes it;
    `write_files` writes what its `world_files` module makes of a world."""

    thread_name = "emulator"
    world_files: WorldFiles

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

    def write_files(self, world: Any, nodes_file: Path | None,
                    config_out: Path | None) -> None:
        write_files(nodes_file, self.world_files.nodes_file(world), config_out,
                    self.world_files.config_text(world, self.endpoint))


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
