"""Decoding request bodies as kube-apiserver 1.33 does: unknown fields, type errors, stored form."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest

from lbctl.sandbox.errors import ApiError
from lbctl.sandbox.openapi.schema import (
    decode,
    decode_patched,
    definition,
    definition_name,
    patch_info,
    resolve,
    validate_full,
)
from lbctl.sandbox.openapi.spec import FieldPatch

pytestmark = pytest.mark.unit

SVC_PREFIX = 'Service in version "v1" cannot be handled as a Service: '


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                     "annotations": {"lbctl.io/pool": "a"}, "uid": "0b9c3c1e-1111-2222-3333-4444",
                     "resourceVersion": "12", "creationTimestamp": "2024-05-01T10:00:00Z",
                     "finalizers": ["service.kubernetes.io/load-balancer-cleanup"]},
        "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP",
                            "nodePort": 30080},
                           {"name": "https", "port": 443, "targetPort": "https",
                            "protocol": "TCP", "nodePort": 30443}],
                 "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"],
                 "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
                 "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
                 "allocateLoadBalancerNodePorts": True},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ipMode": "VIP"}]}},
    }


def mutated(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    obj = service()
    change(obj)
    return obj


def decode_error(obj: dict[str, Any], mode: str = "Warn", api_version: str = "v1",
                 kind: str = "Service") -> str:
    with pytest.raises(ApiError) as caught:
        decode(obj, api_version, kind, mode)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    return caught.value.message


@pytest.mark.parametrize(("api_version", "kind", "expected"), [
    ("v1", "Service", "io.k8s.api.core.v1.Service"),
    ("apps/v1", "Deployment", "io.k8s.api.apps.v1.Deployment"),
    ("coordination.k8s.io/v1", "Lease", "io.k8s.api.coordination.v1.Lease"),
    ("discovery.k8s.io/v1", "EndpointSlice", "io.k8s.api.discovery.v1.EndpointSlice"),
    ("v1", "Nope", None),
    ("lbctl.io/v1", "Pool", None),
])
def test_definition_name(api_version: str, kind: str, expected: str | None) -> None:
    assert definition_name(api_version, kind) == expected


def test_definition_and_ref_resolution() -> None:
    port = definition("io.k8s.api.core.v1.ServicePort")
    assert port["required"] == ["port"]
    target = resolve(port["properties"]["targetPort"])
    assert target == definition("io.k8s.apimachinery.pkg.util.intstr.IntOrString")
    with pytest.raises(KeyError):
        definition("io.k8s.api.core.v1.Nope")


@pytest.mark.parametrize(("api_version", "kind", "path", "expected"), [
    ("v1", "Service", ["spec", "ports"], ("merge", "port")),
    ("v1", "Service", ["metadata", "finalizers"], ("merge", "")),
    ("v1", "Service", ["metadata", "ownerReferences"], ("merge", "uid")),
    ("v1", "Service", ["status", "conditions"], ("merge", "type")),
    ("v1", "Service", ["spec", "selector"], ("", "")),
    ("v1", "Service", ["spec", "externalIPs"], ("", "")),
    ("v1", "Node", ["spec", "taints"], ("", "")),  # atomic upstream: patches replace taints
    ("v1", "Node", ["status", "addresses"], ("merge", "type")),
    ("apps/v1", "Deployment", ["spec", "template", "spec", "containers"], ("merge", "name")),
    ("apps/v1", "Deployment", ["spec", "template", "spec", "containers", "ports"],
     ("merge", "containerPort")),
    ("apps/v1", "Deployment", ["spec", "template", "spec", "volumes"],
     ("merge,retainKeys", "name")),
    ("apps/v1", "Deployment", ["spec", "strategy"], ("retainKeys", "")),
    ("v1", "Service", ["spec", "nope"], ("", "")),
    ("lbctl.io/v1", "Pool", ["spec"], ("", "")),
])
def test_patch_info(api_version: str, kind: str, path: list[str],
                    expected: tuple[str, str]) -> None:
    assert patch_info(api_version, kind, path) == FieldPatch(*expected)


def test_valid_service_round_trips_unchanged() -> None:
    obj = service()
    out, warnings = decode(obj, "v1", "Service", "Strict")
    assert (out, warnings) == (service(), [])
    assert out is not obj and out["spec"] is not obj["spec"]
    assert validate_full(out) == []


def _set(*path: Any, value: Any = 1) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        target = obj
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


UNKNOWN_FIELDS = [
    (_set("foo"), "foo"),
    (_set("Spec"), "Spec"),  # decoding is case-sensitive
    (_set("spec", "foo"), "spec.foo"),
    (_set("spec", "ports", 1, "bar"), "spec.ports[1].bar"),
    (_set("metadata", "nmae", value="x"), "metadata.nmae"),
    (_set("status", "loadBalancer", "ingress", 0, "x"), "status.loadBalancer.ingress[0].x"),
]


@pytest.mark.parametrize(("change", "path"), UNKNOWN_FIELDS)
def test_unknown_field_strict(change: Callable[[dict[str, Any]], None], path: str) -> None:
    message = decode_error(mutated(change), "Strict")
    assert message == f'{SVC_PREFIX}strict decoding error: unknown field "{path}"'


@pytest.mark.parametrize(("change", "path"), UNKNOWN_FIELDS)
@pytest.mark.parametrize("mode", ["Warn", ""])
def test_unknown_field_warn(change: Callable[[dict[str, Any]], None], path: str,
                            mode: str) -> None:
    out, warnings = decode(mutated(change), "v1", "Service", mode)
    assert warnings == [f'unknown field "{path}"']
    assert out == service()  # dropped


@pytest.mark.parametrize(("change", "path"), UNKNOWN_FIELDS)
def test_unknown_field_ignore(change: Callable[[dict[str, Any]], None], path: str) -> None:
    assert decode(mutated(change), "v1", "Service", "Ignore") == (service(), [])


def test_strict_lists_every_unknown_field_in_document_order() -> None:
    def change(obj: dict[str, Any]) -> None:
        obj["metadata"]["x"] = 1
        obj["spec"]["ports"][0]["bar"] = 2
        obj["spec"]["foo"] = 3
        obj["zzz"] = 4
    assert decode_error(mutated(change), "Strict") == (
        SVC_PREFIX + 'strict decoding error: unknown field "metadata.x", '
        'unknown field "spec.ports[0].bar", unknown field "spec.foo", unknown field "zzz"')


TYPE_ERRORS = [
    (_set("spec", "ports", 0, "port", value="80"),
     "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port "
     "of type int32"),
    (_set("spec", "ports", 0, "port", value=1.5),
     "json: cannot unmarshal number 1.5 into Go struct field ServicePort.spec.ports.port "
     "of type int32"),
    (_set("spec", "ports", 0, "port", value=3000000000),
     "json: cannot unmarshal number 3000000000 into Go struct field ServicePort.spec.ports.port "
     "of type int32"),
    (_set("spec", "ports", value={"port": 80}),
     "json: cannot unmarshal object into Go struct field ServiceSpec.spec.ports "
     "of type []v1.ServicePort"),
    (_set("spec", value="x"),
     "json: cannot unmarshal string into Go struct field Service.spec of type v1.ServiceSpec"),
    (_set("spec", "clusterIPs", value=["a", 1]),
     "json: cannot unmarshal number into Go struct field ServiceSpec.spec.clusterIPs "
     "of type string"),
    (_set("metadata", "labels", "tier", value=1),
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels "
     "of type string"),
    (_set("spec", "allocateLoadBalancerNodePorts", value="yes"),
     "json: cannot unmarshal string into Go struct field "
     "ServiceSpec.spec.allocateLoadBalancerNodePorts of type bool"),
    (_set("spec", "ports", 0, "targetPort", value=True),
     "json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort "
     "of type int32"),
    (_set("spec", "ports", 0, "targetPort", value=[80]),
     "json: cannot unmarshal array into Go struct field ServicePort.spec.ports.targetPort "
     "of type int32"),
    (_set("metadata", "creationTimestamp", value="yesterday"),
     'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" '
     'as "2006"'),
    (_set("metadata", "creationTimestamp", value=5),
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.creationTimestamp "
     "of type string"),
]


@pytest.mark.parametrize(("change", "error"), TYPE_ERRORS)
@pytest.mark.parametrize("mode", ["Strict", "Warn", "Ignore"])
def test_type_mismatch(change: Callable[[dict[str, Any]], None], error: str, mode: str) -> None:
    assert decode_error(mutated(change), mode) == SVC_PREFIX + error


def test_type_error_wins_over_unknown_fields() -> None:
    def change(obj: dict[str, Any]) -> None:
        obj["spec"]["foo"] = 1
        obj["spec"]["ports"] = "x"
    assert decode_error(mutated(change), "Strict") == (
        SVC_PREFIX + "json: cannot unmarshal string into Go struct field ServiceSpec.spec.ports "
        "of type []v1.ServicePort")


@pytest.mark.parametrize("target", [8080, "http", 0, "8080"])
def test_int_or_string_takes_both(target: int | str) -> None:
    out, _ = decode(mutated(_set("spec", "ports", 0, "targetPort", value=target)), "v1", "Service")
    assert out["spec"]["ports"][0]["targetPort"] == target


def test_null_fields_are_dropped() -> None:
    out, _ = decode(mutated(_set("spec", "clusterIP", value=None)), "v1", "Service")
    assert "clusterIP" not in out["spec"]


@pytest.mark.parametrize(("change", "path", "expected"), [
    (_set("metadata", "labels", "gone", value=None), ("metadata", "labels", "gone"), ""),
    (_set("spec", "clusterIPs", value=["10.96.0.10", None]), ("spec", "clusterIPs", 1), ""),
    (_set("metadata", "creationTimestamp", value="2024-05-01T12:00:00.5+02:00"),
     ("metadata", "creationTimestamp"), "2024-05-01T10:00:00Z"),
])
def test_stored_form(change: Callable[[dict[str, Any]], None], path: tuple[Any, ...],
                     expected: Any) -> None:
    """Go's round trip: null map values and list items become zero values, times UTC seconds."""
    target: Any = decode(mutated(change), "v1", "Service")[0]
    for key in path:
        target = target[key]
    assert target == expected


def test_decode_leaves_its_input_alone() -> None:
    obj = mutated(_set("spec", "foo"))
    before = copy.deepcopy(obj)
    decode(obj, "v1", "Service", "Warn")
    assert obj == before


def pod(resources: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx", "resources": resources}]}}


QUANTITY_WRONG = ("quantities must match the regular expression "
                  "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


@pytest.mark.parametrize(("value", "stored", "error"), [
    ("100m", "100m", None),
    ("1Gi", "1Gi", None),
    ("1e3", "1e3", None),
    (2, "2", None),
    ("1Mm", None, "unable to parse quantity's suffix"),
    ("1Gb", None, QUANTITY_WRONG),
    ("abc", None, QUANTITY_WRONG),
    (True, None, QUANTITY_WRONG),
])
def test_quantities(value: Any, stored: str | None, error: str | None) -> None:
    obj = pod({"limits": {"memory": value}})
    if error is not None:
        assert decode_error(obj, kind="Pod") == (
            f'Pod in version "v1" cannot be handled as a Pod: {error}')
    else:
        out, _ = decode(obj, "v1", "Pod")
        assert out["spec"]["containers"][0]["resources"]["limits"]["memory"] == stored


@pytest.mark.parametrize(("data", "error"), [
    ("aGVsbG8=", None),
    ("aGVs\nbG8=", None),
    ("aGVsbG8", "illegal base64 data at input byte 4"),
    ("aGV$bG8=", "illegal base64 data at input byte 3"),
    (5, "json: cannot unmarshal number into Go struct field Secret.data of type []uint8"),
])
def test_secret_data_is_base64(data: Any, error: str | None) -> None:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": data}}
    if error is None:
        assert decode(obj, "v1", "Secret")[0]["data"] == {"k": data}
    else:
        assert decode_error(obj, kind="Secret") == (
            f'Secret in version "v1" cannot be handled as a Secret: {error}')


@pytest.mark.parametrize(("renew", "error"), [
    ("2024-05-01T10:00:00.123456Z", None),
    ("2024-05-01T10:00:00Z", 'cannot parse "Z" as ".000000"'),
    ("2024-05-01T10:00:00.123456789Z", 'cannot parse "789Z" as "Z07:00"'),
])
def test_micro_time_wants_microseconds(renew: str, error: str | None) -> None:
    obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
           "spec": {"renewTime": renew}}
    if error is None:
        assert decode(obj, "coordination.k8s.io/v1", "Lease")[0]["spec"]["renewTime"] == renew
    else:
        message = decode_error(obj, api_version="coordination.k8s.io/v1", kind="Lease")
        assert message == (f'Lease in version "v1" cannot be handled as a Lease: parsing time '
                           f'"{renew}" as "2006-01-02T15:04:05.000000Z07:00": {error}')


def test_deployment_nested_lists_and_int_or_string() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                    "template": {"spec": {"containers": [
                        {"name": "a", "image": "x", "ports": [{"containerPort": 80, "bogus": 1}]},
                    ]}}}}
    out, warnings = decode(obj, "apps/v1", "Deployment")
    assert warnings == ['unknown field "spec.template.spec.containers[0].ports[0].bogus"']
    assert out["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80}]
    assert out["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 1}


@pytest.mark.parametrize(("change", "mode", "error"), [
    (_set("spec", "ports", 0, "port", value="80"), "Warn",
     "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port "
     "of type int32"),
    (_set("spec", "foo"), "Strict", 'strict decoding error: unknown field "spec.foo"'),
])
def test_decode_patched_reports_on_the_patch(change: Callable[[dict[str, Any]], None], mode: str,
                                             error: str) -> None:
    with pytest.raises(ApiError) as caught:
        decode_patched(mutated(change), "v1", "Service", mode, "map[spec:map[foo:1]]")
    assert (caught.value.code, caught.value.reason) == (422, "Invalid")
    assert caught.value.message == (
        f' "" is invalid: patch: Invalid value: "map[spec:map[foo:1]]": {error}')
    assert caught.value.details["causes"][0]["field"] == "patch"


def test_decode_patched_warns_like_decode() -> None:
    out, warnings = decode_patched(mutated(_set("spec", "foo")), "v1", "Service", "Warn", "{}")
    assert (out, warnings) == (service(), ['unknown field "spec.foo"'])


def test_unknown_kinds_pass_through() -> None:
    obj = {"apiVersion": "lbctl.io/v1", "kind": "Pool", "spec": {"anything": [1, {"x": None}]}}
    out, warnings = decode(obj, "lbctl.io/v1", "Pool", "Strict")
    assert out is obj and warnings == []


def test_bad_field_validation_value() -> None:
    with pytest.raises(ValueError, match="fieldValidation"):
        decode(service(), "v1", "Service", "strict")


def test_validate_full_reports_schema_errors() -> None:
    bad = mutated(_set("spec", "ports", 0, "foo"))
    assert validate_full(bad) == [
        "spec.ports.0: Additional properties are not allowed ('foo' was unexpected)"]
    assert validate_full({"apiVersion": "lbctl.io/v1", "kind": "Pool"}) == [
        "Couldn't find schema for kind Pool with api version lbctl.io/v1 "
        "for kubernetes version 1.33"]


def test_decode_is_fast() -> None:
    obj = service()
    decode(obj, "v1", "Service")  # compile the schema nodes first
    runs = 1000
    start = time.perf_counter()
    for _ in range(runs):
        decode(obj, "v1", "Service", "Warn")
    assert (time.perf_counter() - start) / runs < 1e-3
