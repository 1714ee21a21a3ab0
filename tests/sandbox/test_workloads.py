"""Workloads come alive in the sandbox: the in-process controllers, scheduler and kubelets,
driven and observed only through the official Python client.

Deployments make ReplicaSets make Running pods on the simulated nodes, Services get
EndpointSlices and Endpoints that follow pods, nodes and ports without churn, DaemonSets put a
pod on each node, deleting an owner deletes its dependents, and all of it stays quick enough that
a leader's lease renewals are never starved.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from lbctl.sandbox.app import Sandbox, SandboxOptions, SandboxThread
from lbctl.sandbox.nodes import simulated
from lbctl.sandbox.openapi.schema import validate_full
from lbctl.sandbox.workloads import WorkloadControllers
from tests.conftest import client_for, namespace
from tests.helpers import retry

pytestmark = pytest.mark.integration
T = TypeVar("T")
SETTLE = 20.0
"""Upper bound for any reaction; they normally take a few milliseconds."""
POD_RANGE = ipaddress.ip_network("127.0.20.0/22")
STOPPED = "sandbox.lbctl.io/stopped"


class Box:
    """A sandbox in a thread with the workload controllers running on its loop."""

    def __init__(self, tmp: Path) -> None:
        self.thread = SandboxThread(SandboxOptions(nodes=simulated(3), kubeconfig=tmp / "kc",
                                                   bookmark_interval=0.5))
        self.sandbox: Sandbox = self.thread.start()
        self.controllers: WorkloadControllers | None = None
        if getattr(self.sandbox, "workloads", None) is None:  # not (yet) wired into Sandbox

            async def start() -> WorkloadControllers:
                controllers = WorkloadControllers(self.sandbox.registry)
                controllers.start()
                return controllers

            self.controllers = self.run(start())
        self.api = client_for(self.sandbox)

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.thread.loop).result(30)

    def close(self) -> None:
        self.api.close()
        if self.controllers is not None:
            self.run(self.controllers.stop())
        self.thread.stop()


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    b = Box(tmp_path_factory.mktemp("workloads"))
    yield b
    b.close()


@pytest.fixture
def core(box: Box) -> client.CoreV1Api:
    return client.CoreV1Api(box.api)


@pytest.fixture
def apps(box: Box) -> client.AppsV1Api:
    return client.AppsV1Api(box.api)


@pytest.fixture
def disc(box: Box) -> client.DiscoveryV1Api:
    return client.DiscoveryV1Api(box.api)


@pytest.fixture
def ns(core: client.CoreV1Api) -> Iterator[str]:
    yield from namespace(core, f"w-{uuid.uuid4().hex[:10]}")


# -- helpers ------------------------------------------------------------------------------
def eventually(check: Callable[[], T], within: float = SETTLE) -> T:
    """Retry `check` until it stops failing an assertion, or time runs out."""
    return retry(check, within)


def deployment(name: str, replicas: int = 3, port: int = 8080, image: str = "nginx",
               port_name: str = "http", labels: dict[str, str] | None = None) -> dict[str, Any]:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                         "name": "web", "image": image,
                         "ports": [{"containerPort": port, "name": port_name}]}]}}}}


def service(name: str, target_port: int | str = 8080, selector: dict[str, str] | None = None,
            **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "selector": selector or {"app": name},
                     "ports": [{"name": "web", "port": 80, "targetPort": target_port}], **spec}}


def pods_of(core: client.CoreV1Api, ns: str, app: str) -> list[Any]:
    return list(core.list_namespaced_pod(ns, label_selector=f"app={app}").items)


def running(core: client.CoreV1Api, ns: str, app: str, count: int) -> list[Any]:
    """Wait for exactly `count` Running and Ready pods of `app`; return them."""
    def check() -> list[Any]:
        pods = pods_of(core, ns, app)
        assert len(pods) == count, [p.metadata.name for p in pods]
        for pod in pods:
            assert pod.status is not None and pod.status.phase == "Running"
            assert pod.status.pod_ip
            assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
        return pods

    return eventually(check)


def slices_of(disc: client.DiscoveryV1Api, ns: str, svc: str) -> list[Any]:
    return list(disc.list_namespaced_endpoint_slice(
        ns, label_selector=f"kubernetes.io/service-name={svc}").items)


def endpoints_in(disc: client.DiscoveryV1Api, ns: str, svc: str) -> list[tuple[str, bool]]:
    """(address, ready) of every endpoint of the Service's slices, sorted."""
    return sorted((e.addresses[0], bool(e.conditions.ready))
                  for s in slices_of(disc, ns, svc) for e in s.endpoints or [])


def present(read: Callable[[], T]) -> T:
    """`read()`, with a 404 turned into an assertion `eventually` retries."""
    try:
        return read()
    except ApiException as err:
        if err.status == 404:
            raise AssertionError("not there (yet)") from err
        raise


def set_node_annotation(core: client.CoreV1Api, node: str, value: str | None) -> None:
    core.patch_node(node, {"metadata": {"annotations": {STOPPED: value}}})


# -- service accounts ----------------------------------------------------------------------
def test_every_namespace_gets_a_default_service_account(core: client.CoreV1Api, ns: str) -> None:
    for name in ("default", "kube-system", "kube-public", "kube-node-lease", ns):
        eventually(partial(present, partial(core.read_namespaced_service_account, "default",
                                            name)))
    core.delete_namespaced_service_account("default", ns)
    eventually(partial(present, partial(core.read_namespaced_service_account, "default", ns)))


# -- deployments, replica sets, pods -------------------------------------------------------
def test_deployment_runs_its_replicas_as_pods_on_the_simulated_nodes(
        core: client.CoreV1Api, apps: client.AppsV1Api, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("k8s-demo"))
    pods = running(core, ns, "k8s-demo", 3)

    rs_list = apps.list_namespaced_replica_set(ns).items
    assert len(rs_list) == 1
    rs = rs_list[0]
    pod_hash = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"k8s-demo-{pod_hash}"
    assert rs.spec.selector.match_labels == {"app": "k8s-demo", "pod-template-hash": pod_hash}
    assert rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    owner = rs.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("Deployment", "k8s-demo", True)

    nodes = {n.metadata.name: n for n in core.list_node().items}
    for pod in pods:
        assert pod.metadata.name.startswith(f"{rs.metadata.name}-")
        assert len(pod.metadata.name) == len(rs.metadata.name) + 6
        assert pod.metadata.labels["pod-template-hash"] == pod_hash
        ref = pod.metadata.owner_references[0]
        assert (ref.kind, ref.name, ref.uid, ref.controller) == (
            "ReplicaSet", rs.metadata.name, rs.metadata.uid, True)
        node = nodes[pod.spec.node_name]
        assert node.metadata.annotations["sandbox.lbctl.io/simulated"] == "true"
        internal = next(a.address for a in node.status.addresses if a.type == "InternalIP")
        assert pod.status.host_ip == internal
        assert ipaddress.ip_address(pod.status.pod_ip) in POD_RANGE
        assert [i.ip for i in pod.status.pod_ips] == [pod.status.pod_ip]
        assert {c.type: c.status for c in pod.status.conditions} == {
            "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
            "ContainersReady": "True", "PodScheduled": "True"}
        (cs,) = pod.status.container_statuses
        assert (cs.name, cs.ready, cs.started, cs.restart_count) == ("web", True, True, 0)
        assert cs.state.running.started_at is not None
        assert pod.status.start_time <= datetime.now(UTC)
    assert len({p.status.pod_ip for p in pods}) == 3
    assert len({p.spec.node_name for p in pods}) == 3, "replicas spread over the nodes"

    def status() -> None:
        d = apps.read_namespaced_deployment("k8s-demo", ns)
        s = d.status
        assert (s.replicas, s.ready_replicas, s.available_replicas, s.updated_replicas) == (
            3, 3, 3, 3)
        assert s.observed_generation == d.metadata.generation
        assert s.unavailable_replicas is None
        conds = {c.type: c for c in s.conditions}
        assert conds["Available"].status == "True"
        assert conds["Available"].reason == "MinimumReplicasAvailable"
        assert conds["Progressing"].status == "True"
        assert conds["Progressing"].reason == "NewReplicaSetAvailable"
        assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
        rs_status = apps.read_namespaced_replica_set(rs.metadata.name, ns).status
        assert (rs_status.replicas, rs_status.ready_replicas, rs_status.available_replicas,
                rs_status.fully_labeled_replicas) == (3, 3, 3, 3)

    eventually(status)


def test_scaling_and_deleted_pods_are_replaced(core: client.CoreV1Api, apps: client.AppsV1Api,
                                               ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    first = running(core, ns, "web", 2)

    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 5}})
    running(core, ns, "web", 5)
    eventually(lambda: assert_ready(apps, ns, "web", 5))

    apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 1}})
    (survivor,) = running(core, ns, "web", 1)
    eventually(lambda: assert_ready(apps, ns, "web", 1))

    core.delete_namespaced_pod(survivor.metadata.name, ns)
    (replacement,) = running(core, ns, "web", 1)
    assert replacement.metadata.name != survivor.metadata.name
    assert replacement.metadata.name not in {p.metadata.name for p in first}


def assert_ready(apps: client.AppsV1Api, ns: str, name: str, count: int) -> None:
    s = apps.read_namespaced_deployment(name, ns).status
    assert (s.replicas, s.ready_replicas, s.available_replicas) == (count, count, count)


def test_min_ready_seconds_delays_availability(core: client.CoreV1Api, apps: client.AppsV1Api,
                                               ns: str) -> None:
    body = deployment("slow", replicas=2)
    body["spec"]["minReadySeconds"] = 3
    apps.create_namespaced_deployment(ns, body)
    running(core, ns, "slow", 2)
    s = apps.read_namespaced_deployment("slow", ns).status
    assert s.available_replicas is None and s.unavailable_replicas == 2
    assert {c.type: c.status for c in s.conditions}["Available"] == "False"
    eventually(lambda: assert_ready(apps, ns, "slow", 2), within=15)


def test_relabelled_pod_is_released_and_replaced(core: client.CoreV1Api,
                                                 apps: client.AppsV1Api, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    pods = running(core, ns, "web", 2)
    taken = pods[0].metadata.name
    core.patch_namespaced_pod(taken, ns, {"metadata": {"labels": {"app": "debug"}}})
    running(core, ns, "web", 2)
    eventually(lambda: _no_owner(core, ns, taken))


def _no_owner(core: client.CoreV1Api, ns: str, name: str) -> None:
    assert not core.read_namespaced_pod(name, ns).metadata.owner_references


def test_template_change_rolls_out_a_new_replica_set(core: client.CoreV1Api,
                                                     apps: client.AppsV1Api, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=3))
    old_pods = running(core, ns, "web", 3)
    apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {
        "containers": [{"name": "web", "image": "nginx:2"}]}}}})

    def rolled() -> None:
        pods = running(core, ns, "web", 3)
        assert {c.image for p in pods for c in p.spec.containers} == {"nginx:2"}
        by_revision = {rs.metadata.annotations["deployment.kubernetes.io/revision"]: rs
                       for rs in apps.list_namespaced_replica_set(ns).items}
        assert set(by_revision) == {"1", "2"}
        assert by_revision["1"].spec.replicas == 0 and by_revision["2"].spec.replicas == 3
        new_hash = by_revision["2"].metadata.labels["pod-template-hash"]
        assert {p.metadata.labels["pod-template-hash"] for p in pods} == {new_hash}
        d = apps.read_namespaced_deployment("web", ns)
        assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
        assert (d.status.updated_replicas, d.status.available_replicas) == (3, 3)
        assert d.status.observed_generation == d.metadata.generation == 2

    eventually(rolled)
    assert not {p.metadata.name for p in old_pods} & {
        p.metadata.name for p in pods_of(core, ns, "web")}

    # Back to the first template: the first ReplicaSet is reused as revision 3.
    apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {
        "containers": [{"name": "web", "image": "nginx"}]}}}})

    def rolled_back() -> None:
        sets = apps.list_namespaced_replica_set(ns).items
        assert len(sets) == 2
        active = [rs for rs in sets if rs.spec.replicas]
        assert len(active) == 1
        assert active[0].metadata.annotations["deployment.kubernetes.io/revision"] == "3"
        assert active[0].spec.template.spec.containers[0].image == "nginx"

    eventually(rolled_back)
    running(core, ns, "web", 3)


def test_deleting_a_deployment_deletes_its_replica_sets_and_pods(
        core: client.CoreV1Api, apps: client.AppsV1Api, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=3))
    apps.create_namespaced_deployment(ns, deployment("keep", replicas=1))
    running(core, ns, "web", 3)
    running(core, ns, "keep", 1)
    apps.delete_namespaced_deployment("web", ns)

    def collected() -> None:
        assert pods_of(core, ns, "web") == []
        names = [rs.metadata.name for rs in apps.list_namespaced_replica_set(ns).items]
        assert len(names) == 1 and names[0].startswith("keep-")

    eventually(collected)
    running(core, ns, "keep", 1)

    (rs,) = apps.list_namespaced_replica_set(ns).items
    apps.delete_namespaced_replica_set(rs.metadata.name, ns)
    eventually(lambda: _only_new_replica_set(apps, ns, rs.metadata.uid))
    running(core, ns, "keep", 1)  # the Deployment made a new ReplicaSet, and it its pod


def _only_new_replica_set(apps: client.AppsV1Api, ns: str, gone_uid: str) -> None:
    sets = apps.list_namespaced_replica_set(ns).items
    assert [rs.metadata.uid != gone_uid for rs in sets] == [True]


# -- endpoint slices and endpoints ---------------------------------------------------------
def test_seed_flow_service_gets_a_slice_of_ready_pods_that_follows_scaling(
        core: client.CoreV1Api, apps: client.AppsV1Api, disc: client.DiscoveryV1Api,
        ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("k8s-demo", replicas=3, port=8080))
    svc = core.create_namespaced_service(ns, service("k8s-demo", 8080))
    pods = running(core, ns, "k8s-demo", 3)
    nodes = {n.metadata.name: n for n in core.list_node().items}

    def three_ready() -> Any:
        (s,) = slices_of(disc, ns, "k8s-demo")
        assert len(s.endpoints or []) == 3
        return s

    s = eventually(three_ready)
    assert s.metadata.name.startswith("k8s-demo-") and len(s.metadata.name) == 14
    assert s.metadata.labels == {
        "kubernetes.io/service-name": "k8s-demo",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    owner = s.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid) == ("Service", "k8s-demo", svc.metadata.uid)
    assert s.address_type == "IPv4"
    assert [(p.name, p.protocol, p.port) for p in s.ports] == [("web", "TCP", 8080)]
    by_ip = {p.status.pod_ip: p for p in pods}
    for e in s.endpoints:
        pod = by_ip[e.addresses[0]]
        assert (e.conditions.ready, e.conditions.serving, e.conditions.terminating) == (
            True, True, False)
        assert e.node_name == pod.spec.node_name
        assert e.zone == nodes[pod.spec.node_name].metadata.labels[
            "topology.kubernetes.io/zone"]
        assert (e.target_ref.kind, e.target_ref.name, e.target_ref.uid) == (
            "Pod", pod.metadata.name, pod.metadata.uid)

    ep = core.read_namespaced_endpoints("k8s-demo", ns)
    assert ep.metadata.labels == {"endpointslice.kubernetes.io/skip-mirror": "true"}
    (subset,) = ep.subsets
    assert sorted(a.ip for a in subset.addresses) == sorted(by_ip)
    assert subset.not_ready_addresses is None
    assert [(p.name, p.port, p.protocol) for p in subset.ports] == [("web", 8080, "TCP")]

    apps.patch_namespaced_deployment_scale("k8s-demo", ns, {"spec": {"replicas": 1}})
    (last,) = running(core, ns, "k8s-demo", 1)
    eventually(lambda: _assert_eq(endpoints_in(disc, ns, "k8s-demo"),
                                  [(last.status.pod_ip, True)]))
    eventually(lambda: _assert_eq(
        [a.ip for a in core.read_namespaced_endpoints("k8s-demo", ns).subsets[0].addresses],
        [last.status.pod_ip]))

    core.delete_namespaced_pod(last.metadata.name, ns)
    (fresh,) = running(core, ns, "k8s-demo", 1)
    eventually(lambda: _assert_eq(endpoints_in(disc, ns, "k8s-demo"),
                                  [(fresh.status.pod_ip, True)]))


def _assert_eq(got: Any, want: Any) -> None:
    assert got == want


def endpoints_settled(core: client.CoreV1Api, disc: client.DiscoveryV1Api, ns: str,
                      app: str, count: int) -> None:
    """Prove the Endpoints and EndpointSlice controllers handled every change made so far:
    each works its keys in order (one FIFO queue per controller), so once a Service created
    now has both its Endpoints and its slice, every key queued before it was reconciled."""
    marker = f"settle-{app}"
    core.create_namespaced_service(ns, service(marker, selector={"app": app}))
    eventually(lambda: _assert_eq(len(endpoints_in(disc, ns, marker)), count))
    eventually(lambda: _assert_eq(len(core.read_namespaced_endpoints(
        marker, ns).subsets[0].addresses), count))
    core.delete_namespaced_service(marker, ns)


def test_unchanged_endpoints_are_never_rewritten(core: client.CoreV1Api,
                                                 apps: client.AppsV1Api,
                                                 disc: client.DiscoveryV1Api, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=3))
    core.create_namespaced_service(ns, service("web"))
    running(core, ns, "web", 3)
    eventually(lambda: _assert_eq(len(endpoints_in(disc, ns, "web")), 3))
    endpoints_settled(core, disc, ns, "web", 3)
    (before,) = slices_of(disc, ns, "web")
    ep_before = core.read_namespaced_endpoints("web", ns).metadata.resource_version

    # Things that touch the pods and the Service but not what their endpoints show.
    for pod in pods_of(core, ns, "web"):
        core.patch_namespaced_pod(pod.metadata.name, ns,
                                  {"metadata": {"annotations": {"touched": "yes"}}})
    core.patch_namespaced_service("web", ns, {"metadata": {"annotations": {"touched": "yes"}}})
    apps.patch_namespaced_deployment("web", ns, {"metadata": {"annotations": {"x": "y"}}})
    endpoints_settled(core, disc, ns, "web", 3)  # what could rewrite them has run

    (after,) = slices_of(disc, ns, "web")
    assert after.metadata.name == before.metadata.name
    assert after.metadata.resource_version == before.metadata.resource_version
    assert core.read_namespaced_endpoints("web", ns).metadata.resource_version == ep_before


def test_named_target_port_resolves_per_pod(core: client.CoreV1Api, apps: client.AppsV1Api,
                                            disc: client.DiscoveryV1Api, ns: str) -> None:
    shared = {"tier": "front"}
    apps.create_namespaced_deployment(ns, deployment(
        "a", replicas=2, port=8080, port_name="http", labels={**shared, "app": "a"}))
    apps.create_namespaced_deployment(ns, deployment(
        "b", replicas=1, port=9090, port_name="http", labels={**shared, "app": "b"}))
    apps.create_namespaced_deployment(ns, deployment(
        "c", replicas=1, port=7070, port_name="other", labels={**shared, "app": "c"}))
    core.create_namespaced_service(ns, service("front", "http", selector=shared))
    a_ips = {p.status.pod_ip for p in running(core, ns, "a", 2)}
    (b_pod,) = running(core, ns, "b", 1)
    (c_pod,) = running(core, ns, "c", 1)

    def resolved() -> None:
        by_port: dict[Any, set[str]] = {}
        for s in slices_of(disc, ns, "front"):
            ports = tuple((p.name, p.port) for p in s.ports or [])
            by_port.setdefault(ports, set()).update(e.addresses[0] for e in s.endpoints or [])
        assert by_port == {(("web", 8080),): a_ips, (("web", 9090),): {b_pod.status.pod_ip},
                           (): {c_pod.status.pod_ip}}

    eventually(resolved)
    # Endpoints list only pods that have the port, one subset per port number.
    subsets = core.read_namespaced_endpoints("front", ns).subsets
    assert sorted((s.ports[0].port, len(s.addresses)) for s in subsets) == [(8080, 2), (9090, 1)]


def test_stopped_or_not_ready_node_makes_its_endpoints_not_ready(
        core: client.CoreV1Api, apps: client.AppsV1Api, disc: client.DiscoveryV1Api,
        ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=3))
    core.create_namespaced_service(ns, service("web"))
    pods = running(core, ns, "web", 3)
    victim = next(p for p in pods if p.spec.node_name == "sandbox-node-1")
    ip = victim.status.pod_ip
    everyone = sorted(p.status.pod_ip for p in pods)
    eventually(lambda: _assert_eq(endpoints_in(disc, ns, "web"), [(i, True) for i in everyone]))

    set_node_annotation(core, "sandbox-node-1", "true")
    try:
        want = [(i, i != ip) for i in everyone]
        eventually(lambda: _assert_eq(endpoints_in(disc, ns, "web"), want))
        pod = core.read_namespaced_pod(victim.metadata.name, ns)
        conds = {c.type: c for c in pod.status.conditions}
        assert conds["Ready"].status == "False"
        assert conds["Ready"].reason == "ContainersNotReady"
        assert pod.status.container_statuses[0].ready is False
        (serving,) = [e for s in slices_of(disc, ns, "web") for e in s.endpoints
                      if e.addresses[0] == ip]
        assert (serving.conditions.serving, serving.conditions.terminating) == (False, False)
        subset = core.read_namespaced_endpoints("web", ns).subsets[0]
        assert [a.ip for a in subset.not_ready_addresses] == [ip]
        # A stopped node gets no new pods.
        apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 6}})
        eventually(lambda: _assert_eq(
            sum(p.spec.node_name == "sandbox-node-1" for p in running_or_not(core, ns, 6)), 1))
    finally:
        set_node_annotation(core, "sandbox-node-1", None)
    eventually(lambda: _assert_eq(
        [r for _, r in endpoints_in(disc, ns, "web")], [True] * 6))

    # The node's own Ready condition counts the same way.
    core.patch_node_status("sandbox-node-2", {"status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "KubeletNotReady",
         "message": "stopped by the test"}]}})
    try:
        on_two = {p.status.pod_ip for p in pods_of(core, ns, "web")
                  if p.spec.node_name == "sandbox-node-2"}
        assert on_two
        eventually(lambda: _assert_eq(
            {a for a, ready in endpoints_in(disc, ns, "web") if not ready}, on_two))
    finally:
        core.patch_node_status("sandbox-node-2", {"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "message": "kubelet is posting ready status"}]}})
    eventually(lambda: _assert_eq(
        [r for _, r in endpoints_in(disc, ns, "web")], [True] * 6))


def running_or_not(core: client.CoreV1Api, ns: str, count: int) -> list[Any]:
    pods = [p for p in pods_of(core, ns, "web") if p.spec.node_name]
    assert len(pods) == count
    return pods


def test_endpoints_go_with_the_service_or_its_selector(
        core: client.CoreV1Api, apps: client.AppsV1Api, disc: client.DiscoveryV1Api,
        ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=1))
    core.create_namespaced_service(ns, service("web"))
    core.create_namespaced_service(ns, service("other", selector={"app": "web"}))
    running(core, ns, "web", 1)
    eventually(lambda: _assert_eq(len(endpoints_in(disc, ns, "web")), 1))
    eventually(lambda: _assert_eq(len(endpoints_in(disc, ns, "other")), 1))
    core.read_namespaced_endpoints("other", ns)

    core.delete_namespaced_service("web", ns)
    eventually(lambda: _assert_eq(slices_of(disc, ns, "web"), []))
    eventually(lambda: _assert_missing(lambda: core.read_namespaced_endpoints("web", ns)))

    core.patch_namespaced_service("other", ns, {"spec": {"selector": None}})
    eventually(lambda: _assert_eq(slices_of(disc, ns, "other"), []))
    eventually(lambda: _assert_missing(lambda: core.read_namespaced_endpoints("other", ns)))

    # Hand-made Endpoints of a selector-less Service are the user's: left alone.
    core.create_namespaced_endpoints(ns, {"metadata": {"name": "other"}, "subsets": [
        {"addresses": [{"ip": "127.0.30.1"}], "ports": [{"port": 1234}]}]})
    endpoints_settled(core, disc, ns, "web", 1)  # the controllers saw the hand-made ones
    assert core.read_namespaced_endpoints("other", ns).subsets[0].addresses[0].ip == "127.0.30.1"


def _assert_missing(read: Callable[[], Any]) -> None:
    try:
        read()
    except ApiException as err:
        assert err.status == 404
        return
    raise AssertionError("still there")


def test_service_without_pods_has_an_empty_placeholder_slice(
        core: client.CoreV1Api, disc: client.DiscoveryV1Api, ns: str) -> None:
    core.create_namespaced_service(ns, service("lonely"))

    def placeholder() -> None:
        (s,) = slices_of(disc, ns, "lonely")
        assert s.endpoints == [] and not s.ports

    eventually(placeholder)
    assert core.read_namespaced_endpoints("lonely", ns).subsets is None


# -- daemon sets and the scheduler ---------------------------------------------------------
def test_daemonset_runs_one_pod_per_node_and_follows_its_node_selector(
        core: client.CoreV1Api, apps: client.AppsV1Api, ns: str) -> None:
    labels = {"app": "balancer"}
    apps.create_namespaced_daemon_set(ns, {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "balancer"},
        "spec": {"selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "lb", "image": "lbctl"}]}}}})
    pods = running(core, ns, "balancer", 3)
    assert sorted(p.spec.node_name for p in pods) == [f"sandbox-node-{k}" for k in (1, 2, 3)]
    for pod in pods:
        assert pod.metadata.owner_references[0].kind == "DaemonSet"
        assert pod.metadata.name.startswith("balancer-")

    def status(desired: int) -> None:
        s = apps.read_namespaced_daemon_set("balancer", ns).status
        assert (s.desired_number_scheduled, s.current_number_scheduled, s.number_ready,
                s.number_available, s.updated_number_scheduled, s.number_misscheduled) == (
            desired, desired, desired, desired, desired, 0)

    eventually(lambda: status(3))
    apps.patch_namespaced_daemon_set("balancer", ns, {"spec": {"template": {"spec": {
        "nodeSelector": {"topology.kubernetes.io/zone": "sandbox-zone-b"}}}}})
    (only,) = running(core, ns, "balancer", 1)
    assert only.spec.node_name == "sandbox-node-2"
    eventually(lambda: status(1))

    core.delete_namespaced_pod(only.metadata.name, ns)
    (again,) = running(core, ns, "balancer", 1)
    assert again.metadata.name != only.metadata.name

    apps.delete_namespaced_daemon_set("balancer", ns)
    eventually(lambda: _assert_eq(pods_of(core, ns, "balancer"), []))


def test_scheduler_honours_node_selector_and_reports_what_does_not_fit(
        core: client.CoreV1Api, ns: str) -> None:
    def pod(name: str, selector: dict[str, str]) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": {"app": name}}, "spec": {
            "nodeSelector": selector, "containers": [{"name": "c", "image": "x"}]}}

    core.create_namespaced_pod(ns, pod("pinned", {"kubernetes.io/hostname": "sandbox-node-2"}))
    core.create_namespaced_pod(ns, pod("nowhere", {"disk": "ssd"}))
    (pinned,) = running(core, ns, "pinned", 1)
    assert pinned.spec.node_name == "sandbox-node-2"

    def unschedulable() -> None:
        p = core.read_namespaced_pod("nowhere", ns)
        assert p.spec.node_name is None and p.status.phase == "Pending"
        (cond,) = p.status.conditions
        assert (cond.type, cond.status, cond.reason) == ("PodScheduled", "False",
                                                         "Unschedulable")
        assert cond.message == ("0/3 nodes are available: 3 node(s) didn't match Pod's node "
                                "affinity/selector.")

    eventually(unschedulable)
    core.patch_node("sandbox-node-3", {"metadata": {"labels": {"disk": "ssd"}}})
    try:
        (placed,) = running(core, ns, "nowhere", 1)
        assert placed.spec.node_name == "sandbox-node-3"
    finally:
        core.patch_node("sandbox-node-3", {"metadata": {"labels": {"disk": None}}})


def test_pods_on_nodes_the_sandbox_does_not_simulate_stay_pending(core: client.CoreV1Api,
                                                                  ns: str) -> None:
    name = f"real-{ns}"
    core.create_node({"metadata": {"name": name, "labels": {"real": "yes"}, "annotations": {
        "sandbox.lbctl.io/simulated": "false"}}, "status": {"conditions": [
            {"type": "Ready", "status": "True"}]}})
    try:
        core.create_namespaced_pod(ns, {"metadata": {"name": "bound"}, "spec": {
            "nodeName": name, "containers": [{"name": "c", "image": "x"}]}})
        core.create_namespaced_pod(ns, {"metadata": {"name": "wants"}, "spec": {
            "nodeSelector": {"real": "yes"}, "containers": [{"name": "c", "image": "x"}]}})
        eventually(lambda: _assert_eq(core.read_namespaced_pod("wants", ns).status.phase,
                                      "Pending"))
        # A pod made after both, scheduled and run: the scheduler and the kubelets (one
        # FIFO queue each) have handled "bound" and "wants" before it.
        core.create_namespaced_pod(ns, {"metadata": {"name": "marker", "labels": {
            "app": "marker"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}})
        running(core, ns, "marker", 1)
        status = core.read_namespaced_pod("bound", ns).status
        assert status is None or status.phase in (None, "Pending")
        assert core.read_namespaced_pod("wants", ns).spec.node_name is None
    finally:
        core.delete_node(name)


# -- what the controllers write is what a 1.33 API server would accept ---------------------
def test_controller_written_objects_pass_the_1_33_schemas(
        core: client.CoreV1Api, apps: client.AppsV1Api, disc: client.DiscoveryV1Api,
        ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    apps.create_namespaced_daemon_set(ns, {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds"},
        "spec": {"selector": {"matchLabels": {"app": "ds"}}, "template": {
            "metadata": {"labels": {"app": "ds"}}, "spec": {
                "hostNetwork": True, "initContainers": [{"name": "init", "image": "busybox"}],
                "containers": [{"name": "c", "image": "x"}]}}}})
    core.create_namespaced_service(ns, service("web"))
    running(core, ns, "web", 2)
    ds_pods = running(core, ns, "ds", 3)
    assert {p.status.pod_ip for p in ds_pods} == {p.status.host_ip for p in ds_pods}
    eventually(lambda: _assert_eq(len(endpoints_in(disc, ns, "web")), 2))
    lists = [
        ("v1", "Pod", core.list_namespaced_pod(ns, _preload_content=False)),
        ("v1", "Endpoints", core.list_namespaced_endpoints(ns, _preload_content=False)),
        ("v1", "ServiceAccount", core.list_namespaced_service_account(
            ns, _preload_content=False)),
        ("apps/v1", "Deployment", apps.list_namespaced_deployment(ns, _preload_content=False)),
        ("apps/v1", "ReplicaSet", apps.list_namespaced_replica_set(ns, _preload_content=False)),
        ("apps/v1", "DaemonSet", apps.list_namespaced_daemon_set(ns, _preload_content=False)),
        ("discovery.k8s.io/v1", "EndpointSlice", disc.list_namespaced_endpoint_slice(
            ns, _preload_content=False)),
    ]
    checked = 0
    for api_version, kind, response in lists:
        for item in json.loads(response.data)["items"]:
            obj = {"apiVersion": api_version, "kind": kind, **item}
            assert validate_full(obj) == [], (kind, item["metadata"]["name"])
            checked += 1
    assert checked >= 11  # 5 pods and at least one of each other kind


# -- load: many pods settle while a lease keeps being renewed ------------------------------
async def _loop_lag(stop: asyncio.Event, worst: list[float]) -> None:
    """How late a 10 ms sleep wakes up on the sandbox's loop: what a request would wait."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(0.01)
        worst[0] = max(worst[0], loop.time() - before - 0.01)


def test_200_pods_settle_while_lease_renewals_stay_prompt(tmp_path: Path) -> None:
    b = Box(tmp_path)
    try:
        core, apps = client.CoreV1Api(b.api), client.AppsV1Api(b.api)
        disc = client.DiscoveryV1Api(b.api)
        lease_api = client_for(b.sandbox)  # its own connection pool, as a leader's would be
        coord = client.CoordinationV1Api(lease_api)
        ns = "load"
        core.create_namespace({"metadata": {"name": ns}})
        coord.create_namespaced_lease(ns, {"metadata": {"name": "leader"}, "spec": {
            "holderIdentity": "me", "leaseDurationSeconds": 15}})
        latencies: list[float] = []
        stop = threading.Event()

        def renew() -> None:
            while True:
                started = time.monotonic()
                coord.patch_namespaced_lease("leader", ns, {"spec": {
                    "renewTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}})
                latencies.append(time.monotonic() - started)
                if stop.wait(2.0):
                    return

        lag_stop, worst_lag = asyncio.Event(), [0.0]
        lag = asyncio.run_coroutine_threadsafe(_loop_lag(lag_stop, worst_lag), b.thread.loop)
        renewer = threading.Thread(target=renew, daemon=True)
        renewer.start()

        def settled(replicas: int) -> None:
            ready = [d.status.available_replicas or 0
                     for d in apps.list_namespaced_deployment(ns).items]
            assert ready == [replicas] * 20, ready
            assert len(core.list_namespaced_pod(ns).items) == 20 * replicas

        started = time.monotonic()
        for i in range(20):
            apps.create_namespaced_deployment(ns, deployment(f"app-{i}", replicas=10))
            core.create_namespaced_service(ns, service(f"app-{i}"))
        eventually(lambda: settled(10), within=120)
        took = time.monotonic() - started
        pods = core.list_namespaced_pod(ns).items
        assert {p.status.phase for p in pods} == {"Running"}
        assert len({p.status.pod_ip for p in pods}) == 200
        assert all(ipaddress.ip_address(p.status.pod_ip) in POD_RANGE for p in pods)
        slices = disc.list_namespaced_endpoint_slice(ns).items
        assert sum(len(s.endpoints or []) for s in slices) == 200

        # Keep the controllers busy for a few renewals: everything down to 0 and back up, more
        # pods in all than the pod IP range holds, so addresses must be released on delete.
        rounds = 0
        while rounds < 5 or time.monotonic() - started < 7.0:
            rounds += 1
            for replicas in (0, 10):
                for i in range(20):
                    apps.patch_namespaced_deployment_scale(f"app-{i}", ns,
                                                           {"spec": {"replicas": replicas}})
                eventually(partial(settled, replicas), within=120)
        stop.set()
        renewer.join(5)
        b.thread.loop.call_soon_threadsafe(lag_stop.set)
        lag.result(5)
        assert len(latencies) >= 3, latencies
        assert max(latencies) < 1.0, f"lease renewal stalled: {max(latencies):.2f}s"
        assert worst_lag[0] < 1.0, f"the event loop stalled for {worst_lag[0]:.2f}s"
        assert (rounds + 1) * 200 > 1016  # more pods than the 127.0.20.0/22 range has IPs
        print(f"200 pods settled in {took:.1f}s, {rounds} rounds of 0 -> 10; "
              f"{len(latencies)} lease renewals, slowest "
              f"{max(latencies) * 1000:.0f} ms; worst loop lag {worst_lag[0] * 1000:.0f} ms")
        lease_api.close()
    finally:
        b.close()
