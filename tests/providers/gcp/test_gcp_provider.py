"""`GcpProvider` against the GCE emulator through the real SDK: the Provider protocol end to end
(ensure, a steady state of reads, observe, list_owned, release, delete that leaves nothing of
the balancer's and is safe to repeat)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lbctl.emulators.gcp.server import GceEmulator
from lbctl.emulators.gcp.world import World, provider_id
from lbctl.parsing import ConfigError
from providers.cluster import StaticView
from providers.errors import PermanentError
from providers.gcp import create
from providers.gcp.client import READS, GceClient
from providers.gcp.provider import GcpProvider
from providers.spec import BalancerRef, HealthCheck, Listener, LoadBalancerSpec, ServiceRef, Target

pytestmark = pytest.mark.integration

CLUSTER = "prod"
REF = BalancerRef("lb-default-web-abcdefghij", CLUSTER,
                  ServiceRef("default", "web", "0f9c2f4e-1111-2222-3333-444455556666"))


@pytest.fixture
def provider(gce: GceClient, world: World) -> Iterator[GcpProvider]:
    made = GcpProvider(gce.settings, CLUSTER, StaticView(), client=gce)
    yield made
    made.close()


def _spec(world: World) -> LoadBalancerSpec:
    return LoadBalancerSpec(
        ref=REF, health_check=HealthCheck("TCP", None),
        listeners=(Listener("http", "TCP", 80, 30080), Listener("dns", "UDP", 53, 30053)),
        targets=tuple(Target(n.name, provider_id(world.project, n), (n.ip,))
                      for n in world.nodes))


def test_the_provider_protocol_end_to_end(provider: GcpProvider, world: World,
                                          emulator: GceEmulator) -> None:
    before = emulator.objects()
    status = provider.ensure(_spec(world))
    ip = status.ingress[0].ip
    assert ip and status.degraded is None
    provider.gce.reset_calls()
    assert provider.ensure(_spec(world)).ingress[0].ip == ip
    writes = [c for c in provider.gce.reset_calls() if c.rsplit(".", 1)[1] not in READS]
    assert writes == []  # the steady state reads only (node tags were read once, cached)
    observed = provider.observe(REF)
    assert observed is not None and observed.ingress[0].ip == ip
    assert list(provider.list_owned()) == [REF]
    provider.delete(REF)
    after = emulator.objects()
    leftover = {kind: [n for n in found if REF.name in n] for kind, found in after.items()}
    assert all(not v for v in leftover.values()), leftover  # nothing of the balancer's
    assert set(after) - set(before) <= {"healthChecks", "regionHealthChecks", "firewalls",
                                        "instanceGroups"}  # the cluster's shared objects only
    provider.delete(REF)  # again: not-found is success
    assert provider.observe(REF) is None and list(provider.list_owned()) == []


def test_release_stops_owning_without_deleting(provider: GcpProvider, world: World) -> None:
    provider.ensure(_spec(world))
    provider.release(REF)
    assert list(provider.list_owned()) == []
    assert provider.observe(REF) is not None  # still there, no longer listed as ours


def test_bad_input_is_refused_naming_the_field(provider: GcpProvider, world: World) -> None:
    spec = _spec(world)
    alien = LoadBalancerSpec(ref=REF, listeners=spec.listeners, health_check=spec.health_check,
                             targets=(Target("m1", "metal://rack/1", ("10.0.0.1",)),))
    with pytest.raises(PermanentError, match="no target is a GCE instance"):
        provider.ensure(alien)
    with pytest.raises(ConfigError, match=r"gcp\.project: required"):
        create({"region": "us-central1"}, CLUSTER, StaticView())
