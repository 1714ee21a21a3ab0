"""`lbctl emulator azure`: the ARM emulator on HOST:PORT in a thread of its own, and its admin.

`AzureEmulator` serves ARM (`arm.Arm`) and the admin API (`admin.Admin`) with aiohttp on its
own event loop in a daemon thread, and talks to itself through the admin API (`AzureAdmin`), so
tests, the demo and the CLI drive an emulator in this process and one in another process the
same way. It imports no cloud SDK: clients reach it with azure-mgmt-network built as
`client.network_client` shows (a static bearer token, an authentication policy that allows
http, retries off, a short polling interval).
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
from .arm import Arm
from .errors import ArmError
from .faults import Faults
from .ids import check_name
from .operations import Operations
from .store import Node, Settings, Store
from .world import DEFAULT_GROUP, DEFAULT_LOCATION, DEFAULT_SUBSCRIPTION, World

__all__ = ["ArmError", "AzureAdmin", "AzureEmulator", "ready_line", "world_module"]


class AzureAdmin:
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

    def reset(self, keep_world: bool = False) -> dict[str, Any]:
        """Drop what ARM calls made, operations, faults, limits, settings and the call log;
        `keep_world=False` drops the seeded world too (a bare resource group)."""
        return dict(self.call("POST", "reset", {"keepWorld": keep_world}))

    def seed(self, cluster: str = "kubernetes", nodes: int = 3) -> World:
        """The cluster's vnet `<cluster>-vnet`, subnet `<cluster>-nodes`, NSG `<cluster>-nsg`
        and `nodes` VMs: the world of `world.py`."""
        self.call("POST", "world", {"cluster": cluster, "nodes": nodes})
        return self.read_world()

    def read_world(self) -> World:
        shape = self.call("GET", "world")
        return World(shape["subscription"], shape["resourceGroup"], shape["location"],
                     shape["cluster"], tuple(Node(**n) for n in shape["nodes"]), shape["vnet"],
                     shape["subnet"], shape["nsg"])

    def add_nodes(self, count: int = 1, names: list[str] | None = None) -> World:
        self.call("POST", "nodes", {"count": count, "names": list(names or [])})
        return self.read_world()

    def remove_node(self, name: str) -> World:
        self.call("DELETE", f"nodes/{name}")
        return self.read_world()

    def add_resource_group(self, name: str) -> None:
        self.call("POST", "resource-groups", {"name": name})

    def bump_etag(self, id: str | None = None, type: str | None = None,
                  name: str | None = None, tags: dict[str, str] | None = None,
                  group: str | None = None) -> str:
        """A concurrent writer: the object (by id, or type + name) gets a new etag and,
        when given, these tags; answers the new etag."""
        body: dict[str, Any] = {"id": id} if id else {"type": type, "name": name}
        if group:
            body["group"] = group
        if tags is not None:
            body["tags"] = tags
        return str(self.call("POST", "etag", body)["etag"])

    def add_fault(self, **fault: Any) -> None:
        """`api=` (`loadBalancers.put`, `*.delete`), `method=`, `path=` (regex), `status=`,
        `code=`, `message=`, `count=` (None: for ever), `probability=`, `mode=` ("http" |
        "operation" | "lost"), `retry_after=`."""
        self.call("POST", "faults", fault)

    def faults(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "faults")["faults"])

    def clear_faults(self) -> None:
        self.call("DELETE", "faults")

    def set_rate_limit(self, limits: dict[str, Any]) -> None:
        """`{"write": {"rate": 1, "burst": 2}, "retryAfter": 1}`; `{}` lifts it."""
        self.call("PUT", "rate-limit", limits)

    def settings(self, **values: Any) -> dict[str, Any]:
        """`operationDelay=`, `operationRetryAfter=`, `pageSize=`, `maxFrontends=`,
        `maxRules=`, `maxProbes=`, `maxPools=`, `maxSecurityRules=`, `maxAddresses=`; none:
        read them."""
        if values:
            return dict(self.call("PUT", "settings", values))
        return dict(self.call("GET", "settings"))

    def calls(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "calls")["calls"])

    def counts(self) -> dict[str, int]:
        """Calls per API id (`loadBalancers.put`, `operations.get`)."""
        return dict(self.call("GET", "calls")["counts"])

    def clear_calls(self) -> None:
        self.call("DELETE", "calls")

    def snapshot(self, seeded: bool = False) -> dict[str, Any]:
        return dict(self.call("GET", f"snapshot?seeded={'true' if seeded else 'false'}"))

    def objects(self) -> dict[str, list[str]]:
        """Ids of what ARM calls made and left, by type (children added to the seeded NSG or
        network as `securityRules` / `subnets`): `{}` is no leak."""
        return dict(self.snapshot()["leaks"])

    def seed_random(self, seed: int) -> None:
        self.call("POST", "seed-random", {"seed": seed})


class AzureEmulator(AzureAdmin):
    """The emulator on (`host`, `port`; 0 picks a free port); `start` answers its URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 subscription: str = DEFAULT_SUBSCRIPTION, resource_group: str = DEFAULT_GROUP,
                 location: str = DEFAULT_LOCATION, operation_delay: float = 0.1) -> None:
        super().__init__("")
        self.host, self.port = host, port
        self.subscription, self.resource_group = subscription, resource_group
        self.location = location.replace(" ", "").lower()
        check_name(resource_group, "resource group")
        self.settings_at_start = Settings(operation_delay=operation_delay)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        store = Store(self.subscription, self.resource_group, self.location,
                      self.settings_at_start)
        arm = Arm(store, Operations(store), Faults(self.subscription))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(Admin(arm, self.settings_at_start).routes())
        for method in ("GET", "PUT", "PATCH", "DELETE", "POST"):
            app.router.add_route(method, "/subscriptions/{tail:.*}", arm.handle)
        return app

    def start(self) -> str:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="arm-emulator", daemon=True)
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

    def __enter__(self) -> AzureEmulator:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def ready_line(emulator: AzureEmulator, world: World, nodes_file: Path | None,
               config_out: Path | None) -> str:
    """The one line `lbctl emulator azure` prints once serving."""
    extra = "".join([f" nodes-file={nodes_file}" if nodes_file else "",
                     f" config={config_out}" if config_out else ""])
    return (f"azure emulator ready at {emulator.endpoint} (subscription {world.subscription}, "
            f"resource group {world.resource_group}, {world.location}; world {world.cluster}: "
            f"{len(world.nodes)} nodes, vnet {world.vnet}, subnet {world.subnet}, nsg "
            f"{world.nsg}){extra}")
