"""`merge` / `remove`: one Service's frontend, rules and probes folded into / out of the
cluster's shared load balancer body, other Services' parts untouched (the very objects kept),
the argument never mutated, and no change at all (the argument itself back) when ARM already
holds what is wanted, even in ARM's own decorated form."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from providers.azure import names
from providers.azure.annotations import AzureOptions
from providers.azure.desired import Desired, desired
from providers.azure.merge import merge, remove, same_part
from providers.azure.settings import AzureSettings
from providers.errors import NotOwnedError
from providers.spec import BalancerRef, HealthCheck, Listener, LoadBalancerSpec, ServiceRef

SUB = "0b1c2d3e-1111-2222-3333-444455556666"
SETTINGS = AzureSettings(subscription_id=SUB, resource_group="prod-rg", location="westeurope",
                         vnet_name="vnet", subnet_name="nodes", security_group_name="nsg")


def _made(n: int, listeners: tuple[Listener, ...] = (), **options: Any) -> Desired:
    uid = f"00000000-0000-0000-0000-{n:012d}"
    spec = LoadBalancerSpec(
        ref=BalancerRef(f"lb-default-svc{n}-abcdefghij", "prod",
                        ServiceRef("default", f"svc{n}", uid)),
        listeners=listeners or (Listener("http", "TCP", 80, 30000 + n),
                                Listener("dns", "UDP", 53, 31000 + n)),
        targets=(), health_check=HealthCheck("TCP", None))
    return desired(spec, AzureOptions(**options), SETTINGS)


def _arm(body: dict[str, Any], lb: str = "lbctl-prod") -> dict[str, Any]:
    """`body` as ARM answers a GET: IDs, etags, states, back references, defaults filled in,
    and the resource group re-cased in every ID."""
    out = copy.deepcopy(body)
    lb_id = names.resource_id(SUB, "PROD-RG", "loadBalancers", lb)
    out.update(id=lb_id, name=lb, etag='W/"1"', type="Microsoft.Network/loadBalancers")
    props = out["properties"]
    props["provisioningState"] = "Succeeded"
    kinds = {"frontendIPConfigurations": "frontendIPConfigurations",
             "loadBalancingRules": "loadBalancingRules", "probes": "probes",
             "backendAddressPools": "backendAddressPools"}
    for kind in kinds:
        for part in props.get(kind, []):
            part.update(id=f"{lb_id}/{kind}/{part['name']}", etag='W/"1"')
            p = part.setdefault("properties", {})
            p["provisioningState"] = "Succeeded"
            for key, value in list(p.items()):
                if isinstance(value, dict) and "id" in value:
                    p[key] = {"id": value["id"].replace("/prod-rg/", "/PROD-RG/")}
            if kind == "loadBalancingRules":
                p.setdefault("idleTimeoutInMinutes", 4)
                p.setdefault("enableTcpReset", False)
                p.setdefault("disableOutboundSnat", False)
                p["backendAddressPools"] = [p["backendAddressPool"]]
            if kind == "probes":
                p["loadBalancingRules"] = [{"id": f"{lb_id}/loadBalancingRules/x"}]
            if kind == "frontendIPConfigurations":
                p["loadBalancingRules"] = []
                p["privateIPAllocationMethod"] = "Dynamic"
    return out


def _names(body: dict[str, Any], kind: str) -> list[str]:
    return [p["name"] for p in body["properties"][kind]]


def test_a_first_service_creates_the_lb_from_the_skeleton() -> None:
    one = _made(1)
    body = merge(None, one.parts)
    assert body["tags"][names.TAG_CLUSTER] == "prod" and body["sku"]["name"] == "Standard"
    assert _names(body, "frontendIPConfigurations") == [one.parts.frontend["name"]]
    assert _names(body, "loadBalancingRules") == [r["name"] for r in one.parts.rules]
    assert _names(body, "probes") == [p["name"] for p in one.parts.probes]
    assert _names(body, "backendAddressPools") == ["lbctl-prod"]


def test_other_services_parts_are_untouched_and_nothing_is_mutated() -> None:
    one, two, three = _made(1), _made(2), _made(3, floating_ip=False)
    body = _arm(merge(merge(None, one.parts), two.parts))
    before = copy.deepcopy(body)
    out = merge(body, three.parts)
    assert body == before  # the argument is never mutated
    for kind in ("frontendIPConfigurations", "loadBalancingRules", "probes"):
        kept = [p for p in out["properties"][kind] if not names.owns_part(three.balancer,
                                                                          p["name"])]
        assert all(a is b for a, b in zip(kept, body["properties"][kind], strict=True))
    assert len(out["properties"]["frontendIPConfigurations"]) == 3


def test_merging_what_arm_already_holds_changes_nothing() -> None:
    one, two = _made(1), _made(2)
    body = _arm(merge(merge(None, one.parts), two.parts))
    assert merge(body, one.parts) is body
    assert merge(body, two.parts) is body
    again = merge(None, one.parts)
    assert merge(again, one.parts) is again  # idempotent on our own bodies too


def test_a_changed_service_replaces_its_parts_and_drops_its_stale_ones() -> None:
    one, two = _made(1), _made(2)
    body = _arm(merge(merge(None, one.parts), two.parts))
    changed = _made(1, (Listener("https", "TCP", 443, 30443),), idle_timeout=30)
    out = merge(body, changed.parts)
    assert [n for n in _names(out, "loadBalancingRules") if n.startswith(one.balancer)] == [
        f"{one.balancer}-TCP-443"]
    assert [n for n in _names(out, "probes") if n.startswith(one.balancer)] == [
        f"{one.balancer}-TCP-30443"]
    two_rules = [p for p in out["properties"]["loadBalancingRules"]
                 if names.owns_part(two.balancer, p["name"])]
    assert two_rules == body["properties"]["loadBalancingRules"][2:4]
    # the same rule with another idle timeout is a change
    longer = _made(1, idle_timeout=30)
    out = merge(body, longer.parts)
    rule = next(p for p in out["properties"]["loadBalancingRules"]
                if p["name"] == f"{one.balancer}-TCP-80")
    assert rule["properties"]["idleTimeoutInMinutes"] == 30 and "etag" not in rule


def test_a_reference_arm_holds_but_we_no_longer_want_is_a_change() -> None:
    one = _made(1)
    rule = _arm(merge(None, one.parts))["properties"]["loadBalancingRules"][0]
    want = one.parts.rules[0]
    assert same_part("loadBalancingRules", want, rule)
    unprobed = {**want, "properties": {k: v for k, v in want["properties"].items()
                                       if k != "probe"}}
    assert not same_part("loadBalancingRules", unprobed, rule)
    other_case = copy.deepcopy(rule)
    other_case["properties"]["frontendPort"] = 8080
    assert not same_part("loadBalancingRules", want, other_case)


def test_the_pool_is_added_when_missing() -> None:
    one = _made(1)
    body = _arm(merge(None, one.parts))
    body["properties"]["backendAddressPools"] = []
    out = merge(body, one.parts)
    assert _names(out, "backendAddressPools") == ["lbctl-prod"]


def test_remove_takes_only_its_own_parts_and_the_lb_goes_with_the_last_frontend() -> None:
    one, two = _made(1), _made(2)
    body = _arm(merge(merge(None, one.parts), two.parts))
    before = copy.deepcopy(body)
    out = remove(body, one.balancer, "prod")
    assert body == before and out is not None
    for kind in ("frontendIPConfigurations", "loadBalancingRules", "probes"):
        assert out["properties"][kind] == [p for p in body["properties"][kind]
                                           if names.owns_part(two.balancer, p["name"])]
    assert remove(out, one.balancer) is out  # nothing of it left: no change
    assert remove(out, two.balancer, "prod") is None  # the last frontend: delete the LB
    assert remove(None, one.balancer) is None
    # a merge after the LB went starts again from the skeleton
    assert _names(merge(None, one.parts), "frontendIPConfigurations") == [
        one.parts.frontend["name"]]


def test_someone_elses_lb_is_refused() -> None:
    one = _made(1)
    theirs = _arm(merge(None, one.parts))
    theirs["tags"] = {"k8s-azure-cluster-name": "prod"}  # upstream's, say
    with pytest.raises(NotOwnedError):
        merge(theirs, one.parts)
    with pytest.raises(NotOwnedError):
        remove(theirs, one.balancer, "prod")
    other = dataclasses.replace(one.parts, skeleton={**one.parts.skeleton,
                                                     "tags": names.cluster_tags("other")})
    with pytest.raises(NotOwnedError):
        merge(_arm(merge(None, one.parts)), other)
