"""The documents kubectl reads before it acts, checked on the wire: aggregated discovery (v2,
v2beta1), `/version`, the OpenAPI v3 index and group-version documents, OpenAPI v2 (JSON and
gnostic protobuf), and Tables with their `includeObject` variants and list metadata."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from lbctl.sandbox.app import Sandbox
from lbctl.sandbox.storage.resources import RESOURCES, group_versions
from tests.conftest import Admin, svc

pytestmark = pytest.mark.kubectl

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v={};as=APIGroupDiscoveryList"
TABLE = "application/json;as=Table;v={};g=meta.k8s.io"


def _get(box: Sandbox, path: str, accept: str = "application/json") -> tuple[str, bytes]:
    req = urllib.request.Request(box.url + path, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return str(resp.headers["Content-Type"]), resp.read()


def test_version_is_1_33(sandbox: Sandbox) -> None:
    _, body = _get(sandbox, "/version")
    info = json.loads(body)
    assert (info["major"], info["minor"]) == ("1", "33")
    assert info["gitVersion"].startswith("v1.33.")


@pytest.mark.parametrize("version", ["v2", "v2beta1"])
def test_aggregated_discovery_lists_every_resource(sandbox: Sandbox, version: str) -> None:
    accept = AGGREGATED.format(version) + ",application/json"
    kind, body = _get(sandbox, "/apis", accept)
    assert kind == AGGREGATED.format(version)  # clients tell the formats apart by this alone
    named = json.loads(body)
    kind, body = _get(sandbox, "/api", accept)
    core = json.loads(body)
    assert named["apiVersion"] == core["apiVersion"] == f"apidiscovery.k8s.io/{version}"
    served = {(group["metadata"].get("name", ""), v["version"], r["resource"]): r
              for doc in (core, named) for group in doc["items"]
              for v in group["versions"] for r in v["resources"]}
    assert set(served) == {(r.group, r.version, r.plural) for r in RESOURCES}
    services = served[("", "v1", "services")]
    assert services["shortNames"] == ["svc"] and services["scope"] == "Namespaced"
    assert services["responseKind"] == {"group": "", "version": "v1", "kind": "Service"}
    assert {"subresource": "status", "verbs": ["get", "patch", "update"],
            "responseKind": {"group": "", "version": "v1", "kind": "Service"}} in (
        services["subresources"])
    scale = next(s for s in served[("apps", "v1", "deployments")]["subresources"]
                 if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert served[("", "v1", "nodes")]["scope"] == "Cluster"


def test_plain_discovery_without_aggregated_accept(sandbox: Sandbox) -> None:
    kind, body = _get(sandbox, "/apis")
    assert kind == "application/json"
    groups = json.loads(body)
    assert groups["kind"] == "APIGroupList"
    assert [g["name"] for g in groups["groups"]] == list(
        dict.fromkeys(g for g, _ in group_versions() if g))
    _, body = _get(sandbox, "/api/v1")
    names = [r["name"] for r in json.loads(body)["resources"]]
    assert "services" in names and "services/status" in names
    assert names == sorted(names)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return own.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_openapi_v3_index_and_documents(sandbox: Sandbox) -> None:
    _, body = _get(sandbox, "/openapi/v3")
    paths = json.loads(body)["paths"]
    expected = {f"apis/{g}/{v}" if g else f"api/{v}" for g, v in group_versions()}
    assert set(paths) == expected
    url = paths["api/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/api/v1?hash=") and len(url.split("=")[1]) == 128
    _, body = _get(sandbox, url)
    doc = json.loads(body)
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1",
                                                        "kind": "Service"}
    assert {"name": "fieldValidation", "in": "query"}.items() <= next(
        p for p in patch["parameters"] if p["name"] == "fieldValidation").items()
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    schemas = doc["components"]["schemas"]
    service = schemas["io.k8s.api.core.v1.Service"]
    assert service["x-kubernetes-group-version-kind"] == [
        {"group": "", "kind": "Service", "version": "v1"}]
    ports = schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]
    assert (ports["x-kubernetes-patch-merge-key"], ports["type"]) == ("port", "array")
    assert {r.rsplit("/", 1)[1] for r in _refs(doc)} <= set(schemas)  # nothing dangles
    _, body = _get(sandbox, paths["apis/apps/v1"]["serverRelativeURL"])
    assert "io.k8s.api.autoscaling.v1.Scale" in json.loads(body)["components"]["schemas"]


def test_openapi_v2_json_and_protobuf(sandbox: Sandbox) -> None:
    kind, body = _get(sandbox, "/openapi/v2")
    assert kind == "application/json"
    spec = json.loads(body)
    assert spec["swagger"] == "2.0"
    service = spec["definitions"]["io.k8s.api.core.v1.Service"]
    assert service["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.core.v1.ServiceSpec"
    accept = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    kind, body = _get(sandbox, "/openapi/v2", accept)
    assert kind == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert body.startswith(b"\n\x032.0\x12")  # Document.swagger = "2.0", then Document.info
    assert b"io.k8s.api.core.v1.ServiceSpec" in body


def _table(admin: Admin, path: str, version: str = "v1") -> Any:
    status, body, _ = admin("GET", path, headers={"Accept": TABLE.format(version)})
    assert status == 200, body
    return body


def test_table_of_a_list_keeps_list_metadata(admin: Admin, core: client.CoreV1Api,
                                             ns: str) -> None:
    for name in ("a", "b", "c"):
        core.create_namespaced_service(ns, svc(name))
    page = _table(admin, f"/api/v1/namespaces/{ns}/services?limit=2")
    assert (page["kind"], page["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert page["metadata"]["continue"] and page["metadata"]["remainingItemCount"] == 1
    assert int(page["metadata"]["resourceVersion"]) > 0
    assert [c["name"] for c in page["columnDefinitions"]] == [
        "Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]
    assert [c["priority"] for c in page["columnDefinitions"]] == [0, 0, 0, 0, 0, 0, 1]
    assert page["columnDefinitions"][0]["format"] == "name"
    assert page["columnDefinitions"][0]["description"].startswith("Name must be unique")
    assert [r["cells"][0] for r in page["rows"]] == ["a", "b"]
    row_object = page["rows"][0]["object"]
    assert row_object["kind"] == "PartialObjectMetadata"
    assert row_object["metadata"]["namespace"] == ns and "spec" not in row_object
    rest = _table(admin, f"/api/v1/namespaces/{ns}/services?limit=2&continue="
                  + page["metadata"]["continue"])
    assert [r["cells"][0] for r in rest["rows"]] == ["c"]


def test_table_include_object_and_versions(admin: Admin, core: client.CoreV1Api,
                                           ns: str) -> None:
    core.create_namespaced_service(ns, svc("web"))
    base = f"/api/v1/namespaces/{ns}/services/web"
    full = _table(admin, base + "?includeObject=Object")["rows"][0]["object"]
    assert (full["kind"], full["spec"]["selector"]) == ("Service", {"app": "web"})
    assert _table(admin, base + "?includeObject=None")["rows"][0]["object"] is None
    beta = _table(admin, base, "v1beta1")
    assert beta["apiVersion"] == "meta.k8s.io/v1beta1"
    assert beta["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"
    status, body, _ = admin("GET", base + "?includeObject=Everything",
                            headers={"Accept": TABLE.format("v1")})
    assert status == 400
    assert body["message"] == (
        "Unable to convert to Table as requested: includeObject: Invalid value: "
        "\"Everything\": must be 'Metadata', 'Object', 'None', or empty")
    status, body, _ = admin("GET", f"/api/v1/namespaces/{ns}/services", headers={
        "Accept": "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"})
    assert body["kind"] == "PartialObjectMetadataList"
    assert [i["metadata"]["name"] for i in body["items"]] == ["web"]
    status, body, _ = admin("GET", base)
    assert body["kind"] == "Service"  # plain JSON for everyone else


def test_roles_get_the_default_table(admin: Admin, ns: str) -> None:
    admin("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "reader"}, "rules": []})
    page = _table(admin, f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles")
    assert [(c["name"], c["type"]) for c in page["columnDefinitions"]] == [
        ("Name", "string"), ("Created At", "date")]
    name, created = page["rows"][0]["cells"]
    assert name == "reader" and created.endswith("Z") and "T" in created
