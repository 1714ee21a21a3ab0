"""The desired bodies written through azure-mgmt-network to the ARM emulator, which is strict
where ARM is (names, references within the LB, IP-based pools, NSG rules): every kind is
accepted as built, and the steady state holds: a Service's parts merged into the LB as ARM
answers it change nothing (no write), several Services share one LB, and one leaves without
touching the others."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from lbctl.emulators.azure.client import network_client
from lbctl.emulators.azure.server import AzureEmulator
from lbctl.emulators.azure.world import World
from providers.azure import names
from providers.azure.annotations import AzureOptions
from providers.azure.desired import Desired, desired, pool_body, security_rule_body
from providers.azure.merge import merge, remove
from providers.azure.settings import AzureSettings
from providers.spec import (
    BalancerRef,
    HealthCheck,
    Listener,
    LoadBalancerSpec,
    ServiceRef,
    Target,
)

pytestmark = pytest.mark.integration


def _json(response: Any, deserialized: Any, headers: Any) -> Any:
    return response.http_response.json()


@pytest.fixture
def net(emulator: AzureEmulator) -> Any:
    sdk = importlib.import_module("azure.mgmt.network")
    return network_client(sdk.NetworkManagementClient, emulator.endpoint,
                          emulator.subscription)


def _settings(world: World) -> AzureSettings:
    return AzureSettings(subscription_id=world.subscription, resource_group=world.resource_group,
                         location=world.location, vnet_name=world.vnet,
                         subnet_name=world.subnet, security_group_name=world.nsg)


def _service(world: World, n: int, listeners: tuple[Listener, ...], **kw: Any
             ) -> LoadBalancerSpec:
    vm = f"azure:///subscriptions/{world.subscription}/resourceGroups/{world.resource_group}/" \
         "providers/Microsoft.Compute/virtualMachines/"
    return LoadBalancerSpec(
        ref=BalancerRef(f"lb-default-svc{n}-abcdefghij", "prod",
                        ServiceRef("default", f"svc{n}", f"00000000-0000-0000-0000-{n:012d}")),
        listeners=listeners, targets=tuple(Target(v.name, vm + v.name, (v.ip,))
                                           for v in world.nodes),
        health_check=kw.pop("health_check", HealthCheck("TCP", None)), **kw)


def _write(net: Any, world: World, made: Desired, settings: AzureSettings) -> Any:
    """What a deployer does, in ARM's order: public IP, the LB (one PUT), pool, NSG rules."""
    group = world.resource_group
    ip = None
    if made.public_ip is not None and made.public_ip_name is not None:
        pip = net.public_ip_addresses.begin_create_or_update(
            group, made.public_ip_name, made.public_ip, cls=_json).result()
        ip = pip["properties"]["ipAddress"]
    current = net.load_balancers.get(group, made.load_balancer, cls=_json) if any(
        lb.name == made.load_balancer for lb in net.load_balancers.list(group)) else None
    body = net.load_balancers.begin_create_or_update(
        group, made.load_balancer, merge(current, made.parts), cls=_json).result()
    if made.internal:
        frontend = next(f for f in body["properties"]["frontendIPConfigurations"]
                        if f["name"] == made.parts.frontend["name"])
        ip = frontend["properties"]["privateIPAddress"]
    net.load_balancer_backend_address_pools.begin_create_or_update(
        group, made.load_balancer, made.parts.pool,
        pool_body(made.parts.pool, made.pool_addresses)).result()
    used = [r.priority for r in net.security_rules.list(group, made.security_group)]
    for rule in made.security_rules:
        priority = names.pick_priority(used)
        used.append(priority)
        net.security_rules.begin_create_or_update(
            group, made.security_group, rule["name"],
            security_rule_body(rule, priority, ip if made.destination_is_frontend else None)
        ).result()
    return net.load_balancers.get(group, made.load_balancer, cls=_json)


def test_every_body_is_accepted_and_the_steady_state_writes_nothing(
        world: World, net: Any) -> None:
    settings = _settings(world)
    web = desired(_service(world, 1, (Listener("http", "TCP", 80, 30080),
                                      Listener("dns", "UDP", 53, 30053)),
                           session_affinity="ClientIP"),
                  AzureOptions(dns_label="prod-web", service_tags=("AzureCloud",)), settings)
    local = desired(_service(world, 2, (Listener("http", "TCP", 80, 30081),),
                             health_check=HealthCheck("HTTP", 31999, "/healthz"),
                             external_traffic_policy="Local",
                             source_ranges=("203.0.113.0/24",)),
                    AzureOptions(floating_ip=False), settings)
    internal = desired(_service(world, 3, (Listener("http", "TCP", 80, 30082),)),
                       AzureOptions(internal=True), settings)
    lb = None
    for made in (web, local, internal):
        lb = _write(net, world, made, settings)
    assert lb is not None
    public = net.load_balancers.get(world.resource_group, web.load_balancer, cls=_json)
    assert len(public["properties"]["frontendIPConfigurations"]) == 2
    for made, body in ((web, public), (local, public), (internal, lb)):
        assert merge(body, made.parts) is body, made.balancer  # as ARM holds it: no write
    pools = public["properties"]["backendAddressPools"]
    assert pools[0]["properties"]["loadBalancerBackendAddresses"]  # the pool write kept
    rules = {r.name for r in net.security_rules.list(world.resource_group, world.nsg)}
    assert {r["name"] for r in (*web.security_rules, *local.security_rules,
                                *internal.security_rules)} <= rules

    left = remove(public, web.balancer, "prod")
    assert left is not None
    after = net.load_balancers.begin_create_or_update(
        world.resource_group, web.load_balancer, left, cls=_json).result()
    assert [f["name"] for f in after["properties"]["frontendIPConfigurations"]] == [
        local.parts.frontend["name"]]
    assert merge(after, local.parts) is after
    assert remove(after, local.balancer, "prod") is None  # the last one: the LB goes
