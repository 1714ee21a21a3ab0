"""Controller + baremetal provider + balancer daemon + the sandbox's real traffic, end to end.

Services are created through the official client; the controller allocates a VIP from
127.0.100.0/24 and programs a `DaemonThread`; requests go to the VIP on loopback and are
answered by the sandbox's simulated pods through the nodes' NodePorts. Only one traffic sandbox
may run at a time (fixed node addresses), hence `traffic_lock`.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from lbctl.balancer.daemon import DaemonThread, ServeOptions
from lbctl.controller.conditions import targets_of
from lbctl.controller.config import parse_config
from lbctl.controller.embedded import running_controller
from lbctl.sandbox.app import SandboxOptions, SandboxThread
from lbctl.sandbox.nodes import simulated
from providers.spec import TargetHealth
from tests.conftest import client_for, traffic_lock, wait_for

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    core: client.CoreV1Api
    apps: client.AppsV1Api
    balancer: DaemonThread
    token: str
    state_file: Path


def _config(url: str, token_file: Path) -> str:
    return f"""
clusterName: e2e
controller: {{nodeSyncDebounceSeconds: 0.2}}
baremetal:
  pools: [{{name: e2e, addresses: ["127.0.100.100-127.0.100.120"]}}]
  balancers: [{{name: lb-a, url: "{url}", tokenFile: "{token_file}"}}]
  healthCheck: {{intervalSeconds: 0.2, timeoutSeconds: 0.5, healthyThreshold: 1,
                unhealthyThreshold: 2}}
  statusPollSeconds: 0.2
  drainSeconds: 1
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("e2e")) as built:
        yield built


@contextlib.contextmanager
def running_stack(tmp: Path) -> Iterator[Stack]:
    """Sandbox with traffic, balancer daemon and controller, in `tmp` (other modules build
    their own with it)."""
    token_file = tmp / "token"
    token = secrets.token_urlsafe(24)
    token_file.write_text(token)
    state_file = tmp / "state.json"
    with traffic_lock():
        box_thread = SandboxThread(SandboxOptions(nodes=simulated(3), kubeconfig=tmp / "kc",
                                                  traffic=True, bookmark_interval=0.5))
        box = box_thread.start()
        balancer = DaemonThread(ServeOptions(api_listen="127.0.0.1:0", token_file=token_file,
                                             state_file=state_file))
        balancer.start()
        config = parse_config(_config(balancer.url, token_file))
        api = client_for(box)
        try:
            with running_controller(tmp / "kc", config, qps=500, burst=1000):
                yield Stack(client.CoreV1Api(api), client.AppsV1Api(api), balancer, token,
                            state_file)
        finally:
            api.close()
            balancer.stop()
            box_thread.stop()


def _deploy(stack: Stack, name: str, ports: list[dict[str, Any]], replicas: int = 3) -> None:
    stack.apps.create_namespaced_deployment("default", {
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                     {"name": "c", "image": "nginx", "ports": ports}]}}}})


def _service(stack: Stack, name: str, ports: list[dict[str, Any]], **spec: Any
             ) -> dict[str, Any]:
    stack.core.create_namespaced_service("default", {
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": ports, **spec}})
    return _wait_serving(stack, name)


def _balancers(stack: Stack) -> dict[str, Any]:
    req = urllib.request.Request(f"{stack.balancer.url}/v1/balancers",
                                 headers={"Authorization": f"Bearer {stack.token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return {b["balancer"]["owner"]["name"]: b for b in json.loads(resp.read())["balancers"]}


def _wait_serving(stack: Stack, name: str, healthy: int = 3) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        svc: dict[str, Any] = stack.core.read_namespaced_service(name, "default").to_dict()
        ingress = (svc["status"]["load_balancer"] or {}).get("ingress")
        b = _balancers(stack).get(name)
        if ingress and b and b["status"]["healthyTargets"] == healthy * len(
                svc["spec"]["ports"]):
            return svc
        return None

    result: dict[str, Any] = wait_for(ready, 30, f"{name} served by the balancer")
    return result


def _http(vip: str, port: int, source: str = "127.0.0.1") -> str:
    with socket.create_connection((vip, port), timeout=3, source_address=(source, 0)) as s:
        s.sendall(f"GET / HTTP/1.0\r\nHost: {vip}\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    head, sep, body = data.decode().partition("\r\n\r\n")
    if not sep:  # closed without a whole answer: a failed request, not a test crash
        raise ConnectionError(f"incomplete response from {vip}:{port}: {head[:80]!r}")
    return body.strip()


def test_tcp_service_spreads_over_pods_and_reports_proxy_mode(stack: Stack) -> None:
    _deploy(stack, "web", [{"containerPort": 8080}])
    svc = _service(stack, "web", [{"port": 8080, "targetPort": 8080}])
    ingress = svc["status"]["load_balancer"]["ingress"][0]
    assert ingress["ip"].startswith("127.0.100.")
    assert ingress["ip_mode"] == "Proxy"
    answers = Counter(_http(ingress["ip"], 8080) for _ in range(30))
    assert len(answers) >= 2 and all(a.startswith("pod web-") for a in answers)
    b = _balancers(stack)["web"]
    node_port = svc["spec"]["ports"][0]["node_port"]
    targets = b["balancer"]["listeners"][0]["targets"]
    assert sorted((t["name"], t["address"], t["port"]) for t in targets) == [
        (f"sandbox-node-{i}", f"127.0.10.{i}", node_port) for i in (1, 2, 3)]
    conditions = {c["type"]: c for c in svc["status"]["conditions"] or []}
    assert conditions["LoadBalancerServing"]["status"] == "True"


def test_source_ranges_admit_and_refuse(stack: Stack) -> None:
    _deploy(stack, "private", [{"containerPort": 8080}], replicas=1)
    svc = _service(stack, "private", [{"port": 8081, "targetPort": 8080}],
                   loadBalancerSourceRanges=["127.0.0.2/32"])
    vip = svc["status"]["load_balancer"]["ingress"][0]["ip"]
    assert _http(vip, 8081, source="127.0.0.2").startswith("pod private-")
    with pytest.raises(OSError):
        _http(vip, 8081, source="127.0.0.3")
    assert _balancers(stack)["private"]["balancer"]["sourceRanges"] == ["127.0.0.2/32"]


def _udp(vip: str, port: int, text: str) -> str:
    """One datagram from a new source port; the answering pod's name (the echo checked)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(text.encode(), (vip, port))
        reply = s.recvfrom(4096)[0].decode()
    pod, _, echoed = reply.partition(": ")
    assert echoed == text
    return pod


ROUNDS_TO_EJECT = 4
"""Check intervals to wait: the stack's unhealthyThreshold (2), one for the jitter of a check's
first probe and one for the phase of the probes that measure the time (`_probe_rounds`). A
`none` check keeps the model's defaults: threshold 2 as well."""


def _probes(stack: Stack) -> float:
    """The daemon's count of active health probes sent, from its /metrics."""
    with urllib.request.urlopen(f"{stack.balancer.url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "lbctl_balancer_health_probes_total":
                return float(sample.value)
    raise AssertionError("lbctl_balancer_health_probes_total is not in the daemon's /metrics")


def _probe_rounds(stack: Stack, listener: dict[str, Any], rounds: int = ROUNDS_TO_EJECT) -> None:
    """Wait until the daemon's checker has run for `rounds` intervals of `listener`'s check:
    the proof that a check there (a wrong one included: a `none` check probed after all)
    would have ejected a failing target by now. The checker's own probe counter is the clock:
    each actively checked target is probed at most once per its interval (targets sharing a
    check only once), so the count grows by at most `per_second` a second, and a growth of
    `span * per_second` took at least `span` seconds, less one interval of phase. The counter
    reaches the daemon at least once a second."""
    span = rounds * float(listener["healthCheck"]["intervalSeconds"])
    per_second = sum(len(li["targets"]) / float(li["healthCheck"]["intervalSeconds"])
                     for b in _balancers(stack).values() for li in b["balancer"]["listeners"]
                     if li["healthCheck"]["type"] != "none")
    assert per_second, "the daemon checks no target: its probe counter is no clock"
    start = _probes(stack)
    wait_for(lambda: _probes(stack) >= start + span * per_second, 30,
             f"the checker to run {rounds} rounds of {span / rounds:g} s")


def test_udp_service_through_the_vip(stack: Stack) -> None:
    _deploy(stack, "dns", [{"containerPort": 5353, "protocol": "UDP"}, {"containerPort": 8080}])
    svc = _service(stack, "dns", [{"port": 5353, "targetPort": 5353, "protocol": "UDP"}])
    vip = svc["status"]["load_balancer"]["ingress"][0]["ip"]
    assert len({_udp(vip, 5353, f"hello {i}") for i in range(12)}) >= 2
    # nothing listens for TCP on a UDP nodePort: a connect check there would fail on every
    # node, so a UDP-only Service has no active check, and it keeps serving past the checks:
    # those of a TCP Service of the same pods, which the checker must be seen running
    listener = _balancers(stack)["dns"]["balancer"]["listeners"][0]
    assert listener["healthCheck"]["type"] == "none"
    stack.core.create_namespaced_service("default", {
        "metadata": {"name": "dns-tcp"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "dns"},
                 "ports": [{"port": 8088, "targetPort": 8080}]}})
    _wait_serving(stack, "dns-tcp")
    _probe_rounds(stack, listener)
    assert _balancers(stack)["dns"]["status"]["healthyTargets"] == 3
    assert len({_udp(vip, 5353, f"later {i}") for i in range(12)}) >= 2


def test_mixed_protocol_service_checks_its_udp_targets_on_the_tcp_node_port(stack: Stack
                                                                          ) -> None:
    _deploy(stack, "mixed", [{"containerPort": 5354, "protocol": "UDP"},
                             {"containerPort": 8080}])
    svc = _service(stack, "mixed", [
        {"name": "dns", "port": 5354, "targetPort": 5354, "protocol": "UDP"},
        {"name": "web", "port": 8085, "targetPort": 8080, "protocol": "TCP"}])
    tcp_node_port = next(p["node_port"] for p in svc["spec"]["ports"] if p["protocol"] == "TCP")
    checks = {li["protocol"]: li["healthCheck"]
              for li in _balancers(stack)["mixed"]["balancer"]["listeners"]}
    assert (checks["UDP"]["type"], checks["UDP"]["port"]) == ("tcp", tcp_node_port)
    assert checks["TCP"]["type"] == "tcp" and checks["TCP"].get("port") is None
    for listener in _balancers(stack)["mixed"]["balancer"]["listeners"]:
        _probe_rounds(stack, listener)
    assert _balancers(stack)["mixed"]["status"]["healthyTargets"] == 6
    vip = svc["status"]["load_balancer"]["ingress"][0]["ip"]
    assert _udp(vip, 5354, "hi").startswith("mixed-")
    assert _http(vip, 8085).startswith("pod mixed-")


def test_daemon_that_lost_its_state_is_reprogrammed_and_delete_cleans_up(stack: Stack) -> None:
    _deploy(stack, "again", [{"containerPort": 8080}], replicas=2)
    svc = _service(stack, "again", [{"port": 8082, "targetPort": 8080}])
    vip = svc["status"]["load_balancer"]["ingress"][0]["ip"]
    # the daemon forgets it behind the controller's back (as a restart without state would)
    req = urllib.request.Request(f"{stack.balancer.url}/v1/balancers/"
                                 f"{_balancers(stack)['again']['balancer']['name']}",
                                 method="DELETE",
                                 headers={"Authorization": f"Bearer {stack.token}"})
    urllib.request.urlopen(req, timeout=5).close()
    wait_for(lambda: "again" in _balancers(stack), 15, "the controller to re-program")
    wait_for(lambda: _http(vip, 8082).startswith("pod again-"), 15, "traffic again")
    stack.core.delete_namespaced_service("again", "default")
    wait_for(lambda: "again" not in _balancers(stack), 15, "the balancer to be removed")
    with pytest.raises(OSError):
        _http(vip, 8082)


def test_local_policy_checks_health_check_node_port(stack: Stack) -> None:
    _deploy(stack, "local", [{"containerPort": 8080}], replicas=1)
    svc = _service(stack, "local", [{"port": 8083, "targetPort": 8080}],
                   externalTrafficPolicy="Local")
    hc_port = svc["spec"]["health_check_node_port"]
    b = _balancers(stack)["local"]
    check = b["balancer"]["listeners"][0]["healthCheck"]
    assert (check["type"], check["port"], check["path"]) == ("http", hc_port, "/healthz")
    # only the node running the pod passes kube-proxy's /healthz: one healthy target of three
    wait_for(lambda: _balancers(stack)["local"]["status"]["healthyTargets"] == 1, 15,
             "two nodes without a local endpoint to be marked down")
    pod = stack.core.list_namespaced_pod("default", label_selector="app=local").items[0]
    status = _balancers(stack)["local"]["status"]
    up = [t["name"] for t in status["listeners"][0]["targets"] if t["up"]]
    assert up == [pod.spec.node_name]
    vip = svc["status"]["load_balancer"]["ingress"][0]["ip"]
    assert {_http(vip, 8083) for _ in range(10)} == {
        f"pod {pod.metadata.name} on node {pod.spec.node_name}"}
    degraded = wait_for(lambda: next((c for c in stack.core.read_namespaced_service(
        "local", "default").status.conditions or [] if c.type == "LoadBalancerDegraded"
        and c.status == "True"), None), 15, "LoadBalancerDegraded")
    assert "1 of 3 targets healthy" in degraded.message
    # the same count, structured, where `lbctl status` reads it (TARGETS 1/3)
    serving = wait_for(lambda: next((c for c in stack.core.read_namespaced_service(
        "local", "default").status.conditions or [] if c.type == "LoadBalancerServing"
        and targets_of(c.message or "") == TargetHealth(1, 3)), None), 15,
        "LoadBalancerServing to carry 1/3 targets healthy")
    assert serving.status == "True"


@pytest.mark.parametrize(("policy", "port"), [("Local", 8086), ("Cluster", 8084)])
def test_node_stopped_mid_traffic_no_new_connection_fails_after_ejection(
        stack: Stack, policy: str, port: int) -> None:
    import threading

    name = f"busy-{policy.lower()}"
    _deploy(stack, name, [{"containerPort": 8080}])  # one pod per node (the spread)
    svc = _service(stack, name, [{"port": port, "targetPort": 8080}],
                   externalTrafficPolicy=policy)
    vip = svc["status"]["load_balancer"]["ingress"][0]["ip"]
    results: list[tuple[float, bool, str]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set() and len(results) < 5000:
            started = time.monotonic()
            try:
                results.append((started, True, _http(vip, port)))
            except OSError as exc:
                results.append((started, False, str(exc)))

    worker = threading.Thread(target=load)
    worker.start()
    try:
        wait_for(lambda: len(results) > 20, 10, "traffic")
        stack.core.patch_node("sandbox-node-2", {"metadata": {"annotations": {
            "sandbox.lbctl.io/stopped": "true"}}})

        def ejected() -> float | None:
            targets = _balancers(stack)[name]["status"]["listeners"][0]["targets"]
            down = any(t["name"] == "sandbox-node-2" and not t["up"] for t in targets)
            return time.monotonic() if down else None

        ejected_at: float = wait_for(ejected, 15, "the stopped node to be ejected")

        def endpoints_moved() -> float | None:
            slices = client.DiscoveryV1Api(stack.core.api_client).list_namespaced_endpoint_slice(
                "default", label_selector=f"kubernetes.io/service-name={name}").items
            stale = [e for sl in slices for e in sl.endpoints or []
                     if e.node_name == "sandbox-node-2" and e.conditions and e.conditions.ready]
            return None if stale else time.monotonic()

        if policy == "Cluster":
            # the other nodes forward to every ready pod, so requests can still reach the
            # stopped node's pod until EndpointSlices drop it (kube-proxy's lag, not the
            # balancer's): count from when both have happened. Local: each node serves only
            # its own pod, so the ejection alone is the mark.
            ejected_at = wait_for(endpoints_moved, 15, "endpoints without the stopped node")
        wait_for(lambda: sum(r[0] > ejected_at for r in results) >= 100, 20,
                 "100 requests after the ejection")
    finally:
        stop.set()
        worker.join(30)
        stack.core.patch_node("sandbox-node-2", {"metadata": {"annotations": {
            "sandbox.lbctl.io/stopped": None}}})
    after = [r for r in results if r[0] > ejected_at]
    assert [r for r in after if not r[1]] == []
    assert not any("sandbox-node-2" in r[2] for r in after)
    assert {r[2].rsplit(" ", 1)[1] for r in after} == {"sandbox-node-1", "sandbox-node-3"}
    wait_for(lambda: _balancers(stack)[name]["status"]["healthyTargets"] == 3, 15,
             "the node to come back")


def test_no_healthy_target_turns_serving_false_with_a_warning_event(stack: Stack) -> None:
    _deploy(stack, "empty", [{"containerPort": 8080}], replicas=0)
    stack.core.create_namespaced_service("default", {
        "metadata": {"name": "empty"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "empty"},
                 "externalTrafficPolicy": "Local",
                 "ports": [{"port": 8085, "targetPort": 8080}]}})

    def conditions() -> dict[str, Any] | None:
        svc = stack.core.read_namespaced_service("empty", "default")
        got = {c.type: c for c in svc.status.conditions or []}
        serving = got.get("LoadBalancerServing")
        return got if serving is not None and serving.status == "False" else None

    got = wait_for(conditions, 20, "LoadBalancerServing=False")
    assert got["LoadBalancerServing"].reason == "NoHealthyTargets"
    assert "0 of 3 targets healthy" in got["LoadBalancerServing"].message
    assert got["LoadBalancerDegraded"].status == "True"
    # one Warning per change of the reason: the checks may fail node by node ("2 of 3", ...)
    # before all three are down, so look for the event of the final state among them
    events = wait_for(lambda: [e for e in stack.core.list_namespaced_event(
        "default", field_selector="involvedObject.name=empty").items
        if e.reason == "LoadBalancerDegraded" and "0 of 3 targets healthy" in e.message], 15,
        "a LoadBalancerDegraded event saying 0 of 3 targets healthy")
    assert [e.type for e in events] == ["Warning"]
