"""The ARM REST API as azure-mgmt-network speaks it: routing, the call pipeline, reads and lists.

    /subscriptions/S/resourceGroups/G/providers/Microsoft.Network/TYPE[/NAME[/CHILD[/NAME]]]
    /subscriptions/S/providers/Microsoft.Network/TYPE                      (list_all)
    /subscriptions/S/providers/Microsoft.Network/locations/L/operations/ID (Azure-AsyncOperation)
    /subscriptions/S/providers/Microsoft.Network/locations/L/operationResults/ID (Location)
    /subscriptions/S/resourceGroups/G                                       (GET only)
    .../loadBalancers/LB/loadBalancingRules/R/health (POST: `rule_health`)

Every call is logged under an API id (`loadBalancers.put`, `backendAddressPools.delete`,
`operations.get`), needs `Authorization: Bearer ...` (401 AuthenticationFailed otherwise; any
token is good) and `api-version` (400 MissingApiVersionParameter), then passes the rate limit
and the fault rules before it runs. Lists answer `{"value": [...], "nextLink": ...}` pages of
`pageSize` objects. Types, children or verbs outside the emulated subset answer 501.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import ArmError, bad_request, not_emulated
from .faults import Call, Fault, Faults
from .ids import PROVIDER, Rid, canonical
from .kinds import Kind
from .load_balancers import LoadBalancers
from .networks import VirtualNetworks
from .operations import Operations
from .public_ips import PublicIPAddresses
from .rule_health import RuleHealth
from .security_groups import NetworkSecurityGroups
from .store import Store
from .writes import Answer, Context, Writes

log = logging.getLogger(__name__)
KINDS: tuple[type[Kind], ...] = (LoadBalancers, PublicIPAddresses, NetworkSecurityGroups,
                                 VirtualNetworks)
Run = Callable[[dict[str, Any], Context, web.Request], Answer]


@dataclass
class Route:
    api: str
    family: str
    run: Run


class Arm:
    def __init__(self, store: Store, operations: Operations, faults: Faults) -> None:
        self.store, self.operations, self.faults = store, operations, faults
        self.kinds = {kind.type: kind(store) for kind in KINDS}
        self.writes = Writes(store, operations)
        self.rule_health = RuleHealth(store, operations, self.writes)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        call = Call(request.method, request.path, "unknown", "read")
        fault: Fault | None = None
        try:
            try:
                route = self.route(request.method, request.path)
                call.api, call.family = route.api, route.family
            finally:
                self.faults.record(call)
            auth = request.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or not auth[7:].strip():
                from .errors import unauthenticated  # noqa: PLC0415

                raise unauthenticated("The 'Authorization' header is missing or not a bearer "
                                      "token.")
            version = request.query.get("api-version", "")
            if not version:
                raise bad_request("MissingApiVersionParameter",
                                  "The api-version query parameter (?api-version=) is required "
                                  "for all requests.")
            self.faults.throttle(call)
            fault = self.faults.pick(call)
            if fault is not None and (fault.mode == "http" or route.family != "write"):
                raise fault.error()
            body = await _json(request) if request.method in ("PUT", "PATCH") else {}
            failure = fault.error() if fault is not None and fault.mode == "operation" else None
            origin = f"{request.scheme}://{request.host}"
            answer = route.run(body, Context(request.headers, origin, version, failure), request)
        except ArmError as exc:
            answer = Answer(exc.status, exc.body(), exc.headers)
        except Exception:  # a bug here must still answer like ARM, and be seen
            log.exception("ARM emulator: %s %s failed", request.method, request.path)
            answer = Answer(500, ArmError(500, "InternalServerError", "An internal error "
                                          "occurred in the emulator.").body())
        call.status = answer.status
        if fault is not None and fault.mode == "lost" and answer.status < 300 and (
                request.transport is not None):
            request.transport.close()  # the write is done; its answer never arrives
        headers = {"x-ms-request-id": self.store.new_uuid(), **answer.headers}
        if answer.body is None:
            return web.Response(status=answer.status, headers=headers)
        return web.json_response(answer.body, status=answer.status, headers=headers)

    # -- routing ------------------------------------------------------------------------------
    def route(self, method: str, path: str) -> Route:
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[0].lower() != "subscriptions":
            raise not_emulated(path)
        sub = parts[1]
        rest = parts[2:]
        if len(rest) == 2 and rest[0].lower() == "resourcegroups" and method == "GET":
            return Route("resourceGroups.get", "read", lambda b, c, r: self._group(sub, rest[1]))
        provider = PROVIDER.lower()
        if len(rest) >= 3 and rest[0].lower() == "providers" and rest[1].lower() == provider:
            tail = rest[2:]
            if len(tail) == 4 and tail[0].lower() == "locations" and method == "GET":
                kind_of = tail[2].lower()
                if kind_of == "operations":
                    return Route("operations.get", "operation",
                                 lambda b, c, r: self._operation(sub, tail[3]))
                if kind_of == "operationresults":
                    return Route("operationResults.get", "operation",
                                 lambda b, c, r: self._result(sub, tail[3], c))
            if len(tail) == 1 and method == "GET":
                kind = self._kind(tail[0])
                return Route(f"{kind.type}.listAll", "read",
                             lambda b, c, r: self._list(sub, None, kind, r))
            raise not_emulated(f"{method} {path}")
        if not (len(rest) >= 5 and rest[0].lower() == "resourcegroups"
                and rest[2].lower() == "providers" and rest[3].lower() == PROVIDER.lower()):
            raise not_emulated(f"{method} {path}")
        group, kind = rest[1], self._kind(rest[4])
        tail = rest[5:]
        if not tail:
            if method == "GET":
                return Route(f"{kind.type}.list", "read",
                             lambda b, c, r: self._list(sub, group, kind, r))
            raise not_emulated(f"{method} {kind.type}")
        rid = Rid(sub, group, kind.type, tail[0])
        if len(tail) == 1:
            return self._top(method, kind, rid)
        child = canonical(tail[1], kind.readable_children)
        if child == "loadBalancingRules" and len(tail) == 4 and tail[3].lower() == "health" \
                and method == "POST":  # an action: billed as a write, changes nothing
            rule = rid.child(child, tail[2])
            return Route(f"{child}.health", "write",
                         lambda b, c, r: self.rule_health.post(kind, rule, c))
        if child is None or len(tail) > 3:
            raise not_emulated(f"{method} {path}")
        api = child
        if len(tail) == 2:
            if method == "GET":
                return Route(f"{api}.list", "read", lambda b, c, r: self._children(kind, rid,
                                                                                   child, r))
            raise not_emulated(f"{method} {api}")
        crid = rid.child(child, tail[2])
        if method == "GET":
            return Route(f"{api}.get", "read",
                         lambda b, c, r: Answer(200, kind.find_child(self.store.require(crid),
                                                                     crid)))
        if child in kind.writable_children and method == "PUT":
            return Route(f"{api}.put", "write",
                         lambda b, c, r: self.writes.put(kind, crid, b, c))
        if child in kind.writable_children and method == "DELETE":
            return Route(f"{api}.delete", "write",
                         lambda b, c, r: self.writes.delete(kind, crid, c))
        raise not_emulated(f"{method} {api}")

    def _top(self, method: str, kind: Kind, rid: Rid) -> Route:
        api = kind.type
        if method == "GET":
            return Route(f"{api}.get", "read",
                         lambda b, c, r: Answer(200, kind.render(self.store.require(rid))))
        if method == "PUT":
            return Route(f"{api}.put", "write", lambda b, c, r: self.writes.put(kind, rid, b, c))
        if method == "PATCH" and kind.taggable:
            return Route(f"{api}.patch", "write",
                         lambda b, c, r: self.writes.patch(kind, rid, b, c))
        if method == "DELETE":
            return Route(f"{api}.delete", "write", lambda b, c, r: self.writes.delete(kind, rid, c))
        raise not_emulated(f"{method} {api}")

    def _kind(self, name: str) -> Kind:
        found = canonical(name, list(self.kinds))
        if found is None:
            raise not_emulated(f"Microsoft.Network/{name}")
        return self.kinds[found]

    # -- reads --------------------------------------------------------------------------------
    def _group(self, sub: str, group: str) -> Answer:
        self.store.check_scope(Rid(sub, group, "", ""))
        name = self.store.groups[group.lower()]
        return Answer(200, {"id": f"/subscriptions/{self.store.subscription}/resourceGroups/{name}",
                            "name": name, "type": "Microsoft.Resources/resourceGroups",
                            "location": self.store.location,
                            "properties": {"provisioningState": "Succeeded"}})

    def _list(self, sub: str, group: str | None, kind: Kind, request: web.Request) -> Answer:
        if group is not None:
            self.store.check_scope(Rid(sub, group, "", ""))
        else:
            self.store.check_scope(Rid(sub, self.store.group, "", ""))
        items = [kind.render(o) for o in self.store.of_type(kind.type, group)]
        return self._page(items, request)

    def _children(self, kind: Kind, rid: Rid, child: str, request: web.Request) -> Answer:
        obj = kind.render(self.store.require(rid))
        return self._page(list(obj["properties"].get(child, [])), request)

    def _page(self, items: list[dict[str, Any]], request: web.Request) -> Answer:
        size = max(1, self.store.settings.page_size)
        token = request.query.get("$skipToken", "0")
        start = int(token) if token.isdigit() else 0
        body: dict[str, Any] = {"value": items[start:start + size]}
        if start + size < len(items):
            query = {k: v for k, v in request.query.items() if k != "$skipToken"}
            query["$skipToken"] = str(start + size)
            body["nextLink"] = str(request.url.with_query(query))
        return Answer(200, body)

    def _operation(self, sub: str, op_id: str) -> Answer:
        self.store.check_scope(Rid(sub, self.store.group, "", ""))
        op = self.operations.get(op_id)
        return Answer(200, op.json(), self.operations.retry_headers(op))

    def _result(self, sub: str, op_id: str, ctx: Context) -> Answer:
        self.store.check_scope(Rid(sub, self.store.group, "", ""))
        op = self.operations.get(op_id)
        if op.status == "InProgress":
            here = f"{ctx.origin}{op.path.replace('/operations/', '/operationResults/')}"
            return Answer(202, None, {"Location": f"{here}?api-version={ctx.api_version}",
                                      **self.operations.retry_headers(op)})
        if op.error is not None:
            status = op.error.status if op.error.status >= 400 else 500
            return Answer(status, op.error.body())
        if op.result is not None:
            return Answer(200, op.result)
        return Answer(204, None)


async def _json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        raise bad_request("InvalidRequestContent", "The request content was invalid and could "
                                                   "not be deserialized: empty body.")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise bad_request("InvalidRequestContent", f"The request content was invalid and could "
                                                   f"not be deserialized: {exc}") from None
    if not isinstance(data, dict):
        raise bad_request("InvalidRequestContent", "The request content must be an object.")
    return data
