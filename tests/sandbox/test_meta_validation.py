"""ObjectMeta validation against kube-apiserver 1.33's checks and 422 messages."""

from __future__ import annotations

from typing import Any

import pytest

from lbctl.sandbox.admission.meta import (
    generate_name,
    prepare_meta_for_update,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)
from lbctl.sandbox.errors import FieldError, invalid_object
from tests.sandbox.kube_messages import DNS1035, DNS1123_LABEL, LABEL_VALUE, NAME_PART, SUBDOMAIN

pytestmark = pytest.mark.unit


def _obj(**meta: Any) -> dict[str, Any]:
    return {"metadata": meta}


def _messages(errs: list[FieldError]) -> list[str]:
    return [str(e) for e in errs]


@pytest.mark.parametrize(("rule", "name", "expected"), [
    ("subdomain", "my.app-1", []),
    ("subdomain", "My_App", [f'metadata.name: Invalid value: "My_App": {SUBDOMAIN}']),
    ("subdomain", "a" * 254, [f'metadata.name: Invalid value: "{"a" * 254}": '
                              "must be no more than 253 characters"]),
    ("dns1123label", "1-ns", []),
    ("dns1123label", "my.ns", ['metadata.name: Invalid value: "my.ns": must not contain dots']),
    ("dns1123label", "My_ns", [f'metadata.name: Invalid value: "My_ns": {DNS1123_LABEL}']),
    ("dns1123label", "a" * 64, [f'metadata.name: Invalid value: "{"a" * 64}": '
                                "must be no more than 63 characters"]),
    ("dns1035", "web-1", []),
    ("dns1035", "My_Svc", [f'metadata.name: Invalid value: "My_Svc": {DNS1035}']),
    ("dns1035", "1web", [f'metadata.name: Invalid value: "1web": {DNS1035}']),
    ("path", "system:controller:Foo_bar", []),
    ("path", "a/b%", ["metadata.name: Invalid value: \"a/b%\": may not contain '/'",
                      "metadata.name: Invalid value: \"a/b%\": may not contain '%'"]),
    ("path", "..", ["metadata.name: Invalid value: \"..\": may not be '..'"]),
])
def test_name_rules(rule: str, name: str, expected: list[str]) -> None:
    assert _messages(validate_object_meta(_obj(name=name), False, rule)) == expected


def test_name_or_generate_name_is_required() -> None:
    errs = validate_object_meta(_obj(), False, "subdomain")
    assert _messages(errs) == ["metadata.name: Required value: name or generateName is required"]


def test_generate_name_is_validated_as_a_prefix() -> None:
    assert validate_object_meta(_obj(name="web-x7k2p", generateName="web-"), False,
                                "dns1035") == []
    assert _messages(validate_object_meta(_obj(name="webx7k2p", generateName="Web"), False,
                                          "dns1035")) == [
        f'metadata.generateName: Invalid value: "Web": {DNS1035}']


@pytest.mark.parametrize(("namespaced", "namespace", "expected"), [
    (True, "default", []),
    (True, "", ["metadata.namespace: Required value"]),
    (True, "Bad_NS", [f'metadata.namespace: Invalid value: "Bad_NS": {DNS1123_LABEL}']),
    (False, "default", ["metadata.namespace: Forbidden: not allowed on this type"]),
])
def test_namespace(namespaced: bool, namespace: str, expected: list[str]) -> None:
    obj = _obj(name="x", namespace=namespace)
    assert _messages(validate_object_meta(obj, namespaced, "subdomain")) == expected


@pytest.mark.parametrize(("meta", "expected"), [
    ({"labels": {"app": "web", "example.com/tier": ""}}, []),
    ({"labels": {"bad key": "v"}}, [f'metadata.labels: Invalid value: "bad key": {NAME_PART}']),
    ({"labels": {"k": "-v"}}, [f'metadata.labels: Invalid value: "-v": {LABEL_VALUE}']),
    ({"labels": {"k": "v" * 64}}, [f'metadata.labels: Invalid value: "{"v" * 64}": '
                                   "must be no more than 63 characters"]),
    ({"labels": {"Example.com/a": "v"}}, [
        'metadata.labels: Invalid value: "Example.com/a": prefix part ' + SUBDOMAIN]),
    ({"annotations": {"Example.COM/Note": "x", "kubectl.kubernetes.io/x": "y"}}, []),
    ({"annotations": {"a b": "x"}}, [
        f'metadata.annotations: Invalid value: "a b": {NAME_PART}']),
    ({"annotations": {"big": "x" * 262142}}, [
        "metadata.annotations: Too long: may not be more than 262144 bytes"]),
    ({"annotations": {"big": "x" * 262141}}, []),
    ({"generation": -1}, ["metadata.generation: Invalid value: -1: "
                          "must be greater than or equal to 0"]),
    ({"finalizers": ["kubernetes", "orphan", "example.com/cleanup"]}, []),
    ({"finalizers": ["cleanup"]}, ['metadata.finalizers[0]: Invalid value: "cleanup": name is '
                                   "neither a standard finalizer name nor is it fully qualified"]),
    ({"finalizers": ["a/b/c"]}, [
        'metadata.finalizers: Invalid value: "a/b/c": a qualified name must consist of '
        "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
        "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and "
        "'/' (e.g. 'example.com/MyName')"]),
    ({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                           "uid": "u1", "controller": True}]}, []),
    ({"ownerReferences": [{"apiVersion": "apps/", "kind": "", "name": "", "uid": ""}]}, [
        'metadata.ownerReferences.apiVersion: Invalid value: "apps/": version must not be empty',
        'metadata.ownerReferences.kind: Invalid value: "": must not be empty',
        'metadata.ownerReferences.name: Invalid value: "": must not be empty',
        'metadata.ownerReferences.uid: Invalid value: "": must not be empty']),
    ({"managedFields": [{"manager": "kubectl", "operation": "Patch"}]}, [
        'metadata.managedFields[0].operation: Invalid value: "Patch": '
        "must be `Apply` or `Update`"]),
])
def test_metadata_fields(meta: dict[str, Any], expected: list[str]) -> None:
    obj = _obj(name="x", namespace="default", **meta)
    assert _messages(validate_object_meta(obj, True, "subdomain")) == expected


def test_orphan_and_foreground_deletion_cannot_both_be_set() -> None:
    obj = _obj(name="x", finalizers=["orphan", "foregroundDeletion"])
    (err,) = validate_object_meta(obj, False, "subdomain")
    assert (err.type, err.field, err.value) == ("FieldValueInvalid", "metadata.finalizers",
                                                ["orphan", "foregroundDeletion"])
    assert err.detail == "finalizer orphan and foregroundDeletion cannot be both set"


def test_owner_references_reject_events_and_second_controller() -> None:
    refs = [{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "1"},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "2",
             "controller": True},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "3",
             "controller": True}]
    banned, second = validate_object_meta(_obj(name="x", ownerReferences=refs), False, "path")
    assert (banned.field, banned.detail) == ("metadata.ownerReferences",
                                             "/v1, Kind=Event is disallowed from being an owner")
    assert list(banned.value) == ["apiVersion", "kind", "name", "uid"]
    assert second.field == "metadata.ownerReferences"
    assert second.detail == ('Only one reference can have Controller set to true. Found "true" '
                             "in references for ReplicaSet/a and ReplicaSet/b")


def test_invalid_object_message_aggregates_in_upstream_order() -> None:
    errs = validate_object_meta(_obj(name="My_Svc", labels={"k": "-v"}), True, "dns1035")
    status = invalid_object("Service", "", "My_Svc", errs)
    assert status.message == (
        f'Service "My_Svc" is invalid: [metadata.name: Invalid value: "My_Svc": {DNS1035}, '
        "metadata.namespace: Required value, "
        f'metadata.labels: Invalid value: "-v": {LABEL_VALUE}]')


STORED: dict[str, dict[str, Any]] = {"metadata": {
    "name": "x", "namespace": "d", "uid": "u-1", "resourceVersion": "7",
    "creationTimestamp": "2025-01-01T00:00:00Z", "generation": 3, "finalizers": ["example.com/a"]}}


def _update(**changes: Any) -> dict[str, Any]:
    meta = {**STORED["metadata"], **changes}
    return {"metadata": {k: v for k, v in meta.items() if v is not None}}


@pytest.mark.parametrize(("new", "expected"), [
    (_update(), []),
    (_update(labels={"a": "b"}, finalizers=[]), []),
    (_update(name="y"), ['metadata.name: Invalid value: "y": field is immutable']),
    (_update(namespace="e"), ['metadata.namespace: Invalid value: "e": field is immutable']),
    (_update(uid="u-2"), ['metadata.uid: Invalid value: "u-2": field is immutable']),
    (_update(creationTimestamp="2025-02-02T00:00:00Z"), [
        'metadata.creationTimestamp: Invalid value: "2025-02-02T00:00:00Z": field is immutable']),
    (_update(deletionTimestamp="2025-02-02T00:00:00Z"), [
        'metadata.deletionTimestamp: Invalid value: "2025-02-02T00:00:00Z": field is immutable']),
    (_update(deletionGracePeriodSeconds=0), [
        "metadata.deletionGracePeriodSeconds: Invalid value: 0: field is immutable"]),
    (_update(resourceVersion=None), [
        'metadata.resourceVersion: Invalid value: "": must be specified for an update']),
    (_update(generation=2), ["metadata.generation: Invalid value: 2: must not be decremented"]),
    (_update(finalizers=["cleanup"]), [
        'metadata.finalizers[0]: Invalid value: "cleanup": name is neither a standard finalizer '
        "name nor is it fully qualified"]),
    (_update(labels={"k": "-v"}), [f'metadata.labels: Invalid value: "-v": {LABEL_VALUE}']),
])
def test_object_meta_update(new: dict[str, Any], expected: list[str]) -> None:
    assert _messages(validate_object_meta_update(STORED, new)) == expected


def test_no_new_finalizers_while_deleting() -> None:
    deleting = _update(deletionTimestamp="2025-03-03T00:00:00Z", deletionGracePeriodSeconds=30)
    new = prepare_meta_for_update(
        deleting, _update(finalizers=["example.com/a", "example.com/z", "example.com/b"]))
    assert _messages(validate_object_meta_update(deleting, new)) == [
        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being "
        'deleted, found new finalizers []string{"example.com/b", "example.com/z"}']
    assert validate_object_meta_update(deleting, prepare_meta_for_update(deleting, _update(
        finalizers=[]))) == []


def test_prepare_meta_for_update_carries_over_what_updates_may_omit() -> None:
    old = _update(deletionTimestamp="2025-03-03T00:00:00Z", deletionGracePeriodSeconds=30)
    sent: dict[str, dict[str, Any]] = {
        "metadata": {"name": "x", "namespace": "d", "resourceVersion": "7", "generation": 3,
                     "creationTimestamp": "2030-01-01T00:00:00Z"},
        "spec": {"a": 1}}
    prepared = prepare_meta_for_update(old, sent)
    assert prepared["spec"] == {"a": 1}
    assert prepared["metadata"]["uid"] == "u-1"
    assert prepared["metadata"]["creationTimestamp"] == "2025-01-01T00:00:00Z"
    assert prepared["metadata"]["deletionTimestamp"] == "2025-03-03T00:00:00Z"
    assert prepared["metadata"]["deletionGracePeriodSeconds"] == 30
    assert "uid" not in sent["metadata"]  # the input is left alone
    assert validate_object_meta_update(old, prepared) == []


def test_generate_name_is_upstreams_simple_generator() -> None:
    name = generate_name("web-")
    assert name.startswith("web-") and len(name) == 9
    assert set(name[4:]) <= set("bcdfghjklmnpqrstvwxz2456789")
    long = generate_name("x" * 80)
    assert long[:58] == "x" * 58 and len(long) == 63


@pytest.mark.parametrize(("selector", "expected"), [
    (None, []),
    ({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}, []),
    ({"matchExpressions": [{"key": "tier", "operator": "In"}]}, [
        "spec.selector.matchExpressions[0].values: Required value: must be specified when "
        "`operator` is 'In' or 'NotIn'"]),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists", "values": ["a"]}]}, [
        "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when "
        "`operator` is 'Exists' or 'DoesNotExist'"]),
    ({"matchExpressions": [{"key": "tier", "operator": "Equals", "values": ["a"]}]}, [
        'spec.selector.matchExpressions[0].operator: Invalid value: "Equals": '
        "not a valid selector operator"]),
    ({"matchExpressions": [{"key": "t_", "operator": "NotIn", "values": ["-a"]}]}, [
        f'spec.selector.matchExpressions[0].key: Invalid value: "t_": {NAME_PART}',
        f'spec.selector.matchExpressions[0].values[0]: Invalid value: "-a": {LABEL_VALUE}']),
    ({"matchLabels": {"app": "-web"}}, [
        f'spec.selector.matchLabels: Invalid value: "-web": {LABEL_VALUE}']),
])
def test_validate_label_selector(selector: dict[str, Any] | None, expected: list[str]) -> None:
    assert _messages(validate_label_selector(selector, "spec.selector")) == expected
