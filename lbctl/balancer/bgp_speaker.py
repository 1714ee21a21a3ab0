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


def secrets(config: BgpConfig) -> tuple[tuple[str, str], ...]:
    """Each peer's `passwordFile` and what it holds now (an unreadable file: its error), to
    tell when a key changed."""
    out = []
    for peer in config.peers:
        if peer.password_file:
            try:
                out.append((peer.password_file, Path(peer.password_file).read_text().strip()))
            except OSError as exc:
                out.append((peer.password_file, f"error: {exc.strerror or exc}"))
    return tuple(out)


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


class _Channel:
    """One connection of the bridge: its writer and the acknowledgements it owes, in order.
    Each connection has its own: an ack read from an old connection (a bridge that reconnected,
    an ExaBGP being replaced) must never resolve a command written to the new one."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.acks: deque[asyncio.Future[bool]] = deque()

    def fail(self) -> None:
        while self.acks:
            fut = self.acks.popleft()
            if not fut.done():
                fut.set_result(False)


class Speaker:
    """One ExaBGP process and its API channel; `start`, `command`, `stop`."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None],
                 on_exit: Callable[[str], None]) -> None:
        self.on_event = on_event
        self.on_exit = on_exit
        self._dir = Path(tempfile.mkdtemp(prefix="lbctl-bgp-"))
        self._socket = self._dir / "api.sock"
        self._server: asyncio.AbstractServer | None = None
        self._channel: _Channel | None = None
        self._connected = asyncio.Event()
        self._process: asyncio.subprocess.Process | None = None
        self._waiter: asyncio.Task[None] | None = None
        self._stopping = False
        self._closed = False
        self.errors: deque[str] = deque(maxlen=20)
        self.router_id = ""
        """The identifier the running ExaBGP uses (the config's, or this host's address)."""

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def ready(self) -> bool:
        """Running, with its API channel connected: commands can go."""
        return self.running and self._channel is not None

    async def start(self, config: BgpConfig, patience: float = 20.0) -> None:
        binary = exabgp_binary()
        if binary is None:
            raise SpeakerError("exabgp is not installed (pip install 'lbctl[bgp]')")
        await self.stop()  # never two ExaBGPs: a start replaces the one running
        if self._closed:
            raise SpeakerError("the speaker is closed")
        self._stopping = False
        self._connected.clear()
        bridge = [sys.executable, "-m", "lbctl.balancer.bgp_bridge", str(self._socket)]
        conf = self._dir / "exabgp.conf"
        self.router_id = await asyncio.to_thread(router_id, config)
        text = render(config, bridge, self.router_id)
        if self._closed:  # closed while the router id was looked up
            raise SpeakerError("the speaker is closed")
        try:
            if self._server is None:
                self._server = await asyncio.start_unix_server(self._accept,
                                                               path=str(self._socket))
            fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:  # 0600 from the first byte: it holds secrets
                out.write(text)
        except OSError as exc:
            raise SpeakerError(f"cannot prepare exabgp in {self._dir}: {exc}") from exc
        env = {**os.environ, "exabgp_log_destination": "stderr", "exabgp_log_level": "WARNING",
               "exabgp_log_short": "true", "exabgp_daemon_user": getpass.getuser(),
               "exabgp_daemon_drop": "false", "exabgp_api_cli": "false",
               "exabgp_api_terminate": "true", "exabgp_api_respawn": "false",
               "exabgp_tcp_bind": "", "PYTHONPATH": _pythonpath()}
        try:
            self._process = await asyncio.create_subprocess_exec(
                binary, str(conf), env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                preexec_fn=_die_with_parent)
        except OSError as exc:
            raise SpeakerError(f"cannot run {binary}: {exc}") from exc
        process = self._process
        self._waiter = waiter = asyncio.create_task(self._wait(process))
        connected = asyncio.create_task(self._connected.wait())
        try:  # connected, or ExaBGP gone (a config it refused): whichever comes first
            await asyncio.wait({connected, waiter}, timeout=patience,
                               return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await self.stop()
            raise
        finally:
            connected.cancel()
            # ExaBGP parsed it before it started the bridge: the MD5 secrets it holds do not
            # stay on disk (a daemon killed -9 never reaches close()'s clean-up).
            with contextlib.suppress(OSError):
                conf.unlink()
        if not self._connected.is_set() or process.returncode is not None:
            what = (f"exited with {process.returncode}" if process.returncode is not None
                    else f"did not start its API process within {patience:.0f}s")
            await self.stop()
            raise SpeakerError(f"exabgp {what}: {'; '.join(self.errors) or 'no output'}")
        log.info("BGP speaker (exabgp pid %d) up with %d peers", self._process.pid,
                 len(config.peers))

    async def _wait(self, process: asyncio.subprocess.Process) -> None:
        """Drain `process`'s stderr until it closes (read in chunks, not lines: a line longer
        than the reader's 64 KiB limit, e.g. ExaBGP echoing a long command, would otherwise end
        the reading, the pipe would fill and ExaBGP block), then report its exit if it is
        still the current process, it was up, and nobody stopped it."""
        assert process.stderr is not None
        pending = b""
        while chunk := await process.stderr.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            if len(pending) > 65536:
                lines.append(pending)
                pending = b""
            for raw in lines:
                self._stderr(raw)
        self._stderr(pending)
        code = await process.wait()
        if process is self._process and not self._stopping and self._connected.is_set():
            # (before it connected, `start` reports the exit itself)
            if self._channel is not None:
                self._channel.fail()
            self.on_exit(f"exabgp exited with {code}: {'; '.join(list(self.errors)[-3:])}")

    def _stderr(self, raw: bytes) -> None:
        line = raw.decode(errors="replace").strip()
        if line:
            self.errors.append(line[-300:])
            loud = any(w in line.lower() for w in _LOUD)
            log.log(logging.WARNING if loud else logging.DEBUG, "exabgp: %.2000s", line)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        old, channel = self._channel, _Channel(writer)
        if old is not None:  # a second connection replaces the first: its commands are lost
            old.writer.close()
            old.fail()
        self._channel = channel
        self._connected.set()
        try:
            while line := await reader.readline():
                self._line(channel, line.decode(errors="replace").strip())
        except (OSError, ValueError) as exc:  # reset, or a line over the reader's limit
            log.warning("exabgp API connection lost: %s", exc)
        finally:
            writer.close()
            channel.fail()
            if self._channel is channel:
                self._channel = None

    def _line(self, channel: _Channel, line: str) -> None:
        if line in ("done", "error"):
            if channel.acks:
                fut = channel.acks.popleft()
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

    def send(self, commands: list[str]) -> list[asyncio.Future[bool]]:
        """Write `commands` at once (pipelined); each future says whether ExaBGP took it."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commands]
        channel = self._channel
        if channel is None or channel.writer.is_closing() or not commands:
            for fut in futures:
                fut.set_result(False)
            return futures
        channel.acks.extend(futures)
        channel.writer.write("".join(f"{c}\n" for c in commands).encode())
        return futures

    async def command(self, commands: list[str], patience: float = ACK_TIMEOUT) -> bool:
        """Send and wait for every acknowledgement; False when one failed or timed out."""
        return await acknowledged(self.send(commands), patience)

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
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.writer.close()
            channel.fail()

    async def close(self) -> None:
        self._closed = True
        await self.stop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        shutil.rmtree(self._dir, ignore_errors=True)


async def acknowledged(futures: list[asyncio.Future[bool]], patience: float = ACK_TIMEOUT
                       ) -> bool:
    """Whether every command of `futures` was taken, waiting at most `patience` seconds."""
    if not futures:
        return True
    try:
        results = await asyncio.wait_for(asyncio.gather(*futures), patience)
    except TimeoutError:
        return False
    return all(results)


def _pythonpath() -> str:
    """The bridge imports `lbctl.balancer.bgp_bridge` from where this process found lbctl."""
    root = str(Path(__file__).resolve().parents[2])
    current = os.environ.get("PYTHONPATH", "")
    return f"{root}:{current}" if current else root
