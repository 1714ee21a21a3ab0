"""The node hop the endpoints target mode skips: VIP -> pod vs VIP -> node:nodePort -> pod.

In its usual (nodePort) mode lbctl's balancer sends a connection to a node's nodePort, where
kube-proxy DNATs it to a pod, often on another node, and masquerades it (Cluster policy). In
the endpoints mode (`lbctl.io/target-mode: endpoints`, or any Service without nodePorts) the
balancer connects to the pod itself. One run measures both through the same balancer daemon,
side by side, interleaved round by round; a ratio is printed only when both rows completed
every load (an unparsable wrk, a wrk that left requests unanswered: socket errors or non-2xx,
or a failed iperf3 leaves its row incomplete: "INCOMPLETE: 2/3 rounds' ...").

Topology (namespaces `lbb-hop-*`, created here, removed on exit; bench/balancer.py removes
leftovers of a killed run as `lbb-*`):

    lbb-hop-client 10.97.0.2 -- 10.97.0.1 lbb-hop-lb (VIP 10.97.0.100 on lo; lbctl balancer)
                                10.97.1.1 bridge -- lbb-hop-nodeK 10.97.1.1K  (K = 1, 2, 3)
                                                     10.97.1K.1 -- lbb-hop-podK 10.97.1K.2

Pod networking as on bare metal with host-gateway routes: the balancer's namespace routes each
node's pod CIDR (10.97.1K.0/24) via that node, and nodes route each other's. Each pod serves
nginx on :8080 (bench/balancer/nginx.conf, naming the pod) and iperf3 on :5201. kube-proxy is
what its nftables mode does per node: `tcp dport 30080` DNAT to a random pod of the three
(numgen), `tcp dport 30201` to one pod by a hash of the source (iperf3's control and data
connections must meet one server), and masquerade of every DNATed flow. So both paths cross a
node's namespace; the nodePort one adds the DNAT, the masquerade, conntrack, and for 2 in 3
connections the forward to another node and back.

The balancer daemon (`lbctl balancer serve`, userspace data plane) serves four balancers on
the VIP: :80 and :5201 to the nodes' nodePorts (nodePort mode), :81 and :5202 to the pods
(endpoints mode), round robin for HTTP and ClientIP (Maglev) for iperf3, TCP checks (1 s) on
the HTTP listeners as the provider programs them.

Loads from lbb-hop-client, each `--duration` s (default 10), `--rounds` times (default 3,
medians): wrk keep-alive (`-t2 -c50`: req/s and p99), wrk with `Connection: close` (new
connections/s), one iperf3 stream (Gbit/s). Nothing is pinned; every process shares the
machine's cores (the header prints how many), so only the ratio of the same run means much.

    .venv/bin/python bench/balancer_hop.py [--quick] [--duration S] [--rounds N]

Needs root, iproute2, nft, nginx, wrk and iperf3. Traffic never leaves the lbb-hop-* namespaces.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `bench` importable
    sys.path.insert(0, str(ROOT))

from bench.balancer import (  # noqa: E402
    LBCTL,
    NGINX_TEMPLATE,
    Procs,
    churn_tuning,
    conntrack_tuning,
    sysctl,
    wait_listen,
)
from bench.completeness import Tally, complete, ratio_text, shortfalls, wrk_errors  # noqa: E402
from bench.netns_tools import (  # noqa: E402
    BenchError,
    existing_namespaces,
    in_ns,
    remove_namespaces,
    remove_own_namespaces,
    run,
)

PREFIX = "lbb-hop-"
NS_CLIENT, NS_LB = "lbb-hop-client", "lbb-hop-lb"
K = (1, 2, 3)
NS_NODE = {k: f"lbb-hop-node{k}" for k in K}
NS_POD = {k: f"lbb-hop-pod{k}" for k in K}
ALL_NS = (NS_CLIENT, NS_LB, *NS_NODE.values(), *NS_POD.values())
CLIENT_IP, LB_CLIENT_IP, LB_NODE_IP, VIP = "10.97.0.2", "10.97.0.1", "10.97.1.1", "10.97.0.100"
NODE_IP = {k: f"10.97.1.1{k}" for k in K}
POD_NET = {k: f"10.97.1{k}.0/24" for k in K}
POD_GW = {k: f"10.97.1{k}.1" for k in K}
POD_IP = {k: f"10.97.1{k}.2" for k in K}
POD_HTTP, POD_IPERF, NODE_HTTP, NODE_IPERF = 8080, 5201, 30080, 30201
API_PORT = 9181
ROWS = {"nodePort": ("VIP -> node:nodePort -> pod", 80, 5201),
        "endpoints": ("VIP -> pod (endpoints mode)", 81, 5202)}
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


# -- topology -------------------------------------------------------------------------------
def _veth(ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
    run(["ip", "-n", ns_a, "link", "add", name_a, "type", "veth", "peer", "name", name_b,
         "netns", ns_b])


def _addr(ns: str, cidr: str, dev: str) -> None:
    run(["ip", "-n", ns, "addr", "add", cidr, "dev", dev])
    run(["ip", "-n", ns, "link", "set", dev, "up"])


def kube_proxy_rules() -> str:
    """kube-proxy's nftables mode in miniature (one node's NAT for the two nodePorts)."""
    pods = ", ".join(f"{i} : {POD_IP[k]}" for i, k in enumerate(K))
    return (f"table ip lbb-kube-proxy {{\n"
            f"  chain prerouting {{\n"
            f"    type nat hook prerouting priority dstnat; policy accept;\n"
            f"    tcp dport {NODE_HTTP} dnat to numgen random mod 3 map {{ {pods} }} : "
            f"{POD_HTTP}\n"
            f"    tcp dport {NODE_IPERF} dnat to jhash ip saddr mod 3 map {{ {pods} }} : "
            f"{POD_IPERF}\n"
            f"  }}\n"
            f"  chain postrouting {{\n"
            f"    type nat hook postrouting priority srcnat; policy accept;\n"
            f"    ct status dnat masquerade\n"
            f"  }}\n"
            f"}}\n")


def topology_up(workdir: Path) -> None:
    for ns in ALL_NS:
        run(["ip", "netns", "add", ns])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
    _veth(NS_CLIENT, "eth0", NS_LB, "hop-client")
    _addr(NS_CLIENT, f"{CLIENT_IP}/24", "eth0")
    _addr(NS_LB, f"{LB_CLIENT_IP}/24", "hop-client")
    run(["ip", "-n", NS_CLIENT, "route", "add", f"{VIP}/32", "via", LB_CLIENT_IP])
    run(["ip", "-n", NS_LB, "addr", "add", f"{VIP}/32", "dev", "lo"])
    run(["ip", "-n", NS_LB, "link", "add", "hop-br", "type", "bridge"])
    _addr(NS_LB, f"{LB_NODE_IP}/24", "hop-br")
    rules = workdir / "kube-proxy.nft"
    rules.write_text(kube_proxy_rules())
    for k in K:
        node, pod = NS_NODE[k], NS_POD[k]
        _veth(NS_LB, f"hop-node{k}", node, "eth0")
        run(["ip", "-n", NS_LB, "link", "set", f"hop-node{k}", "master", "hop-br", "up"])
        _addr(node, f"{NODE_IP[k]}/24", "eth0")
        _veth(node, "pods", pod, "eth0")
        _addr(node, f"{POD_GW[k]}/24", "pods")
        _addr(pod, f"{POD_IP[k]}/24", "eth0")
        run(["ip", "-n", pod, "route", "add", "default", "via", POD_GW[k]])
        run(["ip", "-n", NS_LB, "route", "add", POD_NET[k], "via", NODE_IP[k]])
        for j in K:
            if j != k:
                run(["ip", "-n", node, "route", "add", POD_NET[j], "via", NODE_IP[j]])
        sysctl(node, net__ipv4__ip_forward=1)
        run(in_ns(node, "nft", "-f", str(rules)))
        conntrack_tuning(node)
    for ns in ALL_NS:
        churn_tuning(ns)
    sysctl(NS_LB, net__ipv4__ip_forward=1)


def start_pods(procs: Procs, workdir: Path) -> None:
    for k in K:
        conf = workdir / f"nginx-pod{k}.conf"
        conf.write_text(NGINX_TEMPLATE.read_text().format(node=f"pod{k}", port=POD_HTTP,
                                                          dir=workdir))
        nginx = procs.spawn(f"nginx-pod{k}", NS_POD[k], ["nginx", "-c", str(conf), "-e",
                                                          "stderr"])
        iperf = procs.spawn(f"iperf3-pod{k}", NS_POD[k], ["iperf3", "-s", "-p",
                                                           str(POD_IPERF)])
        wait_listen(NS_POD[k], POD_HTTP, nginx, 10)
        wait_listen(NS_POD[k], POD_IPERF, iperf, 10)


def balancer_file() -> dict[str, Any]:
    check = {"type": "tcp", "intervalSeconds": 1, "timeoutSeconds": 1, "healthyThreshold": 2,
             "unhealthyThreshold": 2}

    def pair(name: str, http: int, iperf: int, hosts: dict[int, str], to_http: int,
             to_iperf: int) -> list[dict[str, Any]]:
        return [{"name": name, "vip": VIP, "listeners": [
                    {"protocol": "TCP", "port": http, "algorithm": "roundRobin",
                     "targets": [f"{hosts[k]}:{to_http}" for k in K], "healthCheck": check}]},
                {"name": f"{name}-iperf", "vip": VIP, "sessionAffinity": "ClientIP",
                 "listeners": [{"protocol": "TCP", "port": iperf, "algorithm": "maglev",
                                "targets": [f"{hosts[k]}:{to_iperf}" for k in K],
                                "healthCheck": {"type": "none"}}]}]

    return {"balancers": [*pair("via-nodes", 80, 5201, NODE_IP, NODE_HTTP, NODE_IPERF),
                          *pair("direct", 81, 5202, POD_IP, POD_HTTP, POD_IPERF)]}


def start_balancer(procs: Procs, workdir: Path) -> None:
    import yaml

    config = workdir / "balancers.yaml"
    config.write_text(yaml.safe_dump(balancer_file()))
    token = workdir / "token"
    token.write_text(secrets.token_hex(16) + "\n")
    proc = procs.spawn("lbctl", NS_LB, [str(LBCTL), "balancer", "serve", "--config",
                                        str(config), "--api-listen", f"{LB_CLIENT_IP}:{API_PORT}",
                                        "--token-file", str(token)])
    for port in (80, 81, 5201, 5202):
        wait_listen(NS_LB, port, proc, 20)
    probe = ("import sys, urllib.request\n"
             "for port in (80, 81):\n"
             f"    url = 'http://{VIP}:' + str(port) + '/'\n"
             "    pods = {urllib.request.urlopen(url, timeout=2).read() for _ in range(30)}\n"
             "    if len(pods) != 3:\n"
             "        sys.exit(1)\n")
    deadline = time.monotonic() + 20
    while run(in_ns(NS_CLIENT, sys.executable, "-c", probe), check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise BenchError("the balancer does not reach all three pods on :80 and :81")
        time.sleep(0.5)


# -- loads ----------------------------------------------------------------------------------
@dataclass
class Figures:
    rps: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    conns: list[float] = field(default_factory=list)
    gbits: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(load, why) of the loads that produced no figure or left requests unanswered: the row is
    incomplete and gets no ratio."""

    def tallies(self, rounds: int) -> list[Tally]:
        return [Tally(f"rounds' {load} loads completed", rounds,
                      rounds - sum(1 for what, _ in self.failed if what == load),
                      next((why for what, why in self.failed if what == load), "")[:200])
                for load in LOADS]


LOADS = ("keep-alive", "close", "iperf3")


def wrk(port: int, duration: int, close: bool) -> tuple[float, float, str]:
    argv = ["wrk", "-t2", "-c50", f"-d{duration}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    out = run(in_ns(NS_CLIENT, *argv, f"http://{VIP}:{port}/"), timeout=duration + 30).stdout
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    if not rps or not p99:
        raise BenchError(f"wrk :{port}: cannot parse\n{out[-400:]}")
    return float(rps.group(1)), float(p99.group(1)) * _UNITS[p99.group(2)], wrk_errors(out)


def iperf(port: int, duration: int) -> float:
    argv = in_ns(NS_CLIENT, "iperf3", "-c", VIP, "-p", str(port), "-t", str(duration), "-J")
    doc = json.loads(run(argv, timeout=duration + 30, check=False).stdout or "{}")
    if "end" not in doc or "error" in doc:
        raise BenchError(f"iperf3 :{port}: {doc.get('error', 'no result')}")
    return float(doc["end"]["sum_received"]["bits_per_second"]) / 1e9


def measure(row: Figures, http: int, iperf_port: int, duration: int) -> None:
    for what, call in (("keep-alive", lambda: wrk(http, duration, False)),
                       ("close", lambda: wrk(http, duration, True)),
                       ("iperf3", lambda: iperf(iperf_port, duration))):
        try:
            got = call()
        except BenchError as exc:
            row.failed.append((what, str(exc)))
            continue
        if what == "iperf3":
            row.gbits.append(float(got))  # type: ignore[arg-type]
            continue
        rps, p99, errors = got  # type: ignore[misc]
        (row.rps if what == "keep-alive" else row.conns).append(rps)
        if what == "keep-alive":
            row.p99.append(p99)
        if errors:
            row.errors.append(f"{what}: {errors}")
            row.failed.append((what, errors))


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def report(rows: dict[str, Figures], args: argparse.Namespace) -> None:
    print(f"\n  {'path':30} {'req/s':>9} {'p99 ms':>7} {'conn/s':>8} {'Gbit/s':>7}")
    for mode, (label, _, _) in ROWS.items():
        r = rows[mode]
        cells = [med(r.rps), med(r.p99), med(r.conns), med(r.gbits)]
        text = [f"{c:9.0f}" if c is not None else f"{'-':>9}" for c in cells[:1]]
        text += [f"{cells[1]:7.2f}" if cells[1] is not None else f"{'-':>7}"]
        text += [f"{cells[2]:8.0f}" if cells[2] is not None else f"{'-':>8}"]
        text += [f"{cells[3]:7.2f}" if cells[3] is not None else f"{'-':>7}"]
        print(f"  {label:30} {' '.join(text)}")
        for line in shortfalls(r.tallies(args.rounds)):
            print(f"    {line}")
        rounds = ", ".join(f"{a:.0f}/{b:.2f}" for a, b in zip(r.rps, r.gbits, strict=False))
        print(f"    rounds (req/s / Gbit/s): {rounds}")
        for error in r.errors:
            print(f"    {error}")
    via, direct = rows["nodePort"], rows["endpoints"]
    parts = [*via.tallies(args.rounds), *direct.tallies(args.rounds),
             *(Tally(f"rounds with a {f} figure", args.rounds, len(getattr(r, f)))
               for r in (via, direct) for f in ("rps", "conns", "gbits"))]
    if not complete(*parts):
        print("  ratio: NOT PRINTED (a row did not complete every load of every round)")
        return

    def ratio(a: list[float], b: list[float]) -> str:
        return ratio_text(statistics.median(a), statistics.median(b), *parts)

    print(f"  {'endpoints / nodePort':30} {ratio(direct.rps, via.rps):>9} "
          f"{ratio(via.p99, direct.p99):>7} {ratio(direct.conns, via.conns):>8} "
          f"{ratio(direct.gbits, via.gbits):>7}")
    print("  p99 as nodePort's / endpoints' (higher = the endpoints mode faster), taken by a\n"
          "  closed-loop wrk at the rate each row reaches: a faster row loads the shared cores\n"
          "  harder, so its p99 is no like-for-like latency")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="3 s loads, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 3, 1
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    missing = [t for t in ("nginx", "wrk", "iperf3", "nft", "ip") if shutil.which(t) is None]
    if missing or not LBCTL.exists():
        print(f"missing: {', '.join(missing) or LBCTL}", file=sys.stderr)
        return 2
    remove_namespaces(existing_namespaces(), PREFIX)
    workdir = Path(tempfile.mkdtemp(prefix="lbb-hop-"))
    procs = Procs(workdir)
    rows = {mode: Figures() for mode in ROWS}
    ok = False
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        topology_up(workdir)
        start_pods(procs, workdir)
        start_balancer(procs, workdir)
        print(f"node hop benchmark: one lbctl balancer daemon (userspace), 3 nodes x 1 pod, "
              f"kube-proxy as nftables DNAT + masquerade; {args.rounds} round(s) of "
              f"{args.duration} s loads, medians; {os.cpu_count()} CPUs", flush=True)
        for i in range(args.rounds):
            order = list(ROWS) if i % 2 == 0 else list(reversed(ROWS))
            for mode in order:
                _, http, iperf_port = ROWS[mode]
                measure(rows[mode], http, iperf_port, args.duration)
        report(rows, args)
        ok = True
    except BenchError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            procs.stop_all()
            remove_own_namespaces(ALL_NS, PREFIX)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            signal.signal(signal.SIGINT, signal.default_int_handler)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
