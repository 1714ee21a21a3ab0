"""Driving `nft` for the kernel data plane: availability, one transaction per change, cleanup.

Why the `nft` binary with JSON on stdin rather than a netlink library: `nft` is what every
distribution ships and supports, its JSON input is a stable schema, and `nft -j -f -` commits
the whole document as one kernel transaction (all or nothing), which is the property the data
plane is built on. The rendering lives in `nft_rules` (pure, testable without root); this module
only runs commands, with a timeout, and reports what failed in nft's own words.

`available()` is checked before anything is programmed: without CAP_NET_ADMIN (or without
`nft`, or nftables in the kernel) the daemon serves `dataplane: nftables` balancers in userspace
and says why; the table is never created in that case.

`netns` prefixes every command with `ip netns exec NS` so tests and benchmarks can program a
namespace of their own from the host process.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from . import nft_rules
from .model import BalancerConfig
from .nft_rules import IsUp

CAP_NET_ADMIN = 12
TIMEOUT = 30.0
"""Seconds one nft call may take; 1,000 balancers apply in well under a second."""


class NftError(RuntimeError):
    """`nft` failed; the message is nft's stderr (or why it could not run)."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


def has_net_admin(status: Path = Path("/proc/self/status")) -> bool:
    """Whether CAP_NET_ADMIN is in this process's effective capability set."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except (OSError, ValueError, IndexError):
        return False
    return False


class NftablesDataplane:
    """lbctl's nftables table in one network namespace (the current one by default)."""

    def __init__(self, *, table: str = nft_rules.TABLE, masquerade: bool = True,
                 netns: str | None = None, nft: str = "nft", timeout: float = TIMEOUT) -> None:
        self.table = table
        self.masquerade = masquerade
        self.netns = netns
        self.nft = nft
        self.timeout = timeout

    @staticmethod
    def available(nft: str = "nft", netns: str | None = None) -> tuple[bool, str]:
        """(True, "") when this process can program nftables, else (False, what is missing)."""
        if not has_net_admin():
            return False, "CAP_NET_ADMIN is not in the effective capability set"
        binary = shutil.which(nft)
        if binary is None:
            return False, f"the {nft!r} binary is not on PATH (install nftables)"
        try:
            result = subprocess.run([*_prefix(netns), binary, "list", "tables"],
                                    capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"`nft list tables` could not run: {exc}"
        if result.returncode != 0:
            return False, f"`nft list tables` failed: {result.stderr.strip() or result.returncode}"
        return True, ""

    def _run(self, args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[
            bytes]:
        argv = [*_prefix(self.netns), self.nft, *args]
        try:
            return subprocess.run(argv, input=stdin, capture_output=True,
                                  timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise NftError(f"`{' '.join(argv)}` timed out after {self.timeout}s") from exc
        except OSError as exc:
            raise NftError(f"cannot run {argv[0]!r}: {exc}") from exc

    def run_document(self, document: dict[str, Any], *, check: bool = False) -> float:
        """Run one JSON document as one transaction (`check`: validate only, commit nothing);
        returns the seconds `nft` took."""
        payload = orjson.dumps(document)
        started = time.perf_counter()
        result = self._run(["-c", "-j", "-f", "-"] if check else ["-j", "-f", "-"], payload)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace").strip()
            raise NftError(f"nft transaction failed: {stderr[:2000] or result.returncode}",
                           stderr)
        return elapsed

    def apply(self, balancers: Sequence[BalancerConfig], is_up: IsUp) -> float:
        """Replace our table with these balancers under these health verdicts, atomically;
        returns the seconds the transaction took (rendering excluded)."""
        return self.run_document(nft_rules.render(balancers, is_up, table=self.table,
                                                  masquerade=self.masquerade))

    def clear(self) -> None:
        """Delete our table; a missing table is fine."""
        self.run_document(nft_rules.render_delete(self.table))

    def current(self) -> dict[str, Any] | None:
        """`nft -j list table inet <table>`, or None when it does not exist."""
        result = self._run(["-j", "list", "table", nft_rules.FAMILY, self.table])
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace")
            if "No such file or directory" in stderr:
                return None
            raise NftError(f"nft list failed: {stderr.strip()}", stderr)
        doc: dict[str, Any] = orjson.loads(result.stdout)
        return doc


def _prefix(netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns] if netns else []

