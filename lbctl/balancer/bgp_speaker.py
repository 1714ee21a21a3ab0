"""The BGP speaker: ExaBGP, run and driven by the daemon, never a protocol of our own.

Why ExaBGP and not FRR's bgpd: the daemon needs to *originate* a few /32s and withdraw them in
milliseconds when health says so; it never needs a RIB, best-path selection or a FIB. ExaBGP is
built for exactly that ("announce service IPs from health checks" is its canonical use), is a
pure-Python package pinned in our lock file like every other dependency (FRR is a suite of C
daemons with zebra, vtysh and a config language to drive, installed by the OS), speaks TCP-MD5,
4-byte ASNs, communities and large communities, and reports session state and NOTIFICATIONs
as JSON. What it lacks is BFD: failure detection is the hold timer (3 s at the least), which
meets the 3 s recovery goal; routers that need faster run BFD on their side of a direct link.

How it is driven: the daemon writes an ExaBGP config (one `neighbor` per peer, 0600, with the
MD5 secret read from the peer's `passwordFile`) and starts `exabgp` with it; ExaBGP starts our
bridge (`bgp_bridge`, a stdin/stdout <-> unix-socket relay) as its API process; commands go
down the socket (`neighbor A announce attributes ... nlri P1 P2`), acknowledged `done`/`error`
in order, and state changes and NOTIFICATIONs come back as JSON lines. Nothing can keep
announcing for a daemon that is gone: ExaBGP dies with its parent (PR_SET_PDEATHSIG), and with
`api.terminate` it exits when the bridge loses the daemon's socket; either way the kernel
closes its TCP sessions and the routers withdraw at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import getpass
import ipaddress
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lbctl.bgp_config import BgpConfig, PeerConfig

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
ACK_TIMEOUT = 10.0
_LOUD = ("error", "fail", "refused", "notification", "invalid", "denied", "unreachable")
"""ExaBGP's stderr lines worth a warning; the rest (advice, capability notes) go to debug."""


class SpeakerError(RuntimeError):
    pass


def exabgp_binary() -> str | None:
    """ExaBGP beside this interpreter (the venv) or on PATH."""
    here = Path(sys.executable).with_name("exabgp")
    return str(here) if here.exists() else shutil.which("exabgp")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _secret(peer: PeerConfig) -> str:
    if not peer.password_file:
        return ""
    try:
        text = Path(peer.password_file).read_text().strip()
    except OSError as exc:
        raise SpeakerError(f"peer {peer.key}: passwordFile {peer.password_file}: "
                           f"{exc.strerror or exc}") from exc
    if not text or '"' in text or "\n" in text or len(text) > 80:
        raise SpeakerError(f"peer {peer.key}: passwordFile {peer.password_file} must hold "
                           f"one line of 1-80 characters without '\"' (TCP-MD5 key)")
    return text


def router_id(config: BgpConfig) -> str:
    """The BGP identifier: the config's, else this host's IPv4 address towards its first peer
    (`ip route get`), else its first global IPv4 address; SpeakerError when it has none."""
    if config.identifier:
        return config.identifier
    for peer in config.peers:
        if peer.version == 4:
            done = subprocess.run(["ip", "-j", "route", "get", peer.peer_address],
                                  capture_output=True, text=True, check=False)
            with contextlib.suppress(ValueError, IndexError, KeyError, TypeError):
                source = str(json.loads(done.stdout)[0]["prefsrc"])
                if not ipaddress.ip_address(source).is_loopback:
                    return source
    done = subprocess.run(["ip", "-j", "-4", "addr", "show", "scope", "global"],
                          capture_output=True, text=True, check=False)
    with contextlib.suppress(ValueError, TypeError):
        for link in json.loads(done.stdout or "[]"):
            for info in link.get("addr_info", []):
                if info.get("local"):
                    return str(info["local"])
    raise SpeakerError("routerID: not given, and this host has no IPv4 address to take the "
                       "BGP identifier from")


def render(config: BgpConfig, bridge: list[str], identifier: str = "") -> str:
    """The ExaBGP config for `config`, with `bridge` as its API process."""
    out = ["process lbctl {", f"    run {' '.join(bridge)};", "    encoder json;", "}"]
    for peer in config.peers:
        lines = [f"neighbor {peer.peer_address} {{",
                 f"    router-id {identifier or config.identifier};",
                 f"    local-address {peer.source_address or 'auto'};",
                 f"    local-as {peer.my_asn or config.my_asn};",
                 f"    peer-as {peer.peer_asn};",
                 f"    hold-time {int(peer.hold_time)};",
                 f"    connect {peer.peer_port};",
                 "    adj-rib-out true;"]
        secret = _secret(peer)
        if secret:
            lines.append(f'    md5-password "{secret}";')
        if peer.ebgp_multi_hop:
            lines.append("    outgoing-ttl 255;")
        family = "ipv4 unicast" if peer.version == 4 else "ipv6 unicast"
        lines += [f"    family {{ {family}; }}",
                  "    api {", "        processes [ lbctl ];", "        neighbor-changes;",
                  "        receive { notification; open; }", "    }", "}"]
        out += lines
    return "\n".join(out) + "\n"


class Speaker:
    """One ExaBGP process and its API channel; `start`, `command`, `stop`."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None],
                 on_exit: Callable[[str], None]) -> None:
        self.on_event = on_event
        self.on_exit = on_exit
        self._dir = Path(tempfile.mkdtemp(prefix="lbctl-bgp-"))
        self._socket = self._dir / "api.sock"
        self._server: asyncio.AbstractServer | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._acks: deque[asyncio.Future[bool]] = deque()
        self._process: asyncio.subprocess.Process | None = None
        self._waiter: asyncio.Task[None] | None = None
        self._stopping = False
        self.errors: deque[str] = deque(maxlen=20)
        self.router_id = ""
        """The identifier the running ExaBGP uses (the config's, or this host's address)."""

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self, config: BgpConfig, patience: float = 20.0) -> None:
        binary = exabgp_binary()
        if binary is None:
            raise SpeakerError("exabgp is not installed (pip install 'lbctl[bgp]')")
        self._stopping = False
        self._connected.clear()
        if self._server is None:
            self._server = await asyncio.start_unix_server(self._accept, path=str(self._socket))
        bridge = [sys.executable, "-m", "lbctl.balancer.bgp_bridge", str(self._socket)]
        conf = self._dir / "exabgp.conf"
        self.router_id = await asyncio.to_thread(router_id, config)
        conf.write_text(render(config, bridge, self.router_id))
        conf.chmod(0o600)
        env = {**os.environ, "exabgp_log_destination": "stderr", "exabgp_log_level": "WARNING",
               "exabgp_log_short": "true", "exabgp_daemon_user": getpass.getuser(),
               "exabgp_daemon_drop": "false", "exabgp_api_cli": "false",
               "exabgp_api_terminate": "true", "exabgp_api_respawn": "false",
               "exabgp_tcp_bind": "", "PYTHONPATH": _pythonpath()}
        self._process = await asyncio.create_subprocess_exec(
            binary, str(conf), env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent)
        self._waiter = asyncio.create_task(self._wait(self._process))
        try:
            await asyncio.wait_for(self._connected.wait(), patience)
        except TimeoutError:
            await self.stop()
            raise SpeakerError(f"exabgp did not start its API process within {patience:.0f}s: "
                               f"{'; '.join(self.errors) or 'no output'}") from None
        log.info("BGP speaker (exabgp pid %d) up with %d peers", self._process.pid,
                 len(config.peers))

    async def _wait(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode(errors="replace").strip()
            if line:
                self.errors.append(line[-300:])
                loud = any(w in line.lower() for w in _LOUD)
                log.log(logging.WARNING if loud else logging.DEBUG, "exabgp: %s", line)
        code = await process.wait()
        self._fail_acks()
        if not self._stopping:
            self.on_exit(f"exabgp exited with {code}: {'; '.join(list(self.errors)[-3:])}")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = writer
        self._connected.set()
        try:
            while line := await reader.readline():
                self._line(line.decode(errors="replace").strip())
        finally:
            if self._writer is writer:
                self._writer = None
                self._fail_acks()

    def _line(self, line: str) -> None:
        if line in ("done", "error"):
            if self._acks:
                fut = self._acks.popleft()
                if not fut.done():
                    fut.set_result(line == "done")
            return
        if not line.startswith("{"):
            return
        try:
            event = json.loads(line)
        except ValueError:
            log.warning("exabgp sent what is not JSON: %.200s", line)
            return
        if isinstance(event, dict):
            self.on_event(event)

    def _fail_acks(self) -> None:
        while self._acks:
            fut = self._acks.popleft()
            if not fut.done():
                fut.set_result(False)

    def send(self, commands: list[str]) -> list[asyncio.Future[bool]]:
        """Write `commands` at once (pipelined); each future says whether ExaBGP took it."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commands]
        if self._writer is None or not commands:
            for fut in futures:
                fut.set_result(False)
            return futures
        self._acks.extend(futures)
        self._writer.write("".join(f"{c}\n" for c in commands).encode())
        return futures

    async def command(self, commands: list[str], patience: float = ACK_TIMEOUT) -> bool:
        """Send and wait for every acknowledgement; False when one failed or timed out."""
        futures = self.send(commands)
        if not futures:
            return True
        try:
            results = await asyncio.wait_for(asyncio.gather(*futures), patience)
        except TimeoutError:
            return False
        return all(results)

    async def stop(self) -> None:
        """ExaBGP down (SIGTERM: it sends Cease NOTIFICATIONs; SIGKILL after 1 s)."""
        self._stopping = True
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 1.0)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._waiter is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._waiter
            self._waiter = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._fail_acks()

    async def close(self) -> None:
        await self.stop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        shutil.rmtree(self._dir, ignore_errors=True)


def _pythonpath() -> str:
    """The bridge imports `lbctl.balancer.bgp_bridge` from where this process found lbctl."""
    root = str(Path(__file__).resolve().parents[2])
    current = os.environ.get("PYTHONPATH", "")
    return f"{root}:{current}" if current else root
