"""`lbctl demo` as an unprivileged user: the story's output is checked, and its exit status.

The demo promises "no root": no capability, no port below 1024, nothing outside loopback. Run
as root, this test proves it by running the demo as `nobody` through `runuser`. `nobody` cannot
read root's interpreter (often under /root) or a work tree in a private directory, so the test
first installs lbctl, non-editable and from the lock, into a world-readable virtualenv built on
a Python `nobody` can run. Run as any other user, the demo simply runs as that user.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import traffic_lock
from tests.sandbox.kubectl.runner import IMAGE_VERSIONS, binary_path

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".cache" / "tools" / "bin" / "uv"


def _runs_as_nobody(python: str) -> bool:
    probe = subprocess.run(["runuser", "-u", "nobody", "--", python, "-c", "pass"],
                           capture_output=True, check=False)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def demo_command() -> Iterator[list[str]]:
    if os.geteuid() != 0:
        yield [str(Path(sys.executable).parent / "lbctl"), "demo"]
        return
    candidates = [str(Path(sys.executable).resolve()), "/usr/bin/python3.11", "/usr/bin/python3"]
    python = next((p for p in candidates if Path(p).exists() and _runs_as_nobody(p)), None)
    assert python is not None, f"no Python that nobody can run among {candidates}"
    venv = Path(tempfile.mkdtemp(prefix="lbctl-demo-nobody-"))
    venv.chmod(0o755)
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run([str(UV), "sync", "--quiet", "--frozen", "--no-dev", "--no-editable",
                    "--extra", "sandbox",
                    "--python", python], cwd=ROOT, env=env, check=True, timeout=600)
    subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
    try:
        yield ["runuser", "-u", "nobody", "--", str(venv / "bin" / "lbctl"), "demo"]
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def test_demo_runs_unprivileged_and_tells_the_story(demo_command: list[str]) -> None:
    with traffic_lock():
        done = subprocess.run(demo_command, capture_output=True, text=True, timeout=300,
                              cwd="/tmp", env={"PATH": os.environ.get("PATH", ""),
                                               "HOME": "/tmp", "LANG": "C.UTF-8"},
                              check=False)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    if os.geteuid() == 0:
        assert "Permission denied" not in done.stderr
    # the seed's file refused as upstream does, then accepted as NodePort
    assert ("spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
            in out)
    # kubectl get services with the VIP from the pool
    row = re.search(r"^frontend\s+LoadBalancer\s+\S+\s+(127\.0\.100\.\d+)\s+8080:3\d{4}/TCP$",
                    out, re.M)
    assert row, out
    assert "ipMode Proxy" in out
    # traffic through the VIP reached several pods on several nodes
    answers = re.findall(r"^\s+\d+ pod (frontend-\S+) on node (sandbox-node-\d)$", out, re.M)
    assert len({pod for pod, _ in answers}) >= 2
    # the stop: detected, nothing failed afterwards, and node 1 answered no more
    detection = re.search(r"balancer marked sandbox-node-1 down ([\d.]+) s after the stop", out)
    assert detection, out
    assert float(detection.group(1)) < 10.0  # a safety net; bench/ measures the real figure
    assert re.search(r"of those sent after detection (\d+) answered, 0 failed", out)
    after = out.split("pull node 1's plug", 1)[1].split("$ kubectl get service frontend")[0]
    assert "sandbox-node-1" not in after.split("0 failed:", 1)[1]
    assert "LoadBalancerDegraded=True (Degraded): balancer demo-lb: 2 of 3 targets healthy; " \
           "down: sandbox-node-1" in out
    assert "NOT removed" not in out
    assert "demo passed: traffic through the VIP reached 3 pods" in out


def _lines_until(proc: subprocess.Popen[str], marker: str, seconds: float) -> str:
    """stdout up to and including the line containing `marker` (fails after `seconds`)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
            if marker in line:
                break
        else:
            lines.put(None)  # EOF: the demo ended before the marker

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while True:
        line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
        if line is None:
            pytest.fail(f"the demo ended before {marker!r}:\n{''.join(seen)}")
        seen.append(line)
        if marker in line:
            return "".join(seen)


def test_demo_keep_stays_up_for_kubectl_and_stops_cleanly_on_ctrl_c() -> None:
    lbctl = Path(sys.executable).parent / "lbctl"
    kubectl = binary_path(IMAGE_VERSIONS[-1])
    with traffic_lock():
        proc = subprocess.Popen([str(lbctl), "demo", "--keep"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd="/tmp")
        try:
            out = _lines_until(proc, "Press Ctrl-C", 300)
            found = re.search(r"^\s*export KUBECONFIG=(\S+)$", out, re.M)
            assert found, out
            kubeconfig = found.group(1)
            # the printed commands work: kubectl reads the Service's address ...
            got = subprocess.run([str(kubectl), "get", "service", "frontend", "-o",
                                  "jsonpath={.status.loadBalancer.ingress[0].ip}"],
                                 env={**os.environ, "KUBECONFIG": kubeconfig},
                                 capture_output=True, text=True, timeout=60, check=True)
            vip = got.stdout.strip()
            assert re.fullmatch(r"127\.0\.100\.\d+", vip), got
            # ... and the VIP still carries traffic while the demo waits
            with urllib.request.urlopen(f"http://{vip}:8080/", timeout=5) as resp:
                assert resp.read().decode().startswith("pod frontend-")
            proc.send_signal(signal.SIGINT)
            rest, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, rest + err
    assert "demo passed" in rest
    assert not Path(kubeconfig).exists(), "the demo's temporary directory outlived it"
