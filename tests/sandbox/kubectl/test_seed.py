"""The seed, typed by a user with real kubectl against `lbctl sandbox`, then real traffic.

The blog post's commands run verbatim (ASCII dashes): `kubectl create deployment k8s-demo
--image=nginx --replicas=3 --port=8080`, `kubectl expose deployments k8s-demo --port 8080 --type
LoadBalancer`, `kubectl get services`, `kubectl describe service k8s-demo`, `kubectl create
service clusterip demo --tcp=80:80` and its Service manifest (refused as written, accepted as
`type: NodePort`). Then what those commands promise on a cluster: the Deployment's pods run on
different nodes, every node's NodePort reaches several of them, a stopped node refuses
connections and its pod leaves the endpoints, scaling shrinks them, `externalTrafficPolicy:
Local` makes kube-proxy's /healthz answer 200 only where a pod runs, and deleting cleans up.

Simulated nodes and pods live on fixed loopback addresses (127.0.10.K, 127.0.20.x), so only one
traffic-enabled sandbox may run on this machine at a time: the module's sandbox holds an
exclusive lock on TRAFFIC_LOCK while it runs (run this module in one pytest-xdist worker:
`--dist loadfile`). Every HTTP request has a short timeout and every wait a bound.
"""

from __future__ import annotations

import http.client
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lbctl.sandbox.app import Sandbox, SandboxOptions, SandboxThread
from lbctl.sandbox.nodes import STOPPED, simulated
from tests.conftest import traffic_lock
from tests.helpers import refused, retry
from tests.sandbox.kubectl.conftest import Binaries, make_kubectl
from tests.sandbox.kubectl.runner import VERSIONS, Kubectl, rows_by_name, table
from tests.sandbox.kubectl.test_kubectl_write import SEED, SEED_REFUSED

pytestmark = pytest.mark.kubectl
T = TypeVar("T")

SEED_VERSIONS = VERSIONS
"""Every kubectl the suite knows (1.20, the image's 1.27-1.33, 1.35): JSON writes up to 1.31,
protobuf writes (Deployment, Namespace, ...) since 1.32; about 2 s each."""
SETTLE = 10.0
"""Upper bound for the sandbox to react (pods Running, endpoints, listeners); well under 1 s
in practice."""
POD_LINE = re.compile(r"^pod (k8s-demo-[a-z0-9]+-[a-z0-9]{5}) on node (sandbox-node-\d)\n$")


def node_ip(node: str) -> str:
    return f"127.0.10.{node.rsplit('-', 1)[1]}"


# -- the module's sandbox ------------------------------------------------------------------
@pytest.fixture(scope="module")
def seed_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """`SandboxOptions(nodes=simulated(3), traffic=True, kubeconfig=...)`: what
    `lbctl sandbox` starts by default."""
    kubeconfig = tmp_path_factory.mktemp("seed") / "kubeconfig"
    with traffic_lock():
        thread = SandboxThread(SandboxOptions(nodes=simulated(3), traffic=True,
                                              kubeconfig=kubeconfig, bookmark_interval=0.5))
        box = thread.start()
        try:
            yield box
        finally:
            thread.stop()


@pytest.fixture(params=SEED_VERSIONS)
def user(request: pytest.FixtureRequest, kubectl_binaries: Binaries, seed_box: Sandbox,
         kubectl_home: Path) -> Iterator[Kubectl]:
    """A kubectl version working in a namespace of its own (what `-n` a user would pass)."""
    ns = f"seed-{uuid.uuid4().hex[:8]}"
    kubectl = make_kubectl(str(request.param), kubectl_binaries, seed_box, kubectl_home, ns)
    kubectl.ok("create", "namespace", ns)
    try:
        yield kubectl
    finally:
        kubectl.run("delete", "svc,deployment", "--all")
        kubectl.run("delete", "svc", "myapp-service")
        for k in (1, 2, 3):  # never leave a node stopped for the next version
            kubectl.run("annotate", "node", f"sandbox-node-{k}", f"{STOPPED}-")
        kubectl.run("delete", "namespace", ns, "--wait=false")


# -- helpers ---------------------------------------------------------------------------------
def eventually(check: Callable[[], T], within: float = SETTLE) -> T:
    """Retry `check` (which asserts, or fails to connect) until it passes or time runs out."""
    return retry(check, within, (AssertionError, OSError, http.client.HTTPException), pause=0.1)


def http_get(ip: str, port: int, path: str = "/") -> tuple[int, str]:
    conn = http.client.HTTPConnection(ip, port, timeout=2)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def served_by(ip: str, port: int, count: int = 9) -> Counter[tuple[str, str]]:
    """(pod, node) of `count` fresh connections' answers: bounded, a few seconds at worst."""
    seen: Counter[tuple[str, str]] = Counter()
    for _ in range(count):
        status, text = http_get(ip, port)
        match = POD_LINE.match(text)
        assert status == 200 and match, f"{ip}:{port} answered {status} {text!r}"
        seen[(match[1], match[2])] += 1
    return seen


def running_pods(kubectl: Kubectl, count: int) -> dict[str, tuple[str, str]]:
    """pod -> (IP, node) from `kubectl get pods -o wide`, once exactly `count` pods are
    Running and ready."""
    header, rows = rows_by_name(kubectl.ok("get", "pods", "-o", "wide"))
    assert header[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert len(rows) == count, rows
    assert all(r[1:3] == ["1/1", "Running"] for r in rows.values()), rows
    return {name: (row[5], row[6]) for name, row in rows.items()}


def endpoints_become(kubectl: Kubectl, expected: set[str]) -> None:
    def check() -> None:
        assert endpoint_ips(kubectl) == expected

    eventually(check)


def endpoint_ips(kubectl: Kubectl) -> set[str]:
    """The ready addresses of `kubectl get endpoints k8s-demo`."""
    rows = table(kubectl.ok("get", "endpoints", "k8s-demo"))
    assert rows[0][:2] == ["NAME", "ENDPOINTS"]
    cell = rows[1][1]
    return set() if cell == "<none>" else {a.rsplit(":", 1)[0] for a in cell.split(",")}


def slice_readiness(kubectl: Kubectl) -> dict[str, bool]:
    """address -> ready, from the Service's EndpointSlices."""
    slices = json.loads(kubectl.ok("get", "endpointslices", "-l",
                                   "kubernetes.io/service-name=k8s-demo", "-o", "json"))
    return {e["addresses"][0]: bool(e["conditions"].get("ready"))
            for s in slices["items"] for e in s.get("endpoints") or []}


# -- the seed --------------------------------------------------------------------------------
def test_seed_commands_then_real_traffic(user: Kubectl) -> None:
    kubectl = user
    # kubectl create deployment k8s-demo --image=nginx --replicas=3 --port=8080
    out = kubectl.ok("create", "deployment", "k8s-demo", "--image=nginx", "--replicas=3",
                     "--port=8080")
    assert out.strip() == "deployment.apps/k8s-demo created"
    # kubectl expose deployments k8s-demo --port 8080 --type LoadBalancer
    out = kubectl.ok("expose", "deployments", "k8s-demo", "--port", "8080", "--type",
                     "LoadBalancer")
    assert out.strip() == "service/k8s-demo exposed"

    # kubectl get pods -o wide: three Running pods on three different nodes
    pods = eventually(lambda: running_pods(kubectl, 3))
    assert {node for _, node in pods.values()} == {f"sandbox-node-{k}" for k in (1, 2, 3)}
    pod_ips = {ip for ip, _ in pods.values()}
    assert all(ip.startswith("127.0.20.") for ip in pod_ips)

    # kubectl get services
    header, rows = rows_by_name(kubectl.ok("get", "services"))
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    service = json.loads(kubectl.ok("get", "svc", "k8s-demo", "-o", "json"))
    node_port = service["spec"]["ports"][0]["nodePort"]
    assert rows["k8s-demo"][1:5] == ["LoadBalancer", service["spec"]["clusterIP"], "<pending>",
                                     f"8080:{node_port}/TCP"]
    assert 30000 <= node_port <= 32767

    # kubectl describe service k8s-demo: the three pods behind it
    def described() -> str:
        text = kubectl.ok("describe", "service", "k8s-demo")
        endpoints = re.search(r"^Endpoints:\s+(\S+)$", text, re.MULTILINE)
        assert endpoints, text
        assert set(endpoints[1].split(",")) == {f"{ip}:8080" for ip in pod_ips}, text
        return text

    text = eventually(described)
    assert re.search(r"^Type:\s+LoadBalancer$", text, re.MULTILINE)
    assert re.search(rf"^NodePort:\s+<unset>\s+{node_port}/TCP$", text, re.MULTILINE)
    assert re.search(r"^TargetPort:\s+8080/TCP$", text, re.MULTILINE)

    # kubectl create service clusterip demo --tcp=80:80
    out = kubectl.ok("create", "service", "clusterip", "demo", "--tcp=80:80")
    assert out.strip() == "service/demo created"
    _, rows = rows_by_name(kubectl.ok("get", "services"))
    assert rows["demo"][1] == "ClusterIP" and rows["demo"][3:5] == ["<none>", "80/TCP"]

    # kubectl create -f service-definition.yaml: refused as written, accepted as a NodePort
    assert kubectl.fails("create", "-f", "-", stdin=SEED).strip() == SEED_REFUSED
    node_port_seed = SEED.replace("spec:\n", "spec:\n  type: NodePort\n")
    out = kubectl.ok("create", "-f", "-", stdin=node_port_seed)
    assert out.strip() == "service/myapp-service created"
    _, rows = rows_by_name(kubectl.ok("get", "services"))
    assert rows["myapp-service"][1] == "NodePort" and rows["myapp-service"][4] == "80:30008/TCP"
    assert kubectl.ok("get", "svc", "myapp-service", "-o",
                      "jsonpath={.spec.ports[0].targetPort}") == "8080"

    _node_ports_reach_the_pods(node_port, pods)
    _a_stopped_node_leaves(kubectl, node_port, pods)
    survivor = _scaling_shrinks_the_endpoints(kubectl)
    _local_policy_health_checks(kubectl, survivor, node_port)

    # kubectl delete: the Services, the Deployment and its pods go, the NodePort closes
    out = kubectl.ok("delete", "svc,deployment", "k8s-demo")
    where = f" from {kubectl.namespace} namespace" if kubectl.minor >= 35 else ""
    assert out.splitlines() == [f'service "k8s-demo" deleted{where}',
                                f'deployment.apps "k8s-demo" deleted{where}']
    kubectl.ok("delete", "svc", "demo", "myapp-service")

    def cleaned() -> None:
        done = kubectl.run("get", "pods,svc,deployments")
        assert done.returncode == 0 and not done.stdout.strip(), done.stdout

    eventually(cleaned)
    eventually(partial(refused, "127.0.10.1", node_port))


def _node_ports_reach_the_pods(node_port: int, pods: dict[str, tuple[str, str]]) -> None:
    """Bounded requests to every node's NodePort each reach several distinct pods."""
    everyone = {(name, node) for name, (_, node) in pods.items()}
    for k in (1, 2, 3):
        seen = eventually(partial(served_by, f"127.0.10.{k}", node_port))
        assert len(seen) >= 2, f"node {k} sent everything to one pod: {seen}"
        assert set(seen) <= everyone


def _a_stopped_node_leaves(kubectl: Kubectl, node_port: int,
                           pods: dict[str, tuple[str, str]]) -> None:
    """kubectl annotate node sandbox-node-K sandbox.lbctl.io/stopped=true, then restart it."""
    victim_pod, (victim_ip, victim_node) = sorted(pods.items())[0]
    others = {ip for ip, _ in pods.values()} - {victim_ip}
    out = kubectl.ok("annotate", "node", victim_node, f"{STOPPED}=true")
    past = "annotate" if kubectl.minor == 27 else "annotated"  # kubectl 1.27 prints "annotate"
    assert out.strip() == f"node/{victim_node} {past}"
    eventually(partial(refused, node_ip(victim_node), node_port))

    def gone_from_endpoints() -> None:
        assert endpoint_ips(kubectl) == others
        assert slice_readiness(kubectl) == {**dict.fromkeys(others, True), victim_ip: False}

    eventually(gone_from_endpoints)
    survivor_node = next(n for _, n in pods.values() if n != victim_node)

    def only_the_others() -> None:
        pods_seen = {pod for pod, _ in served_by(node_ip(survivor_node), node_port)}
        assert victim_pod not in pods_seen and len(pods_seen) == 2

    eventually(only_the_others)
    kubectl.ok("annotate", "node", victim_node, f"{STOPPED}-")
    eventually(partial(served_by, node_ip(victim_node), node_port, count=1))
    endpoints_become(kubectl, others | {victim_ip})


def _scaling_shrinks_the_endpoints(kubectl: Kubectl) -> tuple[str, str]:
    """kubectl scale deployment k8s-demo --replicas=1: (pod IP, node) of the one left."""
    out = kubectl.ok("scale", "deployment", "k8s-demo", "--replicas=1")
    assert out.strip() == "deployment.apps/k8s-demo scaled"
    pods = eventually(lambda: running_pods(kubectl, 1))
    ((ip, node),) = pods.values()
    endpoints_become(kubectl, {ip})
    return ip, node


def _local_policy_health_checks(kubectl: Kubectl, survivor: tuple[str, str],
                                node_port: int) -> None:
    """kubectl patch svc k8s-demo -p '{"spec":{"externalTrafficPolicy":"Local"}}': kube-proxy's
    /healthz on healthCheckNodePort says 200 where the pod runs, 503 on the other nodes."""
    _, pod_node = survivor
    out = kubectl.ok("patch", "svc", "k8s-demo", "-p",
                     '{"spec":{"externalTrafficPolicy":"Local"}}')
    assert out.strip() == "service/k8s-demo patched"
    health = int(kubectl.ok("get", "svc", "k8s-demo", "-o",
                            "jsonpath={.spec.healthCheckNodePort}"))
    assert 30000 <= health <= 32767 and health != node_port

    def answers() -> None:
        for k in (1, 2, 3):
            node = f"sandbox-node-{k}"
            status, body = http_get(node_ip(node), health, "/healthz")
            local = 1 if node == pod_node else 0
            assert status == (200 if local else 503), (node, status, body)
            answer: dict[str, Any] = json.loads(body)
            assert answer["localEndpoints"] == local
            assert answer["service"] == {"namespace": kubectl.namespace, "name": "k8s-demo"}

    eventually(answers)
    seen = eventually(partial(served_by, node_ip(pod_node), node_port, count=3))
    assert {node for _, node in seen} == {pod_node}
