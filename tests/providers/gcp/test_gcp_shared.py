"""`GcpProvider` against the GCE emulator: addresses the user owns, and the cluster's shared
objects.

- `spec.loadBalancerIP` on an external balancer is the user's reserved address, found by IP,
  used and never released; one that is not reserved is refused naming the field before any
  write; switching to it releases our own address, switching back reserves ours again.
- An internal balancer's `loadBalancerIP` is ours: a change replaces the address.
- Instance-group members follow the targets, and what the groups hold is remembered: the
  second Service after a node change costs no call at all; a resync still reads everything.
- The kube-proxy check, its firewall and the groups go with the last Service, and stay while
  the cluster view shows another; GCE's in-use refusal keeps them when the view is wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from lbctl.emulators.gcp.server import GceEmulator
from lbctl.emulators.gcp.world import World, provider_id
from providers.cluster import ServicePort, ServiceView, StaticView
from providers.errors import PermanentError
from providers.gcp.client import GceClient
from providers.gcp.provider import GcpProvider
from providers.spec import BalancerRef, HealthCheck, Listener, LoadBalancerSpec, ServiceRef, Target

pytestmark = pytest.mark.integration

CLUSTER = "prod"
WEB = BalancerRef("lb-default-web-abcdefghij", CLUSTER,
                  ServiceRef("default", "web", "0f9c2f4e-1111-2222-3333-444455556666"))
API = BalancerRef("lb-default-api-bcdefghijk", CLUSTER,
                  ServiceRef("default", "api", "1f9c2f4e-1111-2222-3333-444455556666"))
INTERNAL = (("networking.gke.io/load-balancer-type", "Internal"),)


@pytest.fixture
def view() -> StaticView:
    return StaticView()


@pytest.fixture
def provider(gce: GceClient, world: World, view: StaticView) -> Iterator[GcpProvider]:
    made = GcpProvider(gce.settings, CLUSTER, view, client=gce)
    yield made
    made.close()


def _spec(world: World, ref: BalancerRef = WEB, nodes: int | None = None,
          **kw: object) -> LoadBalancerSpec:
    chosen = world.nodes if nodes is None else world.nodes[:nodes]
    return LoadBalancerSpec(
        ref=ref, health_check=HealthCheck("TCP", None),
        listeners=(Listener("http", "TCP", 80, 30080),),
        targets=tuple(Target(n.name, provider_id(world.project, n), (n.ip,)) for n in chosen),
        **kw)  # type: ignore[arg-type]


def _service(ref: BalancerRef) -> ServiceView:
    return ServiceView(ref.service.namespace, ref.service.name, ref.service.uid, "1",
                       "LoadBalancer", (ServicePort("http", "TCP", 80, 30080, 80),))


def _reserve(gce: GceClient, name: str) -> str:
    """A regional external address the user reserved (GCE picks the IP)."""
    s = gce.settings
    gce.write("addresses", "insert", scope=("region", s.region), project=s.project,
              region=s.region, address_resource=gce.compute.Address(name=name))
    found = gce.get("addresses", project=s.project, region=s.region, address=name)
    assert found is not None
    return str(found["address"])


def _names(emulator: GceEmulator, kind: str) -> list[str]:
    return sorted(link.rsplit("/", 1)[1] for link in emulator.objects().get(kind, []))


def _rule_ips(gce: GceClient) -> set[str]:
    s = gce.settings
    return {r["IPAddress"] for r in gce.list("forwardingRules", project=s.project,
                                             region=s.region)}


def test_an_external_load_balancer_ip_is_the_users_reserved_address(
        provider: GcpProvider, gce: GceClient, emulator: GceEmulator, world: World) -> None:
    ip = _reserve(gce, "mine")
    status = provider.ensure(_spec(world, requested_ips=(ip,)))
    assert status.ingress[0].ip == ip and _rule_ips(gce) == {ip}
    assert _names(emulator, "addresses") == ["mine"]  # none of ours
    gce.reset_calls()
    provider.ensure(_spec(world, requested_ips=(ip,)))
    calls = gce.reset_calls()
    assert calls["addresses.list"] == 1  # found again by IP ...
    assert [c for c in calls if c.endswith((".insert", ".delete", ".patch"))] == []  # ... only
    provider.delete(WEB)
    assert list(emulator.objects()) == ["addresses"]  # nothing else is left ...
    assert _names(emulator, "addresses") == ["mine"]  # ... and the user's address survives


def test_an_unreserved_external_ip_is_refused_before_any_write(
        provider: GcpProvider, emulator: GceEmulator, world: World) -> None:
    emulator.clear_calls()
    with pytest.raises(PermanentError) as info:
        provider.ensure(_spec(world, requested_ips=("35.200.9.9",)))
    assert info.value.field == "spec.loadBalancerIP"
    assert "35.200.9.9 is not a reserved address" in str(info.value)
    counts = emulator.counts()
    assert counts.get("compute.addresses.list") == 1  # it looked ...
    assert [a for a in counts if a.endswith((".insert", ".delete", ".patch"))] == []  # only
    assert emulator.objects() == {}


def test_switching_to_the_users_address_and_back(provider: GcpProvider, gce: GceClient,
                                                 emulator: GceEmulator, world: World) -> None:
    ours = provider.ensure(_spec(world)).ingress[0].ip
    assert _names(emulator, "addresses") == [WEB.name]
    theirs = _reserve(gce, "mine")
    assert provider.ensure(_spec(world, requested_ips=(theirs,))).ingress[0].ip == theirs
    assert _rule_ips(gce) == {theirs}
    assert _names(emulator, "addresses") == ["mine"]  # ours released once the rules moved
    back = provider.ensure(_spec(world)).ingress[0].ip
    assert back not in (None, theirs) and _rule_ips(gce) == {back}
    assert _names(emulator, "addresses") == sorted(["mine", WEB.name])
    assert ours  # a new reservation: GCE may or may not hand out the old IP again


def test_an_internal_load_balancer_ip_change_replaces_our_address(
        provider: GcpProvider, gce: GceClient, emulator: GceEmulator, world: World) -> None:
    first = provider.ensure(_spec(world, annotations=INTERNAL,
                                  requested_ips=("10.128.0.50",))).ingress[0].ip
    assert first == "10.128.0.50" and _rule_ips(gce) == {first}
    gce.reset_calls()
    second = provider.ensure(_spec(world, annotations=INTERNAL,
                                   requested_ips=("10.128.0.51",))).ingress[0].ip
    calls = gce.reset_calls()
    assert second == "10.128.0.51" and _rule_ips(gce) == {second}
    assert (calls["addresses.delete"], calls["addresses.insert"]) == (1, 1)
    assert (calls["forwardingRules.delete"], calls["forwardingRules.insert"]) == (1, 1)
    assert _names(emulator, "addresses") == [WEB.name]


def _members(gce: GceClient, world: World) -> set[str]:
    s = gce.settings
    out: set[str] = set()
    for zone in world.zones:
        if gce.get("instanceGroups", project=s.project, zone=zone,
                   instance_group=f"lbctl-{CLUSTER}") is None:
            continue
        out |= {i["instance"].rsplit("/", 1)[1] for i in gce.list(
            "instanceGroups", "list_instances", project=s.project, zone=zone,
            instance_group=f"lbctl-{CLUSTER}",
            instance_groups_list_instances_request_resource=gce.compute
            .InstanceGroupsListInstancesRequest(instance_state="ALL"))}
    return out


def test_group_members_follow_the_targets_and_are_remembered(
        provider: GcpProvider, gce: GceClient, world: World) -> None:
    provider.ensure(_spec(world, WEB))
    provider.ensure(_spec(world, API))
    assert _members(gce, world) == {n.name for n in world.nodes}
    gce.reset_calls()
    provider.ensure(_spec(world, WEB, nodes=2))  # the third node left the cluster
    first = gce.reset_calls()
    assert first["instanceGroups.remove_instances"] == 1
    assert first["instanceGroups.add_instances"] == 0
    assert [c for c in first if not c.startswith("instanceGroups.")] == []  # nodes only
    status = provider.ensure(_spec(world, API, nodes=2))
    assert status.ingress[0].ip  # the second ensure ran, and cost nothing: the groups
    assert +gce.reset_calls() == Counter()  # were remembered, the rest had not changed
    assert _members(gce, world) == {n.name for n in world.nodes[:2]}
    provider.ensure(_spec(world, API, nodes=2))  # nothing changed: a resync reads it all
    resync = gce.reset_calls()
    assert resync["regionBackendServices.get"] == resync["forwardingRules.get"] == 1
    assert [c for c in resync if c.endswith((".insert", ".delete", ".patch"))] == []
    gce.reset_calls()
    for ref in (WEB, API):  # back: one add in all
        provider.ensure(_spec(world, ref))
    assert gce.reset_calls()["instanceGroups.add_instances"] == 1
    assert _members(gce, world) == {n.name for n in world.nodes}


def test_shared_objects_go_with_the_last_service(provider: GcpProvider, view: StaticView,
                                                 emulator: GceEmulator, world: World) -> None:
    provider.ensure(_spec(world, WEB))
    provider.ensure(_spec(world, API))
    view.by_key = {"default/web": _service(WEB), "default/api": _service(API)}
    shared = {"instanceGroups": [f"lbctl-{CLUSTER}"] * len(world.zones),
              "healthChecks": [f"lbctl-{CLUSTER}-node-hc"],
              "firewalls": [f"lbctl-{CLUSTER}-node-hc-fw"]}
    del view.by_key["default/web"]  # web is deleted: api still needs them
    provider.delete(WEB)
    left = {k: _names(emulator, k) for k in shared}
    assert left["instanceGroups"] == shared["instanceGroups"]
    assert left["healthChecks"] == shared["healthChecks"]
    assert f"lbctl-{CLUSTER}-node-hc-fw" in left["firewalls"]
    view.by_key.clear()
    provider.delete(API)
    assert emulator.objects() == {}


def test_the_cluster_view_is_wrong_gce_keeps_what_is_in_use(
        provider: GcpProvider, gce: GceClient, emulator: GceEmulator, world: World) -> None:
    provider.ensure(_spec(world, WEB))
    provider.ensure(_spec(world, API))  # the view shows neither: both look like the last
    gce.reset_calls()
    provider.delete(WEB)
    calls = gce.reset_calls()
    assert calls["instanceGroups.delete"] == len(world.zones)  # tried, refused: in use
    assert calls["regionHealthChecks.delete"] == 1
    assert calls["firewalls.delete"] == 1  # web's own rule only: the check stayed
    assert _names(emulator, "instanceGroups") == [f"lbctl-{CLUSTER}"] * len(world.zones)
    provider.ensure(_spec(world, API))
    assert [c for c in gce.reset_calls() if c.endswith((".insert", ".delete"))] == []
    provider.delete(API)
    assert emulator.objects() == {}


def test_a_mixed_cluster_shares_one_prober_rule(provider: GcpProvider, gce: GceClient,
                                                emulator: GceEmulator, world: World) -> None:
    provider.ensure(_spec(world, WEB))
    provider.ensure(_spec(world, API, annotations=INTERNAL))
    gce.reset_calls()
    provider.ensure(_spec(world, WEB))
    provider.ensure(_spec(world, API, annotations=INTERNAL))
    assert [c for c in gce.reset_calls() if c.endswith((".insert", ".delete", ".patch"))] == []
    provider.delete(WEB)
    provider.delete(API)
    assert emulator.objects() == {}
