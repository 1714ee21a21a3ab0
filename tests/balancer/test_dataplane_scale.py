"""Control work stays O(targets): status and a frontend's take-over of verdicts at 1,000 targets.

Status pages used to rebuild the whole health map once per target (O(targets²): 8 s for one
balancer of 1,000 targets, on the loop that carries traffic), and a new frontend rebuilt its
picking tables once per target held down. Probes run in the checker process (`HealthProcess`);
status reads its mirror of the verdicts. These tests count the work instead of timing it: a
probe round has run first (targets are down for a reason the checker gave), then status asks
the checker once per target and never for the whole map, and a replacement frontend rebuilds
its tables a bounded number of times whatever the target count.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from lbctl.balancer.backends import BackendSet
from lbctl.balancer.dataplane import Dataplane
from lbctl.balancer.health_process import HealthProcess
from lbctl.balancer.model import BalancerConfig, TargetConfig, parse_balancer

pytestmark = pytest.mark.integration
PORTS = 4
PER_PORT = 250  # 1,000 targets; nothing listens on 127.0.91.x: every probe is refused at once


def balancer(algorithm: str = "roundRobin") -> BalancerConfig:
    return parse_balancer({"name": "web", "vip": "127.0.90.1", "listeners": [
        {"protocol": "TCP", "port": 18000 + p, "algorithm": algorithm,
         "targets": [f"127.0.91.{1 + p}:{21000 + i}" for i in range(PER_PORT)],
         "healthCheck": {"type": "tcp", "intervalSeconds": 0.2, "timeoutSeconds": 0.5,
                         "unhealthyThreshold": 1}}
        for p in range(PORTS)]})


def counting(calls: Counter[str], name: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kw: Any) -> Any:
        calls[name] += 1
        return real(*args, **kw)
    return wrapper


async def all_down(dp: Dataplane, total: int) -> dict[str, Any]:
    for _ in range(300):
        status = dp.status("web")
        if status["totalTargets"] == total and status["healthyTargets"] == 0:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"the probe round did not take every target down: {status}")


def test_status_asks_the_checker_once_per_target(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> None:
        dp = Dataplane(kernel=None, log_health=False)
        try:
            await dp.apply([balancer()])
            await all_down(dp, PORTS * PER_PORT)  # the probes ran: there is health to report
            calls: Counter[str] = Counter()
            monkeypatch.setattr(HealthProcess, "verdicts", counting(calls, "verdicts",
                                                                    HealthProcess.verdicts))
            monkeypatch.setattr(HealthProcess, "reason", counting(calls, "reason",
                                                                  HealthProcess.reason))
            status = dp.status("web")
            assert calls == Counter({"reason": PORTS * PER_PORT})
            reasons = {t["reason"] for li in status["listeners"] for t in li["targets"]}
            assert all(r.startswith("TCP connect to 127.0.91.") for r in reasons), reasons
            assert status["problems"][-1].startswith(f"0 of {PORTS * PER_PORT} targets healthy")
        finally:
            await dp.close()

    asyncio.run(run())


def test_a_replacement_frontend_takes_the_verdicts_in_one_rebuild(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> None:
        dp = Dataplane(kernel=None, log_health=False)
        try:
            await dp.apply([balancer()])
            await all_down(dp, PORTS * PER_PORT)
            calls: Counter[str] = Counter()
            monkeypatch.setattr(BackendSet, "_rebuild", counting(calls, "rebuild",
                                                                 BackendSet._rebuild))
            await dp.apply([balancer(algorithm="leastConnections")])  # new frontends
            assert len(dp.running) == PORTS
            assert all(run.listener.algorithm == "leastConnections"
                       for run in dp.running.values())
            # per frontend: one build, one take-over of the old verdicts (all down) and one
            # of the checker's: never once per target
            assert calls["rebuild"] <= 3 * PORTS, calls
            status = dp.status("web")
            assert status["healthyTargets"] == 0  # the verdicts did carry over
        finally:
            await dp.close()

    asyncio.run(run())


def test_set_many_rebuilds_once() -> None:
    targets = tuple(TargetConfig(address="10.0.0.1", port=30000 + i) for i in range(500))
    backends = BackendSet(targets, "maglev", "None")
    rebuilds = Counter[str]()
    real = backends._rebuild
    backends._rebuild = counting(rebuilds, "rebuild", real)  # type: ignore[method-assign]
    assert backends.set_many(((t.address, t.port), False) for t in targets[:400])
    assert rebuilds["rebuild"] == 1
    assert sum(b.up for b in backends.backends) == 100
    assert not backends.set_many(((t.address, t.port), False) for t in targets[:400])
    assert rebuilds["rebuild"] == 1  # nothing changed: nothing rebuilt


def test_reprogramming_one_balancer_of_many_rewatches_only_its_listeners(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Twenty balancers; one of them gets new targets: the checker hears about that one's
    listeners only (it used to be told every listener's targets again: 10,000 watch calls
    for a 500-target change). A removed balancer's listeners are unwatched."""

    def one(index: int, shift: int = 0) -> BalancerConfig:
        return parse_balancer({"name": f"svc-{index}", "vip": f"127.0.90.{10 + index}",
                               "listeners": [{
                                   "protocol": "TCP", "port": 18000 + p,
                                   "targets": [f"127.0.93.{1 + i + shift}:{30000 + index}"
                                               for i in range(20)],
                                   "healthCheck": {"type": "none"}} for p in range(2)]})

    async def run() -> None:
        dp = Dataplane(kernel=None, log_health=False)
        try:
            balancers = [one(i) for i in range(20)]
            calls: list[str] = []
            real = HealthProcess.set_owner_targets

            def watched(self: HealthProcess, owner: str, items: Any) -> None:
                calls.append(owner)
                real(self, owner, items)

            monkeypatch.setattr(HealthProcess, "set_owner_targets", watched)
            assert isinstance(dp.health, HealthProcess)  # the default: probes off this loop
            await dp.apply(balancers)
            await dp.health.flush()
            assert len(calls) == 40  # every listener once, at first
            calls.clear()
            await dp.apply(list(balancers))  # the same objects: nothing to tell
            await dp.health.flush()
            assert calls == []
            balancers[7] = one(7, shift=1)
            await dp.apply(balancers)
            await dp.health.flush()
            assert sorted(calls) == ["svc-7/TCP/18000", "svc-7/TCP/18001"]
            assert dp.running[("TCP", "127.0.90.17", 18000)].backends.get(
                ("127.0.93.21", 30007)) is not None  # and the frontend took the new target
            calls.clear()
            await dp.apply(balancers[:19])
            await dp.health.flush()
            assert sorted(calls) == ["svc-19/TCP/18000", "svc-19/TCP/18001"]
            assert ("TCP", "127.0.90.29", 18000) not in dp.running
        finally:
            await dp.close()

    asyncio.run(run())


def test_verdicts_of_one_loop_turn_land_with_one_rebuild_per_frontend(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the checker reports in one read of its pipe (a probe round's worth) is applied
    together: 1,000 verdicts in one turn of the loop cost one rebuild per frontend (was one
    pass over every frontend and one rebuild per verdict: 250 per frontend here)."""
    async def run() -> None:
        dp = Dataplane(kernel=None, log_health=False)
        rebuilds: Counter[str] = Counter()
        try:
            await dp.apply([balancer()])
            for front, run_ in dp.running.items():
                monkeypatch.setattr(run_.backends, "_rebuild", counting(
                    rebuilds, str(front), run_.backends._rebuild))
            keys = [b.key for run_ in dp.running.values() for b in run_.backends.backends]
            assert len(keys) == PORTS * PER_PORT
            for key in keys:
                dp._on_health(key, False, "refused")  # what HealthProcess calls per verdict
            assert rebuilds == Counter()  # nothing yet: applied at the end of this turn
            await asyncio.sleep(0)
            assert sorted(rebuilds.values()) == [1] * PORTS
            assert all(not b.up for run_ in dp.running.values() for b in run_.backends.backends)
            dp._on_health(keys[0], True, "1 check passed")  # one verdict: one frontend's
            await asyncio.sleep(0)
            assert sorted(rebuilds.values()) == [1] * (PORTS - 1) + [2]
        finally:
            await dp.close()

    asyncio.run(run())
