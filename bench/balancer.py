"""Data-plane benchmark of lbctl's software load balancer: one run, side by side, ratios printed.

Topology (network namespaces, all named `lbb-*`, created by this script and removed on exit,
Ctrl-C and SIGTERM included; leftovers of a killed run are removed at start; the other bench
scripts' `lbb-l2-*` / `lbb-nft-*` namespaces are left alone):

    lbb-client 10.99.0.2 --veth-- 10.99.0.1 lbb-lb (VIP 10.99.0.100/32 on lo, ip_forward on)
                                  10.99.1.1 bridge lbb-br --veth-- lbb-node1 10.99.1.11
                                                          --veth-- lbb-node2 10.99.1.12
                                                          --veth-- lbb-node3 10.99.1.13

Each node serves a "NodePort": nginx on :30080 (1 worker, a tiny 200 reply naming the node,
keep-alive without a request limit; bench/balancer/nginx.conf) and `iperf3 -s` on :30201. The
client reaches the VIP and the nodes through lbb-lb, so "direct" is still routed by the
balancer's namespace, only with no balancer in the path.

Rows (`--only` takes the names in brackets); each is a `Config` that starts and stops itself
in lbb-lb, so a new row is one entry in `CONFIGS`:
- [direct] no balancer: wrk aimed at the three nodes (bench/balancer/spread.lua puts one wrk
  thread on each), iperf3 to node1.
- [haproxy] HAProxy 2.6 (Debian), TCP mode, 1 thread, maxconn 9000: bench/haproxy/haproxy.cfg.
- [haproxy-splice] the same with `option splice-auto`, maxconn 6000:
  bench/haproxy/haproxy-splice.cfg (the baseline the goals are measured against).
- [lbctl] `lbctl balancer serve --config bench/balancer/lbctl-userspace.yaml`.
- [lbctl-nft] `lbctl balancer serve --config bench/balancer/lbctl-nftables.yaml`: the same
  balancers with `dataplane: nftables`. The daemon runs as root in lbb-lb (CAP_NET_ADMIN), so it
  programs `table inet lbctl` there (DNAT by jhash over a Maglev slot map, masqueraded) and
  binds nothing. After every start the runner reads `GET /v1/balancers/{web,iperf}` and stops
  with an error unless both say `dataplane: nftables` without problems (a daemon that fell back
  to userspace would still serve, and be measured as the wrong thing). After every stop it makes
  sure the table is gone (a leftover would DNAT the VIP under the next row).
- [lbctl-reno] lbctl userspace with `upstreamCongestionControl: reno` on every TCP listener
  (the committed file with that key added, written to the run's work directory). Where the
  host's default is bbr (this machine's), and with no fq qdisc on the veths, bbr paces every
  socket with kernel timers, and a proxied stream's hop to the node then carries ~0.75x of
  what it carries with reno (measured: 15 vs 20 Gbit/s). HAProxy 2.6 has no per-connection
  setting for it; with reno as the whole balancer namespace's default (measured once, not a
  row) HAProxy + splice-request/-response reached 21.1 Gbit/s and splice-auto 14.6 (half of
  it copying), lbctl 20.1. Informational: no goals, no ejection run.
- [haproxy-splice-always] the same file with `option splice-auto` replaced by `option
  splice-request` and `option splice-response` (written to the run's work directory): HAProxy
  splicing from the first byte. HAProxy 2.6's splice-auto copies a new stream through its
  buffers (recvfrom/sendto) until `timeout connect` (5 s) has elapsed and splices after that
  (strace; with `timeout connect 9s` the switch moves to 9 s), so a 10 s iperf3 through the
  baseline is half copying, half splicing. This row and a by-half table below the ratios show
  both; informational, no goals, no ejection run.
- [haproxy-splice-2t] HAProxy + splice-auto with `nbthread 2` (the committed splice file with
  only that line changed, written to the run's work directory); no ejection run.
- [lbctl-2w] `lbctl balancer serve --workers 2`: the daemon and one worker process share each
  VIP:port (SO_REUSEPORT). Its ratios are printed against haproxy-splice-2t (the same
  parallelism); the issue's goals are checked on the one-process pair only (lbctl vs
  haproxy-splice, both one thread), so a second core never flatters a ratio.
Every balancer forwards VIP:80 round robin (nftables: a jhash of source address and port over
a Maglev slot map) to the nodes' :30080 with TCP health checks (1 s, fall 2, rise 2) and
VIP:5201 by source-IP hash (HAProxy `balance source`, lbctl `sessionAffinity: ClientIP`; for
nftables a jhash of the source address only) to :30201, so iperf3's control and data
connections reach the same node.

Loads, from lbb-client, each bounded in time (`--duration`, default 10 s):
- `iperf3 -c TARGET -t 10 -J`, one stream: Gbit/s received and the sender's retransmits;
- `wrk -t3 -c51 -d10s --latency URL`: requests/s and p99;
- the same wrk with `-H 'Connection: close'`: every request is a new connection, so its
  requests/s is the new connections/s.
Balancer CPU: utime+stime of the balancer's process tree (from /proc/PID/stat) over the
keep-alive wrk run, in % of one core (can exceed 100 with several threads/processes); the
iperf3 and Connection: close figures are printed below the table. Kernel work done for a
balancer in softirq (forwarding, the nftables row's DNAT) is not in this figure: for lbctl-nft
it is the daemon's health checks only.

The loads run `--rounds` times (default 3), interleaved (round 1 of every row, then round 2,
...), each row's balancer started fresh per round; the table shows medians. Run-to-run spread on
a shared 2-core machine is large (+-30 % in the reference figures), so only ratios from the same
run mean anything.

Ejection time (once per balancer row, after the rounds): a probe in lbb-client opens new
connections to VIP:80 at a fixed rate (`--eject-rate`, default 200/s; each sends one
`Connection: close` GET and must get a 200 naming a node within 5 s) and polls the balancer's own
view of node1 every 20 ms: HAProxy's stats page (`listen stats` on 10.99.0.1:8404 in
bench/haproxy/*.cfg; the server's status DOWN), lbctl's `GET /v1/balancers/web` (the runner
adds `--api-listen 10.99.0.1:9180 --token-file` with a random token; the target's `up`). After
2 s of that, node1 fails: by default its nginx is SIGKILLed (the port then refuses connections,
the node stays up); `--eject-how link` instead sets node1's interface down (a dead host: SYNs go
unanswered). Timed from the moment the kill returned (nginx reaped) or the link was down:
- status: until the first poll that shows node1 out of rotation;
- clients: until the start of the last probe connection that failed (refused, reset, closed
  without a reply or timed out), i.e. how long new client connections were still handed to the
  dead node as the client sees it. 0 when no connection failed at all: the balancer retried the
  failed connect on another node (lbctl does, and ejects the node at once, passively).
The table's "ejection s" is the later of the two, and the goal is checked against it; if either is
still pending at the end of `--eject-window` (default 8 s after the failure) it reads "> window".
Resolution: ~20 ms for the status, ~3/rate for the clients (a third of them go to node1). HAProxy
has `check inter 1s fall 2 rise 2` and no `option redispatch`, so a connection it sends to the
dead node fails where the client sees it. node1 is revived afterwards.

CPU placement: nothing is pinned by default. Client (wrk / iperf3), balancer, and the three
nodes' nginx and iperf3 servers share all the machine's cores (2 where the reference figures were
measured); the header prints the count. `--pin-cpu CPU|auto` pins every one-process balancer
(HAProxy with nbthread 1, lbctl without --workers) to that CPU with `taskset`, the same for each
such row (auto: the last CPU). Measured with it: lbctl's single-stream throughput rose from
~15.3 to ~16.4 Gbit/s with a tighter spread (a proxy that migrates drags the iperf3 client along,
whose segments then queue on two cores' backlogs and arrive out of order), HAProxy + splice-auto's
did not move (it is CPU-bound), and lbctl's keep-alive req/s fell by ~12 % (its core is shared
with wrk and nginx): no better overall, so it is not the default.

Tuning, per the reference pitfalls: `ip_local_port_range 1024 65000` and `tcp_tw_reuse 1` in
every namespace, `somaxconn 8192`; in lbb-lb also a 1 s conntrack TIME_WAIT timeout (applied
where conntrack is loaded). HAProxy's maxconn stays under this machine's 20k open-file limit.

    .venv/bin/python bench/balancer.py [--quick]
        [--only direct,haproxy,haproxy-splice,lbctl,lbctl-nft,lbctl-reno,
                haproxy-splice-always,haproxy-splice-2t,lbctl-2w]
        [--duration S] [--rounds N] [--eject-rate R] [--eject-window S] [--eject-how nginx|link]
        [--pin-cpu CPU|auto|none]

Goals. The userspace row (`lbctl`) is checked against HAProxy + splice-auto: throughput
>= 1.5x, req/s >= 0.8x, new conn/s >= 0.6x, ejection <= 1.5 s. Throughput is the whole
run's average, as iperf3 reports it; since the baseline copies for its first 5 s and splices
after (see haproxy-splice-always), a run shorter than 5 s (`--quick`) compares against
copying only, and the by-half table shows each phase's ratio. The nftables row (`lbctl-nft`)
has the issue's own block: throughput >= 0.8x direct, and >= 1.2x HAProxy + splice-auto on
throughput, req/s, new conn/s and p99. Every nftables ratio is printed so that higher means
nftables is better: for p99 it is HAProxy's p99 / nftables' p99 (>= 1.2x = a p99 at least 1.2x
lower), judged at the paced load (`paced.lua`: every connection waits 2 ms between requests,
so every row is offered ~20k req/s). Mind that plain wrk is closed-loop: each row's p99 is
taken at the request rate that row reaches, so a faster data plane loads the 2 shared cores
(wrk, nginx, softirq) harder and its p99 grows with it; HAProxy's lower p99 comes at
~0.6-0.8x the request rate. Its ejection time is measured and printed like the userspace
row's, without a goal (the kernel path has no passive ejection: clients fail until the
health checks, 1 s x 2, eject the node and a transaction re-programs the slot map).

Adding a row: a Config subclass (or another `Lbctl(...)` with a static file) and one line in
`CONFIGS`; `listens=False` for a data plane that binds nothing (readiness is then VIP:80
answering from every node).

Complete. A row's figure is complete when every round's load behind it completed: iperf3
reported a result, wrk was parsed and answered every request (no socket error: connect, read,
write or timeout; no non-2xx). A load that failed is counted, not fatal (the run goes on), and a
balancer that did not start fails every load of that round. The ejection figure is complete when
the probe made every connection it planned, node1 served some of them and (where polled) the
balancer's status was readable and showed node1 up before it failed. A ratio, a goal's PASS/MISS
and a by-half ratio are printed only when both rows' figures behind it are complete; otherwise
the line says "INCOMPLETE: 2/3 rounds ..." for the side(s) that fell short. A row whose tool is
missing (haproxy, lbctl, nft) is skipped and so are its ratios, said so; without wrk, iperf3 or
nginx nothing runs.

`--quick` is a smoke run: 3 s loads, 1 round, 4 s ejection window. Needs root, iproute2,
nginx, haproxy, iperf3 and wrk. Traffic never leaves the lbb-* namespaces.

The node hop that the `baremetal` provider's endpoints target mode skips (VIP -> pod against
VIP -> node:nodePort -> kube-proxy's DNAT -> pod, one daemon, side by side) has a benchmark of
its own with pods behind the nodes: bench/balancer_hop.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from bench.completeness import (
    Judged,
    Tally,
    complete,
    ratio,
    shortfalls,
    verdict,
    wrk_errors,
)
from bench.netns_tools import (
    BenchError,
    existing_namespaces,
    in_ns,
    remove_namespaces,
    remove_own_namespaces,
    run,
    tail,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
HAPROXY_CFG = BENCH / "haproxy" / "haproxy.cfg"
HAPROXY_SPLICE_CFG = BENCH / "haproxy" / "haproxy-splice.cfg"
LBCTL_USERSPACE = BENCH / "balancer" / "lbctl-userspace.yaml"
LBCTL_NFTABLES = BENCH / "balancer" / "lbctl-nftables.yaml"
NGINX_TEMPLATE = BENCH / "balancer" / "nginx.conf"
SPREAD_LUA = BENCH / "balancer" / "spread.lua"
PACED_LUA = BENCH / "balancer" / "paced.lua"
PACED_DELAY_MS = 2
"""Paced wrk: 51 connections each waiting 2 ms between requests offer every row the same
~20k req/s (well under every row's maximum), so its p99 compares latency at equal load."""
LBCTL = ROOT / ".venv" / "bin" / "lbctl"

PREFIX = "lbb-"
NS_CLIENT = "lbb-client"
NS_LB = "lbb-lb"
NODES = ("node1", "node2", "node3")
NODE_IP = {"node1": "10.99.1.11", "node2": "10.99.1.12", "node3": "10.99.1.13"}
CLIENT_IP = "10.99.0.2"
LB_CLIENT_SIDE_IP = "10.99.0.1"
LB_NODE_SIDE_IP = "10.99.1.1"
VIP = "10.99.0.100"
HTTP_PORT = 80
IPERF_PORT = 5201
NODE_HTTP_PORT = 30080
NODE_IPERF_PORT = 30201
HAPROXY_STATS_PORT = 8404  # bench/haproxy/*.cfg `listen stats`
LBCTL_API_PORT = 9180
STATUS_POLL_S = 0.02
BASELINE = "haproxy-splice"
SPLICE_AUTO = "    option splice-auto\n"
SPLICE_ALWAYS = "    option splice-request\n    option splice-response\n"
"""The haproxy-splice-always row: HAProxy told to splice both directions from the first byte."""
EJECT_NODE = "node1"
PROBE_TIMEOUT = 5.0

GOAL_THROUGHPUT = 1.5
GOAL_RPS = 0.8
GOAL_CONN = 0.6
GOAL_EJECTION_S = 1.5
# the nftables row's goals (the issue): >= 0.8x direct throughput, >= 1.2x HAProxy + splice-auto
# on every metric (p99 compared as HAProxy's / nftables', so higher is better there too)
GOAL_NFT_VS_DIRECT = 0.8
GOAL_NFT_VS_HAPROXY = 1.2
NFT_TABLE = ("inet", "lbctl")  # lbctl's one table (lbctl/balancer/nft_rules.py)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def node_ns(node: str) -> str:
    return f"{PREFIX}{node}"


ALL_NS = (NS_CLIENT, NS_LB, *(node_ns(n) for n in NODES))


# -- processes and commands ---------------------------------------------------------------------
@dataclass
class Proc:
    """A long-running server we started in a namespace (own session: killed as a group)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 5.0) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        else:  # the leader exited; children (nginx workers) may remain in its group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)


class Procs:
    """Every server this run started, so cleanup can stop them by pid."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[Proc] = []

    def spawn(self, name: str, ns: str, argv: Sequence[str]) -> Proc:
        log = self.logdir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(in_ns(ns, *argv), stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


def process_tree_ticks(root: int) -> int:
    """utime+stime (clock ticks) of `root` and every live descendant, threads included."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])
    total = 0
    for pid, value in ticks.items():
        p, hops = pid, 0
        while p > 1 and p != root and hops < 64:
            p, hops = parent.get(p, 0), hops + 1
        if p == root:
            total += value
    return total


# -- the topology -------------------------------------------------------------------------------
def sysctl(ns: str, **values: str | int) -> None:
    """Set sysctls in a namespace; keys that do not exist there (conntrack) are skipped."""
    args = [f"{k.replace('__', '.')}={v}" for k, v in values.items()]
    run(in_ns(ns, "sysctl", "-e", "-q", "-w", *args))


def churn_tuning(ns: str) -> None:
    sysctl(ns, net__ipv4__ip_local_port_range="1024 65000", net__ipv4__tcp_tw_reuse=1,
           net__core__somaxconn=8192, net__ipv4__tcp_max_syn_backlog=8192)


def conntrack_tuning(ns: str) -> None:
    """A short conntrack TIME_WAIT (per namespace; only exists once conntrack is loaded)."""
    sysctl(ns, net__netfilter__nf_conntrack_tcp_timeout_time_wait=1,
           net__netfilter__nf_conntrack_max=262144)


class Topology:
    """Namespaces, links, addresses and the nodes' servers."""

    def __init__(self, procs: Procs, workdir: Path) -> None:
        self.procs = procs
        self.workdir = workdir
        self.nginx: dict[str, Proc] = {}
        self.iperf: dict[str, Proc] = {}

    def up(self) -> None:
        for ns in ALL_NS:
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        # client <-> balancer
        run(["ip", "-n", NS_CLIENT, "link", "add", "eth0", "type", "veth", "peer", "name",
             "lbb-client", "netns", NS_LB])
        run(["ip", "-n", NS_CLIENT, "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0"])
        run(["ip", "-n", NS_CLIENT, "link", "set", "eth0", "up"])
        run(["ip", "-n", NS_LB, "addr", "add", f"{LB_CLIENT_SIDE_IP}/24", "dev", "lbb-client"])
        run(["ip", "-n", NS_LB, "link", "set", "lbb-client", "up"])
        run(["ip", "-n", NS_CLIENT, "route", "add", f"{VIP}/32", "via", LB_CLIENT_SIDE_IP])
        run(["ip", "-n", NS_CLIENT, "route", "add", "10.99.1.0/24", "via", LB_CLIENT_SIDE_IP])
        run(["ip", "-n", NS_LB, "addr", "add", f"{VIP}/32", "dev", "lo"])
        # balancer <-> nodes, over a bridge in the balancer's namespace
        run(["ip", "-n", NS_LB, "link", "add", "lbb-br", "type", "bridge"])
        run(["ip", "-n", NS_LB, "addr", "add", f"{LB_NODE_SIDE_IP}/24", "dev", "lbb-br"])
        run(["ip", "-n", NS_LB, "link", "set", "lbb-br", "up"])
        for node in NODES:
            ns, port = node_ns(node), f"lbb-{node}"
            run(["ip", "-n", NS_LB, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                 "netns", ns])
            run(["ip", "-n", NS_LB, "link", "set", port, "master", "lbb-br", "up"])
            run(["ip", "-n", ns, "addr", "add", f"{NODE_IP[node]}/24", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            run(["ip", "-n", ns, "route", "add", "default", "via", LB_NODE_SIDE_IP])
        for ns in ALL_NS:
            churn_tuning(ns)
        sysctl(NS_LB, net__ipv4__ip_forward=1)
        conntrack_tuning(NS_LB)

    def nginx_conf(self, node: str) -> Path:
        path = self.workdir / f"nginx-{node}.conf"
        if not path.exists():
            text = NGINX_TEMPLATE.read_text().format(node=node, port=NODE_HTTP_PORT,
                                                     dir=self.workdir)
            path.write_text(text)
        return path

    def start_nginx(self, node: str) -> None:
        conf = self.nginx_conf(node)
        self.nginx[node] = self.procs.spawn(f"nginx-{node}", node_ns(node),
                                            ["nginx", "-c", str(conf), "-e", "stderr"])

    def kill_nginx(self, node: str) -> None:
        self.nginx[node].stop(signal.SIGKILL)

    def fail_node(self, node: str, how: str) -> None:
        """`nginx`: SIGKILL its nginx (returns once reaped: the port refuses); `link`: its
        interface down (the host goes silent)."""
        if how == "link":
            run(["ip", "-n", node_ns(node), "link", "set", "eth0", "down"])
        else:
            self.kill_nginx(node)

    def revive_node(self, node: str) -> None:
        """Undo `fail_node` (whichever way it failed)."""
        ns = node_ns(node)
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "route", "replace", "default", "via", LB_NODE_SIDE_IP])
        if not self.nginx[node].alive():
            self.start_nginx(node)
            self.wait_listening(node, NODE_HTTP_PORT, self.nginx[node])

    def start_servers(self) -> None:
        for node in NODES:
            self.start_nginx(node)
            self.iperf[node] = self.procs.spawn(
                f"iperf3-{node}", node_ns(node), ["iperf3", "-s", "-p", str(NODE_IPERF_PORT)])
        for node in NODES:
            self.wait_listening(node, NODE_HTTP_PORT, self.nginx[node])
            self.wait_listening(node, NODE_IPERF_PORT, self.iperf[node])

    def wait_listening(self, node: str, port: int, proc: Proc, timeout: float = 10.0) -> None:
        wait_listen(node_ns(node), port, proc, timeout)


def wait_listen(ns: str, port: int, proc: Proc | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise BenchError(f"{proc.name} exited {proc.popen.returncode}:\n{tail(proc.log)}")
        out = run(in_ns(ns, "ss", "-Hltn", f"sport = :{port}"), check=False).stdout
        if out.strip():
            return
        time.sleep(0.1)
    who = proc.name if proc else ns
    raise BenchError(f"nothing listens on :{port} in {ns} after {timeout:.0f} s ({who})")


@dataclass(frozen=True)
class StatusRequest:
    """GET http://{LB_CLIENT_SIDE_IP}:{port}{path} with these headers."""

    port: int
    path: str
    headers: dict[str, str] = field(default_factory=dict)


# -- the rows -----------------------------------------------------------------------------------
class Config:
    """One row: what sits in the balancer's place, and how to start and stop it in lbb-lb."""

    name = ""
    label = ""
    ejection = True
    """Run the dead-node test (not for `direct`: nothing to eject)."""
    goals = False
    """Check the issue's (userspace) goals against the baseline for this row."""
    nft_goals = False
    """Check the issue's nftables goals (vs direct and vs the baseline) for this row."""
    baseline = BASELINE
    """The row this one's ratios are printed against (the same parallelism)."""

    def unavailable(self) -> str | None:
        """Why this row cannot run here, or None."""
        return None

    def http_url(self) -> str:
        return f"http://{VIP}:{HTTP_PORT}/"

    def wrk_args(self) -> list[str]:
        return []

    def iperf_target(self) -> tuple[str, int]:
        return VIP, IPERF_PORT

    def start(self, procs: Procs) -> None:
        """Start serving; return once VIP:80 answers from every node."""

    def stop(self) -> None:
        """Stop serving; a later `start` must work."""

    def cpu_ticks(self) -> int | None:
        """CPU clock ticks used so far by the balancer, None when there is no process."""
        return None

    def status_request(self) -> StatusRequest | None:
        """Where the balancer reports target health (polled from lbb-client), or None."""
        return None

    def target_down(self, body: str, address: str, port: int) -> bool | None:
        """Does this status document say the target is out of rotation (None: cannot tell)?"""
        return None


class Direct(Config):
    name = "direct"
    label = "direct (no balancer, still routed)"
    ejection = False

    def http_url(self) -> str:
        return f"http://{NODE_IP['node1']}:{NODE_HTTP_PORT}/"

    def wrk_args(self) -> list[str]:
        return ["-s", str(SPREAD_LUA)]

    def iperf_target(self) -> tuple[str, int]:
        return NODE_IP["node1"], NODE_IPERF_PORT


class ProcessBalancer(Config):
    """A balancer that is one process (tree) run in lbb-lb."""

    listens = True
    """It binds VIP:80 and VIP:5201 itself (False for a kernel data plane)."""

    processes = 1
    """Threads or processes it serves with (one-process balancers are pinned: `--pin-cpu`)."""
    pin_cpu: str | None = None
    """Set by main() from --pin-cpu for every one-process balancer row."""

    def __init__(self) -> None:
        self.proc: Proc | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self, procs: Procs) -> None:
        argv = self.argv()
        if self.pin_cpu is not None and self.processes == 1:
            argv = ["taskset", "-c", self.pin_cpu, *argv]
        self.proc = procs.spawn(self.name, NS_LB, argv)
        if self.listens:
            wait_listen(NS_LB, HTTP_PORT, self.proc, 30.0)
            wait_listen(NS_LB, IPERF_PORT, self.proc, 10.0)
        wait_serving(self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def cpu_ticks(self) -> int | None:
        return process_tree_ticks(self.proc.pid) if self.proc is not None else None


class HAProxy(ProcessBalancer):
    """HAProxy run on a committed config file, or on that file with a few lines changed
    (`changes`: exact line -> replacement, written to the run's work directory), so a variant
    row differs from its committed file only where it says."""

    def __init__(self, name: str, label: str, cfg: Path, *, threads: int = 1,
                 changes: dict[str, str] | None = None, ejection: bool = True) -> None:
        super().__init__()
        self.name, self.label, self.cfg, self.threads = name, label, cfg, threads
        self.processes = threads
        self.changes = dict(changes or {})
        if threads != 1:
            self.changes["    nbthread 1\n"] = f"    nbthread {threads}\n"
        self.ejection = ejection and threads == 1
        self.run_cfg = cfg

    def start(self, procs: Procs) -> None:
        if self.changes:
            text = self.cfg.read_text()
            for line, replacement in self.changes.items():
                if line not in text:
                    raise BenchError(f"{self.cfg} has no line {line.strip()!r} to change")
                text = text.replace(line, replacement)
            self.run_cfg = procs.logdir / f"{self.name}.cfg"
            self.run_cfg.write_text(text)
        super().start(procs)

    def unavailable(self) -> str | None:
        if shutil.which("haproxy") is None:
            return "the `haproxy` binary is not installed"
        return None

    def argv(self) -> list[str]:
        return ["haproxy", "-db", "-f", str(self.run_cfg)]

    def status_request(self) -> StatusRequest | None:
        return StatusRequest(HAPROXY_STATS_PORT, "/stats;csv")

    def target_down(self, body: str, address: str, port: int) -> bool | None:
        """The `nodes` backend's server on that address, from the stats CSV: DOWN (not
        "UP 1/2", which is still in rotation)."""
        lines = body.splitlines()
        if not lines or not lines[0].startswith("# "):
            return None
        header = lines[0][2:].split(",")
        try:
            px, sv, st = header.index("pxname"), header.index("svname"), header.index("status")
        except ValueError:
            return None
        name = next((n for n, ip in NODE_IP.items() if ip == address), "")
        for line in lines[1:]:
            cols = line.split(",")
            if len(cols) > st and cols[px] == "nodes" and cols[sv] == name:
                return cols[st].startswith(("DOWN", "MAINT"))
        return None


class Lbctl(ProcessBalancer):
    BALANCERS = ("web", "iperf")
    """The balancers in bench/balancer/lbctl-*.yaml."""

    def __init__(self, name: str, label: str, config: Path, *, listens: bool = True,
                 workers: int = 1, baseline: str = BASELINE,
                 listener_extra: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.name, self.label, self.config, self.listens = name, label, config, listens
        self.workers, self.baseline = workers, baseline
        self.listener_extra = dict(listener_extra or {})
        """Keys added to every TCP listener of the committed file (a variant row)."""
        self.run_config = config
        self.processes = workers
        self.token = ""
        self.token_file = Path("/nonexistent")
        self.dataplane = "userspace" if listens else "nftables"
        """What the status API must report for every balancer (checked after each start)."""
        self.goals = listens and workers == 1 and not listener_extra
        self.nft_goals = not listens
        self.ejection = not listener_extra

    def unavailable(self) -> str | None:
        if not LBCTL.exists():
            return f"{LBCTL} not installed"
        probe = run([str(LBCTL), "balancer", "serve", "--help"], check=False)
        if probe.returncode != 0:
            return "`lbctl balancer serve` not available yet"
        if self.dataplane == "nftables" and shutil.which("nft") is None:
            return "the `nft` binary is not installed"
        return None

    def start(self, procs: Procs) -> None:
        if self.listener_extra:  # the committed file with keys added, in the work directory
            doc = yaml.safe_load(self.config.read_text())
            for balancer in doc["balancers"]:
                for listener in balancer["listeners"]:
                    if listener.get("protocol", "TCP") == "TCP":
                        listener.update(self.listener_extra)
            self.run_config = procs.logdir / f"{self.name}.yaml"
            self.run_config.write_text(yaml.safe_dump(doc))
        self.token = secrets.token_hex(16)
        self.token_file = procs.logdir / f"{self.name}.token"
        self.token_file.write_text(self.token + "\n")
        super().start(procs)
        try:
            self.check_dataplane()
        except BaseException:
            self.stop()
            raise
        if self.dataplane == "nftables":
            conntrack_tuning(NS_LB)  # in case conntrack was first loaded by lbctl's NAT

    def check_dataplane(self, timeout: float = 10.0) -> None:
        """Every balancer's status says `dataplane: <expected>` with no problem (an nftables
        balancer that fell back to userspace would say "userspace" and name the reason)."""
        request = self.status_request()
        assert request is not None and self.proc is not None
        deadline = time.monotonic() + timeout
        for balancer in self.BALANCERS:
            body, doc = "", None
            while doc is None:
                out = run(probe_argv("status", "--path", f"/v1/balancers/{balancer}"),
                          timeout=15, check=False, env=status_env(request))
                body = out.stdout.strip()
                with contextlib.suppress(ValueError):
                    doc = json.loads(body) if out.returncode == 0 else None
                if doc is None:
                    if time.monotonic() > deadline:
                        raise BenchError(f"{self.name}: no status for balancer {balancer} "
                                         f"after {timeout:.0f} s: {body[-300:]}\n"
                                         f"{tail(self.proc.log)}")
                    time.sleep(0.2)
            status = doc.get("status", {}) if isinstance(doc, dict) else {}
            got = status.get("dataplane")
            if got != self.dataplane:
                raise BenchError(f"{self.name}: balancer {balancer} is served by the {got!r} "
                                 f"data plane, not {self.dataplane!r} (fell back?): problems "
                                 f"{status.get('problems')}\n{tail(self.proc.log)}")
            if status.get("problems"):
                raise BenchError(f"{self.name}: balancer {balancer} reports problems: "
                                 f"{status['problems']}")

    def stop(self) -> None:
        super().stop()
        if self.dataplane == "nftables":
            # the daemon deletes its table on SIGTERM; one left behind (SIGKILL after a hung
            # stop) would DNAT the VIP under the next row's balancer: remove it, say so
            family, table = NFT_TABLE
            if run(in_ns(NS_LB, "nft", "list", "table", family, table), check=False
                   ).returncode == 0:
                print(f"warning: {self.name} left table {family} {table} in {NS_LB}; "
                      "deleting it", file=sys.stderr)
                run(in_ns(NS_LB, "nft", "delete", "table", family, table), check=False)

    def argv(self) -> list[str]:
        return [str(LBCTL), "balancer", "serve", "--config", str(self.run_config),
                "--api-listen", f"{LB_CLIENT_SIDE_IP}:{LBCTL_API_PORT}",
                "--token-file", str(self.token_file), "--workers", str(self.workers)]

    def status_request(self) -> StatusRequest | None:
        return StatusRequest(LBCTL_API_PORT, "/v1/balancers/web",
                             {"Authorization": f"Bearer {self.token}"})

    def target_down(self, body: str, address: str, port: int) -> bool | None:
        """`status.listeners[port 80].targets[address:port].up` of balancer `web`."""
        try:
            doc = json.loads(body)
            for li in doc["status"]["listeners"]:
                if li["port"] != HTTP_PORT:
                    continue
                for t in li["targets"]:
                    if t["address"] == address and t["port"] == port:
                        return not t["up"]
        except (ValueError, KeyError, TypeError):
            return None
        return None


CONFIGS: list[Config] = [
    Direct(),
    HAProxy("haproxy", "HAProxy 2.6 tcp, 1 thread", HAPROXY_CFG),
    HAProxy("haproxy-splice", "HAProxy 2.6 + `option splice-auto`", HAPROXY_SPLICE_CFG),
    Lbctl("lbctl", "lbctl userspace", LBCTL_USERSPACE),
    Lbctl("lbctl-nft", "lbctl nftables", LBCTL_NFTABLES, listens=False),
    Lbctl("lbctl-reno", "lbctl userspace, `upstreamCongestionControl: reno`", LBCTL_USERSPACE,
          listener_extra={"upstreamCongestionControl": "reno"}),
    HAProxy("haproxy-splice-always", "HAProxy 2.6 + `option splice-request/-response`",
            HAPROXY_SPLICE_CFG, changes={SPLICE_AUTO: SPLICE_ALWAYS}, ejection=False),
    HAProxy("haproxy-splice-2t", "HAProxy 2.6 + `option splice-auto`, 2 threads",
            HAPROXY_SPLICE_CFG, threads=2),
    Lbctl("lbctl-2w", "lbctl userspace, --workers 2", LBCTL_USERSPACE, workers=2,
          baseline="haproxy-splice-2t"),
]


# -- probes (run as a child of this script in lbb-client) ---------------------------------------
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


async def probe_once(host: str, port: int, limit: float) -> tuple[bool, str]:
    """One new connection, one GET: (True, node name) or (False, why)."""
    try:
        async with asyncio.timeout(limit):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(REQUEST)
                data = await reader.read(-1)
            finally:
                writer.close()
    except TimeoutError:
        return False, "timeout"
    except OSError as exc:
        return False, type(exc).__name__
    if not data:
        return False, "closed"
    if not data.startswith(b"HTTP/1.1 200"):
        return False, data.split(b"\r\n", 1)[0].decode(errors="replace")[:40]
    return True, data.rpartition(b"\r\n\r\n")[2].strip().decode(errors="replace")


async def probe_ready(host: str, port: int, seconds: float) -> int:
    """Exit 0 once 12 consecutive requests succeed and every node has answered."""
    deadline = time.monotonic() + seconds
    streak, seen = 0, set[str]()
    last = ""
    while time.monotonic() < deadline:
        ok, info = await probe_once(host, port, 2.0)
        if ok:
            streak += 1
            seen.add(info)
        else:
            streak, last = 0, info
            await asyncio.sleep(0.1)
        if streak >= 12 and seen >= set(NODES):
            return 0
    print(f"not ready: streak {streak}, nodes {sorted(seen)}, last error {last}", flush=True)
    return 1


async def http_get(host: str, port: int, path: str, headers: dict[str, str], limit: float
                   ) -> str | None:
    """The body of a 200 to an HTTP/1.0 GET, None on any failure."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    try:
        async with asyncio.timeout(limit):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n{head}\r\n".encode())
                data = await reader.read(-1)
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    status, _, fields = head_bytes.partition(b"\r\n")
    if b" 200 " not in status + b" ":
        return None
    if b"transfer-encoding: chunked" in fields.lower():  # HAProxy's stats page, even to 1.0
        out = bytearray()
        while body:
            size_line, _, body = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            out += body[:size]
            body = body[size + 2:]
        body = bytes(out)
    return body.decode(errors="replace")


async def poll_status(config: Config, request: StatusRequest, stop: asyncio.Event,
                      out: list[tuple[float, bool | None]]) -> None:
    """(time the answer came, is node1 out of rotation) every STATUS_POLL_S until `stop`."""
    address = NODE_IP[EJECT_NODE]
    while not stop.is_set():
        body = await http_get(LB_CLIENT_SIDE_IP, request.port, request.path, request.headers,
                              1.0)
        down = config.target_down(body, address, NODE_HTTP_PORT) if body is not None else None
        out.append((time.monotonic(), down))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STATUS_POLL_S)


async def probe_eject(host: str, port: int, rate: float, seconds: float,
                      status_of: str | None) -> int:
    """New connections at `rate` for `seconds` (and the balancer's status polled meanwhile);
    prints 'started', then JSON {"conns": [[start (monotonic), ok, node or error, seconds],
    ...],
    "status": [[time, node1 down (null: unknown)], ...]}."""
    records: list[tuple[float, bool, str, float]] = []
    status: list[tuple[float, bool | None]] = []
    tasks: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    poller: asyncio.Task[None] | None = None
    config = next((c for c in CONFIGS if c.name == status_of), None)
    request_doc = os.environ.get("LBB_STATUS")
    if config is not None and request_doc:
        doc = json.loads(request_doc)
        request = StatusRequest(int(doc["port"]), str(doc["path"]), dict(doc["headers"]))
        poller = asyncio.create_task(poll_status(config, request, stop, status))

    async def one(start: float) -> None:
        ok, info = await probe_once(host, port, PROBE_TIMEOUT)
        records.append((start, ok, info, time.monotonic() - start))

    print("started", flush=True)
    t0 = time.monotonic()
    count = int(rate * seconds)
    for i in range(count):
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(time.monotonic())))
    stop.set()
    await asyncio.gather(*tasks, *([poller] if poller else []))
    records.sort()
    print(json.dumps({"conns": records, "status": status}), flush=True)
    return 0


async def probe_status(path: str) -> int:
    """Print the body of GET `path` from the status endpoint in LBB_STATUS (exit 1: none)."""
    doc = json.loads(os.environ["LBB_STATUS"])
    body = await http_get(LB_CLIENT_SIDE_IP, int(doc["port"]), path, dict(doc["headers"]), 3.0)
    if body is None:
        return 1
    print(body, flush=True)
    return 0


def probe_main(args: argparse.Namespace) -> int:
    if args.probe == "ready":
        return asyncio.run(probe_ready(args.host, args.port, args.seconds))
    if args.probe == "status":
        return asyncio.run(probe_status(args.path))
    return asyncio.run(probe_eject(args.host, args.port, args.rate, args.seconds,
                                   args.status_of))


def probe_argv(mode: str, *extra: str) -> list[str]:
    return in_ns(NS_CLIENT, sys.executable, str(Path(__file__).resolve()), "--probe", mode,
                 "--host", VIP, "--port", str(HTTP_PORT), *extra)


def status_env(request: StatusRequest) -> dict[str, str]:
    """The environment handing a probe the status endpoint (the token stays off argv)."""
    return {**os.environ, "LBB_STATUS": json.dumps({"port": request.port, "path": request.path,
                                                    "headers": request.headers})}


def wait_serving(proc: Proc, timeout: float = 20.0) -> None:
    """VIP:80 answers from every node (health checks have passed)."""
    out = run(probe_argv("ready", "--seconds", str(timeout)), timeout=timeout + 15, check=False)
    if out.returncode != 0:
        raise BenchError(f"{proc.name} does not serve VIP:{HTTP_PORT}: {out.stdout.strip()}\n"
                         f"{tail(proc.log)}")


# -- loads --------------------------------------------------------------------------------------
@dataclass
class Round:
    gbps: float | None = None
    retransmits: int | None = None
    gbps_halves: tuple[float, float] | None = None
    """iperf3's per-second figures averaged over the first and the second half of the run."""
    rps: float | None = None
    p99_ms: float | None = None
    paced_rps: float | None = None
    paced_p99_ms: float | None = None
    conn_per_s: float | None = None
    cpu_iperf: float | None = None
    cpu_wrk: float | None = None
    cpu_close: float | None = None
    errors: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """Load (LOADS) -> why it did not complete: no result, or requests left unanswered."""


LOADS = {"iperf3": "iperf3 runs reported a result",
         "keep-alive": "keep-alive wrk runs answered every request",
         "paced": "paced wrk runs answered every request",
         "close": "Connection: close wrk runs answered every request"}
"""Each load of a round, and what its completing means."""


@dataclass
class Ejection:
    seconds: float | None
    """max(status, clients): node1 out of the balancer's rotation and no client failing."""
    text: str
    status: str
    """Kill -> first status poll showing node1 out of rotation."""
    clients: str
    """Kill -> start of the last new client connection that failed."""
    note: str
    judged: Judged = field(default_factory=Judged)
    """Whether the test could measure (see the module docstring's "Complete")."""


@dataclass
class Row:
    config: Config
    rounds: list[Round] = field(default_factory=list)
    ejection: Ejection | None = None
    skipped: str | None = None
    wanted: int = 0
    """Rounds planned (each round's every load must complete)."""

    def tally(self, load: str) -> Tally:
        """The rounds whose `load` completed, of those planned."""
        done = sum(1 for r in self.rounds if load not in r.failed)
        why = next((f"{r.failed[load]}" for r in self.rounds if load in r.failed), "")
        return Tally(f"rounds' {LOADS[load]}", self.wanted, done, why[:300])

    def ejection_judged(self) -> Judged:
        if self.ejection is None:
            return Judged().failed("the ejection test did not run")
        return self.ejection.judged


@contextlib.contextmanager
def cpu_meter(config: Config, out: list[float | None]) -> Iterator[None]:
    """Appends the balancer's CPU % (of one core) over the block, None without a process."""
    t0, c0 = time.monotonic(), config.cpu_ticks()
    yield
    t1, c1 = time.monotonic(), config.cpu_ticks()
    if c0 is None or c1 is None:
        out.append(None)
    else:
        out.append(100.0 * (c1 - c0) / CLK_TCK / max(t1 - t0, 1e-9))


def run_iperf(config: Config, duration: int
              ) -> tuple[float, int, tuple[float, float] | None]:
    """(Gbit/s received, sender retransmits, Gbit/s over the first and second half)."""
    host, port = config.iperf_target()
    argv = in_ns(NS_CLIENT, "iperf3", "-c", host, "-p", str(port), "-t", str(duration), "-J")
    last = ""
    for _attempt in range(2):  # a busy server ("the server is busy") gets a second try
        proc = run(argv, timeout=duration + 30, check=False)
        try:
            doc: dict[str, Any] = json.loads(proc.stdout)
        except json.JSONDecodeError:
            doc = {"error": (proc.stderr or proc.stdout).strip()[-300:]}
        if "error" not in doc and "end" in doc:
            end = doc["end"]
            return (end["sum_received"]["bits_per_second"] / 1e9,
                    int(end["sum_sent"].get("retransmits", 0)), halves(doc))
        last = str(doc.get("error", "no result"))
        time.sleep(1.0)
    raise BenchError(f"iperf3 via {config.name}: {last}")


def halves(doc: dict[str, Any]) -> tuple[float, float] | None:
    """Mean Gbit/s of iperf3's per-second intervals over the first and the second half of the
    run (sender side; None for a run too short to split)."""
    rates = [float(i["sum"]["bits_per_second"]) / 1e9 for i in doc.get("intervals", [])
             if "sum" in i]
    if len(rates) < 2:
        return None
    mid = len(rates) // 2
    return statistics.fmean(rates[:mid]), statistics.fmean(rates[mid:])


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def run_wrk(config: Config, duration: int, close: bool) -> tuple[float, float, str]:
    """(requests/s, p99 ms, error summary)"""
    argv = ["wrk", "-t3", "-c51", f"-d{duration}s", "--latency", *config.wrk_args()]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(config.http_url())
    out = run(in_ns(NS_CLIENT, *argv), timeout=duration + 30).stdout
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    if not rps or not p99:
        raise BenchError(f"wrk via {config.name}: cannot parse\n{out[-600:]}")
    return float(rps.group(1)), float(p99.group(1)) * _UNITS[p99.group(2)], wrk_errors(out)


def run_wrk_paced(config: Config, duration: int) -> tuple[float, float, str]:
    """(requests/s, p99 ms, errors) at the paced offered load (PACED_LUA)."""
    spread = bool(config.wrk_args())  # the direct row aims threads at the nodes
    argv = ["wrk", "-t3", "-c51", f"-d{duration}s", "--latency", "-s", str(PACED_LUA),
            config.http_url()]
    env = {**os.environ, "WRK_DELAY_MS": str(PACED_DELAY_MS), "WRK_SPREAD": "1" if spread else ""}
    out = run(in_ns(NS_CLIENT, *argv), timeout=duration + 30, env=env).stdout
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    if not rps or not p99:
        raise BenchError(f"paced wrk via {config.name}: cannot parse\n{out[-600:]}")
    return float(rps.group(1)), float(p99.group(1)) * _UNITS[p99.group(2)], wrk_errors(out)


def run_round(config: Config, duration: int) -> Round:
    """Every load once; a load that fails or leaves requests unanswered is noted in
    `failed` (its figure None, or kept but incomplete) and the round goes on."""
    r = Round()
    cpu: list[float | None] = []

    def wrk_load(load: str, call: Any) -> tuple[float | None, float | None]:
        try:
            rps, p99, err = call()
        except BenchError as exc:
            r.failed[load] = str(exc)
            return None, None
        if err:
            r.errors.append(f"{load}: {err}")
            r.failed[load] = err
        return rps, p99

    with cpu_meter(config, cpu):
        try:
            r.gbps, r.retransmits, r.gbps_halves = run_iperf(config, duration)
        except BenchError as exc:
            r.failed["iperf3"] = str(exc)
    time.sleep(0.5)
    with cpu_meter(config, cpu):
        r.rps, r.p99_ms = wrk_load("keep-alive", lambda: run_wrk(config, duration, close=False))
    time.sleep(0.5)
    r.paced_rps, r.paced_p99_ms = wrk_load("paced", lambda: run_wrk_paced(config, duration))
    time.sleep(0.5)
    with cpu_meter(config, cpu):
        r.conn_per_s, _p99 = wrk_load("close", lambda: run_wrk(config, duration, close=True))
    r.cpu_iperf, r.cpu_wrk, r.cpu_close = cpu
    return r


def failed_round(why: str) -> Round:
    """A round whose balancer did not start: every load failed."""
    return Round(failed=dict.fromkeys(LOADS, why))


def measure_ejection(config: Config, topo: Topology, rate: float, window: float, how: str
                     ) -> Ejection:
    """Fail node1 under a steady stream of new connections; see the module docstring."""
    pre = 2.0
    seconds = pre + window
    env = dict(os.environ)
    request = config.status_request()
    extra = ["--rate", str(rate), "--seconds", str(seconds)]
    if request is not None:
        env = status_env(request)
        extra += ["--status-of", config.name]
    child = subprocess.Popen(probe_argv("eject", *extra), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        if first.strip() != "started":
            raise BenchError(f"ejection probe did not start: {first!r}")
        time.sleep(pre)
        topo.fail_node(EJECT_NODE, how)
        t_kill = time.monotonic()
        out, err = child.communicate(timeout=seconds + PROBE_TIMEOUT + 20)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    try:
        doc = json.loads(out)
        records = [(float(t), bool(ok), str(info), float(took))
                   for t, ok, info, took in doc["conns"]]
        status = [(float(t), down) for t, down in doc["status"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"ejection probe: {exc}: {out[-300:]} {err[-300:]}") from exc
    if not records:
        raise BenchError("ejection probe: no records")
    end = records[-1][0]
    notes: list[str] = []
    window_text = f"> {window:.0f}"

    # 1. the balancer's own view: first poll after the kill that shows node1 out of rotation
    status_s: float | None = None
    status_text = "not polled"
    if request is not None:
        before = [d for t, d in status if t < t_kill]
        if not any(d is False for d in before):
            notes.append(f"status never showed {EJECT_NODE} up before it failed")
        down_at = next((t for t, d in status if t >= t_kill and d), None)
        if down_at is None:
            status_text = window_text if any(d is False for _, d in status) else "unreadable"
        else:
            status_s = down_at - t_kill
            status_text = f"{status_s:.2f}"

    # 2. the clients' view: start of the last new connection that failed
    before_conns = [r for r in records if r[0] < t_kill - 0.1]
    after = [r for r in records if r[0] >= t_kill - 0.1]
    early_fail = sum(1 for r in before_conns if not r[1])
    if early_fail:
        notes.append(f"{early_fail} failures before {EJECT_NODE} failed")
    if EJECT_NODE not in {r[2] for r in before_conns if r[1]}:
        notes.append(f"{EJECT_NODE} got no connections before it failed")
    served_by_dead = sum(1 for r in after if r[0] >= t_kill and r[1] and r[2] == EJECT_NODE)
    if served_by_dead:
        notes.append(f"{served_by_dead} answers from {EJECT_NODE} after it failed?!")
    failed = [r for r in after if not r[1]]
    client_s: float | None
    if not failed:
        client_s, client_text = 0.0, "0.00"
        notes.append("no client connection failed (the balancer retried elsewhere)")
    elif end - failed[-1][0] < 1.0:
        client_s, client_text = None, window_text
        notes.append("clients still failing at the end")
    else:
        client_s = failed[-1][0] - t_kill
        client_text = f"{client_s:.2f}"
    if failed:
        kinds = ", ".join(sorted({r[2] for r in failed}))
        notes.append(f"{len(failed)} of {len(after)} connections failed ({kinds})")
    slowest = max((r[3] for r in after if r[1]), default=None)
    if slowest is not None:
        notes.append(f"slowest successful connection after the failure {slowest:.2f} s")

    parts = [x for x in (status_s, client_s) if x is not None]
    unknown = (request is not None and status_s is None) or client_s is None
    seconds_out = None if unknown or not parts else max(parts)
    text = window_text if seconds_out is None else f"{seconds_out:.2f}"
    judged = Judged()
    planned = int(rate * (pre + window))
    if len(records) < planned:
        judged.failed(f"the probe made {len(records)}/{planned} connections")
    elif EJECT_NODE not in {r[2] for r in before_conns if r[1]}:
        judged.failed(f"{EJECT_NODE} served no connection before it failed")
    elif request is not None and status_text == "unreadable":
        judged.failed("the balancer's status was unreadable")
    elif request is not None and not any(d is False for t, d in status if t < t_kill):
        judged.failed(f"the status never showed {EJECT_NODE} up before it failed")
    if not judged.complete:
        text = "-"
    return Ejection(seconds_out, text, status_text, client_text, "; ".join(notes), judged)


# -- report -------------------------------------------------------------------------------------
def med(values: Sequence[float | int | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


@dataclass
class Summary:
    gbps: float | None
    retransmits: float | None
    rps: float | None
    p99_ms: float | None
    conn_per_s: float | None
    cpu_wrk: float | None
    ejection: float | None
    paced_rps: float | None = None
    paced_p99_ms: float | None = None


def summarize(row: Row) -> Summary:
    rs = row.rounds
    return Summary(med([r.gbps for r in rs]), med([r.retransmits for r in rs]),
                   med([r.rps for r in rs]), med([r.p99_ms for r in rs]),
                   med([r.conn_per_s for r in rs]), med([r.cpu_wrk for r in rs]),
                   row.ejection.seconds if row.ejection else None,
                   med([r.paced_rps for r in rs]), med([r.paced_p99_ms for r in rs]))


def print_report(rows: list[Row], args: argparse.Namespace) -> None:
    print()
    print(f"## Data-plane benchmark ({args.rounds} round(s), medians; loads {args.duration} s)")
    print()
    print("| config | Gbit/s | retransmits | HTTP req/s | p99 ms | paced req/s | paced p99 ms "
          "| new conn/s | balancer CPU % | ejection s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if row.skipped:
            print(f"| {row.config.label} | not run: {row.skipped} |||||||||")
            continue
        s = summarize(row)
        ej = row.ejection.text if row.ejection else "-"
        print(f"| {row.config.label} | {fmt(s.gbps, '.1f')} | {fmt(s.retransmits, '.0f')} "
              f"| {fmt(s.rps, ',.0f')} | {fmt(s.p99_ms, '.1f')} | {fmt(s.paced_rps, ',.0f')} "
              f"| {fmt(s.paced_p99_ms, '.2f')} | {fmt(s.conn_per_s, ',.0f')} "
              f"| {fmt(s.cpu_wrk, '.0f')} | {ej} |")
    incomplete = [(row, line) for row in rows if not row.skipped
                  for line in shortfalls([*(row.tally(load) for load in LOADS),
                                          *([row.ejection_judged()] if row.config.ejection
                                            else [])])]
    if incomplete:
        print()
        print("Figures of an incomplete run (shown above, no ratio or goal taken from them):")
        for row, line in incomplete:
            print(f"  {row.config.name:15} {line}")
    print()
    print("Balancer CPU % is the balancer's process tree over the keep-alive wrk run (100 = one "
          "core). Ejection s: from node1's failure until both the balancer's status "
          "shows node1 out of rotation and no new client connection fails (the later of the "
          "two; each is printed below).")
    print()
    print("Per round (Gbit/s / retransmits / req/s / p99 ms / new conn/s; balancer CPU % "
          "during iperf3, wrk, wrk Connection: close):")
    for row in rows:
        for i, r in enumerate(row.rounds, 1):
            print(f"  {row.config.name:15} #{i}: {fmt(r.gbps, '.2f')} / {r.retransmits} / "
                  f"{fmt(r.rps, ',.0f')} / {fmt(r.p99_ms, '.2f')} / {fmt(r.conn_per_s, ',.0f')};"
                  f" CPU {fmt(r.cpu_iperf, '.0f')}, {fmt(r.cpu_wrk, '.0f')}, "
                  f"{fmt(r.cpu_close, '.0f')}" + (f"  [{'; '.join(r.errors)}]" if r.errors
                                                  else ""))
        if row.ejection:
            e = row.ejection
            print(f"  {row.config.name:15} ejection: {e.text} s = max(status {e.status} s, "
                  f"clients {e.clients} s); {e.note}"
                  + ("" if e.judged.complete else f"; INCOMPLETE: {e.judged.why}"))

    baselines = sorted({r.config.baseline for r in rows if r.config.name != r.config.baseline},
                       key=lambda name: name != BASELINE)
    for name in baselines:
        print_ratios(rows, name)
    print_throughput_halves(rows, args.duration)
    for row in rows:
        if row.config.nft_goals and not row.skipped:
            print_nft_goals(row, rows)


def compared(what: str, mine: float | None, theirs: float | None,
             sides: Sequence[tuple[Row, str]], goal: float | None) -> str:
    """`what`'s ratio, the goal and PASS/MISS; or, when a side's figure (its row's `load`) is
    incomplete, no ratio and no verdict but what fell short, side by side."""
    goal_text = f"  (goal >= {goal}x)" if goal is not None else ""
    parts = [row.tally(load) for row, load in sides]
    short = [f"{row.config.name} {line}" for row, load in sides
             for line in shortfalls([row.tally(load)])]
    if short:
        return f"    {what:11} -{goal_text}  {'; '.join(short)}"
    r = ratio(mine, theirs, *parts)
    judged = "" if goal is None else "  " + verdict(r is not None and r >= goal, yes="PASS",
                                                    no="MISS")
    return f"    {what:11} {fmt(r, '.2f')}x{goal_text}{judged}"


def print_ratios(rows: list[Row], baseline: str) -> None:
    """Every row measured against `baseline` (the same number of threads/processes)."""
    base = next((r for r in rows if r.config.name == baseline and not r.skipped), None)
    measured = [r for r in rows
                if r.config.baseline == baseline and r.config.name != baseline
                and not r.skipped]
    print()
    if base is None:
        skipped = next((r.skipped for r in rows if r.config.name == baseline), None)
        if measured:
            print(f"Ratios against `{baseline}`: none, the baseline did not run"
                  + (f" ({skipped})." if skipped else " (not in --only)."))
        return
    b = summarize(base)
    print(f"Ratios against {base.config.label} (same run):")
    for row in measured:
        s = summarize(row)
        print(f"  {row.config.label}:")
        checks = [("throughput", s.gbps, b.gbps, GOAL_THROUGHPUT, "iperf3"),
                  ("HTTP req/s", s.rps, b.rps, GOAL_RPS, "keep-alive"),
                  ("new conn/s", s.conn_per_s, b.conn_per_s, GOAL_CONN, "close")]
        for what, mine, theirs, goal, load in checks:
            print(compared(what, mine, theirs, [(row, load), (base, load)],
                           goal if row.config.goals else None))
        if row.config.ejection:
            mine_ej, base_ej = row.ejection_judged(), base.ejection_judged()
            judged = ""
            if row.config.goals:
                judged = "  " + verdict(s.ejection is not None and s.ejection <= GOAL_EJECTION_S,
                                        mine_ej, yes="PASS", no="MISS")
            ej = row.ejection.text if row.ejection else "-"
            goal_text = (f"goal <= {GOAL_EJECTION_S} s; " if row.config.goals else "")
            base_text = fmt(b.ejection, '.2f') if base_ej.complete else "-"
            print(f"    {'ejection':11} {ej} s  ({goal_text}baseline {base_text} s){judged}"
                  + "".join(f"  {line}" for line in shortfalls([mine_ej])))


def print_throughput_halves(rows: list[Row], duration: int) -> None:
    """Single-stream throughput per half of the run, and lbctl's ratio to each HAProxy
    splice row per half: HAProxy's splice-auto changes behaviour in the middle of the run."""
    measured = [r for r in rows if not r.skipped and any(x.gbps_halves for x in r.rounds)]
    if not measured:
        return

    def half(row: Row, i: int) -> float | None:
        return med([r.gbps_halves[i] for r in row.rounds if r.gbps_halves])

    first, second = duration // 2, duration - duration // 2
    print()
    print(f"Single-stream throughput by half of the {duration} s run (Gbit/s; iperf3's "
          "per-second figures, median over the rounds):")
    print(f"| config | first {first} s | last {second} s | whole run |")
    print("|---|---|---|---|")
    for row in measured:
        print(f"| {row.config.label} | {fmt(half(row, 0), '.1f')} | {fmt(half(row, 1), '.1f')} "
              f"| {fmt(summarize(row).gbps, '.1f')} |")
    by_name = {r.config.name: r for r in measured}
    pairs = [(by_name[m], by_name[t]) for m in ("lbctl", "lbctl-reno")
             for t in (BASELINE, "haproxy-splice-always") if m in by_name and t in by_name]
    for mine, theirs in pairs:
        split = [Tally("rounds with per-second iperf3 figures", row.wanted,
                       sum(1 for r in row.rounds if r.gbps_halves)) for row in (mine, theirs)]
        parts = [mine.tally("iperf3"), theirs.tally("iperf3"), *split]
        short = shortfalls(parts)
        if short:
            print(f"  {mine.config.label} vs {theirs.config.label}: no ratio, "
                  + "; ".join(short))
            continue
        texts = [f"first {first} s {fmt(ratio(half(mine, 0), half(theirs, 0)), '.2f')}x",
                 f"last {second} s {fmt(ratio(half(mine, 1), half(theirs, 1)), '.2f')}x",
                 "whole run "
                 f"{fmt(ratio(summarize(mine).gbps, summarize(theirs).gbps), '.2f')}x"]
        print(f"  {mine.config.label} vs {theirs.config.label}: {', '.join(texts)}")
    print("  HAProxy 2.6 with splice-auto copies a new stream through its buffers "
          "(recvfrom/sendto) and only starts splicing once `timeout connect` (5 s in "
          "bench/haproxy/*.cfg) has elapsed (measured: with 9 s the switch moves to 9 s), so "
          "its whole-run figure averages both; `splice-request/-response` splices from the "
          "first byte.")


def print_nft_goals(row: Row, rows: list[Row]) -> None:
    """The issue's nftables goals: >= 0.8x direct throughput; >= 1.2x HAProxy + splice-auto on
    throughput, req/s, new conn/s and p99 (p99 as HAProxy's / ours: > 1 = lower latency).
    A goal whose figures (either side) did not complete is not judged."""
    s = summarize(row)
    direct = next((r for r in rows if r.config.name == "direct" and not r.skipped), None)
    base = next((r for r in rows if r.config.name == BASELINE and not r.skipped), None)
    lines: list[str] = []

    def line(what: str, mine: float | None, theirs: float | None, other: Row, load: str,
             goal: float | None, note: str = "") -> None:
        text = compared(what, mine, theirs, [(row, load), (other, load)], goal)
        lines.append(text)
        print(text + note)

    print()
    print(f"nftables goals ({row.config.label}, same run):")
    if direct is None:
        print("  vs direct: `direct` not in this run (not judged)")
    else:
        d = summarize(direct)
        print(f"  vs {direct.config.label}:")
        line("throughput", s.gbps, d.gbps, direct, "iperf3", GOAL_NFT_VS_DIRECT)
        line("HTTP req/s", s.rps, d.rps, direct, "keep-alive", None, "  (no goal)")
        line("new conn/s", s.conn_per_s, d.conn_per_s, direct, "close", None, "  (no goal)")
        line("p99 latency", d.p99_ms, s.p99_ms, direct, "keep-alive", None,
             "  (direct p99 / nftables p99; no goal)")
    if base is None:
        print(f"  vs {BASELINE}: not in this run (not judged)")
    else:
        b = summarize(base)
        print(f"  vs {base.config.label} (every ratio oriented so that higher = nftables "
              f"better; p99 is HAProxy's p99 / nftables' p99, so >= {GOAL_NFT_VS_HAPROXY}x "
              "means nftables' p99 is at least that much lower):")
        line("throughput", s.gbps, b.gbps, base, "iperf3", GOAL_NFT_VS_HAPROXY)
        line("HTTP req/s", s.rps, b.rps, base, "keep-alive", GOAL_NFT_VS_HAPROXY)
        line("p99 latency", b.paced_p99_ms, s.paced_p99_ms, base, "paced", GOAL_NFT_VS_HAPROXY)
        line("new conn/s", s.conn_per_s, b.conn_per_s, base, "close", GOAL_NFT_VS_HAPROXY)
        closed = complete(row.tally("keep-alive"), base.tally("keep-alive"),
                          row.tally("paced"), base.tally("paced"))
        if closed:
            print(f"    (p99 judged at the same paced load, ~{fmt(s.paced_rps, ',.0f')} vs "
                  f"{fmt(b.paced_rps, ',.0f')} req/s; at each row's own closed-loop maximum "
                  f"the ratio is {fmt(ratio(b.p99_ms, s.p99_ms), '.2f')}x, at "
                  f"{fmt(ratio(s.rps, b.rps), '.2f')}x HAProxy's request rate)")
    passed = sum(text.endswith("PASS") for text in lines)
    missed = sum(text.endswith("MISS") for text in lines)
    unjudged = sum("INCOMPLETE" in text and "(goal" in text for text in lines)
    goals = (1 if direct is not None else 0) + (4 if base is not None else 0)
    if direct is None or base is None or unjudged:
        why = ([f"{unjudged} of {goals} goals' runs incomplete"] if unjudged else []) + (
            [] if direct is not None and base is not None else
            ["a row they compare with did not run"])
        print(f"  nftables goals: NOT JUDGED ({', '.join(why)}; of the others {passed} PASS, "
              f"{missed} MISS)")
    else:
        print(f"  nftables goals: {passed} of {goals} PASS"
              + (f", {missed} MISS" if missed else ""))


def print_header(args: argparse.Namespace) -> None:
    cpus = os.cpu_count() or 0
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    print(f"lbctl data-plane benchmark, {time.strftime('%Y-%m-%d %H:%M:%S')}, kernel "
          f"{platform.release()}, {cpus} CPU(s) {model}")
    pinned = (f"one-process balancers pinned to CPU {args.pin_cpu} (taskset), the same for "
              "each; 2-thread/2-process balancers, " if args.pin_cpu != "none" else
              "nothing pinned; balancers, ")
    print(f"CPU placement: {pinned}client (wrk, iperf3), the 3 nodes' nginx (1 worker each), "
          f"iperf3 servers and softirq share the {cpus} cores.")
    with contextlib.suppress(OSError):
        cc = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
        print(f"TCP congestion control: {cc}, the host's default, in every namespace (rows "
              "that set their own say so).")
    print(f"Loads from {NS_CLIENT}: iperf3 -t {args.duration} (1 stream); wrk -t3 -c51 "
          f"-d{args.duration}s --latency; the same with -H 'Connection: close'. Ejection probe: "
          f"{args.eject_rate:.0f} new connections/s, node1 "
          f"{'link down' if args.eject_how == 'link' else 'nginx SIGKILLed'} after 2 s, "
          f"{args.eject_window:.0f} s observed.")
    sys.stdout.flush()


# -- main ---------------------------------------------------------------------------------------
def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 3 s loads, 1 round, 4 s ejection window")
    p.add_argument("--only", default="",
                   help="comma-separated rows: " + ",".join(c.name for c in CONFIGS))
    p.add_argument("--duration", type=int, default=None, help="seconds per load (default 10)")
    p.add_argument("--rounds", type=int, default=None, help="rounds per row (default 3)")
    p.add_argument("--eject-rate", type=float, default=200.0,
                   help="new connections/s during the ejection test")
    p.add_argument("--eject-window", type=float, default=None,
                   help="seconds observed after the kill (default 8)")
    p.add_argument("--eject-how", choices=["nginx", "link"], default="nginx",
                   help="how node1 dies: its nginx SIGKILLed (default) or its link down")
    p.add_argument("--pin-cpu", default="none", metavar="CPU|auto|none",
                   help="taskset CPU list for every one-process balancer (auto: the last CPU; "
                        "default none)")
    p.add_argument("--probe", choices=["ready", "eject", "status"], help=argparse.SUPPRESS)
    p.add_argument("--path", default="/", help=argparse.SUPPRESS)
    p.add_argument("--host", default=VIP, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=HTTP_PORT, help=argparse.SUPPRESS)
    p.add_argument("--rate", type=float, default=200.0, help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    p.add_argument("--status-of", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.pin_cpu == "auto":
        args.pin_cpu = str(max(0, (os.cpu_count() or 1) - 1))
    if args.duration is None:
        args.duration = 3 if args.quick else 10
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.eject_window is None:
        args.eject_window = 4.0 if args.quick else 8.0
    if not 1 <= args.duration <= 120 or not 1 <= args.rounds <= 10:
        p.error("--duration must be 1..120 s and --rounds 1..10")
    if not 10 <= args.eject_rate <= 1000 or not 2 <= args.eject_window <= 60:
        p.error("--eject-rate must be 10..1000/s and --eject-window 2..60 s")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.probe:
        return probe_main(args)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - {c.name for c in CONFIGS})
    if unknown:
        print(f"unknown row(s) {', '.join(unknown)}; known: "
              f"{', '.join(c.name for c in CONFIGS)}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    missing = [t for t in ("ip", "nginx", "wrk", "iperf3") if shutil.which(t) is None]
    if missing:
        print(f"missing {', '.join(missing)} (scripts/install-net-tools.sh --bench): every row "
              "needs them; nothing measured", file=sys.stderr)
        return 2
    rows = [Row(c, wanted=args.rounds) for c in CONFIGS if not names or c.name in names]
    for row in rows:
        if isinstance(row.config, ProcessBalancer):
            row.config.pin_cpu = None if args.pin_cpu == "none" else args.pin_cpu
    for row in rows:
        row.skipped = row.config.unavailable()
        if row.skipped:
            print(f"skipping {row.config.name}: {row.skipped}", file=sys.stderr)

    signal.signal(signal.SIGTERM, _terminate)
    print_header(args)
    workdir = Path(tempfile.mkdtemp(prefix=PREFIX))
    procs = Procs(workdir)
    topo = Topology(procs, workdir)
    current: Config | None = None
    ok = False
    try:
        # only this script's own names: bench/l2_failover.py (lbb-l2-*) and
        # bench/nft_transaction.py (lbb-nft-*) may be running next to it
        remove_namespaces([n for n in existing_namespaces() if n in ALL_NS], PREFIX)
        topo.up()
        topo.start_servers()
        active = [r for r in rows if not r.skipped]
        for i in range(args.rounds):
            for row in active:
                print(f"round {i + 1}/{args.rounds}: {row.config.name} ...", flush=True)
                current = row.config
                try:
                    current.start(procs)
                    row.rounds.append(run_round(current, args.duration))
                except BenchError as exc:  # it did not start: this round's loads all failed
                    print(f"  {row.config.name} did not start: {str(exc)[:300]}", flush=True)
                    row.rounds.append(failed_round(f"did not start: {str(exc)[:200]}"))
                finally:
                    current.stop()
                    current = None
        for row in active:
            if not row.config.ejection:
                continue
            print(f"ejection: {row.config.name} ...", flush=True)
            current = row.config
            try:
                current.start(procs)
                row.ejection = measure_ejection(current, topo, args.eject_rate,
                                                args.eject_window, args.eject_how)
            except BenchError as exc:  # counted as an ejection test that did not run
                print(f"  ejection of {row.config.name} failed: {str(exc)[:300]}", flush=True)
            finally:
                current.stop()
                current = None
                topo.revive_node(EJECT_NODE)
        print_report(rows, args)
        ok = True
    except BenchError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if current is not None:
                current.stop()
            procs.stop_all()
            remove_own_namespaces(ALL_NS, PREFIX)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
