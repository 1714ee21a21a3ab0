"""The GCP provider's target counts (`LoadBalancerStatus.targets`): GCE's
`regionBackendServices.getHealth`, read through google-cloud-compute against the emulator,
whose admin API sets what the probers say (HEALTHY unless told otherwise, per instance or per
instance behind one backend service).

What it costs: one getHealth per backend service and zone of its groups, on the full ensure (the
resync) only; the node-only path stays free and reports no counts (unknown, not stale)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lbctl.emulators.gcp.server import GceEmulator
from lbctl.emulators.gcp.world import World, provider_id
from providers.cluster import StaticView
from providers.gcp import names
from providers.gcp.client import GceClient
from providers.gcp.health import group_counts
from providers.gcp.provider import GcpProvider
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
HEALTH = "regionBackendServices.get_health"


@pytest.fixture
def provider(gce: GceClient, world: World) -> Iterator[GcpProvider]:
    made = GcpProvider(gce.settings, CLUSTER, StaticView(), client=gce)
    yield made
    made.close()


def _spec(world: World, nodes: int = 3) -> LoadBalancerSpec:
    return LoadBalancerSpec(
        ref=REF, health_check=HealthCheck("TCP", None),
        listeners=(Listener("http", "TCP", 80, 30080), Listener("dns", "UDP", 53, 30053)),
        targets=tuple(Target(n.name, provider_id(world.project, n), (n.ip,))
                      for n in world.nodes[:nodes]))


def _instance(world: World, index: int) -> str:
    node = world.nodes[index]
    return f"zones/{node.zone}/instances/{node.name}"


def test_counts_come_from_get_health_once_per_backend_service_and_zone(
        provider: GcpProvider, gce: GceClient, world: World, emulator: GceEmulator) -> None:
    zones = len({n.zone for n in world.nodes})
    gce.reset_calls()
    assert provider.ensure(_spec(world)).targets == TargetHealth(3, 3)
    assert gce.reset_calls()[HEALTH] == 2 * zones  # TCP and UDP backend services
    emulator.set_health(_instance(world, 1), "UNHEALTHY")
    status = provider.ensure(_spec(world))  # the resync: reads it all, health included
    calls = gce.reset_calls()
    assert status.targets == TargetHealth(2, 3)
    assert calls[HEALTH] == 2 * zones
    assert [c for c in calls if c.endswith((".insert", ".delete", ".patch"))] == []


def test_the_worst_backend_service_counts(provider: GcpProvider, world: World,
                                          emulator: GceEmulator) -> None:
    provider.ensure(_spec(world))
    udp = names.backend_service(REF.name, "UDP")
    emulator.set_health(_instance(world, 0), "UNHEALTHY", backend_service=f"regions/"
                        f"{world.region}/backendServices/{udp}")
    emulator.set_health(_instance(world, 2), "TIMEOUT", backend_service=f"regions/"
                        f"{world.region}/backendServices/{udp}")
    assert provider.ensure(_spec(world)).targets == TargetHealth(1, 3)  # UDP's view, not TCP's


def test_a_change_of_nodes_alone_reads_nothing_and_says_nothing(
        provider: GcpProvider, gce: GceClient, world: World) -> None:
    provider.ensure(_spec(world))
    gce.reset_calls()
    status = provider.ensure(_spec(world, nodes=2))
    assert status.targets is None  # the members just changed: an earlier read is stale
    assert gce.reset_calls()[HEALTH] == 0
    assert provider.ensure(_spec(world, nodes=2)).targets == TargetHealth(2, 2)


def test_a_failed_health_read_costs_the_ensure_nothing(
        provider: GcpProvider, world: World, emulator: GceEmulator) -> None:
    provider.ensure(_spec(world))
    emulator.add_fault(api="compute.regionBackendServices.getHealth", status=403,
                       reason="forbidden", message="no compute.regionBackendServices.get",
                       count=None)
    status = provider.ensure(_spec(world))
    assert status.ingress and status.targets is None


@pytest.mark.unit
def test_an_instance_behind_two_forwarding_rules_counts_once() -> None:
    answer = {"healthStatus": [
        {"instance": "i/1", "healthState": "HEALTHY", "forwardingRule": "fr-a"},
        {"instance": "i/1", "healthState": "UNHEALTHY", "forwardingRule": "fr-b"},
        {"instance": "i/2", "healthState": "HEALTHY", "forwardingRule": "fr-a"},
        {"instance": "i/2", "healthState": "HEALTHY", "forwardingRule": "fr-b"}]}
    assert group_counts(answer) == ({"i/1", "i/2"}, {"i/1"})
    assert group_counts({"kind": "compute#backendServiceGroupHealth"}) == (set(), set())
