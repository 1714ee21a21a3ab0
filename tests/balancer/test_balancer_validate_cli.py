"""`lbctl balancer validate FILE`, run as users run it: exit 0 and a count for a good static
file, 1 with every problem named by its key for a bad one, 2 for a file that cannot be read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lbctl", "balancer", "validate", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_committed_bench_files_are_valid() -> None:
    for name in ("lbctl-userspace.yaml", "lbctl-nftables.yaml"):
        path = ROOT / "bench" / "balancer" / name
        done = _validate(path)
        assert (done.returncode, done.stdout.strip()) == (0, f"{path}: ok (2 balancers)")


@pytest.mark.parametrize(("text", "problem"), [
    ("balancers:\n- name: x\n  vip: 10.0.0.1\n  listeners:\n"
     "  - {protocol: TCP, port: 99999, targets: ['10.0.0.2:80']}\n",
     "balancers[0].listeners[0].port: Input should be less than or equal to 65535"),
    ("balancers:\n- name: x\n  vip: not-an-ip\n  listeners:\n"
     "  - {protocol: TCP, port: 80, targets: ['10.0.0.2:80']}\n",
     "balancers[0].vip"),
    ("balancers:\n- name: x\n  vip: 10.0.0.1\n  listeners:\n"
     "  - {protocol: SCTP, port: 80, targets: ['10.0.0.2:80']}\n",
     "balancers[0].listeners[0].protocol"),
    ("balancers: [\n", "line"),
])
def test_a_bad_file_names_the_key(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "balancers.yaml"
    path.write_text(text)
    done = _validate(path)
    assert done.returncode == 1, done
    assert problem in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""


def test_an_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    done = _validate(tmp_path / "missing.yaml")
    assert done.returncode == 2
    assert "missing.yaml" in done.stderr and "Traceback" not in done.stderr
