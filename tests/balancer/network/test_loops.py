"""A forwarding loop the model cannot see is cut at its first turn (`lbctl.balancer.loops`).

In a namespace of its own, a DNAT rule sends 10.9.9.9:80 to the VIP 10.9.9.40:18140, and the
daemon serves that VIP with the single target 10.9.9.9:80: valid as far as the model can tell,
a loop in fact. Without the guard each client connection opens another one to the VIP, and so
on until the file descriptors run out. With it, the daemon refuses the connection coming back
from its own socket: one refusal per client connection (which proves the loop was reached
and cut), the daemon's fds flat, and its API still answering.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.balancer.network.conftest import Namespaces, Netns, wait_until
from tests.conftest import unavailable

pytestmark = pytest.mark.integration

LBCTL = Path(sys.executable).with_name("lbctl")
VIP, PORT, HIDDEN, API = "10.9.9.40", 18140, "10.9.9.9", 19450
CONFIG = f"""
balancers:
  - name: loop
    vip: {VIP}
    listeners:
      - protocol: TCP
        port: {PORT}
        targets: ["{HIDDEN}:80"]
        healthCheck: {{type: none}}
      - protocol: UDP
        port: {PORT}
        targets: ["{HIDDEN}:81"]
        healthCheck: {{type: none}}
"""
RULES = f"""
table ip hidden {{
  chain out {{
    type nat hook output priority -100;
    ip daddr {HIDDEN} tcp dport 80 dnat to {VIP}:{PORT}
    ip daddr {HIDDEN} udp dport 81 dnat to {VIP}:{PORT}
  }}
}}
"""


def _fds(pid: int) -> int:
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


def _metrics(ns: Netns) -> dict[str, float]:
    with ns.inside():
        sock = socket.create_connection(("127.0.0.1", API), timeout=5)
    sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    out: dict[str, float] = {}
    for line in data.decode().split("\r\n\r\n", 1)[1].splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


@pytest.fixture
def looped(namespaces: Namespaces, tmp_path: Path) -> Iterator[tuple[Netns, int]]:
    if not LBCTL.exists():
        unavailable(f"{LBCTL} not found (install the project into its venv)")
    ns = namespaces.new(f"loop{len(namespaces.all)}")
    ns.ip("addr", "add", f"{HIDDEN}/32", "dev", "lo")
    ns.ip("addr", "add", f"{VIP}/32", "dev", "lo")
    (tmp_path / "rules.nft").write_text(RULES)
    ns.run("nft", "-f", str(tmp_path / "rules.nft"))
    (tmp_path / "balancers.yaml").write_text(CONFIG)
    proc = ns.popen(str(LBCTL), "balancer", "serve", "--config", str(tmp_path / "balancers.yaml"),
                    "--api-listen", f"127.0.0.1:{API}", "--kernel-dataplane", "off")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("balancer ready"):
        ns.stop(proc)
        raise AssertionError(f"daemon did not start: {line!r}")
    try:
        yield ns, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        ns.stop(proc)


def test_a_loop_through_a_nat_rule_is_refused_at_its_first_turn(
        looped: tuple[Netns, int]) -> None:
    ns, daemon = looped  # `ip netns exec` execs the command: its pid is the daemon's
    fds_before = _fds(daemon)
    key = ('lbctl_balancer_refused_total{balancer="loop",port="18140",protocol="TCP",'
           'reason="loop"}')
    assert _metrics(ns)[key] == 0
    clients = 50
    for _ in range(clients):
        with ns.inside():
            sock = socket.create_connection((VIP, PORT), timeout=5)
        sock.settimeout(5)
        assert sock.recv(100) == b""  # nothing answers a loop; it is closed, not left hanging
        sock.close()
    # Each client connection came back exactly once, from the daemon's own socket, and was cut.
    wait_until(lambda: _metrics(ns)[key] == clients, timeout=10)
    stats = _metrics(ns)
    accepted = stats['lbctl_balancer_connections_total{balancer="loop",port="18140",'
                     'protocol="TCP"}']
    assert accepted == clients  # the loop's connections are refused before they count
    wait_until(lambda: _fds(daemon) <= fds_before + 2, timeout=10)
    with ns.inside():
        health = socket.create_connection(("127.0.0.1", API), timeout=5)
    health.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
    assert health.recv(100).startswith(b"HTTP/1.0 200")
    health.close()


def test_a_udp_loop_through_a_nat_rule_is_dropped_at_its_first_turn(
        looped: tuple[Netns, int]) -> None:
    ns, _daemon = looped
    key = ('lbctl_balancer_refused_total{balancer="loop",port="18140",protocol="UDP",'
           'reason="loop"}')
    assert _metrics(ns)[key] == 0
    clients = 20
    for _ in range(clients):
        sock = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.sendto(b"ping", (VIP, PORT))
        sock.close()
    # One flow per client; each flow's datagram came back from the daemon's own socket once.
    wait_until(lambda: _metrics(ns)[key] == clients, timeout=10)
    flows = _metrics(ns)['lbctl_balancer_connections_total{balancer="loop",port="18140",'
                         'protocol="UDP"}']
    assert flows == clients
