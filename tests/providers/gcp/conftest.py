"""The GCE emulator for the GCP provider's tests: one per test module, reset (world included)
before each test; a `GceClient` on it with generous rate limits and short retry waits; a
seeded world of three instances of the cluster `prod`, tagged `prod-node`; a sandbox whose nodes
are the world's, and a CoreV1Api on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from lbctl.emulators.gcp.server import GceEmulator
from lbctl.emulators.gcp.world import World
from lbctl.sandbox.app import Sandbox
from providers.gcp.client import GceClient
from providers.gcp.settings import GcpSettings
from tests.providers.convergence import core_api_of
from tests.providers.gcp.e2e import gce_sandbox

CLUSTER = "prod"


@pytest.fixture(scope="module")
def emulator() -> Iterator[GceEmulator]:
    with GceEmulator(operation_delay=0.0) as emu:  # started, and stopped after
        yield emu


@pytest.fixture
def settings(emulator: GceEmulator) -> GcpSettings:
    emulator.reset(keep_world=False)
    emulator.clear_faults()
    return GcpSettings(project=emulator.project, region=emulator.region,
                       endpoint=emulator.endpoint,
                       rate_limits={"read": 1000.0, "write": 1000.0, "operations": 1000.0})


@pytest.fixture
def gce(settings: GcpSettings) -> Iterator[GceClient]:
    client = GceClient(settings, max_wait=0.05, max_seconds=10)
    yield client
    client.close()


@pytest.fixture
def world(emulator: GceEmulator, settings: GcpSettings) -> World:
    return emulator.seed(CLUSTER, nodes=3)


@pytest.fixture
def box(world: World, tmp_path: Path) -> Iterator[Sandbox]:
    yield from gce_sandbox(world, tmp_path)


@pytest.fixture
def core_api(box: Sandbox) -> Iterator[client.CoreV1Api]:
    yield from core_api_of(box)
