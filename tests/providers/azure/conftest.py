"""The ARM emulator for the Azure provider's tests: one per test module (a module may start its
own), reset (world included, faults cleared) before each test, with a seeded world of three VMs
of the cluster `prod`; a sandbox whose nodes are the world's, and a CoreV1Api on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from lbctl.emulators.azure.server import AzureEmulator
from lbctl.emulators.azure.world import World
from lbctl.sandbox.app import Sandbox
from tests.providers.azure.e2e import CLUSTER, azure_sandbox
from tests.providers.convergence import core_api_of


@pytest.fixture(scope="module")
def emulator() -> Iterator[AzureEmulator]:
    with AzureEmulator(operation_delay=0.0) as emu:  # started, and stopped after
        yield emu


@pytest.fixture
def world(emulator: AzureEmulator) -> World:
    emulator.reset(keep_world=False)
    emulator.clear_faults()
    return emulator.seed(CLUSTER, 3)


@pytest.fixture
def box(world: World, tmp_path: Path) -> Iterator[Sandbox]:
    yield from azure_sandbox(world, tmp_path)


@pytest.fixture
def core_api(box: Sandbox) -> Iterator[client.CoreV1Api]:
    yield from core_api_of(box)
