"""`--workers N`: several processes serve one VIP:port (SO_REUSEPORT), the daemon stays the brain.

On loopback: backends are HTTP servers on 127.0.106.x naming themselves, VIPs on 127.0.107.x.
The daemon runs in a thread (`DaemonThread`) so the tests can look at its worker pool; the
workers are real processes (`python -m lbctl.balancer.worker`).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from lbctl.balancer.daemon import Daemon, DaemonThread, ServeOptions
from lbctl.balancer.model import parse_balancer
from tests.helpers import named_backend

pytestmark = pytest.mark.integration

VIP = "127.0.107.1"
KEY = ("TCP", VIP, 18180)


@pytest.fixture
def backends() -> Iterator[list[ThreadingHTTPServer]]:
    servers = [named_backend(f"127.0.106.{i}") for i in (1, 2, 3)]
    yield servers
    for s in servers:
        s.shutdown()
        s.server_close()


def _balancer(servers: list[ThreadingHTTPServer], interval: float = 0.2) -> Any:
    return parse_balancer({"name": "web", "vip": VIP, "drainSeconds": 0, "listeners": [{
        "protocol": "TCP", "port": KEY[2],
        "targets": [f"{s.server_address[0]!s}:{s.server_address[1]}" for s in servers],
        "healthCheck": {"type": "tcp", "intervalSeconds": interval, "timeoutSeconds": 0.5,
                        "healthyThreshold": 1, "unhealthyThreshold": 1}}]})


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonThread]:
    thread = DaemonThread(ServeOptions(api_listen="127.0.0.1:0", workers=3,
                                       state_file=tmp_path / "state.json"))
    thread.start()
    yield thread
    thread.stop()


def _program(thread: DaemonThread, balancer: Any) -> Daemon:
    d = thread.daemon
    assert d is not None
    d.store.put(balancer)
    thread.call(d.apply())
    return d


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def _requests(n: int) -> Counter[str]:
    """n GETs through the VIP, each on a new connection; every one must succeed."""
    return Counter(_get(f"http://{VIP}:{KEY[2]}/") for _ in range(n))


def _until(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _listeners(port: int) -> int:
    """LISTEN sockets on port in /proc/net/tcp (every process of the SO_REUSEPORT group)."""
    hexport = f":{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1].endswith(hexport) and
               line.split()[3] == "0A")


def _worker_connections(d: Daemon) -> list[int]:
    assert d.dataplane.workers is not None
    return [w.frontends[KEY].stats.connections if KEY in w.frontends else 0
            for w in d.dataplane.workers.workers]


def _metric(d: Daemon, name: str) -> float:
    text = generate_latest(d.registry).decode()
    found = re.search(rf'^{name}{{balancer="web",port="{KEY[2]}",protocol="TCP"}} (\S+)$',
                      text, re.M)
    assert found, f"{name} not in the metrics"
    return float(found.group(1))


def test_every_process_binds_the_vip_and_takes_connections(
        daemon: DaemonThread, backends: list[ThreadingHTTPServer]) -> None:
    d = _program(daemon, _balancer(backends))
    assert d.dataplane.workers is not None and d.dataplane.workers.alive() == 2
    assert _listeners(KEY[2]) == 3  # the daemon and its two workers
    answered = _requests(300)
    assert sum(answered.values()) == 300
    assert len(answered) == 3  # every backend got traffic
    # the kernel spread the connections: each worker took some (the daemon took the rest)
    _until("worker counters", lambda: sum(_worker_connections(d)) +
           d.dataplane.running[KEY].stats.connections == 300)
    assert all(n > 0 for n in _worker_connections(d)), _worker_connections(d)
    assert _metric(d, "lbctl_balancer_connections_total") == 300


def test_a_verdict_reaches_every_worker(daemon: DaemonThread,
                                        backends: list[ThreadingHTTPServer]) -> None:
    d = _program(daemon, _balancer(backends))
    dead = backends[0]
    host, port = dead.server_address[0], dead.server_address[1]
    dead.shutdown()
    dead.server_close()
    target = (str(host), int(port))
    _until("the daemon's verdict", lambda: not d.dataplane.health.is_up(target))
    time.sleep(1.5)  # one stats report from every worker after the verdict
    assert d.dataplane.workers is not None

    def totals() -> list[int]:
        assert d.dataplane.workers is not None
        return [w.frontends[KEY].targets[target][1] for w in d.dataplane.workers.workers]

    before = totals()
    took_before = _worker_connections(d)
    answered = _requests(200)
    # every answer came from a live backend (the dead one cannot answer: what matters is that
    # none of the 200 was sent its way, checked below, and that nothing failed)
    assert sum(answered.values()) == 200
    assert set(answered) == {f"backend {b.server_address[0]!s}\n" for b in backends[1:]}
    # the workers did carry some of them, so "nothing sent to the dead target" is their doing
    _until("worker counters", lambda: sum(_worker_connections(d)) > sum(took_before))
    time.sleep(1.5)
    took = [after - b for after, b in zip(_worker_connections(d), took_before, strict=True)]
    assert all(n > 0 for n in took), took
    assert totals() == before  # no worker sent a connection to the dead target


def test_a_workers_failed_connect_ejects_the_target_for_everyone(
        tmp_path: Path, backends: list[ThreadingHTTPServer]) -> None:
    thread = DaemonThread(ServeOptions(workers=2, state_file=tmp_path / "state.json"))
    thread.start()
    try:
        d = _program(thread, _balancer(backends, interval=60.0))  # probes will not notice
        # Only the worker listens from now on, so only its report can eject the target.
        thread.call(d.dataplane.running[KEY].frontend.stop())
        assert _listeners(KEY[2]) == 1
        dead = backends[1]
        target = (str(dead.server_address[0]), int(dead.server_address[1]))
        dead.shutdown()
        dead.server_close()
        answered = _requests(30)  # the worker retries the failed connect elsewhere
        assert sum(answered.values()) == 30
        _until("the ejection", lambda: not d.dataplane.health.is_up(target))
        assert d.dataplane.health.ejections_total == 1
        assert d.dataplane.running[KEY].stats.connect_failures == 0  # not the daemon's own
        assert d.dataplane.workers is not None
        worker = d.dataplane.workers.workers[0]
        _until("the worker's failure count",
               lambda: KEY in worker.frontends and worker.frontends[KEY].targets[target][2] > 0)
        assert _metric(d, "lbctl_balancer_connect_failures_total") >= 1
    finally:
        thread.stop()


def test_a_killed_worker_is_restarted_and_the_counters_never_go_back(
        daemon: DaemonThread, backends: list[ThreadingHTTPServer]) -> None:
    d = _program(daemon, _balancer(backends))
    pool = d.dataplane.workers
    assert pool is not None
    _requests(100)
    _until("counters", lambda: _metric(d, "lbctl_balancer_connections_total") == 100)
    victim = pool.workers[0]
    assert victim.proc is not None
    old_pid = victim.proc.pid
    os.kill(old_pid, signal.SIGKILL)
    _until("the restart", lambda: victim.proc is not None and victim.proc.pid != old_pid
           and pool.alive() == 2 and _listeners(KEY[2]) == 3)
    assert pool.restarts == 1
    assert _metric(d, "lbctl_balancer_connections_total") == 100  # the dead one's kept
    answered = _requests(200)
    assert sum(answered.values()) == 200
    _until("the new worker serving", lambda: KEY in victim.frontends and
           victim.frontends[KEY].stats.connections > 0)
    _until("counters", lambda: _metric(d, "lbctl_balancer_connections_total") == 300)


def test_stopping_the_daemon_stops_its_workers(
        tmp_path: Path, backends: list[ThreadingHTTPServer]) -> None:
    thread = DaemonThread(ServeOptions(workers=3, state_file=tmp_path / "state.json"))
    thread.start()
    d = _program(thread, _balancer(backends))
    assert d.dataplane.workers is not None
    pids = [w.proc.pid for w in d.dataplane.workers.workers if w.proc is not None]
    assert len(pids) == 2
    thread.stop()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    assert _listeners(KEY[2]) == 0


def test_udp_flows_are_spread_and_each_stays_in_one_process(daemon: DaemonThread) -> None:
    """The kernel hashes each UDP 4-tuple to one socket of the group: every flow gets its
    answers, and the flows land in more than one process."""
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.106.9", 0))
    stop = threading.Event()

    def serve() -> None:
        echo.settimeout(0.1)
        while not stop.is_set():
            try:
                data, peer = echo.recvfrom(2048)
            except TimeoutError:
                continue
            echo.sendto(data, peer)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    key = ("UDP", VIP, 18181)
    d = _program(daemon, parse_balancer({"name": "dns", "vip": VIP, "listeners": [{
        "protocol": "UDP", "port": key[2], "targets": [f"127.0.106.9:{echo.getsockname()[1]}"],
        "healthCheck": {"type": "none"}}]}))
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(40)]
    try:
        for i, client in enumerate(clients):
            client.settimeout(5)
            for n in range(3):  # several datagrams per flow, all answered in order
                client.sendto(b"%d-%d" % (i, n), (VIP, key[2]))
                assert client.recvfrom(2048)[0] == b"%d-%d" % (i, n)
        assert d.dataplane.workers is not None
        pool = d.dataplane.workers
        _until("worker flow counts", lambda: sum(
            w.frontends[key].stats.connections for w in pool.workers if key in w.frontends)
            + d.dataplane.running[key].stats.connections == 40)
        per_process = [d.dataplane.running[key].stats.connections, *(
            w.frontends[key].stats.connections for w in pool.workers)]
        assert sum(1 for n in per_process if n) >= 2, per_process  # spread
    finally:
        stop.set()
        server.join()
        for client in clients:
            client.close()
        echo.close()


def _children(pid: int, module: str) -> list[int]:
    """The children of `pid` running `python -m <module>`."""
    found = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [c for c in found
            if module in Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ").decode()]


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL", "SIGTERM to the group"])
def test_serve_workers_leave_with_the_daemon(tmp_path: Path, backends: list[ThreadingHTTPServer],
                                             how: str) -> None:
    """`lbctl balancer serve --workers 3`: SIGTERM stops all three in order; after a SIGKILL
    of the daemon its workers see EOF and exit too (no orphan keeps the VIP); a SIGTERM to the
    whole process group (systemd's default) is a stop, not three crashed workers to restart.
    The health checker's process leaves with them in every case."""
    config = tmp_path / "balancers.yaml"
    targets = ", ".join(f'"{s.server_address[0]!s}:{s.server_address[1]}"' for s in backends)
    config.write_text(f"balancers:\n- name: web\n  vip: {VIP}\n  listeners:\n"
                      f"  - {{protocol: TCP, port: {KEY[2]}, targets: [{targets}]}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "lbctl", "balancer", "serve", "--config",
                             str(config), "--workers", "3"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith("balancer ready: 1 balancers")
        workers = _children(proc.pid, "lbctl.balancer.worker")
        assert len(workers) == 2
        checker = _children(proc.pid, "lbctl.balancer.checker")
        assert len(checker) == 1
        _until("every process listening", lambda: _listeners(KEY[2]) == 3)
        assert sum(_requests(30).values()) == 30
        if how == "SIGTERM to the group":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGKILL)
        _out, err = proc.communicate(timeout=30)
        if how != "SIGKILL":
            assert proc.returncode == 0, err
            assert "restarting" not in err, err
        _until("the workers' exit", lambda: all(_gone(pid) for pid in [*workers, *checker]))
        assert _listeners(KEY[2]) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_names_a_bad_workers_value() -> None:
    proc = subprocess.run([sys.executable, "-m", "lbctl", "balancer", "serve", "--api-listen",
                           "127.0.0.1:0", "--workers", "0"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2
    assert "--workers" in proc.stderr and "'0' is not 'auto' or a number 1..64" in proc.stderr


def test_serve_raises_its_open_files_limit(tmp_path: Path) -> None:
    """Started with a soft RLIMIT_NOFILE of 256 (below its hard limit), the daemon runs with
    the hard limit as its soft one: a few hundred clients no longer exhaust it."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.fail(f"this machine's hard open files limit ({hard}) leaves nothing to raise")
    config = tmp_path / "balancers.yaml"
    config.write_text(f"balancers:\n- name: web\n  vip: {VIP}\n  listeners:\n"
                      f"  - {{protocol: TCP, port: {KEY[2]}, targets: [\"127.0.106.9:30080\"]}}\n")

    def low() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    proc = subprocess.Popen([sys.executable, "-m", "lbctl", "balancer", "serve", "--config",
                             str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=low)  # noqa: PLW1509 (no threads: a test)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("balancer ready")
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        soft = next(line.split()[3] for line in limits.splitlines()
                    if line.startswith("Max open files"))
        assert int(soft) == hard
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "open files limit raised from 256" in err, err
