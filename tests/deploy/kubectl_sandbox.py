"""A TLS sandbox the machine image's kubectl 1.33 applies the chart's manifests to, and that
kubectl run against it (the deploy tests that apply strictly: test_balancer_manifests and
test_balancer_modes)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from lbctl.sandbox.app import Sandbox, SandboxOptions, SandboxThread
from tests.conftest import unavailable

from .conftest import KUBECTL


@contextlib.contextmanager
def tls_sandbox(tmp: Path) -> Iterator[Sandbox]:
    """A sandbox serving TLS, its admin kubeconfig at `tmp`/admin.kc; skips (fails under CI)
    without the kubectl binary."""
    if not KUBECTL.exists():
        unavailable(f"{KUBECTL} is missing (the machine image's kubectl 1.33)")
    thread = SandboxThread(SandboxOptions(kubeconfig=tmp / "admin.kc", workloads=False,
                                          bookmark_interval=0.5, tls=True))
    box = thread.start()
    try:
        yield box
    finally:
        thread.stop()


def kubectl(tmp: Path, kubeconfig: Path, *args: str,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """kubectl `args` as `kubeconfig`, its cache and HOME under `tmp`; never raises on exit."""
    return subprocess.run([str(KUBECTL), "--kubeconfig", str(kubeconfig), "--cache-dir",
                           str(tmp / "kubectl-cache"), *args], input=stdin,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"HOME": str(tmp), "PATH": os.environ.get("PATH", "")})
