"""Fault injection against the `azure` provider: the controller, in this process, reaches the ARM
emulator, which answers about 30% of the calls with a fault: 429 TooManyRequests (with
Retry-After) and 503 ServiceUnavailable on any call, and on writes a long-running operation that
fails (`{"status": "Failed", "error": {"code": "InternalServerError"}}` behind an HTTP 200, the
write rolled back) or a lost reply (the write made, the connection dropped before the answer).

One scenario (six Services of several shapes, one internal, created; two changed; a node
excluded; all deleted) runs twice on the same controller: fault-free first (its call count is the
yardstick), then with faults. Both must converge to exactly the desired ARM objects (each
Service's frontend, rules, probes, public IP and NSG rules, the shared pools at the nodes,
nothing else of the cluster's) and end with nothing left. The faulty run must show every kind of
fault asked for, at about the share asked for, and cost at most a bounded multiple of the
fault-free run's calls.

The call rate: the controller runs with the product's default rate limits (read 10/s, write
2/s, operation polls 10/s, burst = rate) and the emulator enforces the same rates with a little
more burst (its own token buckets; a call finding one empty is refused 429
SubscriptionRequestsThrottled). Six Services' public IPs alone are six writes at once, twice the
emulator's write burst: a client that did not hold its rate under retries would be throttled.
Both runs must see no throttling at all (the 429s answered are exactly the injected ones).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from lbctl.controller.config import parse_config
from lbctl.controller.embedded import running_controller
from lbctl.emulators.azure.server import AzureEmulator
from lbctl.emulators.azure.world import World
from lbctl.sandbox.app import Sandbox
from tests.conftest import client_for
from tests.providers.azure.e2e import (
    EXCLUDE,
    INTERNAL,
    NAMESPACE,
    Env,
    config_text,
    world_nodes,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

RATES = {"read": 10.0, "write": 2.0, "operations": 10.0}
"""The client's token buckets (providers/azure/settings.py's defaults)."""
SERVER_RATES = {"read": {"rate": 10.0, "burst": 13.0}, "write": {"rate": 2.0, "burst": 3.0},
                "operation": {"rate": 10.0, "burst": 13.0}, "retryAfter": 1}
"""The emulator's buckets: the client's rates, a little more burst for arrival jitter."""
SEED = 20261207
SHARE = 0.15
"""Each fault rule's probability, tried in turn: with http and operation faults ~28% of the
calls and ~39% of the writes fail."""
WRITES = ("*.put", "*.delete")
CONVERGE_SECONDS = 150.0
MAX_COST_RATIO = 4.0

SHAPES: dict[str, dict[str, Any]] = {
    "plain": {},
    "multi": {"ports": [{"name": f"p{k}", "port": 8000 + k, "targetPort": 8080}
                        for k in range(3)]},
    "mixed": {"ports": [{"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                        {"name": "dns", "port": 53, "protocol": "UDP"}]},
    "local": {"externalTrafficPolicy": "Local"},
    "ranges": {"loadBalancerSourceRanges": ["198.51.100.0/24"]},
    "inside": {"annotations": {INTERNAL: "true"}},
}


def fault_rules(modes: tuple[str, ...]) -> list[dict[str, Any]]:
    """`http`: 429 TooManyRequests (Retry-After: 1) and 503 ServiceUnavailable on any call;
    `operation`: a write's operation fails; `lost`: a write is made and its reply lost. Each at
    SHARE, in turn."""
    rules: list[dict[str, Any]] = []
    if "http" in modes:
        rules += [{"api": "*", "status": 429, "code": "TooManyRequests",
                   "message": "Too many requests.", "retry_after": 1, "probability": SHARE,
                   "count": None},
                  {"api": "*", "status": 503, "code": "ServiceUnavailable",
                   "probability": SHARE, "count": None}]
    for mode, api in itertools.product([m for m in modes if m != "http"], WRITES):
        rules.append({"api": api, "mode": mode, "status": 500, "code": "InternalServerError",
                      "probability": SHARE, "count": None})
    return rules


@pytest.fixture
def env(emulator: AzureEmulator, world: World, box: Sandbox) -> Iterator[Env]:
    config = parse_config(config_text(world, emulator.endpoint, rates=RATES))
    emulator.set_rate_limit(SERVER_RATES)
    api = client_for(box)
    try:
        with running_controller(str(box.options.kubeconfig), config, qps=500,
                                burst=1000) as embedded:
            yield Env(client.CoreV1Api(api), emulator, world, box, embedded.controller)
    finally:
        api.close()
        emulator.set_rate_limit({})


def _create(env: Env, prefix: str) -> list[str]:
    names = []
    for shape, extra in SHAPES.items():
        spec = dict(extra)
        name = f"{prefix}-{shape}"
        env.create(name, ports=spec.pop("ports", None),
                   annotations=spec.pop("annotations", None), **spec)
        names.append(name)
    return names


def scenario(env: Env, prefix: str) -> None:
    """Create six Services, change two, exclude a node, delete them all."""
    world = env.world
    names = _create(env, prefix)
    env.converge(*names, timeout=CONVERGE_SECONDS)
    svc = env.read(f"{prefix}-plain")
    svc.spec.ports = [client.V1ServicePort(name="http", port=80, target_port=8080),
                      client.V1ServicePort(name="https", port=443, target_port=8443)]
    env.core.replace_namespaced_service(f"{prefix}-plain", NAMESPACE, svc)
    env.core.patch_namespaced_service(f"{prefix}-ranges", NAMESPACE, {"spec": {
        "loadBalancerSourceRanges": ["203.0.113.0/24", "192.0.2.0/24"]}})
    env.core.patch_node(world.nodes[0].name, {"metadata": {"labels": {EXCLUDE: "true"}}})
    env.converge(*names, nodes=world_nodes(world, without=(world.nodes[0].name,)),
                 timeout=CONVERGE_SECONDS)
    for name in names:
        env.delete(name)
    env.gone(CONVERGE_SECONDS)
    env.core.patch_node(world.nodes[0].name, {"metadata": {"labels": {EXCLUDE: None}}})


def run_with_faults(env: Env, modes: tuple[str, ...]) -> None:
    """The scenario fault-free, then with `modes`' faults; checks as the module says."""
    emu = env.emu
    emu.clear_calls()
    scenario(env, "calm")
    calm = emu.calls()
    assert emu.objects() == {}

    emu.clear_calls()
    emu.seed_random(SEED)
    for rule in fault_rules(modes):
        emu.add_fault(**rule)
    scenario(env, "rough")
    rough = emu.calls()
    fired = [(f["mode"], f["status"], f["fired"]) for f in emu.faults()]
    emu.clear_faults()
    assert emu.objects() == {}

    by_kind: Counter[tuple[str, int]] = Counter()
    for mode, status, count in fired:
        by_kind[(mode, status)] += count
    writes = sum(1 for c in rough if c["family"] == "write")
    statuses = Counter(c["status"] for c in rough)
    print(f"\ncalls: calm {len(calm)} ({dict(Counter(c['api'] for c in calm))}), rough "
          f"{len(rough)} ({writes} writes; statuses {dict(statuses)}); faults fired "
          f"{dict(by_kind)}")
    # every kind of fault asked for happened, at about the share asked for
    if "http" in modes:
        assert by_kind[("http", 429)] > 0 and by_kind[("http", 503)] > 0
        assert 0.1 < (by_kind[("http", 429)] + by_kind[("http", 503)]) / len(rough) < 0.35
    for mode in ("operation", "lost"):
        if mode in modes:
            assert 0.03 < by_kind[(mode, 500)] / writes < 0.3, (mode, by_kind, writes)
    # the client's token buckets held, retries included: the emulator's own buckets (same
    # rates) throttled nothing; every 429 answered is an injected one
    assert sum(1 for c in calm if c["status"] == 429) == 0
    assert statuses[429] == by_kind[("http", 429)], (statuses, by_kind)
    # and the faults cost a bounded number of calls more
    assert len(rough) <= MAX_COST_RATIO * len(calm), (len(rough), len(calm))


def test_throttling_errors_and_failed_operations(env: Env) -> None:
    """429s (with Retry-After) and 503s on any call, failed operations on writes: ~30% of the
    calls."""
    run_with_faults(env, ("http", "operation"))


def test_lost_replies_to_writes(env: Env) -> None:
    """15% of the writes made and their replies lost: the retry meets what the lost write made
    (412 on a guarded write, 404 on a delete) and must take it as done."""
    run_with_faults(env, ("lost",))
