"""The balancer daemon's control work at scale, next to traffic through an unrelated VIP (issue 14).

One daemon (`lbctl balancer serve --api-listen`, its own process, userspace data plane) serves:
- an unrelated balancer `probe` (one VIP, one real HTTP target on 127.0.92.1) that a paced
  client (new connection per request, `--rate` per second) crosses the whole run;
- balancers with 1, 100, 1,000 and 10,000 targets in all (5 ports x 100 nodes per balancer past
  500 targets, e.g. 10,000 = 20 Services x 5 ports x 100 nodes), targets on 127.0.91.x where
  nothing listens, so every health probe is refused at once and the checker keeps working.

Per size it prints: the PUTs that program them (total and the slowest one), one balancer's
status GET, the provider's list GET (`/v1/balancers?cluster=...`, what it polls every 2 s), and
the paced client's p99 and worst latency through `probe` while the provider's polling (a list
GET every 2 s) and a re-PUT every 2 s run for `--seconds` (from a process of their own, so
their JSON work never stalls the client's threads), next to the same client with no
control work (`idle`). Goals at 10,000 targets: PUT <= 0.5 s, status GET <= 0.1 s, p99 within
+5 ms of idle. Last, SIGTERM while that control work runs: gone within 2 s.

Complete means: the paced client's every request answered (idle and per size), and per size
every PUT, the GETs and every re-PUT answered 200 and the list holds every target programmed;
for the SIGTERM figure, the provider's polling had started. A figure that fell short prints
"INCOMPLETE: ..." and no "+p99" difference against idle, and no verdict.

    .venv/bin/python bench/balancer_scale.py [--sizes 1,100,1000,10000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.completeness import Judged, Tally, complete, shortfalls, verdict

LBCTL = str(Path(sys.executable).with_name("lbctl"))
PROBE_VIP, PROBE_PORT = "127.0.90.200", 18080
TARGET = ("127.0.92.1", 30080)
CLUSTER = "bench"
PORTS = 5
NODES = 100


class Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    def __init__(self, tmp: Path) -> None:
        self.token = secrets.token_urlsafe(24)
        (tmp / "token").write_text(self.token)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [LBCTL, "balancer", "serve", "--api-listen", f"127.0.0.1:{self.port}",
             "--token-file", str(tmp / "token"), "--state-file", str(tmp / "state.json"),
             "--kernel-dataplane", "off", "--log-format", "json"],
            stdout=subprocess.DEVNULL, stderr=(tmp / "daemon.log").open("w"))
        self.log = tmp / "daemon.log"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the balancer daemon did not start: see daemon.log")

    def call(self, method: str, path: str, body: Any = None,
             timeout: float = 120) -> tuple[int, float, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        start = time.perf_counter()
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, time.perf_counter() - start, payload
        finally:
            conn.close()

    def stop(self) -> float | None:
        """SIGTERM; answers the seconds until the process was gone (None: SIGKILL needed)."""
        import os
        started = time.monotonic()
        self.proc.terminate()
        took: float | None = None
        try:
            self.proc.wait(timeout=30)
            took = time.monotonic() - started
        except subprocess.TimeoutExpired:
            self.proc.kill()
        keep = os.environ.get("LBCTL_BENCH_KEEP_LOG")
        if keep:
            Path(keep).write_text(self.log.read_text())
        return took


CHECK = {"type": "tcp", "intervalSeconds": 2, "timeoutSeconds": 1}


def balancer(name: str, vip: str, targets: int, shift: int = 0) -> dict[str, Any]:
    """Like a Service's: per port one nodePort of its own (30000 + 5 x index + port) on each
    of up to 100 nodes (127.0.91.1-100); `shift` moves the node range by one (a re-PUT that
    changes targets)."""
    index = int(name.rsplit("-", 1)[1])
    ports = PORTS if targets >= PORTS * NODES else 1
    per = targets // ports
    return {"name": name, "vip": vip, "owner": {"cluster": CLUSTER, "namespace": "bench",
                                                "name": name, "uid": f"uid-{name}"},
            "listeners": [{"protocol": "TCP", "port": 8000 + p, "targets": [
                f"127.0.91.{1 + (i + shift) % 250}:{30000 + PORTS * index + p + (i // 250) * 1000}"
                for i in range(per)],
                "healthCheck": CHECK}
                for p in range(ports)]}


def split(total: int) -> list[int]:
    """Balancer sizes for `total` targets: 500-target balancers (5 ports x 100 nodes)."""
    if total <= PORTS * NODES:
        return [total]
    return [PORTS * NODES] * (total // (PORTS * NODES))


class Client:
    """New connection per request through the probe VIP at `rate` per second."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.samples: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        period = 1 / self.rate
        next_at = time.perf_counter()
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                conn = http.client.HTTPConnection(PROBE_VIP, PROBE_PORT, timeout=5)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                self.samples.append(time.perf_counter() - start)
            except OSError:
                self.failures += 1
            next_at += period
            time.sleep(max(0.0, next_at - time.perf_counter()))

    @contextmanager
    def measuring(self) -> Iterator[Client]:
        self.samples, self.failures = [], 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(10)

    def answered(self) -> Tally:
        """The requests of the last window answered, of those sent."""
        return Tally("paced requests answered", len(self.samples) + self.failures,
                     len(self.samples))

    def figures(self) -> tuple[float, float, int]:
        ordered = sorted(self.samples) or [float("nan")]
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return p99 * 1000, ordered[-1] * 1000, len(self.samples)


def control_elsewhere(daemon: Daemon, names: list[tuple[str, str, int]], seconds: float,
                      timings: dict[str, list[float]]) -> None:
    """`control_load` in a process of its own: parsing a 10,000-target list answer and building
    re-PUT bodies would otherwise hold this process's GIL, and the paced client and the probe
    VIP's target (threads of this process) would measure the bench, not the daemon."""
    ctx = multiprocessing.get_context("fork")
    results: Any = ctx.Queue()

    def child() -> None:
        mine: dict[str, list[float]] = {"list": [], "reput": []}
        control_load(daemon, names, seconds, mine)
        results.put(mine)

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    got = results.get(timeout=seconds + 120)
    proc.join(10)
    for key, values in got.items():
        timings.setdefault(key, []).extend(values)


def control_load(daemon: Daemon, names: list[tuple[str, str, int]], seconds: float,
                 timings: dict[str, list[float]]) -> None:
    """What the provider does: a list GET every 2 s, and a re-PUT of one balancer every 2 s."""
    end = time.monotonic() + seconds
    turn = 0
    while time.monotonic() < end:
        timings.setdefault("started", []).append(time.monotonic())
        status, took, _ = daemon.call("GET", f"/v1/balancers?cluster={CLUSTER}")
        timings["list"].append(took)
        if status != 200:
            timings.setdefault("failed", []).append(took)
        name, vip, size = names[turn % len(names)]
        status, took, body = daemon.call("PUT", f"/v1/balancers/{name}",
                                         balancer(name, vip, size, shift=turn % 2))
        if status != 200:
            print(f"re-PUT {name} answered {status}: {body[:300]!r}")
            timings.setdefault("failed", []).append(took)
        timings["reput"].append(took)
        turn += 1
        time.sleep(max(0.0, 2 - timings["list"][-1] - took))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,100,1000,10000")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--settle", type=float, default=0,
                        help="seconds between programming and measuring (0: the first probe "
                             "round's verdicts, every target going down, fall in the window)")
    parser.add_argument("--checks", choices=["tcp", "node", "none"], default="tcp",
                        help="the bulk balancers' health checks: tcp (a connect per target, "
                             "the provider's default), node (kube-proxy's :10256/healthz per "
                             "node, clusterPolicy: kubeProxy), none (control work alone)")
    args = parser.parse_args()
    if args.checks == "none":
        CHECK.clear()
        CHECK["type"] = "none"
    elif args.checks == "node":
        CHECK.update({"type": "http", "port": 10256, "path": "/healthz"})
    print(f"bulk balancers' checks: {args.checks} {CHECK}")
    sizes = [int(s) for s in args.sizes.split(",")]
    server = ThreadingHTTPServer(TARGET, Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lbctl-bench-scale-") as name:
        tmp = Path(name)
        daemon = Daemon(tmp)
        try:
            status, _, body = daemon.call("PUT", "/v1/balancers/probe", {
                "name": "probe", "vip": PROBE_VIP, "listeners": [{
                    "protocol": "TCP", "port": PROBE_PORT,
                    "targets": [f"{TARGET[0]}:{TARGET[1]}"]}]})
            assert status == 200, body
            client = Client(args.rate)
            time.sleep(1)
            with client.measuring():
                time.sleep(args.seconds)
            idle = client.figures()
            idle_done = client.answered()
            print(f"idle: p99 {idle[0]:.2f} ms, worst {idle[1]:.2f} ms over {idle[2]} requests "
                  f"({client.failures} failed)")
            for total in sizes:
                rows.append(run_size(daemon, client, total, args.seconds, idle, args.settle))
            sigterm, polling = stop_under_load(daemon, sizes[-1] if sizes else 0)
        finally:
            if daemon.proc.poll() is None:
                daemon.stop()
            server.shutdown()
    print()
    print(f"{'targets':>8} {'balancers':>9} {'PUT all s':>9} {'PUT max s':>9} {'GET one s':>9} "
          f"{'GET list s':>10} {'re-PUT s':>8} {'p99 ms':>7} {'worst ms':>8} {'+p99 ms':>7} "
          f"{'failed':>6}")
    for r in rows:
        plus = (f"{r['p99'] - idle[0]:>+7.2f}" if complete(idle_done, *r["parts"])
                else f"{'-':>7}")
        print(f"{r['targets']:>8} {r['balancers']:>9} {r['put_all']:>9.3f} {r['put_max']:>9.3f} "
              f"{r['get_one']:>9.3f} {r['get_list']:>10.3f} {r['reput']:>8.3f} "
              f"{r['p99']:>7.2f} {r['worst']:>8.2f} {plus} "
              f"{r['failed']:>6}")
    for what, parts in (("idle", [idle_done]), *((f"{r['targets']} targets", r["parts"])
                                                 for r in rows)):
        for line in shortfalls(parts):
            print(f"  {what}: {line}")
    if not polling.complete:
        print(f"\nSIGTERM under load: INCOMPLETE ({polling.why}); no verdict")
    elif sigterm is None:
        print("\nSIGTERM under load: the daemon had to be SIGKILLed after 30 s")
    else:
        print(f"\nSIGTERM with {sizes[-1]} targets checked and the provider's polling and "
              f"re-PUTs running: gone in {sigterm:.2f} s (goal <= 2 s: "
              f"{verdict(sigterm <= 2, yes='PASS', no='MISS')})")
    last = rows[-1] if rows else None
    if last and last["targets"] == 10000:
        if not complete(idle_done, *last["parts"]):
            print("\n10,000 targets: the run did not complete (above); no verdict")
            return
        goals = [("PUT <= 0.5 s", last["put_max"] <= 0.5),
                 ("status GET <= 0.1 s", last["get_one"] <= 0.1),
                 ("p99 within +5 ms of idle", last["p99"] - idle[0] <= 5)]
        print("\ngoals at 10,000 targets: " + ", ".join(
            f"{what}: {verdict(ok, yes='PASS', no='MISS')}" for what, ok in goals))


def stop_under_load(daemon: Daemon, total: int) -> tuple[float | None, Judged]:
    """SIGTERM while the provider's polling and re-PUTs run against the last size: the
    seconds until gone (None: SIGKILLed), and whether the polling had started by then."""
    names = [(f"svc-{i}", f"127.0.90.{1 + i}", size) for i, size in enumerate(split(total))]
    timings: dict[str, list[float]] = {"list": [], "reput": []}

    def load() -> None:
        with contextlib.suppress(OSError):  # the daemon goes away under it: the point
            control_load(daemon, names, 30, timings)

    threading.Thread(target=load, daemon=True).start()
    time.sleep(1.5)
    polling = Judged() if timings.get("started") else Judged().failed(
        "the provider's polling had not started when SIGTERM came")
    return daemon.stop(), polling


def run_size(daemon: Daemon, client: Client, total: int, seconds: float,
             idle: tuple[float, float, int], settle: float) -> dict[str, Any]:
    # forget the previous size's balancers
    status, _, body = daemon.call("GET", f"/v1/balancers?cluster={CLUSTER}")
    for item in json.loads(body)["balancers"]:
        daemon.call("DELETE", f"/v1/balancers/{item['balancer']['name']}")
    names = [(f"svc-{i}", f"127.0.90.{1 + i}", size) for i, size in enumerate(split(total))]
    puts = []
    answered = Tally("PUTs and GETs answered 200", 0)
    for name, vip, size in names:
        status, took, body = daemon.call("PUT", f"/v1/balancers/{name}",
                                         balancer(name, vip, size))
        puts.append(took)
        answered.add(status == 200, f"PUT {name}: {status}")
        if status != 200:
            print(f"{total} targets: PUT {name} answered {status}: {body[:300]!r}")
    status, get_one, _ = daemon.call("GET", f"/v1/balancers/{names[0][0]}")
    answered.add(status == 200, f"GET {names[0][0]}: {status}")
    status, get_list, body = daemon.call("GET", f"/v1/balancers?cluster={CLUSTER}")
    answered.add(status == 200, f"GET the list: {status}")
    programmed = sum(len(t) for item in json.loads(body)["balancers"]
                     for t in ([t for li in item["balancer"]["listeners"]
                                for t in li["targets"]],)) if status == 200 else 0
    timings: dict[str, list[float]] = {"list": [], "reput": []}
    time.sleep(settle)
    with client.measuring():
        control_elsewhere(daemon, names, seconds, timings)
    p99, worst, count = client.figures()
    print(f"{total} targets: programmed {programmed}, p99 {p99:.2f} ms, worst {worst:.2f} ms "
          f"over {count} requests ({client.failures} failed)")
    calls = len(timings["list"]) + len(timings["reput"])
    parts = [answered, Tally("targets programmed", total, programmed),
             Tally("polls and re-PUTs answered 200", calls,
                   calls - len(timings.get("failed", []))),
             client.answered()]
    return {"targets": total, "balancers": len(names), "put_all": sum(puts),
            "put_max": max(puts), "get_one": get_one, "get_list": get_list,
            "reput": statistics.median(timings["reput"]) if timings["reput"] else float("nan"),
            "p99": p99, "worst": worst, "failed": client.failures, "parts": parts}


if __name__ == "__main__":
    main()
