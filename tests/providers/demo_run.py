"""What the `lbctl demo --provider <cloud>` tests share: the demo as a subprocess with the
cloud's credentials kept out of its environment, the Service's row of its `kubectl get services`,
and a story object put in a given state (for its verdict)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, TypeVar

LBCTL = str(Path(sys.executable).parent / "lbctl")
S = TypeVar("S")


def run_demo(provider: str, without: tuple[str, ...], timeout: float,
             **env: str) -> subprocess.CompletedProcess[str]:
    """`lbctl demo --provider <provider>` in /tmp, its environment without the variables
    starting with `without` (plus `env`)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(without)}
    clean.update(env)
    return subprocess.run([LBCTL, "demo", "--provider", provider], capture_output=True,
                          text=True, timeout=timeout, cwd="/tmp", env=clean, check=False)


def service_ip(out: str, name: str = "frontend", port: int = 80) -> tuple[str, str]:
    """The IP and nodePort of the Service's `kubectl get services` row (asserts there is one)."""
    row = re.search(rf"^{name}\s+LoadBalancer\s+\S+\s+(\d+\.\d+\.\d+\.\d+)\s+{port}:(\d+)/TCP$",
                    out, re.M)
    assert row, out
    return row.group(1), row.group(2)


def in_state(story: S, **state: Any) -> S:
    """`story` with the attributes in `state` set."""
    for key, value in state.items():
        setattr(story, key, value)
    return story
