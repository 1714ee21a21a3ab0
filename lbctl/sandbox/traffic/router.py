"""The live routing table every node proxy consults per connection or UDP flow.

Listeners stay bound while endpoints come and go; each new connection asks the router, which
holds the newest plan's routes, for its backends in round-robin order (so N requests spread over
the pods evenly, as kube-proxy's random choice does on average, but reproducibly).

`sessionAffinity: ClientIP` as kube-proxy does it (the iptables `recent` match): a client IP
that connected within the timeout goes to the endpoint it last used, as long as that endpoint
is still one this node would pick; each new connection restarts its timeout. Remembered per
node, as kube-proxy's tables are per node.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .plan import Backend, Plan, Route, RouteKey
from .records import Key

NO_ROUTE = Route(local=False, cluster=(), by_node={})
Sticky = tuple[RouteKey, str, str]
"""(route, node, client IP)."""


class Router:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._routes: dict[RouteKey, Route] = {}
        self._local_ready: dict[Key, dict[str, int]] = {}
        self._turn: dict[tuple[RouteKey, str], int] = {}
        self._sticky: dict[Sticky, tuple[Backend, float]] = {}
        self._clock = clock

    def update(self, plan: Plan) -> None:
        self._routes = plan.routes
        self._local_ready = plan.local_ready
        self._turn = {k: v for k, v in self._turn.items() if k[0] in self._routes}
        self._sticky = {k: v for k, v in self._sticky.items()
                        if self._routes.get(k[0], NO_ROUTE).affinity_seconds}

    def candidates(self, route: RouteKey, node: str, client: str | None = None
                   ) -> list[Backend]:
        """Backends for one new connection from `client` to `node`: the client's endpoint
        under ClientIP affinity, else the round-robin pick, first."""
        table = self._routes.get(route, NO_ROUTE)
        backends = table.backends(node)
        if not backends:
            return []
        if table.affinity_seconds and client is not None:
            held = self._sticky.get((route, node, client))
            if held is not None and held[1] > self._clock() and held[0] in backends:
                return [held[0], *(b for b in backends if b != held[0])]
        turn = self._turn.get((route, node), 0)
        self._turn[(route, node)] = turn + 1
        start = turn % len(backends)
        return [*backends[start:], *backends[:start]]

    def chose(self, route: RouteKey, node: str, client: str | None, backend: Backend) -> None:
        """`client`'s connection went to `backend`: under ClientIP affinity, its next ones do
        too, for the Service's timeout from now."""
        seconds = self._routes.get(route, NO_ROUTE).affinity_seconds
        if seconds and client is not None:
            self._sticky[(route, node, client)] = (backend, self._clock() + seconds)

    def still_routes(self, route: RouteKey, node: str, backend: Backend) -> bool:
        """Whether a UDP flow's backend is still one this node would pick."""
        return backend in self._routes.get(route, NO_ROUTE).backends(node)

    def local_endpoints(self, service: Key, node: str) -> int:
        return self._local_ready.get(service, {}).get(node, 0)
