"""The baremetal provider's target counts (`LoadBalancerStatus.targets`), read from the balancer
daemons' reports (`GET /v1/balancers`, the poll the provider runs anyway): per listener, the
worst view wins, since every listener and every daemon checks the same targets. Pure: the
reports are the daemon's wire form (`lbctl.balancer.status.balancer_status`); the live daemons
are in test_baremetal_daemons.py."""

from __future__ import annotations

from typing import Any

import pytest

from providers.baremetal.daemon_options import DaemonOptions
from providers.baremetal.daemons import DaemonProgrammer, report_targets
from providers.baremetal.programming import NoProgramming
from providers.baremetal.settings import BalancerDaemon
from providers.spec import TargetHealth

pytestmark = pytest.mark.unit


def report(*listeners: list[bool], name: str = "lb-web") -> dict[str, Any]:
    """A daemon's report of one balancer: each listener's targets up or down."""
    lis = [{"protocol": "TCP", "port": 80 + i, "bound": True,
            "targets": [{"name": f"n{k}", "up": up} for k, up in enumerate(ups)]}
           for i, ups in enumerate(listeners)]
    healthy = sum(up for ups in listeners for up in ups)
    return {"balancer": {"name": name, "revision": "r1"},
            "status": {"serving": healthy > 0, "healthyTargets": healthy,
                       "totalTargets": sum(len(u) for u in listeners), "problems": [],
                       "listeners": lis}}


@pytest.mark.parametrize(("item", "expected"), [
    (report([True, True, False]), TargetHealth(2, 3)),
    # two listeners over the same three nodes: the worst listener, not 5 of 6
    (report([True, True, True], [True, False, False]), TargetHealth(1, 3)),
    (report([]), TargetHealth(0, 0)),
    # an older daemon without listeners in its report: its totals
    ({"status": {"healthyTargets": 4, "totalTargets": 5}}, TargetHealth(4, 5)),
    # a balancer the daemon does not serve says nothing about targets
    ({"status": {"serving": False, "message": "not served"}}, None),
    ({}, None),
])
def test_one_report(item: dict[str, Any], expected: TargetHealth | None) -> None:
    assert report_targets(item) == expected


def test_the_worst_daemon_view_and_unknown_without_reports() -> None:
    daemons = tuple(BalancerDaemon(n, f"http://127.0.0.1:{p}", "/dev/null")
                    for n, p in (("lb1", 1), ("lb2", 2), ("lb3", 3)))
    programmer = DaemonProgrammer(daemons, DaemonOptions(), "c1")
    try:
        assert programmer.targets("lb-web") is None  # nothing polled yet: unknown
        programmer._known = {"lb1": {"lb-web": report([True, True, True])},
                             "lb2": {"lb-web": report([True, False, True])},
                             "lb3": None}  # unreachable: no view
        assert programmer.targets("lb-web") == TargetHealth(2, 3)
        assert programmer.targets("lb-other") is None
    finally:
        programmer.close()


def test_without_daemons_nothing_checks_targets() -> None:
    assert NoProgramming().targets("lb-web") is None


def test_worst() -> None:
    assert TargetHealth.worst([]) is None
    assert TargetHealth.worst([None, TargetHealth(3, 3)]) == TargetHealth(3, 3)
    assert TargetHealth.worst([TargetHealth(3, 3), TargetHealth(0, 0),
                               TargetHealth(1, 3)]) == TargetHealth(0, 0)
    assert TargetHealth.worst([TargetHealth(1, 2), TargetHealth(2, 4)]) == TargetHealth(1, 2)
