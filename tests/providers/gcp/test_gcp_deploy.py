"""`Deployer` against the GCE emulator through the real SDK: the desired balancer is built in
GCE's order, a second ensure writes nothing, a change writes only what differs (a forwarding
rule is replaced on the same address), and objects of another owner are left alone."""

from __future__ import annotations

import dataclasses

import pytest

from lbctl.emulators.gcp.server import GceEmulator
from lbctl.emulators.gcp.world import World, provider_id
from providers.errors import PermanentError
from providers.gcp.annotations import GcpOptions
from providers.gcp.client import GceClient
from providers.gcp.deploy import Deployer
from providers.gcp.desired import desired
from providers.spec import BalancerRef, HealthCheck, Listener, LoadBalancerSpec, ServiceRef, Target

pytestmark = pytest.mark.integration

CLUSTER = "prod"
REF = BalancerRef("lb-default-web-abcdefghij", CLUSTER,
                  ServiceRef("default", "web", "0f9c2f4e-1111-2222-3333-444455556666"))
TAGS = (f"{CLUSTER}-node",)


def _spec(world: World, ports: tuple[int, ...] = (80,)) -> LoadBalancerSpec:
    targets = tuple(Target(n.name, provider_id(world.project, n), (n.ip,))
                    for n in world.nodes)
    return LoadBalancerSpec(ref=REF, targets=targets, health_check=HealthCheck("TCP", None),
                            listeners=tuple(Listener(f"p{p}", "TCP", p, 30000 + p)
                                            for p in ports))


def test_create_then_nothing_then_only_the_difference(gce: GceClient, emulator: GceEmulator,
                                                     world: World) -> None:
    spec = _spec(world)
    deployer = Deployer(gce, CLUSTER)
    want = desired(spec, GcpOptions(), gce.settings, TAGS)
    emulator.clear_calls()
    ip = deployer.ensure(want)
    writes = [c for c in emulator.calls() if c["method"] != "GET"
              and "Operations" not in c.get("api", "")]
    order = [c["api"].split(".")[1] for c in writes if c.get("api")]
    assert order.index("regionHealthChecks") < order.index("regionBackendServices") \
        < order.index("forwardingRules")
    assert order.index("addresses") < order.index("forwardingRules")
    objects = emulator.objects()
    assert any(REF.name in n for n in objects.get("forwardingRules", [])), objects
    assert ip

    gce.reset_calls()
    assert deployer.ensure(want) == ip  # steady state: reads only
    assert [c for c in gce.reset_calls() if not c.endswith((".get", ".list", ".list_instances"))
            ] == []

    wider = desired(_spec(world, (80, 443)), GcpOptions(), gce.settings, TAGS)
    assert deployer.ensure(wider) == ip  # same reserved address
    calls = gce.reset_calls()
    assert calls["forwardingRules.delete"] == 1 and calls["forwardingRules.insert"] == 1
    assert calls["addresses.insert"] == 0 and calls["regionBackendServices.insert"] == 0


def test_an_object_of_another_owner_is_left_alone(gce: GceClient, world: World) -> None:
    spec = _spec(world)
    want = desired(spec, GcpOptions(), gce.settings, TAGS)
    other = dataclasses.replace(REF, cluster="someone-else")
    foreign = desired(dataclasses.replace(spec, ref=other), GcpOptions(), gce.settings, TAGS)
    Deployer(gce, "someone-else").health_check(foreign)  # same name, other owner
    own_hc = want.health_check
    assert own_hc.shared is True  # kube-proxy's check: per cluster name, so no clash...
    deployer = Deployer(gce, CLUSTER)
    Deployer(gce, "someone-else").firewall(*foreign.firewalls[0][:1],
                                           {**foreign.firewalls[0][1],
                                            "destinationRanges": ["10.0.0.1/32"]})
    with pytest.raises(PermanentError, match="not this Service's"):
        deployer.ensure(want)  # ...but the clients' firewall has the balancer's own name
