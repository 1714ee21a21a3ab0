"""The sandbox's traffic process against a real sandbox: pods served on their podIPs, NodePorts
forwarding like kube-proxy (Cluster and Local), the health check node port, UDP flows, stopped
nodes, and sockets closing when what they serve goes away.

Pods and EndpointSlices are written directly through the official client (status through the
status subresource), standing in for the scheduler, kubelet and EndpointSlice controller. The
module's sandbox puts its nodes and pods on a random 127.0.X.0/24 of their own, so a traffic
process in another test module (127.0.10.x, 127.0.20.x) can never hold the same address:port.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import secrets
import socket
import socketserver
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client

from lbctl.sandbox.app import Sandbox, SandboxOptions, SandboxThread
from lbctl.sandbox.nodes import STOPPED, simulated
from lbctl.sandbox.traffic import TrafficError, TrafficProcess
from lbctl.sandbox.traffic.healthcheck import body as health_body
from tests.conftest import admin_call, open_client
from tests.helpers import refused, retry

pytestmark = pytest.mark.integration
T = TypeVar("T")
SETTLE = 5.0
"""Upper bound for any reaction; they normally take well under a second."""
NODE_OCTET = 150 + 2 * secrets.randbelow(49)
POD_OCTET = NODE_OCTET + 1
_pod_ips = itertools.count(1)


def node_ip(k: int) -> str:
    return f"127.0.{NODE_OCTET}.{k}"


def next_pod_ip() -> str:
    n = next(_pod_ips)
    assert n < 255, "this module ran out of pod addresses"
    return f"127.0.{POD_OCTET}.{n}"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    nodes = [replace(n, addresses=(("InternalIP", node_ip(k)), ("Hostname", n.name)))
             for k, n in enumerate(simulated(3), 1)]
    path: Path = tmp_path_factory.mktemp("traffic") / "kubeconfig"
    thread = SandboxThread(SandboxOptions(nodes=nodes, kubeconfig=path, bookmark_interval=0.5,
                                          workloads=False))
    sandbox = thread.start()
    yield sandbox
    thread.stop()


@pytest.fixture(scope="module")
def traffic(box: Sandbox) -> Iterator[TrafficProcess]:
    with TrafficProcess(box.url, box.token, udp_idle_timeout=2.0) as proc:
        yield proc


@pytest.fixture(scope="module")
def kube(box: Sandbox) -> Iterator[client.ApiClient]:
    yield from open_client(box)


@pytest.fixture
def core(kube: client.ApiClient, traffic: TrafficProcess) -> client.CoreV1Api:
    return client.CoreV1Api(kube)


@pytest.fixture
def disc(kube: client.ApiClient) -> client.DiscoveryV1Api:
    return client.DiscoveryV1Api(kube)


# -- helpers --------------------------------------------------------------------------------
def eventually(check: Callable[[], T], within: float = SETTLE) -> T:
    """Retry `check` (which asserts or fails to connect) until it passes or time runs out."""
    return retry(check, within, (AssertionError, OSError))


def run_pod(core: client.CoreV1Api, ns: str, name: str, node: int,
            ports: tuple[tuple[int, str], ...] = ((8080, "TCP"),)) -> str:
    """A pod bound to sandbox-node-<node>, Running and Ready at a fresh IP (returned)."""
    ip = next_pod_ip()
    core.create_namespaced_pod(ns, {"metadata": {"name": name, "labels": {"app": "web"}}, "spec": {
        "nodeName": f"sandbox-node-{node}", "containers": [{"name": "c", "image": "web", "ports": [
            {"containerPort": p, "protocol": proto} for p, proto in ports]}]}})
    core.patch_namespaced_pod_status(name, ns, {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True"}]}})
    return ip


def endpoint(ip: str, node: int, ready: bool = True, **cond: bool) -> dict[str, Any]:
    return {"addresses": [ip], "nodeName": f"sandbox-node-{node}",
            "conditions": {"ready": ready, **cond}}


def put_slice(disc: client.DiscoveryV1Api, ns: str, service: str, endpoints: list[Any],
              ports: tuple[tuple[str, int, str], ...] = (("http", 8080, "TCP"),)) -> None:
    name = f"{service}-abcde"
    body = {"metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}
    try:
        disc.read_namespaced_endpoint_slice(name, ns)
    except client.ApiException:
        disc.create_namespaced_endpoint_slice(ns, body)
    else:
        disc.replace_namespaced_endpoint_slice(name, ns, body)


def node_port_service(core: client.CoreV1Api, ns: str, name: str, *, type_: str = "NodePort",
                      local: bool = False, udp: bool = False) -> dict[str, int]:
    ports: list[dict[str, Any]] = [{"name": "http", "port": 80, "targetPort": 8080}]
    if udp:
        ports.append({"name": "echo", "port": 53, "targetPort": 5353, "protocol": "UDP"})
    spec: dict[str, Any] = {"type": type_, "selector": {"app": name}, "ports": ports}
    if local:
        spec["externalTrafficPolicy"] = "Local"
    made = core.create_namespaced_service(ns, {"metadata": {"name": name}, "spec": spec})
    out = {p.name: p.node_port for p in made.spec.ports}
    if made.spec.health_check_node_port:
        out["health"] = made.spec.health_check_node_port
    return out


def get(ip: str, port: int, path: str = "/") -> tuple[int, str, dict[str, str]]:
    conn = http.client.HTTPConnection(ip, port, timeout=3)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), dict(resp.headers)
    finally:
        conn.close()


def served_by(ip: str, port: int, count: int) -> Counter[str]:
    """Who answered `count` fresh connections (bounded: a few seconds at worst)."""
    return Counter(get(ip, port)[1] for _ in range(count))


def udp_ask(ip: str, port: int, data: bytes, sock: socket.socket | None = None) -> bytes:
    own = sock is None
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(0.5)
        s.sendto(data, (ip, port))
        return s.recvfrom(65536)[0]
    finally:
        if own:
            s.close()


def pod_line(pod: str, node: int) -> str:
    return f"pod {pod} on node sandbox-node-{node}\n"


# -- pods -----------------------------------------------------------------------------------
def test_running_pod_serves_each_declared_port_on_its_ip(core: client.CoreV1Api,
                                                         ns: str) -> None:
    ip = run_pod(core, ns, "web-a", 2, ports=((8080, "TCP"), (9090, "TCP"), (5353, "UDP")))
    for port in (8080, 9090):
        status, text, headers = eventually(partial(get, ip, port, "/any/path"))
        assert (status, text) == (200, pod_line("web-a", 2))
        assert headers["X-Sandbox-Pod"] == f"{ns}/web-a"
    assert eventually(lambda: udp_ask(ip, 5353, b"ping")) == b"web-a: ping"
    # Keep-alive: several requests on one connection.
    conn = http.client.HTTPConnection(ip, 8080, timeout=3)
    for _ in range(3):
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.read().decode() == pod_line("web-a", 2)
        assert not resp.will_close
    conn.close()


def test_pod_stops_being_served_when_it_stops_running_or_goes(core: client.CoreV1Api,
                                                              ns: str) -> None:
    done = run_pod(core, ns, "job", 1)
    gone = run_pod(core, ns, "web", 3)
    eventually(lambda: get(done, 8080))
    eventually(lambda: get(gone, 8080))
    core.patch_namespaced_pod_status("job", ns, {"status": {"phase": "Succeeded"}})
    core.delete_namespaced_pod("web", ns)
    eventually(lambda: refused(done, 8080))
    eventually(lambda: refused(gone, 8080))


def test_pods_on_unsimulated_or_missing_nodes_are_not_served(core: client.CoreV1Api,
                                                             ns: str) -> None:
    core.create_node({"metadata": {"name": f"real-{ns}", "annotations": {
        "sandbox.lbctl.io/simulated": "false"}}})
    try:
        ip = next_pod_ip()
        for name, node in (("on-real", f"real-{ns}"), ("nowhere", "no-such-node")):
            core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": {
                "nodeName": node, "containers": [{"name": "c", "image": "x", "ports": [
                    {"containerPort": 8080}]}]}})
            core.patch_namespaced_pod_status(name, ns, {"status": {"phase": "Running",
                                                                   "podIP": ip}})
        marker = run_pod(core, ns, "marker", 1)  # once this is served, the others were seen
        eventually(lambda: get(marker, 8080))
        refused(ip, 8080)
    finally:
        core.delete_node(f"real-{ns}")


# -- node ports: Cluster --------------------------------------------------------------------
def test_node_port_spreads_over_pods_on_every_node(core: client.CoreV1Api,
                                                   disc: client.DiscoveryV1Api, ns: str) -> None:
    ips = [run_pod(core, ns, f"web-{k}", k) for k in (1, 2, 3)]
    ports = node_port_service(core, ns, "web")
    put_slice(disc, ns, "web", [endpoint(ip, k) for k, ip in enumerate(ips, 1)])
    expected = {pod_line(f"web-{k}", k) for k in (1, 2, 3)}
    for k in (1, 2, 3):
        seen = eventually(partial(served_by, node_ip(k), ports["http"], 9))
        assert set(seen) == expected, f"via node {k}: {seen}"


def test_only_ready_endpoints_get_traffic_until_none_is(core: client.CoreV1Api,
                                                        disc: client.DiscoveryV1Api,
                                                        ns: str) -> None:
    a, b = run_pod(core, ns, "a", 1), run_pod(core, ns, "b", 2)
    ports = node_port_service(core, ns, "web")
    put_slice(disc, ns, "web", [endpoint(a, 1), endpoint(b, 2, ready=False)])
    assert set(eventually(lambda: served_by(node_ip(3), ports["http"], 6))) == {
        pod_line("a", 1)}
    # No ready endpoint left: kube-proxy falls back to serving-and-terminating ones.
    put_slice(disc, ns, "web", [endpoint(a, 1, ready=False, serving=False, terminating=True),
                                endpoint(b, 2, ready=False, serving=True, terminating=True)])

    def only_b() -> None:
        assert set(served_by(node_ip(3), ports["http"], 4)) == {pod_line("b", 2)}

    eventually(only_b)


def test_no_endpoints_resets_the_connection(core: client.CoreV1Api, ns: str) -> None:
    ports = node_port_service(core, ns, "empty")

    def reset() -> None:
        with socket.create_connection((node_ip(1), ports["http"]), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            with contextlib.suppress(ConnectionResetError):
                assert s.recv(100) == b""

    eventually(reset)


def test_tcp_is_relayed_byte_for_byte_with_half_close(core: client.CoreV1Api,
                                                      disc: client.DiscoveryV1Api,
                                                      ns: str) -> None:
    """An endpoint of the test's own (a TCP echo that answers after the client's FIN)."""

    class Echo(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data = bytearray()
            while chunk := self.request.recv(65536):
                data += chunk
            self.request.sendall(bytes(data)[::-1])

    backend_ip = next_pod_ip()
    server = socketserver.ThreadingTCPServer((backend_ip, 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ports = node_port_service(core, ns, "echo")
        put_slice(disc, ns, "echo", [endpoint(backend_ip, 2)],
                  ports=(("http", server.server_address[1], "TCP"),))
        payload = os.urandom(2_000_000)

        def roundtrip() -> bytes:
            with socket.create_connection((node_ip(1), ports["http"]), timeout=5) as s:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                out = bytearray()
                while chunk := s.recv(1 << 16):
                    out += chunk
                assert out, "nothing came back yet"
                return bytes(out)

        assert eventually(roundtrip) == payload[::-1]
    finally:
        server.shutdown()
        server.server_close()


def test_udp_node_port_keeps_each_client_on_one_pod(core: client.CoreV1Api,
                                                    disc: client.DiscoveryV1Api,
                                                    ns: str) -> None:
    ips = [run_pod(core, ns, f"dns-{k}", k, ports=((5353, "UDP"),)) for k in (1, 2, 3)]
    ports = node_port_service(core, ns, "dns", udp=True)
    put_slice(disc, ns, "dns", [endpoint(ip, k) for k, ip in enumerate(ips, 1)],
              ports=(("echo", 5353, "UDP"),))
    eventually(lambda: udp_ask(node_ip(2), ports["echo"], b"warm-up"))
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]
    try:
        pods: dict[socket.socket, str] = {}
        for c in clients:
            first = udp_ask(node_ip(2), ports["echo"], b"hello", c)
            pod, _, rest = first.decode().partition(": ")
            assert rest == "hello"
            # The same client stays on its pod for the rest of its flow.
            assert [udp_ask(node_ip(2), ports["echo"], f"n{i}".encode(), c)
                    for i in range(3)] == [f"{pod}: n{i}".encode() for i in range(3)]
            pods[c] = pod
        assert set(pods.values()) == {"dns-1", "dns-2", "dns-3"}
        # dns-1 leaves the Service: its clients' flows move to the remaining pods.
        put_slice(disc, ns, "dns", [endpoint(ip, k) for k, ip in enumerate(ips, 1) if k != 1],
                  ports=(("echo", 5353, "UDP"),))
        moved = next(c for c, pod in pods.items() if pod == "dns-1")

        def elsewhere() -> None:
            answer = udp_ask(node_ip(2), ports["echo"], b"again", moved)
            assert answer in (b"dns-2: again", b"dns-3: again"), answer

        eventually(elsewhere)
    finally:
        for c in clients:
            c.close()


def get_from(source: str, ip: str, port: int) -> str:
    """One fresh connection from the loopback address `source`: who answered."""
    conn = http.client.HTTPConnection(ip, port, timeout=3, source_address=(source, 0))
    try:
        conn.request("GET", "/")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def test_client_ip_affinity_keeps_each_client_on_one_pod(core: client.CoreV1Api,
                                                         disc: client.DiscoveryV1Api,
                                                         ns: str) -> None:
    """kube-proxy honours sessionAffinity ClientIP on NodePorts (a Cluster-policy affinity
    test through a balancer's VIP depends on it): each client IP's connections stay on one
    pod, while different clients still spread."""
    ips = [run_pod(core, ns, f"web-{k}", k) for k in (1, 2, 3)]
    made = core.create_namespaced_service(ns, {"metadata": {"name": "sticky"}, "spec": {
        "type": "NodePort", "selector": {"app": "sticky"}, "sessionAffinity": "ClientIP",
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    assert made.spec.session_affinity_config.client_ip.timeout_seconds == 10800  # defaulted
    port = made.spec.ports[0].node_port
    put_slice(disc, ns, "sticky", [endpoint(ip, k) for k, ip in enumerate(ips, 1)])
    eventually(lambda: get(node_ip(1), port))
    sources = [f"127.0.{POD_OCTET}.{240 + k}" for k in range(6)]
    chosen = {}
    for source in sources:
        answers = {get_from(source, node_ip(1), port) for _ in range(8)}
        assert len(answers) == 1, (source, answers)  # 8 connections, one pod
        chosen[source] = answers.pop()
    assert len(set(chosen.values())) > 1, chosen  # the clients did not all land on one pod


# -- node ports: Local and the health check node port ---------------------------------------
def test_local_policy_health_check_and_forwarding(core: client.CoreV1Api,
                                                  disc: client.DiscoveryV1Api, ns: str) -> None:
    a, b = run_pod(core, ns, "a", 1), run_pod(core, ns, "b", 2)
    ports = node_port_service(core, ns, "lb", type_="LoadBalancer", local=True)
    put_slice(disc, ns, "lb", [endpoint(a, 1), endpoint(b, 2)])

    def health(k: int, code: int, count: int) -> None:
        status, text, headers = get(node_ip(k), ports["health"], "/healthz")
        assert (status, text) == (code, health_body(ns, "lb", count)), (k, status, text)
        assert headers["Content-Type"] == "application/json"
        assert headers["X-Content-Type-Options"] == "nosniff"

    eventually(lambda: health(1, 200, 1))
    health(2, 200, 1)
    health(3, 503, 0)
    assert json.loads(get(node_ip(3), ports["health"])[1]) == {
        "service": {"namespace": ns, "name": "lb"}, "localEndpoints": 0,
        "serviceProxyHealthy": True}
    # Each node forwards only to its own pod; a node without one resets the connection.
    assert set(served_by(node_ip(1), ports["http"], 6)) == {pod_line("a", 1)}
    assert set(served_by(node_ip(2), ports["http"], 6)) == {pod_line("b", 2)}
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        get(node_ip(3), ports["http"])
    # The node-1 endpoint stops being ready: its health check fails.
    put_slice(disc, ns, "lb", [endpoint(a, 1, ready=False), endpoint(b, 2)])
    eventually(lambda: health(1, 503, 0))
    # Back to Cluster: the health check node port is released, node 3 forwards again.
    core.patch_namespaced_service("lb", ns, {"spec": {"externalTrafficPolicy": "Cluster"}})
    eventually(lambda: refused(node_ip(1), ports["health"]))
    assert set(eventually(lambda: served_by(node_ip(3), ports["http"], 3))) == {
        pod_line("b", 2)}


# -- node stop / restart, Service removal --------------------------------------------------
def test_stopped_node_refuses_everything_until_restarted(core: client.CoreV1Api,
                                                         disc: client.DiscoveryV1Api,
                                                         ns: str) -> None:
    ips = [run_pod(core, ns, f"web-{k}", k) for k in (1, 2, 3)]
    ports = node_port_service(core, ns, "web")
    put_slice(disc, ns, "web", [endpoint(ip, k) for k, ip in enumerate(ips, 1)])
    eventually(lambda: get(node_ip(2), ports["http"]))
    status, text, _ = eventually(lambda: get(node_ip(2), 10256, "/healthz"))
    assert status == 200 and json.loads(text)["nodeEligible"] is True  # kube-proxy's own
    assert get(node_ip(2), 10256, "/metrics")[0] == 404
    core.patch_node("sandbox-node-2", {"metadata": {"annotations": {STOPPED: "true"}}})
    try:
        eventually(lambda: refused(node_ip(2), ports["http"]))
        refused(ips[1], 8080)  # its pods are down with it
        refused(node_ip(2), 10256)  # and its kube-proxy
        assert get(node_ip(1), ports["http"])[0] == 200  # the other nodes carry on
    finally:
        core.patch_node("sandbox-node-2", {"metadata": {"annotations": {STOPPED: None}}})
    assert eventually(lambda: get(node_ip(2), ports["http"]))[0] == 200
    assert eventually(lambda: get(ips[1], 8080))[1] == pod_line("web-2", 2)


def test_node_ports_close_when_the_service_goes_or_changes_type(core: client.CoreV1Api,
                                                               disc: client.DiscoveryV1Api,
                                                               ns: str) -> None:
    ip = run_pod(core, ns, "web", 1)
    gone = node_port_service(core, ns, "gone")
    changed = node_port_service(core, ns, "changed")
    for name in ("gone", "changed"):
        put_slice(disc, ns, name, [endpoint(ip, 1)])
    eventually(lambda: get(node_ip(3), gone["http"]))
    eventually(lambda: get(node_ip(3), changed["http"]))
    core.delete_namespaced_service("gone", ns)
    core.patch_namespaced_service("changed", ns, {"spec": {"type": "ClusterIP"}})
    for k in (1, 2, 3):
        eventually(partial(refused, node_ip(k), gone["http"]))
        eventually(partial(refused, node_ip(k), changed["http"]))


def test_a_taken_port_is_retried_until_free(core: client.CoreV1Api,
                                            disc: client.DiscoveryV1Api, ns: str) -> None:
    """Something outside the sandbox holds node 1's port: the others serve, node 1 later."""
    for _ in range(20):  # a free nodePort we can hold on node 1 before the Service exists
        port = 30000 + secrets.randbelow(2768)
        squatter = socket.socket()
        try:
            squatter.bind((node_ip(1), port))
            core.create_namespaced_service(ns, {"metadata": {"name": "web"}, "spec": {
                "type": "NodePort", "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                                               "nodePort": port}]}})
            break
        except (OSError, client.ApiException):
            squatter.close()
    else:
        pytest.fail("no free nodePort found in 20 tries")
    try:
        squatter.listen(1)
        put_slice(disc, ns, "web", [endpoint(run_pod(core, ns, "web", 3), 3)])
        assert eventually(partial(get, node_ip(2), port))[1] == pod_line("web", 3)
    finally:
        squatter.close()
    assert eventually(partial(get, node_ip(1), port), within=15)[1] == pod_line("web", 3)


# -- the process ------------------------------------------------------------------------------
def test_watch_drops_and_compaction_are_survived(box: Sandbox, core: client.CoreV1Api,
                                                 disc: client.DiscoveryV1Api, ns: str) -> None:
    """Dropped watches resume; a compacted log (410) relists; changes made meanwhile apply."""
    assert admin_call(box, "POST", "/sandbox/faults/drop-watches")[0] == 200
    ip = run_pod(core, ns, "after-drop", 3)
    assert eventually(lambda: get(ip, 8080))[0] == 200
    assert admin_call(box, "POST", "/sandbox/compact")[0] == 200
    assert admin_call(box, "POST", "/sandbox/faults/drop-watches")[0] == 200
    core.delete_namespaced_pod("after-drop", ns)
    ports = node_port_service(core, ns, "after-compact")
    put_slice(disc, ns, "after-compact", [endpoint(run_pod(core, ns, "web", 1), 1)])
    eventually(lambda: refused(ip, 8080))
    assert eventually(lambda: get(node_ip(2), ports["http"]))[1] == pod_line("web", 1)


def test_flaky_api_answers_are_retried(box: Sandbox, core: client.CoreV1Api,
                                       ns: str) -> None:
    """Half of the traffic process's lists and watches fail with 429/500, watches restart
    with 410: it keeps retrying (backoff) and catches up."""
    faults = {"watchGone": 2, "errorRates": {"429": 0.25, "500": 0.25}, "seed": 7,
              "verbs": ["list", "watch"], "resources": ["pods"]}
    assert admin_call(box, "PUT", "/sandbox/faults", faults)[0] == 200
    try:
        assert admin_call(box, "POST", "/sandbox/faults/drop-watches")[0] == 200
        ip = run_pod(core, ns, "through-faults", 2)
        assert eventually(partial(get, ip, 8080), within=10)[1] == pod_line("through-faults", 2)
    finally:
        assert admin_call(box, "PUT", "/sandbox/faults", {})[0] == 200


def test_process_exits_when_its_parent_pipe_closes(box: Sandbox) -> None:
    proc = TrafficProcess(box.url, box.token).start()
    assert proc.proc is not None and proc.proc.stdin is not None
    proc.proc.stdin.close()
    assert proc.proc.wait(10) == 0
    proc.stop()


def test_process_refuses_a_server_off_loopback() -> None:
    proc = TrafficProcess("http://192.0.2.1:6443", "x", ready_timeout=10)
    with pytest.raises(TrafficError, match="exited with 2"):
        proc.start()
    proc.stop()


@pytest.mark.unit
def test_health_body_is_kube_proxys_byte_for_byte() -> None:
    assert health_body("default", "web", 2) == (
        '{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "web"\n\t},\n'
        '\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}')
