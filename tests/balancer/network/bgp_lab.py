"""A BGP lab in network namespaces: a BIRD2 upstream router, a client behind it, balancer hosts
that peer with it, and optional nodes behind the hosts. Reusable test infrastructure for the
balancer's BGP mode (issue 18); tests/balancer/network/test_bgp_lab.py proves it with plain
ExaBGP.

Topology (every namespace `lbg-<token>-<role>`, deleted on exit whatever happened)::

    client 10.99.1.2 (wan) --- (client) 10.99.1.1  router, BIRD2, AS 65000
                                         (hK) 10.99.1K.1 --- (wan) 10.99.1K.2  hostK, AS 65001
                                                        (back) 10.99.2.K ---+  (default via router)
                                          sw: bridge "nodes"               |
                                              nodeJ 10.99.2.(100+J) -------+

* `router`: ip_forward=1 and `fib_multipath_hash_policy=1` (L4 hash: one client's many
  connections spread over the nexthops). BIRD2 runs in the foreground (`bird -f -c CONF -s SOCK
  -P PID`) with its config, control socket, pid and log files under the lab's tmp dir. One eBGP
  session per host (`protocol bgp hK`, direct: the peer is on the link), `hold time` configurable
  (3 s by default; keepalive 1 s, connect retry 1 s, error wait 1-5 s so a session comes back
  quickly), optional TCP-MD5 `password`, `ipv4 { import all; export all; }`. The kernel protocol
  exports what BGP learned with `merge paths on`: equal routes from several hosts become ONE
  multipath route in the kernel (`routes()` reads it back from `ip -j route`).
* `client`: default route via the router, so traffic to a VIP goes through the router's FIB.
* `hostK`: its own veth link to the router (`wan`), default route via the router, ip_forward=1.
  `bind_vip()` puts a VIP on its lo (what a balancer serving it does).
* `nodeJ` (optional, `nodes=N`): on one bridge segment with every host's `back` interface (the
  bridge lives in its own namespace `sw`). Nodes have no default route: the balancer masquerades
  by default, so replies come back to the host's `back` address.

Host death: `cut(host)` drops everything on the host's uplink, both ways, ARP included (nftables
netdev ingress+egress chains in the host's namespace), while the veth keeps its carrier. That is
a host whose kernel died or hung behind a switch: no FIN, no RST, no link-down event for BIRD's
device protocol, so the router notices through the BGP hold timer alone. (Setting a veth end
down instead would drop the router's side carrier and BIRD would close the direct session at
once: a different failure.) `heal(host)` removes the drop.

The real daemon in the lab (test_bgp_daemon_lab.py, bench/bgp_failover.py): `Balancer(lab,
host, dataplane=...)` writes the host's static file (balancer `web`, VIP 10.99.0.100:80 -> every
node's NODE_PORT, health checks every 0.2 s; `bgp:` with the router as its one peer, holdTime =
the lab's hold time) and runs `lbctl balancer serve` in the host's namespace with its API on
127.0.0.1:API_PORT there (`bgp()` reads `GET /v1/bgp`). The lab binds no VIP: the daemon does
(lo:lbctlbgp), as the userspace data plane needs (a routed packet reaches its sockets only when
the address is local).
`start_nodes` runs NODE_SERVER in every node (greets `<node> <host's back address>`),
`open_flow` opens one client connection and says which host and node carried it, `Prober` opens
one every 20 ms and measures recovery, `probe_flows` checks long-lived ones (`probe_lines` any
connections that greeted with a name), `ResilientAgent` keeps `program_resilient` in step with
BIRD while a test runs.

Multipath and established flows (issue 18's question, measured by test_bgp_lab.py's
`test_flows_on_surviving_hosts_*`; numbers in the tests' output):

* Plain multipath (`ip route ... nexthop via A nexthop via B nexthop via C`): IPv4 uses
  hash-threshold. Each nexthop owns a contiguous slice of the hash space, sized by weight; when
  one nexthop leaves, the slices are recomputed over the survivors. With 3 equal nexthops
  [0,1/3) [1/3,2/3) [2/3,1) -> after the first one leaves [0,1/2) [1/2,1): the flows of the
  second host whose hash is in [1/3,1/2) move to the third -- 1/6 of all flows, 1/4 of those on
  surviving hosts, and each moved TCP flow reaches a host with no socket for it: RST. Which
  nexthop leaves matters: removing the middle one moves nothing, removing the first or last
  moves 1/6. There is no per-flow state on a router: nothing "pins" a flow.
  Measured here (30 flows over 3 hosts, kernel 6.18): first nexthop cut -> 2/16, 4/19, 5/21,
  2/19, 6/19 of the survivors' flows reset over five runs (theory 1/4); middle nexthop cut ->
  0/24, 0/21.
* Resilient nexthop groups (`ip nexthop add id G group 1/2/3 type resilient buckets N`, Linux
  >= 5.13; this lab's kernel has them, `resilient_supported()` probes): the hash picks one of N
  buckets and each bucket names a nexthop; when a nexthop leaves, only its buckets are given to
  the survivors, every other bucket keeps its nexthop, so flows through surviving hosts stay.
  (Buckets are moved away from a *present* but overweight nexthop only after `idle_timer`, 120 s
  by default, of no traffic through the bucket.) Measured: 21/21 and 18/18 survivors' flows kept.
* BIRD 2.0.12 (Debian bookworm) installs ECMP routes as RTA_MULTIPATH routes (`merge paths`),
  never through nexthop objects (no nhid/nexthop-group option in its kernel protocol, nothing of
  the kind in the binary), so BIRD alone gives hash-threshold. What this lab does instead
  (`BgpLab(kernel_table=T)` + `program_resilient()`): BIRD exports into kernel table T (not
  consulted for forwarding), and the lab reads the nexthops BIRD put there and programs nexthop
  objects, a resilient group and `ip route replace PREFIX nhid G` in the main table. A
  production router would do the same with a small agent. FRR's zebra (bookworm: 8.4) installs
  routes through nexthop objects, but, as far as its documentation goes, the groups it makes for
  BGP ECMP are plain (hash-threshold) ones; not tried here.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.balancer.network.conftest import Namespaces, Netns, require_netns, sh, veth
from tests.conftest import unavailable

PREFIX = "lbg-"
ROUTER_ASN, HOST_ASN = 65000, 65001
CLIENT_IP, CLIENT_GW = "10.99.1.2", "10.99.1.1"
SBIN = ("/usr/sbin", "/sbin")

EXABGP_ENV: dict[str, str] = {
    # ExaBGP 5 without root-owned paths: no privilege drop to `nobody` (it could then not read
    # the test's files), no CLI named pipes under /run/exabgp, log to stdout (our log file), no
    # daemonizing, respawn off so a crashing API process shows up as a dead session.
    "exabgp.daemon.drop": "false",
    "exabgp.daemon.user": "root",
    "exabgp.daemon.daemonize": "false",
    "exabgp.api.cli": "false",
    "exabgp.api.respawn": "false",
    "exabgp.log.destination": "stdout",
    "exabgp.log.level": "INFO",
}


def tool(name: str) -> str | None:
    """A binary on PATH or in /usr/sbin, /sbin (bird, birdc live there)."""
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))


def exabgp_binary() -> str | None:
    beside = Path(sys.executable).parent / "exabgp"
    return str(beside) if beside.exists() else shutil.which("exabgp")


def require_bgp_tools(*, lbctl: bool = False) -> None:
    """Root, `ip netns`, bird/birdc and exabgp (and with `lbctl`, the venv's `lbctl` the daemon
    tests run), or skip (fail under CI=true) naming what lacks."""
    require_netns()
    missing = [name for name in ("bird", "birdc") if tool(name) is None]
    if exabgp_binary() is None:
        missing.append("exabgp (pip extra `bgp`)")
    if missing:
        unavailable(f"BGP lab needs {', '.join(missing)} (scripts/install-net-tools.sh)")
    if lbctl and not LBCTL.exists():
        unavailable(f"{LBCTL} not found (install the project into its venv)")


def resilient_supported() -> bool:
    """Does this kernel take `ip nexthop ... type resilient` (Linux >= 5.13)? Probed in a
    throwaway namespace."""
    name = f"{PREFIX}probe-{os.getpid()}"
    try:
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        sh("ip", "-n", name, "link", "set", "d0", "up")
        sh("ip", "-n", name, "link", "set", "d1", "up")
        sh("ip", "-n", name, "addr", "add", "192.0.2.1/24", "dev", "d0")
        sh("ip", "-n", name, "nexthop", "add", "id", "1", "via", "192.0.2.2", "dev", "d0")
        done = sh("ip", "-n", name, "nexthop", "add", "id", "2", "group", "1", "type",
                  "resilient", "buckets", "8", check=False)
        return done.returncode == 0
    finally:
        sh("ip", "netns", "del", name, check=False)


@dataclass(frozen=True)
class Nexthop:
    gateway: str
    dev: str
    host: str | None  # the lab host that gateway belongs to, if any


class BgpLab:
    """The lab; use as a context manager (or call `close()`): namespaces and processes are
    always removed, even when building it or a test fails.

    `hosts` balancer hosts, `nodes` nodes behind them, router `hold` time (s), TCP-MD5
    `password` on every router session (or `passwords` per host), `kernel_table`: export BIRD's
    routes into that kernel table instead of main (see `program_resilient`)."""

    def __init__(self, hosts: int = 3, *, nodes: int = 0, hold: int = 3,
                 password: str | None = None, passwords: Mapping[str, str] | None = None,
                 kernel_table: int | None = None, tmp: Path | None = None) -> None:
        require_bgp_tools()
        self.hold = hold
        self.password = password
        self.passwords = dict(passwords or {})
        self.kernel_table = kernel_table
        self._own_tmp = tmp is None
        self.tmp = Path(tempfile.mkdtemp(prefix="lbg-")) if tmp is None else tmp
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.hosts = [f"host{k}" for k in range(1, hosts + 1)]
        self.nodes = [f"node{j}" for j in range(1, nodes + 1)]
        self.spaces = Namespaces(PREFIX)
        self.ns: dict[str, Netns] = {}
        self.bird: subprocess.Popen[str] | None = None
        self.conf = self.tmp / "bird.conf"
        self.sock = self.tmp / "bird.ctl"
        self.pid = self.tmp / "bird.pid"
        self.log = self.tmp / "bird.log"
        self._groups: dict[str, int] = {}
        self._logs: list[Any] = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # -- addresses -----------------------------------------------------------------------
    @staticmethod
    def index(host: str) -> int:
        return int(host.removeprefix("host").removeprefix("node"))

    def host_ip(self, host: str) -> str:
        """The host's address on its link to the router (its BGP local address)."""
        return f"10.99.{10 + self.index(host)}.2"

    def router_ip(self, host: str) -> str:
        """The router's address on the link to `host` (the host's BGP peer)."""
        return f"10.99.{10 + self.index(host)}.1"

    def back_ip(self, host: str) -> str:
        return f"10.99.2.{self.index(host)}"

    def node_ip(self, node: str) -> str:
        return f"10.99.2.{100 + self.index(node)}"

    def host_of(self, gateway: str) -> str | None:
        return next((h for h in self.hosts if self.host_ip(h) == gateway), None)

    # -- building ------------------------------------------------------------------------
    def _build(self) -> None:
        router = self.ns["router"] = self.spaces.new("router")
        router.sysctl("net.ipv4.ip_forward", "1")
        router.sysctl("net.ipv4.fib_multipath_hash_policy", "1")
        client = self.ns["client"] = self.spaces.new("client")
        veth(router, "client", client, "wan")
        router.ip("addr", "add", f"{CLIENT_GW}/24", "dev", "client")
        client.ip("addr", "add", f"{CLIENT_IP}/24", "dev", "wan")
        client.ip("route", "add", "default", "via", CLIENT_GW)
        for host in self.hosts:
            ns = self.ns[host] = self.spaces.new(host)
            ns.sysctl("net.ipv4.ip_forward", "1")
            veth(router, f"h{self.index(host)}", ns, "wan")
            router.ip("addr", "add", f"{self.router_ip(host)}/24", "dev", f"h{self.index(host)}")
            ns.ip("addr", "add", f"{self.host_ip(host)}/24", "dev", "wan")
            ns.ip("route", "add", "default", "via", self.router_ip(host))
        if self.nodes:
            sw = self.ns["sw"] = self.spaces.new("sw")
            sw.ip("link", "add", "nodes", "type", "bridge")
            sw.ip("link", "set", "nodes", "up")
            for member in self.hosts + self.nodes:
                port = f"p-{member}"
                veth(sw, port, self.ns.get(member) or self._node(member), "back")
                sw.ip("link", "set", port, "master", "nodes")
                address = self.back_ip(member) if member in self.hosts else self.node_ip(member)
                self.ns[member].ip("addr", "add", f"{address}/24", "dev", "back")
        self.start_router()

    def _node(self, node: str) -> Netns:
        ns = self.ns[node] = self.spaces.new(node)
        return ns

    def bird_config(self) -> str:
        table = f"\n    kernel table {self.kernel_table};" if self.kernel_table else ""
        lines = [
            f'log "{self.log}" all;',
            f"router id {CLIENT_GW};",
            "protocol device { scan time 1; }",
            "protocol kernel {",
            "    ipv4 { import none; export all; };",
            "    merge paths on;",
            f"    learn off;{table}",
            "}",
            "template bgp balancers {",
            f"    local as {ROUTER_ASN};",
            f"    hold time {self.hold};",
            f"    keepalive time {max(1, self.hold // 3)};",
            "    connect delay time 1;",
            "    connect retry time 1;",
            "    error wait time 1, 5;",
            "    ipv4 { import all; export all; };",
            "}",
        ]
        for host in self.hosts:
            secret = self.passwords.get(host, self.password)
            lines += [
                f"protocol bgp h{self.index(host)} from balancers {{",
                f"    local {self.router_ip(host)} as {ROUTER_ASN};",
                f"    neighbor {self.host_ip(host)} as {HOST_ASN};",
                f'    password "{secret}";' if secret else "",
                "}",
            ]
        return "\n".join(line for line in lines if line) + "\n"

    def start_router(self) -> None:
        """(Re)start BIRD in the router namespace and wait until its control socket answers."""
        self.conf.write_text(self.bird_config())
        bird = tool("bird")
        assert bird is not None
        check = sh(bird, "-p", "-c", str(self.conf), check=False)
        if check.returncode != 0:
            raise AssertionError(f"bird config rejected: {check.stderr}\n{self.conf.read_text()}")
        self.sock.unlink(missing_ok=True)
        self.bird = self.spawn("router", bird, "-f", "-c", str(self.conf), "-s", str(self.sock),
                               "-P", str(self.pid), log="bird.out")
        deadline = time.monotonic() + 10
        while self.birdc("show status", check=False).returncode != 0:
            if self.bird.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"bird did not start: {self.read_log('bird.out')}"
                                     f"{self.log.read_text() if self.log.exists() else ''}")
            time.sleep(0.05)

    def stop_router(self, *, kill: bool = False) -> None:
        """SIGTERM (BIRD shuts its sessions down with a Cease and removes its kernel routes)
        or SIGKILL (sessions die by TCP RST/hold time; its kernel routes stay until the next
        BIRD prunes them)."""
        if self.bird is None:
            return
        proc, self.bird = self.bird, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        with contextlib.suppress(ValueError):
            self.ns["router"].procs.remove(proc)

    def restart_router(self, *, kill: bool = False) -> None:
        self.stop_router(kill=kill)
        self.start_router()

    # -- processes and commands ----------------------------------------------------------
    def run(self, ns: str, *argv: str, check: bool = True,
            timeout: float = 10) -> subprocess.CompletedProcess[str]:
        """Run a command in namespace `ns` (a role: router, client, hostK, nodeJ, sw)."""
        return self.ns[ns].run(*argv, check=check, timeout=timeout)

    def spawn(self, ns: str, *argv: str, log: str, env: Mapping[str, str] | None = None,
              ) -> subprocess.Popen[str]:
        """A long-running process in `ns`, stdout+stderr to tmp/`log` (never a pipe nobody
        reads), killed on close()."""
        out = (self.tmp / log).open("a")
        self._logs.append(out)
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns[ns].name, *argv], text=True,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, cwd=self.tmp)
        self.ns[ns].procs.append(proc)
        return proc

    def read_log(self, log: str) -> str:
        path = self.tmp / log
        return path.read_text(errors="replace") if path.exists() else ""

    def birdc(self, command: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`birdc -s SOCK <command>` (the socket is a file: no namespace needed)."""
        birdc = tool("birdc")
        assert birdc is not None
        return sh(birdc, "-s", str(self.sock), *command.split(), check=check, timeout=5)

    def session_state(self, host: str) -> str:
        """BIRD's BGP state for the session with `host`: Established, Active, Connect,
        OpenSent, OpenConfirm, Idle (or "down" when the protocol itself is down)."""
        detail = self.session_detail(host)
        for line in detail.splitlines():
            key, _, value = line.strip().partition(":")
            if key == "BGP state":
                return value.strip()
        return "down" if detail else "unknown"

    def session_detail(self, host: str) -> str:
        """`show protocols all hK`: state, `Last error`, timers, routes."""
        return self.birdc(f"show protocols all h{self.index(host)}", check=False).stdout

    def tcp_counters(self, ns: str = "router", prefix: str = "TCPMD5") -> dict[str, int]:
        """TcpExt counters of a namespace (`/proc/net/netstat`), by default the TCP-MD5 ones:
        TCPMD5Failure (wrong key), TCPMD5NotFound (peer sent none), TCPMD5Unexpected (we
        expected none). BIRD shows a wrong password only as a session stuck in Connect/Active
        with no error; these say why."""
        text = self.run(ns, "cat", "/proc/net/netstat").stdout.splitlines()
        counters: dict[str, int] = {}
        for names, values in zip(text[::2], text[1::2], strict=False):
            if names.startswith("TcpExt:"):
                pairs = zip(names.split()[1:], values.split()[1:], strict=True)
                counters.update({k: int(v) for k, v in pairs if k.startswith(prefix)})
        return counters

    def kernel_routes(self, prefix: str, table: int | str = "main") -> list[dict[str, Any]]:
        """The router kernel's routes for exactly `prefix` (raw `ip -j route` objects)."""
        done = self.run("router", "ip", "-j", "route", "show", "table", str(table),
                        "exact", prefix, check=False)
        if done.returncode != 0 and "table does not exist" in done.stderr:
            return []  # nothing was ever put in that table yet
        if done.returncode != 0:
            raise AssertionError(f"ip route show table {table}: {done.stderr}")
        return list(json.loads(done.stdout or "[]"))

    def routes(self, prefix: str, table: int | str = "main") -> list[Nexthop]:
        """Nexthops of the router's kernel route for `prefix` (a single-path route gives one,
        a multipath route one per path, a route through a nexthop group its members)."""
        found: list[Nexthop] = []
        for route in self.kernel_routes(prefix, table):
            if "nhid" in route:  # through a nexthop object: ask it (ip also expands it)
                found += self._group_members(int(route["nhid"]))
                continue
            for hop in route.get("nexthops", [route] if "gateway" in route else []):
                found.append(Nexthop(hop["gateway"], hop["dev"], self.host_of(hop["gateway"])))
        return sorted(found, key=lambda hop: hop.gateway)

    def _group_members(self, nhid: int) -> list[Nexthop]:
        out = self.run("router", "ip", "-j", "nexthop", "show", "id", str(nhid)).stdout
        [group] = json.loads(out)
        members = [g["id"] for g in group.get("group", [])] or [nhid]
        hops = []
        for member in members:
            [nh] = json.loads(self.run("router", "ip", "-j", "nexthop", "show", "id",
                                       str(member)).stdout)
            hops.append(Nexthop(nh["gateway"], nh["dev"], self.host_of(nh["gateway"])))
        return hops

    def route_hosts(self, prefix: str, table: int | str | None = "main") -> list[str]:
        """The hosts (else gateways) the router's route for `prefix` goes through, sorted."""
        return sorted(h.host or h.gateway for h in self.routes(prefix, table or "main"))

    # -- hosts -----------------------------------------------------------------------------
    def bind_vip(self, host: str, vip: str) -> None:
        self.run(host, "ip", "addr", "replace", f"{vip}/32", "dev", "lo")

    def cut(self, host: str) -> None:
        """The host falls silent on its uplink (everything dropped both ways, carrier kept)."""
        rules = ('table netdev lbg_cut {\n'
                 '  chain in { type filter hook ingress device "wan" priority 0; policy drop; }\n'
                 '  chain out { type filter hook egress device "wan" priority 0; policy drop; }\n'
                 '}\n')
        done = subprocess.run(["ip", "netns", "exec", self.ns[host].name, "nft", "-f", "-"],
                              input=rules, capture_output=True, text=True, timeout=10,
                              check=False)
        if done.returncode != 0:
            raise AssertionError(f"cut {host}: {done.stderr}")

    def heal(self, host: str) -> None:
        self.run(host, "nft", "delete", "table", "netdev", "lbg_cut", check=False)

    # -- resilient nexthop groups ------------------------------------------------------------
    def program_resilient(self, prefix: str, *, buckets: int = 128) -> list[str]:
        """Mirror BIRD's route for `prefix` from `kernel_table` into the main table through a
        resilient nexthop group (one nexthop object per host, id 10+K; the group's id is fixed
        per prefix). No nexthops left: the route goes. Returns the hosts now in the group."""
        assert self.kernel_table, "program_resilient needs BgpLab(kernel_table=...)"
        hops = [h for h in self.routes(prefix, self.kernel_table) if h.host]
        router = self.ns["router"]
        ids = []
        for hop in hops:
            assert hop.host is not None
            nh = 10 + self.index(hop.host)
            router.ip("nexthop", "replace", "id", str(nh), "via", hop.gateway, "dev", hop.dev)
            ids.append(nh)
        group = self._groups.setdefault(prefix, 1000 + len(self._groups))
        if not ids:
            router.run("ip", "route", "del", prefix, check=False)
            router.run("ip", "nexthop", "del", "id", str(group), check=False)
            self._groups.pop(prefix)
            return []
        members = "/".join(str(i) for i in sorted(ids))
        router.ip("nexthop", "replace", "id", str(group), "group", members, "type", "resilient",
                  "buckets", str(buckets))
        router.ip("route", "replace", prefix, "nhid", str(group))
        return sorted(h.host for h in hops if h.host)

    # -- teardown ---------------------------------------------------------------------------
    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop_router(kill=True)
        for ns in self.spaces.all:  # what our processes forked (ExaBGP's API processes...)
            pids = sh("ip", "netns", "pids", ns.name, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        self.spaces.close()  # kills every spawned process, deletes the namespaces
        for out in self._logs:
            out.close()
        if self._own_tmp and not os.environ.get("LBG_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> BgpLab:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# -- the real balancer daemon in the hosts ------------------------------------------------------
LBCTL = Path(sys.executable).with_name("lbctl")
VIP, VIP_PREFIX, VIP_PORT = "10.99.0.100", "10.99.0.100/32", 80
NODE_PORT, API_PORT = 30080, 18080
TOKEN = "bgp-lab-token-0123456789abcdef"

NODE_SERVER = r"""
import asyncio, sys
NAME = sys.argv[1]

async def talk(reader, writer):
    peer = writer.get_extra_info("peername")[0]  # the balancer host's back address
    writer.write(f"{NAME} {peer}\n".encode())
    try:
        while line := await reader.readline():  # echo each line, prefixed: "still"
            writer.write(f"{NAME} {line.decode().strip()}\n".encode())
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()

async def main():
    server = await asyncio.start_server(talk, "0.0.0.0", int(sys.argv[2]), backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""
"""A node's NodePort: greets with `<node> <address the connection came from>` (a balancer
host's `back` address: both data planes masquerade/proxy), then echoes lines prefixed with the
node's name, so a client learns which host and which node carry each connection."""


class Balancer:
    """`lbctl balancer serve` in one lab host: one static balancer `web` (VIP:80 -> every
    node's NODE_PORT, TCP health checks every 0.2 s) and a `bgp:` section whose one peer is the
    router (holdTime = the lab's hold time). The API listens on 127.0.0.1:API_PORT inside the
    host's namespace (token TOKEN). `dataplane`: `userspace` or `nftables`; `kernel`:
    `--kernel-dataplane`. Nothing is bound here: in BGP mode the daemon puts the VIPs it may
    announce on the host's lo itself (label lo:lbctlbgp)."""

    def __init__(self, lab: BgpLab, host: str, *, dataplane: str = "userspace",
                 kernel: str = "auto", target_port: int = NODE_PORT, peer_asn: int = ROUTER_ASN,
                 password: str | None = None, hold_down: float = 1.0, drain: float = 1.0,
                 extra_port: int | None = None) -> None:
        self.lab, self.host = lab, host
        self.dataplane, self.kernel = dataplane, kernel
        self.target_port, self.peer_asn, self.password = target_port, peer_asn, password
        self.hold_down, self.drain, self.extra_port = hold_down, drain, extra_port
        self.config = lab.tmp / f"{host}.lbctl.yaml"
        self.log = f"{host}.lbctl.log"
        self.proc: subprocess.Popen[str] | None = None
        (lab.tmp / "token").write_text(TOKEN + "\n")
        self.write_config()

    def write_config(self) -> None:
        lab, host = self.lab, self.host
        check = ("{type: tcp, intervalSeconds: 0.2, timeoutSeconds: 0.3, healthyThreshold: 1, "
                 "unhealthyThreshold: 2}")

        def listener(port: int, target_port: int) -> str:
            targets = ", ".join(f"{{name: {n}, address: {lab.node_ip(n)}, port: {target_port}}}"
                                for n in lab.nodes)
            return (f"      - {{protocol: TCP, port: {port}, targets: [{targets}],\n"
                    f"         healthCheck: {check}}}\n")

        peer = (f"{{peerAddress: {lab.router_ip(host)}, peerASN: {self.peer_asn}, "
                f"holdTime: {lab.hold}s, sourceAddress: {lab.host_ip(host)}")
        if self.password is not None:
            secret = lab.tmp / f"{host}.md5"
            secret.write_text(self.password + "\n")
            secret.chmod(0o600)
            peer += f", passwordFile: {secret}"
        text = ("balancers:\n  - name: web\n"
                f"    vip: {VIP}\n    dataplane: {self.dataplane}\n    listeners:\n"
                + listener(VIP_PORT, self.target_port)
                + (listener(self.extra_port, self.extra_port) if self.extra_port else "")
                + f"bgp:\n  myASN: {HOST_ASN}\n  routerID: {lab.host_ip(host)}\n"
                f"  holdDownSeconds: {self.hold_down}\n  drainSeconds: {self.drain}\n"
                f"  peers:\n    - {peer}}}\n")
        self.config.write_text(text)

    def argv(self) -> list[str]:
        return [str(LBCTL), "balancer", "serve", "--config", str(self.config),
                "--kernel-dataplane", self.kernel,
                "--api-listen", f"127.0.0.1:{API_PORT}",
                "--token-file", str(self.lab.tmp / "token"),
                "--state-file", str(self.lab.tmp / f"{self.host}.state.json")]

    def start(self, *, wait: bool = True) -> None:
        assert not self.running(), f"{self.host}: daemon already running"
        self.proc = self.lab.spawn(self.host, *self.argv(), log=self.log)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until `/readyz` answers 200; AssertionError with the log's tail if it exits."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.host}: daemon not ready "
                                     f"(exit {self.proc.poll()}):\n{self.tail()}")
            time.sleep(0.05)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        try:
            return self.http("/readyz", timeout=1.0)[0] == 200
        except OSError:
            return False

    def signal(self, sig: int, *, wait: float | None = 15.0) -> None:
        """Send `sig`; with `wait`, reap it (and forget it) within that many seconds."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        if wait is not None:
            self.reap(wait)

    def reap(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout=timeout)
        with contextlib.suppress(ValueError):
            self.lab.ns[self.host].procs.remove(self.proc)
        return code

    def http(self, path: str, *, timeout: float = 3.0) -> tuple[int, Any]:
        """GET `path` from the daemon's API inside the host's namespace: (status, JSON or
        text)."""
        with self.lab.ns[self.host].socket() as sock:
            sock.settimeout(timeout)
            sock.connect(("127.0.0.1", API_PORT))
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                         f"Authorization: Bearer {TOKEN}\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        code = int(head.split()[1])
        try:
            return code, json.loads(body)
        except ValueError:
            return code, body.decode(errors="replace")

    def bgp(self) -> dict[str, Any]:
        """`GET /v1/bgp`'s `status`: the speaker, per peer state/prefixes/lastError, per VIP."""
        code, body = self.http("/v1/bgp")
        assert code == 200, (code, body)
        assert isinstance(body, dict) and isinstance(body["status"], dict), body
        return body["status"]

    def peer(self) -> dict[str, Any]:
        """The status of the host's one peer (the router)."""
        [peer] = self.bgp()["peers"]
        assert isinstance(peer, dict)
        return peer

    def tail(self, chars: int = 4000) -> str:
        return self.lab.read_log(self.log)[-chars:]


def start_nodes(lab: BgpLab, port: int = NODE_PORT) -> None:
    """NODE_SERVER on `port` in every node namespace (waits for each to listen)."""
    for node in lab.nodes:
        proc = lab.ns[node].popen(sys.executable, "-c", NODE_SERVER, node, str(port))
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError(f"{node}: server did not start: {line!r}")


def open_flow(lab: BgpLab, *, timeout: float = 2.0,
              port: int = VIP_PORT) -> tuple[socket.socket, str, str]:
    """One TCP connection from the client to VIP:port: (socket, node, host) as the node's
    greeting says (the host by its `back` address). Raises OSError when it fails."""
    sock = lab.ns["client"].socket()
    try:
        sock.settimeout(timeout)
        sock.connect((VIP, port))
        greeting = b""
        while not greeting.endswith(b"\n"):
            chunk = sock.recv(128)
            if not chunk:
                raise ConnectionError(f"closed before the greeting ({greeting!r})")
            greeting += chunk
    except BaseException:
        sock.close()
        raise
    node, _, back = greeting.decode().strip().partition(" ")
    host = next((h for h in lab.hosts if lab.back_ip(h) == back), back)
    return sock, node, host


@dataclass(frozen=True)
class Attempt:
    start: float
    end: float
    host: str | None
    """The host that carried the connection; None: it failed (`error` says how)."""
    node: str = ""
    error: str = ""


class Prober:
    """New TCP connections from the client to VIP:`port`, one started every `interval` s
    whatever the others do (each in a pool thread, bounded by `timeout`: connect and the
    node's greeting), until `stop()` or `limit` s: what a client sees while hosts come and go.
    Use as a context manager."""

    def __init__(self, lab: BgpLab, *, interval: float = 0.02, timeout: float = 0.5,
                 port: int = VIP_PORT, limit: float = 120.0) -> None:
        self.lab, self.interval, self.timeout, self.port = lab, interval, timeout, port
        self.limit = limit
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=max(4, int(timeout / interval) * 2))
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Prober:
        self._thread.start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        tick = started
        while not self._stop.is_set() and time.monotonic() - started < self.limit:
            self._pool.submit(self._attempt)
            tick += self.interval
            self._stop.wait(max(0.0, tick - time.monotonic()))

    def _attempt(self) -> None:
        start = time.monotonic()
        try:
            sock, node, host = open_flow(self.lab, timeout=self.timeout, port=self.port)
        except OSError as exc:
            found = Attempt(start, time.monotonic(), None, error=type(exc).__name__)
        else:
            sock.close()
            found = Attempt(start, time.monotonic(), host, node)
        with self._lock:
            self.attempts.append(found)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pool.shutdown(wait=True)

    def done(self) -> list[Attempt]:
        """Every finished attempt, by start time."""
        with self._lock:
            return sorted(self.attempts, key=lambda a: a.start)

    def failures(self, since: float = 0.0, until: float = float("inf")) -> list[Attempt]:
        return [a for a in self.done() if a.host is None and since <= a.start <= until]

    def recovery(self, since: float, until: float = float("inf")) -> float | None:
        """From `since` to the start of the first attempt (started before `until`) after which
        every such attempt succeeded (0 when none failed); None when the last one failed (not
        recovered)."""
        after = [a for a in self.done() if since <= a.start < until]
        failed = [i for i, a in enumerate(after) if a.host is None]
        if not failed:
            return 0.0
        if failed[-1] + 1 >= len(after):
            return None
        return after[failed[-1] + 1].start - since

    def __enter__(self) -> Prober:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class ResilientAgent:
    """What a production router runs beside BIRD for resilient ECMP: every `interval` s, when
    BIRD's route for `prefix` in the lab's `kernel_table` changed, `program_resilient` mirrors
    it into the main table (a resilient nexthop group). `changes`: (time, hosts) per change.
    Use as a context manager."""

    def __init__(self, lab: BgpLab, prefix: str, *, interval: float = 0.02,
                 buckets: int = 128) -> None:
        assert lab.kernel_table, "ResilientAgent needs BgpLab(kernel_table=...)"
        self.lab, self.prefix, self.interval, self.buckets = lab, prefix, interval, buckets
        self.changes: list[tuple[float, list[str]]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last: list[str] | None = None
        while not self._stop.is_set():
            try:
                hosts = self.lab.route_hosts(self.prefix, self.lab.kernel_table)
                if hosts != last:
                    self.lab.program_resilient(self.prefix, buckets=self.buckets)
                    self.changes.append((time.monotonic(), hosts))
                    last = hosts
            except (AssertionError, OSError, subprocess.SubprocessError) as exc:
                self.errors.append(str(exc)[:300])
            self._stop.wait(self.interval)

    def __enter__(self) -> ResilientAgent:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(5)


def probe_lines(conns: list[tuple[socket.socket, str]], wait: float = 2.0) -> list[str]:
    """Send a line on every connection at once; per connection: "ok" (echoed, prefixed with
    the name it was greeted with), "reset", "closed", "other:<name>" or "timeout" (after
    `wait`)."""
    result: dict[int, str] = {}
    selector = selectors.DefaultSelector()
    for i, (sock, _) in enumerate(conns):
        try:
            sock.sendall(b"still\n")
        except OSError:
            result[i] = "reset"
            continue
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, i)
    deadline = time.monotonic() + wait
    while len(result) < len(conns) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
            i = key.data
            sock, name = conns[i]
            try:
                data = sock.recv(256).decode()
            except OSError:
                result[i] = "reset"
            else:
                words = data.split()
                result[i] = ("closed" if not data else
                             "ok" if words[:2] == [name, "still"] else f"other:{words[0]}")
            selector.unregister(sock)
    selector.close()
    return [result.get(i, "timeout") for i in range(len(conns))]


def probe_flows(flows: list[tuple[socket.socket, str, str]], wait: float = 2.0) -> list[str]:
    """`probe_lines` on open flows (from `open_flow`): "ok" when echoed by the node it greeted
    from."""
    return probe_lines([(sock, node) for sock, node, _ in flows], wait)
