"""Fixtures for the kubectl tests: which kubectl binaries exist, and a runner per version.

The image ships kubectl 1.27-1.33; 1.20 and 1.35 are fetched once by scripts/fetch-kubectl.sh
(cached under .cache/kubectl). A version that cannot be had is skipped on a developer machine
and fails the run under CI (`CI=true`), so a CI machine can never pass by running nothing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lbctl.sandbox.app import Sandbox
from tests.sandbox.kubectl.runner import (
    FETCH_SCRIPT,
    FETCHED_VERSIONS,
    VERSIONS,
    Kubectl,
    binary_path,
)


@dataclass
class Binaries:
    """The kubectl binaries found, and why the others are missing."""

    paths: dict[str, Path] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def get(self, version: str) -> Path:
        if version in self.paths:
            return self.paths[version]
        reason = f"kubectl {version} is not available: {self.missing.get(version, 'unknown')}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _runs(path: Path) -> bool:
    try:
        done = subprocess.run([str(path), "version", "--client"], capture_output=True,
                              timeout=30, check=False)
    except OSError:
        return False
    return done.returncode == 0


@pytest.fixture(scope="session")
def kubectl_binaries() -> Binaries:
    """Every kubectl version the tests know, fetching the ones the image lacks (once)."""
    found = Binaries()
    fetch_error = ""
    if any(not binary_path(v).exists() for v in FETCHED_VERSIONS):
        try:
            done = subprocess.run(["bash", str(FETCH_SCRIPT)], capture_output=True, text=True,
                                  timeout=900, check=False)
            fetch_error = done.stderr.strip() if done.returncode else ""
        except subprocess.TimeoutExpired:
            fetch_error = f"{FETCH_SCRIPT.name} timed out"
    for version in VERSIONS:
        path = binary_path(version)
        if path.exists() and _runs(path):
            found.paths[version] = path
        else:
            found.missing[version] = (fetch_error if version in FETCHED_VERSIONS and fetch_error
                                      else f"{path} is missing or does not run")
    return found


@pytest.fixture(scope="session")
def kubectl_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HOME and per-version discovery caches shared by the session's kubectl runs."""
    return tmp_path_factory.mktemp("kubectl-home")


def make_kubectl(version: str, binaries: Binaries, box: Sandbox, home: Path,
                 namespace: str) -> Kubectl:
    assert box.options.kubeconfig is not None
    return Kubectl(version, binaries.get(version), box.options.kubeconfig,
                   home / "cache" / version, home, namespace)


@pytest.fixture(params=VERSIONS)
def kubectl(request: pytest.FixtureRequest, kubectl_binaries: Binaries, sandbox: Sandbox,
            kubectl_home: Path, ns: str) -> Iterator[Kubectl]:
    """Every available kubectl version in turn, in a fresh namespace."""
    yield make_kubectl(str(request.param), kubectl_binaries, sandbox, kubectl_home, ns)


@pytest.fixture
def newest_kubectl(kubectl_binaries: Binaries, sandbox: Sandbox, kubectl_home: Path,
                   ns: str) -> Kubectl:
    """The newest kubectl, for checks that do not depend on the client version."""
    return make_kubectl(VERSIONS[-1], kubectl_binaries, sandbox, kubectl_home, ns)
