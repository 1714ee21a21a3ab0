"""`DaemonProgrammer` and `BaremetalProvider` against two real balancer daemons on loopback.

Each test runs two daemons (`DaemonThread`, API on a kernel-chosen port that is kept across
restarts, a token file and a state file each in tmp_path) and three HTTP backends on 127.0.106.x
answering with their own address; VIPs are on 127.0.107.x. Both daemons bind the VIP (the data
plane uses SO_REUSEPORT), as two LB hosts would announce it. Every test uses its own VIP and
backend addresses, so the file can run in parallel with itself (xdist).

The programmer's background poll is set to 600 s so that only the test's own `poll_once()`
calls read the daemons; health checks probe every 0.1 s and change state on one result.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lbctl.balancer.daemon import DaemonThread, ServeOptions
from providers.baremetal import BalancerDaemon, create
from providers.baremetal.daemon_options import DaemonOptions
from providers.baremetal.daemons import DaemonProgrammer, balancer_body
from providers.cluster import ServicePort, ServiceView, StaticView
from providers.errors import TransientError
from providers.spec import (
    BalancerRef,
    HealthCheck,
    IngressPoint,
    Listener,
    LoadBalancerSpec,
    PortStatus,
    ServiceRef,
    Target,
    TargetHealth,
)
from tests.helpers import named_backend

pytestmark = pytest.mark.integration

CLUSTER = "c1"
VIP_PORT = 18080
NODE_PORT = 18081
DAEMONS = ("lb1", "lb2")
OPTIONS = DaemonOptions(interval_seconds=0.1, timeout_seconds=0.5, healthy_threshold=1,
                        unhealthy_threshold=1, status_poll_seconds=600, drain_seconds=0)


# --- backends ---------------------------------------------------------------------------------


def _backend(ip: str) -> ThreadingHTTPServer:
    return named_backend(ip, NODE_PORT)


def _shut(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text: str = resp.read().decode().strip()
        return text


def _answers(vip: str, n: int = 30) -> set[str]:
    return {_get(f"http://{vip}:{VIP_PORT}/") for _ in range(n)}


def _wait(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the rig: two daemons, three backends, programmers -----------------------------------------


class Counting(DaemonProgrammer):
    """A DaemonProgrammer that records every HTTP call it makes (daemon, method, path)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, str, str]] = []

    def _call(self, daemon: BalancerDaemon, method: str, path: str,
              body: dict[str, Any] | None = None) -> tuple[int, Any]:
        self.calls.append((daemon.name, method, path))
        return super()._call(daemon, method, path, body)

    def count(self, method: str) -> list[str]:
        """The daemons that were sent `method` since the last count, in order (each call
        clears the record)."""
        out = [d for d, m, _ in self.calls if m == method]
        self.calls.clear()
        return out


@dataclass
class Rig:
    """Two daemons (lb1, lb2) on fixed API ports, their backends and the programmers."""

    tmp: Path
    index: int
    """Picks this test's addresses: VIP 127.0.107.<index>, backends 127.0.106.<10*index+i>."""
    ports: dict[str, int] = field(default_factory=dict)
    running: dict[str, DaemonThread] = field(default_factory=dict)
    backends: list[ThreadingHTTPServer] = field(default_factory=list)
    programmers: list[DaemonProgrammer] = field(default_factory=list)

    @property
    def vip(self) -> str:
        return f"127.0.107.{self.index}"

    def token(self, name: str) -> str:
        return f"token-of-{name}-{self.index}"

    def client_token(self, name: str) -> Path:
        """The file the programmer reads (the daemon reads its own copy)."""
        return self.tmp / f"{name}.client-token"

    def state(self, name: str, generation: int = 0) -> Path:
        return self.tmp / f"{name}-state-{generation}" / "balancers.json"

    def start(self, name: str, state: Path | None = None) -> DaemonThread:
        port = self.ports.setdefault(name, _free_port())
        server_token = self.tmp / f"{name}.token"
        server_token.write_text(self.token(name) + "\n")
        if not self.client_token(name).exists():
            self.client_token(name).write_text(self.token(name) + "\n")
        thread = DaemonThread(ServeOptions(api_listen=f"127.0.0.1:{port}",
                                           token_file=server_token,
                                           state_file=state or self.state(name)))
        thread.start()
        self.running[name] = thread
        return thread

    def stop(self, name: str) -> None:
        self.running.pop(name).stop()

    def daemons(self) -> tuple[BalancerDaemon, ...]:
        return tuple(BalancerDaemon(n, f"http://127.0.0.1:{self.ports[n]}",
                                    str(self.client_token(n))) for n in DAEMONS)

    def programmer(self) -> Counting:
        programmer = Counting(self.daemons(), OPTIONS, CLUSTER, timeout=5.0)
        self.programmers.append(programmer)
        return programmer

    def serve_backends(self) -> list[ThreadingHTTPServer]:
        self.backends = [_backend(f"127.0.106.{10 * self.index + i}") for i in (1, 2, 3)]
        return self.backends

    def api(self, name: str, method: str = "GET", path: str = "/v1/balancers",
            body: Any = None) -> tuple[int, dict[str, Any]]:
        """Ask a daemon directly, with its own (right) token."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.ports[name]}{path}", data=data,
                                     method=method)
        req.add_header("Authorization", f"Bearer {self.token(name)}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def listed(self, name: str) -> list[dict[str, Any]]:
        code, doc = self.api(name)
        assert code == 200, doc
        items: list[dict[str, Any]] = doc["balancers"]
        return items

    def names(self, name: str) -> list[str]:
        return [item["balancer"]["name"] for item in self.listed(name)]

    def close(self) -> None:
        for programmer in self.programmers:
            programmer.close()
        for name in list(self.running):
            self.stop(name)
        for server in self.backends:
            _shut(server)


RigFactory = Callable[[int], Rig]


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[RigFactory]:
    """`make_rig(n)`: two running daemons for address block n; all torn down afterwards."""
    built: list[Rig] = []

    def make(index: int) -> Rig:
        rig = Rig(tmp_path, index)
        built.append(rig)
        for name in DAEMONS:
            rig.start(name)
        return rig

    try:
        yield make
    finally:
        for rig in built:
            rig.close()


def _spec(backends: Iterable[ThreadingHTTPServer], name: str = "web") -> LoadBalancerSpec:
    return LoadBalancerSpec(
        ref=BalancerRef(f"lb-{name}", CLUSTER, ServiceRef("default", name, f"uid-{name}")),
        listeners=(Listener("http", "TCP", VIP_PORT, NODE_PORT),),
        targets=tuple(Target(f"node-{'abc'[i]}", f"test://node-{'abc'[i]}",
                             (str(s.server_address[0]),))
                      for i, s in enumerate(backends)),
        health_check=HealthCheck("TCP", None))


def _settings(rig: Rig) -> dict[str, Any]:
    """The provider's settings for the rig: one pool (its VIP), every daemon, fast health
    checks, no status polls between ensures, no drain."""
    return {
        "pools": [{"name": "lbs", "addresses": [f"{rig.vip}/32"]}],
        "balancers": [{"name": d.name, "url": d.url, "tokenFile": d.token_file}
                      for d in rig.daemons()],
        "healthCheck": {"intervalSeconds": 0.1, "timeoutSeconds": 0.5, "healthyThreshold": 1,
                        "unhealthyThreshold": 1},
        "statusPollSeconds": 600, "drainSeconds": 0}


def _expected(servers: Iterable[ThreadingHTTPServer]) -> set[str]:
    return {f"backend {s.server_address[0]!s}" for s in servers}


# --- DaemonProgrammer ---------------------------------------------------------------------------


def test_program_serves_on_both_daemons_and_puts_only_real_changes(
        make_rig: RigFactory) -> None:
    rig = make_rig(1)
    servers = rig.serve_backends()
    programmer = rig.programmer()
    spec = _spec(servers)
    ips = (rig.vip,)
    assert programmer.plan(spec, ips) == [
        f"program balancer lb-web on daemon {name} ({rig.vip})" for name in DAEMONS]
    assert programmer.program(spec, ips) is None
    assert programmer.count("PUT") == ["lb1", "lb2"]
    revision = balancer_body(spec, ips, OPTIONS)["revision"]
    for name in DAEMONS:
        (item,) = rig.listed(name)
        body = item["balancer"]
        assert body["name"] == "lb-web" and body["vips"] == [rig.vip]
        assert body["owner"] == {"cluster": CLUSTER, "namespace": "default", "name": "web",
                                 "uid": "uid-web"}
        assert body["revision"] == revision and len(revision) == 32
        (listener,) = body["listeners"]
        assert [(t["name"], t["address"], t["port"]) for t in listener["targets"]] == [
            (f"node-{n}", f"127.0.106.{10 + i}", NODE_PORT) for i, n in ((1, "a"), (2, "b"),
                                                                          (3, "c"))]
        assert listener["healthCheck"]["intervalSeconds"] == 0.1
        assert item["status"]["serving"] is True and item["status"]["problems"] == []
    assert _answers(rig.vip) == _expected(servers)

    # the same spec again: nothing to write, before and after a poll
    assert programmer.plan(spec, ips) == []
    assert programmer.program(spec, ips) is None
    assert programmer.count("PUT") == []
    programmer.poll_once()
    assert programmer.count("GET") == ["lb1", "lb2"]
    assert programmer.program(spec, ips) is None
    assert programmer.count("PUT") == []

    # a target removed: exactly one PUT per daemon, and the daemons serve the new set
    smaller = _spec(servers[:2])
    assert programmer.program(smaller, ips) is None
    assert programmer.count("PUT") == ["lb1", "lb2"]
    for name in DAEMONS:
        (item,) = rig.listed(name)
        assert item["status"]["totalTargets"] == 2
        assert item["balancer"]["revision"] == balancer_body(smaller, ips, OPTIONS)["revision"]
    assert _answers(rig.vip) == _expected(servers[:2])
    assert programmer.program(smaller, ips) is None
    assert programmer.count("PUT") == []


def test_one_daemon_down_degrades_and_both_down_is_transient(make_rig: RigFactory) -> None:
    rig = make_rig(2)
    servers = rig.serve_backends()
    programmer = rig.programmer()
    spec = _spec(servers)
    rig.stop("lb2")
    reason = programmer.program(spec, (rig.vip,))
    assert reason is not None and reason.startswith("balancer lb2 unreachable: ")
    assert "lb1" not in reason
    assert rig.names("lb1") == ["lb-web"]
    assert _answers(rig.vip) == _expected(servers)  # lb1 carries the traffic alone
    programmer.poll_once()
    assert programmer.targets(spec.name) == TargetHealth(3, 3)  # lb1's view: lb2 says nothing
    rig.stop("lb1")
    programmer.poll_once()  # both unreachable: nothing is known to be served any more
    with pytest.raises(TransientError) as info:
        programmer.program(spec, (rig.vip,))
    message = str(info.value)
    assert message.startswith("no balancer daemon took the balancer: balancer lb1 unreachable: ")
    assert "; balancer lb2 unreachable: " in message
    with pytest.raises(OSError):
        _get(f"http://{rig.vip}:{VIP_PORT}/")


def test_daemon_that_lost_its_state_is_noticed_and_reprogrammed(make_rig: RigFactory) -> None:
    rig = make_rig(3)
    servers = rig.serve_backends()
    programmer = rig.programmer()
    notified: list[BalancerRef] = []
    programmer.subscribe(notified.append)
    spec = _spec(servers)
    assert programmer.program(spec, (rig.vip,)) is None
    programmer.poll_once()
    assert notified == []  # steady state: nothing to look at again
    rig.stop("lb2")
    rig.start("lb2", state=rig.state("lb2", generation=1))  # a new host: no state file
    assert rig.names("lb2") == []
    programmer.poll_once()
    assert notified == [spec.ref]
    programmer.count("PUT")
    assert programmer.program(spec, (rig.vip,)) is None
    assert programmer.count("PUT") == ["lb2"]
    assert rig.names("lb2") == ["lb-web"]
    programmer.poll_once()
    assert notified == [spec.ref]


def test_target_down_is_noticed_and_reported_naming_the_node(make_rig: RigFactory) -> None:
    rig = make_rig(4)
    servers = rig.serve_backends()
    programmer = rig.programmer()
    notified: list[BalancerRef] = []
    programmer.subscribe(notified.append)
    spec = _spec(servers)
    assert programmer.program(spec, (rig.vip,)) is None
    _shut(servers[2])
    rig.backends = servers[:2]
    def noticed() -> bool:
        return all(rig.listed(n)[0]["status"]["healthyTargets"] == 2 for n in DAEMONS)

    _wait(noticed)
    programmer.poll_once()
    assert notified == [spec.ref]  # once, though both daemons changed
    assert programmer.targets(spec.name) == TargetHealth(2, 3)  # the polled reports' counts
    programmer.count("PUT")
    reason = programmer.program(spec, (rig.vip,))
    assert programmer.count("PUT") == []
    assert reason == ("balancer lb1: 2 of 3 targets healthy; down: node-c; "
                      "balancer lb2: 2 of 3 targets healthy; down: node-c")
    assert _answers(rig.vip) == _expected(servers[:2])


def test_wrong_token_is_refused_and_programs_nothing(make_rig: RigFactory) -> None:
    rig = make_rig(5)
    servers = rig.serve_backends()
    programmer = rig.programmer()
    for name in DAEMONS:
        rig.client_token(name).write_text("not-the-token\n")
    spec = _spec(servers)
    with pytest.raises(TransientError) as info:
        programmer.program(spec, (rig.vip,))
    assert str(info.value) == ("no balancer daemon took the balancer: balancer lb1 refused our "
                               "token (401); balancer lb2 refused our token (401)")
    assert rig.names("lb1") == rig.names("lb2") == []
    rig.client_token("lb1").write_text(rig.token("lb1"))
    assert programmer.program(spec, (rig.vip,)) == "balancer lb2 refused our token (401)"
    assert (rig.names("lb1"), rig.names("lb2")) == (["lb-web"], [])


def test_unprogram_deletes_everywhere_and_collects_what_a_down_daemon_kept(
        make_rig: RigFactory, caplog: pytest.LogCaptureFixture) -> None:
    rig = make_rig(6)
    servers = rig.serve_backends()
    programmer = rig.programmer()
    spec = _spec(servers)
    assert programmer.program(spec, (rig.vip,)) is None
    programmer.count("DELETE")
    with caplog.at_level(logging.WARNING, logger="providers.baremetal.daemons"):
        programmer.unprogram(spec.ref)
        assert programmer.count("DELETE") == ["lb1", "lb2"]
        assert rig.names("lb1") == rig.names("lb2") == []
        programmer.unprogram(spec.ref)  # 404 everywhere: success, no complaint
        assert programmer.count("DELETE") == ["lb1", "lb2"]
    assert caplog.records == []
    assert list(programmer.programmed()) == []
    with pytest.raises(OSError):
        _get(f"http://{rig.vip}:{VIP_PORT}/")

    # one daemon down while the Service goes away: its copy is an orphan until collected
    assert programmer.program(spec, (rig.vip,)) is None
    other = {"name": "lb-other", "vip": "127.0.107.250", "listeners": [{"port": VIP_PORT}],
             "owner": {"cluster": "another", "namespace": "x", "name": "y", "uid": "u"}}
    assert rig.api("lb2", "PUT", "/v1/balancers/lb-other", other)[0] == 200
    rig.stop("lb2")
    with caplog.at_level(logging.WARNING, logger="providers.baremetal.daemons"):
        programmer.unprogram(spec.ref)
    assert [r.getMessage().split(": ")[0] for r in caplog.records] == ["balancer lb2 unreachable"]
    assert caplog.records[0].getMessage().endswith(
        "; its copy of lb-web is collected as an orphan when it is back")
    assert rig.names("lb1") == []
    notified: list[BalancerRef] = []
    programmer.subscribe(notified.append)
    programmer.poll_once()
    assert notified == []  # lb2 is down: nothing to see yet
    rig.start("lb2")  # back, with its state file
    assert rig.names("lb2") == ["lb-web", "lb-other"]
    programmer.poll_once()  # the poll that sees it back tells the controller (orphans)
    assert notified == [spec.ref]  # once, and only this cluster's
    programmer.poll_once()
    assert notified == [spec.ref]
    assert list(programmer.programmed()) == [spec.ref]  # only this cluster's
    programmer.unprogram(spec.ref)
    assert rig.names("lb2") == ["lb-other"]
    assert list(programmer.programmed()) == []


# --- BaremetalProvider --------------------------------------------------------------------------


class OneService(StaticView):
    """A ClusterView holding the Services the test adds."""

    def add(self, spec: LoadBalancerSpec) -> None:
        ref = spec.ref.service
        self.by_key[ref.key] = ServiceView(
            namespace=ref.namespace, name=ref.name, uid=ref.uid, resource_version="1",
            type="LoadBalancer",
            ports=tuple(ServicePort(li.name, li.protocol, li.port, li.node_port, li.port)
                        for li in spec.listeners))


def test_provider_end_to_end(make_rig: RigFactory) -> None:
    rig = make_rig(7)
    servers = rig.serve_backends()
    cluster = OneService()
    provider = create(_settings(rig), CLUSTER, cluster)
    try:
        assert provider.problems == ()
        assert provider.ip_mode == "Proxy"
        spec = _spec(servers)
        cluster.add(spec)
        assert provider.plan(spec) == [
            f'allocate {rig.vip} from pool "lbs"',
            f"program balancer lb-web on daemon lb1 ({rig.vip})",
            f"program balancer lb-web on daemon lb2 ({rig.vip})"]
        status = provider.ensure(spec)
        assert status.ingress == (IngressPoint(ip=rig.vip, ip_mode="Proxy"),)
        assert status.ports == (PortStatus(VIP_PORT, "TCP"),)
        assert status.degraded is None
        assert status.details == (("addressPools", "lbs"),)
        assert provider.plan(spec) == []
        for name in DAEMONS:
            (item,) = rig.listed(name)
            assert item["balancer"]["vips"] == [rig.vip]
            assert item["balancer"]["listeners"][0]["healthCheck"]["intervalSeconds"] == 0.1
        assert _answers(rig.vip) == _expected(servers)
        assert list(provider.list_owned()) == [spec.ref]
        provider.delete(spec.ref)
        assert rig.names("lb1") == rig.names("lb2") == []
        assert provider.observe(spec.ref) is None
        assert list(provider.list_owned()) == []
        with pytest.raises(OSError):
            _get(f"http://{rig.vip}:{VIP_PORT}/")
        provider.delete(spec.ref)  # idempotent
    finally:
        provider.close()


def test_concurrent_workers_reuse_connections_without_discarding_any(
        make_rig: RigFactory, caplog: pytest.LogCaptureFixture) -> None:
    """16 workers programming at once: urllib3's default pool (one connection per host) would
    drop 15 of them after each request with "Connection pool is full"."""
    rig = make_rig(9)
    servers = rig.serve_backends()
    programmer = rig.programmer()
    specs = [dataclasses.replace(_spec(servers, f"w{i}"), listeners=(
        Listener("http", "TCP", VIP_PORT + 100 + i, NODE_PORT),)) for i in range(16)]
    caplog.set_level(logging.WARNING, logger="urllib3")
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda s: programmer.program(s, (rig.vip,)), specs))
    assert results == [None] * 16
    assert sorted(programmer.count("PUT")) == sorted(list(DAEMONS) * 16)  # all 32 were sent
    assert [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()] == []
