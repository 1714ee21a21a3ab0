"""The nftables data plane on a real kernel: client -> balancer -> three nodes, in namespaces.

Topology (all namespaces ours, `lbn-<token>-*`):

    client 10.98.0.2, .3 / fd98::2  --veth--  lb 10.98.0.1 / fd98::1   (ip_forward=1)
                                              lb bridge 10.98.1.1 / fd98:1::1
                                                |-- node1 10.98.1.11 / fd98:1::11
                                                |-- node2 10.98.1.12 / fd98:1::12
                                                `-- node3 10.98.1.13 / fd98:1::13

The VIPs (10.98.0.100, 10.98.0.101, fd98:f::100) are on no interface: the client routes them to
the balancer and DNAT in prerouting does the rest. Each node serves TCP 30080 (says its name,
then echoes lines) and UDP 30053 (answers its name). Health verdicts come from the test's own
`is_up`, as the daemon's HealthChecker would deliver them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import socket
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from lbctl.balancer.model import BalancerConfig, parse_balancer
from lbctl.balancer.nft import NftablesDataplane
from tests.balancer.network.conftest import Namespaces, Netns, start_server, veth, wait_until
from tests.conftest import unavailable

pytestmark = pytest.mark.network

VIP, STICKY_VIP, VIP6 = "10.98.0.100", "10.98.0.101", "fd98:f::100"
CLIENT, OUTSIDER, CLIENT6 = "10.98.0.2", "10.98.0.3", "fd98::2"
NODES = {f"node{i}": (f"10.98.1.1{i}", f"fd98:1::1{i}") for i in (1, 2, 3)}
TCP_PORT, UDP_PORT = 30080, 30053


def targets(port: int) -> list[str]:
    return [a for v4, v6 in NODES.values() for a in (f"{v4}:{port}", f"[{v6}]:{port}")]


WEB = parse_balancer({
    "name": "web", "vips": [VIP, VIP6], "sourceRanges": [f"{CLIENT}/32", "fd98::/64"],
    "listeners": [{"port": 80, "targets": targets(TCP_PORT)},
                  {"protocol": "UDP", "port": 53, "targets": targets(UDP_PORT)}]})
STICKY = parse_balancer({
    "name": "sticky", "vip": STICKY_VIP, "sessionAffinity": "ClientIP",
    "listeners": [{"port": 80, "targets": targets(TCP_PORT)}]})


@dataclass
class Lab:
    client: Netns
    lb: Netns
    nodes: dict[str, Netns]
    dp: NftablesDataplane
    servers: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    """Node names the 'health checks' report down."""

    def is_up(self, key: tuple[str, int]) -> bool:
        return not any(key[0] in NODES[name] for name in self.down)

    def apply(self, *balancers: BalancerConfig) -> float:
        return self.dp.apply(list(balancers) or [WEB, STICKY], self.is_up)

    def serve(self, name: str) -> None:
        self.servers[name] = start_server(self.nodes[name], name, TCP_PORT, UDP_PORT)

    def kill(self, name: str) -> None:
        self.nodes[name].stop(self.servers.pop(name))

    # -- traffic from the client namespace ------------------------------------------------
    def connect(self, vip: str = VIP, *, source: str = CLIENT, sport: int = 0,
                timeout: float = 2.0) -> tuple[socket.socket, str]:
        """A TCP connection through the balancer and the node that answered."""
        family = socket.AF_INET6 if ":" in vip else socket.AF_INET
        sock = self.client.socket(family)
        sock.settimeout(timeout)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((source, sport))
            sock.connect((vip, 80))
            return sock, read_line(sock)
        except BaseException:
            sock.close()
            raise

    def node_of_flow(self, sport: int) -> str:
        """Which node a fixed (CLIENT, sport) flow reaches; closed with RST (no TIME_WAIT),
        so the same flow can be asked again and is NAT'd afresh."""
        sock, node = self.connect(sport=sport)
        abort(sock)
        return node

    def udp(self, vip: str = VIP, *, source: str = CLIENT, timeout: float = 2.0) -> str | None:
        family = socket.AF_INET6 if ":" in vip else socket.AF_INET
        with self.client.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.bind((source, 0))
            sock.sendto(b"hi", (vip, 53))
            try:
                return sock.recv(100).decode()
            except TimeoutError:
                return None


def reachable(ns: Netns, address: str) -> bool:
    with ns.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((address, TCP_PORT)) == 0


def read_line(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(100)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    return data.decode().strip()


def echo(sock: socket.socket, text: str) -> str:
    sock.sendall(f"{text}\n".encode())
    return read_line(sock)


def abort(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.fixture(scope="module")
def lab(namespaces: Namespaces) -> Iterator[Lab]:
    if shutil.which("nft") is None:
        unavailable("the nft binary is not installed (Debian: nftables)")
    client, lb = namespaces.new("client"), namespaces.new("lb")
    veth(client, "eth0", lb, "c0")
    client.ip("addr", "add", f"{CLIENT}/24", "dev", "eth0")
    client.ip("addr", "add", f"{OUTSIDER}/24", "dev", "eth0")
    client.ip("addr", "add", f"{CLIENT6}/64", "dev", "eth0", "nodad")
    client.ip("route", "add", f"{VIP}/31", "via", "10.98.0.1")
    client.ip("-6", "route", "add", "fd98:f::/64", "via", "fd98::1")
    lb.ip("addr", "add", "10.98.0.1/24", "dev", "c0")
    lb.ip("addr", "add", "fd98::1/64", "dev", "c0", "nodad")
    lb.ip("link", "add", "br0", "type", "bridge")
    lb.ip("link", "set", "br0", "up")
    lb.ip("addr", "add", "10.98.1.1/24", "dev", "br0")
    lb.ip("addr", "add", "fd98:1::1/64", "dev", "br0", "nodad")
    lb.sysctl("net.ipv4.ip_forward", "1")
    lb.sysctl("net.ipv6.conf.all.forwarding", "1")
    nodes: dict[str, Netns] = {}
    for name, (v4, v6) in NODES.items():
        node = nodes[name] = namespaces.new(name)
        veth(node, "eth0", lb, name)
        lb.ip("link", "set", name, "master", "br0")
        node.ip("addr", "add", f"{v4}/24", "dev", "eth0")
        node.ip("addr", "add", f"{v6}/64", "dev", "eth0", "nodad")
        node.ip("route", "add", "default", "via", "10.98.1.1")
        node.ip("-6", "route", "add", "default", "via", "fd98:1::1")
    ok, why = NftablesDataplane.available(netns=lb.name)
    assert ok, why
    lab = Lab(client, lb, nodes, NftablesDataplane(netns=lb.name))
    for name in NODES:
        lab.serve(name)
    for v4, _ in NODES.values():  # the bridge forwards before the first test
        wait_until(functools.partial(reachable, lb, v4))
    assert lab.apply() < 5
    yield lab
    lab.dp.clear()


def test_tcp_and_udp_through_the_vip_reach_every_node(lab: Lab) -> None:
    tcp: Counter[str] = Counter()
    for _ in range(30):
        sock, node = lab.connect()
        with sock:
            assert echo(sock, "ping") == f"{node} ping"
        tcp[node] += 1
    assert set(tcp) == set(NODES), tcp
    udp = Counter(lab.udp() for _ in range(30))
    assert set(udp) == set(NODES), udp
    table = lab.dp.current()
    assert table is not None
    assert {o["table"]["name"] for o in table["nftables"] if "table" in o} == {"lbctl"}


def test_ipv6_vip(lab: Lab) -> None:
    seen = set()
    for _ in range(20):
        sock, node = lab.connect(VIP6, source=CLIENT6)
        sock.close()
        seen.add(node)
    assert len(seen) >= 2, seen
    assert lab.udp(VIP6, source=CLIENT6) in NODES


def test_source_ranges_refuse_an_outside_client(lab: Lab) -> None:
    with pytest.raises(TimeoutError):  # dropped, like a cloud firewall: no answer at all
        lab.connect(source=OUTSIDER, timeout=1.0)
    assert lab.udp(source=OUTSIDER, timeout=1.0) is None
    sock, node = lab.connect(source=CLIENT)
    sock.close()
    assert node in NODES
    sock, node = lab.connect(STICKY_VIP, source=OUTSIDER)  # no ranges on this balancer
    sock.close()
    assert node in NODES


def test_client_ip_affinity_keeps_a_client_on_one_node(lab: Lab) -> None:
    for source in (CLIENT, OUTSIDER):
        nodes = set()
        for _ in range(15):
            sock, node = lab.connect(STICKY_VIP, source=source)
            sock.close()
            nodes.add(node)
        assert len(nodes) == 1, (source, nodes)


def test_a_node_dying_moves_only_its_own_flows(lab: Lab) -> None:
    # below the ephemeral range (32768-60999), so no connection of the test's own (sport 0)
    # can hold one of these 4-tuples when a flow is asked again (EADDRNOTAVAIL)
    flows = range(21000, 21048)
    before = {sport: lab.node_of_flow(sport) for sport in flows}
    assert {sport: lab.node_of_flow(sport) for sport in flows} == before  # deterministic
    assert set(before.values()) == set(NODES)
    held = [lab.connect() for _ in range(12)]
    try:
        assert lab.apply() < 5  # the same rules again: conntrack keeps every connection
        for sock, node in held:
            assert echo(sock, "again") == f"{node} again"
        lab.down.add("node2")
        lab.kill("node2")
        assert lab.apply() < 5
        survivors = [(s, n) for s, n in held if n != "node2"]
        assert survivors
        for sock, node in survivors:
            assert echo(sock, "still") == f"{node} still"
        after = {sport: lab.node_of_flow(sport) for sport in flows}
        for sport, node in before.items():
            if node == "node2":
                assert after[sport] in ("node1", "node3")
            else:
                assert after[sport] == node, f"flow :{sport} moved {node} -> {after[sport]}"
        fresh: Counter[str] = Counter()
        for _ in range(30):
            sock, node = lab.connect()
            sock.close()
            fresh[node] += 1
        assert set(fresh) == {"node1", "node3"}, fresh
    finally:
        for sock, _ in held:
            sock.close()
        if "node2" not in lab.servers:
            lab.serve("node2")
        lab.down.clear()
        lab.apply()
    assert {sport: lab.node_of_flow(sport) for sport in flows} == before  # node2 back


def test_no_healthy_target_refuses_at_once(lab: Lab) -> None:
    lab.down.update(NODES)
    try:
        lab.apply()
        with pytest.raises(ConnectionRefusedError):
            lab.connect(timeout=2.0)
    finally:
        lab.down.clear()
        lab.apply()
    sock, _ = lab.connect()
    sock.close()


PROBE = """
import json
from lbctl.balancer.model import parse_balancer
from lbctl.balancer.nft import NftablesDataplane, NftError
ok, why = NftablesDataplane.available()
try:
    NftablesDataplane().apply([parse_balancer({"name": "x", "vip": "10.0.0.1",
                               "listeners": [{"port": 80, "targets": ["10.0.0.2:80"]}]})],
                              lambda key: True)
    applied = "applied"
except NftError as exc:
    applied = str(exc)
print(json.dumps([ok, why, applied]))
"""


def test_without_net_admin_it_reports_why_and_creates_nothing(namespaces: Namespaces) -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        unavailable("setpriv (util-linux) is needed to drop CAP_NET_ADMIN")
    ns = namespaces.new("nocap")
    result = ns.run(setpriv, "--inh-caps=-net_admin", "--bounding-set=-net_admin", "--",
                    sys.executable, "-c", PROBE, timeout=30)
    ok, why, applied = json.loads(result.stdout)
    assert not ok
    assert why == "CAP_NET_ADMIN is not in the effective capability set"
    assert applied != "applied" and "Operation not permitted" in applied
    dp = NftablesDataplane(netns=ns.name)
    assert dp.current() is None
    with contextlib.suppress(Exception):
        listing: Any = json.loads(ns.run("nft", "-j", "list", "tables").stdout)
        assert not [o for o in listing["nftables"] if "table" in o]
