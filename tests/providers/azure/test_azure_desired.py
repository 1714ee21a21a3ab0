"""The desired Azure state (`providers.azure.desired`): pure, golden-tested as JSON; set
LBCTL_UPDATE_GOLDEN=1 to rewrite the documents.

The goldens have an outside reference: every body (the whole load balancer with this Service's
parts merged in, the backend pool, our public IP, each NSG rule made whole) is checked against
azure-mgmt-network's own models (`arm_models.problems`: no unknown or read-only key, required
fields present, JSON types and enum values as declared) and survives the SDK's own encoder
unchanged, so a golden cannot drift from what ARM takes. ARM's rules the models do not encode
(names, one of sourceAddressPrefix/-es, the probe budget) are asserted here.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import providers.azure.annotations as a
from providers.azure import names
from providers.azure.annotations import AzureOptions
from providers.azure.desired import Desired, desired, pool_body, security_rule_body
from providers.azure.merge import merge
from providers.azure.settings import AzureSettings
from providers.errors import PermanentError
from providers.spec import (
    BalancerRef,
    HealthCheck,
    Listener,
    LoadBalancerSpec,
    ServiceRef,
    Target,
)

arm_models = pytest.importorskip("tests.providers.azure.arm_models")

GOLDEN = Path(__file__).parent / "golden"
SUB = "0b1c2d3e-1111-2222-3333-444455556666"
SETTINGS = AzureSettings(subscription_id=SUB, resource_group="prod-rg", location="westeurope",
                         vnet_name="prod-vnet", vnet_resource_group="net-rg",
                         subnet_name="nodes", security_group_name="prod-nsg",
                         tags=(("team", "web"),))
UID = "0f9c2f4e-1111-2222-3333-444455556666"
REF = BalancerRef("lb-default-web-abcdefghij", "prod", ServiceRef("default", "web", UID))
VM = f"azure:///subscriptions/{SUB}/resourceGroups/prod-rg/providers/Microsoft.Compute/" \
     "virtualMachines/"
NODES = (Target("node-b", VM + "node-b", ("10.0.0.5",)),
         Target("node-a", VM + "node-a", ("fd00::4", "10.0.0.4")),
         Target("node-c", VM + "node-c", ("10.0.0.10",)))
CLUSTER = HealthCheck("TCP", None)
LOCAL = HealthCheck("HTTP", 31999, "/healthz")


def _spec(listeners: tuple[Listener, ...], **kw: Any) -> LoadBalancerSpec:
    return LoadBalancerSpec(ref=REF, listeners=listeners, targets=kw.pop("targets", NODES),
                            health_check=kw.pop("health_check", CLUSTER), **kw)


WEB = (Listener("http", "TCP", 80, 30080),)
MIXED = (Listener("http", "TCP", 80, 30080), Listener("dns", "UDP", 53, 30053))
MANY = (*(Listener(f"p{i}", "TCP", 8000 + i, 30100 + i) for i in range(5)),
        Listener("dns", "UDP", 53, 30053))
CASES: dict[str, tuple[LoadBalancerSpec, AzureOptions]] = {
    "external-one-port": (_spec(WEB), AzureOptions()),
    "local-clientip-many-ports-source-ranges": (
        _spec(MANY, health_check=LOCAL, session_affinity="ClientIP",
              external_traffic_policy="Local",
              source_ranges=("203.0.113.0/24", "198.51.100.7/32")),
        AzureOptions(dns_label="prod-web", idle_timeout=15, pip_tags=(("cost", "42"),),
                     allowed_ranges=("192.0.2.0/24",), service_tags=("AzureFrontDoor.Backend",),
                     probe_interval=10, probe_count=3)),
    "internal-subnet-static-ip": (
        _spec(MIXED, requested_ips=("10.0.2.9",)),
        AzureOptions(internal=True, subnet="ilb")),
    "floating-ip-disabled": (
        _spec(MIXED), AzureOptions(floating_ip=False, probe_protocol="Http",
                                   probe_path="/ready")),
    "user-pip-name": (
        _spec(WEB, targets=(*NODES, Target("metal-1", "metal://rack/1", ("10.9.0.1",)),
                            Target("v6", VM + "v6", ("fd00::9",)))),
        AzureOptions(pip_name="web-ip", resource_group="ips-rg")),
}


def _doc(made: Desired) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(made)))
    return out


def _bodies(made: Desired) -> Iterator[tuple[type, dict[str, Any]]]:
    from azure.mgmt.network import models

    lb = merge(None, made.parts)
    yield models.LoadBalancer, lb
    yield models.BackendAddressPool, pool_body(made.parts.pool, made.pool_addresses)
    if made.public_ip is not None:
        yield models.PublicIPAddress, made.public_ip
    for i, rule in enumerate(made.security_rules):  # made whole at deploy
        ip = "20.50.60.70" if made.destination_is_frontend else None
        yield models.SecurityRule, security_rule_body(rule, 500 + i, ip)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    spec, options = CASES[case]
    made = desired(spec, options, SETTINGS)
    doc = _doc(made)
    path = GOLDEN / f"{case}.json"
    if os.environ.get("LBCTL_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    assert doc == json.loads(path.read_text()), f"{case}: rerun with LBCTL_UPDATE_GOLDEN=1"
    for model, body in _bodies(made):  # the outside reference: the SDK's own models
        assert arm_models.problems(model, body) == [], (model.__name__, body)
        assert arm_models.round_trip(model, body) == body, model.__name__
    parts = made.parts
    for part in (parts.frontend, *parts.rules, *parts.probes, *made.security_rules,
                 *made.pool_addresses):
        assert names.NAME.fullmatch(part["name"]) and len(part["name"]) <= 80, part["name"]
    for rule in made.security_rules:
        props = rule["properties"]
        assert ("sourceAddressPrefix" in props) != ("sourceAddressPrefixes" in props)
        assert names.owns_security_rule(rule["name"], props["description"], "prod", REF.name)
    for probe in parts.probes:
        props = probe["properties"]
        assert props["intervalInSeconds"] * props["numberOfProbes"] <= 120


def test_the_sdk_reference_catches_a_broken_body() -> None:
    from azure.mgmt.network import models

    lb = merge(None, desired(*CASES["external-one-port"], SETTINGS).parts)
    assert arm_models.problems(models.LoadBalancer, lb) == []
    rule = lb["properties"]["loadBalancingRules"][0]
    for broken, words in [
        ({**rule, "properties": {**rule["properties"], "frontendPort": "80"}}, "must be int"),
        ({**rule, "properties": {**rule["properties"], "protocol": "TCP"}}, "is not one of"),
        ({**rule, "properties": {**rule["properties"], "enableFloatingIp": True}}, "unknown"),
        ({**rule, "etag": "W/x"}, "read-only"),
        ({"name": "r", "properties": {"frontendPort": 80}}, "required"),
    ]:
        found = arm_models.problems(models.LoadBalancingRule, broken)
        assert any(words in f for f in found), (words, found)


def test_what_each_case_means() -> None:
    b = REF.name
    lb = "/subscriptions/" + SUB + "/resourceGroups/prod-rg/providers/Microsoft.Network/" \
         "loadBalancers/lbctl-prod"
    one = desired(*CASES["external-one-port"], SETTINGS)
    assert (one.load_balancer, one.internal, one.public_ip_name, one.public_ip_ours) == (
        "lbctl-prod", False, b, True)
    assert one.parts.frontend == {"name": names.frontend(b, UID), "properties": {
        "publicIPAddress": {"id": one.public_ip_id(SETTINGS)}}}
    (rule,) = one.parts.rules
    assert rule["name"] == f"{b}-TCP-80"
    frontend = f"{lb}/frontendIPConfigurations/{b}-{UID.replace('-', '')}"
    assert rule["properties"] == {
        "frontendIPConfiguration": {"id": frontend},
        "backendAddressPool": {"id": f"{lb}/backendAddressPools/lbctl-prod"},
        "probe": {"id": f"{lb}/probes/{b}-TCP-30080"}, "protocol": "Tcp", "frontendPort": 80,
        "backendPort": 80, "enableFloatingIP": True, "loadDistribution": "Default",
        "idleTimeoutInMinutes": 4, "enableTcpReset": True, "disableOutboundSnat": True}
    assert one.parts.probes == ({"name": f"{b}-TCP-30080", "properties": {
        "protocol": "Tcp", "port": 30080, "intervalInSeconds": 5, "numberOfProbes": 2}},)
    assert [p["name"] for p in one.pool_addresses] == ["node-a", "node-b", "node-c"]
    assert one.pool_addresses[0]["properties"]["ipAddress"] == "10.0.0.4"  # IPv4, not fd00::
    (nsg,) = one.security_rules
    assert nsg["properties"]["sourceAddressPrefix"] == "Internet"  # no ranges: everyone
    assert "destinationAddressPrefix" not in nsg["properties"]  # the frontend's IP, at deploy
    assert one.public_ip is not None and one.public_ip["tags"][names.TAG_UID] == UID

    local = desired(*CASES["local-clientip-many-ports-source-ranges"], SETTINGS)
    (probe,) = local.parts.probes  # one probe of kube-proxy's healthCheckNodePort, UDP too
    assert probe["properties"] == {"protocol": "Http", "port": 31999, "requestPath": "/healthz",
                                   "intervalInSeconds": 10, "numberOfProbes": 3}
    assert all(r["properties"]["probe"]["id"].endswith(probe["name"])
               for r in local.parts.rules)
    assert {r["properties"]["loadDistribution"] for r in local.parts.rules} == {"SourceIP"}
    udp = next(r for r in local.parts.rules if r["name"] == f"{b}-UDP-53")["properties"]
    assert "enableTcpReset" not in udp and "idleTimeoutInMinutes" not in udp
    cidrs, tag = (r["properties"] for r in local.security_rules if r["name"].startswith(
        f"{b}-TCP"))
    assert cidrs["sourceAddressPrefixes"] == ["192.0.2.0/24", "198.51.100.7/32",
                                              "203.0.113.0/24"]
    assert cidrs["destinationPortRanges"] == [str(p) for p in range(8000, 8005)]
    assert tag["sourceAddressPrefix"] == "AzureFrontDoor.Backend"
    assert local.public_ip is not None
    assert local.public_ip["properties"]["dnsSettings"] == {"domainNameLabel": "prod-web"}
    assert local.public_ip["tags"]["cost"] == "42"

    internal = desired(*CASES["internal-subnet-static-ip"], SETTINGS)
    assert (internal.load_balancer, internal.public_ip, internal.public_ip_name) == (
        "lbctl-prod-internal", None, None)
    assert not internal.needs_public_ip_lookup
    assert internal.parts.frontend["properties"] == {
        "privateIPAllocationMethod": "Static", "privateIPAddress": "10.0.2.9",
        "privateIPAddressVersion": "IPv4", "subnet": {"id": (
            f"/subscriptions/{SUB}/resourceGroups/net-rg/providers/Microsoft.Network/"
            "virtualNetworks/prod-vnet/subnets/ilb")}}
    assert all("disableOutboundSnat" not in r["properties"] for r in internal.parts.rules)
    assert [p["name"] for p in internal.parts.probes] == [f"{b}-TCP-30080"]  # none for UDP
    assert {r["properties"]["sourceAddressPrefix"] for r in internal.security_rules} == {"*"}

    off = desired(*CASES["floating-ip-disabled"], SETTINGS)
    assert [r["properties"]["backendPort"] for r in off.parts.rules] == [30080, 30053]
    assert off.parts.probes[0]["properties"]["requestPath"] == "/ready"
    assert not off.destination_is_frontend
    assert off.security_rules[0]["properties"]["destinationAddressPrefixes"] == [
        "10.0.0.4", "10.0.0.5", "10.0.0.10"]
    assert off.security_rules[0]["properties"]["destinationPortRanges"] == ["30080"]

    user = desired(*CASES["user-pip-name"], SETTINGS)
    assert (user.public_ip_name, user.public_ip_ours, user.public_ip) == ("web-ip", False, None)
    assert user.public_ip_id(SETTINGS) == (f"/subscriptions/{SUB}/resourceGroups/ips-rg/"
                                           "providers/Microsoft.Network/publicIPAddresses/web-ip")
    assert [n for n, _ in user.skipped] == ["metal-1", "v6"]


def test_a_requested_external_ip_is_the_users_public_ip_found_at_deploy() -> None:
    spec, options = CASES["external-one-port"]
    made = desired(dataclasses.replace(spec, requested_ips=("20.1.2.3",)), options, SETTINGS)
    assert (made.public_ip, made.public_ip_name, made.requested_ip) == (None, None, "20.1.2.3")
    assert made.needs_public_ip_lookup and made.public_ip_id(SETTINGS) is None
    assert made.parts.frontend["properties"] == {}
    found = made.with_public_ip("/subscriptions/x/resourceGroups/g/providers/"
                                "Microsoft.Network/publicIPAddresses/theirs")
    assert found.parts.frontend["properties"]["publicIPAddress"]["id"].endswith("/theirs")
    named = desired(spec, dataclasses.replace(options, pip_name="web-ip", ipv4="20.1.2.3"),
                    SETTINGS)  # both: the named one, which must hold that address
    assert (named.public_ip_name, named.requested_ip) == ("web-ip", "20.1.2.3")


def test_refusals_name_the_field() -> None:
    spec, options = CASES["internal-subnet-static-ip"]
    cases: list[tuple[LoadBalancerSpec, AzureOptions, AzureSettings, str]] = [
        (spec, dataclasses.replace(options, subnet=None),
         dataclasses.replace(SETTINGS, subnet_name=""), "azure.subnetName"),
        (dataclasses.replace(spec, source_ranges=("2001:db8::/32",)), options, SETTINGS,
         "spec.loadBalancerSourceRanges"),
        (spec, dataclasses.replace(options, allowed_ranges=("2001:db8::/32",)), SETTINGS,
         f"metadata.annotations[{a.ALLOWED_IP_RANGES}]"),
        (dataclasses.replace(spec, listeners=(Listener("http", "TCP", 80, None),)), options,
         SETTINGS, "spec.ports[0].nodePort"),
        (dataclasses.replace(spec, listeners=(Listener("dns", "UDP", 53, None),)),
         dataclasses.replace(options, floating_ip=False), SETTINGS, "spec.ports[0].nodePort"),
    ]
    for s, o, st, field in cases:
        with pytest.raises(PermanentError) as info:
            desired(s, o, st)
        assert info.value.field == field


def test_no_nodes_with_floating_ip_disabled_means_no_nsg_rules_yet() -> None:
    spec, options = CASES["floating-ip-disabled"]
    made = desired(dataclasses.replace(spec, targets=()), options, SETTINGS)
    assert made.security_rules == () and made.pool_addresses == ()
