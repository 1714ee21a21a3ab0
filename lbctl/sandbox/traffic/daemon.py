"""The traffic process's main loop: four informers feed one reconcile that opens and closes sockets.

Every watch event marks the state dirty; the loop waits a short settle time so a burst (a
Deployment's pods, a relist) costs one pass, then rebuilds the plan and applies it: the listener
diff, with the router's routes swapped in between (see `Listeners.apply`). A periodic pass retries
binds that failed. Readiness (the `on_ready` callback) comes after every informer has listed
once and the first pass has opened its sockets, so a caller that waits for it can send traffic
at once.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

import aiohttp

from . import plan as planner
from .informer import Informer
from .listeners import Listeners
from .records import parse_node, parse_pod, parse_service, parse_slice
from .router import Router

log = logging.getLogger(__name__)


class Traffic:
    def __init__(self, server: str, token: str, *, udp_idle_timeout: float = 30.0,
                 resync: float = 5.0, settle: float = 0.05,
                 tls: ssl.SSLContext | bool = True) -> None:
        self.server, self.token = server, token
        self.resync, self.settle, self.tls = resync, settle, tls
        self.router = Router()
        self.listeners = Listeners(self.router, udp_idle_timeout=udp_idle_timeout)
        self._dirty = asyncio.Event()
        self._fatal: BaseException | None = None
        self.passes = 0

    def _mark(self) -> None:
        self._dirty.set()

    async def run(self, on_ready: Callable[[Traffic], None] | None = None) -> None:
        """Serve until cancelled; always closes every socket on the way out."""
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                   "User-Agent": "lbctl-sandbox-traffic"}
        connector = aiohttp.TCPConnector(limit=16, ssl=self.tls)
        timeout = aiohttp.ClientTimeout(total=60, sock_connect=10)
        async with aiohttp.ClientSession(headers=headers, connector=connector,
                                         timeout=timeout) as session:
            self.nodes = Informer(session, self.server, "/api/v1/nodes", parse_node, self._mark)
            self.services = Informer(session, self.server, "/api/v1/services", parse_service,
                                     self._mark)
            self.pods = Informer(session, self.server, "/api/v1/pods", parse_pod, self._mark)
            self.slices = Informer(session, self.server,
                                   "/apis/discovery.k8s.io/v1/endpointslices", parse_slice,
                                   self._mark)
            informers: list[Informer[Any]] = [self.nodes, self.services, self.pods,
                                              self.slices]
            tasks = [asyncio.create_task(i.run(), name=f"informer {i.path}")
                     for i in informers]
            for task in tasks:
                task.add_done_callback(self._died)
            try:
                await self._serve(informers, on_ready)
            finally:
                for task in tasks:
                    task.remove_done_callback(self._died)
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self.listeners.close_all()

    def _died(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            self._fatal = task.exception() or RuntimeError(f"{task.get_name()} stopped")
            self._dirty.set()

    async def _serve(self, informers: list[Informer[Any]],
                     on_ready: Callable[[Traffic], None] | None) -> None:
        while not all(i.synced.is_set() for i in informers):
            self._check()
            await asyncio.sleep(0.02)
        await self.reconcile()
        if on_ready is not None:
            on_ready(self)
        while True:
            try:
                await asyncio.wait_for(self._dirty.wait(), self.resync)
                await asyncio.sleep(self.settle)
            except TimeoutError:
                pass
            self._check()
            await self.reconcile()

    def _check(self) -> None:
        if self._fatal is not None:
            raise RuntimeError("an informer stopped") from self._fatal

    async def reconcile(self) -> None:
        self._dirty.clear()
        plan = planner.build(self.nodes.items.values(), self.services.items.values(),
                             self.pods.items.values(), self.slices.items.values())
        opened, closed = await self.listeners.apply(plan)  # swaps the router's routes too
        self.passes += 1
        if opened or closed:
            log.info("listening on %d sockets (+%d -%d)", len(self.listeners.open), opened,
                     closed)
