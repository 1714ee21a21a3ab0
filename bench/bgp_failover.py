"""BGP failover of `lbctl balancer serve` hosts behind a BIRD2 router with ECMP (issue 18).

The lab is tests/balancer/network/bgp_lab.py's (network namespaces `lbg-<token>-*`, removed on
exit, Ctrl-C and SIGTERM included): a router (BIRD2, AS 65000, multipath with the L4 hash,
hold time 3 s, keepalive 1 s), a client behind it, 3 balancer hosts each running the real
daemon (bgp_lab.Balancer: a static file with balancer `web`, VIP 10.99.0.100:80 -> the nodes'
:30080 and VIP:30090 -> the nodes' :30090, TCP health checks every 0.2 s, and a `bgp:` section
with the router as its one peer, holdTime 3 s), and 3 nodes behind the hosts (a small server on
:30080 that names the node and the host the connection came through; nginx on :30090, one
worker, for the throughput part). The router is BIRD alone: plain hash-threshold multipath
(the lab's resilient-group agent is for established flows; new connections, measured here, do
not need it).

A prober in the client opens a new TCP connection to VIP:80 every 20 ms for the whole run,
each on its own, bounded by 0.5 s (connect and the node's greeting). Three parts:

1. host deaths, `--kills` (20) rounds: host K (in turn) is cut, everything on its uplink dropped
   both ways with the carrier kept (a dead or hung machine: no FIN, no RST, the router learns
   it from the BGP hold timer alone): t0. Recovery = from t0 to the start of the first new
   connection after which every one succeeded (until the heal); failed = new connections
   started after t0 that failed. Then it is healed, and the round ends once the route goes
   through all 3 hosts again (the sessions come back; any failure from the heal to the end of
   the round is counted apart).
2. graceful drains, `--drains` (5) rounds: SIGTERM to host K's daemon (the route is withdrawn,
   then `drainSeconds`, 1 s, before its listeners close), reaped, restarted, the round ends once
   the route goes through all 3 again; every new connection started in the round must succeed.
3. throughput with 1, 2 and 3 hosts announcing (the others' daemons stopped with SIGTERM):
   `wrk -t2 -c64 -d<seconds>` HTTP keep-alive requests to VIP:30090 from the client (64
   connections spread over the hosts by the router's L4 hash), and the CPU: the machine's
   (from /proc/stat) and per namespace role (client = wrk, hosts = the daemons, nodes =
   nginx; the rest is the kernel: forwarding, NAT, veth softirqs). Scale-out = 2 hosts / 1.

Goals (issue 18), printed beside the figures: median recovery <= 3 s after a host death
(MetalLB without BFD waits out its 90 s default hold timer); 0 failed new connections on a
graceful drain; 2 hosts >= 1.6x one host's throughput where the test machine is not the
bottleneck. Here every namespace shares one machine: when it was >= 90% busy during the 1- or
2-host run, the machine is the bottleneck and the scale-out says so instead of PASS/FAIL.
Completeness (bench/completeness.py): a part whose rounds did not all complete (the `--budget`
ran out, a route that never came back, wrk errors) prints INCOMPLETE and no ratio or verdict.

    .venv/bin/python bench/bgp_failover.py [--kills 20] [--drains 5] [--seconds 5]
        [--dataplane userspace|nftables] [--budget 420]

Needs root, iproute2, nft, BIRD2 and ExaBGP (scripts/install-net-tools.sh, the `bgp` extra);
wrk and nginx for part 3 (scripts/install-net-tools.sh --bench).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from bench.completeness import Judged, Tally, ratio_text, shortfalls, verdict, wrk_errors
from bench.netns_tools import BenchError
from tests.balancer.network.bgp_lab import (
    LBCTL,
    VIP,
    VIP_PREFIX,
    Balancer,
    BgpLab,
    Prober,
    exabgp_binary,
    start_nodes,
    tool,
)
from tests.conftest import wait_for

HTTP_PORT = 30090
NGINX = Path(__file__).parent / "balancer" / "nginx.conf"
BUSY = 0.90
"""The machine is the bottleneck when it was at least this busy (all cores) during a run."""


def _terminate(_sig: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through the lab's `with`: namespaces removed


# -- CPU accounting --------------------------------------------------------------------------------
def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return total - idle, total


def ns_cpu_seconds(ns: str) -> float:
    """CPU seconds (user + system) used so far by the processes now in namespace `ns`."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                          check=False, timeout=10).stdout.split()
    used = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        parts = stat.rsplit(")", 1)[1].split()
        used += (int(parts[11]) + int(parts[12])) / tick  # utime, stime
    return used


@dataclass
class Throughput:
    hosts: int
    requests_per_s: float | None = None
    busy: float = 0.0
    """Machine busy fraction during the run (1.0 = every core)."""
    roles: dict[str, float] = field(default_factory=dict)
    """Cores used per role (client, hosts, nodes) during the run."""
    judged: Judged = field(default_factory=Judged)

    def text(self) -> str:
        if self.requests_per_s is None:
            return f"{self.hosts} host(s): {'; '.join(shortfalls([self.judged]))}"
        roles = ", ".join(f"{k} {v:.2f}" for k, v in self.roles.items())
        return (f"{self.hosts} host(s): {self.requests_per_s:10,.0f} req/s; machine "
                f"{self.busy:.0%} busy ({os.cpu_count()} cores); cores used: {roles}")


# -- the bench -------------------------------------------------------------------------------------
class Bench:
    def __init__(self, lab: BgpLab, lbs: dict[str, Balancer], prober: Prober,
                 args: argparse.Namespace, deadline: float) -> None:
        self.lab, self.lbs, self.prober, self.args = lab, lbs, prober, args
        self.deadline = deadline

    def route(self, hosts: list[str], timeout: float) -> bool:
        try:
            wait_for(lambda: self.lab.route_hosts(VIP_PREFIX) == hosts, timeout,
                     f"route through {hosts}", interval=0.01)
        except AssertionError:
            return False
        return True

    def left(self) -> float:
        return self.deadline - time.monotonic()

    # 1 --------------------------------------------------------------------------------------
    def kills(self) -> tuple[Tally, list[float], int, int]:
        """Host deaths: (tally, recoveries, failed during detection, failed after heals)."""
        lab = self.lab
        tally = Tally("host deaths measured", self.args.kills)
        recoveries: list[float] = []
        failed = after_heal = 0
        for i in range(self.args.kills):
            if self.left() < lab.hold + 15:
                tally.detail = tally.detail or f"the budget ran out before kill {i + 1}"
                break
            victim = lab.hosts[i % len(lab.hosts)]
            others = sorted(set(lab.hosts) - {victim})
            cut_at = time.monotonic()
            lab.cut(victim)
            withdrawn = self.route(others, lab.hold + 5)
            gone = time.monotonic() - cut_at
            time.sleep(1.0)  # a second of new connections after the withdrawal
            healed_at = time.monotonic()
            lab.heal(victim)
            back = self.route(lab.hosts, 30)
            settled = time.monotonic()
            time.sleep(0.6)  # the prober's attempts of the round's end have finished
            recovered = self.prober.recovery(cut_at, healed_at)
            lost = len(self.prober.failures(cut_at, healed_at))
            lost_after = len(self.prober.failures(healed_at, settled))
            tried = len([a for a in self.prober.done() if cut_at <= a.start < healed_at])
            failed += lost
            after_heal += lost_after
            if recovered is not None:
                recoveries.append(recovered)
            note = ("" if withdrawn else " ROUTE NOT WITHDRAWN") + ("" if back else
                                                                    " ROUTE NOT BACK")
            print(f"  kill {i + 1:2d} {victim}: route without it after {gone:.2f} s, every new "
                  f"connection succeeds after "
                  f"{'never' if recovered is None else f'{recovered:.2f} s'}, {lost}/{tried} "
                  f"failed; healed: 3-way route back in {settled - healed_at:.2f} s, "
                  f"{lost_after} failed{note}", flush=True)
            if withdrawn and back and recovered is not None:
                tally.done += 1
            else:
                tally.detail = tally.detail or f"kill {i + 1}: {note.strip() or 'never recovered'}"
            if not back:
                break
        return tally, recoveries, failed, after_heal

    # 2 --------------------------------------------------------------------------------------
    def drains(self) -> tuple[Tally, int, int]:
        """Graceful drains: (tally, failed new connections, new connections tried)."""
        lab = self.lab
        tally = Tally("drains measured", self.args.drains)
        failed = tried = 0
        for i in range(self.args.drains):
            if self.left() < 30:
                tally.detail = tally.detail or f"the budget ran out before drain {i + 1}"
                break
            host = lab.hosts[i % len(lab.hosts)]
            lb = self.lbs[host]
            others = sorted(set(lab.hosts) - {host})
            start = time.monotonic()
            lb.signal(signal.SIGTERM, wait=None)
            withdrawn = self.route(others, 5)
            gone = time.monotonic() - start
            code = lb.reap(15)
            exited = time.monotonic() - start
            lb.start()
            back = self.route(lab.hosts, 30)
            settled = time.monotonic()
            time.sleep(0.6)
            lost = len(self.prober.failures(start, settled))
            n = len([a for a in self.prober.done() if start <= a.start < settled])
            failed, tried = failed + lost, tried + n
            note = ("" if withdrawn else " ROUTE NOT WITHDRAWN") + (
                "" if back else " ROUTE NOT BACK") + ("" if code == 0 else f" EXIT {code}")
            print(f"  drain {i + 1} {host}: withdrawn after {gone:.3f} s, exited after "
                  f"{exited:.2f} s, restarted and back in the route after "
                  f"{settled - start:.2f} s; {lost}/{n} new connections failed{note}",
                  flush=True)
            if withdrawn and back and code == 0:
                tally.done += 1
            else:
                tally.detail = tally.detail or f"drain {i + 1}:{note}"
            if not back:
                break
        return tally, failed, tried

    # 3 --------------------------------------------------------------------------------------
    def throughput(self) -> list[Throughput]:
        lab, out = self.lab, []
        self.prober.stop()  # its connections would compete with the load
        for host in lab.hosts[1:]:
            self.lbs[host].signal(signal.SIGTERM)
        for n in range(1, len(lab.hosts) + 1):
            result = Throughput(n)
            out.append(result)
            if n > 1:
                self.lbs[lab.hosts[n - 1]].start()
            if not self.route(lab.hosts[:n], 30):
                result.judged.failed(f"the route never went through {lab.hosts[:n]}")
                continue
            if self.left() < self.args.seconds + 10:
                result.judged.failed("the budget ran out")
                continue
            self.wrk(result)
            print(f"  {result.text()}", flush=True)
        return out

    def wrk(self, result: Throughput) -> None:
        lab = self.lab
        roles = {"client": ["client"], "hosts": list(lab.hosts), "nodes": list(lab.nodes)}
        names = {role: [lab.ns[n].name for n in ns] for role, ns in roles.items()}
        busy0, total0 = machine_jiffies()
        before = {role: sum(ns_cpu_seconds(n) for n in ns) for role, ns in names.items()}
        started = time.monotonic()
        argv = ["wrk", "-t2", "-c64", f"-d{self.args.seconds}s", "--timeout", "2s",
                f"http://{VIP}:{HTTP_PORT}/"]
        try:
            done = lab.run("client", *argv, check=False, timeout=self.args.seconds + 20)
        except subprocess.TimeoutExpired:
            result.judged.failed("wrk did not finish")
            return
        wall = time.monotonic() - started
        busy1, total1 = machine_jiffies()
        # wrk has exited: its CPU is gone from /proc; the client's share is the machine's
        # minus what the hosts and nodes (still running) and the kernel used.
        after = {role: sum(ns_cpu_seconds(n) for n in ns) for role, ns in names.items()}
        result.busy = (busy1 - busy0) / max(1, total1 - total0)
        for role in ("hosts", "nodes"):
            result.roles[role] = (after[role] - before[role]) / wall
        result.roles["client (wrk) + kernel"] = max(
            0.0, result.busy * (os.cpu_count() or 1) - sum(result.roles.values()))
        errors = wrk_errors(done.stdout)
        rate = next((line.split()[1] for line in done.stdout.splitlines()
                     if line.startswith("Requests/sec:")), None)
        if done.returncode != 0 or rate is None:
            result.judged.failed(f"wrk exited {done.returncode}: {done.stderr.strip()[-300:]}")
        elif errors:
            result.judged.failed(f"wrk: {errors}")
        else:
            result.requests_per_s = float(rate)


def start_nginx(lab: BgpLab, workdir: Path) -> None:
    template = NGINX.read_text()
    for node in lab.nodes:
        conf = workdir / f"nginx-{node}.conf"
        conf.write_text(template.format(node=node, port=HTTP_PORT, dir=workdir))
        lab.spawn(node, "nginx", "-c", str(conf), "-e", "stderr", log=f"nginx-{node}.log")
    def listening(node: str) -> bool:
        return bool(lab.run(node, "ss", "-Hltn", f"sport = :{HTTP_PORT}").stdout.strip())

    for node in lab.nodes:
        wait_for(lambda: listening(node), 10, f"nginx in {node}")  # noqa: B023 (called at once)


def report(kills: tuple[Tally, list[float], int, int], drains: tuple[Tally, int, int],
           rates: list[Throughput]) -> None:
    tally, recoveries, failed, after_heal = kills
    print("\nhost deaths (cut, no FIN: the BGP hold timer, 3 s, detects them):")
    print(f"  {tally}")
    if recoveries:
        median, worst = statistics.median(recoveries), max(recoveries)
        print(f"  recovery (cut -> every new connection succeeds): median {median:.2f} s, "
              f"max {worst:.2f} s over {len(recoveries)} kills; failed new connections "
              f"{failed} while the router had not noticed, {after_heal} after the heals")
        print(f"  goal median recovery <= 3 s: {verdict(median <= 3.0, tally)}")
    else:
        print("  no recovery measured")
    dtally, dfailed, dtried = drains
    print("graceful drains (SIGTERM, then restart):")
    print(f"  {dtally}")
    print(f"  failed new connections: {dfailed} of {dtried}")
    print(f"  goal 0 failed new connections: {verdict(dfailed == 0, dtally)}")
    print("throughput (wrk -t2 -c64, HTTP keep-alive to VIP:30090 -> nginx):")
    for r in rates:
        print(f"  {r.text()}")
    one, two, three = rates  # 1, 2 and 3 hosts
    parts = [one.judged, two.judged]
    scale = ratio_text(two.requests_per_s, one.requests_per_s, *parts)
    print(f"  scale-out 2 hosts / 1 host: {scale}; 3 hosts / 1 host: "
          f"{ratio_text(three.requests_per_s, one.requests_per_s, *parts, three.judged)}")
    bound = max(one.busy, two.busy) >= BUSY
    if not all(p.complete for p in parts):
        print(f"  goal 2 hosts >= 1.6x one host: {verdict(False, *parts)} "
              f"({'; '.join(shortfalls(parts))})")
    elif bound:
        print(f"  goal 2 hosts >= 1.6x one host: NOT JUDGED: this machine is the bottleneck "
              f"({one.busy:.0%} busy with 1 host, {two.busy:.0%} with 2, "
              f"{os.cpu_count()} cores shared by client, router, hosts and nodes)")
    else:
        ok = (two.requests_per_s or 0) >= 1.6 * (one.requests_per_s or 0)
        print(f"  goal 2 hosts >= 1.6x one host: {verdict(ok, *parts)}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--drains", type=int, default=5)
    p.add_argument("--seconds", type=int, default=5, help="each throughput run")
    p.add_argument("--dataplane", choices=["userspace", "nftables"], default="userspace")
    p.add_argument("--budget", type=float, default=420.0, help="seconds for the whole run")
    return p.parse_args(argv)


def missing() -> list[str]:
    needs = [] if os.geteuid() == 0 else ["root"]
    needs += [n for n in ("ip", "nft", "bird", "birdc", "wrk", "nginx") if tool(n) is None]
    if exabgp_binary() is None:
        needs.append("exabgp")
    if not LBCTL.exists():
        needs.append(str(LBCTL))
    return needs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    lacking = missing()
    if lacking:
        print(f"bgp_failover: not run, missing {', '.join(lacking)} "
              f"(scripts/install-net-tools.sh --bench)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    deadline = started + args.budget
    print(f"lbctl BGP failover benchmark, {time.strftime('%Y-%m-%d %H:%M:%S')}, "
          f"{os.cpu_count()} CPU(s); 3 hosts, 3 nodes, {args.dataplane} data plane, "
          f"{args.kills} host deaths, {args.drains} drains, {args.seconds} s per throughput "
          f"run, budget {args.budget:.0f} s", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="lbg-bench-"))
    try:
        with BgpLab(3, nodes=3, tmp=workdir) as lab:
            start_nodes(lab)
            start_nginx(lab, workdir)
            lbs = {h: Balancer(lab, h, dataplane=args.dataplane, extra_port=HTTP_PORT)
                   for h in lab.hosts}
            for lb in lbs.values():
                lb.start(wait=False)
            for lb in lbs.values():
                lb.wait_ready()
            try:
                wait_for(lambda: lab.route_hosts(VIP_PREFIX) == lab.hosts, 30,
                         "the route through every host")
            except AssertionError as exc:
                raise BenchError(f"{exc}\n{lbs['host1'].tail()}") from None
            print(f"3 daemons announcing after {time.monotonic() - started:.1f} s", flush=True)
            with Prober(lab, interval=0.02, timeout=0.5, limit=args.budget) as prober:
                bench = Bench(lab, lbs, prober, args, deadline)
                time.sleep(1.0)
                print("1. host deaths", flush=True)
                kills = bench.kills()
                print("2. graceful drains", flush=True)
                drains = bench.drains()
                print("3. throughput", flush=True)
                rates = bench.throughput()
            report(kills, drains, rates)
    except (BenchError, AssertionError, subprocess.SubprocessError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: namespaces removed", file=sys.stderr)
        return 130
    finally:
        if not os.environ.get("LBG_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"(run took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
