"""The live routing table every node proxy consults per connection or UDP flow.

Listeners stay bound while endpoints come and go; each new connection asks the router, which
holds the newest plan's routes, for its backends in round-robin order (so N requests spread over
the pods evenly, as kube-proxy's random choice does on average, but reproducibly).
"""

from __future__ import annotations

from .plan import Backend, Plan, Route, RouteKey
from .records import Key

NO_ROUTE = Route(local=False, cluster=(), by_node={})


class Router:
    def __init__(self) -> None:
        self._routes: dict[RouteKey, Route] = {}
        self._local_ready: dict[Key, dict[str, int]] = {}
        self._turn: dict[tuple[RouteKey, str], int] = {}

    def update(self, plan: Plan) -> None:
        self._routes = plan.routes
        self._local_ready = plan.local_ready
        self._turn = {k: v for k, v in self._turn.items() if k[0] in self._routes}

    def candidates(self, route: RouteKey, node: str) -> list[Backend]:
        """Backends for one new connection from `node`: the round-robin pick first."""
        backends = self._routes.get(route, NO_ROUTE).backends(node)
        if not backends:
            return []
        turn = self._turn.get((route, node), 0)
        self._turn[(route, node)] = turn + 1
        start = turn % len(backends)
        return [*backends[start:], *backends[:start]]

    def still_routes(self, route: RouteKey, node: str, backend: Backend) -> bool:
        """Whether a UDP flow's backend is still one this node would pick."""
        return backend in self._routes.get(route, NO_ROUTE).backends(node)

    def local_endpoints(self, service: Key, node: str) -> int:
        return self._local_ready.get(service, {}).get(node, 0)
