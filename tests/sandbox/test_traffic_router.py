"""The sandbox node proxy's router: round-robin by default, and `sessionAffinity: ClientIP` as
kube-proxy keeps it (a client IP stays on its endpoint while it keeps connecting within the
timeout, per node, and moves when its endpoint goes)."""

from __future__ import annotations

from lbctl.sandbox.traffic.plan import Backend, Plan, Route
from lbctl.sandbox.traffic.router import Router

R = ("ns", "web", "http", "TCP")
PODS = tuple(Backend(f"127.0.9.{k}", 8080, f"node-{k}") for k in (1, 2, 3))


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def router(affinity: int, pods: tuple[Backend, ...] = PODS) -> tuple[Router, Clock]:
    clock = Clock()
    made = Router(clock=clock)
    made.update(Plan(routes={R: Route(False, pods, {}, affinity_seconds=affinity)}))
    return made, clock


def connect(r: Router, client: str, node: str = "node-1") -> Backend:
    """One connection: the first candidate is dialled and answers."""
    backend = r.candidates(R, node, client)[0]
    r.chose(R, node, client, backend)
    return backend


def test_without_affinity_every_connection_takes_the_next_endpoint() -> None:
    r, _ = router(0)
    assert [connect(r, "10.0.0.1") for _ in range(6)] == [*PODS, *PODS]


def test_a_client_keeps_its_endpoint_and_others_spread() -> None:
    r, _ = router(60)
    first = connect(r, "10.0.0.1")
    assert {connect(r, "10.0.0.1") for _ in range(10)} == {first}
    others = {connect(r, f"10.0.0.{k}") for k in (2, 3, 4)}
    assert len(others) > 1  # the round-robin still runs for clients without an endpoint


def test_the_timeout_restarts_with_each_connection_and_then_ends() -> None:
    r, clock = router(60)
    first = connect(r, "10.0.0.1")
    for _ in range(5):  # 50 s apart: each connection restarts the timeout
        clock.now += 50
        assert connect(r, "10.0.0.1") == first
    connect(r, "10.0.0.9")  # moves the round-robin on
    clock.now += 61  # silent longer than the timeout: a fresh pick
    assert r.candidates(R, "node-1", "10.0.0.1")[0] != first


def test_a_gone_endpoint_releases_its_clients_and_nodes_remember_apart() -> None:
    r, _ = router(60)
    first = connect(r, "10.0.0.1")
    rest = tuple(b for b in PODS if b != first)
    r.update(Plan(routes={R: Route(False, rest, {}, affinity_seconds=60)}))
    moved = connect(r, "10.0.0.1")
    assert moved in rest and connect(r, "10.0.0.1") == moved
    elsewhere = r.candidates(R, "node-2", "10.0.0.1")  # another node's own table
    assert len(elsewhere) == 2
