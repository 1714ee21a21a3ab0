"""Node admission against kube-apiserver 1.33's ValidateNode / ValidateNodeUpdate."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lbctl.sandbox.admission.nodes import (
    pod_cidrs,
    validate_node,
    validate_node_update,
)
from lbctl.sandbox.errors import FieldError, invalid_object

pytestmark = pytest.mark.unit

CIDR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
ONE_PER_FAMILY = "may specify no more than one CIDR for each IP family"
PROVIDER_ID = ("spec.providerID: Forbidden: node updates may not change providerID except "
               'from "" to valid')
POD_CIDR = 'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid'
EFFECTS = 'supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'


def _node(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-a", "uid": "u-1", "resourceVersion": "5",
                         "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": spec}


def _messages(errs: list[FieldError]) -> list[str]:
    return [str(e) for e in errs]


def _strategy_update(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """The node strategy's ValidateUpdate."""
    return validate_node(new) + validate_node_update(old, new)


@pytest.mark.parametrize(("spec", "expected"), [
    ({}, []),
    ({"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"], "providerID": "aws:///i-1",
      "unschedulable": True,
      "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                 {"key": "dedicated", "value": "lb", "effect": "NoExecute"},
                 {"key": "dedicated", "value": "lb", "effect": "PreferNoSchedule"}]}, []),
    ({"podCIDRs": ["10.244.1.0/24", "fd00:1::/64"]}, []),
    ({"podCIDRs": ["010.244.001.0/24"]}, []),
    ({"taints": [{"key": "k", "effect": "Sometimes"}]}, [
        f'metadata.taints[0].effect: Unsupported value: "Sometimes": {EFFECTS}']),
    ({"taints": [{"key": "k"}]}, ["metadata.taints[0].effect: Required value"]),
    ({"taints": [{"key": "k_", "value": "-v", "effect": "NoSchedule"}]}, [
        'metadata.taints[0].key: Invalid value: "k_": name part must consist of alphanumeric '
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
        "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        'metadata.taints[0].value: Invalid value: "-v": a valid label must be an empty string '
        "or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
        "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
    ({"podCIDRs": ["10.244.1.0"]}, [f'spec.podCIDRs[0]: Invalid value: "10.244.1.0": {CIDR}']),
    ({"podCIDR": "10.244.1.0/33"}, [f'spec.podCIDRs[0]: Invalid value: "10.244.1.0/33": {CIDR}']),
    ({"podCIDRs": ["fe80::1%eth0/64"]}, [
        f'spec.podCIDRs[0]: Invalid value: "fe80::1%eth0/64": {CIDR}']),
])
def test_validate_node(spec: dict[str, Any], expected: list[str]) -> None:
    assert _messages(validate_node(_node(**spec))) == expected


def test_node_names_are_subdomains_and_nodes_have_no_namespace() -> None:
    node = _node()
    node["metadata"].update(name="Node_A", namespace="default")
    assert [e.field for e in validate_node(node)] == ["metadata.name", "metadata.namespace"]


def test_duplicate_taints_by_key_and_effect() -> None:
    taints = [{"key": "k", "value": "a", "effect": "NoSchedule"},
              {"key": "k", "value": "b", "effect": "NoSchedule"}]
    (err,) = validate_node(_node(taints=taints))
    assert (err.type, err.field) == ("FieldValueDuplicate", "metadata.taints[1]")
    assert err.value == {"key": "k", "value": "b", "effect": "NoSchedule"}
    assert err.detail == "taints must be unique by key and effect pair"


def test_pod_cidrs_one_per_family_and_no_duplicates() -> None:
    same_family = validate_node(_node(podCIDRs=["10.1.0.0/24", "10.2.0.0/24"]))
    assert [(e.field, e.value, e.detail) for e in same_family] == [
        ("spec.podCIDRs", ["10.1.0.0/24", "10.2.0.0/24"], ONE_PER_FAMILY)]
    duplicated = validate_node(_node(podCIDRs=["fd00::/64", "fd00::/64"]))
    assert [(e.type, e.field) for e in duplicated] == [
        ("FieldValueInvalid", "spec.podCIDRs"), ("FieldValueDuplicate", "spec.podCIDRs[1]")]
    three = validate_node(_node(podCIDRs=["10.1.0.0/24", "fd00::/64", "10.2.0.0/24"]))
    assert [e.detail for e in three] == [ONE_PER_FAMILY]


def test_unparsable_cidr_among_several_is_also_an_internal_error() -> None:
    errs = validate_node(_node(podCIDRs=["10.1.0.0/24", "bogus"]))
    assert _messages(errs)[:2] == [
        f'spec.podCIDRs[1]: Invalid value: "bogus": {CIDR}',
        "spec.podCIDRs: Internal error: invalid PodCIDRs. failed to check with dual stack with "
        'error:failed to parse cidr value:"bogus" with error:invalid CIDR address: bogus']
    assert errs[2].detail == ONE_PER_FAMILY


@pytest.mark.parametrize(("spec", "expected"), [
    ({"podCIDR": "10.0.0.0/24", "podCIDRs": ["10.0.0.0/24", "fd00::/64"]},
     ["10.0.0.0/24", "fd00::/64"]),
    ({"podCIDR": "10.9.0.0/24", "podCIDRs": ["10.0.0.0/24", "fd00::/64"]}, ["10.9.0.0/24"]),
    ({"podCIDR": "10.9.0.0/24"}, ["10.9.0.0/24"]),
    ({}, []),
])
def test_pod_cidrs_follow_v1_conversion(spec: dict[str, Any], expected: list[str]) -> None:
    assert pod_cidrs(_node(**spec)) == expected


@pytest.mark.parametrize(("old_spec", "new_spec", "expected"), [
    ({}, {"providerID": "gce://p/z/n", "podCIDR": "10.0.0.0/24"}, []),
    ({"providerID": "gce://p/z/n"}, {"providerID": "gce://p/z/n", "unschedulable": True}, []),
    ({"providerID": "gce://p/z/n"}, {"providerID": "aws:///i-1"}, [PROVIDER_ID]),
    ({"providerID": "gce://p/z/n"}, {}, [PROVIDER_ID]),
    ({"podCIDRs": ["10.0.0.0/24"]}, {"podCIDRs": ["10.0.1.0/24"]}, [POD_CIDR]),
    ({"podCIDRs": ["10.0.0.0/24"]}, {}, [POD_CIDR]),
    ({"podCIDR": "10.0.0.0/24"}, {"podCIDRs": ["10.0.0.0/24", "fd00::/64"]}, [POD_CIDR]),
    ({"podCIDRs": ["10.0.0.0/24", "fd00::/64"]}, {"podCIDRs": ["10.0.1.0/24", "fd01::/64"]},
     [POD_CIDR, POD_CIDR]),
    ({}, {"externalID": "x"}, ["spec.externalID: Forbidden: may not be updated"]),
])
def test_validate_node_update(old_spec: dict[str, Any], new_spec: dict[str, Any],
                              expected: list[str]) -> None:
    assert _messages(_strategy_update(_node(**old_spec), _node(**new_spec))) == expected


def test_strategy_update_repeats_errors_both_checks_find() -> None:
    old = _node()
    new = _node(taints=[{"key": "k", "effect": "Never"}], providerID="x")
    new["metadata"]["labels"] = {"k": "-"}
    fields = [e.field for e in _strategy_update(_node(providerID="y"), new)]
    assert fields == ["metadata.labels", "metadata.taints[0].effect",
                      "metadata.labels", "spec.providerID", "metadata.taints[0].effect"]
    assert _strategy_update(old, copy.deepcopy(old)) == []


def test_status_update_checks_duplicate_addresses() -> None:
    old = _node()
    new = _node()
    new["status"] = {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"},
                                   {"type": "Hostname", "address": "node-a"},
                                   {"type": "InternalIP", "address": "10.0.0.1"}]}
    (err,) = validate_node_update(old, new)
    assert (err.type, err.field, err.value) == (
        "FieldValueDuplicate", "status.addresses[2]",
        {"type": "InternalIP", "address": "10.0.0.1"})


def test_provider_id_change_as_a_422() -> None:
    errs = _strategy_update(_node(providerID="aws:///i-1"), _node(providerID="aws:///i-2"))
    status = invalid_object("Node", "", "node-a", errs).status()
    assert status["code"] == 422
    assert status["message"] == f'Node "node-a" is invalid: {PROVIDER_ID}'
    assert status["details"]["causes"] == [{
        "reason": "FieldValueForbidden", "field": "spec.providerID",
        "message": 'Forbidden: node updates may not change providerID except from "" to valid'}]
