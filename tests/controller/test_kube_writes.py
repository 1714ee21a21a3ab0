"""The reconciler's writes through lbctl.kube against the sandbox: status patches, finalizer
writes that never overwrite a changed list, aggregated Events, and errors as ApiError."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from lbctl.kube import ApiError, EventRecorder, Kube, ObjectRef
from lbctl.sandbox.app import Sandbox
from tests.conftest import admin_call, svc

pytestmark = pytest.mark.integration


@pytest.fixture
def kube(sandbox: Sandbox) -> Iterator[Kube]:
    k = Kube.connect(sandbox.options.kubeconfig)
    yield k
    k.close()


def _lb(core: client.CoreV1Api, ns: str, name: str = "web", **meta: Any) -> dict[str, Any]:
    body = svc(name, type="LoadBalancer")
    body["metadata"].update(meta)
    created: dict[str, Any] = core.api_client.sanitize_for_serialization(
        core.create_namespaced_service(ns, body))
    return created


def test_status_is_a_strategic_merge_patch_to_the_status_subresource(
        sandbox: Sandbox, kube: Kube, core: client.CoreV1Api, ns: str) -> None:
    _lb(core, ns)
    patched = kube.patch_service_status(ns, "web", {"status": {"loadBalancer": {"ingress": [
        {"ip": "192.0.2.10", "ipMode": "VIP"}]}}})
    assert patched["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.10",
                                                             "ipMode": "VIP"}]
    read = core.read_namespaced_service("web", ns)
    assert read.status.load_balancer.ingress[0].ip == "192.0.2.10"
    _, body, _ = admin_call(sandbox, "GET", "/sandbox/audit")
    assert any(e["verb"] == "patch" and e["subresource"] == "status" and e["namespace"] == ns
               for e in body["items"])


def test_finalizers_are_written_only_over_the_list_that_was_seen(
        kube: Kube, core: client.CoreV1Api, ns: str) -> None:
    seen = _lb(core, ns)
    rv = seen["metadata"]["resourceVersion"]
    ours = "service.kubernetes.io/load-balancer-cleanup"
    added = kube.patch_service_metadata(ns, "web", finalizers=[ours], expected_finalizers=[],
                                        resource_version=rv)
    assert added["metadata"]["finalizers"] == [ours]
    with pytest.raises(ApiError) as stale_rv:  # adding to "no finalizers" seen at an old rv
        kube.patch_service_metadata(ns, "web", finalizers=["example.com/other"],
                                    expected_finalizers=[], resource_version=rv)
    assert stale_rv.value.conflict
    core.patch_namespaced_service("web", ns, {"metadata": {"finalizers": [ours, "x.io/keep"]}})
    with pytest.raises(ApiError) as stale_list:  # removing ours from a list that has changed
        kube.patch_service_metadata(ns, "web", finalizers=[], expected_finalizers=[ours])
    assert stale_list.value.conflict and stale_list.value.status == 409
    assert core.read_namespaced_service("web", ns).metadata.finalizers == [ours, "x.io/keep"]
    removed = kube.patch_service_metadata(ns, "web", finalizers=["x.io/keep"],
                                          expected_finalizers=[ours, "x.io/keep"])
    assert removed["metadata"]["finalizers"] == ["x.io/keep"]
    emptied = kube.patch_service_metadata(ns, "web", finalizers=[],
                                          expected_finalizers=["x.io/keep"])
    assert not emptied["metadata"].get("finalizers")
    with pytest.raises(ValueError, match="resourceVersion"):
        kube.patch_service_metadata(ns, "web", finalizers=[ours], expected_finalizers=[])


def test_repeated_events_are_aggregated_also_across_restarts(
        kube: Kube, core: client.CoreV1Api, ns: str) -> None:
    created = _lb(core, ns)
    ref = ObjectRef("Service", ns, "web", created["metadata"]["uid"])
    recorder = EventRecorder(kube, instance="lbctl-0")
    for _ in range(3):
        event = recorder.create_or_update_event(ref, "Warning", "SyncLoadBalancerFailed",
                                                "Error syncing load balancer: boom")
    assert event["count"] == 3
    restarted = EventRecorder(kube, instance="lbctl-1")
    again = restarted.create_or_update_event(ref, "Warning", "SyncLoadBalancerFailed",
                                             "Error syncing load balancer: boom")
    assert again["metadata"]["name"] == event["metadata"]["name"] and again["count"] == 4
    restarted.create_or_update_event(ref, "Normal", "EnsuredLoadBalancer",
                                     "Ensured load balancer")
    events = core.list_namespaced_event(ns).items
    assert sorted((e.reason, e.count) for e in events) == [
        ("EnsuredLoadBalancer", 1), ("SyncLoadBalancerFailed", 4)]
    failed = next(e for e in events if e.reason == "SyncLoadBalancerFailed")
    assert failed.involved_object.uid == ref.uid and failed.type == "Warning"
    assert failed.source.component == "lbctl"


def test_an_expired_event_is_created_again(kube: Kube, core: client.CoreV1Api,
                                           ns: str) -> None:
    created = _lb(core, ns)
    ref = ObjectRef("Service", ns, "web", created["metadata"]["uid"])
    recorder = EventRecorder(kube)
    event = recorder.create_or_update_event(ref, "Normal", "EnsuringLoadBalancer",
                                            "Ensuring load balancer")
    core.delete_namespaced_event(event["metadata"]["name"], ns)  # as the event TTL would
    again = recorder.create_or_update_event(ref, "Normal", "EnsuringLoadBalancer",
                                            "Ensuring load balancer")
    assert again["count"] == 1


def test_errors_come_back_as_api_errors(sandbox: Sandbox, kube: Kube, ns: str,
                                       tmp_path: Path) -> None:
    with pytest.raises(ApiError) as missing:
        kube.request("GET", f"/api/v1/namespaces/{ns}/services/nope")
    assert missing.value.not_found and not missing.value.transient
    assert missing.value.reason == "NotFound"
    assert sandbox.options.kubeconfig is not None
    config = tmp_path / "kubeconfig"  # the same, pointing where nothing listens
    config.write_text(sandbox.options.kubeconfig.read_text().replace(sandbox.url,
                                                                     "http://127.0.0.1:9"))
    nowhere = Kube.connect(config)
    try:
        with pytest.raises(ApiError) as refused:
            nowhere.request("GET", "/version")
        assert refused.value.status == 0 and refused.value.transient
    finally:
        nowhere.close()
