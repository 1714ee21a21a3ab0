"""Watches through the official client: resume from a resourceVersion, 410 then relist,
bookmarks, selector transitions, dropped connections."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from lbctl.sandbox.app import Sandbox
from tests.conftest import admin_call, client_for, svc

pytestmark = pytest.mark.integration


def _events(core: client.CoreV1Api, ns: str, rv: str, count: int, **kw: Any) -> list[Any]:
    out: list[Any] = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_service, ns, resource_version=rv,
                       timeout_seconds=10, **kw):
        out.append(ev)
        if len(out) == count:
            w.stop()
    return out


def test_watch_from_resource_version_replays_in_order(core: client.CoreV1Api, ns: str) -> None:
    start = core.list_namespaced_service(ns).metadata.resource_version
    core.create_namespaced_service(ns, svc("a"))
    core.create_namespaced_service(ns, svc("b"))
    core.patch_namespaced_service("a", ns, {"metadata": {"labels": {"x": "1"}}})
    core.delete_namespaced_service("b", ns)
    events = _events(core, ns, start, 4)
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    rvs = [int(e["object"].metadata.resource_version) for e in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 4


def test_watch_without_rv_sends_current_state_then_changes(core: client.CoreV1Api,
                                                           ns: str) -> None:
    core.create_namespaced_service(ns, svc("existing"))
    got: list[Any] = []
    w = watch.Watch()

    def later() -> None:
        core.create_namespaced_service(ns, svc("new"))

    timer = threading.Timer(0.3, later)
    timer.start()
    for ev in w.stream(core.list_namespaced_service, ns, timeout_seconds=10):
        got.append((ev["type"], ev["object"].metadata.name))
        if len(got) == 2:
            w.stop()
    timer.join()
    assert got == [("ADDED", "existing"), ("ADDED", "new")]


def test_label_selector_transitions(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_service(ns, svc("s"))
    rv = core.list_namespaced_service(ns).metadata.resource_version
    core.patch_namespaced_service("s", ns, {"metadata": {"labels": {"tier": "web"}}})
    core.patch_namespaced_service("s", ns, {"metadata": {"labels": {"tier": "db"}}})
    events = _events(core, ns, rv, 2, label_selector="tier=web")
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


def test_too_old_resource_version_is_410_then_relist(own_sandbox: Sandbox) -> None:
    api = client_for(own_sandbox)
    core = client.CoreV1Api(api)
    old_rv = core.list_namespaced_service("default").metadata.resource_version
    for i in range(1100):  # the own sandbox keeps 1000 changes
        core.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
    with pytest.raises(ApiException) as info:
        list(watch.Watch().stream(core.list_namespaced_service, "default",
                                  resource_version=old_rv, timeout_seconds=5))
    assert info.value.status == 410
    fresh = core.list_namespaced_service("default")  # the relist a client does next
    assert [s.metadata.name for s in fresh.items] == ["kubernetes"]
    api.close()


def test_forced_410_and_dropped_watch(own_sandbox: Sandbox) -> None:
    api = client_for(own_sandbox)
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_service("default").metadata.resource_version
    status, _, _ = admin_call(own_sandbox, "PUT", "/sandbox/faults", {"watchGone": 1})
    assert status == 200
    with pytest.raises(ApiException) as info:
        list(watch.Watch().stream(core.list_namespaced_service, "default",
                                  resource_version=rv, timeout_seconds=5))
    assert info.value.status == 410
    # The next watch works; dropping it ends the stream early.
    ended = threading.Event()

    def consume() -> None:
        for _ in watch.Watch().stream(core.list_namespaced_service, "default",
                                      resource_version=rv, timeout_seconds=30):
            pass
        ended.set()

    t = threading.Thread(target=consume)
    t.start()
    for _ in range(50):
        status, body, _ = admin_call(own_sandbox, "POST", "/sandbox/faults/drop-watches")
        if body["dropped"]:
            break
        threading.Event().wait(0.1)
    assert ended.wait(10), "a dropped watch must end the client's stream"
    t.join()
    api.close()


def test_bookmarks_carry_the_current_resource_version(sandbox: Sandbox, ns: str,
                                                      core: client.CoreV1Api) -> None:
    rv = core.list_namespaced_service(ns).metadata.resource_version
    resp = core.list_namespaced_service(ns, watch=True, resource_version=rv,
                                        allow_watch_bookmarks=True, timeout_seconds=3,
                                        _preload_content=False)
    lines = [line for line in resp.read().split(b"\n") if line]
    assert lines, "expected at least one bookmark within 3 s (interval 0.5 s)"
    import json

    first = json.loads(lines[0])
    assert first["type"] == "BOOKMARK"
    assert int(first["object"]["metadata"]["resourceVersion"]) >= int(rv)


def test_watch_timeout_ends_stream(core: client.CoreV1Api, ns: str) -> None:
    rv = core.list_namespaced_service(ns).metadata.resource_version
    events = list(watch.Watch().stream(core.list_namespaced_service, ns, resource_version=rv,
                                       timeout_seconds=1))
    assert events == []
