"""Lease-based leader election against the sandbox: one leader, fast handover on release,
stepping down on takeover, and never two leaders at once under conflict storms."""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from kubernetes import client

from lbctl.kube import Kube, LeaderConfig, LeaderElector
from lbctl.sandbox.app import Sandbox
from tests.conftest import admin_call, client_for, wait_for

pytestmark = pytest.mark.integration
FAST = {"lease_duration": 3.0, "renew_deadline": 2.0, "retry_period": 0.5}


@dataclass
class Interval:
    identity: str
    start: float
    end: float = math.inf


@dataclass
class Log:
    """Leadership intervals recorded by the electors' callbacks themselves."""

    intervals: list[Interval] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def elector(self, kube: Kube, ns: str, identity: str, **timing: float) -> LeaderElector:
        def started() -> None:
            with self.lock:
                self.intervals.append(Interval(identity, time.monotonic()))

        def stopped() -> None:
            with self.lock:
                for interval in self.intervals:
                    if interval.identity == identity and interval.end == math.inf:
                        interval.end = time.monotonic()

        config = LeaderConfig(ns, "lbctl-leader", identity, **timing)
        return LeaderElector(kube, config, on_started_leading=started,
                             on_stopped_leading=stopped)

    def starts(self, identity: str) -> list[float]:
        with self.lock:
            return [i.start for i in self.intervals if i.identity == identity]

    def assert_never_two_leaders(self) -> None:
        with self.lock:
            ordered = sorted(self.intervals, key=lambda i: i.start)
        for before, after in itertools.pairwise(ordered):
            assert before.end <= after.start, (
                f"{before.identity} still led when {after.identity} started: {ordered}")


def holder(coord: client.CoordinationV1Api, ns: str) -> str | None:
    lease = coord.read_namespaced_lease("lbctl-leader", ns)
    return lease.spec.holder_identity or None


@pytest.fixture
def kube(sandbox: Sandbox) -> Iterator[Kube]:
    """The electors' own client: a bucket generous enough never to delay a renewal."""
    k = Kube.connect(sandbox.options.kubeconfig, qps=200, burst=400)
    yield k
    k.close()


@pytest.fixture
def coord(api: client.ApiClient) -> client.CoordinationV1Api:
    return client.CoordinationV1Api(api)


def test_one_elector_leads_and_the_other_stands_by(kube: Kube, coord: client.CoordinationV1Api,
                                                   ns: str) -> None:
    log = Log()
    a, b = log.elector(kube, ns, "a", **FAST), log.elector(kube, ns, "b", **FAST)
    a.start()
    wait_for(a.is_leader, what="a leading")
    b.start()
    time.sleep(FAST["lease_duration"] + 1)  # longer than a lease: renewals keep it
    try:
        assert a.is_leader() and not b.is_leader()
        assert holder(coord, ns) == "a" and b.leader == "a"
        assert len(log.intervals) == 1
    finally:
        b.stop()
        a.stop()
    assert not a.is_leader()
    log.assert_never_two_leaders()


def test_release_hands_over_in_under_3s_with_upstream_timings(
        kube: Kube, coord: client.CoordinationV1Api, ns: str) -> None:
    log = Log()
    a, b = log.elector(kube, ns, "a"), log.elector(kube, ns, "b")  # 15 s / 10 s / 2 s
    a.start()
    wait_for(a.is_leader, what="a leading")
    b.start()
    time.sleep(0.5)
    assert not b.is_leader()
    released = time.monotonic()
    a.release()
    try:
        assert not a.is_leader() and log.intervals[0].end != math.inf
        wait_for(b.is_leader, timeout=5, what="b taking over")
        assert log.starts("b")[0] - released < 3
        assert holder(coord, ns) == "b"
        lease = coord.read_namespaced_lease("lbctl-leader", ns)
        assert lease.spec.lease_transitions >= 1
    finally:
        b.stop()
    log.assert_never_two_leaders()


def test_a_released_lease_has_no_holder(kube: Kube, coord: client.CoordinationV1Api,
                                        ns: str) -> None:
    log = Log()
    a = log.elector(kube, ns, "a", **FAST)
    a.start()
    wait_for(a.is_leader, what="a leading")
    a.release()
    lease = coord.read_namespaced_lease("lbctl-leader", ns)
    assert not lease.spec.holder_identity and lease.spec.lease_duration_seconds == 1


def test_the_leader_steps_down_when_the_lease_is_taken_over(
        kube: Kube, coord: client.CoordinationV1Api, ns: str) -> None:
    log = Log()
    a = log.elector(kube, ns, "a", **FAST)
    a.start()
    wait_for(a.is_leader, what="a leading")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    coord.patch_namespaced_lease("lbctl-leader", ns, {"spec": {
        "holderIdentity": "intruder", "leaseDurationSeconds": 2, "renewTime": now,
        "acquireTime": now}})
    taken = time.monotonic()
    try:
        wait_for(lambda: not a.is_leader(), timeout=FAST["renew_deadline"] + 1,
                   what="a stepping down")
        assert time.monotonic() - taken < FAST["retry_period"] + 1, "at once, not at deadline"
        assert a.leader == "intruder"
        # the intruder never renews: once its 2 s lease has expired, a takes the Lease back
        wait_for(lambda: len(log.starts("a")) == 2, timeout=10, what="a leading again")
        assert log.starts("a")[1] - taken >= 2
        assert holder(coord, ns) == "a"
    finally:
        a.stop()
    log.assert_never_two_leaders()


STORMY = {"lease_duration": 1.5, "renew_deadline": 1.0, "retry_period": 0.25}


def test_conflict_storms_never_make_two_leaders(own_sandbox: Sandbox) -> None:
    kube = Kube.connect(own_sandbox.options.kubeconfig, qps=200, burst=400)
    api = client_for(own_sandbox)
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "t"}})
    log = Log()
    electors = [log.elector(kube, "t", name, **STORMY) for name in ("a", "b", "c")]
    try:
        for elector in electors:
            elector.start()
        wait_for(lambda: any(e.is_leader() for e in electors), what="a leader")
        # squalls (most lease requests fail: leaders lose the Lease) between lulls (half fail:
        # standbys can take it over)
        for rates in [{"409": 0.85, "500": 0.1}, {"409": 0.5}] * 4:
            status, _, _ = admin_call(own_sandbox, "PUT", "/sandbox/faults", {
                "errorRates": rates, "resources": ["leases"]})
            assert status == 200
            until = time.monotonic() + 2.5
            while time.monotonic() < until:
                assert sum(e.is_leader() for e in electors) <= 1
                time.sleep(0.005)
        admin_call(own_sandbox, "PUT", "/sandbox/faults", {})
        wait_for(lambda: sum(e.is_leader() for e in electors) == 1, timeout=15,
                   what="one leader once the storm is over")
    finally:
        for elector in electors:
            elector.stop()
        kube.close()
        api.close()
    _, audit, _ = admin_call(own_sandbox, "GET", "/sandbox/audit")
    injected = [e for e in audit["items"] if e["resource"] == "leases" and e["code"] == 409]
    assert len(injected) > 50, "the storm happened"
    assert len(log.intervals) >= 3, f"leadership changed hands: {log.intervals}"
    log.assert_never_two_leaders()


def test_bad_timings_raise_and_a_standby_stops_promptly(kube: Kube, ns: str) -> None:
    with pytest.raises(ValueError, match="lease_duration > renew_deadline"):
        LeaderConfig(ns, "x", "a", lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError, match="identity"):
        LeaderConfig(ns, "x", "")
    log = Log()
    a, b = log.elector(kube, ns, "a", **FAST), log.elector(kube, ns, "b", **FAST)
    a.start()
    wait_for(a.is_leader, what="a leading")
    b.start()
    time.sleep(0.2)
    start = time.monotonic()
    b.stop()
    assert time.monotonic() - start < 2 and not b.is_leader()
    assert a.is_leader()
    a.stop()
