"""The emulator's own control API under `/_emulator/` (a path Compute never uses): for tests.

    POST   /_emulator/reset              {"keepWorld": true}: drop every object made through
                                         Compute, every operation, fault, rate limit, health
                                         state, quota and the call log (false: the instances
                                         and the network too, re-seeding the bare network)
    GET    /_emulator/world              project, regions and zones, network, instances
    POST   /_emulator/instances          {"instances": [{"name", "zone", "ip"?, "tags"?,
                                         "labels"?, "network"?, "subnetwork"?}]}: seed
                                         instances (nodes)
    DELETE /_emulator/instances/Z/N      an instance gone (and out of its groups)
    PUT    /_emulator/health             {"instance", "state", "backendService"?}: what
                                         getHealth reports (HEALTHY unless set)
    DELETE /_emulator/health             every instance HEALTHY again
    GET|POST|DELETE /_emulator/faults    list, add one ({"api", "method", "path", "count",
                                         "probability", "status", "reason", "message",
                                         "mode": "http"|"operation"|"lost"}), clear
    PUT    /_emulator/rate-limit         {"read"|"write"|"operation": {"rate", "burst"},
                                         "status": 403|429}; {} lifts it
    GET|PUT /_emulator/quotas            {"STATIC_ADDRESSES": 2, ...}
    GET|PUT /_emulator/settings          {"operationDelay", "waitTimeout", "maxGroupSize"}
    GET|DELETE /_emulator/calls          the call log and counts per API method; clear it
    GET    /_emulator/snapshot           every object by collection (`?seeded=true` with the
                                         world's), group members, writes in flight
    POST   /_emulator/seed-random        {"seed": N}: deterministic ids, names and faults
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..serving import AdminApi
from .backend_services import HEALTH_STATES
from .compute import Compute
from .errors import GceError, invalid
from .faults import Fault
from .links import Key, parse_ref
from .store import DEFAULT_QUOTAS, Settings
from .topology import add_instance, remove_instance, seed_network


class Admin(AdminApi):
    error_type = GceError
    fault_type = Fault

    def __init__(self, compute: Compute, main_region: str, base_settings: Settings) -> None:
        super().__init__(compute.faults, compute.store, base_settings)
        self.compute = compute
        self.store = compute.store
        self.main_region = main_region

    def bad_request(self, message: str) -> GceError:
        return GceError(400, "invalid", message)

    def routes(self) -> list[web.RouteDef]:
        wrap = self.wrap
        r = "/_emulator"
        return [
            *self.common_routes(),
            web.post(f"{r}/instances", wrap(self.add_instances)),
            web.delete(f"{r}/instances/{{zone}}/{{name}}", wrap(self.remove_instance)),
            web.put(f"{r}/health", wrap(self.set_health)),
            web.delete(f"{r}/health", wrap(lambda b, q: self._clear_health())),
            web.get(f"{r}/quotas", wrap(lambda b, q: dict(self.store.quotas))),
            web.put(f"{r}/quotas", wrap(self.set_quotas)),
        ]

    def reset(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        store = self.store
        self.compute.operations.reset()
        keep = bool(body.get("keepWorld", True))
        for key in list(store.objects):
            if not keep or key not in store.seeded:
                del store.objects[key]
        if not keep:
            store.seeded.clear()
            seed_network(store)
        store.members.clear()
        store.health.clear()
        store.quotas = dict(DEFAULT_QUOTAS)
        store.settings = self.base_settings
        self.compute.faults.reset()
        return self.world()

    def world(self) -> dict[str, Any]:
        store = self.store
        instances = [{"name": k.name, "zone": k.zone, "selfLink": k.url,
                      "ip": o["networkInterfaces"][0]["networkIP"],
                      "tags": o.get("tags", {}).get("items", [])}
                     for k, o in store.items("instances")]
        return {"project": store.project, "region": self.main_region,
                "zones": store.regions[self.main_region], "regions": store.regions,
                "network": "default", "subnetwork": "default", "instances": instances}

    def add_instances(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        added = []
        for spec in body.get("instances", []):
            key = add_instance(self.store, str(spec["name"]), str(spec["zone"]),
                               network=str(spec.get("network", "default")),
                               subnetwork=spec.get("subnetwork"),
                               ip=spec.get("ip"), tags=spec.get("tags", ()),
                               labels=spec.get("labels"))
            added.append(key.url)
        return {"added": added, **self.world()}

    def remove_instance(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        zone, name = request.match_info["zone"], request.match_info["name"]
        remove_instance(self.store, Key(self.store.project, f"zones/{zone}", "instances", name))
        return self.world()

    def set_health(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        state = str(body.get("state", "HEALTHY"))
        if state not in HEALTH_STATES:
            raise invalid("state", state, f"One of {HEALTH_STATES}.")
        home = Key(self.store.project, f"regions/{self.main_region}", "", "")
        instance = parse_ref(body.get("instance"), "instance", home, "instances")
        self.store.require(instance)
        where = instance.path
        if body.get("backendService"):
            service = parse_ref(body["backendService"], "backendService", home,
                                "backendServices")
            where = f"{service.path}|{instance.path}"
        self.store.health[where] = state
        return {"health": dict(self.store.health)}

    def _clear_health(self) -> dict[str, Any]:
        self.store.health.clear()
        return {"health": {}}

    def set_quotas(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        for name, limit in body.items():
            if name not in DEFAULT_QUOTAS or not isinstance(limit, int) or limit < 0:
                raise invalid(name, limit, f"Quotas: {sorted(DEFAULT_QUOTAS)}, limits >= 0.")
        self.store.quotas.update(body)
        return dict(self.store.quotas)

    def snapshot(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        seeded = request.query.get("seeded", "false").lower() == "true"
        objects: dict[str, list[dict[str, Any]]] = {}
        for key, obj in sorted(self.store.objects.items()):
            if seeded or key not in self.store.seeded:
                kind = self.compute.kinds[key.collection]
                objects.setdefault(key.collection, []).append(kind.render(key, obj))
        members = {g.path: [m.path for m in ms] for g, ms in self.store.members.items() if ms}
        pending = [{"target": k.path, "verb": p.verb, "operation": p.operation}
                   for k, p in self.store.pending.items()]
        return {"objects": objects, "members": members, "pending": pending}
