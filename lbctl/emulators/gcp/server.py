"""`lbctl emulator gcp`: the GCE emulator on HOST:PORT in a thread of its own, and its admin client.

`GceEmulator` builds the project (`world.regions`, the `default` network), serves Compute
(`compute.Compute`) and the admin API (`admin.Admin`) with aiohttp on its own event loop in a
daemon thread, and talks to itself through the admin API (`GceAdmin`), so tests, the demo and
the CLI drive an emulator in this process and one in another process the same way. It imports
no cloud SDK: clients reach it with
`ClientOptions(api_endpoint=emulator.endpoint)`, `AnonymousCredentials()` and `transport="rest"`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from . import world as world_module
from .admin import Admin
from .compute import Compute
from .errors import GceError
from .faults import Faults
from .operations import Operations
from .store import Settings, Store
from .topology import seed_network
from .world import DEFAULT_PROJECT, DEFAULT_REGION, Node, World

__all__ = ["GceAdmin", "GceEmulator", "GceError", "ready_line", "world_module"]


class GceAdmin:
    """The admin API of an emulator at `endpoint` (this process's or another's)."""

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

    def reset(self, keep_world: bool = True) -> dict[str, Any]:
        return dict(self.call("POST", "reset", {"keepWorld": keep_world}))

    def world(self) -> dict[str, Any]:
        return dict(self.call("GET", "world"))

    def add_instances(self, specs: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(self.call("POST", "instances", {"instances": specs}))

    def remove_instance(self, zone: str, name: str) -> None:
        self.call("DELETE", f"instances/{zone}/{name}")

    def seed(self, cluster: str = "kubernetes", nodes: int = 3) -> World:
        """N tagged instances over the main region's zones: the world of `world.py`."""
        shape = self.world()
        zones = list(shape["zones"])
        self.add_instances(world_module.instance_specs(cluster, nodes, zones))
        return self.read_world(cluster)

    def read_world(self, cluster: str = "kubernetes") -> World:
        shape = self.world()
        prefix = f"{cluster}-node-"
        found = tuple(Node(i["name"], i["zone"], i["ip"], tuple(i["tags"]))
                      for i in shape["instances"] if i["name"].startswith(prefix))
        ordered = tuple(sorted(found, key=lambda n: int(n.name[len(prefix):] or 0)
                               if n.name[len(prefix):].isdigit() else 0))
        return World(shape["project"], shape["region"], tuple(shape["zones"]), cluster, ordered,
                     shape["network"], shape["subnetwork"])

    def set_health(self, instance: str, state: str, backend_service: str | None = None) -> None:
        body = {"instance": instance, "state": state}
        if backend_service:
            body["backendService"] = backend_service
        self.call("PUT", "health", body)

    def clear_health(self) -> None:
        self.call("DELETE", "health")

    def add_fault(self, **fault: Any) -> None:
        """`api=`, `method=`, `path=`, `count=` (None: for ever), `probability=`, `status=`,
        `reason=`, `message=`, `mode=` ("http" | "operation" | "lost")."""
        self.call("POST", "faults", fault)

    def faults(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "faults")["faults"])

    def clear_faults(self) -> None:
        self.call("DELETE", "faults")

    def set_rate_limit(self, limits: dict[str, Any]) -> None:
        self.call("PUT", "rate-limit", limits)

    def set_quotas(self, **quotas: int) -> dict[str, int]:
        return dict(self.call("PUT", "quotas", quotas))

    def settings(self, **values: Any) -> dict[str, Any]:
        """`operationDelay=`, `waitTimeout=`, `maxGroupSize=`; none: read them."""
        if values:
            return dict(self.call("PUT", "settings", values))
        return dict(self.call("GET", "settings"))

    def calls(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "calls")["calls"])

    def counts(self) -> dict[str, int]:
        """Calls per API method id (`compute.forwardingRules.insert`)."""
        return dict(self.call("GET", "calls")["counts"])

    def clear_calls(self) -> None:
        self.call("DELETE", "calls")

    def snapshot(self, seeded: bool = False) -> dict[str, Any]:
        return dict(self.call("GET", f"snapshot?seeded={'true' if seeded else 'false'}"))

    def objects(self) -> dict[str, list[str]]:
        """Self links of every object made through Compute, by collection: `{}` is no leak."""
        return {kind: [o["selfLink"] for o in objs]
                for kind, objs in self.snapshot()["objects"].items() if objs}

    def seed_random(self, seed: int) -> None:
        self.call("POST", "seed-random", {"seed": seed})


class GceEmulator(GceAdmin):
    """The emulator on (`host`, `port`; 0 picks a free port); `start` answers its URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 project: str = DEFAULT_PROJECT, region: str = DEFAULT_REGION,
                 zones: list[str] | tuple[str, ...] = ("a", "b"),
                 operation_delay: float = 0.1) -> None:
        super().__init__("")
        self.host, self.port = host, port
        self.project, self.region = project, region
        self.zones = world_module.zone_names(region, zones)
        self.settings_at_start = Settings(operation_delay=operation_delay)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        store = Store(self.project, world_module.regions(self.region, self.zones),
                      self.settings_at_start)
        seed_network(store)
        compute = Compute(store, Operations(store), Faults())
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.add_routes(Admin(compute, self.region, self.settings_at_start).routes())
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            app.router.add_route(method, "/compute/v1/projects/{project}/{tail:.*}",
                                 compute.handle)
        return app

    def start(self) -> str:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="gce-emulator", daemon=True)
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

    def write_files(self, world: World, nodes_file: Path | None,
                    config_out: Path | None) -> None:
        if nodes_file is not None:
            nodes_file.write_text(world_module.nodes_file(world))
        if config_out is not None:
            config_out.write_text(world_module.config_text(world, self.endpoint))

    def __enter__(self) -> GceEmulator:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def ready_line(emulator: GceEmulator, world: World, nodes_file: Path | None,
               config_out: Path | None) -> str:
    """The one line `lbctl emulator gcp` prints once serving."""
    extra = "".join([f" nodes-file={nodes_file}" if nodes_file else "",
                     f" config={config_out}" if config_out else ""])
    return (f"gcp emulator ready at {emulator.endpoint} (project {world.project}, "
            f"{world.region}: {', '.join(world.zones)}; world {world.cluster}: "
            f"{len(world.nodes)} nodes tagged {world.node_tag}, network {world.network})"
            f"{extra}")
