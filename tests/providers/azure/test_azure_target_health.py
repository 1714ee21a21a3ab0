"""The Azure provider's target counts (`LoadBalancerStatus.targets`): one load-balancing rule's
health action per Service (`load_balancer_load_balancing_rules.begin_health`), read through
azure-mgmt-network against the ARM emulator, whose admin API says which backend is Down (Up
unless told otherwise).

What it costs: nothing on a create, a change or a change of nodes (None: unknown); on the
resync (nothing changed) the steady state's reads and exactly one health POST and its Location
poll, in the client's `health` token bucket; one attempt, and a failed read leaves the counts
unknown while the ensure succeeds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from lbctl.emulators.azure.server import AzureEmulator
from lbctl.emulators.azure.world import World
from providers.azure import names
from providers.azure.client import ArmClient
from providers.azure.health import counts
from providers.azure.provider import AzureProvider
from providers.azure.settings import AzureSettings
from providers.cluster import StaticView
from providers.spec import (
    BalancerRef,
    HealthCheck,
    Listener,
    LoadBalancerSpec,
    ServiceRef,
    Target,
    TargetHealth,
)

pytestmark = pytest.mark.integration

CLUSTER = "prod"
REF = BalancerRef("lb-default-web-abcdefghij", CLUSTER,
                  ServiceRef("default", "web", "0f9c2f4e-1111-2222-3333-444455556666"))
HEALTH, RESULT = "loadBalancingRules.health", "operationResults.get"
STEADY = {"loadBalancers.get": 1, "networkSecurityGroups.get": 1}
"""What a resync read before target counts (test_azure_provider's steady state: no write)."""
FAST = {"read": 1000.0, "write": 1000.0, "operations": 1000.0, "health": 1000.0}


def _settings(emulator: AzureEmulator, world: World, **rates: float) -> AzureSettings:
    return AzureSettings(subscription_id=world.subscription, resource_group=world.resource_group,
                         location=world.location, vnet_name=world.vnet,
                         subnet_name=world.subnet, security_group_name=world.nsg,
                         endpoint=emulator.endpoint, batch_window_seconds=0.02,
                         rate_limits={**FAST, **rates})


@pytest.fixture
def provider(emulator: AzureEmulator, world: World) -> Iterator[AzureProvider]:
    settings = _settings(emulator, world)
    made = AzureProvider(settings, CLUSTER, StaticView(),
                         client=ArmClient(settings, polling_interval=0.01, max_wait=0.05))
    yield made
    made.close()


def _spec(world: World, nodes: int = 3, **kw: Any) -> LoadBalancerSpec:
    vm = f"azure:///subscriptions/{world.subscription}/resourceGroups/{world.resource_group}/" \
         "providers/Microsoft.Compute/virtualMachines/"
    return LoadBalancerSpec(
        ref=REF, health_check=kw.pop("health_check", HealthCheck("TCP", None)),
        listeners=kw.pop("listeners", (Listener("http", "TCP", 80, 30080),)),
        targets=tuple(Target(n.name, vm + n.name, (n.ip,)) for n in world.nodes[:nodes]), **kw)


def _calls(emulator: AzureEmulator, arm: ArmClient) -> dict[str, int]:
    """ARM's counts since the last call, cleared; the client counted the same."""
    seen = emulator.counts()
    emulator.clear_calls()
    mine = dict(arm.reset_calls())
    folded: Counter[str] = Counter()  # the client counts a list as its kind's get
    for call, n in seen.items():
        folded[call.replace(".list", ".get")] += n
    assert folded == mine
    return seen


def test_the_resync_reads_one_rule_and_a_create_none(
        provider: AzureProvider, emulator: AzureEmulator, world: World) -> None:
    emulator.clear_calls()
    provider.arm.reset_calls()
    assert provider.ensure(_spec(world)).targets is None  # a create: no health read
    created = _calls(emulator, provider.arm)
    assert HEALTH not in created and RESULT not in created
    assert {k: v for k, v in created.items() if k.endswith((".put", ".delete"))} == {
        "publicIPAddresses.put": 1, "loadBalancers.put": 1, "networkSecurityGroups.put": 1}
    assert provider.ensure(_spec(world)).targets == TargetHealth(3, 3)  # the resync
    assert _calls(emulator, provider.arm) == {**STEADY, HEALTH: 1, RESULT: 1}
    emulator.set_health(node=world.nodes[1].name)  # its probe fails
    assert provider.ensure(_spec(world)).targets == TargetHealth(2, 3)
    assert _calls(emulator, provider.arm) == {**STEADY, HEALTH: 1, RESULT: 1}
    emulator.set_health(node=world.nodes[1].name, state="Up")
    assert provider.ensure(_spec(world)).targets == TargetHealth(3, 3)


def test_target_health_false_reads_no_health_at_all(emulator: AzureEmulator,
                                                    world: World) -> None:
    settings = replace(_settings(emulator, world), target_health=False)
    provider = AzureProvider(settings, CLUSTER, StaticView(),
                             client=ArmClient(settings, polling_interval=0.01, max_wait=0.05))
    try:
        provider.ensure(_spec(world))
        emulator.clear_calls()
        provider.arm.reset_calls()
        assert provider.ensure(_spec(world)).targets is None  # the resync ran ...
        assert _calls(emulator, provider.arm) == STEADY  # ... its reads, no health action
    finally:
        provider.close()


def test_one_rule_per_service_whatever_its_ports(
        provider: AzureProvider, emulator: AzureEmulator, world: World) -> None:
    listeners = (Listener("dns", "UDP", 53, 30053), Listener("http", "TCP", 80, 30080),
                 Listener("https", "TCP", 443, 30443))
    provider.ensure(_spec(world, listeners=listeners))
    emulator.clear_calls()
    lb = names.load_balancer(CLUSTER, False)
    # only the first rule with a probe is read: the TCP rule of port 80 (UDP has no probe),
    # so a backend down for port 443's rule alone goes unseen (the module docstring's why)
    emulator.set_health(node=world.nodes[0].name, load_balancer=lb,
                        rule=names.rule(REF.name, "TCP", 443))
    assert provider.ensure(_spec(world, listeners=listeners)).targets == TargetHealth(3, 3)
    (read,) = [c for c in emulator.calls() if c["api"] == HEALTH]
    assert read["path"].endswith(f"/loadBalancingRules/{names.rule(REF.name, 'TCP', 80)}/health")
    emulator.set_health(node=world.nodes[0].name)  # down for every rule: seen
    assert provider.ensure(_spec(world, listeners=listeners)).targets == TargetHealth(2, 3)


def test_a_change_of_nodes_alone_reads_nothing_and_says_nothing(
        provider: AzureProvider, emulator: AzureEmulator, world: World) -> None:
    provider.ensure(_spec(world))
    emulator.clear_calls()
    assert provider.ensure(_spec(world, nodes=2)).targets is None  # the members just changed
    assert HEALTH not in emulator.counts()
    assert provider.ensure(_spec(world, nodes=2)).targets == TargetHealth(2, 2)


@pytest.mark.parametrize("fault", [
    {"status": 429, "code": "SubscriptionRequestsThrottled", "retry_after": 1},
    {"status": 403, "code": "AuthorizationFailed"},
    {"mode": "operation", "code": "InternalServerError"},
], ids=["throttled", "forbidden", "failed-operation"])
def test_a_failed_health_read_costs_the_ensure_nothing(
        provider: AzureProvider, emulator: AzureEmulator, world: World,
        fault: dict[str, Any]) -> None:
    ip = provider.ensure(_spec(world)).ingress[0].ip
    emulator.add_fault(api=HEALTH, count=None, **fault)
    emulator.clear_calls()
    status = provider.ensure(_spec(world))
    assert status.ingress[0].ip == ip and status.targets is None
    assert emulator.counts()[HEALTH] == 1  # one attempt: no retry of a best-effort read
    emulator.clear_faults()
    assert provider.ensure(_spec(world)).targets == TargetHealth(3, 3)


def test_health_reads_take_their_own_bucket(emulator: AzureEmulator, world: World) -> None:
    waits: list[float] = []
    settings = _settings(emulator, world, health=1.0)  # one request a second, burst 1
    arm = ArmClient(settings, polling_interval=0.01, max_wait=0.05, sleep=waits.append)
    provider = AzureProvider(settings, CLUSTER, StaticView(), client=arm)
    try:
        provider.ensure(_spec(world))
        assert waits == []  # a create's requests never wait for the health bucket
        assert provider.ensure(_spec(world)).targets == TargetHealth(3, 3)
        assert len(waits) == 1 and 0.5 < waits[0] <= 1.0  # the Location poll, after the POST
    finally:
        provider.close()


@pytest.mark.unit
def test_counts_of_an_answer() -> None:
    assert counts({"up": 2, "down": 1}) == TargetHealth(2, 3)
    assert counts({"loadBalancerBackendAddresses": [{"state": "Up"}, {"state": "Down"}]}) == \
        TargetHealth(1, 2)
    assert counts({}) is None
