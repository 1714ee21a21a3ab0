"""Lists: pagination with consistent snapshots, 410 for expired continues, selectors."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from lbctl.sandbox.app import Sandbox
from tests.conftest import admin_call, client_for

pytestmark = pytest.mark.integration


def test_pagination_is_a_consistent_snapshot(core: client.CoreV1Api, ns: str) -> None:
    for i in range(25):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"cm-{i:02d}"}})
    first = core.list_namespaced_config_map(ns, limit=10)
    assert len(first.items) == 10
    assert first.metadata.remaining_item_count == 15
    # Changes after the first page must not show in later pages of the same list.
    core.delete_namespaced_config_map("cm-15", ns)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "cm-99"}})
    names = [i.metadata.name for i in first.items]
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_config_map(ns, limit=10, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        names += [i.metadata.name for i in page.items]
        token = page.metadata._continue
    assert names == [f"cm-{i:02d}" for i in range(25)]
    current = [i.metadata.name for i in core.list_namespaced_config_map(ns).items]
    assert "cm-15" not in current and "cm-99" in current


def test_expired_continue_is_410(own_sandbox: Sandbox) -> None:
    api = client_for(own_sandbox)
    core = client.CoreV1Api(api)
    for i in range(5):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
    page = core.list_namespaced_config_map("default", limit=2)
    core.create_namespaced_config_map("default", {"metadata": {"name": "later"}})
    admin_call(own_sandbox, "POST", "/sandbox/compact")
    with pytest.raises(ApiException) as info:
        core.list_namespaced_config_map("default", limit=2, _continue=page.metadata._continue)
    assert info.value.status == 410
    assert "Expired" in info.value.body
    api.close()


def test_list_at_exact_resource_version(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_config_map(ns, {"metadata": {"name": "before"}})
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, {"metadata": {"name": "after"}})
    old = core.list_namespaced_config_map(ns, resource_version=rv,
                                          resource_version_match="Exact")
    assert [i.metadata.name for i in old.items] == ["before"]


def test_label_and_field_selectors(core: client.CoreV1Api, ns: str) -> None:
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        core.create_namespaced_config_map(ns, {"metadata": {"name": name,
                                                            "labels": {"tier": tier}}})
    web = core.list_namespaced_config_map(ns, label_selector="tier=web")
    assert [i.metadata.name for i in web.items] == ["a", "c"]
    notweb = core.list_namespaced_config_map(ns, label_selector="tier notin (web)")
    assert [i.metadata.name for i in notweb.items] == ["b"]
    one = core.list_namespaced_config_map(ns, field_selector="metadata.name=c")
    assert [i.metadata.name for i in one.items] == ["c"]
    everywhere = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={ns},metadata.name!=a")
    assert [i.metadata.name for i in everywhere.items] == ["b", "c"]
    with pytest.raises(ApiException) as info:
        core.list_namespaced_config_map(ns, field_selector="data.x=1")
    assert info.value.status == 400
    with pytest.raises(ApiException) as info:
        core.list_namespaced_config_map(ns, label_selector="tier in (web")
    assert info.value.status == 400


def test_event_field_selectors(core: client.CoreV1Api, ns: str) -> None:
    for i, (kind, name) in enumerate((("Service", "web"), ("Service", "db"), ("Pod", "web"))):
        core.create_namespaced_event(ns, {
            "metadata": {"name": f"e{i}"}, "reason": "R", "message": "m", "type": "Normal",
            "involvedObject": {"kind": kind, "name": name, "namespace": ns}})
    found = core.list_namespaced_event(
        ns, field_selector="involvedObject.kind=Service,involvedObject.name=web")
    assert [e.metadata.name for e in found.items] == ["e0"]
