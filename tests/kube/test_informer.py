"""The informer against the sandbox through the official client: paged lists, ordered
notifications, relists after 410 and compaction, resumes after dropped watches, list retries."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from lbctl.controller.records import node_view, service_view
from lbctl.kube import NODES, SERVICES, Handlers, Informer, Kube, Resource, key_of
from lbctl.sandbox.app import Sandbox
from providers.cluster import ServiceView
from tests.conftest import admin_call, client_for, svc, wait_for

pytestmark = pytest.mark.integration
CONFIGMAPS = Resource("", "v1", "configmaps", True)
Seen = list[tuple[str, str]]


def fresh_list(core: client.CoreV1Api, ns: str) -> dict[str, ServiceView]:
    """What a fresh list through the official client says, decoded the same way."""
    resp = core.list_namespaced_service(ns, _preload_content=False)
    return {key_of(o): service_view(o) for o in json.loads(resp.data)["items"]}


def cached(informer: Informer[ServiceView]) -> dict[str, ServiceView]:
    snapshot = {record.key: record for record in informer.items()}
    assert all(informer.get(key) is record for key, record in snapshot.items())
    return snapshot


def recorder(seen: Seen) -> Handlers[ServiceView]:
    return Handlers(on_add=lambda r: seen.append(("add", r.name)),
                    on_update=lambda _o, n: seen.append(("update", n.name)),
                    on_delete=lambda r: seen.append(("delete", r.name)))


def audit(box: Sandbox, verb: str, resource: str, ns: str) -> list[dict[str, Any]]:
    _, body, _ = admin_call(box, "GET", "/sandbox/audit")
    return [e for e in body["items"] if e["verb"] == verb and e["resource"] == resource
            and e["namespace"] == ns]


@pytest.fixture
def kube(sandbox: Sandbox) -> Iterator[Kube]:
    k = Kube.connect(sandbox.options.kubeconfig)
    yield k
    k.close()


@pytest.fixture
def box(own_sandbox: Sandbox) -> Iterator[tuple[Sandbox, Kube, client.CoreV1Api, str]]:
    """A sandbox of the test's own (faults, compaction), a Kube on it and a namespace."""
    k = Kube.connect(own_sandbox.options.kubeconfig)
    api = client_for(own_sandbox)
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "t"}})
    yield own_sandbox, k, core, "t"
    k.close()
    api.close()


def test_initial_list_comes_in_pages_and_caches_slim_records(
        sandbox: Sandbox, kube: Kube, core: client.CoreV1Api, ns: str) -> None:
    for i in range(12):
        core.create_namespaced_service(ns, svc(f"s{i:02d}", type="LoadBalancer"))
    seen: Seen = []
    informer = Informer(kube, SERVICES, service_view, namespace=ns, page_size=5)
    informer.add_handlers(recorder(seen))
    informer.start()
    try:
        assert informer.wait_for_sync(10)
        assert len(audit(sandbox, "list", "services", ns)) == 3  # limit=5: 5 + 5 + 2
        assert sorted(seen) == [("add", f"s{i:02d}") for i in range(12)]
        assert cached(informer) == fresh_list(core, ns)
        record = informer.get(f"{ns}/s03")
        assert isinstance(record, ServiceView) and record.type == "LoadBalancer"
        assert informer.resource_version
    finally:
        informer.stop()


def test_default_pages_hold_500_items(sandbox: Sandbox, api: client.ApiClient, kube: Kube,
                                     ns: str) -> None:
    unlimited = Kube(api)  # the fixture's plain ApiClient: no client-side QPS limit
    for i in range(1001):
        unlimited.request("POST", CONFIGMAPS.path(ns), body={"metadata": {"name": f"c{i:04d}"}})
    informer = Informer(kube, CONFIGMAPS, lambda o: o["metadata"]["name"], namespace=ns)
    informer.start()
    try:
        assert informer.wait_for_sync(20)
        assert len(audit(sandbox, "list", "configmaps", ns)) == 3  # 500 + 500 + 1
        assert len(informer) == 1001
    finally:
        informer.stop()


def test_add_update_delete_are_notified_in_order_after_the_cache_has_them(
        kube: Kube, core: client.CoreV1Api, ns: str) -> None:
    events: list[tuple[str, str, Any]] = []
    informer = Informer(kube, SERVICES, service_view, namespace=ns)

    def on_update(old: ServiceView, new: ServiceView) -> None:
        assert informer.get(new.key) is new, "the cache holds the change first"
        events.append(("update", new.name, (old.labels.get("x"), new.labels.get("x"))))

    informer.add_handlers(Handlers(on_add=lambda r: events.append(("add", r.name, None)),
                                   on_update=on_update,
                                   on_delete=lambda r: events.append(("delete", r.name, None))))
    informer.start()
    try:
        assert informer.wait_for_sync(10)
        core.create_namespaced_service(ns, svc("a"))
        core.create_namespaced_service(ns, svc("b"))
        core.patch_namespaced_service("a", ns, {"metadata": {"labels": {"x": "1"}}})
        core.delete_namespaced_service("b", ns)
        wait_for(lambda: len(events) == 4, what="4 notifications")
        assert events == [("add", "a", None), ("add", "b", None),
                          ("update", "a", (None, "1")), ("delete", "b", None)]
        assert cached(informer) == fresh_list(core, ns)
    finally:
        informer.stop()


def test_nodes_are_cluster_scoped_and_keyed_by_name(kube: Kube) -> None:
    informer = Informer(kube, NODES, node_view)
    informer.start()
    try:
        assert informer.wait_for_sync(10)
        assert {"sandbox-node-1", "sandbox-node-2", "sandbox-node-3"} <= set(informer.keys())
        node = informer.get("sandbox-node-1")
        assert node is not None and node.provider_id == "sandbox://sandbox-node-1"
    finally:
        informer.stop()


def _frozen_informer(kube: Kube, core: client.CoreV1Api, ns: str, seen: Seen
                     ) -> tuple[Informer[ServiceView], threading.Event]:
    """A synced informer whose thread is then held inside a handler (so it reads nothing)
    until the returned event is set: the world can change behind its back."""
    held, release = threading.Event(), threading.Event()

    def on_add(record: ServiceView) -> None:
        if record.name == "hold":
            held.set()
            release.wait(30)
        seen.append(("add", record.name))

    informer = Informer(kube, SERVICES, service_view, namespace=ns)
    informer.add_handlers(Handlers(on_add=on_add,
                                   on_update=lambda _o, n: seen.append(("update", n.name)),
                                   on_delete=lambda r: seen.append(("delete", r.name))))
    for name in ("a", "b", "c"):
        core.create_namespaced_service(ns, svc(name))
    informer.start()
    assert informer.wait_for_sync(10)
    core.create_namespaced_service(ns, svc("hold"))
    assert held.wait(10)
    return informer, release


def _change_behind_its_back(core: client.CoreV1Api, ns: str) -> None:
    core.patch_namespaced_service("a", ns, {"metadata": {"labels": {"x": "1"}}})
    core.delete_namespaced_service("b", ns)
    core.create_namespaced_service(ns, svc("d"))


@pytest.mark.parametrize("how", ["watchGone", "compact"])
def test_a_410_relists_and_notifies_the_difference(
        box: tuple[Sandbox, Kube, client.CoreV1Api, str], how: str) -> None:
    sandbox, kube, core, ns = box
    seen: Seen = []
    informer, release = _frozen_informer(kube, core, ns, seen)
    try:
        admin_call(sandbox, "POST", "/sandbox/faults/drop-watches")
        _change_behind_its_back(core, ns)
        if how == "compact":
            admin_call(sandbox, "POST", "/sandbox/compact")
        else:
            admin_call(sandbox, "PUT", "/sandbox/faults", {"watchGone": 1})
        del seen[:]
        release.set()
        wait_for(lambda: informer.lists == 2, what="a relist")
        wait_for(lambda: len(seen) == 4, what="the relist's notifications")
        assert sorted(seen) == [("add", "d"), ("add", "hold"), ("delete", "b"),
                                ("update", "a")]
        assert cached(informer) == fresh_list(core, ns)
        core.create_namespaced_service(ns, svc("e"))  # and it watches again afterwards
        wait_for(lambda: informer.get(f"{ns}/e") is not None, what="e after the relist")
        assert informer.lists == 2
    finally:
        release.set()
        informer.stop()


def test_dropped_watches_resume_from_the_last_resource_version_without_relisting(
        box: tuple[Sandbox, Kube, client.CoreV1Api, str]) -> None:
    sandbox, kube, core, ns = box
    seen: Seen = []
    informer, release = _frozen_informer(kube, core, ns, seen)
    try:
        admin_call(sandbox, "POST", "/sandbox/faults/drop-watches")
        _change_behind_its_back(core, ns)
        del seen[:]
        release.set()
        wait_for(lambda: len(seen) == 4, what="the missed changes, replayed")
        assert seen == [("add", "hold"), ("update", "a"), ("delete", "b"), ("add", "d")]
        def watches_ended() -> int:  # (a watch is audited when it ends)
            return len(audit(sandbox, "watch", "services", ns))

        for _ in range(3):
            wait_for(lambda: bool(sandbox.api.watchers), what="a watch open")
            ended = watches_ended()
            admin_call(sandbox, "POST", "/sandbox/faults/drop-watches")
            wait_for(lambda: watches_ended() > ended, what="the watch dropped")  # noqa: B023
        core.create_namespaced_service(ns, svc("e"))
        wait_for(lambda: informer.get(f"{ns}/e") is not None, what="e")
        assert informer.lists == 1, "no relist: the watch resumed each time"
        assert cached(informer) == fresh_list(core, ns)
    finally:
        release.set()
        informer.stop()


@pytest.mark.parametrize("read_timeout", [60.0, 0.3])
def test_watch_timeouts_resume_without_relisting(sandbox: Sandbox, kube: Kube,
                                                 core: client.CoreV1Api, ns: str,
                                                 read_timeout: float) -> None:
    """Server-side timeoutSeconds ends each watch; a socket read timeout (0.3 s: shorter than
    the sandbox's bookmark interval, so it fires on a quiet stream) breaks it. Both resume from
    the last resourceVersion."""
    informer = Informer(kube, SERVICES, service_view, namespace=ns, watch_timeout=1,
                        read_timeout=read_timeout)
    informer.start()
    try:
        assert informer.wait_for_sync(10)
        ended = len(audit(sandbox, "watch", "services", ns))
        wait_for(lambda: len(audit(sandbox, "watch", "services", ns)) >= ended + 2,
                   what="watches ending and resuming")
        core.create_namespaced_service(ns, svc("after"))
        wait_for(lambda: informer.get(f"{ns}/after") is not None, what="a change seen")
        assert informer.lists == 1
        assert cached(informer) == fresh_list(core, ns)
    finally:
        informer.stop()


def test_list_errors_are_retried_with_growing_backoff(
        box: tuple[Sandbox, Kube, client.CoreV1Api, str]) -> None:
    sandbox, kube, core, ns = box
    core.create_namespaced_service(ns, svc("a"))
    admin_call(sandbox, "PUT", "/sandbox/faults", {
        "errorRates": {"500": 1.0}, "verbs": ["list"], "resources": ["services"]})
    informer = Informer(kube, SERVICES, service_view, namespace=ns, min_backoff=0.2)
    informer.start()
    try:
        time.sleep(2.5)
        assert not informer.has_synced()
        failed = audit(sandbox, "list", "services", ns)
        assert all(e["code"] == 500 for e in failed)
        assert 3 <= len(failed) <= 7, "backed off, not hammered"  # 0.2, 0.4, 0.8, 1.6 s
        gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(failed)]
        assert gaps[-1] > gaps[0] * 2, f"backoff grows: {gaps}"
        admin_call(sandbox, "PUT", "/sandbox/faults", {})
        assert informer.wait_for_sync(10)
        assert cached(informer) == fresh_list(core, ns)
    finally:
        informer.stop()


def test_requests_are_rate_limited_by_qps_and_burst(sandbox: Sandbox) -> None:
    kube = Kube.connect(sandbox.options.kubeconfig, qps=10, burst=5)
    try:
        start = time.monotonic()
        for _ in range(15):  # 5 from the burst, then 10 at 10 a second
            kube.request("GET", "/api/v1/namespaces/default")
        assert 0.9 <= time.monotonic() - start < 5
    finally:
        kube.close()


def test_stop_ends_an_open_watch_at_once(kube: Kube, ns: str) -> None:
    informer = Informer(kube, SERVICES, service_view, namespace=ns)
    informer.start()
    assert informer.wait_for_sync(10)
    time.sleep(0.3)  # now blocked reading the watch
    start = time.monotonic()
    informer.stop()
    assert time.monotonic() - start < 2
    assert informer._thread is not None and not informer._thread.is_alive()
