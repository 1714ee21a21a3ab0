"""Merge, JSON and strategic merge patches with kube-apiserver 1.33's results and errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lbctl.sandbox.encoding.patch import json_patch, merge_patch, strategic_merge_patch
from lbctl.sandbox.errors import ApiError
from lbctl.sandbox.openapi.schema import decode, validate_full

pytestmark = pytest.mark.unit

HTTP = {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
HTTPS = {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
OWNER_1 = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o1", "uid": "u1"}
OWNER_2 = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o2", "uid": "u2"}
SINCE = "2024-05-01T10:00:00Z"
READY = {"type": "Ready", "status": "False", "reason": "Pending", "message": "",
         "lastTransitionTime": SINCE}
SYNCED = {"type": "Synced", "status": "True", "reason": "Done", "message": "",
          "lastTransitionTime": SINCE}
GENERIC_422 = "the server rejected our request due to an error in our request"


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "labels": {"app": "web"},
                     "finalizers": ["a.io/one", "b.io/two"],
                     "ownerReferences": [dict(OWNER_1), dict(OWNER_2)]},
        "spec": {"selector": {"app": "web"}, "ports": [dict(HTTP), dict(HTTPS)],
                 "externalIPs": ["192.0.2.1", "192.0.2.2"]},
        "status": {"conditions": [dict(READY), dict(SYNCED)]},
    }


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                 "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [
                     {"name": "web", "image": "nginx:1",
                      "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                     {"name": "sidecar", "image": "busybox"},
                 ]}}},
    }


def at(obj: Any, path: str) -> Any:
    for key in path.split("."):
        obj = obj[int(key)] if isinstance(obj, list) else obj[key]
    return obj


def smp(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    before = (copy.deepcopy(original), copy.deepcopy(patch))
    out = strategic_merge_patch(original, patch, original["apiVersion"], original["kind"])
    assert (original, patch) == before  # pure
    return out


SERVICE_CASES: list[tuple[str, dict[str, Any], str, Any]] = [
    # lists with a merge key merge item by item; an item new to the list lands first, as upstream
    ("add a port", {"spec": {"ports": [{"name": "metrics", "port": 9090}]}},
     "spec.ports", [{"name": "metrics", "port": 9090}, HTTP, HTTPS]),
    ("change targetPort of port 80", {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}},
     "spec.ports", [{**HTTP, "targetPort": 9090}, HTTPS]),
    ("change port 443 keeps the order", {"spec": {"ports": [{"port": 443, "name": "tls"}]}},
     "spec.ports", [HTTP, {**HTTPS, "name": "tls"}]),
    ("$patch: delete one port", {"spec": {"ports": [{"port": 80, "$patch": "delete"}]}},
     "spec.ports", [HTTPS]),
    ("$patch: replace the list", {"spec": {"ports": [{"$patch": "replace"}, {"port": 81}]}},
     "spec.ports", [{"port": 81}]),
    ("$setElementOrder reorders", {"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}],
                                            "ports": [{"port": 80, "name": "web"}]}},
     "spec.ports", [HTTPS, {**HTTP, "name": "web"}]),
    ("$setElementOrder places a new port", {"spec": {
        "$setElementOrder/ports": [{"port": 80}, {"port": 443}, {"port": 9090}],
        "ports": [{"port": 9090, "name": "metrics"}]}},
     "spec.ports", [HTTP, HTTPS, {"port": 9090, "name": "metrics"}]),
    # primitive lists with strategy merge are set unions
    ("finalizers union", {"metadata": {"finalizers": ["c.io/three", "a.io/one"]}},
     "metadata.finalizers", ["c.io/three", "a.io/one", "b.io/two"]),
    ("$deleteFromPrimitiveList",
     {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/one"]}},
     "metadata.finalizers", ["b.io/two"]),
    ("kubectl apply style finalizers", {"metadata": {
        "$setElementOrder/finalizers": ["b.io/two", "c.io/three"],
        "$deleteFromPrimitiveList/finalizers": ["a.io/one"], "finalizers": ["c.io/three"]}},
     "metadata.finalizers", ["b.io/two", "c.io/three"]),
    ("conditions merge by type",
     {"status": {"conditions": [{"type": "Synced", "status": "False", "reason": "Err"}]}},
     "status.conditions", [READY, {**SYNCED, "status": "False", "reason": "Err"}]),
    ("ownerReferences merge by uid",
     {"metadata": {"ownerReferences": [{"uid": "u2", "name": "x"}]}},
     "metadata.ownerReferences", [OWNER_1, {**OWNER_2, "name": "x"}]),
    # other lists are replaced, maps merge, null deletes
    ("externalIPs are replaced", {"spec": {"externalIPs": ["192.0.2.9"]}},
     "spec.externalIPs", ["192.0.2.9"]),
    ("maps merge", {"spec": {"selector": {"tier": "fe"}}},
     "spec.selector", {"app": "web", "tier": "fe"}),
    ("$patch: replace on a map", {"spec": {"selector": {"$patch": "replace", "tier": "fe"}}},
     "spec.selector", {"tier": "fe"}),
    ("$patch: delete on a map", {"metadata": {"labels": {"$patch": "delete"}}},
     "metadata.labels", {}),
    ("null deletes a key", {"metadata": {"labels": {"app": None, "new": "1"}}},
     "metadata.labels", {"new": "1"}),
    ("null in a new map is dropped", {"metadata": {"annotations": {"a": None, "b": "1"}}},
     "metadata.annotations", {"b": "1"}),
    ("$retainKeys", {"metadata": {"$retainKeys": ["name", "labels"], "labels": {"x": "1"}}},
     "metadata", {"name": "web", "labels": {"app": "web", "x": "1"}}),
]


@pytest.mark.parametrize(("patch", "path", "expected"),
                         [case[1:] for case in SERVICE_CASES], ids=[c[0] for c in SERVICE_CASES])
def test_strategic_merge_patch_service(patch: dict[str, Any], path: str, expected: Any) -> None:
    assert at(smp(service(), patch), path) == expected


def test_strategic_merge_patch_null_field_removes_it() -> None:
    assert "selector" not in smp(service(), {"spec": {"selector": None}})["spec"]


@pytest.mark.parametrize(("patch", "expected"), [
    ({"containers": [{"name": "web", "image": "nginx:2",
                      "ports": [{"containerPort": 443, "protocol": "TCP"}]}]},
     [{"name": "web", "image": "nginx:2", "ports": [{"containerPort": 443, "protocol": "TCP"},
                                                     {"containerPort": 80, "protocol": "TCP"}]},
      {"name": "sidecar", "image": "busybox"}]),
    ({"containers": [{"name": "debug", "image": "alpine"}]},
     [{"name": "debug", "image": "alpine"},
      {"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
      {"name": "sidecar", "image": "busybox"}]),
    ({"containers": [{"name": "web", "ports": [{"containerPort": 80, "$patch": "delete"}]}]},
     [{"name": "web", "image": "nginx:1", "ports": []}, {"name": "sidecar", "image": "busybox"}]),
])
def test_strategic_merge_patch_containers_by_name(patch: dict[str, Any],
                                                  expected: list[Any]) -> None:
    out = smp(deployment(), {"spec": {"template": {"spec": patch}}})
    assert out["spec"]["template"]["spec"]["containers"] == expected


def test_strategic_merge_patch_retain_keys_strategy() -> None:
    out = smp(deployment(), {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_node_taints_are_atomic() -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
            "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}}
    out = smp(node, {"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}})
    assert out["spec"]["taints"] == [{"key": "b", "effect": "NoExecute"}]


def test_patched_service_is_still_valid() -> None:
    out = smp(service(), {"spec": {"ports": [{"name": "metrics", "port": 9090}]}})
    stored, warnings = decode(out, "v1", "Service", "Strict")
    assert warnings == [] and validate_full(stored) == []


def test_strategic_merge_patch_null_and_unknown_kinds() -> None:
    assert smp(service(), None) == service()
    pool = {"apiVersion": "lbctl.io/v1", "kind": "Pool", "spec": {"l": [1, 2], "m": {"a": 1}}}
    assert smp(pool, {"spec": {"l": [3], "m": {"b": 2, "a": None}}}) == {
        "apiVersion": "lbctl.io/v1", "kind": "Pool", "spec": {"l": [3], "m": {"b": 2}}}


@pytest.mark.parametrize(("patch", "code", "message"), [
    ([1], 400, "json: cannot unmarshal array into Go value of type map[string]interface {}"),
    ({"metadata": {"$retainKeys": "name"}}, 400, "invalid patch format of retainKeys"),
    ({"metadata": {"$retainKeys": ["name"], "labels": {"a": "b"}}}, 400,
     "invalid patch format of retainKeys"),
    ({"metadata": {"$deleteFromPrimitiveList": ["a.io/one"]}}, 400,
     "invalid patch format of primitive list"),
    ({"spec": {"$setElementOrder": [{"port": 80}]}}, 400,
     "invalid patch format of setElementOrder list"),
    ({"spec": {"ports": [{"targetPort": 1}]}}, 500,
     "map: map[targetPort:1] does not contain declared merge key: port"),
    ({"spec": {"ports": [{"port": 80, "$patch": "bogus"}]}}, 500,
     "unknown patch type: bogus in map: map[$patch:bogus port:80]"),
    ({"spec": {"ports": [{"port": 80, "$patch": "merge"}]}}, 500,
     "merging lists cannot yet be specified in the patch"),
    ({"spec": {"selector": {"$patch": "merge"}}}, 500,
     "unknown patch type: merge in map: map[$patch:merge]"),
    ({"spec": {"$setElementOrder/ports": [{"port": 443}], "ports": [{"port": 80}]}}, 500,
     "the order in patch list:\n[map[port:80]]\n doesn't match $setElementOrder list:\n"
     "[map[port:443]]"),
    ({"metadata": {"finalizers": ["x", 1]}}, 500,
     "list element types are not identical: [[a.io/one b.io/two] [x 1]]"),
])
def test_strategic_merge_patch_errors(patch: Any, code: int, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        smp(service(), patch)
    assert (caught.value.code, caught.value.message) == (code, message)
    assert caught.value.reason == {400: "BadRequest", 500: ""}[code]


def test_strategic_merge_patch_refuses_lists_of_lists() -> None:
    empty = {"apiVersion": "v1", "kind": "Service", "metadata": {"finalizers": []}}
    with pytest.raises(ApiError) as caught:
        smp(empty, {"metadata": {"finalizers": [["a"]]}})
    assert (caught.value.code, caught.value.reason, caught.value.message) == (
        422, "Invalid", GENERIC_422)


@pytest.mark.parametrize(("target", "patch", "expected"), [
    ({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": 4}}, {"a": 1, "b": {"d": 3, "e": 4}}),
    ({"l": [1, 2]}, {"l": [3]}, {"l": [3]}),
    ({}, {"a": {"b": None, "c": 1}}, {"a": {"c": 1}}),
    ({"a": 1}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ({"a": {"b": 1}}, {"a": 2}, {"a": 2}),
    ({"a": 1}, {"b": None}, {"a": 1}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),  # RFC 7386 appendix A
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({"a": "b"}, {}, {"a": "b"}),
])
def test_merge_patch(target: dict[str, Any], patch: dict[str, Any],
                     expected: dict[str, Any]) -> None:
    before = (copy.deepcopy(target), copy.deepcopy(patch))
    assert merge_patch(target, patch) == expected
    assert (target, patch) == before


@pytest.mark.parametrize(("patch", "message"), [
    (None, "Invalid JSON Patch"),
    ([{"a": 1}], "error decoding patch: json: cannot unmarshal array into Go value of type "
                 "map[string]interface {}"),
    ("x", "error decoding patch: json: cannot unmarshal string into Go value of type "
          "map[string]interface {}"),
])
def test_merge_patch_errors(patch: Any, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        merge_patch({"a": 1}, patch)
    assert (caught.value.code, caught.value.reason, caught.value.message) == (
        400, "BadRequest", message)


def config_map() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"a": "1"}}


@pytest.mark.parametrize(("ops", "expected"), [
    ([{"op": "add", "path": "/data/b", "value": "2"}], {"a": "1", "b": "2"}),
    ([{"op": "replace", "path": "/data/a", "value": "9"}], {"a": "9"}),
    ([{"op": "remove", "path": "/data/a"}], {}),
    ([{"op": "test", "path": "/data/a", "value": "1"},
      {"op": "copy", "from": "/data/a", "path": "/data/c"}], {"a": "1", "c": "1"}),
])
def test_json_patch(ops: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    original = config_map()
    assert json_patch(original, ops)["data"] == expected
    assert original == config_map()


@pytest.mark.parametrize(("ops", "code", "reason", "message"), [
    ([{"op": "test", "path": "/data/a", "value": "2"}], 422, "Invalid", GENERIC_422),
    ([{"op": "remove", "path": "/data/missing"}], 422, "Invalid", GENERIC_422),
    ([{"op": "replace", "path": "/nope/x", "value": 1}], 422, "Invalid", GENERIC_422),
    ([{"op": "add", "value": 1}], 422, "Invalid", GENERIC_422),
    ([{"op": "append", "path": "/data/a", "value": "x"}], 422, "Invalid", GENERIC_422),
    ({"op": "add"}, 400, "BadRequest", "error decoding patch: json: cannot unmarshal object "
                                       "into Go value of type []handlers.jsonPatchOp"),
    (["add"], 400, "BadRequest", "error decoding patch: json: cannot unmarshal string into Go "
                                 "value of type handlers.jsonPatchOp"),
    ([{"op": "add", "path": 5}], 400, "BadRequest", "error decoding patch: json: cannot "
     "unmarshal number into Go struct field jsonPatchOp.path of type string"),
    ([{"op": "test", "path": "/data/a", "value": "1"}] * 10001, 413, "RequestEntityTooLarge",
     "Request entity too large: The allowed maximum operations in a JSON patch is 10000, "
     "got 10001"),
])
def test_json_patch_errors(ops: Any, code: int, reason: str, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        json_patch(config_map(), ops)
    assert (caught.value.code, caught.value.reason, caught.value.message) == (
        code, reason, message)
