"""`lbctl balancer serve`: the daemon's life cycle around the store, data plane and API.

One event loop (uvloop when installed) runs everything: the data plane's sockets, the health
probes and the HTTP API, so no lock is needed between them beyond the data plane's own apply
lock. Startup order matters for restarts: the static file and the state file are read and
applied BEFORE the API accepts requests, so an instance that restarts serves what it served
before within one apply, and `/readyz` answers 200 only from then on. The static file is
re-read when it changes (polled every second; SIGHUP forces it) and a bad edit keeps the last
good file serving, with the error logged naming the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import resource
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from lbctl.parsing import ConfigError

from .announce import Announcements, L2Options
from .api import Api, TokenFile
from .api_server import ApiLimits, ApiServer, TlsFiles
from .bgp import BgpAnnouncements, follow
from .bgp_policy import claimed_by
from .dataplane import Dataplane
from .lo_vips import LoBinding
from .metrics import DataplaneCollector
from .model import BalancerConfig, parse_file
from .store import Store
from .workers import WorkerPool, run_on_loop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    config: Path | None = None
    api_listen: str | None = None
    token_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    """PEM files: with both, the API (and /healthz, /readyz, /metrics) is HTTPS only."""
    heartbeat_key_file: Path | None = None
    """The HMAC key of L2 heartbeats (a key of its own: the API token never leaves the API)."""
    api_limits: ApiLimits = field(default_factory=ApiLimits)
    state_file: Path | None = None
    reload_seconds: float = 1.0
    event_loop: str = os.environ.get("LBCTL_EVENT_LOOP", "auto")
    """auto (uvloop when installed) | uvloop | asyncio."""
    l2: L2Options | None = None
    """L2 announcements (ARP/NDP, failover between instances); None: off."""
    kernel: str = "auto"
    """auto: `dataplane: nftables` balancers go to the kernel when this process may program
    it; off: always userspace."""
    workers: int = 1
    """Processes serving the userspace data plane, this one included (workers.py)."""
    log_format: str = "text"


class Daemon:
    """Build with options, `await start()`, `await stop()`."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.store = Store(options.state_file)
        self.dataplane = Dataplane(kernel=None if options.kernel == "off" else "auto",
                                   log_format=options.log_format,
                                   event_loop=options.event_loop)
        if options.kernel != "off" and self.dataplane.kernel is None:
            log.warning("nftables data plane unavailable (%s): nftables balancers will be "
                        "served in userspace", self.dataplane.kernel_reason)
        self.registry = CollectorRegistry()
        self.l2: Announcements | None = None
        self.bgp: BgpAnnouncements | None = None
        self.bgp_lo = LoBinding()
        self.dataplane.verdict_listeners.append(self._verdicts)
        self.collector = DataplaneCollector(self.dataplane)
        self.registry.register(self.collector)
        self._ready = False
        self._api: ApiServer | None = None
        self._tls: TlsFiles | None = None
        if (options.tls_cert is None) != (options.tls_key is None):
            raise ConfigError("--tls-cert/--tls-key", [("", "give both or neither")])
        if options.tls_cert is not None and options.tls_key is not None:
            try:
                self._tls = TlsFiles(options.tls_cert, options.tls_key)
            except (OSError, ValueError) as exc:  # ssl.SSLError is a ValueError... and OSError
                raise ConfigError("--tls-cert/--tls-key",
                                  [("", f"cannot load {options.tls_cert} with "
                                        f"{options.tls_key}: {exc}")]) from exc
        self._tasks: list[asyncio.Task[None]] = []
        self._static_mtime: float | None = None
        self.api_port: int | None = None

    @property
    def tls(self) -> bool:
        return self._tls is not None

    # -- static file ------------------------------------------------------------------------
    def load_static(self, force: bool = False) -> bool:
        """(Re)read the static file when it changed; answers whether the store changed.
        Raises ConfigError only on the first load (nothing good to keep yet)."""
        path = self.options.config
        if path is None:
            return False
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            if self._static_mtime is None:
                raise ConfigError(str(path), [("", exc.strerror or str(exc))]) from exc
            log.error("%s: %s; the last good file keeps serving", path, exc)
            return False
        if not force and mtime == self._static_mtime:
            return False
        first = self._static_mtime is None
        self._static_mtime = mtime
        try:
            parsed = parse_file(path.read_text(), str(path))
        except ConfigError as exc:
            if first:
                raise
            log.error("%s; the last good file keeps serving", exc)
            return False
        self.store.set_static_bgp(parsed.bgp)
        dropped = self.store.set_static(parsed.balancers)
        for name in dropped:
            log.warning("programmed balancer %s dropped: the static file now claims it", name)
        log.info("static file %s: %d balancers%s", path, len(parsed.balancers),
                 ", bgp" if parsed.bgp else "")
        return True

    async def apply(self) -> None:
        desired = self.store.desired()
        await self.dataplane.apply(desired)
        await self._apply_bgp(desired)
        if self.l2 is not None:  # L2 announces what BGP does not
            self.l2.skip = claimed_by(self.bgp.config if self.bgp is not None else None)
            self.l2.update(desired)
        await asyncio.to_thread(self.store.persist)  # a static file may have dropped some

    async def _apply_bgp(self, desired: list[BalancerConfig]) -> None:
        self.bgp = await follow(self.bgp, self.store.bgp(), desired, self.dataplane.health.is_up)
        self.collector.bgp = self.bgp
        bgp = self.bgp
        if bgp is not None or self.bgp_lo.bound:  # routed here by BGP: delivered locally
            await self.bgp_lo.keep(v for b in desired for v in b.addresses
                                   if bgp is not None and bgp.claimed(v))

    def _verdicts(self) -> None:
        if self.bgp is not None:
            self.bgp.changed()

    def _worker_failure(self, key: tuple[str, int], reason: str) -> None:
        """A worker's connect to a target failed: the checker ejects it for everyone."""
        self.dataplane.health.report_failure(key, reason)

    def status(self, name: str) -> dict[str, Any]:
        """The data plane's view of a balancer plus what L2 adds (conflicts, ownership)."""
        status = self.dataplane.status(name)
        found = self.store.get(name)
        if found is not None and not found[1] and self.store.persist_error:
            status["problems"] = [*status.get("problems", []), self.store.persist_error]
        if self.l2 is not None and found is not None:
            balancer = found[0]
            status["problems"] = [*status.get("problems", []), *self.l2.problems(balancer)]
            owned = self.l2.owned()
            status["announced"] = sorted(v for v in balancer.addresses if v in owned)
        if self.bgp is not None and found is not None:
            # Per VIP, not a problem of this instance: another host may announce it (the
            # provider says when none does).
            views = {vip: self.bgp.vip_view(vip) for vip in found[0].addresses
                     if self.bgp.claimed(vip)}
            if views:
                status["bgp"] = views
        return status

    # -- life cycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self.load_static()
        if self.options.workers > 1:
            pool = WorkerPool(self.options.workers - 1, self._worker_failure,
                              log_format=self.options.log_format,
                              event_loop=self.options.event_loop)
            self.dataplane.workers = pool
            await pool.start()
        restored = self.store.load()
        if restored:
            log.info("restored %d programmed balancers from %s", restored,
                     self.options.state_file)
        await self.apply()
        if self.options.l2 is not None:
            path = self.options.heartbeat_key_file
            key = TokenFile(path).current() if path is not None else b""
            if len(key) < 16:
                raise ConfigError("--heartbeat-key-file",
                                  [("", "L2 announcements authenticate heartbeats with a key of "
                                        "their own: give a readable file of at least 16 "
                                        "bytes (the same on every instance)")])
            self.l2 = Announcements(self.options.l2, key)
            self.l2.skip = claimed_by(self.bgp.config if self.bgp is not None else None)
            self.store.reserve("UDP", _address(self.options.l2.listen[0]),
                               self.options.l2.listen[1])
            self.collector.l2 = self.l2
            await self.l2.start(self.store.desired())
        self._ready = True
        if self.options.api_listen:
            await self._start_api(self.options.api_listen)
        if self.options.config is not None or self._tls is not None:
            self._tasks.append(asyncio.create_task(self._watch_files()))

    async def _start_api(self, listen: str) -> None:
        token = TokenFile(self.options.token_file) if self.options.token_file else None
        if token is None:
            log.warning("no --token-file: every /v1 request is refused (401)")
        limits = self.options.api_limits
        api = Api(self.store, self.apply, self.status, token, self.registry,
                  lambda: self._ready, body_timeout=limits.body_timeout,
                  bgp_status=lambda: None if self.bgp is None else {
                      **self.bgp.status(), "boundOnLo": sorted(self.bgp_lo.bound),
                      "bindError": self.bgp_lo.error})
        self._api = ApiServer(api.app(), limits, self._tls)
        self.collector.api = self._api
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        self.api_port = await self._api.start(host, int(port))
        self.store.reserve("TCP", _address(host), self.api_port)

    async def _watch_files(self) -> None:
        """The static file (re-applied when it changes) and the TLS pair (re-loaded)."""
        while True:
            await asyncio.sleep(self.options.reload_seconds)
            if self._tls is not None:
                self._tls.refresh()
            if self.load_static():
                await self.apply()

    async def reload(self) -> None:
        if self.load_static(force=True):
            await self.apply()

    async def stop(self) -> None:
        """Everything down within about 1.5 s whatever the load (SIGTERM's promise is 2 s):
        API requests in flight get 0.5 s, the checker 0.5 s and workers 1 s (side by side)."""
        started = time.monotonic()
        self._ready = False
        if self.bgp is not None:  # routers steer new connections away before anything closes
            await self.bgp.drain()
            log.info("BGP: withdrawn and drained in %.2f s", time.monotonic() - started)
        if self.dataplane.workers is not None:
            self.dataplane.workers.closing()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._api is not None:
            await self._api.stop()
        if self.l2 is not None:
            await self.l2.stop()  # peers take over at once ("leaving"), VIPs unbound
        api_done = time.monotonic()
        await self.dataplane.close()
        if self.bgp is not None:
            await self.bgp.stop()
            await self.bgp_lo.close()
        log.info("stopped in %.2f s (API and tasks %.2f s, data plane and children %.2f s)",
                 time.monotonic() - started, api_done - started, time.monotonic() - api_done)


def _url(listen: str, port: int | None, tls: bool) -> str:
    host = listen.rpartition(":")[0] or "0.0.0.0"
    return f"{'https' if tls else 'http'}://{host}:{port}"


def raise_open_files_limit() -> tuple[int, int]:
    """Lift the soft RLIMIT_NOFILE to the hard one: every proxied connection costs two file
    descriptors (three or four while splicing) and the usual soft default of 1,024 ran out
    under a few hundred clients. Answers (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft >= hard:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("cannot raise the open files limit from %d to %d: %s", soft, hard, exc)
        return soft, soft
    log.info("open files limit raised from %d to %d", soft, hard)
    return soft, hard


async def serve(options: ServeOptions, announce: bool = True) -> None:
    """Run until SIGTERM/SIGINT; SIGHUP re-reads the static file."""
    raise_open_files_limit()
    daemon = Daemon(options)
    try:
        await daemon.start()
    except BaseException:  # e.g. a bad --interface after the apply: no nft table left behind
        await daemon.stop()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(daemon.reload()))
    if announce:
        where = f" api at {_url(options.api_listen, daemon.api_port, daemon.tls)}" \
            if options.api_listen else ""
        print(f"balancer ready: {len(daemon.store.desired())} balancers{where}", flush=True)
    await stop.wait()
    await daemon.stop()
    print("balancer stopped", flush=True)


def _address(host: str) -> str:
    """A listen host as the store compares it: an address, "0.0.0.0" for a name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return "0.0.0.0"  # a name (localhost, ...): reserve the port everywhere


def run(options: ServeOptions) -> None:
    """Blocking entry point on the event loop `options.event_loop` names."""
    run_on_loop(options.event_loop, serve(options))


class DaemonThread:
    """A daemon on its own event loop in a background thread (the demo, tests)."""

    def __init__(self, options: ServeOptions) -> None:
        import threading  # noqa: PLC0415

        self.options = options
        self.daemon: Daemon | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="lbctl-balancer", daemon=True)

    def start(self, timeout: float = 30.0) -> Daemon:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("balancer daemon did not start")
        if self._error is not None or self.daemon is None:
            raise RuntimeError(f"balancer daemon failed to start: {self._error}")
        return self.daemon

    @property
    def url(self) -> str:
        scheme = "https" if self.daemon is not None and self.daemon.tls else "http"
        return f"{scheme}://127.0.0.1:{self.daemon.api_port if self.daemon else 0}"

    def _main(self) -> None:
        try:
            import uvloop  # noqa: PLC0415
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        try:
            self.daemon = Daemon(self.options)
            try:
                await self.daemon.start()
            except BaseException:  # nothing half-started left behind (nft table, VIPs)
                await self.daemon.stop()
                raise
        except BaseException as exc:  # report to start(), never hang it
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stopped.wait()
        await self.daemon.stop()

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the daemon's loop and wait for its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stopped is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout)
