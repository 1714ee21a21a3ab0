"""VIP failover between two `lbctl balancer serve` instances with L2 announcements: 20 SIGKILLs.

Topology (network namespaces `lbb-l2-*`, created here, removed on exit, Ctrl-C and SIGTERM
included; leftovers of a killed run are removed at start):

    lbb-l2-client 10.96.0.2 --+                     +-- lbb-l2-node 10.96.1.21 (:8080)
    lbb-l2-a eth0 10.96.0.11 -+- front bridge       |
    lbb-l2-b eth0 10.96.0.12 -+  (lbb-l2-br br0)    |   back bridge (lbb-l2-br br1)
             eth1 10.96.1.11 / 10.96.1.12 ----------+

The VIP 10.96.0.100 is in the front /24, so it is on-link for the client: the client must ARP
for it, and only the owning instance answers (the daemons run with `--interface eth0`). Both
instances serve the same static file (balancer `web`: VIP:80 -> node:8080, `dataplane` from
`--dataplane`, nftables by default; the node is the only target, no health checks) and share
one token file and one heartbeat key file: `--instance-name a|b`, `--heartbeat-listen
<front ip>:9451`, `--peer <other>=<other front ip>:9451`, `--api-listen <front ip>:9180`.
Heartbeats every 0.2 s, a peer dead after 0.8 s of silence (lbctl's defaults).

The node answers every connection with the address it came from: a masqueraded (nftables) or
proxied (userspace) connection comes from the forwarding instance's back address, so each
client connection says which instance carried it.

A probe in lbb-l2-client opens a new TCP connection to VIP:80 every 20 ms for the whole run
(each bounded by `--probe-timeout`, 0.2 s, connect and answer together) and streams
(start, end, instance or error) to this script. Each of `--kills` (20) rounds:
1. the owner is the instance whose /metrics says `lbctl_l2_owned_vips 1` (and only one does,
   and its `GET /v1/balancers/web` lists the VIP in `status.announced`);
2. it is SIGKILLed (no "leaving" heartbeat, nothing cleaned up) and reaped: t0;
3. failover = from t0 to the end of the first connection started after t0 that the survivor
   carried. Also counted: connections started after t0 that failed, and those still carried by
   the killed instance (its kernel keeps forwarding with the leftover nftables table until the
   client's ARP entry moves: a daemon crash is not a data-plane outage there);
4. the killed instance is restarted; the round ends once both /metrics say
   `lbctl_l2_alive_instances 2`, exactly one instance owns the VIP and it is the rendezvous
   owner of the pair (so the restarted owner has taken its VIP back: every kill hits the same
   instance, the other one always takes over), and the last 0.5 s of probes all succeeded
   through that owner.
The whole run is bounded by `--budget` (170 s): rounds that do not fit are not started.

Printed: one line per kill, then median and max, and "failover median <= 2 s: PASS/MISS".
Complete means every one of `--kills` rounds ran: a run the budget cut short prints
"INCOMPLETE: 12/20 kills done (the budget ...)" and no PASS/MISS. A kill with no failover within
`--max-failover` is a measured outcome (MISS), not a shortfall; a round whose restart never
settled ends the run ("benchmark failed"), with no figures.

    .venv/bin/python bench/l2_failover.py [--kills 20] [--dataplane nftables|userspace]
        [--budget 170] [--probe-timeout 0.2]

Needs root and iproute2 (and nft for the nftables data plane).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bench.completeness import Tally, verdict
from bench.netns_tools import (
    BenchError,
    existing_namespaces,
    in_ns,
    remove_namespaces,
    remove_own_namespaces,
    run,
    tail,
)
from lbctl.balancer.membership import rendezvous_owner

ROOT = Path(__file__).resolve().parent.parent
LBCTL = ROOT / ".venv" / "bin" / "lbctl"

PREFIX = "lbb-l2-"
NS_BR = "lbb-l2-br"
NS_CLIENT = "lbb-l2-client"
NS_NODE = "lbb-l2-node"
INSTANCES = ("a", "b")
NS = {"a": "lbb-l2-a", "b": "lbb-l2-b"}
FRONT = {"a": "10.96.0.11", "b": "10.96.0.12"}
BACK = {"a": "10.96.1.11", "b": "10.96.1.12"}
CLIENT_IP = "10.96.0.2"
NODE_IP = "10.96.1.21"
VIP = "10.96.0.100"
VIP_PORT = 80
NODE_PORT = 8080
HB_PORT = 9451
API_PORT = 9180
ALL_NS = (NS_BR, NS_CLIENT, NS_NODE, NS["a"], NS["b"])
STEADY_OWNER = rendezvous_owner(VIP, INSTANCES)
"""Who owns the VIP while both instances are alive (rendezvous hashing is deterministic)."""
GOAL_MEDIAN_S = 2.0
PROBE_INTERVAL = 0.02
SETTLE_QUIET = 0.5
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


# -- namespaces ---------------------------------------------------------------------------------
def topology_up() -> None:
    for ns in ALL_NS:
        run(["ip", "netns", "add", ns])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
    for br in ("br0", "br1"):
        run(["ip", "-n", NS_BR, "link", "add", br, "type", "bridge"])
        run(["ip", "-n", NS_BR, "link", "set", br, "up"])

    def port(bridge: str, ns: str, ifname: str, address: str, index: int) -> None:
        name = f"{bridge}p{index}"
        run(["ip", "-n", NS_BR, "link", "add", name, "type", "veth", "peer", "name", ifname,
             "netns", ns])
        run(["ip", "-n", NS_BR, "link", "set", name, "master", bridge, "up"])
        run(["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", ifname])
        run(["ip", "-n", ns, "link", "set", ifname, "up"])

    port("br0", NS_CLIENT, "eth0", CLIENT_IP, 0)
    port("br1", NS_NODE, "eth0", NODE_IP, 0)
    for i, name in enumerate(INSTANCES, 1):
        port("br0", NS[name], "eth0", FRONT[name], i)
        port("br1", NS[name], "eth1", BACK[name], i)
        run(in_ns(NS[name], "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"))


# -- the daemons --------------------------------------------------------------------------------
def balancers_yaml(dataplane: str) -> str:
    return f"""# generated by bench/l2_failover.py
balancers:
- name: web
  vip: {VIP}
  dataplane: {dataplane}
  listeners:
  - protocol: TCP
    port: {VIP_PORT}
    targets: ["{NODE_IP}:{NODE_PORT}"]
    healthCheck: {{type: none}}
"""


class Daemon:
    """One `lbctl balancer serve` with L2 announcements in its namespace."""

    def __init__(self, name: str, config: Path, token_file: Path, logdir: Path) -> None:
        self.name = name
        self.other = next(n for n in INSTANCES if n != name)
        self.config, self.token_file = config, token_file
        self.log = logdir / f"lbctl-{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        return in_ns(NS[self.name], str(LBCTL), "balancer", "serve", "--config",
                     str(self.config), "--api-listen", f"{FRONT[self.name]}:{API_PORT}",
                     "--token-file", str(self.token_file),
                     "--heartbeat-key-file", str(self.token_file.with_name("heartbeat-key")),
                     "--interface", "eth0",
                     "--instance-name", self.name,
                     "--heartbeat-listen", f"{FRONT[self.name]}:{HB_PORT}",
                     "--peer", f"{self.other}={FRONT[self.other]}:{HB_PORT}")

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL its process group and reap it (no graceful anything)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.popen = None


# -- HTTP to the daemons, from the client namespace ---------------------------------------------
def _enter(ns: str) -> None:
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
    finally:
        os.close(fd)


class Api:
    """Blocking GETs to the instances' APIs from one worker thread living in lbb-l2-client."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="lbb-l2-api",
                                       initializer=_enter, initargs=(NS_CLIENT,))

    def get(self, name: str, path: str, timeout: float = 0.5) -> str | None:
        return self.pool.submit(self._get, FRONT[name], path, timeout).result(timeout + 2)

    def _get(self, host: str, path: str, timeout: float) -> str | None:
        request = (f"GET {path} HTTP/1.0\r\nHost: {host}\r\n"
                   f"Authorization: Bearer {self.token}\r\n\r\n").encode()
        try:
            with socket.create_connection((host, API_PORT), timeout=timeout) as conn:
                conn.sendall(request)
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except OSError:
            return None
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
            return None
        return body.decode(errors="replace")

    def metrics(self, name: str) -> dict[str, float] | None:
        body = self.get(name, "/metrics")
        if body is None:
            return None
        out: dict[str, float] = {}
        for m in re.finditer(r"^(lbctl_l2_\w+)\s+([-\d.e+]+)$", body, re.M):
            out[m.group(1)] = float(m.group(2))
        return out

    def announced(self, name: str) -> list[str] | None:
        body = self.get(name, "/v1/balancers/web")
        if body is None:
            return None
        try:
            return list(json.loads(body)["status"].get("announced", []))
        except (ValueError, KeyError, TypeError):
            return None

    def dataplane(self, name: str) -> str | None:
        body = self.get(name, "/v1/balancers/web")
        try:
            return str(json.loads(body)["status"]["dataplane"]) if body else None
        except (ValueError, KeyError, TypeError):
            return None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


# -- the client's probe (a child process in lbb-l2-client) --------------------------------------
@dataclass(frozen=True)
class Conn:
    start: float
    end: float
    via: str | None
    """The instance that carried it, None when it failed."""
    error: str


class Probes:
    """The probe child's stream of connections, collected by a reader thread."""

    def __init__(self, timeout: float, logdir: Path) -> None:
        argv = in_ns(NS_CLIENT, sys.executable, str(Path(__file__).resolve()), "--probe",
                     "--probe-timeout", str(timeout))
        self.err = (logdir / "probe.log").open("ab")
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=self.err, start_new_session=True, text=True)
        self.conns: list[Conn] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        by_ip = {ip: name for name, ip in BACK.items()}
        for line in self.popen.stdout:
            try:
                start, end, ok, info = json.loads(line)
            except ValueError:
                continue
            via = by_ip.get(info) if ok else None
            conn = Conn(float(start), float(end), via, "" if via else (info or "?"))
            with self.lock:
                self.conns.append(conn)

    def since(self, t: float) -> list[Conn]:
        with self.lock:
            return sorted((c for c in self.conns if c.start >= t), key=lambda c: c.start)

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(5)
        self.err.close()


async def probe_loop(limit: float) -> None:
    """New connection to VIP:80 every PROBE_INTERVAL until killed; one JSON line each:
    [start, end, ok, node-reported source address or error]."""

    async def one(start: float) -> None:
        try:
            async with asyncio.timeout(limit):
                reader, writer = await asyncio.open_connection(VIP, VIP_PORT)
                try:
                    data = await reader.readline()
                finally:
                    writer.close()
            ok, info = bool(data.strip()), data.decode(errors="replace").strip() or "closed"
        except TimeoutError:
            ok, info = False, "timeout"
        except OSError as exc:
            ok, info = False, type(exc).__name__
        print(json.dumps([start, time.monotonic(), ok, info]), flush=True)

    tasks: set[asyncio.Task[None]] = set()
    t0 = time.monotonic()
    i = 0
    while True:
        delay = t0 + i * PROBE_INTERVAL - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        i += 1
        task = asyncio.create_task(one(time.monotonic()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def node_server() -> None:
    """The node: answer each connection with the address it came from, then close."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        writer.write(f"{peer[0] if peer else '?'}\n".encode())
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, NODE_IP, NODE_PORT, backlog=1024)
    async with server:
        await server.serve_forever()


# -- the measurement ----------------------------------------------------------------------------
@dataclass
class Kill:
    victim: str
    failover: float | None
    failed: int
    via_victim: int
    settle: float | None
    note: str = ""


def find_owner(api: Api) -> str | None:
    """The one instance whose /metrics says lbctl_l2_owned_vips 1 and whose status announces
    the VIP; None unless exactly one does."""
    owners = [n for n in INSTANCES if (api.metrics(n) or {}).get("lbctl_l2_owned_vips") == 1]
    if len(owners) != 1 or VIP not in (api.announced(owners[0]) or []):
        return None
    return owners[0]


def wait_until_settled(api: Api, probes: Probes, since: float, timeout: float) -> str:
    """Both alive (lbctl_l2_alive_instances 2 on each), exactly one owner, the steady one
    (with both alive, rendezvous always picks the same instance: a restarted owner takes its VIP
    back), and the last SETTLE_QUIET s of probes all answered through it; answers the owner."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        m = {n: api.metrics(n) for n in INSTANCES}
        owners = [n for n in INSTANCES if (m[n] or {}).get("lbctl_l2_owned_vips") == 1]
        alive = all((m[n] or {}).get("lbctl_l2_alive_instances") == 2 for n in INSTANCES)
        last = f"metrics {m}"
        if alive and owners == [STEADY_OWNER]:
            owner = owners[0]
            now = time.monotonic()
            recent = [c for c in probes.since(max(since, now - SETTLE_QUIET - 0.3))
                      if c.end <= now]
            window = [c for c in recent if c.start >= now - SETTLE_QUIET]
            if now - since >= SETTLE_QUIET and len(window) >= 10 \
                    and all(c.via == owner for c in window):
                announced = api.announced(owner)
                if announced is not None and VIP in announced:
                    return owner
                last = f"{owner} owns per metrics, status announced {announced}"
            else:
                last = f"owner {owner}; recent probes {[c.via or c.error for c in window][-8:]}"
        time.sleep(0.1)
    raise BenchError(f"not settled within {timeout:.0f} s: {last}")


def measure(args: argparse.Namespace, daemons: dict[str, Daemon], api: Api, probes: Probes,
            deadline: float) -> list[Kill]:
    kills: list[Kill] = []
    owner = wait_until_settled(api, probes, time.monotonic(), 30)
    for i in range(args.kills):
        if time.monotonic() + 12 > deadline:
            print(f"budget of {args.budget:.0f} s reached after {i} kills; stopping",
                  flush=True)
            break
        found = find_owner(api)
        if found != owner:
            raise BenchError(f"before kill {i + 1}: the owner is {found}, expected {owner}")
        victim, survivor = owner, daemons[owner].other
        daemons[victim].kill()
        t0 = time.monotonic()
        failover: float | None = None
        while time.monotonic() < t0 + args.max_failover:
            hit = next((c for c in probes.since(t0) if c.via == survivor), None)
            if hit is not None:
                failover = hit.end - t0
                break
            time.sleep(0.01)
        time.sleep(0.1)  # let the connections in flight at the takeover finish
        after = [c for c in probes.since(t0) if failover is None or c.start <= t0 + failover]
        failed = sum(1 for c in after if c.via is None)
        via_victim = sum(1 for c in after if c.via == victim)
        errors = sorted({c.error for c in after if c.via is None})
        restart = time.monotonic()
        daemons[victim].start()
        note = ", ".join(errors)
        try:
            owner = wait_until_settled(api, probes, restart, 20)
            settle: float | None = time.monotonic() - restart
        except BenchError as exc:
            kills.append(Kill(victim, failover, failed, via_victim, None, str(exc)))
            print_kill(i + 1, kills[-1])
            raise
        kills.append(Kill(victim, failover, failed, via_victim, settle, note))
        print_kill(i + 1, kills[-1])
    return kills


def print_kill(n: int, k: Kill) -> None:
    took = f"{k.failover:.3f} s" if k.failover is not None else "no failover"
    settle = f"{k.settle:.1f} s" if k.settle is not None else "-"
    print(f"  kill {n:2}: SIGKILL {k.victim}: failover {took}; after the kill "
          f"{k.failed} connections failed, {k.via_victim} still carried by {k.victim} "
          f"(its kernel); restart settled in {settle}" + (f" ({k.note})" if k.note else ""),
          flush=True)


def report(kills: list[Kill], args: argparse.Namespace) -> bool:
    done = Tally("kills done", args.kills, len(kills),
                 f"the {args.budget:.0f} s budget ran out" if len(kills) < args.kills else "")
    times = [k.failover for k in kills if k.failover is not None]
    missing = sum(1 for k in kills if k.failover is None)
    print()
    print(f"## L2 VIP failover ({args.dataplane} data plane, {len(kills)} SIGKILLs of the "
          f"owner)")
    print()
    print("| kills | median s | max s | min s | no failover within "
          f"{args.max_failover:.0f} s | failed conns (median/kill) "
          "| conns still via the killed instance (median/kill) |")
    print("|---|---|---|---|---|---|---|")
    med = statistics.median(times) if times else None
    worst = max(times) if times else None
    print(f"| {len(kills)} | {fmt(med)} | {fmt(worst)} | {fmt(min(times) if times else None)}"
          f" | {missing} | {statistics.median([k.failed for k in kills]) if kills else '-'} "
          f"| {statistics.median([k.via_victim for k in kills]) if kills else '-'} |")
    print()
    print("failover = SIGKILL of the owner (reaped) -> end of the first new client connection "
          f"carried by the survivor; probes every {PROBE_INTERVAL * 1000:.0f} ms, each given "
          f"{args.probe_timeout:.2f} s.")
    ok = med is not None and med <= GOAL_MEDIAN_S and missing == 0
    if not done.complete:
        print(done)
    print(f"failover median <= {GOAL_MEDIAN_S:.0f} s: "
          f"{verdict(ok, done, yes='PASS', no='MISS')}"
          + ("" if missing == 0 else f" ({missing} kills without failover)"))
    return ok and done.complete


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# -- main ---------------------------------------------------------------------------------------
def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def node(logdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    with (logdir / "node.log").open("ab") as out:
        popen = subprocess.Popen(in_ns(NS_NODE, sys.executable, str(Path(__file__).resolve()),
                                       "--node"), stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield popen
    finally:
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(5)


def wait_node_listening(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run(in_ns(NS_NODE, "ss", "-Hltn", f"sport = :{NODE_PORT}"), check=False
               ).stdout.strip():
            return
        time.sleep(0.1)
    raise BenchError(f"the node does not listen on :{NODE_PORT}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--dataplane", choices=["nftables", "userspace"], default="nftables")
    p.add_argument("--budget", type=float, default=170.0,
                   help="seconds for the whole run; kills that do not fit are skipped")
    p.add_argument("--probe-timeout", type=float, default=0.2,
                   help="seconds each probe connection may take (connect + answer)")
    p.add_argument("--max-failover", type=float, default=8.0,
                   help="seconds to wait for the survivor before calling it no failover")
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--node", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 1 <= args.kills <= 100 or not 20 <= args.budget <= 1800:
        p.error("--kills must be 1..100 and --budget 20..1800 s")
    if not 0.02 <= args.probe_timeout <= 2:
        p.error("--probe-timeout must be 0.02..2 s")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.probe:
        with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
            asyncio.run(probe_loop(args.probe_timeout))
        return 0
    if args.node:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(node_server())
        return 0
    if os.geteuid() != 0:
        print("needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 2
    if not LBCTL.exists():
        print(f"{LBCTL} not installed", file=sys.stderr)
        return 2
    if args.dataplane == "nftables" and shutil.which("nft") is None:
        print("the nftables data plane needs the `nft` binary", file=sys.stderr)
        return 2
    started = time.monotonic()
    deadline = started + args.budget
    signal.signal(signal.SIGTERM, _terminate)
    cpus = os.cpu_count() or 0
    print(f"lbctl L2 failover benchmark, {time.strftime('%Y-%m-%d %H:%M:%S')}, {cpus} CPU(s); "
          f"{args.kills} kills, {args.dataplane} data plane, budget {args.budget:.0f} s",
          flush=True)
    workdir = Path(tempfile.mkdtemp(prefix=PREFIX))
    daemons: dict[str, Daemon] = {}
    api: Api | None = None
    probes: Probes | None = None
    ok = False
    try:
        remove_namespaces([n for n in existing_namespaces() if n in ALL_NS], PREFIX)
        topology_up()
        config = workdir / "balancers.yaml"
        config.write_text(balancers_yaml(args.dataplane))
        token = secrets.token_hex(16)
        token_file = workdir / "token"
        token_file.write_text(token + "\n")
        (workdir / "heartbeat-key").write_text(secrets.token_hex(16) + "\n")
        with node(workdir) as node_proc:
            wait_node_listening()
            daemons = {n: Daemon(n, config, token_file, workdir) for n in INSTANCES}
            for d in daemons.values():
                d.start()
            api = Api(token)
            for name, d in daemons.items():
                t_end = time.monotonic() + 30
                while (got := api.dataplane(name)) is None:
                    if not d.alive() or time.monotonic() > t_end:
                        raise BenchError(f"instance {name} did not come up:\n{tail(d.log)}")
                    time.sleep(0.2)
                if got != args.dataplane:
                    raise BenchError(f"instance {name} serves web with the {got!r} data plane, "
                                     f"not {args.dataplane!r} (fell back?):\n{tail(d.log)}")
            probes = Probes(args.probe_timeout, workdir)
            kills = measure(args, daemons, api, probes, deadline)
            if node_proc.poll() is not None:
                raise BenchError("the node server died")
        report(kills, args)
        ok = True
        print(f"(run took {time.monotonic() - started:.0f} s)")
    except BenchError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        for d in daemons.values():
            print(f"--- {d.log.name}:\n{tail(d.log)}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if probes is not None:
                probes.stop()
            if api is not None:
                api.close()
            for d in daemons.values():
                d.stop()
            remove_own_namespaces(ALL_NS, PREFIX)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
