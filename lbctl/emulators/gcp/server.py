"""`lbctl emulator gcp`: the GCE emulator on HOST:PORT in a thread of its own, and its admin client.

`GceEmulator` builds the project (`world.regions`, the `default` network), serves Compute
(`compute.Compute`) and the admin API (`admin.Admin`) with aiohttp on its own event loop in a
daemon thread, and talks to itself through the admin API (`GceAdmin`), so tests, the demo and
the CLI drive an emulator in this process and one in another process the same way. It imports
no cloud SDK: clients reach it with
`ClientOptions(api_endpoint=emulator.endpoint)`, `AnonymousCredentials()` and `transport="rest"`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from ..serving import AdminClient, ThreadedServer, files_note
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


class GceAdmin(AdminClient):
    """The admin API of an emulator at `endpoint` (this process's or another's).

    GCE's fault fields: `reason=` (`backendError`); the rate limit's own option
    `"status": 403 | 429`; settings `operationDelay=`, `waitTimeout=`, `maxGroupSize=`;
    `counts()` by API method id such as `compute.forwardingRules.insert`."""

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

    def set_quotas(self, **quotas: int) -> dict[str, int]:
        return dict(self.call("PUT", "quotas", quotas))

    def objects(self) -> dict[str, list[str]]:
        """Self links of every object made through Compute, by collection: `{}` is no leak."""
        return {kind: [o["selfLink"] for o in objs]
                for kind, objs in self.snapshot()["objects"].items() if objs}


class GceEmulator(ThreadedServer, GceAdmin):
    """The emulator on (`host`, `port`; 0 picks a free port); `start` answers its URL."""

    world_files = world_module
    thread_name = "gce-emulator"

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 project: str = DEFAULT_PROJECT, region: str = DEFAULT_REGION,
                 zones: list[str] | tuple[str, ...] = ("a", "b"),
                 operation_delay: float = 0.1) -> None:
        ThreadedServer.__init__(self, host, port)
        self.project, self.region = project, region
        self.zones = world_module.zone_names(region, zones)
        self.settings_at_start = Settings(operation_delay=operation_delay)

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


def ready_line(emulator: GceEmulator, world: World, nodes_file: Path | None,
               config_out: Path | None) -> str:
    """The one line `lbctl emulator gcp` prints once serving."""
    extra = files_note(nodes_file, config_out)
    return (f"gcp emulator ready at {emulator.endpoint} (project {world.project}, "
            f"{world.region}: {', '.join(world.zones)}; world {world.cluster}: "
            f"{len(world.nodes)} nodes tagged {world.node_tag}, network {world.network})"
            f"{extra}")
