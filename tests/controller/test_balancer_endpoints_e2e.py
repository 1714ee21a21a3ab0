"""The endpoints target mode end to end: controller + baremetal provider + balancer daemon +
the sandbox's workloads and real traffic.

Upstream's e2e expects a Service with `allocateLoadBalancerNodePorts: false` to get an address
and a working VIP; the balancer daemon then sends traffic straight to the pods (127.0.20.x),
with no NodePort in the path. Pods replaced by a rolling update take the traffic over; an
endpoint that is not ready gets none. Same stack as `test_balancer_e2e` (its own instance).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import wait_for
from tests.controller.test_balancer_e2e import (
    Stack,
    _balancers,
    _deploy,
    _http,
    _service,
    running_stack,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("e2e-endpoints")) as built:
        yield built


def _pods(stack: Stack, app: str) -> dict[str, str]:
    """Running pods of `app` with an IP: name -> IP."""
    return {p.metadata.name: p.status.pod_ip for p in stack.core.list_namespaced_pod(
        "default", label_selector=f"app={app}").items
        if p.status and p.status.pod_ip and p.status.phase == "Running"
        and not p.metadata.deletion_timestamp}


def _targets(stack: Stack, name: str) -> set[tuple[str, int]]:
    listener = _balancers(stack)[name]["balancer"]["listeners"][0]
    return {(t["address"], t["port"]) for t in listener["targets"]}


def _answers(vip: str, port: int, n: int = 30) -> set[str]:
    """Which pods answered `n` fresh connections ("pod NAME on node NODE" -> NAME)."""
    return {_http(vip, port).split()[1] for _ in range(n)}


def test_service_without_node_ports_gets_an_address_and_traffic_reaches_the_pods(
        stack: Stack) -> None:
    _deploy(stack, "direct", [{"containerPort": 8080}])
    svc = _service(stack, "direct", [{"port": 8090, "targetPort": 8080}],
                   allocateLoadBalancerNodePorts=False)
    assert svc["spec"]["ports"][0]["node_port"] is None
    ingress = svc["status"]["load_balancer"]["ingress"][0]
    vip = ingress["ip"]
    assert vip.startswith("127.0.100.") and ingress["ip_mode"] == "Proxy"
    pods = _pods(stack, "direct")
    assert _targets(stack, "direct") == {(ip, 8080) for ip in pods.values()}
    assert all(ip.startswith("127.0.20.") for ip in pods.values())
    assert _answers(vip, 8090) <= set(pods) and len(_answers(vip, 8090)) >= 2
    listener = _balancers(stack)["direct"]["balancer"]["listeners"][0]
    assert listener["healthCheck"]["type"] == "tcp" and "port" not in listener["healthCheck"]
    conditions = {c["type"]: c for c in svc["status"]["conditions"] or []}
    assert conditions["LoadBalancerServing"]["status"] == "True"
    warnings = [e for e in stack.core.list_namespaced_event(
        "default", field_selector="involvedObject.name=direct").items if e.type == "Warning"]
    assert warnings == []


def test_pods_replaced_one_by_one_take_the_traffic_and_no_request_fails(stack: Stack) -> None:
    """Each pod deleted in turn (its IP stops answering at once, before the slice says so):
    the daemon retries a refused connect on another pod and ejects the dead one, the slice
    update then replaces it with the new pod. A sandbox pod dies without a graceful shutdown,
    so the one request it may be serving at that moment (the load is one client, one request
    at a time) is cut, in any mode; no other request may fail. (A Deployment rollout in the
    sandbox always recreates: every pod goes before a new one starts, a gap no balancer can
    bridge.)"""
    _deploy(stack, "rolled", [{"containerPort": 8080}])
    svc = _service(stack, "rolled", [{"port": 8091, "targetPort": 8080}],
                   allocateLoadBalancerNodePorts=False)
    vip = svc["status"]["load_balancer"]["ingress"][0]["ip"]
    old = _pods(stack, "rolled")
    results: list[tuple[float, bool, str]] = []
    deletions: list[tuple[float, float]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                results.append((started, True, _http(vip, 8091)))
            except OSError as exc:
                results.append((started, False, str(exc)))
            time.sleep(0.005)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        for pod in sorted(old):
            asked = time.monotonic()
            stack.core.delete_namespaced_pod(pod, "default")
            deletions.append((asked, time.monotonic()))

            def replaced(gone: str = pod) -> bool:
                pods = _pods(stack, "rolled")
                return (len(pods) == 3 and gone not in pods
                        and _targets(stack, "rolled") == {(ip, 8080) for ip in pods.values()})

            wait_for(replaced, 30, f"{pod} replaced in the balancer")
        new = _pods(stack, "rolled")
        wait_for(lambda: _balancers(stack)["rolled"]["status"]["healthyTargets"] == 3, 15,
                 "the new pods healthy")
        time.sleep(0.5)  # some load on the new pods alone
    finally:
        stop.set()
        worker.join(30)
    assert not set(new) & set(old)
    failed = [(t, r) for t, ok, r in results if not ok]
    in_flight = [(t, r) for t, r in failed
                 if any(asked - 3.0 <= t <= done + 0.5 for asked, done in deletions)]
    assert len(results) > 50 and failed == in_flight and len(failed) <= len(deletions)
    assert _answers(vip, 8091) <= set(new)


def test_an_endpoint_that_is_not_ready_gets_no_traffic(stack: Stack) -> None:
    """A Service without a selector, its slice written here over two real pods: only the
    ready one is a target and answers; once both are ready both answer."""
    _deploy(stack, "backing", [{"containerPort": 8080}], replicas=2)
    pods: dict[str, str] = wait_for(lambda: (p := _pods(stack, "backing")) and len(p) == 2
                                    and p, 30, "two backing pods")
    (ready_pod, ready_ip), (other_pod, other_ip) = sorted(pods.items())
    stack.core.create_namespaced_service("default", {
        "metadata": {"name": "manual"},
        "spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False,
                 "ports": [{"name": "http", "port": 8092, "targetPort": 8080}]}})
    disc = client.DiscoveryV1Api(stack.core.api_client)

    def put(other_ready: bool) -> None:
        body: dict[str, Any] = {
            "metadata": {"name": "manual-1", "labels": {"kubernetes.io/service-name": "manual"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ok},
                           "targetRef": {"kind": "Pod", "name": pod}}
                          for pod, ip, ok in ((ready_pod, ready_ip, True),
                                              (other_pod, other_ip, other_ready))]}
        try:
            disc.replace_namespaced_endpoint_slice("manual-1", "default", body)
        except client.ApiException:
            disc.create_namespaced_endpoint_slice("default", body)

    put(other_ready=False)
    wait_for(lambda: "manual" in _balancers(stack) and _targets(stack, "manual") == {
        (ready_ip, 8080)}, 30, "the ready endpoint alone")
    vip = stack.core.read_namespaced_service("manual", "default").status.load_balancer \
        .ingress[0].ip
    wait_for(lambda: _balancers(stack)["manual"]["status"]["healthyTargets"] == 1, 15,
             "the ready endpoint checked healthy")
    assert _answers(vip, 8092) == {ready_pod}
    put(other_ready=True)
    wait_for(lambda: _balancers(stack)["manual"]["status"]["healthyTargets"] == 2, 15,
             "both endpoints")
    assert _answers(vip, 8092, 40) == {ready_pod, other_pod}


def test_the_annotation_selects_the_mode_and_local_policy_is_moot(stack: Stack) -> None:
    """A Service with nodePorts asks for its endpoints: pods are targets and each is checked
    itself, so with `externalTrafficPolicy: Local` every pod answers, not only those behind
    a node that passes kube-proxy's /healthz (no node is in the path)."""
    _deploy(stack, "chosen", [{"containerPort": 8080}])
    stack.core.create_namespaced_service("default", {
        "metadata": {"name": "chosen", "annotations": {"lbctl.io/target-mode": "endpoints"}},
        "spec": {"type": "LoadBalancer", "selector": {"app": "chosen"},
                 "externalTrafficPolicy": "Local",
                 "ports": [{"port": 8093, "targetPort": 8080}]}})
    pods = wait_for(lambda: (p := _pods(stack, "chosen")) and len(p) == 3 and p, 30,
                    "three pods")
    wait_for(lambda: "chosen" in _balancers(stack) and _targets(stack, "chosen") == {
        (ip, 8080) for ip in pods.values()}, 30, "the pods as targets")
    check = _balancers(stack)["chosen"]["balancer"]["listeners"][0]["healthCheck"]
    assert check["type"] == "tcp" and "port" not in check
    wait_for(lambda: _balancers(stack)["chosen"]["status"]["healthyTargets"] == 3, 15,
             "every pod healthy")
    svc = stack.core.read_namespaced_service("chosen", "default")
    assert svc.spec.ports[0].node_port and svc.spec.health_check_node_port
    assert _answers(svc.status.load_balancer.ingress[0].ip, 8093, 40) == set(pods)
