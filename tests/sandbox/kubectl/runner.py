"""Driving one real kubectl binary against the session sandbox, and reading what it prints.

Each run gets the sandbox's kubeconfig, a discovery cache of its own per kubectl version (so
versions never read each other's cache), an empty HOME (no user kubeconfig or kuberc leaks in)
and a bounded timeout.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

IMAGE_BIN = Path("/usr/lib/google-cloud-sdk/bin")
IMAGE_VERSIONS = ("1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33")
FETCHED_VERSIONS = ("1.20", "1.35")
VERSIONS = ("1.20", *IMAGE_VERSIONS, "1.35")
ROOT = Path(__file__).resolve().parents[3]
FETCH_SCRIPT = ROOT / "scripts" / "fetch-kubectl.sh"
CACHE = Path(os.environ.get("KUBECTL_CACHE", ROOT / ".cache" / "kubectl"))
TIMEOUT = 60.0


def binary_path(version: str) -> Path:
    if version in IMAGE_VERSIONS:
        return IMAGE_BIN / f"kubectl.{version}"
    return CACHE / version / "kubectl"


def minor(version: str) -> int:
    return int(version.split(".")[1])


@dataclass(frozen=True)
class Kubectl:
    """One kubectl version bound to a kubeconfig and a namespace."""

    version: str
    binary: Path
    kubeconfig: Path
    cache_dir: Path
    home: Path
    namespace: str

    @property
    def minor(self) -> int:
        return minor(self.version)

    def run(self, *args: str, stdin: str | None = None,
            timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binary), "--kubeconfig", str(self.kubeconfig), "--cache-dir",
                str(self.cache_dir), "-n", self.namespace, *args]
        env = {"HOME": str(self.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "LANG": "C.UTF-8"}
        return subprocess.run(argv, input=stdin, capture_output=True, text=True,
                              timeout=timeout, env=env, check=False)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, (
            f"kubectl {self.version} {' '.join(args)} failed ({done.returncode}):\n"
            f"{done.stderr}{done.stdout}")
        return done.stdout

    def fails(self, *args: str, stdin: str | None = None) -> str:
        """Run a command that must fail; returns what it printed on stderr."""
        done = self.run(*args, stdin=stdin)
        assert done.returncode != 0, (
            f"kubectl {self.version} {' '.join(args)} unexpectedly succeeded:\n{done.stdout}")
        return done.stderr


_COLUMN_GAP = re.compile(r"\s{2,}")


def table(text: str) -> list[list[str]]:
    """kubectl's column output as rows of cells (columns are separated by 2+ spaces)."""
    return [_COLUMN_GAP.split(line.strip()) for line in text.splitlines() if line.strip()]


def rows_by_name(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """(header, {first cell: row}) of kubectl's column output."""
    header, *rows = table(text)
    return header, {row[0]: row for row in rows}
