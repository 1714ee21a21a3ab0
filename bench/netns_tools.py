"""Commands and namespaces for the data-plane benchmarks (shared by balancer.py, l2_failover.py
and nft_transaction.py): run a command with a bound, inside a namespace, and clean up only the
namespaces a benchmark created (by name prefix)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


class BenchError(RuntimeError):
    """A step of a benchmark failed; the message says which."""


def run(argv: Sequence[str], *, timeout: float = 30.0, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              check=False, env=env)
    except subprocess.TimeoutExpired as exc:  # the child was killed by subprocess.run
        raise BenchError(f"{' '.join(argv)} still running after {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {proc.returncode}: "
                         f"{(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc


def in_ns(ns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def existing_namespaces() -> list[str]:
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def remove_namespaces(names: Sequence[str], prefix: str) -> None:
    """SIGKILL what still runs in the namespaces named `prefix*` (ours), then delete them."""
    for ns in names:
        if not ns.startswith(prefix):
            continue
        for pid in run(["ip", "netns", "pids", ns], check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        run(["ip", "netns", "del", ns], check=False)


def remove_own_namespaces(names: Sequence[str], prefix: str) -> None:
    """A benchmark's final cleanup: remove its namespaces and warn about any that stayed."""
    remove_namespaces(names, prefix)
    left = [n for n in existing_namespaces() if n in names]
    if left:
        print(f"warning: namespaces left: {', '.join(left)}", file=sys.stderr)
