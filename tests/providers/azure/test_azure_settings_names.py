"""The `azure:` section (every problem named by its key, credentials refused, the emulator on
loopback only) and the names, IDs, tags and priorities of lbctl's ARM objects (valid ARM names
for any input, never upstream's, each balancer's parts told apart exactly)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.azure import names
from providers.azure.settings import (
    DEFAULT_RATE_LIMITS,
    AzureSettings,
    parse_settings,
    validate_settings,
)
from providers.spec import BalancerRef, ServiceRef
from tests.providers.problems import assert_one_problem

SUB = "0b1c2d3e-1111-2222-3333-444455556666"
GOOD = {"subscriptionId": SUB, "resourceGroup": "MC_prod-rg", "location": "westeurope",
        "vnetName": "aks-vnet", "vnetResourceGroup": "net-rg", "subnetName": "aks-subnet",
        "securityGroupName": "aks-agentpool-nsg", "loadBalancerName": "prod-lb",
        "loadBalancerResourceGroup": "lb-rg", "endpoint": "http://127.0.0.1:8086/",
        "rateLimits": {"write": 1}, "tags": {"team": "web"}, "batchWindowSeconds": 1,
        "idleTimeoutMinutes": 30}
MINIMAL = {"resourceGroup": "rg", "location": "eastus", "vnetName": "v",
           "securityGroupName": "nsg"}


def test_a_good_section_parses_whole() -> None:
    settings, problems = parse_settings(GOOD, env={})
    assert problems == []
    assert settings == AzureSettings(
        subscription_id=SUB, resource_group="MC_prod-rg", location="westeurope",
        vnet_name="aks-vnet", vnet_resource_group="net-rg", subnet_name="aks-subnet",
        security_group_name="aks-agentpool-nsg", load_balancer_name="prod-lb",
        load_balancer_resource_group="lb-rg", endpoint="http://127.0.0.1:8086",
        rate_limits={**DEFAULT_RATE_LIMITS, "write": 1.0}, tags=(("team", "web"),),
        batch_window_seconds=1.0, idle_timeout_minutes=30)
    assert (settings.vnet_group, settings.lb_group) == ("net-rg", "lb-rg")
    plain, _ = parse_settings({**MINIMAL, "subscriptionId": SUB}, env={})
    assert (plain.vnet_group, plain.lb_group, plain.batch_window_seconds,
            plain.idle_timeout_minutes, plain.endpoint) == ("rg", "rg", 0.5, 4, None)


@pytest.mark.parametrize(("raw", "expected"), [
    ({"subscriptionId": "not-a-guid"}, ("azure.subscriptionId", "must be a subscription ID")),
    ({"resourceGroup": "rg."}, ("azure.resourceGroup", "must be a resource group name")),
    ({"location": "West Europe"}, ("azure.location", "must be an Azure region")),
    ({"vnetName": "-v"}, ("azure.vnetName", "must be an Azure resource name")),
    ({"subnetName": "a" * 81}, ("azure.subnetName", "must be an Azure resource name")),
    ({"securityGroupName": "nsg-"}, ("azure.securityGroupName", "must be an Azure resource")),
    ({"loadBalancerName": "x" * 71}, ("azure.loadBalancerName", "at most 70 characters")),
    ({"endpoint": "ftp://127.0.0.1"}, ("azure.endpoint", "must be an http:// URL")),
    ({"endpoint": "https://management.azure.com"}, ("azure.endpoint", "on this machine")),
    ({"endpoint": "http://u:p@127.0.0.1:1"}, ("azure.endpoint", "must not carry a user")),
    ({"rateLimits": {"write": 0}}, ("azure.rateLimits.write", "must be a number")),
    ({"rateLimits": {"delete": 1}}, ("azure.rateLimits.delete", "unknown key")),
    ({"tags": {"a/b": "x"}}, ("azure.tags.a/b", "without < > % & \\ ? or /")),
    ({"tags": {"lbctl-x": "y"}}, ("azure.tags.lbctl-x", "is reserved")),
    ({"tags": {"k8s-azure-service": "y"}}, ("azure.tags.k8s-azure-service", "is reserved")),
    ({"tags": {"t": "v" * 257}}, ("azure.tags.t", "at most 256")),
    ({"tags": ["a"]}, ("azure.tags", "must be a mapping")),
    ({"batchWindowSeconds": -1}, ("azure.batchWindowSeconds", "from 0 to 30")),
    ({"batchWindowSeconds": True}, ("azure.batchWindowSeconds", "must be a number")),
    ({"idleTimeoutMinutes": 3}, ("azure.idleTimeoutMinutes", "an integer from 4 to 100")),
    ({"idleTimeoutMinutes": 4.5}, ("azure.idleTimeoutMinutes", "an integer")),
    ({"clientSecret": "s3cret"}, ("azure.clientSecret", "credentials come from workload")),
    ({"zone": "1"}, ("azure.zone", "unknown key")),
])
def test_each_problem_names_its_key(raw: dict[str, Any], expected: tuple[str, str]) -> None:
    _, problems = parse_settings({**GOOD, **raw}, env={})
    assert_one_problem(problems, *expected)


def test_required_keys_and_all_problems_at_once() -> None:
    _, problems = parse_settings({}, env={})
    assert [p for p, _ in problems] == [f"azure.{k}" for k in (
        "subscriptionId", "resourceGroup", "location", "vnetName", "securityGroupName")]
    # validate: the config alone, relative paths; the subscription may come from the env
    assert [p for p, _ in validate_settings({"vnetName": 3, "apiKey": "k"})] == [
        "apiKey", "resourceGroup", "location", "vnetName", "securityGroupName"]
    assert validate_settings(MINIMAL) == []
    assert [(p, m[:17]) for p, m in validate_settings("x")] == [("", "must be a mapping")]


def test_the_subscription_may_come_from_the_environment_and_config_wins() -> None:
    env = {"AZURE_SUBSCRIPTION_ID": SUB.upper()}
    assert parse_settings(MINIMAL, env=env) == (
        AzureSettings(subscription_id=SUB, resource_group="rg", location="eastus",
                      vnet_name="v", security_group_name="nsg"), [])
    other = "99999999-9999-9999-9999-999999999999"
    assert parse_settings({**MINIMAL, "subscriptionId": other}, env=env)[0].subscription_id \
        == other
    settings, problems = parse_settings(MINIMAL, env={"AZURE_SUBSCRIPTION_ID": "nope"})
    assert settings.subscription_id == "" and problems[0][0] == "azure.subscriptionId"
    assert "AZURE_SUBSCRIPTION_ID ('nope')" in problems[0][1]


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "http://localhost:8086",
                                 "http://[::1]:9/"])
def test_the_emulator_endpoint_is_loopback_only(url: str) -> None:
    settings, problems = parse_settings({**GOOD, "endpoint": url}, env={})
    assert problems == [] and settings.endpoint == url.rstrip("/")


UID = "0f9c2f4e-1111-2222-3333-444455556666"
REF = BalancerRef("lb-default-web-abcdefghij", "prod", ServiceRef("default", "web", UID))


def test_names_of_one_balancer_and_of_the_cluster() -> None:
    b = REF.name
    assert names.load_balancer("prod", False) == "lbctl-prod"
    assert names.load_balancer("prod", True) == "lbctl-prod-internal"
    assert names.load_balancer("prod", True, "shared") == "shared-internal"
    assert names.backend_pool("prod") == "lbctl-prod"
    assert names.frontend(b, UID) == f"{b}-0f9c2f4e111122223333444455556666"
    assert names.rule(b, "TCP", 80) == f"{b}-TCP-80"
    assert names.probe(b, "Http", 31999) == f"{b}-HTTP-31999"
    assert names.public_ip(b) == b
    assert names.security_rule(b, "UDP") == f"{b}-UDP-allow"
    assert names.security_rule(b, "TCP", "Storage.WestEurope") == \
        f"{b}-TCP-tag-Storage.WestEurope"
    # never upstream's: `<cluster>`, `a<uid32>`, `<cluster>-a<uid32>`, `k8s-azure-lb_...`
    assert names.load_balancer("kubernetes", False) != "kubernetes"
    assert not names.frontend(b, UID).startswith("a0f9c2f4e")


def test_each_balancers_parts_are_told_apart_exactly() -> None:
    b = REF.name
    mine = [names.frontend(b, UID), names.rule(b, "TCP", 80), names.probe(b, "Https", 443),
            names.security_rule(b, "TCP"), names.security_rule(b, "UDP", "AzureCloud")]
    assert all(names.owns_part(b, n) for n in mine)
    others = ["lb-default-web", f"{b}x-TCP-80", "lb-default-web-abcdefghi-TCP-80",
              f"{b}-TCP-80-extra", f"{b}-tcp-80", f"a{UID.replace('-', '')}",
              "kubernetes", f"{b}-{UID}"]
    assert not any(names.owns_part(b, n) for n in others)
    assert not names.owns_part("lb-a", names.rule("lb-a-b-x", "TCP", 80))
    assert names.is_frontend_of(b, mine[0]) and not names.is_frontend_of(b, mine[1])
    assert names.uid_from_frontend(mine[0]) == (b, UID)
    odd = names.frontend(b, "not-a-uuid")
    assert names.owns_part(b, odd) and names.uid_from_frontend(odd) is None


@given(st.text(min_size=1, max_size=100), st.text(min_size=1, max_size=40), st.text(max_size=50),
       st.sampled_from(["TCP", "UDP"]), st.integers(1, 65535))
def test_every_name_is_a_valid_arm_name(balancer: str, cluster: str, uid: str, protocol: str,
                                        port: int) -> None:
    made = [names.load_balancer(cluster, True), names.backend_pool(cluster),
            names.frontend(balancer, uid), names.rule(balancer, protocol, port),
            names.probe(balancer, "Https", port), names.public_ip(balancer),
            names.security_rule(balancer, protocol),
            names.security_rule(balancer, protocol, "AzureFrontDoor.Backend"),
            names.security_rule(balancer, protocol, "bad tag!" * 9)]
    for name in made:
        assert names.NAME.fullmatch(name) and len(name) <= names.MAX_NAME, name
    for name in made[2:5] + made[6:]:
        assert names.owns_part(balancer, name), name
    assert len(names.description(cluster, balancer)) <= 140


def test_tags_record_the_owner_and_are_read_back() -> None:
    tags = names.with_tags(names.service_tags(REF), (("team", "web"), (names.TAG_CLUSTER, "x")))
    assert tags[names.TAG_CLUSTER] == "prod" and tags["team"] == "web"  # ours win
    assert tags[names.UPSTREAM_SERVICE_TAG] == "default/web"
    assert all("/" not in key for key in tags)  # Azure refuses '/' in tag names
    assert names.ref_from_tags(tags) == REF
    assert names.is_owned(tags, "prod", REF.name) and names.is_owned(tags, "prod")
    assert not names.is_owned(tags, "other") and not names.is_owned(tags, "prod", "lb-x")
    lb = names.cluster_tags("prod")
    assert names.is_owned(lb, "prod") and names.ref_from_tags(lb) is None
    for foreign in (None, {}, {"k8s-azure-service": "default/web"}):
        assert names.ref_from_tags(foreign) is None and not names.is_owned(foreign, "prod")


def test_nsg_descriptions_and_ownership() -> None:
    text = names.description("prod", REF.name)
    rule = names.security_rule(REF.name, "TCP")
    assert names.owns_security_rule(rule, text, "prod", REF.name)
    assert not names.owns_security_rule(rule, names.description("other", REF.name), "prod",
                                        REF.name)
    assert not names.owns_security_rule(rule, None, "prod", REF.name)
    assert not names.owns_security_rule("k8s-azure-lb_allow_IPv4_x", text, "prod", REF.name)


def test_priorities_next_free_from_500_and_stable() -> None:
    assert names.pick_priority([]) == 500
    assert names.pick_priority([500, 501, 503]) == 502
    assert names.pick_priority([500, 501], current=900) == 900  # an existing rule keeps it
    assert names.pick_priority([500], current=100) == 501  # someone else's range: a new one
    with pytest.raises(LookupError):
        names.pick_priority(range(500, 4097))


def test_arm_ids() -> None:
    made = names.resource_id(SUB, "rg", "loadBalancers", "lbctl-prod", "probes", "p")
    assert made == (f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/"
                    "loadBalancers/lbctl-prod/probes/p")
    assert names.same_id(made, made.replace("resourceGroups/rg", "resourceGroups/RG"))
    assert not names.same_id(made, None)
