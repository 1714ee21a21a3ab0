"""The emulator's own control API under `/_emulator/` (a path ARM never uses): for tests.

    POST   /_emulator/reset              {"keepWorld": true}: drop every object made through
                                         ARM (the seeded ones back as seeded), every
                                         operation, fault, rate limit and the call log; false:
                                         the world too (a bare resource group)
    POST   /_emulator/world              {"cluster", "nodes"}: seed the cluster's network,
                                         subnet, NSG and N VMs
    GET    /_emulator/world              subscription, group, location, cluster, VMs, names
    POST   /_emulator/nodes              {"count": N} or {"names": [...]}: more VMs
    DELETE /_emulator/nodes/NAME         a VM gone
    POST   /_emulator/resource-groups    {"name"}: another (implicit) resource group
    POST   /_emulator/etag               {"id"} or {"type", "name"}, optional {"tags"}: a
                                         concurrent writer changes the object (new etag)
    GET|POST|DELETE /_emulator/faults    list, add one ({"api", "method", "path", "status",
                                         "code", "message", "count", "probability", "mode":
                                         "http"|"operation"|"lost", "retryAfter"}), clear
    PUT    /_emulator/rate-limit         {"read"|"write"|"operation": {"rate", "burst"},
                                         "retryAfter": N}; {} lifts it
    GET|PUT /_emulator/settings          {"operationDelay", "pageSize", "maxFrontends", ...}
    GET|DELETE /_emulator/calls          the call log and counts per API id; clear it
    GET    /_emulator/snapshot           every object (`?seeded=true` with the world's), what
                                         ARM calls left behind (`leaks`), operations in flight
    POST   /_emulator/seed-random        {"seed": N}: deterministic etags, ids and faults
    PUT    /_emulator/health             {"address": IP or "node": NAME, "state": "Up"|"Down",
                                         optional "loadBalancer" + "rule" (names, "group"):
                                         that rule only}: what a load-balancing rule's health
                                         action reports for the address (Up unless set)
    DELETE /_emulator/health             every address Up again
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from ..serving import AdminApi
from . import world as world_module
from .arm import Arm
from .errors import ArmError
from .faults import Fault
from .ids import Rid, canonical, parse_id
from .rule_health import check_state, health_key
from .store import Settings


class Admin(AdminApi):
    error_type = ArmError
    fault_type = Fault

    def __init__(self, arm: Arm, base_settings: Settings) -> None:
        super().__init__(arm.faults, arm.store, base_settings)
        self.arm = arm
        self.store = arm.store

    def bad_request(self, message: str) -> ArmError:
        return ArmError(400, "InvalidRequest", message)

    def routes(self) -> list[web.RouteDef]:
        wrap = self.wrap
        r = "/_emulator"
        return [
            *self.common_routes(),
            web.post(f"{r}/world", wrap(self.seed)),
            web.post(f"{r}/nodes", wrap(self.add_nodes)),
            web.delete(f"{r}/nodes/{{name}}", wrap(self.remove_node)),
            web.post(f"{r}/resource-groups", wrap(self.add_group)),
            web.post(f"{r}/etag", wrap(self.bump_etag)),
            web.put(f"{r}/health", wrap(self.set_health)),
            web.delete(f"{r}/health", wrap(lambda b, q: self._clear_health())),
        ]

    def reset(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        store = self.store
        self.arm.operations.reset()
        keep = bool(body.get("keepWorld", True))
        store.objects.clear()
        store.seeded.clear()
        store.groups = {store.group.lower(): store.group}
        if keep and store.vnet:
            world_module.seed(store, store.cluster, 0)
        elif not keep:
            store.nodes.clear()
            store.vnet = store.subnet = store.nsg = ""
        store.settings = self.base_settings
        store.health.clear()
        self.arm.faults.reset()
        return self.world()

    def world(self) -> dict[str, Any]:
        store = self.store
        return {"subscription": store.subscription, "resourceGroup": store.group,
                "location": store.location, "cluster": store.cluster, "vnet": store.vnet,
                "subnet": store.subnet, "nsg": store.nsg,
                "resourceGroups": sorted(store.groups.values()),
                "nodes": [asdict(n) for n in store.nodes]}

    def seed(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        world_module.seed(self.store, str(body.get("cluster", "kubernetes")),
                          int(body.get("nodes", 3)))
        return self.world()

    def add_nodes(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        if not self.store.vnet:
            raise ArmError(400, "InvalidRequest", "seed a world first")
        world_module.add_nodes(self.store, int(body.get("count", 0)),
                               [str(n) for n in body.get("names", [])])
        return self.world()

    def remove_node(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        name = request.match_info["name"]
        before = len(self.store.nodes)
        self.store.nodes = [n for n in self.store.nodes if n.name != name]
        if len(self.store.nodes) == before:
            raise ArmError(404, "NotFound", f"no node {name}")
        return self.world()

    def add_group(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        name = str(body["name"])
        self.store.groups[name.lower()] = name
        return self.world()

    def bump_etag(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        """What another writer does to an object: a new etag (and tags, when given)."""
        if body.get("id"):
            rid = parse_id(body["id"], "id").top
        else:
            kind = canonical(str(body.get("type", "")), list(self.arm.kinds))
            if kind is None:
                raise ArmError(400, "InvalidRequest", f"type: one of {sorted(self.arm.kinds)}")
            rid = Rid(self.store.subscription, str(body.get("group", self.store.group)), kind,
                      str(body["name"]))
        obj = self.store.require(rid)
        etag = self.store.new_etag()
        obj["etag"] = etag
        for items in obj["properties"].values():
            for child in items if isinstance(items, list) else []:
                if isinstance(child, dict) and "etag" in child:
                    child["etag"] = etag
        if isinstance(body.get("tags"), dict):
            obj["tags"] = {**obj.get("tags", {}), **body["tags"]}
        return {"id": obj["id"], "etag": etag}

    def set_health(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        """What the probers say of one backend address (by IP, or a node's), for every rule
        or for one rule of one load balancer."""
        state = check_state(body.get("state", "Down"))
        address = str(body.get("address") or "")
        if body.get("node"):
            node = next((n for n in self.store.nodes if n.name == body["node"]), None)
            if node is None:
                raise ArmError(404, "NotFound", f"no node {body['node']}")
            address = node.ip
        if not address:
            raise ArmError(400, "InvalidRequest", "address or node is required")
        rule = None
        if body.get("rule"):
            rule = Rid(self.store.subscription, str(body.get("group", self.store.group)),
                       "loadBalancers", str(body["loadBalancer"]), "loadBalancingRules",
                       str(body["rule"]))
        self.store.health[health_key(address, rule)] = state
        return {"health": dict(self.store.health)}

    def _clear_health(self) -> dict[str, Any]:
        self.store.health.clear()
        return {"health": {}}

    def snapshot(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        seeded = request.query.get("seeded", "false").lower() == "true"
        objects: dict[str, list[dict[str, Any]]] = {}
        for key, obj in sorted(self.store.objects.items()):
            if seeded or key not in self.store.seeded:
                kind = self.arm.kinds[obj["type"].split("/")[-1]]
                objects.setdefault(kind.type, []).append(kind.render(obj))
        return {"objects": objects, "leaks": self.store.leaks(),
                "busy": dict(self.store.busy)}
