"""The controller in-process: one way to run it beside a sandbox, for the demo, tests and benches.

`lbctl run` is the product's entry point (leader election, config reload, metrics server);
this is the same Controller without those, started leading at once, with the provider the
config names loaded through the registry, and torn down in the right order (controller, then
its provider, then the event writer, then the client).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from providers.interface import Provider
from providers.registry import load

from ..kube import Kube
from .cache import Cache
from .config import Config
from .controller import Controller
from .events import BackgroundEvents
from .kube_writes import KubeEventWriter, KubeServiceWrites
from .metrics import Metrics


@dataclass
class Embedded:
    kube: Kube
    controller: Controller
    events: BackgroundEvents


@contextlib.contextmanager
def running_controller(kubeconfig: Path | str, config: Config | Callable[[], Config], *,
                       qps: float = 200, burst: int = 400) -> Iterator[Embedded]:
    """The lbctl controller, leading, for the cluster behind `kubeconfig` and `config`'s
    provider (a `Config`, or a callable answering the current one, such as a reloading
    `lbctl.controller.runner.ConfigHolder`). Stopped (provider closed) on exit."""
    current: Callable[[], Config] = config if callable(config) else (lambda: config)
    kube = Kube.connect(str(kubeconfig), qps=qps, burst=burst)
    controller: Controller | None = None
    events: BackgroundEvents | None = None
    try:
        events = BackgroundEvents(KubeEventWriter(kube))

        def make(cache: Cache) -> Provider:
            first = current()
            provider: Provider = load(first.provider)(first.provider_settings(),
                                                      first.cluster_name, cache)
            return provider

        controller = Controller(kube, current, make, KubeServiceWrites(kube), events,
                                Metrics())
        controller.start()
        controller.start_leading()
        yield Embedded(kube, controller, events)
    finally:
        if controller is not None:
            controller.stop()
            controller.inner_provider.close()
        if events is not None:
            events.close()
        kube.close()
