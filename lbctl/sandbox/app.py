"""A whole sandbox: store, registry, HTTP server, bootstrap objects, kubeconfig.

`Sandbox` is what `lbctl sandbox`, `lbctl demo` and the tests start. It can run on the caller's
event loop (`start`/`stop`) or in a thread of its own (`SandboxThread`) so that synchronous code
such as the official Python client and kubectl can drive it from the test's main thread.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from aiohttp import web

from . import kubeconfig
from .faults import Faults
from .nodes import NodeSpec, node_object
from .registry import Registry
from .resources import by_key
from .server import ApiServer
from .store import ObjectStore
from .strategies import default_strategies


@dataclass
class SandboxOptions:
    host: str = "127.0.0.1"
    port: int = 0
    nodes: list[NodeSpec] = field(default_factory=list)
    kubeconfig: Path | None = None
    token: str = ""
    bookmark_interval: float = 10.0
    history: int = 200_000
    """How many changes the log keeps before older resourceVersions answer 410."""


class Sandbox:
    """The embedded Kubernetes API server."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.token = options.token or secrets.token_urlsafe(24)
        self.store = ObjectStore(history=options.history)
        self.registry = Registry(self.store, default_strategies())
        self.faults = Faults()
        self.api = ApiServer(self.registry, self.token,
                             bookmark_interval=options.bookmark_interval, faults=self.faults)
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._bootstrap()

    def _bootstrap(self) -> None:
        """What a fresh cluster has: system namespaces, the kubernetes Service, the nodes."""
        ns_res = by_key("namespaces")
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.registry.create(ns_res, "", {"metadata": {"name": name}})
        self.registry.create(by_key("services"), "default", {
            "metadata": {"name": "kubernetes", "labels": {
                "component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                "targetPort": 6443}]}})
        for spec in self.options.nodes:
            self.registry.create(by_key("nodes"), "", node_object(spec))

    async def start(self) -> str:
        self._runner = web.AppRunner(self.api.app(), handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port)
        await site.start()
        server = site._server
        assert server is not None and isinstance(server, asyncio.Server)
        host, port = server.sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}"
        if self.options.kubeconfig is not None:
            kubeconfig.write(self.options.kubeconfig, self.url, self.token)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class SandboxThread:
    """Run a Sandbox on its own event loop in a daemon thread (tests, demo)."""

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.loop = asyncio.new_event_loop()
        self.sandbox: Sandbox | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="sandbox",
                                        daemon=True)

    def start(self) -> Sandbox:
        self._thread.start()

        async def boot() -> Sandbox:
            sandbox = Sandbox(self.options)
            await sandbox.start()
            return sandbox

        self.sandbox = asyncio.run_coroutine_threadsafe(boot(), self.loop).result(30)
        return self.sandbox

    def stop(self) -> None:
        if self.sandbox is not None:
            asyncio.run_coroutine_threadsafe(self.sandbox.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
