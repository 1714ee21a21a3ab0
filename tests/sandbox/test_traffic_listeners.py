"""The traffic process's listeners and routes change in a real node's order: a pod listens
before a route leads to it, and closes only once no route leads there (else a node proxy could
dial a pod that is not listening yet, or no longer: a connection refused that kube-proxy, whose
endpoints are Ready pods, never meets)."""

from __future__ import annotations

import asyncio
import socket

from lbctl.sandbox.traffic.listeners import Listeners
from lbctl.sandbox.traffic.plan import Backend, Plan, PodListener, Route
from lbctl.sandbox.traffic.router import Router

ADDRESS = "127.0.77.1"
R = ("ns", "web", "http", "TCP")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((ADDRESS, 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        socket.create_connection((ADDRESS, port), timeout=1).close()
    except OSError:
        return False
    return True


class Watching(Router):
    """A router noting, at each swap, which of `ports` accept connections."""

    def __init__(self, ports: list[int]) -> None:
        super().__init__()
        self.ports = ports
        self.seen: list[dict[int, bool]] = []

    def update(self, plan: Plan) -> None:
        self.seen.append({p: _listening(p) for p in self.ports})
        super().update(plan)


def _plan(pod: str, port: int) -> Plan:
    backend = Backend(ADDRESS, port, "node-1")
    return Plan(listeners={(ADDRESS, port, "TCP"): PodListener("ns", pod, "node-1")},
                routes={R: Route(False, (backend,), {"node-1": (backend,)})})


def test_a_pod_listens_before_its_route_and_closes_after_the_route_left_it() -> None:
    old_port, new_port = _free_port(), _free_port()
    router = Watching([old_port, new_port])
    listeners = Listeners(router)

    async def scenario() -> None:
        try:
            await listeners.apply(_plan("web-old", old_port))
            # the rollout: the route moves to the new pod, the old one goes
            assert await listeners.apply(_plan("web-new", new_port)) == (1, 1)
            assert router.candidates(R, "node-1") == [Backend(ADDRESS, new_port, "node-1")]
        finally:
            await listeners.close_all()

    asyncio.run(scenario())
    assert router.seen == [
        {old_port: True, new_port: False},  # first swap: the old pod already listens
        {old_port: True, new_port: True},  # second: the new one does, the old one still does
    ]
    assert not _listening(old_port) and not _listening(new_port)
