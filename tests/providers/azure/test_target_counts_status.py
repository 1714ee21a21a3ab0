"""Azure's target counts as an operator sees them: an in-process Controller with the `azure`
provider against a sandbox whose nodes are the ARM emulator's VMs, and `lbctl status` run as a
subprocess on the same cluster (TARGETS, and `-o json`'s `targets`).

A create reads no health (TARGETS "-"); the drift timer's resync reads one rule's health per
Service (3/3); a node marked Down in the emulator shows at the next resync (2/3), and the
resync writes nothing to ARM."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from lbctl.controller.config import parse_config
from lbctl.controller.controller import Controller
from lbctl.controller.embedded import running_controller
from lbctl.controller.status_view import Targets, target_health
from lbctl.emulators.azure.server import AzureEmulator
from lbctl.emulators.azure.world import World
from lbctl.sandbox.app import Sandbox
from tests.conftest import wait_for
from tests.providers.azure.e2e import NAMESPACE, Env, config_text

pytestmark = pytest.mark.integration


@pytest.fixture
def env(emulator: AzureEmulator, world: World, box: Sandbox,
        core_api: client.CoreV1Api) -> Iterator[Env]:
    config = parse_config(config_text(world, emulator.endpoint))
    assert box.options.kubeconfig is not None
    with running_controller(str(box.options.kubeconfig), config, qps=500,
                            burst=1000) as embedded:
        yield Env(core_api, emulator, world, box, embedded.controller)


def _resync(controller: Controller) -> None:
    """What the drift timer does: every Service ensured again, nothing changed."""
    for svc in controller.cache.services():
        controller._enqueue(svc, force=True)


def _targets(env: Env, name: str) -> Targets:
    svc: dict[str, Any] = env.core.api_client.sanitize_for_serialization(env.read(name))
    return target_health(svc)


def _status(env: Env) -> tuple[str, dict[str, Any]]:
    """`lbctl status` on the sandbox: the web row's TARGETS cell and its `-o json` entry."""
    kubeconfig = str(env.box.options.kubeconfig)

    def run(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "lbctl", "status", "--kubeconfig",
                              kubeconfig, "-n", NAMESPACE, *args], capture_output=True,
                             text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout

    header, *rows = run().splitlines()
    row = next(r for r in rows if " web " in f" {r} ")
    cell = row[header.index("TARGETS"):].split()[0]
    (entry,) = [e for e in json.loads(run("-o", "json")) if e["name"] == "web"]
    return cell, entry


def test_lbctl_status_shows_the_counts_of_the_resync(env: Env) -> None:
    assert env.controller is not None
    env.create("web")
    env.converge("web")
    assert _targets(env, "web") == Targets()  # a create reads no health: unknown
    assert _status(env)[0] == "-"
    env.emu.clear_calls()
    _resync(env.controller)
    wait_for(lambda: _targets(env, "web") == Targets(3, 3), 30, "3/3 after a resync")
    cell, entry = _status(env)
    assert cell == "3/3" and entry["targets"] == {"healthy": 3, "total": 3}
    counts = env.emu.counts()
    assert counts.get("loadBalancingRules.health") == 1 and counts.get(
        "operationResults.get") == 1
    assert not [c for c in counts if c.endswith((".put", ".delete", ".patch"))], counts

    env.emu.set_health(node=env.world.nodes[2].name)  # its probes fail from now on
    _resync(env.controller)
    wait_for(lambda: _targets(env, "web") == Targets(2, 3), 30, "2/3 after a node went Down")
    cell, entry = _status(env)
    assert cell == "2/3" and entry["targets"] == {"healthy": 2, "total": 3}
