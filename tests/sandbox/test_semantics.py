"""Optimistic concurrency, finalizers, the status subresource, generation, no-op updates."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.conftest import svc

pytestmark = pytest.mark.integration

FINALIZER = "service.kubernetes.io/load-balancer-cleanup"


def test_stale_resource_version_is_409_conflict(core: client.CoreV1Api, ns: str) -> None:
    created = core.create_namespaced_config_map(ns, {"metadata": {"name": "c"},
                                                     "data": {"a": "1"}})
    body = client.ApiClient().sanitize_for_serialization(created)
    core.patch_namespaced_config_map("c", ns, {"data": {"a": "2"}})
    body["data"] = {"a": "3"}
    with pytest.raises(ApiException) as info:
        core.replace_namespaced_config_map("c", ns, body)
    assert info.value.status == 409
    assert "the object has been modified" in info.value.body
    assert core.read_namespaced_config_map("c", ns).data == {"a": "2"}


def test_already_exists(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_service(ns, svc("dup"))
    with pytest.raises(ApiException) as info:
        core.create_namespaced_service(ns, svc("dup"))
    assert info.value.status == 409
    assert '"reason":"AlreadyExists"' in info.value.body.replace(" ", "")
    assert 'services \\"dup\\" already exists' in info.value.body or \
        'services "dup" already exists' in info.value.body


def test_not_found_is_a_status(core: client.CoreV1Api, ns: str) -> None:
    with pytest.raises(ApiException) as info:
        core.read_namespaced_service("nope", ns)
    assert info.value.status == 404
    assert '"reason":"NotFound"' in info.value.body.replace(" ", "")


def test_finalizer_lifecycle(core: client.CoreV1Api, ns: str) -> None:
    body = svc("lb", type="LoadBalancer")
    body["metadata"]["finalizers"] = [FINALIZER]
    core.create_namespaced_service(ns, body)
    deleted = core.delete_namespaced_service("lb", ns)
    assert deleted.metadata.deletion_timestamp is not None
    held = core.read_namespaced_service("lb", ns)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == [FINALIZER]
    with pytest.raises(ApiException) as info:  # no new finalizers once deleting
        core.patch_namespaced_service("lb", ns, {"metadata": {"finalizers": [FINALIZER, "x/y"]}})
    assert info.value.status == 422
    # Remove the finalizer through the status subresource, as the upstream controller does.
    core.patch_namespaced_service_status("lb", ns, [
        {"op": "remove", "path": "/metadata/finalizers"}])
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_service("lb", ns)
    assert gone.value.status == 404


def test_status_subresource_keeps_spec_and_main_ignores_status(core: client.CoreV1Api,
                                                               ns: str) -> None:
    core.create_namespaced_service(ns, svc("st", type="LoadBalancer"))
    ingress = {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ipMode": "VIP"}]}},
               "spec": {"type": "ClusterIP"}, "metadata": {"finalizers": [FINALIZER]}}
    out = core.patch_namespaced_service_status("st", ns, ingress)
    assert out.spec.type == "LoadBalancer"
    assert out.status.load_balancer.ingress[0].ip == "192.0.2.10"
    assert out.metadata.finalizers == [FINALIZER]
    out = core.patch_namespaced_service("st", ns, {
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.99"}]}}})
    assert out.status.load_balancer.ingress[0].ip == "192.0.2.10"


def test_noop_update_keeps_resource_version(core: client.CoreV1Api, ns: str) -> None:
    created = core.create_namespaced_service(ns, svc("same"))
    again = core.patch_namespaced_service("same", ns, {"metadata": {"labels": None}})
    assert again.metadata.resource_version == created.metadata.resource_version


def test_generation_counts_spec_changes_only(core: client.CoreV1Api, ns: str) -> None:
    created = core.create_namespaced_service(ns, svc("gen"))
    assert created.metadata.generation == 1
    labelled = core.patch_namespaced_service("gen", ns, {"metadata": {"labels": {"a": "b"}}})
    assert labelled.metadata.generation == 1
    changed = core.patch_namespaced_service("gen", ns, {"spec": {"sessionAffinity": "ClientIP"}})
    assert changed.metadata.generation == 2


def test_delete_preconditions(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_service(ns, svc("pre"))
    with pytest.raises(ApiException) as info:
        core.delete_namespaced_service("pre", ns, body={"preconditions": {"uid": "wrong"}})
    assert info.value.status == 409
    assert "Precondition failed" in info.value.body
    core.read_namespaced_service("pre", ns)


def test_namespace_delete_empties_then_removes(core: client.CoreV1Api) -> None:
    created = core.create_namespace({"metadata": {"name": "doomed"}})
    assert created.status.phase == "Active"
    assert created.spec.finalizers == ["kubernetes"]
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "c"}})
    core.delete_namespace("doomed")
    with pytest.raises(ApiException) as info:
        core.read_namespace("doomed")
    assert info.value.status == 404
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map("missing-ns", {"metadata": {"name": "c"}})
    assert info.value.status == 404


def test_delete_collection(core: client.CoreV1Api, ns: str) -> None:
    for i in range(3):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"c{i}",
                                                            "labels": {"g": "x" if i else "y"}}})
    core.delete_collection_namespaced_config_map(ns, label_selector="g=x")
    left = [c.metadata.name for c in core.list_namespaced_config_map(ns).items]
    assert left == ["c0"]
