"""The Compute REST API as google-cloud-compute's REST transport speaks it: routing and answers.

`/compute/v1/projects/P/{global|regions/R|zones/Z}/COLLECTION[/NAME[/VERB]]` and
`/compute/v1/projects/P/aggregated/COLLECTION`: GET lists and gets, POST to a collection
inserts, PATCH patches, PUT updates, DELETE deletes, POST `/NAME/VERB` runs an action
(`setLabels`, `addInstances`, `getHealth`, ...), `/operations/NAME` and `/operations/NAME/wait`
read operations. Every call is logged under GCE's method id (`compute.regionBackendServices
.getHealth`), then passes the rate limit and the fault rules before it runs. Writes answer an
operation. Collections or verbs outside the emulated subset answer 501 notImplemented; another
project answers 404, an unknown region or zone 400.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .addresses import Addresses
from .backend_services import BackendServices
from .errors import GceError, bad_request, not_found, not_implemented
from .faults import Call, Fault, Faults
from .firewalls import Firewalls
from .forwarding_rules import ForwardingRules
from .health_checks import HealthChecks
from .instance_groups import InstanceGroups
from .kinds import Kind
from .links import Key, check_name, scope_url
from .listing import aggregated, answer, page
from .networks import Networks, Subnetworks
from .operations import Operations, Write
from .store import Store
from .topology import Instances

KINDS: tuple[type[Kind], ...] = (Addresses, ForwardingRules, BackendServices, HealthChecks,
                                 Firewalls, InstanceGroups, Networks, Subnetworks, Instances)
log = logging.getLogger(__name__)
OPERATIONS_API = {"global": "globalOperations", "regions": "regionOperations",
                  "zones": "zoneOperations"}
Run = Callable[[dict[str, Any], Mapping[str, str], "Fault | None"], Awaitable[dict[str, Any]]]


@dataclass
class Route:
    api: str
    family: str
    run: Run


class Compute:
    def __init__(self, store: Store, operations: Operations, faults: Faults) -> None:
        self.store = store
        self.operations = operations
        self.faults = faults
        self.kinds = {kind.collection: kind(store, operations) for kind in KINDS}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        call = Call(request.method, request.path, "compute.unknown", "read")
        fault: Fault | None = None
        try:
            try:
                route = self.route(request.method, request.match_info["project"],
                                   request.match_info["tail"])
                call.api, call.family = route.api, route.family
            finally:
                self.faults.record(call)
            self.faults.throttle(call)
            fault = self.faults.pick(call)
            if fault is not None and (fault.mode == "http" or route.family != "write"):
                raise fault.error()
            body = await _json(request) if request.method in ("POST", "PUT", "PATCH") else {}
            failure = fault if fault is not None and fault.mode == "operation" else None
            result, status = await route.run(body, request.query, failure), 200
        except GceError as exc:
            result, status = exc.body(), exc.status
        except Exception:  # a bug here must still answer like GCE, and be seen
            log.exception("GCE emulator: %s %s failed", request.method, request.path)
            result, status = GceError(500, "backendError", "Internal error").body(), 500
        call.status = status
        if fault is not None and fault.mode == "lost" and status == 200 and (
                request.transport is not None):
            request.transport.close()  # the write is done; its answer never arrives
        return web.json_response(result, status=status)

    # -- routing ------------------------------------------------------------------------------
    def route(self, method: str, project: str, tail: str) -> Route:
        if project != self.store.project:
            raise not_found(f"projects/{project}")
        parts = tail.strip("/").split("/")
        if parts[0] == "aggregated" and len(parts) == 2 and method == "GET":
            return self._aggregated(parts[1])
        if parts[0] == "global":
            scope, rest = "global", parts[1:]
        elif parts[0] in ("regions", "zones") and len(parts) >= 3:
            scope, rest = f"{parts[0]}/{parts[1]}", parts[2:]
        else:
            raise not_implemented(f"{method} {tail}")
        self.store.check_scope(scope)
        where = scope.partition("/")[0]
        home = Key(project, scope, rest[0], "")
        if rest[0] == "operations":
            return self._operations(method, home, rest[1:], OPERATIONS_API[where])
        kind = self.kinds.get(rest[0])
        if kind is None or where not in kind.api:
            raise not_implemented(f"{where}/{rest[0]}")
        api = f"compute.{kind.api[where]}"
        if len(rest) == 1:
            if method == "GET":
                return Route(f"{api}.list", "read", self._reader(lambda b, q: self._list(
                    kind, home, q)))
            if method == "POST" and kind.writable:
                return self._writer(f"{api}.insert", lambda b, q: kind.insert(home, b))
            raise not_implemented(f"{method} {api}")
        key = home.sibling(rest[0], check_name(rest[1], rest[0][:-1]))
        if len(rest) == 2:
            if method == "GET":
                return Route(f"{api}.get", "read", self._reader(lambda b, q: kind.get(key)))
            if method == "DELETE" and kind.writable:
                return self._writer(f"{api}.delete", lambda b, q: kind.delete(key))
            if method == "PATCH" and kind.patchable:
                return self._writer(f"{api}.patch", lambda b, q: kind.patch(key, b))
            if method == "PUT" and kind.replaceable:
                return self._writer(f"{api}.update", lambda b, q: kind.update(key, b))
            raise not_implemented(f"{method} {api}")
        verb = rest[2]
        if len(rest) == 3 and method == "POST":
            if verb == "setLabels" and kind.labelled:
                return self._writer(f"{api}.setLabels", lambda b, q: kind.set_labels(key, b))
            action = kind.actions().get(verb)
            if action is not None:
                family, handler = action
                if family == "write":
                    return self._writer(f"{api}.{verb}", lambda b, q: _write(handler(key, b, q)))
                return Route(f"{api}.{verb}", "read", self._reader(
                    lambda b, q: _read(handler(key, b, q))))
        raise not_implemented(f"{method} {api}.{verb}")

    def _reader(self, run: Callable[[dict[str, Any], Mapping[str, str]], dict[str, Any]]
                ) -> Run:
        async def go(body: dict[str, Any], query: Mapping[str, str],
                     failure: Fault | None) -> dict[str, Any]:
            return run(body, query)

        return go

    def _writer(self, api: str, make: Callable[[dict[str, Any], Mapping[str, str]], Write]
                ) -> Route:
        async def go(body: dict[str, Any], query: Mapping[str, str],
                     failure: Fault | None) -> dict[str, Any]:
            request_id = query.get("requestId") or None
            if request_id is not None and request_id in self.operations.request_ids:
                return self.operations.request_ids[request_id].json()
            write = make(body, query)
            error = failure.error() if failure is not None else None
            return self.operations.submit(write, request_id, error).json()

        return Route(api, "write", go)

    def _list(self, kind: Kind, home: Key, query: Mapping[str, str]) -> dict[str, Any]:
        items = [kind.render(k, o) for k, o in self.store.items(kind.collection, home.scope)]
        chosen, token = page(items, query, kind.fields)
        return answer(f"{kind.kind}List", f"{home.scope_url}/{kind.collection}", chosen, token)

    def _aggregated(self, collection: str) -> Route:
        kind = self.kinds.get(collection)
        if kind is None or set(kind.api) == {"global"}:  # GCE aggregates scoped kinds only
            raise not_implemented(f"aggregated/{collection}")
        names = {"backendServices": "backendServices", "healthChecks": "healthChecks"}
        api = f"compute.{names.get(collection, next(iter(kind.api.values())))}.aggregatedList"
        scopes = [s for where in ("global", "regions", "zones") if where in kind.api
                  for s in self.store.scopes(where)]

        def run(body: dict[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
            scoped = [(k.scope, kind.render(k, o)) for k, o in self.store.items(collection)]
            link = f"{scope_url(self.store.project, 'aggregated')}/{collection}"
            return aggregated(f"{kind.kind}AggregatedList", link, collection, scopes, scoped,
                              query, kind.fields)

        return Route(api, "read", self._reader(run))

    def _operations(self, method: str, home: Key, rest: list[str], api_name: str) -> Route:
        api = f"compute.{api_name}"
        ops = self.operations
        if not rest and method == "GET":
            def listed(body: dict[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
                items = [op.json() for op in ops.listed(home.scope)
                         if op.target.project == home.project]
                chosen, token = page(items, query, {"name", "status", "operationType",
                                                    "targetLink", "insertTime"})
                return answer("compute#operationList", f"{home.scope_url}/operations", chosen,
                              token)

            return Route(f"{api}.list", "operation", self._reader(listed))
        if not rest:
            raise not_implemented(f"{method} {api}")
        name = rest[0]
        if len(rest) == 1 and method == "GET":
            return Route(f"{api}.get", "operation", self._reader(
                lambda b, q: ops.get(home.project, home.scope, name).json()))
        if len(rest) == 1 and method == "DELETE":
            def forget(body: dict[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
                ops.forget(home.project, home.scope, name)
                return {}

            return Route(f"{api}.delete", "operation", self._reader(forget))
        if len(rest) == 2 and rest[1] == "wait" and method == "POST":
            async def wait(body: dict[str, Any], query: Mapping[str, str],
                           failure: Fault | None) -> dict[str, Any]:
                return (await ops.wait(ops.get(home.project, home.scope, name))).json()

            return Route(f"{api}.wait", "operation", wait)
        raise not_implemented(f"{method} {api}")


def _write(result: Write | dict[str, Any]) -> Write:
    assert isinstance(result, Write)
    return result


def _read(result: Write | dict[str, Any]) -> dict[str, Any]:
    assert isinstance(result, dict)
    return result


async def _json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise bad_request(f"Invalid JSON payload received. {exc}", "parseError") from None
    if not isinstance(data, dict):
        raise bad_request("Invalid JSON payload received: expected an object.", "parseError")
    return data
