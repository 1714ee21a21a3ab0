"""A bounded soak of the whole bare-metal story (issue 14): churn, crashes, traffic, then leaks.

Every piece runs as a process of its own, as it would in a cluster: the sandbox (`lbctl
sandbox`: API server, three simulated nodes on 127.0.10.1-3, pods on 127.0.20.x), the balancer
daemon (`lbctl balancer serve --api-listen ... --state-file ...`, userspace data plane) and the
controller (`lbctl run --kubeconfig ...`, baremetal provider, leader election on by default,
the controller's default resync). A Deployment of 3 pods stands behind every Service. Then,
for `--minutes`:

- churn: every `--churn-every` s a LoadBalancer Service is created, or the oldest deleted once
  `--services` exist (each gets a VIP from 127.0.100.60-120);
- nodes: every `--node-every` s one simulated node is stopped, and started again half that
  later (never two at once);
- crashes, in the first half only: every `--kill-every` s the daemon or the controller, in
  turn, is SIGKILLed; while it is down (`--down-seconds`) the oldest serving Service is deleted
  and a new one created; then it is started again (the daemon from its state file, which
  still holds the deleted Service's balancer and lacks the new one);
- traffic, throughout: one client, paced at `--rate` requests/s (capped), a new connection
  per request, round robin over the VIPs of the Services that should be serving (their
  ingress is published and they are not being deleted); loopback addresses only.

Detection window: a request counts as "failed after detection" unless its lifetime overlaps
the `--detection-window` seconds (default 5) that follow a node stop or a controller kill, or
the time from a daemon kill until `--detection-window` s after its restart answered. Within
those windows a balancer may lose requests (its health checks run every 0.5 s with 2 failures
to eject, EndpointSlices take a moment to drop a stopped node's pods, and a killed daemon's
VIPs are gone until it is back).

Leaks: halfway (after the last crash) every Service is deleted and the controller gets
`--converge-timeout` s to leave nothing behind; the daemon's and the controller's open fds and
RSS then are the "after warm-up" figures. The second half runs on those same processes (churn,
node stops, traffic, no crashes); at the end every Service is deleted again and, once
converged (or timed out), the same figures are printed side by side with their ratio, with
what must be zero: balancers, bound listeners and running frontends in the daemon's API,
listening sockets of the daemon besides its API, balancers in its state file, VIPs that still
accept a connection, Services left (with finalizers), daemon children that outlived a
SIGKILLed parent. Balancers left are named with their Service and whether it was deleted while
the daemon was down. The kernel data plane is not used (`--kernel-dataplane off`), so no nft
rules can be left. Flat means: fds within +FD_SLACK of warm-up and RSS within RSS_RATIO x or
+RSS_SLACK_MIB of it (Python's allocator keeps some growth after warm-up). A run that did not
complete (a piece died or never started, or the traffic did not run to the end: it sent
nothing, hit its request cap early or never stopped) says so, prints no ratio and exits 2.

Exit status: 0 clean, 1 leaks or requests failed after detection, 2 incomplete. Everything is
bounded: --minutes <= 60, --rate <= 100/s, at most 200,000 requests, and a watchdog ends the
run after the soak plus its convergence and start timeouts. It takes the lock file
tests/conftest.py takes around a traffic-enabled sandbox (the addresses are fixed).

    .venv/bin/python bench/soak.py [--minutes 3] [--rate 20] [--services 4]
        [--churn-every 3] [--node-every 12] [--kill-every 15] [--down-seconds 1]
        [--detection-window 5] [--converge-timeout 90] [--leader-elect true|false]
        [--logs DIR] [--verbose]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import http.client
import ipaddress
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

LBCTL = str(Path(sys.executable).with_name("lbctl"))
NAMESPACE = "soak"
CLUSTER = "soak"
POOL = "127.0.100.60-127.0.100.120"
PORT = 8080
TRAFFIC_LOCK = Path(tempfile.gettempdir()) / "lbctl-sandbox-traffic.lock"
"""The lock tests/conftest.py takes around a traffic-enabled sandbox (fixed 127.0.10.x,
127.0.20.x and 127.0.100.x addresses): one such sandbox on the machine at a time."""

MAX_MINUTES = 60.0
MAX_RATE = 100.0
MAX_REQUESTS = 200_000
REQUEST_TIMEOUT = 2.0
CONVERGE_TIMEOUT = 90.0
"""Default of --converge-timeout: how long the deletes get to leave nothing behind (a
SIGKILLed leader's Lease alone takes 15 s to expire)."""
START_TIMEOUT = 60.0
STUCK_SECONDS = 5.0
"""A Service deleted before its ingress came, this long after its create, is noted with its
last event (a lost Lease alone holds provisioning up for 15 s)."""
FD_SLACK = 2
RSS_RATIO = 1.25
RSS_SLACK_MIB = 16.0


def config_text(balancer_url: str, token_file: Path) -> str:
    return f"""clusterName: {CLUSTER}
provider: baremetal
controller: {{nodeSyncDebounceSeconds: 0.2}}
baremetal:
  pools: [{{name: soak, addresses: ["{POOL}"]}}]
  balancers: [{{name: soak-lb, url: "{balancer_url}", tokenFile: "{token_file}"}}]
  healthCheck: {{intervalSeconds: 0.5, timeoutSeconds: 0.5, healthyThreshold: 2,
                unhealthyThreshold: 2}}
  statusPollSeconds: 0.5
  drainSeconds: 1
"""


class Incomplete(Exception):
    """The run could not do what it measures (a piece died, something never converged)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], what: str, timeout: float,
               interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise Incomplete(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# -- the processes --------------------------------------------------------------------------
@dataclass
class Child:
    """One of the soak's processes; each incarnation logs to `<logs>/<name>-<n>.log`."""

    name: str
    argv: list[str]
    logs: Path
    ready_line: str
    proc: subprocess.Popen[bytes] | None = None
    incarnation: int = 0
    started_at: float = 0.0

    @property
    def log(self) -> Path:
        return self.logs / f"{self.name}-{self.incarnation}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, wait: bool = True) -> float:
        """Start and (with `wait`) wait for the ready line; answers the seconds it took."""
        self.incarnation += 1
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self.started_at = time.monotonic()
        if wait:
            wait_until(self.ready, f"{self.name} to print {self.ready_line!r} (see {self.log})",
                       START_TIMEOUT, 0.05)
        return time.monotonic() - self.started_at

    def ready(self) -> bool:
        self.check_alive()
        return self.ready_line in self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise Incomplete(f"{self.name} (pid {self.proc.pid}) exited with "
                             f"{self.proc.returncode}:\n{tail}")

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


# -- HTTP to the sandbox, the daemon and the controller (all on loopback) ---------------------
def http_json(method: str, url: str, token: str = "", body: Any = None,
              content_type: str = "application/json", timeout: float = 10.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": content_type} if data is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method,  # noqa: S310 (loopback)
                                 headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        raw = resp.read()
    return json.loads(raw) if raw else None


def http_text(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback)
        text: str = resp.read().decode()
        return text


def metric(text: str, name: str) -> float | None:
    """The sum of a Prometheus family's samples named exactly `name` (any labels)."""
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith((name + " ", name + "{"))]
    return sum(values) if values else None


@dataclass
class Cluster:
    api: str
    token: str

    def call(self, method: str, path: str, body: Any = None,
             content_type: str = "application/json") -> Any:
        return http_json(method, self.api + path, self.token, body, content_type)

    def services(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.call(
            "GET", f"/api/v1/namespaces/{NAMESPACE}/services")["items"]
        return items

    def set_stopped(self, node: str, stopped: bool) -> None:
        self.call("PATCH", f"/api/v1/nodes/{node}", {"metadata": {"annotations": {
            "sandbox.lbctl.io/stopped": "true" if stopped else None}}},
            "application/merge-patch+json")

    def ready_pods(self) -> int:
        pods = self.call("GET", f"/api/v1/namespaces/{NAMESPACE}/pods",
                         )["items"]
        return sum(any(c["type"] == "Ready" and c["status"] == "True"
                       for c in (p.get("status") or {}).get("conditions") or [])
                   for p in pods)


@dataclass
class Daemon:
    url: str
    token: str

    def balancers(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = http_json("GET", f"{self.url}/v1/balancers",
                                                self.token)["balancers"]
        return items

    def metrics(self) -> str:
        return http_text(f"{self.url}/metrics")


# -- traffic -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    started: float
    ended: float
    service: str
    ok: bool
    answer: str


class Traffic(threading.Thread):
    """One paced client; each request a new connection to one serving VIP (round robin)."""

    def __init__(self, rate: float, max_requests: int) -> None:
        super().__init__(name="traffic", daemon=True)
        self.interval = 1.0 / rate
        self.max_requests = max_requests
        self.results: list[Result] = []
        self.stopping = threading.Event()
        self._targets: dict[str, str] = {}
        self._lock = threading.Lock()
        self._inflight: str | None = None
        self._turn = 0

    def add(self, service: str, vip: str) -> None:
        if not ipaddress.ip_address(vip).is_loopback:  # this soak sends to loopback only
            raise Incomplete(f"Service {service} got VIP {vip}, not a loopback address: "
                             "no traffic is sent there")
        with self._lock:
            self._targets[service] = vip

    def remove(self, service: str) -> None:
        """Stop sending to `service` and wait for a request to it in flight to end."""
        with self._lock:
            self._targets.pop(service, None)
        deadline = time.monotonic() + REQUEST_TIMEOUT + 1
        while self._inflight == service and time.monotonic() < deadline:
            time.sleep(0.01)

    def _next(self) -> tuple[str, str] | None:
        with self._lock:
            if not self._targets:
                return None
            names = sorted(self._targets)
            name = names[self._turn % len(names)]
            self._turn += 1
            self._inflight = name
            return name, self._targets[name]

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stopping.is_set() and len(self.results) < self.max_requests:
            next_at = max(next_at + self.interval, time.monotonic())
            picked = self._next()
            if picked is not None:
                self.results.append(self._one(*picked))
                self._inflight = None
            self.stopping.wait(max(0.0, next_at - time.monotonic()))

    @staticmethod
    def _one(service: str, vip: str) -> Result:
        started = time.monotonic()
        conn = http.client.HTTPConnection(vip, PORT, timeout=REQUEST_TIMEOUT)
        try:
            conn.request("GET", "/")
            resp = conn.getresponse()
            answer = resp.read().decode(errors="replace").strip()
            ok = resp.status == 200 and answer.startswith("pod ")
            if not ok:
                answer = f"HTTP {resp.status}: {answer[:80]}"
        except (OSError, http.client.HTTPException) as exc:
            ok, answer = False, f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()
        return Result(started, time.monotonic(), service, ok, answer)


# -- figures -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Usage:
    pid: int
    fds: int
    rss_mib: float
    sockets: int
    listening: int
    children: int

    @staticmethod
    def of(pid: int) -> Usage:
        proc = psutil.Process(pid)
        conns = proc.net_connections(kind="all")
        return Usage(pid, proc.num_fds(), proc.memory_info().rss / 2**20, len(conns),
                     sum(c.status == psutil.CONN_LISTEN for c in conns),
                     len(proc.children(recursive=True)))

    def __str__(self) -> str:
        return f"pid {self.pid} {self.fds} fds {self.rss_mib:.1f} MiB"


@dataclass
class Window:
    kind: str
    start: float
    end: float


@dataclass
class Soak:
    args: argparse.Namespace
    logs: Path
    t0: float = field(default_factory=time.monotonic)
    events: list[str] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    created: dict[str, float] = field(default_factory=dict)  # pending: name -> created at
    provision_s: list[float] = field(default_factory=list)
    serving_since: dict[str, float] = field(default_factory=dict)
    vips_seen: set[str] = field(default_factory=set)
    detections: list[float] = field(default_factory=list)
    undetected: int = 0
    pending_detection: tuple[str, float] | None = None
    orphans: list[str] = field(default_factory=list)
    orphan_checks: list[tuple[float, str, list[psutil.Process]]] = field(default_factory=list)
    counter: int = 0
    kills: dict[str, int] = field(default_factory=lambda: {"daemon": 0, "controller": 0})
    node_stops: int = 0
    stopped_node: str | None = None
    pending_leader: float | None = None
    deleted_while_daemon_down: set[str] = field(default_factory=set)
    stuck: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    halfway: dict[str, int] = field(default_factory=dict)

    def note(self, text: str) -> None:
        line = f"  t+{time.monotonic() - self.t0:6.1f}s  {text}"
        self.events.append(line)
        if self.args.verbose:
            print(line, flush=True)

    # -- set-up ----------------------------------------------------------------------------
    def __post_init__(self) -> None:
        root = self.logs
        self.kubeconfig = root / "kubeconfig"
        token_file = root / "balancer-token"
        token_file.write_text(secrets.token_urlsafe(32))
        token_file.chmod(0o600)
        self.api_port, metrics_port = free_port(), free_port()
        daemon_url = f"http://127.0.0.1:{self.api_port}"
        self.controller_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        self.api = Daemon(daemon_url, token_file.read_text())
        (root / "config.yaml").write_text(config_text(daemon_url, token_file))
        self.sandbox = Child("sandbox", [LBCTL, "sandbox", "--listen", "127.0.0.1:0",
                                         "--nodes", "3", "--kubeconfig", str(self.kubeconfig)],
                             root, "sandbox ready")
        self.daemon = Child("daemon", [
            LBCTL, "balancer", "serve", "--api-listen", f"127.0.0.1:{self.api_port}",
            "--token-file", str(token_file), "--state-file", str(root / "balancer-state.json"),
            "--kernel-dataplane", "off", "--log-format", "text"], root, "balancer ready")
        self.controller = Child("controller", [
            LBCTL, "run", "--kubeconfig", str(self.kubeconfig), "--config",
            str(root / "config.yaml"), "--metrics-bind", f"127.0.0.1:{metrics_port}",
            "--leader-elect", self.args.leader_elect, "--log-format", "text"],
            root, "lbctl running")

    def start(self) -> None:
        self.t0 = time.monotonic()  # after the lock: times are from the sandbox's start
        self.sandbox.start()
        doc = yaml.safe_load(self.kubeconfig.read_text())
        self.kube = Cluster(doc["clusters"][0]["cluster"]["server"],
                            doc["users"][0]["user"]["token"])
        self.daemon.start()
        self.controller.start()
        self.kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
        self.kube.call("POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "soak"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "soak"}},
                     "template": {"metadata": {"labels": {"app": "soak"}}, "spec": {
                         "containers": [{"name": "web", "image": "nginx",
                                         "ports": [{"containerPort": PORT}]}]}}}})
        wait_until(lambda: self.kube.ready_pods() >= 3, "3 ready pods", START_TIMEOUT)
        self.note("sandbox, daemon, controller and 3 pods up")

    def children(self) -> list[Child]:
        """The processes started so far, the controller first (the order to stop them)."""
        return [c for c in (self.controller, self.daemon, self.sandbox) if c.proc is not None]

    def alive(self) -> None:
        for child in self.children():
            child.check_alive()

    # -- the actions -------------------------------------------------------------------------
    def churn(self, traffic: Traffic) -> None:
        live = sorted(self.serving_since, key=self.serving_since.__getitem__)
        if len(live) + len(self.created) >= self.args.services and live:
            self.delete(live[0], traffic)
            return
        if len(self.created) >= self.args.services:
            return  # provisioning is behind (e.g. no leader yet): create nothing more
        self.create()

    def create(self) -> None:
        self.counter += 1
        name = f"soak-{self.counter}"
        self.kube.call("POST", f"/api/v1/namespaces/{NAMESPACE}/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "selector": {"app": "soak"},
                     "ports": [{"port": PORT, "targetPort": PORT, "protocol": "TCP"}]}})
        self.created[name] = time.monotonic()

    def delete(self, name: str, traffic: Traffic) -> None:
        traffic.remove(name)
        self.serving_since.pop(name, None)
        created = self.created.pop(name, None)
        if created is not None and time.monotonic() - created > STUCK_SECONDS:
            self.stuck.append(f"{name} ({time.monotonic() - created:.0f} s"
                              f"{self.last_event(name)})")
            self.note(f"{name} deleted unprovisioned after {time.monotonic() - created:.1f} s")
        with contextlib.suppress(urllib.error.HTTPError):  # 404: already gone
            self.kube.call("DELETE", f"/api/v1/namespaces/{NAMESPACE}/services/{name}")

    def last_event(self, name: str) -> str:
        """`: REASON: message` of the Service's latest event, or ""."""
        try:
            events = self.kube.call("GET", f"/api/v1/namespaces/{NAMESPACE}/events?"
                                    f"fieldSelector=involvedObject.name%3D{name}")["items"]
        except (OSError, KeyError):
            return ""
        if not events:
            return ""
        last = max(events, key=lambda e: (e.get("type") == "Warning",
                                          e.get("lastTimestamp") or e.get("eventTime") or ""))
        return f": {last.get('reason')}: {last.get('message')}"

    def check_provisioned(self, traffic: Traffic) -> None:
        for name, created in list(self.created.items()):
            svc = self.kube.call("GET", f"/api/v1/namespaces/{NAMESPACE}/services/{name}")
            ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")
            if ingress and ingress[0].get("ip"):
                vip = ingress[0]["ip"]
                del self.created[name]
                self.provision_s.append(time.monotonic() - created)
                self.serving_since[name] = time.monotonic()
                self.vips_seen.add(vip)
                traffic.add(name, vip)

    def toggle_node(self) -> None:
        if self.stopped_node is not None:
            self.kube.set_stopped(self.stopped_node, False)
            self.note(f"node {self.stopped_node} started")
            self.stopped_node = None
            return
        node = f"sandbox-node-{self.node_stops % 3 + 1}"
        self.node_stops += 1
        self.kube.set_stopped(node, True)
        now = time.monotonic()
        self.stopped_node = node
        self.windows.append(Window("node stop", now, now + self.args.detection_window))
        if self.pending_detection is not None:
            self.undetected += 1
        self.pending_detection = (node, now)
        self.note(f"node {node} stopped")

    def check_detection(self) -> None:
        if self.pending_detection is None or self.daemon.proc is None \
                or self.daemon.proc.poll() is not None:
            return
        node, since = self.pending_detection
        try:
            balancers = self.api.balancers()
        except OSError:
            return
        targets = [t for b in balancers for li in b["status"].get("listeners", [])
                   for t in li["targets"] if t["name"] == node]
        if targets and not any(t["up"] for t in targets):
            self.detections.append(time.monotonic() - since)
            self.pending_detection = None
        elif time.monotonic() - since > 30:
            self.undetected += 1
            self.pending_detection = None

    def kill(self, which: str, traffic: Traffic) -> None:
        """SIGKILL, change the world while it is down (one Service deleted, one created), then
        start it again at once: the daemon from its state file, which still holds the deleted
        Service's balancer and lacks the new one."""
        child = self.daemon if which == "daemon" else self.controller
        children = child.descendants()
        killed_at = time.monotonic()
        window = Window(f"{which} kill", killed_at, killed_at + self.args.detection_window)
        self.windows.append(window)
        pid = child.pid
        child.kill()
        self.kills[which] += 1
        live = sorted(self.serving_since, key=self.serving_since.__getitem__)
        if live:
            self.delete(live[0], traffic)
            if which == "daemon":
                self.deleted_while_daemon_down.add(live[0])
        self.create()
        time.sleep(max(0.0, killed_at + self.args.down_seconds - time.monotonic()))
        took = child.start()
        window.end = time.monotonic() + self.args.detection_window
        self.note(f"{which} pid {pid} SIGKILLed ({'deleted ' + live[0] + ', ' if live else ''}"
                  f"created soak-{self.counter} while down); pid {child.pid} started "
                  f"{time.monotonic() - killed_at:.2f} s after the kill (ready in {took:.2f} s)")
        if children:
            self.orphan_checks.append((time.monotonic() + 5, which, children))
        if which == "controller":
            self.pending_leader = killed_at

    def check_leader(self) -> None:
        if self.pending_leader is None:
            return
        with contextlib.suppress(OSError):
            if metric(http_text(self.controller_metrics), "lbctl_leader") == 1:
                self.note(f"controller pid {self.controller.pid} leading "
                          f"{time.monotonic() - self.pending_leader:.1f} s after the kill")
                self.pending_leader = None

    def check_orphans(self) -> None:
        for item in [c for c in self.orphan_checks if c[0] <= time.monotonic()]:
            self.orphan_checks.remove(item)
            _, which, children = item
            for proc in children:
                with contextlib.suppress(psutil.NoSuchProcess):
                    if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                        self.orphans.append(f"{which} child pid {proc.pid} "
                                            f"({' '.join(proc.cmdline())[:80]})")

    # -- phases --------------------------------------------------------------------------------
    def run_phase(self, seconds: float, traffic: Traffic, crashes: bool) -> None:
        start = time.monotonic()
        end = start + seconds
        next_churn = start
        next_node = start + self.args.node_every
        kill_times: list[float] = []
        if crashes:
            at = self.args.kill_every
            while at <= seconds - self.args.kill_every / 2:
                kill_times.append(start + at)
                at += self.args.kill_every
        turn = ("daemon", "controller")
        kill_index = 0
        while time.monotonic() < end:
            now = time.monotonic()
            self.alive()
            if now >= next_churn:
                self.churn(traffic)
                next_churn = now + self.args.churn_every
            if now >= next_node:
                self.toggle_node()
                next_node = now + self.args.node_every / 2
            if kill_times and now >= kill_times[0]:
                kill_times.pop(0)
                self.kill(turn[kill_index % 2], traffic)
                kill_index += 1
            self.check_provisioned(traffic)
            self.check_detection()
            self.check_orphans()
            self.check_leader()
            time.sleep(0.1)

    def quiesce(self, traffic: Traffic) -> None:
        """Start a stopped node, delete every Service, wait (up to --converge-timeout) until
        neither the API nor the daemon holds anything; what is still there is a leak."""
        if self.stopped_node is not None:
            self.toggle_node()
        for name in [*self.serving_since, *self.created]:
            self.delete(name, traffic)
        started = time.monotonic()
        try:
            wait_until(lambda: not self.kube.services() and not self.api.balancers(),
                       "every Service and every balancer to go", self.args.converge_timeout,
                       0.25)
            self.note(f"converged: no Service, no balancer {time.monotonic() - started:.1f} s "
                      "after the deletes")
        except Incomplete:
            self.alive()
            left = [b["balancer"]["name"] for b in self.api.balancers()]
            self.note(f"NOT converged {self.args.converge_timeout:.0f} s after the deletes: "
                      f"{len(self.kube.services())} Service(s), balancers {left} still there")
        wait_until(lambda: self.kube.ready_pods() >= 3, "3 ready pods", START_TIMEOUT)
        time.sleep(2.0)  # let in-flight drains, polls and watch events settle

    def left_balancers(self) -> list[str]:
        """The balancers the daemon still serves, each with its Service and how it was lost."""
        out = []
        for b in self.api.balancers():
            doc = b["balancer"]
            service = (doc.get("owner") or {}).get("name", "?")
            how = ("deleted while the daemon was down" if service in
                   self.deleted_while_daemon_down else "deleted while the daemon was up")
            out.append(f"{doc['name']} of {NAMESPACE}/{service} ({how}; VIPs "
                       f"{', '.join(doc.get('vips') or [doc.get('vip', '?')])})")
        return out

    def leftovers(self) -> dict[str, int]:
        """What must be zero once every Service is deleted."""
        balancers = self.api.balancers()
        text = self.api.metrics()
        running = sum(1 for line in text.splitlines()
                      if line.startswith("lbctl_balancer_connections_total{"))
        daemon_listen = sum(c.status == psutil.CONN_LISTEN and c.laddr.port != self.api_port
                            for c in psutil.Process(self.daemon.pid).net_connections("all"))
        state = json.loads((self.logs / "balancer-state.json").read_text()) \
            if (self.logs / "balancer-state.json").exists() else {"balancers": []}
        services = self.kube.call("GET", "/api/v1/services")["items"]
        finalized = [s for s in services if s["metadata"].get("finalizers")]
        return {
            "daemon API: balancers": len(balancers),
            "daemon API: bound listeners": sum(li.get("bound", False) for b in balancers
                                               for li in b["status"].get("listeners", [])),
            "daemon metrics: running frontends": running,
            "daemon: listening sockets besides its API": daemon_listen,
            "daemon state file: balancers": len(state.get("balancers", [])),
            "VIPs still accepting connections": sum(accepts(v) for v in self.vips_seen),
            f"Services left in {NAMESPACE}": len(self.kube.services()),
            "Services left with finalizers": len(finalized),
            "daemon children orphaned by a SIGKILL": len(self.orphans),
        }


def accepts(vip: str) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((vip, PORT)) == 0


@contextlib.contextmanager
def traffic_lock(wait: float) -> Iterator[None]:
    with TRAFFIC_LOCK.open("a") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Incomplete(f"another traffic sandbox held {TRAFFIC_LOCK} for "
                                     f"{wait:.0f} s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- report -----------------------------------------------------------------------------------
def in_window(result: Result, windows: list[Window]) -> bool:
    return any(result.started <= w.end and result.ended >= w.start for w in windows)


def print_traffic(soak: Soak, traffic: Traffic) -> int:
    results = traffic.results
    failed = [r for r in results if not r.ok]
    after = [r for r in failed if not in_window(r, soak.windows)]
    kinds: dict[str, int] = {}
    for w in soak.windows:
        kinds[w.kind] = kinds.get(w.kind, 0) + 1
    print(f"detection window: {soak.args.detection_window:g} s after each node stop and "
          "controller kill; a daemon kill's runs from the kill to that long after its "
          f"restart answered ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})")
    print(f"requests sent                      {len(results):8d}  "
          f"(paced at {soak.args.rate:g}/s, new connection each, loopback VIPs only)")
    by_kind: dict[str, int] = {}
    for r in failed:
        kind = next((w.kind for w in soak.windows if r.started <= w.end and r.ended >= w.start),
                    "no window")
        by_kind[kind] = by_kind.get(kind, 0) + 1
    where = ", ".join(f"{n} after a {k}" if k != "no window" else f"{n} outside the windows"
                      for k, n in sorted(by_kind.items()))
    print(f"failed requests                    {len(failed):8d}"
          + (f"  ({where})" if failed else ""))
    print(f"failed requests after detection    {len(after):8d}")
    pods = {r.answer for r in results if r.ok}
    print(f"pods that answered                 {len(pods):8d}")
    for r in after[:10]:
        print(f"  FAILED at t+{r.started - soak.t0:.1f}s {r.service}: {r.answer}")
    return len(after)


def print_usage(name: str, start: Usage, end: Usage) -> bool:
    """Side by side with the ratio; answers whether it leaked."""
    fd_leak = end.fds > start.fds + FD_SLACK
    grown = end.rss_mib - start.rss_mib
    rss_leak = end.rss_mib > start.rss_mib * RSS_RATIO and grown > RSS_SLACK_MIB
    print(f"{name + ' fds':22s} {start.fds:10d} {end.fds:10d} {end.fds / start.fds:7.2f}"
          f"  {'LEAK' if fd_leak else 'flat'} (sockets {start.sockets} -> {end.sockets}, "
          f"listening {start.listening} -> {end.listening}, children {start.children} -> "
          f"{end.children})")
    print(f"{name + ' RSS MiB':22s} {start.rss_mib:10.1f} {end.rss_mib:10.1f} "
          f"{end.rss_mib / start.rss_mib:7.2f}  {'LEAK' if rss_leak else 'flat'} "
          f"({grown:+.1f} MiB)")
    return fd_leak or rss_leak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--services", type=int, default=4, help="Services at once (max)")
    parser.add_argument("--churn-every", type=float, default=3.0)
    parser.add_argument("--node-every", type=float, default=12.0)
    parser.add_argument("--kill-every", type=float, default=15.0)
    parser.add_argument("--detection-window", type=float, default=5.0)
    parser.add_argument("--down-seconds", type=float, default=1.0,
                        help="how long a killed daemon or controller stays down")
    parser.add_argument("--converge-timeout", type=float, default=CONVERGE_TIMEOUT)
    parser.add_argument("--leader-elect", choices=["true", "false"], default="true")
    parser.add_argument("--lock-wait", type=float, default=300.0)
    parser.add_argument("--logs", type=Path, default=None, help="keep the logs here")
    parser.add_argument("--verbose", action="store_true", help="print events as they happen")
    args = parser.parse_args()
    if not 0 < args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes must be in (0, {MAX_MINUTES:g}]")
    if not 0 < args.rate <= MAX_RATE:
        parser.error(f"--rate must be in (0, {MAX_RATE:g}]")
    if not 1 <= args.services <= 20:
        parser.error("--services must be 1..20")
    for flag in ("churn_every", "node_every", "kill_every", "detection_window",
                 "down_seconds", "converge_timeout"):
        if not 0.5 <= getattr(args, flag) <= 600:
            parser.error(f"--{flag.replace('_', '-')} must be 0.5..600 seconds")
    seconds = args.minutes * 60
    # the hard cap on everything: the soak, two convergences, starts and the lock wait
    budget = seconds + 2 * args.converge_timeout + 6 * START_TIMEOUT + args.lock_wait
    watchdog = threading.Timer(budget, lambda: os.kill(os.getpid(), signal.SIGTERM))
    watchdog.daemon = True
    watchdog.start()

    def out_of_time(*_: object) -> None:
        raise Incomplete(f"the hard cap of {budget:.0f} s ran out")

    signal.signal(signal.SIGTERM, out_of_time)
    with contextlib.ExitStack() as stack:
        if args.logs is None:
            logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lbctl-soak-")))
        else:
            logs = args.logs
            logs.mkdir(parents=True, exist_ok=True)
        return run(args, seconds, logs, stack)


def run(args: argparse.Namespace, seconds: float, logs: Path, stack: contextlib.ExitStack
        ) -> int:
    soak = Soak(args, logs)
    traffic = Traffic(args.rate, min(MAX_REQUESTS, int(args.rate * seconds * 1.2) + 100))
    start_usage: tuple[Usage, Usage] | None = None
    end_usage: tuple[Usage, Usage] | None = None
    left: dict[str, int] = {}
    incomplete = ""
    try:
        stack.enter_context(traffic_lock(args.lock_wait))
        soak.start()
        traffic.start()
        soak.run_phase(seconds / 2, traffic, crashes=True)
        soak.quiesce(traffic)
        start_usage = (Usage.of(soak.daemon.pid), Usage.of(soak.controller.pid))
        pids = (soak.daemon.pid, soak.controller.pid)
        warm = soak.halfway = soak.leftovers()
        soak.note("after warm-up: " + (", ".join(f"{k} {v}" for k, v in warm.items() if v)
                                       or "nothing left") + f"; daemon {start_usage[0]}, "
                  f"controller {start_usage[1]}")
        soak.run_phase(seconds / 2, traffic, crashes=False)
        traffic.stopping.set()
        traffic.join(REQUEST_TIMEOUT + 5)
        traffic_incomplete(traffic)
        soak.quiesce(traffic)
        soak.check_orphans()
        if (soak.daemon.pid, soak.controller.pid) != pids:
            raise Incomplete("the daemon or the controller restarted in the second half")
        end_usage = (Usage.of(soak.daemon.pid), Usage.of(soak.controller.pid))
        left = soak.leftovers()
        soak.stale = soak.left_balancers()
    except (Incomplete, OSError, urllib.error.URLError) as exc:
        incomplete = str(exc) or type(exc).__name__
    finally:
        traffic.stopping.set()
        for child in soak.children():
            child.stop()
    return report(soak, traffic, start_usage, end_usage, left, incomplete, seconds)


def traffic_incomplete(traffic: Traffic) -> None:
    """Raise Incomplete unless the client sent requests the whole soak long: some at all,
    not stopped early by its cap, and ended when told."""
    sent = len(traffic.results)
    if traffic.is_alive():
        raise Incomplete("the traffic client did not stop")
    if sent == 0:
        raise Incomplete("the traffic client sent no request (no Service served)")
    if sent >= traffic.max_requests:
        raise Incomplete(f"the traffic client hit its cap of {traffic.max_requests} requests "
                         "before the end")


def report(soak: Soak, traffic: Traffic, start_usage: tuple[Usage, Usage] | None,
           end_usage: tuple[Usage, Usage] | None, left: dict[str, int], incomplete: str,
           seconds: float) -> int:
    args = soak.args
    print(f"soak: {seconds / 60:g} min (first half with crashes), {args.services} Services at "
          f"most, churn every {args.churn_every:g} s, a node stopped every "
          f"{args.node_every:g} s, a kill every {args.kill_every:g} s, leader election "
          f"{'on' if args.leader_elect == 'true' else 'off'}")
    print("events:")
    for line in soak.events:
        print(line)
    print(f"Services created {soak.counter}, provisioned {len(soak.provision_s)}"
          + (f" (create -> ingress median {statistics.median(soak.provision_s):.2f} s, max "
             f"{max(soak.provision_s):.2f} s)" if soak.provision_s else ""))
    print(f"kills: daemon {soak.kills['daemon']}, controller {soak.kills['controller']}; "
          f"node stops {soak.node_stops}"
          + (f", detected by the balancer after median {statistics.median(soak.detections):.2f}"
             f" s, max {max(soak.detections):.2f} s" if soak.detections else "")
          + (f", {soak.undetected} never detected" if soak.undetected else ""))
    failed_after = print_traffic(soak, traffic)
    if incomplete or start_usage is None or end_usage is None:
        print(f"\nINCOMPLETE: {incomplete or 'no measurement'}")
        print("(no leak figures: the run did not complete what it measures; logs in "
              f"{soak.logs if args.logs else 'a temporary directory, use --logs DIR'})")
        return 2
    print(f"\n{'after warm-up -> end':22s} {'warm-up':>10s} {'end':>10s} {'ratio':>7s}  "
          f"(same processes: daemon pid {end_usage[0].pid}, controller pid "
          f"{end_usage[1].pid}; flat = fds within +{FD_SLACK}, RSS within x{RSS_RATIO:g} or "
          f"+{RSS_SLACK_MIB:g} MiB)")
    leaks = [name for name, start, end in (("daemon", start_usage[0], end_usage[0]),
                                           ("controller", start_usage[1], end_usage[1]))
             if print_usage(name, start, end)]
    title = f"left {args.converge_timeout:g} s at most after every Service was deleted:"
    print(f"{title:60s} {'halfway':>7s} {'end':>5s}")
    for what, count in left.items():
        before = soak.halfway.get(what, 0)
        print(f"  {what:58s} {before:7d} {count:5d}{'  LEAK' if count or before else ''}")
        if count or before:
            leaks.append(what)
    for orphan in soak.orphans:
        print(f"    {orphan}")
    for stale in soak.stale:
        print(f"  balancer left: {stale}")
    for stuck in soak.stuck:
        print(f"  Service never provisioned: {stuck}")
    print(f"  {'nft rules left':58s} {'n/a':>13s}  (userspace data plane, "
          "--kernel-dataplane off)")
    if leaks or failed_after:
        problems = ([f"leaks: {', '.join(leaks)}"] if leaks else []) + (
            [f"{failed_after} request(s) failed after detection"] if failed_after else [])
        print(f"\nsoak FAILED: {'; '.join(problems)}")
        return 1
    print("\nsoak passed: no leak, no request failed after detection")
    return 0


if __name__ == "__main__":
    sys.exit(main())
