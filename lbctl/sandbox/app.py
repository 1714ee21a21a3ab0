"""A whole sandbox: store, registry, HTTP server, bootstrap objects, kubeconfig.

`Sandbox` is what `lbctl sandbox`, `lbctl demo` and the tests start. It can run on the caller's
event loop (`start`/`stop`) or in a thread of its own (`SandboxThread`) so that synchronous code
such as the official Python client and kubectl can drive it from the test's main thread.

On plain HTTP a caller without a token is admin (kube's old insecure port), which is fine on
loopback for a dev tool and nowhere else: a Sandbox refuses a non-loopback `host` without TLS
unless `allow_anonymous_remote_admin` says so, and then logs a warning once it serves.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from aiohttp import web

from .auth import bootstrap_policy, token_request
from .auth.authn import TokenIssuer
from .http import kubeconfig, tls
from .http.faults import Faults
from .http.server import ApiServer
from .nodes import NodeSpec, node_object
from .storage.registry import Registry
from .storage.resources import by_key
from .storage.store import ObjectStore
from .storage.strategies import default_strategies
from .traffic import TrafficProcess
from .workloads import WorkloadControllers

log = logging.getLogger(__name__)
ALLOW_REMOTE_FLAG = "--allow-anonymous-remote-admin"
"""The `lbctl sandbox` flag that accepts anonymous admin on a non-loopback address."""


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
    workloads: bool = True
    """Run the in-process controllers (ServiceAccounts, Deployments, ReplicaSets, DaemonSets,
    scheduler, kubelet, EndpointSlices, Endpoints, garbage collection)."""
    traffic: bool = False
    """Run the traffic process (pods' servers, nodes' NodePorts) beside the API server."""
    traffic_log_level: str = "INFO"
    tls: bool = False
    """Serve HTTPS with a CA of its own (written into the kubeconfig); credential-less callers
    are then `system:anonymous` instead of the plain-HTTP insecure-port admin."""
    allow_anonymous_remote_admin: bool = False
    """Serve plain HTTP (anonymous callers are admin) on a non-loopback `host` all the same."""


class AnonymousAdminRefused(ValueError):
    """A non-loopback host without TLS and without `allow_anonymous_remote_admin`."""


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name, as `--listen` takes it) is reachable from this
    machine only: 127.0.0.0/8, ::1 (also IPv4-mapped), `localhost` and names under
    `.localhost` (RFC 6761). Other names are not resolved: they count as remote, as do "" and
    the unspecified addresses (every interface)."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def anonymous_admin_exposed(options: SandboxOptions) -> bool:
    """Whether credential-less callers would be admin on an address other hosts can reach."""
    return not options.tls and not is_loopback(options.host)


def refusal(host: str) -> str:
    """Why a sandbox will not serve plain HTTP on `host`, and the ways out."""
    shown = f"[{host}]" if ":" in host else host or "every interface"
    return (f"refusing to serve plain HTTP on {shown}: it is not a loopback address, and "
            "without --tls every caller that sends no token is admin (system:masters), so "
            "anyone who can reach it could read and change everything. Either listen on "
            "loopback (127.0.0.1, ::1, localhost), or add --tls (anonymous callers are then "
            "system:anonymous, allowed only /version and health checks; clients use the "
            "kubeconfig's admin token and CA), or, for a throwaway sandbox on a trusted "
            f"network only, pass {ALLOW_REMOTE_FLAG}.")


def exposure_warning(url: str) -> str:
    """The warning a sandbox with anonymous admin on a non-loopback address logs."""
    return (f"WARNING: the sandbox at {url} gives admin (system:masters) to every caller "
            f"without a token and listens beyond loopback ({ALLOW_REMOTE_FLAG}): anyone who "
            "can reach it can read and change everything. Use --tls to require the "
            "kubeconfig's token.")


class Sandbox:
    """The embedded Kubernetes API server."""

    def __init__(self, options: SandboxOptions) -> None:
        if anonymous_admin_exposed(options) and not options.allow_anonymous_remote_admin:
            raise AnonymousAdminRefused(refusal(options.host))
        self.options = options
        self.token = options.token or secrets.token_urlsafe(24)
        self.store = ObjectStore(history=options.history)
        self.registry = Registry(self.store, default_strategies())
        self.faults = Faults()
        self.issuer = TokenIssuer()
        self.api = ApiServer(self.registry, self.token,
                             bookmark_interval=options.bookmark_interval, faults=self.faults,
                             insecure=not options.tls, issuer=self.issuer)
        self.tls_material = tls.generate(options.host) if options.tls else None
        self.url = ""
        self._runner: web.AppRunner | None = None
        self.traffic: TrafficProcess | None = None
        self._bootstrap()
        self.workloads = WorkloadControllers(self.registry) if options.workloads else None

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
        for role in bootstrap_policy.cluster_roles():
            self.registry.create(by_key("clusterroles.rbac.authorization.k8s.io"), "", role)
        for binding in bootstrap_policy.cluster_role_bindings():
            self.registry.create(by_key("clusterrolebindings.rbac.authorization.k8s.io"), "",
                                 binding)

    @property
    def ca_pem(self) -> bytes | None:
        """The CA clients must trust (PEM), when serving TLS."""
        return self.tls_material.ca_pem if self.tls_material is not None else None

    def issue_token(self, namespace: str, service_account: str, seconds: int = 3600) -> str:
        """A token for an existing ServiceAccount, as the TokenRequest API would issue it
        (it only reads the store, so a test's thread may call it while the sandbox runs)."""
        answer = token_request.create_token(self.store, self.issuer, namespace, service_account,
                                            {"spec": {"expirationSeconds": seconds}})
        token: str = answer["status"]["token"]
        return token

    def write_kubeconfig(self, path: Path, token: str | None = None, user: str = "admin") -> Path:
        """A kubeconfig for this sandbox with `token` (default: the admin token), e.g. one
        from `issue_token` to run a controller as its ServiceAccount."""
        return kubeconfig.write(path, self.url, token or self.token, ca_pem=self.ca_pem,
                                user=user)

    async def start(self) -> str:
        if self.workloads is not None:
            self.workloads.start()
        self._runner = web.AppRunner(self.api.app(), handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        material = self.tls_material
        context = tls.server_context(material) if material is not None else None
        site = web.TCPSite(self._runner, self.options.host, self.options.port,
                           ssl_context=context)
        await site.start()
        server = site._server
        assert server is not None and isinstance(server, asyncio.Server)
        host, port = server.sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{'https' if context else 'http'}://{shown}:{port}"
        if anonymous_admin_exposed(self.options):
            log.warning("%s", exposure_warning(self.url))
        if self.options.kubeconfig is not None:
            self.write_kubeconfig(self.options.kubeconfig)
        if self.options.traffic:
            self.traffic = TrafficProcess(self.url, self.token,
                                          log_level=self.options.traffic_log_level,
                                          ca_pem=self.ca_pem).start(
                wait=False)
            await self.traffic.started()  # must not block: the child lists this very API
        return self.url

    async def stop(self) -> None:
        if self.traffic is not None:  # before the API, or it logs broken watches
            await self.traffic.aclose()
            self.traffic = None
        if self.workloads is not None:
            await self.workloads.stop()
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
