"""Where the paced client's p99 goes at 10,000 targets: health checks alone vs the provider's
polling, in one run of one daemon (issue 14's p99 goal, taken apart).

Windows of `--seconds` each, the paced client (`--rate` new connections a second through the
unrelated VIP `probe`) measuring in every one: idle (nothing else programmed), then 10,000
targets (20 balancers x 5 ports x 100 nodes, nothing listening: every target down) with their
checks running but no control work, then with the provider's polling and re-PUTs (from a
process of their own, `balancer_scale.control_elsewhere`), then checks alone again.

Complete means the paced client's every request in a window answered (and, in the polling
window, every poll and re-PUT answered 200); a window that fell short prints "INCOMPLETE: ..."
and no difference against idle, as does every window when idle fell short.

    .venv/bin/python bench/balancer_split.py [--checks tcp|node] [--seconds 20] [--rate 200]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path

from bench import balancer_scale as bs
from bench.completeness import Tally, complete, shortfalls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", choices=["tcp", "node"], default="tcp")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=200)
    args = parser.parse_args()
    if args.checks == "node":
        bs.CHECK.update({"type": "http", "port": 10256, "path": "/healthz"})
    server = ThreadingHTTPServer(bs.TARGET, bs.Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rows: list[tuple[str, float, list[Tally]]] = []
    with tempfile.TemporaryDirectory(prefix="lbctl-bench-split-") as name:
        daemon = bs.Daemon(Path(name))
        try:
            status, _, body = daemon.call("PUT", "/v1/balancers/probe", {
                "name": "probe", "vip": bs.PROBE_VIP, "listeners": [{
                    "protocol": "TCP", "port": bs.PROBE_PORT,
                    "targets": [f"{bs.TARGET[0]}:{bs.TARGET[1]}"]}]})
            assert status == 200, body
            client = bs.Client(args.rate)
            time.sleep(1)

            def window(what: str, work: Callable[[], None], *more: Tally) -> None:
                with client.measuring():
                    work()
                p99, worst, count = client.figures()
                parts = [client.answered(), *more]
                rows.append((what, p99, parts))
                print(f"{what:36s} p99 {p99:6.2f} ms  worst {worst:7.2f} ms  "
                      f"{count} requests, {client.failures} failed"
                      + "".join(f"  {line}" for line in shortfalls(parts)), flush=True)

            window("idle", lambda: time.sleep(args.seconds))
            names = [(f"svc-{i}", f"127.0.90.{1 + i}", 500) for i in range(20)]
            for svc, vip, size in names:
                status, _, body = daemon.call("PUT", f"/v1/balancers/{svc}",
                                              bs.balancer(svc, vip, size))
                if status != 200:
                    print(f"PUT {svc}: {status} {body[:200]!r}: incomplete, no figures")
                    return
            time.sleep(5)  # the first probe round's verdicts are not what this measures
            window(f"{args.checks} checks alone", lambda: time.sleep(args.seconds))
            timings: dict[str, list[float]] = {"list": [], "reput": []}
            polled = Tally("polls and re-PUTs answered 200", 0)

            def polling() -> None:
                bs.control_elsewhere(daemon, names, args.seconds, timings)
                polled.wanted = len(timings["list"]) + len(timings["reput"])
                polled.done = polled.wanted - len(timings.get("failed", []))

            window(f"{args.checks} checks + polling", polling, polled)
            window(f"{args.checks} checks alone, again", lambda: time.sleep(args.seconds))
        finally:
            daemon.stop()
            server.shutdown()
    _, idle, idle_parts = rows[0]
    print()
    for what, p99, parts in rows[1:]:
        if complete(*idle_parts, *parts):
            print(f"{what:36s} p99 {p99 - idle:+6.2f} ms vs idle")
        else:
            print(f"{what:36s} no difference vs idle: "
                  + "; ".join(shortfalls([*idle_parts, *parts])))


if __name__ == "__main__":
    main()
