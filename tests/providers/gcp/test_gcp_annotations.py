"""GKE's Service annotations as lbctl's GCP provider reads them: each bad one named, aliases
honoured alike, contradictions refused naming both keys."""

from __future__ import annotations

import pytest

import providers.gcp.annotations as a
from providers.errors import PermanentError
from providers.gcp.annotations import GcpOptions, options_from, parse_annotations, problems
from providers.spec import BalancerRef, HealthCheck, LoadBalancerSpec, ServiceRef
from tests.providers.problems import assert_one_problem


def _spec(**annotations: str) -> LoadBalancerSpec:
    return LoadBalancerSpec(ref=BalancerRef("lb-x", "c", ServiceRef("ns", "x", "u")),
                            listeners=(), targets=(), health_check=HealthCheck("TCP", None),
                            annotations=tuple(sorted(annotations.items())))


def test_none_is_an_external_premium_default() -> None:
    assert parse_annotations(_spec()) == GcpOptions()


@pytest.mark.parametrize("key", [a.LB_TYPE, a.LEGACY_LB_TYPE])
def test_internal_by_either_key_with_subnet_and_global_access(key: str) -> None:
    options = options_from({key: "Internal", a.SUBNET: "nodes-2", a.GLOBAL_ACCESS: "true"}, [])
    assert options == GcpOptions(internal=True, subnetwork="nodes-2", global_access=True)


def test_tier_and_addresses() -> None:
    found: list[tuple[str, str]] = []
    options = options_from({a.NETWORK_TIER: "Standard", a.IP_ADDRESSES: "web-v4, web-v6"}, found)
    assert found == []
    assert options == GcpOptions(network_tier="STANDARD", address_names=("web-v4", "web-v6"))


@pytest.mark.parametrize(("annotations", "key", "words"), [
    ({a.LB_TYPE: "Internal", a.LEGACY_LB_TYPE: "External"}, a.LB_TYPE,
     f"but {a.LEGACY_LB_TYPE} says 'External'"),
    ({a.LB_TYPE: "private"}, a.LB_TYPE, "must be Internal or External, not 'private'"),
    ({a.LEGACY_LB_TYPE: "private"}, a.LEGACY_LB_TYPE, "must be Internal or External"),
    ({a.SUBNET: "nodes"}, a.SUBNET, "applies to internal balancers only"),
    ({a.LB_TYPE: "Internal", a.SUBNET: "Nodes_2"}, a.SUBNET, "must be a subnetwork name"),
    ({a.LB_TYPE: "Internal", a.GLOBAL_ACCESS: "yes"}, a.GLOBAL_ACCESS,
     "must be true or false, not 'yes'"),
    ({a.GLOBAL_ACCESS: "true"}, a.GLOBAL_ACCESS, "applies to internal balancers only"),
    ({a.NETWORK_TIER: "gold"}, a.NETWORK_TIER, "must be Premium or Standard, not 'gold'"),
    ({a.LB_TYPE: "Internal", a.NETWORK_TIER: "Standard"}, a.NETWORK_TIER,
     "applies to external balancers only"),
    ({a.IP_ADDRESSES: "ok,Bad"}, a.IP_ADDRESSES, "entry 1 must be the name of a reserved"),
    ({a.IP_ADDRESSES: "a,b,c"}, a.IP_ADDRESSES, "at most two addresses"),
    ({a.L4_RBS: "disabled"}, a.L4_RBS, "backend-service balancers only"),
    ({a.WEIGHTED: "pods-per-node"}, a.WEIGHTED, "not supported"),
])
def test_each_problem_names_its_annotation(annotations: dict[str, str], key: str,
                                           words: str) -> None:
    found = problems(annotations)
    assert_one_problem(found, f"metadata.annotations[{key}]", words)
    with pytest.raises(PermanentError) as info:
        parse_annotations(_spec(**annotations))
    assert info.value.field == found[0][0]


def test_every_problem_at_once_and_unknown_keys_ignored() -> None:
    found = problems({a.LB_TYPE: "x", a.NETWORK_TIER: "y", a.IP_ADDRESSES: "Z",
                      "networking.gke.io/something-new": "whatever"})
    assert [f for f, _ in found] == [f"metadata.annotations[{k}]"
                                     for k in (a.LB_TYPE, a.NETWORK_TIER, a.IP_ADDRESSES)]
