"""What `lbctl run` costs at start: import time, modules loaded and RSS (issue 13).

Starts a sandbox (its own process, no workloads, no traffic), then `lbctl run` against it with
the `baremetal` provider and `-X importtime`, until `/readyz` answers; prints, as medians of
`--rounds` starts:
- the wall time from exec to a ready controller, and the cumulative import time Python reports;
- how many modules were imported, and how many of them are `lbctl.sandbox.*`,
  `lbctl.emulators.*` or test-only libraries (kubernetes_validate, jsonpatch, moto);
- the controller's RSS once ready (psutil, from outside).
It also times `import lbctl.cli` alone (what `lbctl --help` pays). Nothing is asserted: the
test that the controller loads no sandbox module is `tests/cli/test_imports.py`.

Complete means every start answered /readyz within 60 s; the medians are of the starts that
did, and a run with fewer prints "INCOMPLETE: 4/5 starts answered /readyz" and the last
failure's log.

    .venv/bin/python bench/startup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.completeness import Tally

ROOT = Path(__file__).resolve().parents[1]
LBCTL = Path(sys.executable).with_name("lbctl")
CONFIG = """clusterName: bench
provider: baremetal
baremetal:
  pools: [{name: default, addresses: ["127.0.100.0/24"]}]
"""
TEST_ONLY = ("kubernetes_validate", "jsonpatch", "moto")


class NotReady(Exception):
    """`lbctl run` never answered /readyz; the message is its log."""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox(tmp: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([str(LBCTL), "sandbox", "--listen", "127.0.0.1:0", "--nodes", "3",
                             "--kubeconfig", str(tmp / "kc"), "--no-workloads", "--no-traffic"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "ready" not in line:
        proc.kill()
        raise SystemExit(f"sandbox did not start: {line!r}")
    return proc


def one_start(tmp: Path) -> dict[str, float]:
    import psutil

    port = free_port()
    log = (tmp / "run.err").open("w")  # a file: a pipe would fill up and stall the process
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-X", "importtime", str(LBCTL), "run",
                             "--kubeconfig", str(tmp / "kc"), "--config", str(tmp / "config.yaml"),
                             "--metrics-bind", f"127.0.0.1:{port}", "--leader-elect=false"],
                            stdout=subprocess.DEVNULL, stderr=log, text=True)
    ready = None
    deadline = start + 60
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    ready = time.perf_counter() - start
                    break
        except OSError:
            time.sleep(0.02)
    rss = psutil.Process(proc.pid).memory_info().rss / 2**20 if ready else float("nan")
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    err = (tmp / "run.err").read_text()
    if ready is None:
        raise NotReady("\n".join(
            line for line in err.splitlines() if not line.startswith("import time:"))[-3000:])
    modules = re.findall(r"^import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)$", err, re.M)
    top = sum(int(cum) for cum, indent, _ in modules if len(indent) == 1)
    names = [name for _, _, name in modules]
    return {"ready_s": ready, "import_s": top / 1e6, "modules": len(names),
            "sandbox": sum(n.startswith("lbctl.sandbox") for n in names),
            "emulators": sum(n.startswith("lbctl.emulators") for n in names),
            "test_only": sum(n.split(".")[0] in TEST_ONLY for n in names), "rss_mib": rss}


def cli_import() -> float:
    out = subprocess.run([sys.executable, "-c",
                          "import time; t=time.perf_counter(); import lbctl.cli; "
                          "print(time.perf_counter()-t)"], capture_output=True, text=True,
                         check=True)
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lbctl-bench-startup-") as name:
        tmp = Path(name)
        (tmp / "config.yaml").write_text(CONFIG)
        sandbox = start_sandbox(tmp)
        runs: list[dict[str, float]] = []
        ready = Tally("starts answered /readyz", 0)
        try:
            for _ in range(args.rounds):
                try:
                    runs.append(one_start(tmp))
                    ready.add(True)
                except NotReady as exc:
                    ready.add(False)
                    ready.detail = f"the last failure's log:\n{str(exc)[-3000:]}"
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=30)
    cli = statistics.median(cli_import() for _ in range(args.rounds))
    if not ready.complete:
        print(ready)
    if not runs:
        return
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"lbctl run, median of {len(runs)} starts (baremetal provider, sandbox API):")
    print(f"  exec -> /readyz        {med['ready_s'] * 1000:8.0f} ms")
    print(f"  imports (cumulative)   {med['import_s'] * 1000:8.0f} ms")
    print(f"  modules imported       {med['modules']:8.0f}")
    print(f"  lbctl.sandbox.*        {med['sandbox']:8.0f}")
    print(f"  lbctl.emulators.*      {med['emulators']:8.0f}")
    print(f"  test-only libraries    {med['test_only']:8.0f}  ({', '.join(TEST_ONLY)})")
    print(f"  RSS when ready         {med['rss_mib']:8.1f} MiB")
    print(f"import lbctl.cli alone        {cli * 1000:8.0f} ms")


if __name__ == "__main__":
    main()
