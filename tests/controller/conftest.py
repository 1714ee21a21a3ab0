"""A controller running in-process against the sandbox, with the recording fake provider."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from lbctl.controller.cache import Cache
from lbctl.controller.config import Config, parse_config
from lbctl.controller.controller import Controller
from lbctl.controller.events import BackgroundEvents
from lbctl.controller.kube_writes import KubeEventWriter, KubeServiceWrites
from lbctl.controller.metrics import Metrics
from lbctl.kube import Kube
from lbctl.sandbox.app import Sandbox, SandboxOptions, SandboxThread
from lbctl.sandbox.nodes import simulated
from providers.fake import FakeProvider
from providers.interface import Provider
from tests.conftest import client_for, wait_for


@dataclass
class Running:
    controller: Controller
    fake: FakeProvider
    events: BackgroundEvents
    config: dict[str, Config]
    kube: Kube

    def set_config(self, text: str) -> None:
        self.config["current"] = parse_config(text)


def start_controller(box: Sandbox, config_text: str = "provider: fake\n",
                     fake: FakeProvider | None = None) -> Running:
    assert box.options.kubeconfig is not None
    holder = {"current": parse_config(config_text)}
    kube = Kube.connect(str(box.options.kubeconfig), qps=500, burst=1000)
    fake = fake or FakeProvider()

    def make(_cache: Cache) -> Provider:
        return fake

    events = BackgroundEvents(KubeEventWriter(kube))
    controller = Controller(kube, lambda: holder["current"], make, KubeServiceWrites(kube),
                            events, Metrics())
    controller.start()
    controller.start_leading()
    return Running(controller, fake, events, holder, kube)


def stop_controller(run: Running) -> None:
    run.controller.stop()
    run.events.close()
    run.kube.close()


@pytest.fixture
def ctl_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox per test: the controller sees every Service, so tests must not share one."""
    thread = SandboxThread(SandboxOptions(nodes=simulated(3), kubeconfig=tmp_path / "kc",
                                          bookmark_interval=0.5, workloads=False))
    box = thread.start()
    yield box
    thread.stop()


@pytest.fixture
def core_api(ctl_sandbox: Sandbox) -> Iterator[client.CoreV1Api]:
    api = client_for(ctl_sandbox)
    yield client.CoreV1Api(api)
    api.close()


CONFIG = "provider: fake\ncontroller: {nodeSyncDebounceSeconds: 0.2}\n"


@pytest.fixture
def running(ctl_sandbox: Sandbox) -> Iterator[Running]:
    run = start_controller(ctl_sandbox, CONFIG)
    yield run
    stop_controller(run)


def settle(run: Running, core: client.CoreV1Api, timeout: float = 15.0) -> None:
    """Wait until the controller has acted on every write the API server took so far: both
    informers delivered that resourceVersion (an event or a bookmark at or past it; an
    informer's resourceVersion moves only after its handlers ran), then no node sync is pending
    or running and no key is queued or being synced. Only after this may a test assert that
    something did NOT happen: whatever could have done it has run. The timeout is a safety net;
    bookmarks come about once a second."""
    now = int(core.list_namespaced_config_map("default", limit=1).metadata.resource_version)
    informers = (run.controller.services, run.controller.nodes)

    def caught_up() -> bool:
        return all(int(i.resource_version or 0) >= now for i in informers)

    wait_for(caught_up, timeout, f"the informers to deliver resourceVersion {now}")
    wait_for(run.controller.quiet, timeout, "the controller to finish what they delivered")


def sample(run: Running, name: str, **labels: str) -> float:
    """A counter of the controller's registry (0 before its first increment); with no labels
    given, the sum over every label set of `name`."""
    registry = run.controller.metrics.registry
    if labels:
        return float(registry.get_sample_value(name, labels) or 0.0)
    return sum(s.value for m in registry.collect() for s in m.samples if s.name == name)


def write_changed(path: Path, text: str) -> None:
    """Write a config file whole (a temporary file renamed over it, as kubelet swaps a
    ConfigMap's files) so a poller never reads half of it, and so a `ConfigHolder`'s
    (mtime, size) stamp surely changes."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    while True:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        if path.stat().st_mtime_ns != before:
            return
        time.sleep(0.01)
