"""Fault injection against the `gcp` provider: the controller, in this process, reaches the GCE
emulator, which answers a share of the calls with a fault, one kind per test: 429
rateLimitExceeded and 503 backendError on ~29% of any calls; 30% of the writes accepted and
their operations failed (DONE with a 503 error, the write not made); 20% of the writes made and
their replies lost (the connection dropped before the answer).

One scenario (six Services of several shapes created, two changed, a node excluded, all deleted)
runs fault-free once per module (its call count is the yardstick), then with each test's
faults. Both must converge to exactly the desired GCE objects (each Service's own and the
cluster's shared ones, group members following the nodes, nothing else of the cluster's) and end
with nothing of the cluster's left. The faulty run must show every kind of fault, stay under the
client's token buckets (calls in any 1 s window, per family, read from the emulator's call log)
and cost at most a bounded multiple of the fault-free run's calls.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from lbctl.controller.config import parse_config
from lbctl.controller.embedded import running_controller
from lbctl.emulators.gcp.server import GceEmulator
from lbctl.emulators.gcp.world import World
from lbctl.sandbox.app import Sandbox
from tests.conftest import client_for
from tests.providers.gcp.e2e import (
    EXCLUDE,
    LB_TYPE,
    NAMESPACE,
    Env,
    Snapshot,
    balancer_of,
    config_text,
    service_paths,
    shared_paths,
    wait_until,
    want_for,
    world_instances,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

RATES = {"read": 30.0, "write": 15.0, "operations": 30.0}
"""The client's token buckets (rate = burst): at most 2 x rate calls in any 1 s window."""
ARRIVAL_SLACK = 4
FAMILY_BUCKET = {"read": "read", "write": "write", "operation": "operations"}
SEED = 20261207
SHARES = {"http": 0.16, "operation": 0.3, "lost": 0.2}
"""Each fault rule's probability: http's two rules are tried in turn (~29% of the calls fail),
the others apply to writes."""
WRITES = ("compute.*.insert", "compute.*.delete", "compute.*.patch",
          "compute.instanceGroups.addInstances", "compute.instanceGroups.removeInstances")
CONVERGE_SECONDS = 120.0
MAX_COST_RATIO = 4.0
CALM: list[dict[str, Any]] = []
"""The fault-free run's call log (made by the first test of the module that needs it)."""

SHAPES: dict[str, dict[str, Any]] = {
    "plain": {},
    "multi": {"ports": [{"name": f"p{k}", "port": 8000 + k, "targetPort": 8080}
                        for k in range(3)]},
    "mixed": {"ports": [{"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                        {"name": "dns", "port": 53, "protocol": "UDP"}]},
    "local": {"externalTrafficPolicy": "Local"},
    "ranges": {"loadBalancerSourceRanges": ["198.51.100.0/24"]},
    "inside": {"annotations": {LB_TYPE: "Internal"}},
}


def fault_rules(mode: str) -> list[dict[str, Any]]:
    """`http`: 429 rateLimitExceeded and 503 backendError on any call; `operation`: a write's
    operation fails (503, the write not made); `lost`: a write is made and its reply lost."""
    share = SHARES[mode]
    if mode == "http":
        return [{"api": "compute.*", "status": 429, "reason": "rateLimitExceeded",
                 "message": "Rate Limit Exceeded", "probability": share, "count": None},
                {"api": "compute.*", "status": 503, "reason": "backendError",
                 "probability": share, "count": None}]
    return [{"api": api, "mode": mode, "status": 503, "reason": "backendError",
             "probability": share, "count": None} for api in WRITES]


@pytest.fixture
def env(emulator: GceEmulator, world: World, box: Sandbox) -> Iterator[Env]:
    rates = ", ".join(f"{k}: {v}" for k, v in RATES.items())
    config = parse_config(config_text(world, emulator.endpoint, rates=rates))
    emulator.settings(operationDelay=0.02)  # operations RUNNING for a moment: waits happen
    api = client_for(box)
    try:
        with running_controller(str(box.options.kubeconfig), config, qps=500,
                                burst=1000) as embedded:
            yield Env(client.CoreV1Api(api), emulator, world, box, embedded.controller)
    finally:
        api.close()


def _create(env: Env, prefix: str) -> list[str]:
    names = []
    for shape, extra in SHAPES.items():
        spec = dict(extra)
        name = f"{prefix}-{shape}"
        env.create(name, ports=spec.pop("ports", None),
                   annotations=spec.pop("annotations", None), **spec)
        names.append(name)
    return names


def converge_all(env: Env, names: list[str], members: dict[str, str]) -> None:
    """Every Service as it asks, and nothing else of the cluster's in GCE."""
    for name in names:
        env.converge(name, members, timeout=CONVERGE_SECONDS)

    def exactly() -> list[str]:
        snap = Snapshot.read(env.emu)
        expected: set[str] = set()
        for name in names:
            svc = env.read(name)
            want = want_for(svc, members)
            balancer = balancer_of(snap.of_service(want.uid))
            expected |= service_paths(env.world, want, balancer) | shared_paths(env.world, want)
        found = set(snap.of_cluster(env.world.cluster))
        if found != expected:
            return [f"the cluster's objects: extra {sorted(found - expected)}, missing "
                    f"{sorted(expected - found)}"]
        return []

    wait_until(exactly, CONVERGE_SECONDS, "exactly the Services' objects in GCE")


def scenario(env: Env, prefix: str) -> None:
    """Create six Services, change two, exclude a node, delete them all."""
    world = env.world
    names = _create(env, prefix)
    converge_all(env, names, world_instances(world))
    svc = env.read(f"{prefix}-plain")
    svc.spec.ports = [client.V1ServicePort(name="http", port=80, target_port=8080),
                      client.V1ServicePort(name="https", port=443, target_port=8443)]
    env.core.replace_namespaced_service(f"{prefix}-plain", NAMESPACE, svc)
    env.core.patch_namespaced_service(f"{prefix}-ranges", NAMESPACE, {"spec": {
        "loadBalancerSourceRanges": ["203.0.113.0/24", "192.0.2.0/24"]}})
    env.core.patch_node(world.nodes[0].name, {"metadata": {"labels": {EXCLUDE: "true"}}})
    converge_all(env, names, world_instances(world, without=(world.nodes[0].name,)))
    for name in names:
        env.core.delete_namespaced_service(name, NAMESPACE)
    env.gone(CONVERGE_SECONDS)
    env.core.patch_node(world.nodes[0].name, {"metadata": {"labels": {EXCLUDE: None}}})


def busiest_second(calls: list[dict[str, Any]]) -> Counter[str]:
    """Per family, the most calls that arrived within any 1 s window."""
    out: Counter[str] = Counter()
    by_family: dict[str, list[float]] = {}
    for c in calls:
        by_family.setdefault(c["family"], []).append(float(c["at"]))
    for family, stamps in by_family.items():
        stamps.sort()
        start = 0
        for end, stamp in enumerate(stamps):
            while stamp - stamps[start] >= 1.0:
                start += 1
            out[family] = max(out[family], end - start + 1)
    return out


def run_with_faults(env: Env, mode: str) -> None:
    """The scenario fault-free (once per module), then with `mode`'s faults; checks as the
    module says."""
    emu = env.emu
    if not CALM:  # once per module: the fault-free run is the same yardstick for each test
        emu.clear_calls()
        scenario(env, "calm")
        CALM.extend(emu.calls())
        assert emu.objects() == {}
    calm = CALM

    emu.clear_calls()
    emu.seed_random(SEED)
    for rule in fault_rules(mode):
        emu.add_fault(**rule)
    scenario(env, "rough")
    rough = emu.calls()
    fired = Counter({(f["mode"], f["status"]): 0 for f in emu.faults()})
    for f in emu.faults():
        fired[(f["mode"], f["status"])] += f["fired"]
    emu.clear_faults()
    assert emu.objects() == {}

    # every kind of fault asked for happened, at about the share asked for
    writes = sum(1 for c in rough if c["family"] == "write")
    print(f"\ncalls: calm {len(calm)}, rough {len(rough)} ({writes} writes); faults fired "
          f"{dict(fired)}; busiest second calm {dict(busiest_second(calm))}, rough "
          f"{dict(busiest_second(rough))}")
    if mode == "http":
        assert fired[("http", 429)] > 0 and fired[("http", 503)] > 0
        assert 0.18 < sum(fired.values()) / len(rough) < 0.4, (fired, len(rough))
    else:
        assert 0.5 * SHARES[mode] < fired[(mode, 503)] / writes < 1.5 * SHARES[mode], (
            fired, writes)
    # the client's token buckets hold under retries (rate = burst: 2 x rate in any second,
    # and a few more where calls that took their tokens apart arrive together under load)
    for family, most in busiest_second(rough).items():
        assert most <= 2 * RATES[FAMILY_BUCKET[family]] + ARRIVAL_SLACK, (family, most)
    # and the faults cost a bounded number of calls more
    assert len(rough) <= MAX_COST_RATIO * len(calm), (len(rough), len(calm))


def test_throttling_and_server_errors(env: Env) -> None:
    """429 rateLimitExceeded and 503 backendError on ~29% of all calls."""
    run_with_faults(env, "http")


def test_failed_operations(env: Env) -> None:
    """30% of the writes accepted and their operations failed (DONE with a 503 error)."""
    run_with_faults(env, "operation")


def test_lost_replies_to_writes(env: Env) -> None:
    """20% of the writes made and their replies lost: the retry meets what the lost write
    made (alreadyExists, memberAlreadyExists, notFound) and must take it as done."""
    run_with_faults(env, "lost")
