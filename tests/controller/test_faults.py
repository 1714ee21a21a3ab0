"""The controller keeps converging when the API server, the process or its neighbours misbehave.

Sandbox faults (forced 410 and compaction -> relist, dropped watches, 409/500/429 on writes),
a controller stopped or killed in the middle of an ensure, an upstream cloud controller's cleanup
rule running beside lbctl, the `lbctl.io/release` annotation, config reload through
`ConfigHolder`, and a third-party provider plugin found through its entry point.

Every test checks end states *and* the provider's call log: one balancer per Service, named
lbctl's way, never a duplicate, never a leak.
"""

from __future__ import annotations

import itertools
import re
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from lbctl.controller.cache import Cache
from lbctl.controller.config import Config
from lbctl.controller.controller import Controller
from lbctl.controller.decisions import LBCTL_FINALIZER, STANDARD_FINALIZER
from lbctl.controller.events import BackgroundEvents
from lbctl.controller.kube_writes import KubeEventWriter, KubeServiceWrites
from lbctl.controller.metrics import Metrics
from lbctl.controller.runner import ConfigHolder, run
from lbctl.kube import ApiError, Kube
from lbctl.sandbox.app import Sandbox
from providers import registry
from providers.cluster import ServiceView
from providers.fake import FakeProvider
from providers.interface import Provider
from providers.spec import LoadBalancerSpec, LoadBalancerStatus
from tests.conftest import admin_call, client_for, svc, wait_for
from tests.controller.conftest import (
    CONFIG,
    Running,
    sample,
    settle,
    start_controller,
    stop_controller,
    write_changed,
)

pytestmark = pytest.mark.integration

OURS = ("LoadBalancerProvisioning", "LoadBalancerServing", "LoadBalancerDegraded")
UPSTREAM_NAME = re.compile(r"^a[0-9a-f]{31,32}$")


# -- helpers --------------------------------------------------------------------------------
def _faults(box: Sandbox, **body: Any) -> None:
    status, answer, _ = admin_call(box, "PUT", "/sandbox/faults", body)
    assert status == 200, answer


def _no_faults(box: Sandbox) -> None:
    _faults(box, watchGone=0, errorRates={})


def _audit(box: Sandbox) -> list[dict[str, Any]]:
    status, answer, _ = admin_call(box, "GET", "/sandbox/audit")
    assert status == 200, answer
    return list(answer["items"])


def _drop_watches(box: Sandbox) -> int:
    status, answer, _ = admin_call(box, "POST", "/sandbox/faults/drop-watches")
    assert status == 200, answer
    return int(answer["dropped"])


def _services(core: client.CoreV1Api) -> dict[str, Any]:
    return {s.metadata.name: s for s in core.list_namespaced_service("default").items}


def _ips(obj: Any) -> list[str]:
    lb = obj.status.load_balancer if obj.status else None
    return [i.ip for i in (lb.ingress or [])] if lb else []


def _conditions(obj: Any) -> dict[str, str]:
    return {c.type: c.status for c in (obj.status.conditions or [])} if obj.status else {}


def _lb(name: str, **spec: Any) -> dict[str, Any]:
    return svc(name, type="LoadBalancer", **spec)


def upstream_name(uid: str) -> str:
    """cloud-provider's `DefaultLoadBalancerName`: "a" + UID without dashes, cut to 32."""
    return ("a" + uid.replace("-", ""))[:32]


def _provisioned(core: client.CoreV1Api, fake: FakeProvider, names: list[str],
                 finalizer: str = STANDARD_FINALIZER) -> dict[str, Any] | None:
    """The Services if every one of `names` is fully and correctly provisioned: one finalizer,
    the fake's address for its one balancer as the only ingress, conditions saying provisioned,
    serving and healthy; else None."""
    found = _services(core)
    for name in names:
        obj = found.get(name)
        if obj is None or obj.metadata.finalizers != [finalizer]:
            return None
        if _conditions(obj) != {"LoadBalancerProvisioning": "False",
                                "LoadBalancerServing": "True", "LoadBalancerDegraded": "False"}:
            return None
        balancer = [b for b in fake.balancers.values()
                    if b.ref.service.uid == obj.metadata.uid]
        if len(balancer) != 1 or _ips(obj) != [fake.addresses[balancer[0].name]]:
            return None
    return found


def _assert_one_balancer_each(fake: FakeProvider, services: dict[str, Any],
                              names: list[str]) -> None:
    """Exactly one balancer per wanted Service, named lbctl's way, nothing else in the cloud;
    every ensure for a Service used one and the same name."""
    by_uid = {services[n].metadata.uid: n for n in names}
    owners = sorted(b.ref.service.uid for b in fake.balancers.values())
    assert owners == sorted(by_uid), f"balancers {sorted(fake.balancers)} for {names}"
    for name in names:
        used = {c.name for c in fake.ops("ensure") if c.service == f"default/{name}"}
        assert len(used) == 1, f"{name} was ensured under several names: {used}"
    for balancer in fake.balancers:
        assert not UPSTREAM_NAME.match(balancer)


# -- 410, compaction, dropped watches --------------------------------------------------------
def test_forced_410_relists_and_misses_nothing(ctl_sandbox: Sandbox, running: Running,
                                               core_api: client.CoreV1Api) -> None:
    """Every watch reconnect answers 410 for a while: the informers relist (with backoff) and
    the relists' diffs deliver creates, type changes and deletions made while no watch ran."""
    for name in ("a0", "a1", "a2"):
        core_api.create_namespaced_service("default", _lb(name))
    wait_for(lambda: _provisioned(core_api, running.fake, ["a0", "a1", "a2"]), 30, "a*")
    lists = running.controller.services.lists
    _faults(ctl_sandbox, watchGone=6)
    assert _drop_watches(ctl_sandbox) >= 2
    # While the informers are between 410s and relists:
    news = [f"b{i}" for i in range(5)]
    for name in news:
        core_api.create_namespaced_service("default", _lb(name))
    core_api.patch_namespaced_service("a0", "default", {"spec": {"type": "ClusterIP"}})
    core_api.delete_namespaced_service("a1", "default")
    want = ["a2", *news]

    def forced_410s_used() -> bool:
        status, config, _ = admin_call(ctl_sandbox, "GET", "/sandbox/faults")
        return status == 200 and int(config["watchGone"]) == 0

    wait_for(forced_410s_used, 30, "every forced 410 met by a reconnecting watch")
    wait_for(lambda: _provisioned(core_api, running.fake, want), 60, "b*")

    def cleaned() -> bool:
        now = _services(core_api)
        return "a1" not in now and not now["a0"].metadata.finalizers and not _ips(now["a0"])

    wait_for(cleaned, 30, "a0 cleaned up and a1 gone")
    assert running.controller.services.lists > lists, "no relist happened"
    _assert_one_balancer_each(running.fake, _services(core_api), want)  # a0's, a1's gone
    for name in news:  # a relist never causes a second ensure of an unchanged Service
        assert len([c for c in running.fake.ops("ensure")
                    if c.service == f"default/{name}"]) == 1
    deleted = sorted(c.service for c in running.fake.ops("delete"))
    assert deleted == ["default/a0", "default/a1"]


def test_compaction_forces_a_relist_and_misses_nothing(ctl_sandbox: Sandbox, running: Running,
                                                       core_api: client.CoreV1Api) -> None:
    """After an etcd-style compaction a resuming watch meets 410: the informer relists."""
    core_api.create_namespaced_service("default", _lb("c0"))
    wait_for(lambda: _provisioned(core_api, running.fake, ["c0"]), 30, "c0")
    lists = running.controller.services.lists
    for attempt in range(10):
        # Move the global resourceVersion past the services informer's, compact, drop the
        # watch: its resume point is now older than the log (a bookmark in between can save
        # it, so try again).
        core_api.create_namespaced_config_map("default", {
            "metadata": {"name": f"bump-{attempt}"}, "data": {"k": "v"}})
        status, _, _ = admin_call(ctl_sandbox, "POST", "/sandbox/compact")
        assert status == 200
        _drop_watches(ctl_sandbox)
        core_api.create_namespaced_service("default", _lb(f"d{attempt}"))
        try:
            wait_for(lambda: running.controller.services.lists > lists, 2, "relist")
            break
        except AssertionError:
            continue
    else:
        pytest.fail("compaction never forced a relist in 10 attempts")
    created = [f"d{i}" for i in range(attempt + 1)]
    wait_for(lambda: _provisioned(core_api, running.fake, ["c0", *created]), 30, "d*")
    _assert_one_balancer_each(running.fake, _services(core_api), ["c0", *created])
    assert len(running.fake.ops("ensure")) == 1 + len(created)


def test_dropped_watches_resume_without_relist(ctl_sandbox: Sandbox, running: Running,
                                               core_api: client.CoreV1Api) -> None:
    """Watches dropped every 100 ms while Services are created and changed: the informers
    resume from their resourceVersion (no relist) and no change is lost."""
    stop = threading.Event()
    drops: list[int] = []

    def dropper() -> None:
        while not stop.wait(0.1):
            drops.append(_drop_watches(ctl_sandbox))

    thread = threading.Thread(target=dropper, daemon=True)
    thread.start()
    names = [f"w{i}" for i in range(10)]
    try:
        for name in names:
            core_api.create_namespaced_service("default", _lb(name))
            time.sleep(0.15)
        wait_for(lambda: _provisioned(core_api, running.fake, names), 30, "w*")
        for name in names[:4]:  # a port change made while watches keep dropping
            core_api.patch_namespaced_service(name, "default", {"spec": {"ports": [
                {"port": 80, "$patch": "delete"},
                {"name": "alt", "port": 8443, "targetPort": 8443}]}})

        def ports_applied() -> bool:
            return all([li.port for li in b.listeners] == [8443]
                       for b in running.fake.balancers.values()
                       if b.ref.service.name in names[:4])

        wait_for(ports_applied, 30, "port changes reach the provider")
    finally:
        stop.set()
        thread.join(5)
    assert len(drops) >= 10 and sum(drops) >= 10, f"hardly any drops: {drops}"
    assert running.controller.services.lists == 1
    assert running.controller.nodes.lists == 1
    _assert_one_balancer_each(running.fake, _services(core_api), names)
    per_service = {n: len([c for c in running.fake.ops("ensure") if c.service == f"default/{n}"])
                   for n in names}
    assert per_service == {n: 2 if n in names[:4] else 1 for n in names}


# -- 409 / 500 / 429 on writes ---------------------------------------------------------------
def test_conflicts_and_server_errors_on_service_writes(ctl_sandbox: Sandbox, running: Running,
                                                       core_api: client.CoreV1Api) -> None:
    """20 % 409 and 20 % 500 on every Service patch (finalizer and status writes): every
    Service ends with the right status, one finalizer and exactly one balancer; deleting them
    under the same faults leaves nothing behind."""
    _faults(ctl_sandbox, errorRates={"409": 0.2, "500": 0.2}, verbs=["patch"],
            resources=["services"], seed=1)
    names = [f"f{i}" for i in range(6)]
    for name in names:
        core_api.create_namespaced_service("default", _lb(name))
    found = wait_for(lambda: _provisioned(core_api, running.fake, names), 150, "f* under faults")
    _assert_one_balancer_each(running.fake, found, names)
    codes = [e["code"] for e in _audit(ctl_sandbox)
             if e["verb"] == "patch" and e["resource"] == "services"]
    assert 409 in codes and 500 in codes, f"faults never hit: {codes}"
    for name in names:
        core_api.delete_namespaced_service(name, "default")
    wait_for(lambda: not set(names) & set(_services(core_api)), 150, "deletes under faults")
    _no_faults(ctl_sandbox)
    assert running.fake.balancers == {}
    deleted = {c.service for c in running.fake.ops("delete")}
    assert deleted == {f"default/{n}" for n in names}


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def test_429_retry_after_is_respected(ctl_sandbox: Sandbox, running: Running,
                                      core_api: client.CoreV1Api) -> None:
    """The sandbox answers 429 with `Retry-After: 1`: neither the informer (watch/list) nor the
    workers (Service patches) ask again sooner than that after a refusal, and both recover
    once it stops."""
    core_api.create_namespaced_service("default", _lb("before"))
    wait_for(lambda: _provisioned(core_api, running.fake, ["before"]), 30, "before")
    lists = running.controller.services.lists
    admin_call(ctl_sandbox, "DELETE", "/sandbox/audit")
    # 1. The informer: every list and watch of services is throttled for a while.
    _faults(ctl_sandbox, errorRates={"429": 1.0}, verbs=["list", "watch"],
            resources=["services"])
    _drop_watches(ctl_sandbox)

    def throttled_times() -> list[float] | None:
        times = [e["time"] for e in _audit(ctl_sandbox)
                 if e["resource"] == "services" and e["code"] == 429]
        return times if len(times) >= 3 else None

    # the informer asked again and again while throttled: the gaps below are real retries
    throttled: list[float] = wait_for(throttled_times, 15, "three throttled list/watch attempts")
    _no_faults(ctl_sandbox)
    assert min(_gaps(throttled)) >= 0.95, _gaps(throttled)
    # 2. The workers: Service patches are throttled until one of them was refused.
    admin_call(ctl_sandbox, "DELETE", "/sandbox/audit")
    _faults(ctl_sandbox, errorRates={"429": 1.0}, verbs=["patch"], resources=["services"])
    core_api.create_namespaced_service("default", _lb("during"))

    def refused() -> list[dict[str, Any]]:
        return [e for e in _audit(ctl_sandbox) if e["name"] == "during" and e["code"] == 429]

    wait_for(refused, 15, "a refused patch")
    _no_faults(ctl_sandbox)
    wait_for(lambda: _provisioned(core_api, running.fake, ["before", "during"]), 60, "during")
    attempts = [e for e in _audit(ctl_sandbox) if e["verb"] == "patch" and e["name"] == "during"]
    assert attempts[0]["code"] == 429
    waited = [b["time"] - a["time"] for a, b in itertools.pairwise(attempts)
              if a["code"] == 429]
    assert waited and min(waited) >= 0.95, waited
    # The watch resumed from its resourceVersion after the throttling: no relist needed.
    assert running.controller.services.lists == lists
    _assert_one_balancer_each(running.fake, _services(core_api), ["before", "during"])


class _ThrottledWrites(KubeServiceWrites):
    """The real writes, except that the first status patch meets 429 with Retry-After: 30."""

    def __init__(self, kube: Kube) -> None:
        super().__init__(kube)
        self.status_calls: list[float] = []

    def patch_status(self, svc: ServiceView, status: dict[str, Any]) -> None:
        self.status_calls.append(time.monotonic())
        if len(self.status_calls) == 1:
            raise ApiError(429, "TooManyRequests", "slow down", retry_after=30.0)
        super().patch_status(svc, status)


def test_long_retry_after_from_the_api_is_respected(running: Running,
                                                    core_api: client.CoreV1Api) -> None:
    writes = _ThrottledWrites(running.kube)
    running.controller.reconciler.writes = writes
    queue = running.controller.queue
    assert queue is not None
    queue.base_delay = 0.2  # make a too-early retry visible within seconds
    core_api.create_namespaced_service("default", _lb("slowdown"))
    wait_for(lambda: writes.status_calls, 15, "the throttled status patch")
    # The refusal was handled (counted, its retry scheduled) and the watch events of the
    # Service's writes (its finalizer) were delivered and acted on: none brought it back.
    settle(running, core_api)
    assert sample(running, "lbctl_sync_errors_total", reason="api_429") == 1
    due = queue.due_in("default/slowdown")
    assert due is not None and due > 25, f"retry due in {due} s, before Retry-After (30 s)"
    assert len(writes.status_calls) == 1, "retried before Retry-After (30 s) passed"


# -- a controller stopped or killed mid-sync -------------------------------------------------
def test_graceful_stop_mid_ensure_then_restart(ctl_sandbox: Sandbox,
                                               core_api: client.CoreV1Api) -> None:
    """Stopped while ensures are in flight (1 s each): in-flight syncs finish; while it is down
    Services are created, changed to ClusterIP and deleted; a new controller over the same cloud
    converges with one balancer per wanted Service and nothing leaked."""
    cloud = FakeProvider(latency=1.0)
    first = start_controller(ctl_sandbox, CONFIG, cloud)
    names = [f"g{i}" for i in range(4)]
    for name in names:
        core_api.create_namespaced_service("default", _lb(name))
    wait_for(lambda: len(cloud.ops("ensure")) >= 2, 15, "ensures in flight")
    started = time.monotonic()
    stop_controller(first)
    assert time.monotonic() - started >= 0.2  # it waited for the in-flight ensures
    ensured_by_first = {c.service for c in cloud.ops("ensure")}
    for key in ensured_by_first:  # every ensure it began was finished and written
        obj = core_api.read_namespaced_service(key.split("/")[1], "default")
        assert _ips(obj), f"{key}: ensured but status not written before stopping"
    # While lbctl is down.
    core_api.create_namespaced_service("default", _lb("late"))
    core_api.patch_namespaced_service("g0", "default", {"spec": {"type": "ClusterIP"}})
    core_api.delete_namespaced_service("g1", "default")
    cloud.latency = 0.1
    second = start_controller(ctl_sandbox, CONFIG, cloud)
    try:
        want = ["g2", "g3", "late"]
        wait_for(lambda: _provisioned(core_api, cloud, want), 30, "converged after restart")

        def cleaned() -> bool:
            now = _services(core_api)
            return "g1" not in now and not now["g0"].metadata.finalizers

        wait_for(cleaned, 30, "g0 cleaned, g1 gone")
        _assert_one_balancer_each(cloud, _services(core_api), want)
        # g0 and g1 had balancers only if the first controller got to them; either way none
        # is left, and nothing was deleted that is still wanted.
        assert {c.service for c in cloud.ops("delete")} <= {"default/g0", "default/g1"}
        assert second.controller.collect_orphans() == 0
    finally:
        stop_controller(second)


class _HangingCloud(FakeProvider):
    """Ensures hang forever, as in a process that dies mid-call: `x*` Services after the
    cloud write, others before it. `unblock()` lets the hung threads end with an error."""

    def __init__(self) -> None:
        super().__init__()
        self.entered: list[str] = []
        self._release = threading.Event()

    def ensure(self, spec: LoadBalancerSpec) -> LoadBalancerStatus:
        self.entered.append(spec.ref.service.name)
        if spec.ref.service.name.startswith("x"):
            super().ensure(spec)  # the cloud has it; the status will never be written
        self._release.wait()
        raise RuntimeError("the process died")  # not a ProviderError: no status write either

    def unblock(self) -> None:
        self._release.set()


def test_killed_mid_ensure_then_restart(ctl_sandbox: Sandbox,
                                        core_api: client.CoreV1Api) -> None:
    """Killed inside ensure (once after the cloud write, once before it): the next controller
    adopts the half-made balancer under the same name and address, creates the other, and
    the cloud holds exactly one balancer per Service."""
    hanging = _HangingCloud()
    first = start_controller(ctl_sandbox, CONFIG, hanging)
    try:
        for name in ("x1", "y1"):
            core_api.create_namespaced_service("default", _lb(name))
        wait_for(lambda: sorted(hanging.entered) == ["x1", "y1"], 15, "both ensures hanging")
        half_made = dict(hanging.balancers)
        assert [b.ref.service.name for b in half_made.values()] == ["x1"]
        # "Kill": stop taking work without waiting for the hung syncs, drop the caches.
        first.controller.stop_leading(timeout=0.1)
        first.controller.services.stop()
        first.controller.nodes.stop()
        for name in ("x1", "y1"):
            obj = core_api.read_namespaced_service(name, "default")
            assert obj.metadata.finalizers == [STANDARD_FINALIZER] and not _ips(obj)
        cloud = FakeProvider(balancers=hanging.balancers, addresses=hanging.addresses)
        second = start_controller(ctl_sandbox, CONFIG, cloud)
        try:
            found = wait_for(lambda: _provisioned(core_api, cloud, ["x1", "y1"]), 30, "x1, y1")
            _assert_one_balancer_each(cloud, found, ["x1", "y1"])
            x_name = next(iter(half_made))
            assert _ips(found["x1"]) == [hanging.addresses[x_name]]  # the address it got first
            assert {c.name for c in cloud.ops("ensure") if c.service == "default/x1"} == {x_name}
            assert cloud.ops("delete") == []
        finally:
            stop_controller(second)
    finally:
        hanging.unblock()
        first.events.close()
        first.kube.close()


# -- an upstream cloud controller beside lbctl ------------------------------------------------
class UpstreamStandIn:
    """The upstream service controller's rules, run beside lbctl against the same cloud:

    - class-less LoadBalancer Services: add the standard finalizer, "ensure" `a<uid32>` in its
      own balancer table, write an ingress;
    - `needsCleanup` (standard finalizer and (deleting or type != LoadBalancer)) - which upstream
      decides without looking at the class: delete `a<uid32>` (from its table and from the
      shared cloud, wherever it is) and strip the standard finalizer.
    """

    def __init__(self, box: Sandbox, cloud: FakeProvider) -> None:
        self.api = client_for(box)
        self.core = client.CoreV1Api(self.api)
        self.cloud = cloud
        self.balancers: dict[str, str] = {}
        self.deleted: list[str] = []
        self.touched: set[str] = set()
        self.passes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upstream", daemon=True)

    def __enter__(self) -> UpstreamStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.api.close()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.pass_once()
            except client.ApiException:
                continue  # conflicts and not-found: the next pass decides again

    def pass_once(self) -> None:
        for obj in self.core.list_service_for_all_namespaces().items:
            meta, spec = obj.metadata, obj.spec
            key = f"{meta.namespace}/{meta.name}"
            finalizers = list(meta.finalizers or [])
            name = upstream_name(meta.uid)
            if STANDARD_FINALIZER in finalizers and (meta.deletion_timestamp is not None
                                                     or spec.type != "LoadBalancer"):
                self.touched.add(key)
                self.balancers.pop(name, None)
                self.cloud.balancers.pop(name, None)
                self.deleted.append(name)
                self.core.patch_namespaced_service(meta.name, meta.namespace, [
                    {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
                    {"op": "replace", "path": "/metadata/finalizers",
                     "value": [f for f in finalizers if f != STANDARD_FINALIZER]}])
            elif (spec.type == "LoadBalancer" and not spec.load_balancer_class
                  and meta.deletion_timestamp is None):
                self.touched.add(key)
                if STANDARD_FINALIZER not in finalizers:
                    self.core.patch_namespaced_service(meta.name, meta.namespace, [
                        {"op": "add", "path": "/metadata/finalizers",
                         "value": [*finalizers, STANDARD_FINALIZER]}])
                self.balancers[name] = key
                if not _ips(obj):
                    self.core.patch_namespaced_service_status(meta.name, meta.namespace, {
                        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}})
        self.passes += 1


CLASS_CONFIG = ("provider: fake\nloadBalancerClasses: [lbctl.io/metal]\n"
                "handleClasslessServices: false\ncontroller: {nodeSyncDebounceSeconds: 0.2}\n")


def test_upstream_cleanup_rule_beside_lbctl_harms_no_lbctl_service(
        ctl_sandbox: Sandbox, core_api: client.CoreV1Api) -> None:
    fake = FakeProvider()
    lbctl = start_controller(ctl_sandbox, CLASS_CONFIG, fake)
    metal = "lbctl.io/metal"
    try:
        with UpstreamStandIn(ctl_sandbox, fake) as upstream:
            core_api.create_namespaced_service("default", _lb("plain"))
            for name in ("metal", "metal-2"):
                core_api.create_namespaced_service("default",
                                                   _lb(name, loadBalancerClass=metal))
            # One that already carries the standard finalizer (left by an older controller).
            legacy = _lb("metal-3", loadBalancerClass=metal)
            legacy["metadata"]["finalizers"] = [STANDARD_FINALIZER]
            core_api.create_namespaced_service("default", legacy)
            ours = ["metal", "metal-2"]
            wait_for(lambda: _provisioned(core_api, fake, ours, LBCTL_FINALIZER), 30, "metal*")

            def legacy_ready() -> bool:
                obj = core_api.read_namespaced_service("metal-3", "default")
                return bool(_ips(obj)) and LBCTL_FINALIZER in obj.metadata.finalizers

            wait_for(legacy_ready, 30, "metal-3")
            wait_for(lambda: _ips(core_api.read_namespaced_service("plain", "default")), 30,
                     "upstream serves the class-less Service")
            passes = upstream.passes
            wait_for(lambda: upstream.passes >= passes + 10, 15, "upstream keeps running")
            settle(lbctl, core_api)  # lbctl saw upstream's writes to plain and acted on them
            # lbctl-class Services keep lbctl's finalizer and balancer; upstream left them be.
            found = _services(core_api)
            for name in ours:
                assert found[name].metadata.finalizers == [LBCTL_FINALIZER]
            assert upstream.touched == {"default/plain"}
            plain = found["plain"]
            assert plain.metadata.finalizers == [STANDARD_FINALIZER]
            assert not set(_conditions(plain)) & set(OURS)  # lbctl never touched it
            assert all(c.service != "default/plain" for c in fake.ops())
            names = set(fake.balancers)
            assert len(names) == 3 and not any(UPSTREAM_NAME.match(n) for n in names)
            uids = {found[n].metadata.uid for n in ("metal", "metal-2", "metal-3")}
            assert not {upstream_name(u) for u in uids} & names
            # Deletes: the class-less one (upstream's), two of lbctl's (one also holding the
            # standard finalizer, which upstream strips); metal-2 stays and must stay intact.
            fake.latency = 0.5  # lbctl's delete takes a while: upstream sees it terminating
            for name in ("plain", "metal", "metal-3"):
                core_api.delete_namespaced_service(name, "default")
            wait_for(lambda: not {"plain", "metal", "metal-3"} & set(_services(core_api)), 30,
                     "deletes done")
            # Upstream deleted only names of its own; lbctl deleted each of its balancers.
            assert set(upstream.deleted) == {upstream_name(plain.metadata.uid),
                                             upstream_name(found["metal-3"].metadata.uid)}
            assert set(upstream.deleted) & names == set()
            survivor = next(c.name for c in fake.ops("ensure") if c.service == "default/metal-2")
            assert {c.name for c in fake.ops("delete")} == names - {survivor}
            assert set(fake.balancers) == {survivor}
            kept = core_api.read_namespaced_service("metal-2", "default")
            assert kept.metadata.finalizers == [LBCTL_FINALIZER]
            assert _ips(kept) == [fake.addresses[survivor]]
            assert upstream.touched == {"default/plain", "default/metal-3"}
    finally:
        stop_controller(lbctl)


def test_type_change_of_a_class_service_cleans_up(ctl_sandbox: Sandbox,
                                                  core_api: client.CoreV1Api) -> None:
    fake = FakeProvider()
    lbctl = start_controller(ctl_sandbox, CLASS_CONFIG, fake)
    try:
        core_api.create_namespaced_service("default", _lb("m", loadBalancerClass="lbctl.io/metal"))
        wait_for(lambda: _provisioned(core_api, fake, ["m"], LBCTL_FINALIZER), 30, "m")
        core_api.patch_namespaced_service("m", "default", {"spec": {"type": "ClusterIP"}})
        obj = core_api.read_namespaced_service("m", "default")
        assert obj.spec.load_balancer_class is None  # upstream's dropTypeDependentFields
        wait_for(lambda: not core_api.read_namespaced_service("m", "default")
                 .metadata.finalizers, 10, "finalizer removed after the type change")
        assert [c.op for c in fake.ops() if c.op in ("ensure", "delete")] == ["ensure", "delete"]
    finally:
        stop_controller(lbctl)


# -- release ---------------------------------------------------------------------------------
def test_release_annotation_lets_go_without_deleting(running: Running,
                                                     core_api: client.CoreV1Api) -> None:
    core_api.create_namespaced_service("default", _lb("rel"))
    found = wait_for(lambda: _provisioned(core_api, running.fake, ["rel"]), 30, "rel")
    ip = _ips(found["rel"])
    balancer = next(iter(running.fake.balancers))
    core_api.patch_namespaced_service("rel", "default", {"metadata": {"annotations": {
        "lbctl.io/release": "true"}}})

    def released() -> Any:
        obj = core_api.read_namespaced_service("rel", "default")
        mine = set(_conditions(obj)) & set(OURS)
        return obj if not obj.metadata.finalizers and not _ips(obj) and not mine else None

    wait_for(released, 30, "finalizer and status removed")
    assert running.fake.ops("delete") == []
    assert set(running.fake.balancers) == {balancer}
    running.events.flush()
    reasons = [e.reason for e in core_api.list_namespaced_event(
        "default", field_selector="involvedObject.name=rel").items]
    assert "ReleasedLoadBalancer" in reasons and "DeletingLoadBalancer" not in reasons
    # Orphan collection leaves a released balancer alone while its Service exists.
    assert running.controller.collect_orphans() == 0
    assert set(running.fake.balancers) == {balancer}
    ensures = len(running.fake.ops("ensure"))
    settle(running, core_api)  # the release's own writes came back as events, were handled
    assert len(running.fake.ops("ensure")) == ensures  # nothing more to do
    assert running.controller.queue is not None
    assert running.controller.queue.due_in("default/rel") is None
    # Taking the annotation away adopts the same balancer again: same name, same address.
    core_api.patch_namespaced_service("rel", "default", {"metadata": {"annotations": {
        "lbctl.io/release": None}}})
    again = wait_for(lambda: _provisioned(core_api, running.fake, ["rel"]), 30, "re-adopted")
    assert _ips(again["rel"]) == ip
    assert {c.name for c in running.fake.ops("ensure")} == {balancer}


def test_released_balancer_survives_its_service(running: Running,
                                                core_api: client.CoreV1Api) -> None:
    core_api.create_namespaced_service("default", _lb("keep"))
    wait_for(lambda: _provisioned(core_api, running.fake, ["keep"]), 30, "keep")
    balancer = next(iter(running.fake.balancers))
    core_api.patch_namespaced_service("keep", "default", {"metadata": {"annotations": {
        "lbctl.io/release": "true"}}})
    wait_for(lambda: not core_api.read_namespaced_service("keep", "default")
             .metadata.finalizers, 30, "released")
    core_api.delete_namespaced_service("keep", "default")
    wait_for(lambda: "keep" not in _services(core_api), 15, "deleted")
    wait_for(lambda: running.controller.cache.service("default", "keep") is None, 15, "cache")
    running.controller.collect_orphans()
    assert balancer in running.fake.balancers, "the released balancer was deleted"


def test_a_provider_report_of_a_balancer_without_service_collects_it_at_once(
        running: Running, core_api: client.CoreV1Api) -> None:
    """A balancer host that was down while its Service was deleted comes back with the
    balancer (its state file); the provider reports it (`ChangeNotifier`), and the controller
    collects the orphan within a second or so instead of at the next resync (minutes: not
    reached in this test). A report about a live Service re-ensures it and deletes nothing."""
    core_api.create_namespaced_service("default", _lb("alive"))
    core_api.create_namespaced_service("default", _lb("gone"))
    wait_for(lambda: _provisioned(core_api, running.fake, ["alive", "gone"]), 30, "provisioned")
    specs = {s.ref.service.name: s for s in running.fake.balancers.values()}
    gone = specs["gone"]
    core_api.delete_namespaced_service("gone", "default")
    wait_for(lambda: gone.name not in running.fake.balancers, 30, "deleted")
    wait_for(lambda: running.controller.cache.service("default", "gone") is None, 15, "cache")
    settle(running, core_api)  # the delete's own events handled: nothing else will act
    running.fake.ensure(gone)  # the host came back with its copy
    listings = len(running.fake.ops("list_owned"))
    deletes = len(running.fake.ops("delete"))
    ensures = len(running.fake.ops("ensure"))
    for _ in range(3):  # three reports in a row: one collection
        running.controller._provider_changed(gone.ref)  # what the provider's subscription calls
    wait_for(lambda: gone.name not in running.fake.balancers, 10, "the orphan collected")
    assert len(running.fake.ops("list_owned")) == listings + 1
    assert [c.name for c in running.fake.ops("delete")[deletes:]] == [gone.name]
    running.controller._provider_changed(specs["alive"].ref)
    wait_for(lambda: len(running.fake.ops("ensure")) > ensures, 10, "alive re-ensured")
    settle(running, core_api)
    assert specs["alive"].name in running.fake.balancers
    assert len(running.fake.ops("list_owned")) == listings + 1  # no collection for a live one
    assert running.controller.config().controller.resync_seconds >= 60  # not the resync


# -- config reload ---------------------------------------------------------------------------
def _start_with(box: Sandbox, config: Callable[[], Config], fake: FakeProvider,
                metrics: Metrics) -> Running:
    assert box.options.kubeconfig is not None
    kube = Kube.connect(str(box.options.kubeconfig), qps=500, burst=1000)

    def make(_cache: Cache) -> Provider:
        return fake

    events = BackgroundEvents(KubeEventWriter(kube))
    controller = Controller(kube, config, make, KubeServiceWrites(kube), events, metrics)
    controller.start()
    controller.start_leading()
    return Running(controller, fake, events, {"current": config()}, kube)


def _reload_errors(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("lbctl_config_reload_errors_total")
    return float(value or 0.0)



@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[ConfigHolder, Metrics, Path]]:
    path = tmp_path / "config.yaml"
    path.write_text("provider: fake\nloadBalancerClasses: [lbctl.io/a]\n"
                    "handleClasslessServices: false\n")
    metrics = Metrics()
    config = ConfigHolder(path, metrics)
    yield config, metrics, path
    config.stop()


def test_config_reload_classes_take_effect_and_bad_files_keep_the_last_good(
        ctl_sandbox: Sandbox, core_api: client.CoreV1Api,
        holder: tuple[ConfigHolder, Metrics, Path]) -> None:
    config, metrics, path = holder
    fake = FakeProvider()
    run_ = _start_with(ctl_sandbox, config, fake, metrics)
    config.watch(interval=0.1)
    try:
        core_api.create_namespaced_service("default", _lb("sa", loadBalancerClass="lbctl.io/a"))
        core_api.create_namespaced_service("default", _lb("sb", loadBalancerClass="lbctl.io/b"))
        wait_for(lambda: _provisioned(core_api, fake, ["sa"], LBCTL_FINALIZER), 30, "sa")
        settle(run_, core_api)  # sb's ADDED event was delivered and acted on
        assert run_.controller.cache.service("default", "sb") is not None
        assert {c.service for c in fake.ops()} == {"default/sa"}  # sb is not ours yet
        # A new file adding lbctl.io/b: the poller swaps it in.
        write_changed(path, "provider: fake\nloadBalancerClasses: [lbctl.io/a, lbctl.io/b]\n"
                            "handleClasslessServices: false\n")
        wait_for(lambda: "lbctl.io/b" in config().load_balancer_classes, 10, "reloaded")
        assert _reload_errors(metrics) == 0
        core_api.create_namespaced_service("default", _lb("sc", loadBalancerClass="lbctl.io/b"))
        core_api.patch_namespaced_service("sb", "default", {"metadata": {"annotations": {
            "touch": "1"}}})  # any annotation change brings an existing Service back
        wait_for(lambda: _provisioned(core_api, fake, ["sa", "sb", "sc"], LBCTL_FINALIZER),
                 30, "sb and sc under the new class")
        good = config()
        # Broken files: refused, counted, the last good config keeps serving.
        for n, broken in enumerate(["loadBalancerClasses: [no-domain]\n",
                                    "controller: {workers: 0}\nbogus: 1\n",
                                    "loadBalancerClasses: [lbctl.io/a\n"], start=1):
            write_changed(path, broken)
            wait_for(lambda: _reload_errors(metrics) >= n, 10, f"error {n} counted")  # noqa: B023
            assert _reload_errors(metrics) == n
            assert config() is good
        # clusterName and provider changes need a restart: counted, identity kept.
        write_changed(path, "provider: aws\nclusterName: other\nloadBalancerClasses: [lbctl.io/a]\n"
                            "handleClasslessServices: false\n")
        wait_for(lambda: config().load_balancer_classes == ("lbctl.io/a",), 10, "reloaded")
        assert (config().provider, config().cluster_name) == ("fake", "kubernetes")
        assert _reload_errors(metrics) == 4
        # A Service of the class no longer owned is not taken on.
        core_api.create_namespaced_service("default", _lb("sd", loadBalancerClass="lbctl.io/b"))
        settle(run_, core_api)  # sd's ADDED event was delivered and acted on
        assert run_.controller.cache.service("default", "sd") is not None
        assert all(c.service != "default/sd" for c in fake.ops())
        obj = core_api.read_namespaced_service("sd", "default")
        assert not obj.metadata.finalizers and not _ips(obj)
    finally:
        config.stop()
        stop_controller(run_)


def test_config_reload_takes_on_existing_services_of_a_new_class(
        ctl_sandbox: Sandbox, core_api: client.CoreV1Api,
        holder: tuple[ConfigHolder, Metrics, Path]) -> None:
    config, metrics, path = holder
    fake = FakeProvider()
    run_ = _start_with(ctl_sandbox, config, fake, metrics)
    config.on_change = run_.controller.config_changed  # as lbctl.controller.runner.run wires it
    config.watch(interval=0.1)
    try:
        core_api.create_namespaced_service("default", _lb("sb", loadBalancerClass="lbctl.io/b"))
        settle(run_, core_api)  # sb is in the cache and was passed over: it exists already
        assert run_.controller.cache.service("default", "sb") is not None
        assert fake.ops() == []
        write_changed(path, "provider: fake\nloadBalancerClasses: [lbctl.io/a, lbctl.io/b]\n"
                            "handleClasslessServices: false\n")
        wait_for(lambda: "lbctl.io/b" in config().load_balancer_classes, 10, "reloaded")
        wait_for(lambda: _provisioned(core_api, fake, ["sb"], LBCTL_FINALIZER), 10, "sb")
    finally:
        config.stop()
        stop_controller(run_)


def test_dropping_a_class_does_not_strand_its_services(
        ctl_sandbox: Sandbox, core_api: client.CoreV1Api,
        holder: tuple[ConfigHolder, Metrics, Path]) -> None:
    config, metrics, path = holder
    fake = FakeProvider()
    run_ = _start_with(ctl_sandbox, config, fake, metrics)
    try:
        core_api.create_namespaced_service("default", _lb("sa", loadBalancerClass="lbctl.io/a"))
        wait_for(lambda: _provisioned(core_api, fake, ["sa"], LBCTL_FINALIZER), 30, "sa")
        write_changed(path, "provider: fake\nloadBalancerClasses: [lbctl.io/other]\n"
                            "handleClasslessServices: false\n")
        assert config.reload()
        # The Service still shows the address, so its balancer must not be collected ...
        run_.controller.collect_orphans()
        assert len(fake.balancers) == 1, "orphan collection deleted a balancer in use"
        # ... and deleting it must not hang on a finalizer nobody removes any more.
        core_api.delete_namespaced_service("sa", "default")
        wait_for(lambda: "sa" not in _services(core_api), 10, "sa deleted")
    finally:
        stop_controller(run_)


def test_config_reload_survives_a_bad_yaml_tag(holder: tuple[ConfigHolder, Metrics, Path]
                                               ) -> None:
    config, metrics, path = holder
    good = config()
    write_changed(path, "controller: {workers: !!int eight}\n")
    assert config.reload() is False
    assert config() is good
    assert _reload_errors(metrics) == 1



def test_config_reload_waits_out_a_file_truncated_mid_write(
        holder: tuple[ConfigHolder, Metrics, Path]) -> None:
    """An editor (or `>`) truncates before it writes: the poller that meets the empty file
    keeps the last good config and takes the file once it has content."""
    config, metrics, path = holder
    good = config()
    path.write_text("")
    assert config.reload() is False
    assert config() is good and _reload_errors(metrics) == 0
    write_changed(path, "provider: fake\nloadBalancerClasses: [lbctl.io/c]\n")
    assert config.reload() is True  # the stamp the empty file had was not taken as seen
    assert config().load_balancer_classes == ("lbctl.io/c",)
    assert _reload_errors(metrics) == 0

# -- a third-party provider plugin -----------------------------------------------------------
PLUGIN = '''
"""tinyplugin: a third-party lbctl provider, found through the `lbctl.providers` entry point."""
from providers.interface import Capabilities
from providers.spec import IngressPoint, LoadBalancerStatus, PortStatus

CALLS = []
BALANCERS = {}


class TinyProvider:
    capabilities = Capabilities(annotation_prefixes=("tiny.example.com/",))

    def __init__(self, prefix, cluster_name):
        self.prefix = prefix
        self.cluster_name = cluster_name

    def validate(self, spec):
        return None

    def ensure(self, spec):
        CALLS.append(("ensure", spec.name, spec.ref.service.key))
        BALANCERS.setdefault(spec.name, (spec, f"{self.prefix}{len(BALANCERS) + 10}"))
        BALANCERS[spec.name] = (spec, BALANCERS[spec.name][1])
        return LoadBalancerStatus(
            ingress=(IngressPoint(ip=BALANCERS[spec.name][1], ip_mode="VIP"),),
            ports=tuple(PortStatus(li.port, li.protocol) for li in spec.listeners))

    def plan(self, spec):
        return []

    def observe(self, ref):
        return None

    def delete(self, ref):
        CALLS.append(("delete", ref.name, ref.service.key))
        BALANCERS.pop(ref.name, None)

    def list_owned(self):
        return [spec.ref for spec, _ in BALANCERS.values()]

    def close(self):
        CALLS.append(("close", "", ""))


def create(settings, cluster_name, cluster):
    return TinyProvider(settings.get("prefix", "192.0.2."), cluster_name)
'''


@pytest.fixture
def tinyplugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A plugin "installed" into a temporary site dir on sys.path: a module plus a dist-info
    with `entry_points.txt`, exactly what pip would leave; nothing global changes."""
    site = tmp_path / "site"
    (site / "tinyplugin_lbctl").mkdir(parents=True)
    (site / "tinyplugin_lbctl" / "__init__.py").write_text(PLUGIN)
    info = site / "tinyplugin_lbctl-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyplugin-lbctl\n"
                                   "Version: 0.1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [lbctl.providers]
        tinyplugin = tinyplugin_lbctl:create
        """))
    (info / "RECORD").write_text("")
    assert "tinyplugin" not in registry.available()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "tinyplugin_lbctl", raising=False)
    yield site
    sys.modules.pop("tinyplugin_lbctl", None)


def test_third_party_provider_plugin_provisions(ctl_sandbox: Sandbox,
                                                core_api: client.CoreV1Api, tmp_path: Path,
                                                tinyplugin: Path) -> None:
    assert "tinyplugin" in registry.available()
    factory = registry.load("tinyplugin")
    module = sys.modules["tinyplugin_lbctl"]
    assert factory is module.create
    with pytest.raises(registry.UnknownProviderError, match="tinyplugin"):
        registry.load("tinyplugin-missing")
    config = tmp_path / "config.yaml"
    config.write_text("provider: tinyplugin\nplugins:\n  tinyplugin: {prefix: '192.0.2.'}\n")
    stop = threading.Event()
    codes: list[int] = []
    kubeconfig = str(ctl_sandbox.options.kubeconfig)
    thread = threading.Thread(target=lambda: codes.append(
        run(kubeconfig, config, "127.0.0.1:0", leader_elect=False, stop=stop)), daemon=True)
    thread.start()
    try:
        body = _lb("plug")
        body["metadata"]["annotations"] = {"tiny.example.com/size": "small"}
        core_api.create_namespaced_service("default", body)
        obj = wait_for(lambda: _ips(core_api.read_namespaced_service("plug", "default")), 30,
                       "ingress from the plugin")
        assert obj == ["192.0.2.10"]
        ensures = [c for c in module.CALLS if c[0] == "ensure"]
        assert len(ensures) == 1 and ensures[0][2] == "default/plug"
        spec = module.BALANCERS[ensures[0][1]][0]
        assert spec.annotation("tiny.example.com/size") == "small"  # its prefix reached it
        assert not UPSTREAM_NAME.match(spec.name)
        core_api.delete_namespaced_service("plug", "default")
        wait_for(lambda: "plug" not in _services(core_api), 30, "deleted through the plugin")
        assert [c[0] for c in module.CALLS if c[0] != "close"] == ["ensure", "delete"]
        assert module.BALANCERS == {}
    finally:
        stop.set()
        thread.join(60)
    assert codes == [0]
    assert module.CALLS[-1][0] == "close"
