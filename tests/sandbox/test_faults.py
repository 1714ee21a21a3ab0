"""Fault hooks (off by default) and the audit log, as a controller's tests will use them."""

from __future__ import annotations

import collections

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from lbctl.sandbox.app import Sandbox
from tests.conftest import admin_call, client_for

pytestmark = pytest.mark.integration


def test_faults_are_off_by_default(sandbox: Sandbox) -> None:
    status, body, _ = admin_call(sandbox, "GET", "/sandbox/faults")
    assert status == 200
    assert body["errorRates"] == {} and body["watchGone"] == 0


def test_error_rates_answer_a_share_and_change_nothing(own_sandbox: Sandbox) -> None:
    api = client_for(own_sandbox)
    core = client.CoreV1Api(api)
    status, _, _ = admin_call(own_sandbox, "PUT", "/sandbox/faults", {
        "errorRates": {"409": 0.2, "429": 0.2, "500": 0.2}, "verbs": ["create"],
        "resources": ["configmaps"], "seed": 42})
    assert status == 200
    codes: collections.Counter[int] = collections.Counter()
    created = 0
    for i in range(200):
        try:
            core.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}},
                                              _request_timeout=10)
            created += 1
        except ApiException as exc:
            codes[exc.status] += 1
    assert set(codes) == {409, 429, 500}
    assert 60 <= sum(codes.values()) <= 180  # ~60% of 200, bounded generously
    assert len(core.list_namespaced_config_map("default").items) == created
    # Reads are untouched by a create-only fault.
    core.list_namespaced_service("default")
    admin_call(own_sandbox, "PUT", "/sandbox/faults", {})
    core.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
    api.close()


def test_retry_after_header_on_429(own_sandbox: Sandbox) -> None:
    admin_call(own_sandbox, "PUT", "/sandbox/faults", {"errorRates": {"429": 1}})
    status, body, headers = admin_call(own_sandbox, "GET", "/api/v1/namespaces")
    assert status == 429 and headers.get("Retry-After") == "1"
    assert body["reason"] == "TooManyRequests"


@pytest.mark.parametrize("bad", [
    {"errorRates": {"418": 0.5}}, {"errorRates": {"500": 2}}, {"watchGone": -1},
    {"verbs": "create"}, {"nonsense": 1}, [1, 2],
])
def test_bad_fault_config_is_refused_and_keeps_the_old(own_sandbox: Sandbox,
                                                       bad: object) -> None:
    admin_call(own_sandbox, "PUT", "/sandbox/faults", {"watchGone": 2})
    status, body, _ = admin_call(own_sandbox, "PUT", "/sandbox/faults", bad)
    assert status == 400 and body["message"].startswith("faults")
    _, current, _ = admin_call(own_sandbox, "GET", "/sandbox/faults")
    assert current["watchGone"] == 2


def test_audit_log_records_identity_verb_resource(own_sandbox: Sandbox) -> None:
    api = client_for(own_sandbox)
    core = client.CoreV1Api(api)
    admin_call(own_sandbox, "DELETE", "/sandbox/audit")
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    core.read_namespaced_config_map("a", "default")
    core.list_node()
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})
    core.delete_namespaced_config_map("a", "default")
    _, body, _ = admin_call(own_sandbox, "GET", "/sandbox/audit")
    seen = [(e["user"], e["verb"], e["resource"], e["namespace"], e["name"], e["code"])
            for e in body["items"]]
    assert seen == [
        ("admin", "create", "configmaps", "default", "a", 201),
        ("admin", "get", "configmaps", "default", "a", 200),
        ("admin", "list", "nodes", "", "", 200),
        ("admin", "patch", "configmaps", "default", "a", 200),
        ("admin", "delete", "configmaps", "default", "a", 200),
    ]
    api.close()
