"""All workload controllers of the sandbox, wired to one store: what makes workloads real.

kube-controller-manager, kube-scheduler and the kubelets in one object, on the API server's own
event loop. It subscribes once per storage key: each committed change first updates the shared
cache, then goes to every controller that watches that key, which only queues keys. `start`
loads what the store already holds (the bootstrap namespaces, objects created before) and starts
one worker task per controller; `stop` unsubscribes and cancels them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..storage.registry import Registry
from ..storage.store import Change
from .cache import Cache
from .controller import Controller
from .daemonsets import DaemonSetController
from .deployments import DeploymentController
from .endpoints import EndpointsController
from .endpointslices import EndpointSliceController
from .garbage import GarbageCollector
from .kubelet import Kubelet
from .objects import (
    DAEMONSETS,
    DEPLOYMENTS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    SERVICES,
    SLICES,
)
from .podips import PodIPs
from .replicasets import ReplicaSetController
from .scheduler import Scheduler
from .serviceaccounts import ServiceAccountController

CACHED = (PODS.key, NODES.key, NAMESPACES.key, SERVICES.key, SLICES.key, REPLICASETS.key,
          DEPLOYMENTS.key, DAEMONSETS.key, "endpoints")


class WorkloadControllers:
    """The controllers, scheduler and kubelets that make workloads run in the sandbox."""

    def __init__(self, registry: Registry, pod_ips: PodIPs | None = None) -> None:
        self.registry = registry
        self.cache = Cache(registry.store, CACHED)
        self.kubelet = Kubelet(registry, self.cache, pod_ips)
        self.controllers: list[Controller[Any]] = [
            ServiceAccountController(registry, self.cache),
            GarbageCollector(registry, self.cache),
            DeploymentController(registry, self.cache),
            ReplicaSetController(registry, self.cache),
            DaemonSetController(registry, self.cache),
            Scheduler(registry, self.cache),
            self.kubelet,
            EndpointSliceController(registry, self.cache),
            EndpointsController(registry, self.cache),
        ]
        self._routes: dict[str, list[Controller[Any]]] = {}
        for controller in self.controllers:
            for key in controller.watches:
                self._routes.setdefault(key, []).append(controller)
        self._started = False

    def _dispatch(self, change: Change) -> None:
        self.cache.observe(change)
        for controller in self._routes.get(change.key, ()):
            controller.on_change(change)

    def start(self) -> None:
        """Subscribe and start the workers; call on the running event loop."""
        if self._started:
            return
        asyncio.get_running_loop()  # fail fast off the loop: the workers need it
        self._started = True
        self.cache.fill()
        for key in self._routes.keys() | set(self.cache.keys):
            self.registry.store.subscribe(key, self._dispatch)
        for controller in self.controllers:
            controller.resync()
            controller.queue.start()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for key in self._routes.keys() | set(self.cache.keys):
            self.registry.store.unsubscribe(key, self._dispatch)
        await asyncio.gather(*(c.queue.stop() for c in self.controllers))

    def pending(self) -> int:
        """Keys waiting in all queues (tests and benchmarks wait for 0)."""
        return sum(len(c.queue) for c in self.controllers)
