"""The sandbox's answers checked against references it does not make itself.

- Objects as served (the answers of creates, status and metadata patches and GETs, and list
  items) of the kinds lbctl reads and writes - Service, Node, ConfigMap, Event (core and
  events.k8s.io) and EndpointSlice - are validated with jsonschema against the published 1.33
  JSON schemas that kubernetes-validate ships (its strict rendering: no field the schema does
  not name), every error reported, not through the sandbox's own `validate_full`.
  (`test_crud.py` checks freshly created objects of every kind that way; these are the objects
  after lbctl's kind of writes: ingress with ipMode and port errors, conditions, finalizers,
  taints, aggregated Events, the EndpointSlices the workload controllers make.)
- The Service, Node, EndpointSlice and Event definitions the sandbox serves at /openapi/v2 and
  /openapi/v3 have the published definitions' property names, types, formats and required
  fields; and every field lbctl uses is named, with a matching type, in the official Python
  client's models, which are generated from upstream's OpenAPI without kubernetes-validate.

Each check first proves it can fail: a copy of the served object with a field of the wrong type
and an unknown field must be refused.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # kubernetes-validate brings it, untyped
import pytest
from kubernetes import client
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from lbctl.sandbox.app import Sandbox
from tests.conftest import admin_call, wait_for

pytestmark = pytest.mark.integration

VERSION = "1.33.0"
STRICT = f"kubernetes-json-schema/v{VERSION}-local-strict"
PUBLISHED = f"kubernetes-json-schema/v{VERSION}-local"
SMP = {"Content-Type": "application/strategic-merge-patch+json"}
MERGE = {"Content-Type": "application/merge-patch+json"}


# -- the published schemas ----------------------------------------------------------------------
@functools.cache
def _validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = schema_contents(f"{STRICT}/{kind.lower()}-{group_version}.json", VERSION)
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(
        schema_contents(f"{STRICT}/_definitions.json", VERSION)) @ registry
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def schema_errors(obj: dict[str, Any]) -> list[str]:
    """Every way `obj` (with its apiVersion and kind) breaks the published strict schema."""
    validator = _validator(obj["apiVersion"], obj["kind"])
    return sorted(f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
                  for e in validator.iter_errors(obj))


def assert_valid(obj: dict[str, Any]) -> None:
    """`obj` passes the published schema, and a broken copy of it does not (the check is live
    for this kind: an unknown field and a name of the wrong type are each found)."""
    assert schema_errors(obj) == [], (obj["kind"], obj["metadata"].get("name"))
    broken = copy.deepcopy(obj)
    broken["bogus"] = True
    broken["metadata"]["name"] = 42
    found = " ".join(schema_errors(broken))
    assert "'bogus' was unexpected" in found and "metadata.name: 42" in found, found


@functools.cache
def _published_defs() -> dict[str, Any]:
    defs: dict[str, Any] = schema_contents(f"{PUBLISHED}/_definitions.json", VERSION)["$defs"]
    return defs


# -- objects as served ------------------------------------------------------------------------
def _call(box: Sandbox, method: str, path: str, body: Any = None,
          headers: dict[str, str] | None = None) -> dict[str, Any]:
    status, answer, _ = admin_call(box, method, path, body, headers=headers)
    assert status in (200, 201), (method, path, status, answer)
    return dict(answer)


def _typed(obj: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """A list item with the apiVersion and kind its list leaves out."""
    return {"apiVersion": api_version, "kind": kind, **obj}


NEW_EVENT: dict[str, Any] = {"metadata": {"name": "web.fedcba9876543210"},
             "eventTime": "2026-01-02T03:04:05.123456Z", "reportingController": "lbctl.io/lbctl",
             "reportingInstance": "lbctl-0", "action": "Ensure", "reason": "EnsuredLoadBalancer",
             "note": "Ensured load balancer", "type": "Normal",
             "regarding": {"kind": "Service", "name": "web", "apiVersion": "v1"}}
"""An Event written through events.k8s.io/v1, as a newer recorder would."""


def test_objects_as_served_pass_the_published_schemas(sandbox: Sandbox, ns: str) -> None:
    core, disc = f"/api/v1/namespaces/{ns}", f"/apis/discovery.k8s.io/v1/namespaces/{ns}"
    events = f"/apis/events.k8s.io/v1/namespaces/{ns}"
    served: list[dict[str, Any]] = []
    # A Deployment's pods behind a LoadBalancer Service: the workload controllers make the
    # EndpointSlice; lbctl's writes follow (finalizer, status with ingress and conditions).
    _call(sandbox, "POST", f"/apis/apps/v1/namespaces/{ns}/deployments", {
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                     {"name": "c", "image": "nginx", "ports": [{"containerPort": 8080}]}]}}}})
    served.append(_call(sandbox, "POST", f"{core}/services", {
        "metadata": {"name": "web", "annotations": {"lbctl.io/pool": "a"}},
        "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                 "externalTrafficPolicy": "Local", "loadBalancerSourceRanges": ["10.0.0.0/8"],
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080},
                           {"name": "dns", "port": 53, "protocol": "UDP",
                            "targetPort": "dns"}]}}))
    served.append(_call(sandbox, "PATCH", f"{core}/services/web", {"metadata": {
        "finalizers": ["service.kubernetes.io/load-balancer-cleanup"]}}, MERGE))
    served.append(_call(sandbox, "PATCH", f"{core}/services/web/status", {"status": {
        "loadBalancer": {"ingress": [
            {"ip": "192.0.2.10", "ipMode": "Proxy", "ports": [
                {"port": 53, "protocol": "UDP", "error": "UDP is not served here"}]},
            {"hostname": "lb-1.example"}]},
        "conditions": [{"type": "LoadBalancerServing", "status": "True", "reason": "Serving",
                        "message": "3 of 3 targets healthy", "observedGeneration": 1,
                        "lastTransitionTime": "2026-01-02T03:04:05Z"}]}}, SMP))
    served.append(_call(sandbox, "GET", f"{core}/services/web"))
    served.append(_call(sandbox, "POST", f"{core}/configmaps", {
        "metadata": {"name": "lbctl"}, "data": {"config.yaml": "provider: fake\n"}}))
    served.append(_call(sandbox, "GET", f"{core}/configmaps/lbctl"))
    # An Event as lbctl's recorder writes it, then aggregated (count, lastTimestamp, message).
    uid = served[-3]["metadata"]["uid"]
    served.append(_call(sandbox, "POST", f"{core}/events", {
        "metadata": {"name": "web.0123456789abcdef"},
        "involvedObject": {"kind": "Service", "namespace": ns, "name": "web", "uid": uid,
                           "apiVersion": "v1", "resourceVersion": "1"},
        "type": "Normal", "reason": "EnsuredLoadBalancer", "message": "Ensured load balancer",
        "source": {"component": "lbctl"}, "count": 1,
        "firstTimestamp": "2026-01-02T03:04:05Z", "lastTimestamp": "2026-01-02T03:04:05Z",
        "reportingComponent": "lbctl", "reportingInstance": "lbctl-0"}))
    served.append(_call(sandbox, "PATCH", f"{core}/events/web.0123456789abcdef", {
        "count": 2, "lastTimestamp": "2026-01-02T03:05:05Z", "message": "again"}, MERGE))
    served.append(_call(sandbox, "GET", f"{core}/events/web.0123456789abcdef"))
    served.append(_call(sandbox, "POST", f"{events}/events", NEW_EVENT))
    served.append(_call(sandbox, "GET", f"{events}/events/{NEW_EVENT['metadata']['name']}"))
    node = _call(sandbox, "GET", "/api/v1/nodes")["items"][0]["metadata"]["name"]
    served.append(_call(sandbox, "GET", f"/api/v1/nodes/{node}"))
    served.append(_call(sandbox, "PATCH", f"/api/v1/nodes/{node}", {
        "metadata": {"labels": {"node.kubernetes.io/exclude-from-external-load-balancers": ""}},
        "spec": {"taints": [{"key": "lbctl.io/test", "effect": "NoSchedule"}]}}, SMP))
    served.append(_call(sandbox, "PATCH", f"/api/v1/nodes/{node}", {
        "metadata": {"labels": {"node.kubernetes.io/exclude-from-external-load-balancers": None}},
        "spec": {"taints": None}}, MERGE))

    def slices() -> list[dict[str, Any]]:
        items = _call(sandbox, "GET", f"{disc}/endpointslices?labelSelector="
                      "kubernetes.io/service-name%3Dweb")["items"]
        return [s for s in items if len(s.get("endpoints") or []) == 2]

    made = wait_for(slices, 20, "the EndpointSlice of web with both pods")
    served += [_call(sandbox, "GET", f"{disc}/endpointslices/{s['metadata']['name']}")
               for s in made]
    # List answers' items, each with the apiVersion and kind its list leaves out.
    for path, api_version, kind in ((f"{core}/services", "v1", "Service"),
                                    (f"{core}/configmaps", "v1", "ConfigMap"),
                                    (f"{core}/events", "v1", "Event"),
                                    (f"{events}/events?fieldSelector=metadata.name%3D"
                                     f"{NEW_EVENT['metadata']['name']}",
                                     "events.k8s.io/v1", "Event"),
                                    ("/api/v1/nodes", "v1", "Node"),
                                    (f"{disc}/endpointslices", "discovery.k8s.io/v1",
                                     "EndpointSlice")):
        items = _call(sandbox, "GET", path)["items"]
        assert items, path
        served += [_typed(item, api_version, kind) for item in items]
    kinds = {(o["apiVersion"], o["kind"]) for o in served}
    assert kinds == {("v1", "Service"), ("v1", "ConfigMap"), ("v1", "Event"), ("v1", "Node"),
                     ("events.k8s.io/v1", "Event"), ("discovery.k8s.io/v1", "EndpointSlice")}
    for obj in served:
        assert_valid(obj)


def test_a_core_event_read_through_events_k8s_io_passes_the_published_schema(
        sandbox: Sandbox, ns: str) -> None:
    _call(sandbox, "POST", f"/api/v1/namespaces/{ns}/events", {
        "metadata": {"name": "web.0123456789abcdef"},
        "involvedObject": {"kind": "Service", "namespace": ns, "name": "web"},
        "type": "Normal", "reason": "EnsuredLoadBalancer", "message": "Ensured load balancer",
        "source": {"component": "lbctl"}, "count": 1,
        "firstTimestamp": "2026-01-02T03:04:05Z", "lastTimestamp": "2026-01-02T03:04:05Z"})
    events = f"/apis/events.k8s.io/v1/namespaces/{ns}/events"
    assert_valid(_call(sandbox, "GET", f"{events}/web.0123456789abcdef"))
    for item in _call(sandbox, "GET", events)["items"]:
        assert_valid(_typed(item, "events.k8s.io/v1", "Event"))


def test_a_served_object_that_breaks_the_schema_is_found(sandbox: Sandbox, ns: str) -> None:
    """What the checks above would say of a sandbox that served a port as a string, an
    ingress without its ip's type, or a field 1.33 does not have."""
    svc = _call(sandbox, "POST", f"/api/v1/namespaces/{ns}/services", {
        "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    assert schema_errors(svc) == []
    svc["spec"]["ports"][0]["port"] = "80"
    svc["spec"]["ports"][0]["nodePort"] = 30080.5
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": 10}]}, "phase": "Ready"}
    assert schema_errors(svc) == [
        "spec.ports.0.nodePort: 30080.5 is not of type 'integer', 'null'",
        "spec.ports.0.port: '80' is not of type 'integer'",
        "status.loadBalancer.ingress.0.ip: 10 is not of type 'string', 'null'",
        "status: Additional properties are not allowed ('phase' was unexpected)"]


# -- the served OpenAPI definitions -----------------------------------------------------------
DEFINITIONS = [f"io.k8s.api.core.v1.{n}" for n in (
    "Service", "ServiceSpec", "ServicePort", "ServiceStatus", "LoadBalancerStatus",
    "LoadBalancerIngress", "PortStatus", "SessionAffinityConfig", "ClientIPConfig", "Node",
    "NodeSpec", "NodeStatus", "NodeAddress", "NodeCondition", "Taint", "ConfigMap", "Event",
    "EventSource", "ObjectReference")] + [
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Condition",
    "io.k8s.api.discovery.v1.EndpointSlice", "io.k8s.api.discovery.v1.Endpoint",
    "io.k8s.api.discovery.v1.EndpointConditions", "io.k8s.api.discovery.v1.EndpointPort",
    "io.k8s.api.events.v1.Event"]
"""The definitions of what lbctl reads and writes (IntOrString and Quantity are left out: the
sandbox serves them as kube-apiserver does, not as kubernetes-validate renders them)."""


def _shape(prop: dict[str, Any]) -> str:
    """A property's type in words, the same for OpenAPI v2, v3 and JSON Schema renderings:
    `ref Name`, `array of ...`, `map of ...`, `integer/int32`, ..."""
    if len(prop.get("allOf", ())) == 1:  # v3 wraps a $ref that has a description of its own
        prop = {**prop, **prop["allOf"][0]}
    if "$ref" in prop:
        return "ref " + str(prop["$ref"]).rsplit("/", 1)[1]
    kinds = prop.get("type")
    kind = next((k for k in kinds if k != "null"), "?") if isinstance(kinds, list) else kinds
    if kind == "array":
        return "array of " + _shape(prop["items"])
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return "map of " + _shape(prop["additionalProperties"])
    return f"{kind}/{prop['format']}" if "format" in prop else str(kind)


def _summary(definition: dict[str, Any]) -> dict[str, Any]:
    return {"properties": {k: _shape(v) for k, v in definition.get("properties", {}).items()},
            "required": sorted(definition.get("required", []))}


def _served_v3(box: Sandbox) -> dict[str, Any]:
    _, index, _ = admin_call(box, "GET", "/openapi/v3")
    schemas: dict[str, Any] = {}
    for group in ("api/v1", "apis/discovery.k8s.io/v1", "apis/events.k8s.io/v1"):
        _, doc, _ = admin_call(box, "GET", index["paths"][group]["serverRelativeURL"])
        schemas.update(doc["components"]["schemas"])
    return schemas


def test_served_openapi_definitions_match_the_published_ones(sandbox: Sandbox) -> None:
    published = _published_defs()
    _, v2, _ = admin_call(sandbox, "GET", "/openapi/v2")
    served = {"v2": v2["definitions"], "v3": _served_v3(sandbox)}
    for name in DEFINITIONS:
        want = _summary(published[name])
        assert want["properties"], name  # a real definition, not an empty shell
        for version, defs in served.items():
            assert _summary(defs[name]) == want, (version, name)
    # The comparison can fail: one property of another type, one missing, are seen.
    spec = copy.deepcopy(served["v2"]["io.k8s.api.core.v1.ServicePort"])
    spec["properties"]["port"] = {"type": "string"}
    del spec["properties"]["appProtocol"]
    changed = _summary(spec)["properties"]
    want = _summary(published["io.k8s.api.core.v1.ServicePort"])["properties"]
    assert {k for k in want if changed.get(k) != want[k]} == {"port", "appProtocol"}


USED: dict[str, tuple[str, ...]] = {
    "io.k8s.api.core.v1.Service": ("metadata", "spec", "status"),
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": (
        "name", "namespace", "uid", "resourceVersion", "generation", "labels", "annotations",
        "finalizers", "deletionTimestamp"),
    "io.k8s.api.core.v1.ServiceSpec": (
        "type", "ports", "selector", "loadBalancerClass", "loadBalancerIP",
        "loadBalancerSourceRanges", "sessionAffinity", "sessionAffinityConfig",
        "externalTrafficPolicy", "healthCheckNodePort", "ipFamilies", "ipFamilyPolicy",
        "clusterIPs", "externalIPs", "allocateLoadBalancerNodePorts"),
    "io.k8s.api.core.v1.ServicePort": (
        "name", "protocol", "port", "nodePort", "targetPort", "appProtocol"),
    "io.k8s.api.core.v1.SessionAffinityConfig": ("clientIP",),
    "io.k8s.api.core.v1.ClientIPConfig": ("timeoutSeconds",),
    "io.k8s.api.core.v1.ServiceStatus": ("loadBalancer", "conditions"),
    "io.k8s.api.core.v1.LoadBalancerStatus": ("ingress",),
    "io.k8s.api.core.v1.LoadBalancerIngress": ("ip", "hostname", "ipMode", "ports"),
    "io.k8s.api.core.v1.PortStatus": ("port", "protocol", "error"),
    "io.k8s.apimachinery.pkg.apis.meta.v1.Condition": (
        "type", "status", "reason", "message", "observedGeneration", "lastTransitionTime"),
    "io.k8s.api.core.v1.Node": ("metadata", "spec", "status"),
    "io.k8s.api.core.v1.NodeSpec": ("providerID", "taints", "unschedulable"),
    "io.k8s.api.core.v1.Taint": ("key", "effect"),
    "io.k8s.api.core.v1.NodeStatus": ("addresses", "conditions"),
    "io.k8s.api.core.v1.NodeAddress": ("type", "address"),
    "io.k8s.api.core.v1.NodeCondition": ("type", "status"),
    "io.k8s.api.core.v1.Event": (
        "metadata", "involvedObject", "type", "reason", "message", "source", "count",
        "firstTimestamp", "lastTimestamp", "reportingComponent", "reportingInstance"),
    "io.k8s.api.core.v1.ObjectReference": (
        "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion"),
    "io.k8s.api.core.v1.EventSource": ("component",),
    "io.k8s.api.discovery.v1.EndpointSlice": ("metadata", "addressType", "endpoints", "ports"),
    "io.k8s.api.discovery.v1.Endpoint": ("addresses", "conditions", "nodeName"),
    "io.k8s.api.discovery.v1.EndpointConditions": ("ready",),
    "io.k8s.api.discovery.v1.EndpointPort": ("port", "protocol", "name"),
}
"""The fields lbctl reads or writes (`lbctl.controller.records`, `lbctl.kube.events`, the status
and finalizer patches, the sandbox's traffic and the e2e tests), by definition."""

_PYTHON = {"str": "string", "int": "integer", "bool": "boolean",
           "datetime": "ref", "object": "ref"}
"""The client's field types in `_coarse` words: it turns Time into datetime and keeps
IntOrString and Quantity as plain objects, all references in the served definitions."""


def _client_model(definition: str) -> Any:
    """The official client's model of a definition: core/v1 ServiceSpec -> V1ServiceSpec,
    core/v1 Event -> CoreV1Event, events/v1 Event -> EventsV1Event (the group names the class
    where two groups have a kind of that name)."""
    *_, group, version, kind = definition.split(".")
    for name in (f"{group.capitalize()}{version.capitalize()}{kind}",
                 f"{version.capitalize()}{kind}"):
        if hasattr(client, name):
            return getattr(client, name)
    raise AssertionError(f"the client has no model for {definition}")


def _client_shape(python_type: str) -> str:
    """The client's type of a field in `_coarse` words: `List[V1X]` -> `array of ref`,
    `Dict[str, str]` -> `map of string`, `int` -> `integer`."""
    outer, _, inner = python_type.partition("[")
    if outer == "List":
        return "array of " + _client_shape(inner[:-1])
    if outer == "Dict":
        return "map of " + _client_shape(inner[:-1].split(", ", 1)[1])
    return _PYTHON.get(python_type, "ref")


def _coarse(shape: str) -> str:
    """`_shape` without formats and reference names: `integer/int32` -> `integer`,
    `array of ref io.k8s.api.core.v1.ServicePort` -> `array of ref`."""
    words = shape.split(" ")
    return " ".join(w.split("/")[0] for i, w in enumerate(words)
                    if not (i and words[i - 1] == "ref"))


def test_fields_lbctl_uses_are_served_as_the_official_client_knows_them(
        sandbox: Sandbox) -> None:
    _, v2, _ = admin_call(sandbox, "GET", "/openapi/v2")
    checked = 0
    for definition, fields in USED.items():
        served = v2["definitions"][definition]["properties"]
        model = _client_model(definition)
        by_json = {json_name: model.openapi_types[attr]
                   for attr, json_name in model.attribute_map.items()}
        for field in fields:
            assert field in served, (definition, field)
            assert field in by_json, (model.__name__, field)
            assert _coarse(_shape(served[field])) == _client_shape(by_json[field]), (
                definition, field, _shape(served[field]), by_json[field])
            checked += 1
    assert checked == sum(len(f) for f in USED.values())
    # The comparison can fail: a port served as a string, a list as a map, are seen.
    assert _coarse("string") != _client_shape(client.V1ServicePort.openapi_types["port"])
    assert _coarse("map of string") != _client_shape(
        client.V1ServiceSpec.openapi_types["ports"])
