"""`lbctl emulator azure`: the ARM emulator on HOST:PORT in a thread of its own, and its admin.

`AzureEmulator` serves ARM (`arm.Arm`) and the admin API (`admin.Admin`) with aiohttp on its
own event loop in a daemon thread, and talks to itself through the admin API (`AzureAdmin`), so
tests, the demo and the CLI drive an emulator in this process and one in another process the
same way. It imports no cloud SDK: clients reach it with azure-mgmt-network built as
`client.network_client` shows (a static bearer token, an authentication policy that allows
http, retries off, a short polling interval).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from ..serving import AdminClient, ThreadedServer, files_note
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


class AzureAdmin(AdminClient):
    """The admin API of an emulator at `endpoint` (this process's or another's).

    ARM's fault fields: `code=` (`InternalServerError`), `retry_after=` (a `Retry-After`
    header); the rate limit's own option `"retryAfter": N`; settings `operationDelay=`,
    `operationRetryAfter=`, `pageSize=`, `maxFrontends=`, `maxRules=`, `maxProbes=`,
    `maxPools=`, `maxSecurityRules=`, `maxAddresses=`; `counts()` by API id such as
    `loadBalancers.put` or `operations.get`."""

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

    def set_health(self, address: str | None = None, state: str = "Down", *,
                   node: str | None = None, load_balancer: str | None = None,
                   rule: str | None = None) -> dict[str, str]:
        """What a load-balancing rule's health action reports for a backend address (or a
        node's): `Down` or `Up`, for every rule, or for `rule` of `load_balancer` only."""
        body: dict[str, Any] = {"state": state}
        if address:
            body["address"] = address
        if node:
            body["node"] = node
        if rule:
            body.update(loadBalancer=load_balancer, rule=rule)
        return dict(self.call("PUT", "health", body)["health"])

    def clear_health(self) -> None:
        """Every backend address Up again."""
        self.call("DELETE", "health")

    def objects(self) -> dict[str, list[str]]:
        """Ids of what ARM calls made and left, by type (children added to the seeded NSG or
        network as `securityRules` / `subnets`): `{}` is no leak."""
        return dict(self.snapshot()["leaks"])


class AzureEmulator(ThreadedServer, AzureAdmin):
    """The emulator on (`host`, `port`; 0 picks a free port); `start` answers its URL."""

    world_files = world_module
    thread_name = "arm-emulator"

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 subscription: str = DEFAULT_SUBSCRIPTION, resource_group: str = DEFAULT_GROUP,
                 location: str = DEFAULT_LOCATION, operation_delay: float = 0.1) -> None:
        ThreadedServer.__init__(self, host, port)
        self.subscription, self.resource_group = subscription, resource_group
        self.location = location.replace(" ", "").lower()
        check_name(resource_group, "resource group")
        self.settings_at_start = Settings(operation_delay=operation_delay)

    def app(self) -> web.Application:
        store = Store(self.subscription, self.resource_group, self.location,
                      self.settings_at_start)
        arm = Arm(store, Operations(store), Faults(self.subscription))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(Admin(arm, self.settings_at_start).routes())
        for method in ("GET", "PUT", "PATCH", "DELETE", "POST"):
            app.router.add_route(method, "/subscriptions/{tail:.*}", arm.handle)
        return app


def ready_line(emulator: AzureEmulator, world: World, nodes_file: Path | None,
               config_out: Path | None) -> str:
    """The one line `lbctl emulator azure` prints once serving."""
    extra = files_note(nodes_file, config_out)
    return (f"azure emulator ready at {emulator.endpoint} (subscription {world.subscription}, "
            f"resource group {world.resource_group}, {world.location}; world {world.cluster}: "
            f"{len(world.nodes)} nodes, vnet {world.vnet}, subnet {world.subnet}, nsg "
            f"{world.nsg}){extra}")
