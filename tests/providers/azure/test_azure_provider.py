"""`AzureProvider` against the ARM emulator through azure-mgmt-network: the Provider protocol
end to end on the cluster's shared load balancer.

- ensure builds our public IP, the shared LB (frontend, rules, probes, the pool at the nodes)
  and the NSG rules; a second ensure (the resync) writes nothing and reads, besides, one rule's
  health: the target counts (a create reports none); observe and list_owned find it;
  delete leaves nothing (the LB goes with its last frontend, the public IP after it).
- 40 Services ensured at once share one LB and cost a handful of LB writes, not 40, and every
  frontend is there; a node change with all of them costs one LB write.
- A concurrent writer bumping the LB's etag mid-way loses nothing (412 -> re-read, re-apply).
- The user's public IP by loadBalancerIP is found by address and survives the delete; one at an
  address nobody holds is refused naming the field, before any write.
- Internal: a private frontend in the subnet at the requested IP; moving external -> internal
  takes the Service out of the external LB and releases our public IP.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from lbctl.emulators.azure.client import network_client
from lbctl.emulators.azure.server import AzureEmulator
from lbctl.emulators.azure.world import World
from providers.azure import create, names
from providers.azure.client import ArmClient
from providers.azure.provider import AzureProvider
from providers.azure.settings import AzureSettings
from providers.cluster import StaticView
from providers.errors import PermanentError
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
INTERNAL = (("service.beta.kubernetes.io/azure-load-balancer-internal", "true"),)


@pytest.fixture
def settings(emulator: AzureEmulator, world: World) -> AzureSettings:
    return AzureSettings(subscription_id=world.subscription, resource_group=world.resource_group,
                         location=world.location, vnet_name=world.vnet,
                         subnet_name=world.subnet, security_group_name=world.nsg,
                         endpoint=emulator.endpoint, batch_window_seconds=0.05,
                         rate_limits={"read": 1000.0, "write": 1000.0, "operations": 1000.0})


@pytest.fixture
def provider(settings: AzureSettings) -> Iterator[AzureProvider]:
    arm = ArmClient(settings, polling_interval=0.01, max_wait=0.05)
    made = AzureProvider(settings, CLUSTER, StaticView(), client=arm)
    yield made
    made.close()


@pytest.fixture
def net(emulator: AzureEmulator) -> Any:
    sdk = importlib.import_module("azure.mgmt.network")
    return network_client(sdk.NetworkManagementClient, emulator.endpoint,
                          emulator.subscription)


def ref(n: int) -> BalancerRef:
    return BalancerRef(f"lb-default-svc{n}-abcdefghij", CLUSTER,
                       ServiceRef("default", f"svc{n}", f"00000000-0000-0000-0000-{n:012d}"))


def spec(world: World, n: int, nodes: int | None = None, **kw: Any) -> LoadBalancerSpec:
    vm = f"azure:///subscriptions/{world.subscription}/resourceGroups/{world.resource_group}/" \
         "providers/Microsoft.Compute/virtualMachines/"
    chosen = world.nodes if nodes is None else world.nodes[:nodes]
    return LoadBalancerSpec(
        ref=ref(n), listeners=kw.pop("listeners", (Listener("http", "TCP", 80, 30080 + n),)),
        targets=tuple(Target(v.name, vm + v.name, (v.ip,)) for v in chosen),
        health_check=kw.pop("health_check", HealthCheck("TCP", None)), **kw)


def lb(net: Any, world: World, internal: bool = False) -> dict[str, Any] | None:
    name = names.load_balancer(CLUSTER, internal)
    found = [x for x in net.load_balancers.list(world.resource_group) if x.name == name]
    return found[0].as_dict() if found else None


def frontends(body: dict[str, Any] | None) -> list[str]:
    return sorted(f["name"] for f in ((body or {}).get("properties") or {}).get(
        "frontendIPConfigurations", []))


def pool_ips(body: dict[str, Any] | None) -> set[str]:
    pools = ((body or {}).get("properties") or {}).get("backendAddressPools", [])
    return {a["properties"]["ipAddress"] for p in pools
            for a in (p.get("properties") or {}).get("loadBalancerBackendAddresses", [])}


def writes(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if k.endswith((".put", ".delete", ".patch"))}


def test_the_provider_protocol_end_to_end(provider: AzureProvider, emulator: AzureEmulator,
                                          net: Any, world: World) -> None:
    status = provider.ensure(spec(world, 1))
    ip = status.ingress[0].ip
    assert ip and status.degraded is None
    assert status.targets is None  # a create reads no health: unknown, never a guess
    body = lb(net, world)
    assert frontends(body) == [names.frontend(ref(1).name, ref(1).service.uid)]
    assert pool_ips(body) == {v.ip for v in world.nodes}
    rules = [r.name for r in net.security_rules.list(world.resource_group, world.nsg)]
    assert names.security_rule(ref(1).name, "TCP", "Internet") in rules
    provider.arm.reset_calls()
    steady = provider.ensure(spec(world, 1))
    assert steady.ingress[0].ip == ip
    calls = dict(provider.arm.reset_calls())
    assert writes(calls) == {}  # the steady state reads only
    assert steady.targets == TargetHealth(3, 3)  # ... and one rule's health (the resync's)
    assert (calls["loadBalancingRules.health"], calls["operationResults.get"]) == (1, 1)
    observed = provider.observe(ref(1))
    assert observed is not None and observed.ingress[0].ip == ip
    assert [r.service.uid for r in provider.list_owned()] == [ref(1).service.uid]
    provider.delete(ref(1))
    assert lb(net, world) is None  # gone with its last frontend
    assert emulator.objects() == {}
    rules = [r.name for r in net.security_rules.list(world.resource_group, world.nsg)]
    assert not any(names.owns_part(ref(1).name, r) for r in rules)
    provider.delete(ref(1))  # again: nothing left to do is success
    assert provider.observe(ref(1)) is None and list(provider.list_owned()) == []


def test_a_wave_of_services_shares_few_lb_writes(provider: AzureProvider,
                                                 emulator: AzureEmulator, net: Any,
                                                 world: World) -> None:
    emulator.clear_calls()
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda n: provider.ensure(spec(world, n)), range(40)))
    assert len({s.ingress[0].ip for s in statuses}) == 40
    assert len(frontends(lb(net, world))) == 40
    lb_puts = emulator.counts().get("loadBalancers.put", 0)
    assert 1 <= lb_puts <= 12, emulator.counts()  # one per batch, not one per Service
    emulator.clear_calls()
    with ThreadPoolExecutor(16) as pool:  # a node left: every Service ensured again
        list(pool.map(lambda n: provider.ensure(spec(world, n, nodes=2)), range(40)))
    assert pool_ips(lb(net, world)) == {v.ip for v in world.nodes[:2]}
    counts = emulator.counts()
    assert counts.get("loadBalancers.put", 0) == 1, counts  # the pool, once
    assert counts.get("publicIPAddresses.get", 0) == 0  # nodes alone: the pool alone
    assert counts.get("networkSecurityGroups.get", 0) == 0
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: provider.delete(ref(n)), range(40)))
    assert emulator.objects() == {}


def test_a_concurrent_writer_loses_nothing(provider: AzureProvider, emulator: AzureEmulator,
                                           net: Any, world: World) -> None:
    provider.ensure(spec(world, 1))
    lb_id = names.resource_id(world.subscription, world.resource_group, "loadBalancers",
                              names.load_balancer(CLUSTER, False))
    writer = provider.lb(False)
    store: Any = writer.store
    put = store.write
    bumped: list[str] = []

    def late(body: dict[str, Any], etag: str | None) -> dict[str, Any]:
        if not bumped:  # someone writes the LB between lbctl's read and its write
            tags = {**((lb(net, world) or {}).get("tags") or {}), "someone": "else"}
            bumped.append(emulator.bump_etag(id=lb_id, tags=tags))
        return dict(put(body, etag))

    store.write = late
    provider.ensure(spec(world, 2))
    assert bumped and writer.stats.conflicts == 1  # refused once, re-read, re-applied
    body = lb(net, world)
    assert frontends(body) == sorted(names.frontend(ref(n).name, ref(n).service.uid)
                                     for n in (1, 2))
    assert (body or {}).get("tags", {}).get("someone") == "else"  # theirs kept too


def test_the_users_public_ip_by_address(provider: AzureProvider, emulator: AzureEmulator,
                                        net: Any, world: World) -> None:
    made = net.public_ip_addresses.begin_create_or_update(
        world.resource_group, "theirs", {"location": world.location,
                                         "sku": {"name": "Standard"},
                                         "properties": {"publicIPAllocationMethod": "Static"}},
        polling_interval=0.01).result()
    address = made.ip_address
    emulator.clear_calls()
    with pytest.raises(PermanentError) as info:
        provider.ensure(spec(world, 1, requested_ips=("20.9.9.9",)))
    assert info.value.field == "spec.loadBalancerIP"
    assert writes(emulator.counts()) == {}  # refused before any write
    assert provider.ensure(spec(world, 1, requested_ips=(address,))).ingress[0].ip == address
    assert [p.name for p in net.public_ip_addresses.list(world.resource_group)] == ["theirs"]
    provider.delete(ref(1))
    assert [p.name for p in net.public_ip_addresses.list(world.resource_group)] == ["theirs"]
    assert lb(net, world) is None


def test_internal_and_a_move_between_schemes(provider: AzureProvider, emulator: AzureEmulator,
                                             net: Any, world: World) -> None:
    external = provider.ensure(spec(world, 1)).ingress[0].ip
    assert [p.name for p in net.public_ip_addresses.list(world.resource_group)] == [
        names.public_ip(ref(1).name)]
    inside = provider.ensure(spec(world, 1, annotations=INTERNAL,
                                  requested_ips=("10.224.0.200",))).ingress[0].ip
    assert inside == "10.224.0.200" != external
    assert frontends(lb(net, world, internal=True)) == [
        names.frontend(ref(1).name, ref(1).service.uid)]
    assert lb(net, world) is None  # out of the external LB, which went with it
    assert list(net.public_ip_addresses.list(world.resource_group)) == []  # ours released
    provider.delete(ref(1))
    assert emulator.objects() == {}


def test_create_refuses_bad_settings() -> None:
    with pytest.raises(Exception, match="azure"):
        create({"location": "eastus"}, CLUSTER, StaticView())


def test_our_public_ip_in_another_resource_group_goes_with_the_service(
        provider: AzureProvider, emulator: AzureEmulator, net: Any, world: World) -> None:
    emulator.add_resource_group("ips")
    elsewhere = (("service.beta.kubernetes.io/azure-load-balancer-resource-group", "ips"),)
    assert provider.ensure(spec(world, 1, annotations=elsewhere)).ingress[0].ip
    assert [p.name for p in net.public_ip_addresses.list("ips")] == [
        names.public_ip(ref(1).name)]
    provider.delete(ref(1))  # found through the frontend's reference, in its own group
    assert list(net.public_ip_addresses.list("ips")) == []
    assert emulator.objects() == {}
