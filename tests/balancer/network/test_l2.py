"""L2 announcements between two balancer instances on one bridge, in network namespaces.

Topology (every namespace `lbl-<run>-*`, deleted afterwards): a bridge namespace with one veth
port per member; client 10.97.0.2 / fd97::2, instances a 10.97.0.11 and b 10.97.0.12 (each a
separate `tests.balancer.network.l2_instance` process), a rogue 10.97.0.66. VIPs 10.97.0.100 and
fd97::100. The test, in order:

1. the client learns the owner's MAC from gratuitous ARP before sending anything; exactly one
   MAC answers ARP (and NS) for the VIP; TCP to the VIP reaches the owner;
2. SIGKILL the owner: the survivor notices from heartbeats alone, takes over, and the client's
   connections resume (failover time printed; ceiling 5 s here, exact figures in bench/);
3. restart the killed instance: it removes the VIPs its crash left on lo, takes its VIP back
   (rendezvous is deterministic), and the survivor unbinds the VIP from its lo;
4. a rogue sends gratuitous ARP for the VIP: the owner reports the conflict, withdraws and
   unbinds, the peer does not take over (conflict shared in heartbeats), and after the quiet
   period the owner reclaims;
5. SIGTERM the owner: its "leaving" heartbeat hands over at once, and it unbinds on the way out.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from lbctl.balancer import l2_frames as f
from tests.conftest import unavailable as shared_unavailable

pytestmark = pytest.mark.network

ROOT = Path(__file__).resolve().parents[3]
VIP, VIP6, PORT, HB_PORT = "10.97.0.100", "fd97::100", 8080, 17946
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def unavailable(reason: str) -> NoReturn:
    shared_unavailable(f"network test: {reason}")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


def enter(ns: str) -> None:
    """Move the calling thread into namespace ns (sockets it opens then live there)."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
    finally:
        os.close(fd)


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        enter(ns)
        yield
    finally:
        _libc.setns(home, CLONE_NEWNET)
        os.close(home)


class Net:
    """The namespaces of one run; `close()` deletes them all."""

    def __init__(self) -> None:
        self.prefix = f"lbl-{secrets.token_hex(3)}-"
        self.created: list[str] = []

    def ns(self, role: str) -> str:
        return self.prefix + role

    def add(self, role: str) -> str:
        name = self.ns(role)
        sh("ip", "netns", "add", name)
        self.created.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def member(self, role: str, index: int, v4: str, v6: str) -> str:
        name, br = self.add(role), self.ns("br")
        port = f"p{index}"
        sh("ip", "-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0",
           "netns", name)
        sh("ip", "-n", br, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", name, "link", "set", "eth0", "address", f"02:97:00:00:00:{index:02x}")
        sh("ip", "-n", name, "addr", "add", f"{v4}/24", "dev", "eth0")
        sh("ip", "-n", name, "addr", "add", f"{v6}/64", "dev", "eth0", "nodad")
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        return name

    def close(self) -> None:
        for name in reversed(self.created):
            sh("ip", "netns", "pids", name, check=False)
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
            sh("ip", "netns", "del", name, check=False)


class Instance:
    """One `l2_instance` process; its JSON events collected by a reader thread."""

    def __init__(self, net: Net, name: str, peer: str, ips: dict[str, str], key: Path,
                 logs: Path) -> None:
        self.name, self.ns = name, net.ns(name)
        self.argv = ["ip", "netns", "exec", self.ns, sys.executable, "-m",
                     "tests.balancer.network.l2_instance", "--name", name, "--interface", "eth0",
                     "--listen", f"{ips[name]}:{HB_PORT}", "--peer",
                     f"{peer}={ips[peer]}:{HB_PORT}", "--key-file", str(key), "--vip", VIP,
                     "--vip", VIP6, "--port", str(PORT), "--conflict-quiet", "2"]
        self.log = logs / f"{name}.log"
        self.events: list[dict[str, Any]] = []
        self.proc: subprocess.Popen[str] | None = None
        self.mac = ""
        self._cond = threading.Condition()

    def start(self) -> dict[str, Any]:
        with self._cond:
            self.events.clear()
        with self.log.open("a") as err:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, stdout=subprocess.PIPE,
                                         stderr=err, text=True)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        started = self.wait("started", timeout=10)
        self.mac = started["mac"]
        return started

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._cond:
                self.events.append(json.loads(line))
                self._cond.notify_all()

    def wait(self, event: str, timeout: float = 5.0, since: float = 0.0,
             **match: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((e for e in self.events if e["event"] == event and e["t"] >= since
                         and all(e.get(k) == v for k, v in match.items())), None)

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"{self.name}: no {event} {match} within {timeout}s; "
                                     f"events {self.events}\n{self.log.read_text()[-3000:]}")
            hit = found()
            assert hit is not None
            return hit

    def seen(self, event: str, since: float, **match: Any) -> bool:
        with self._cond:
            return any(e["event"] == event and e["t"] >= since
                       and all(e.get(k) == v for k, v in match.items()) for e in self.events)

    def owns(self, vip: str) -> bool:
        """From the event stream: the last owned/released event for vip was 'owned'."""
        with self._cond:
            state = [e["event"] for e in self.events
                     if e["event"] in ("owned", "released") and e.get("vip") == vip]
        return bool(state) and state[-1] == "owned"

    def lo(self) -> str:
        return sh("ip", "-n", self.ns, "addr", "show", "dev", "lo").stdout

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=10)


class Prober(threading.Thread):
    """Connects to VIP:PORT from the client namespace every 20 ms, recording who answers."""

    def __init__(self, ns: str) -> None:
        super().__init__(daemon=True)
        self.ns = ns
        self.results: list[tuple[float, str | None]] = []
        self.done = threading.Event()

    def run(self) -> None:
        enter(self.ns)  # this thread only, for good
        while not self.done.is_set():
            started = time.monotonic()
            try:
                with socket.create_connection((VIP, PORT), timeout=0.2) as conn:
                    name: str | None = conn.recv(64).decode().strip() or None
            except OSError:
                name = None
            self.results.append((started, name))
            time.sleep(0.02)

    def first(self, name: str, since: float, timeout: float = 5.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hit = next((t for t, n in list(self.results) if t >= since and n == name), None)
            if hit is not None:
                return hit
            time.sleep(0.02)
        raise AssertionError(f"{name} did not answer on {VIP}:{PORT} within {timeout}s: "
                             f"{self.results[-10:]}")


def ask(ns: str, vip: str, wait: float = 0.5) -> list[str]:
    """Send one ARP request (or NS) for vip from the client; the MACs that answered."""
    v6 = ":" in vip
    with inside(ns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                             socket.htons(f.ETH_P_IPV6 if v6 else f.ETH_P_ARP))
    with sock:
        sock.bind(("eth0", f.ETH_P_IPV6 if v6 else f.ETH_P_ARP))
        sock.settimeout(0.05)
        mac = "02:97:00:00:00:01"
        sock.send(f.neighbour_solicitation(mac, "fd97::2", vip) if v6
                  else f.arp_request(mac, "10.97.0.2", vip))
        answers: list[str] = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                frame = sock.recv(2048)
            except TimeoutError:
                continue
            if v6:
                nd = f.parse_nd(frame)
                if nd and nd.kind == "na" and nd.target == vip and nd.solicited:
                    answers.append(nd.lladdr or nd.eth_src)
            else:
                arp = f.parse_arp(frame)
                if arp and arp.op == f.ARP_REPLY and arp.sender_ip == vip \
                        and arp.target_ip == "10.97.0.2":  # not a gratuitous reply
                    answers.append(arp.sender_mac)
        return answers


def neigh(ns: str, vip: str) -> str:
    return sh("ip", "-n", ns, "neigh", "show", vip).stdout.strip()


def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.02)


def connect6(ns: str) -> str:
    with inside(ns):
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(3)
        sock.connect((VIP6, PORT))
        return sock.recv(64).decode().strip()


@pytest.fixture
def net() -> Iterator[Net]:
    if os.geteuid() != 0:
        unavailable("needs root for network namespaces and raw sockets")
    probe = subprocess.run(["ip", "netns", "add", "lbl-probe-" + secrets.token_hex(3)],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        unavailable(f"ip netns add failed: {probe.stderr.strip()}")
    for line in sh("ip", "netns", "list").stdout.splitlines():
        if line.startswith("lbl-probe-"):
            sh("ip", "netns", "del", line.split()[0], check=False)
    network = Net()
    try:
        br = network.add("br")
        sh("ip", "-n", br, "link", "add", "br0", "type", "bridge", "forward_delay", "0")
        sh("ip", "-n", br, "link", "set", "br0", "up")
        client = network.member("client", 1, "10.97.0.2", "fd97::2")
        sh("ip", "netns", "exec", client, "sysctl", "-qw", "net.ipv4.conf.eth0.arp_accept=1")
        network.member("a", 0x11, "10.97.0.11", "fd97::11")
        network.member("b", 0x12, "10.97.0.12", "fd97::12")
        network.member("rogue", 0x66, "10.97.0.66", "fd97::66")
        yield network
    finally:
        network.close()
        left = [n for n in sh("ip", "netns", "list").stdout.split() if n in network.created]
        assert not left, f"namespaces left behind: {left}"


def test_two_instances_announce_fail_over_and_detect_a_rogue(net: Net, tmp_path: Path) -> None:
    key = tmp_path / "token"
    key.write_text(secrets.token_hex(16) + "\n")
    ips = {"a": "10.97.0.11", "b": "10.97.0.12"}
    inst = {"a": Instance(net, "a", "b", ips, key, tmp_path),
            "b": Instance(net, "b", "a", ips, key, tmp_path)}
    client = net.ns("client")
    begin = time.monotonic()
    for i in inst.values():
        i.start()

    # 1. one owner; the client learns its MAC from the gratuitous ARP alone
    until(lambda: sum(i.owns(VIP) for i in inst.values()) == 1, 5, "an owner for the VIP")
    owner = next(i for i in inst.values() if i.owns(VIP))
    other = next(i for i in inst.values() if i is not owner)
    until(lambda: owner.mac in neigh(client, VIP), 3, "client learns the owner's MAC by GARP")
    time.sleep(0.3)
    assert not other.owns(VIP)
    assert ask(client, VIP) == [owner.mac], "exactly one instance answers ARP"
    owner6 = next(i for i in inst.values() if i.owns(VIP6))
    assert ask(client, VIP6) == [owner6.mac], "exactly one instance answers NS"
    assert connect6(client) == owner6.name
    assert owner6.mac in sh("ip", "-n", client, "-6", "neigh", "show", VIP6).stdout
    assert f"{VIP}/32" in owner.lo() and f"{VIP}/32" not in other.lo()
    print(f"\nowner of {VIP}: {owner.name} ({owner.mac}); of {VIP6}: {owner6.name}; "
          f"settled in {time.monotonic() - begin:.2f}s")

    prober = Prober(client)
    prober.start()
    try:
        prober.first(owner.name, begin)

        # 2. kill -9 the owner: heartbeats alone move the VIP, traffic resumes
        killed = time.monotonic()
        owner.signal(9)
        resumed = prober.first(other.name, killed, timeout=5)
        took = other.wait("owned", vip=VIP, since=killed)["t"] - killed
        last_old = max(t for t, n in prober.results if n == owner.name and t < killed)
        print(f"failover after SIGKILL: takeover {took:.3f}s, client traffic resumed "
              f"{resumed - killed:.3f}s (service gap {resumed - last_old:.3f}s)")
        assert resumed - killed < 5
        assert other.seen("alive", killed, alive=[other.name])
        until(lambda: other.mac in neigh(client, VIP), 2, "client's entry moves to survivor")
        assert f"{VIP}/32" in owner.lo(), "a SIGKILLed process cannot unbind (stale /32)"

        # 3. restart: stale VIPs removed at startup, VIP handed back, survivor unbinds
        restarted = time.monotonic()
        started = owner.start()
        assert VIP in started["stale_removed"]
        owner.wait("owned", vip=VIP, since=restarted)
        other.wait("released", vip=VIP, since=restarted)
        until(lambda: f"{VIP}/32" not in other.lo(), 2, "survivor unbinds the VIP from lo")
        back = prober.first(owner.name, restarted, timeout=5)
        print(f"hand-back after restart: client on {owner.name} again after "
              f"{back - restarted:.3f}s")

        # 4. a rogue claims the VIP: the owner withdraws and reports, nobody fights it
        rogue_mac = "02:97:00:00:00:66"
        stop_rogue = threading.Event()

        def rogue() -> None:
            with inside(net.ns("rogue")):
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            with sock:
                sock.bind(("eth0", 0))
                while True:
                    sock.send(f.gratuitous_arp(rogue_mac, VIP))
                    if stop_rogue.wait(0.3):
                        return

        rogue_start = time.monotonic()
        rogue_thread = threading.Thread(target=rogue, daemon=True)
        rogue_thread.start()
        try:
            conflict = owner.wait("conflict", vip=VIP, since=rogue_start, timeout=3)
            assert conflict["mac"] == rogue_mac
            owner.wait("released", vip=VIP, since=rogue_start)
            until(lambda: f"{VIP}/32" not in owner.lo(), 2, "the withdrawn VIP is unbound")
            assert ask(client, VIP) == [], "nobody answers ARP for a conflicted VIP"
            time.sleep(1.0)  # > dead_after: the peer would have taken over by now
            assert not other.seen("owned", rogue_start, vip=VIP), "the peer fought the rogue"
        finally:
            stop_rogue.set()
            rogue_thread.join(5)
        quiet = time.monotonic()
        owner.wait("owned", vip=VIP, since=quiet, timeout=5)
        print(f"conflict detected {conflict['t'] - rogue_start:.3f}s after the first rogue "
              f"GARP; reclaimed {time.monotonic() - quiet:.2f}s after it went quiet")
        prober.first(owner.name, quiet, timeout=5)

        # 5. graceful stop: "leaving" hands over at once, and the VIP is unbound
        leaving = time.monotonic()
        owner.signal(15)
        took = other.wait("owned", vip=VIP, since=leaving, timeout=3)["t"] - leaving
        print(f"graceful hand-over (SIGTERM): {took:.3f}s")
        assert took < 0.8, "the leaving heartbeat should beat the dead_after timeout"
        assert f"{VIP}/32" not in owner.lo() and f"{VIP6}/128" not in owner.lo()
        prober.first(other.name, leaving, timeout=5)
    finally:
        prober.done.set()
        prober.join(2)
        for i in inst.values():
            if i.proc is not None and i.proc.poll() is None:
                i.signal(15)
    assert f"{VIP}/32" not in other.lo(), "a graceful stop leaves nothing bound"
