"""Micro-benchmark of the userspace TCP data plane on loopback: splice vs copy, asyncio vs uvloop.

Why: data-plane-figures.md measured a Python copy loop (~3 Gbit/s) and splice with a thread per
connection (fast bytes, slow connects) but not event-loop-driven splice; this measures it next to
the copy fallback in the same run, since only same-run ratios mean anything on a shared box.
Loads: `iperf3` one stream (Gbit/s), `wrk` keep-alive and `Connection: close` against nginx
(req/s, p99, new connections/s). The balancer runs in this process; iperf3, wrk and nginx in
their own. Needs iperf3, wrk and nginx on PATH; loopback only (127.0.110.x).

Complete means every iperf3 run reported a result and every wrk run was parsed and answered
every request (no socket error, no non-2xx); a row that fell short ends in "INCOMPLETE: ...".

    .venv/bin/python bench/balancer_micro.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import uvloop

from bench.completeness import Tally, shortfalls, wrk_errors
from lbctl.balancer.acl import Acl
from lbctl.balancer.backends import BackendSet, ListenerStats
from lbctl.balancer.model import TargetConfig
from lbctl.balancer.tcp_proxy import TcpFrontend

BACKEND = "127.0.110.2"
VIP = "127.0.110.1"
IPERF_PORT = 25201
NGINX_PORT = 25280
NGINX_CONF = """
worker_processes 1; daemon off; pid {dir}/nginx.pid; error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};
  uwsgi_temp_path {dir}; scgi_temp_path {dir};
  server {{ listen {host}:{port}; location / {{ return 200 "ok\\n"; }} }} }}
"""


async def iperf(port: int, seconds: int, reverse: bool, done: Tally) -> float:
    """Gbit/s received; `done` counts whether iperf3 reported a result (0.0 when not)."""
    args = ["iperf3", "-c", VIP, "-p", str(port), "-t", str(seconds), "-J"]
    proc = await asyncio.create_subprocess_exec(*args, *(["-R"] if reverse else []),
                                                stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    try:
        result = json.loads(out)
        gbit = float(result["end"]["sum_received"]["bits_per_second"]) / 1e9
    except (ValueError, KeyError, TypeError):
        done.add(False, f"iperf3{' -R' if reverse else ''}: no result {out[-200:]!r}")
        return 0.0
    done.add("error" not in result, f"iperf3: {result.get('error')}")
    return gbit


async def wrk(port: int, seconds: int, close: bool, done: Tally) -> tuple[float, str]:
    """(req/s, p99); `done` counts whether wrk was parsed and answered every request."""
    args = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", f"http://{VIP}:{port}/"]
    if close:
        args[1:1] = ["-H", "Connection: close"]
    proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    text = out.decode()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p99 = re.search(r"99%\s+(\S+)", text)
    errors = wrk_errors(text)
    what = "wrk close" if close else "wrk keep-alive"
    if not rps or not p99 or proc.returncode != 0:
        done.add(False, f"{what}: exit {proc.returncode}, cannot parse {text[-200:]!r}")
    else:
        done.add(not errors, f"{what}: {errors}")
    return (float(rps.group(1)) if rps else 0.0), (p99.group(1) if p99 else "?")


async def measure(splice: bool, seconds: int) -> dict[str, Any]:
    done = Tally("loads completed", 0)
    row: dict[str, Any] = {"_done": done}
    for name, port in (("iperf", IPERF_PORT), ("http", NGINX_PORT)):
        stats = ListenerStats()
        backends = BackendSet((TargetConfig(address=BACKEND, port=port),))
        front = TcpFrontend(VIP, 0, backends, Acl(), proxy_protocol=False, stats=stats,
                            on_connect_failure=lambda b: None, splice=splice)
        await front.start()
        if name == "iperf":
            row["gbit_up"] = round(await iperf(front.port, seconds, False, done), 2)
            row["gbit_down"] = round(await iperf(front.port, seconds, True, done), 2)
        else:
            rps, p99 = await wrk(front.port, seconds, False, done)
            row["keepalive_rps"], row["keepalive_p99"] = round(rps), p99
            started, before = time.monotonic(), stats.connections
            rps, p99 = await wrk(front.port, seconds, True, done)
            row["close_rps"], row["close_p99"] = round(rps), p99
            row["new_conn_per_s"] = round((stats.connections - before)
                                          / (time.monotonic() - started))
        await front.stop()
        backends.close_all()
    return row


def run(loop: str, coro: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = uvloop.run(coro) if loop == "uvloop" else asyncio.run(coro)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    for tool in ("iperf3", "wrk", "nginx"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp, host=BACKEND, port=NGINX_PORT))
        procs = [subprocess.Popen(["iperf3", "-s", "-B", BACKEND, "-p", str(IPERF_PORT)],
                                  stdout=subprocess.DEVNULL),
                 subprocess.Popen(["nginx", "-c", str(conf)])]
        try:
            time.sleep(0.5)
            for loop in ("asyncio", "uvloop"):
                for splice in (True, False):
                    row = run(loop, measure(splice, args.seconds))
                    done = row.pop("_done")
                    mode = "splice" if splice else "copy"
                    print(f"{loop:8} {mode:6} " + " ".join(f"{k}={v}" for k, v in row.items())
                          + "".join(f"  {line}" for line in shortfalls([done])), flush=True)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()


if __name__ == "__main__":
    main()
