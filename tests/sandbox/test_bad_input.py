"""Bad input gets a Status naming the problem; the server keeps serving; nothing changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.conftest import svc

pytestmark = pytest.mark.integration

Admin = Callable[..., Any]


def _state(admin: Admin, ns: str) -> Any:
    _, body, _ = admin("GET", f"/api/v1/namespaces/{ns}/services")
    return [(i["metadata"]["name"], i["metadata"]["resourceVersion"]) for i in body["items"]]


@pytest.mark.parametrize(("raw", "ctype", "code", "text"), [
    (b"{not json", "application/json", 400, "json parse error"),
    (b"[1, 2]", "application/json", 400, "JSON object"),
    (b"kind: Service\n  bad: [indent", "application/yaml", 400, "YAML"),
    (b'{"apiVersion": "apps/v1", "kind": "Service", "metadata": {"name": "x"}}',
     "application/json", 400, "API version"),
    (b'{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},'
     b' "spec": {"ports": [{"port": "eighty"}]}}', "application/json", 400, "port"),
    (b"", "application/json", 400, "empty"),
    # issue 14: nesting and alias bombs are a 400, never a 500 or a 2 GB ConfigMap
    (b"[" * 100_000, "application/json", 400, "json parse error"),
    (b"[" * 100_000, "application/yaml", 400, "nested too deeply"),
    (b"a: &a [x,x,x,x,x,x,x,x,x,x]\n" + b"".join(
        f"b{i}: &b{i} [{','.join([f'*{p}'] * 10)}]\n".encode()
        for i, p in enumerate(["a", "b0", "b1", "b2", "b3", "b4", "b5", "b6"])),
     "application/yaml", 400, "once its aliases are expanded"),
])
def test_malformed_bodies(admin: Admin, ns: str, raw: bytes, ctype: str, code: int,
                          text: str) -> None:
    before = _state(admin, ns)
    status, body, _ = admin("POST", f"/api/v1/namespaces/{ns}/services", raw=raw,
                            headers={"Content-Type": ctype})
    assert status == code
    assert body["kind"] == "Status" and body["code"] == code
    assert text.lower() in body["message"].lower()
    assert _state(admin, ns) == before


def test_unknown_resource_is_404(admin: Admin) -> None:
    status, body, _ = admin("GET", "/api/v1/namespaces/default/widgets")
    assert status == 404 and body["kind"] == "Status"
    status, body, _ = admin("GET", "/apis/nothing.example.com/v1/things")
    assert status == 404


def test_oversized_body_is_413(admin: Admin, ns: str) -> None:
    huge = b'{"metadata": {"name": "big"}, "data": {"x": "' + b"a" * (4 * 1024 * 1024) + b'"}}'
    status, body, _ = admin("POST", f"/api/v1/namespaces/{ns}/configmaps", raw=huge,
                            headers={"Content-Type": "application/json"})
    assert status == 413 and body["reason"] == "RequestEntityTooLarge"
    status, _, _ = admin("GET", f"/api/v1/namespaces/{ns}/configmaps/big")
    assert status == 404


def test_unknown_fields_strict_warn_ignore(core: client.CoreV1Api, admin: Admin,
                                           ns: str) -> None:
    # The official client refuses unknown fields itself, so send them raw, as kubectl would.
    body = svc("strict")
    body["spec"]["bogus"] = 1
    path = f"/api/v1/namespaces/{ns}/services"
    status, err, _ = admin("POST", path + "?fieldValidation=Strict", body)
    assert status == 400
    assert 'unknown field "spec.bogus"' in err["message"]
    status, _, headers = admin("POST", path + "?fieldValidation=Ignore", svc("ignored"))
    assert status == 201 and "Warning" not in headers
    status, _, headers = admin("POST", path, body)
    assert status == 201
    assert "spec.bogus" in headers.get("Warning", "")
    stored = core.read_namespaced_service("strict", ns)
    assert "bogus" not in client.ApiClient().sanitize_for_serialization(stored)["spec"]


def test_invalid_object_lists_every_cause(core: client.CoreV1Api, ns: str) -> None:
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "Bad_Name"},
           "spec": {"ports": [{"port": 0}, {"port": 70000}]}}
    with pytest.raises(ApiException) as info:
        core.create_namespaced_service(ns, bad)
    assert info.value.status == 422
    import json

    status = json.loads(info.value.body)
    fields = {c["field"] for c in status["details"]["causes"]}
    assert {"metadata.name", "spec.ports[0].port", "spec.ports[1].port"} <= fields
    assert status["reason"] == "Invalid"


def test_bad_query_parameters(admin: Admin, ns: str) -> None:
    status, body, _ = admin("GET", f"/api/v1/namespaces/{ns}/services?limit=abc")
    assert status == 400 and "limit" in body["message"]
    status, body, _ = admin("POST", f"/api/v1/namespaces/{ns}/services?fieldValidation=Loud",
                            svc("q"))
    assert status == 400 and "fieldValidation" in body["message"]


def test_bad_token_is_401_and_no_token_is_the_insecure_port(sandbox: Any) -> None:
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(sandbox.url + "/api/v1/namespaces",
                                 headers={"Authorization": "Bearer wrong"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 401
    assert json.loads(info.value.read())["reason"] == "Unauthorized"
    # kubectl sends no credentials over plain HTTP: served like kube's old insecure port.
    with urllib.request.urlopen(sandbox.url + "/api/v1/namespaces", timeout=10) as resp:
        assert resp.status == 200
