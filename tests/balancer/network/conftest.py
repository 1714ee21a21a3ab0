"""Network namespaces for data-plane tests: create, wire, enter, serve, and always clean up.

Why namespaces: the kernel data plane (nftables DNAT, forwarding, conntrack) can only be tested
against a real network stack, and namespaces give each test run one of its own: nothing on the
host is touched, and deleting a namespace removes its links, addresses and rules. Every name
starts with `lbn-` plus a per-run token, so parallel runs and other helpers' namespaces never
collide. Sockets are opened *inside* a namespace by switching this thread into it for the
`socket()` call only (`Netns.socket`); the socket stays bound to that namespace, so the test
drives traffic from its own process without a subprocess per connection.

Without root or a working `ip netns`, these tests skip on a developer machine and fail under CI
(`CI=true`), so CI can never pass by running nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import unavailable

CLONE_NEWNET = 0x40000000
PREFIX = "lbn-"

SERVER = r"""
import asyncio, socket, sys
NAME = sys.argv[1]
TCP_PORT, UDP_PORT = int(sys.argv[2]), int(sys.argv[3])

async def talk(reader, writer):
    writer.write(f"{NAME}\n".encode())
    try:
        while line := await reader.readline():  # echo each line, prefixed: "still here"
            writer.write(f"{NAME} {line.decode().strip()}\n".encode())
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()

class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport
    def datagram_received(self, data, addr):
        self.transport.sendto(NAME.encode(), addr)

async def main():
    server = await asyncio.start_server(talk, None, TCP_PORT)  # 0.0.0.0 and ::
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", UDP_PORT))
    await asyncio.get_running_loop().create_datagram_endpoint(Echo, sock=sock)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def sh(*argv: str, check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result


def run_in(ns: str, *argv: str, check: bool = True,
           timeout: float = 10) -> subprocess.CompletedProcess[str]:
    """Run a command inside namespace `ns`."""
    return sh("ip", "netns", "exec", ns, *argv, check=check, timeout=timeout)


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class Netns:
    """One network namespace of ours (created here); `close()` kills the processes started
    with `popen` and deletes it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.procs: list[subprocess.Popen[str]] = []
        sh("ip", "netns", "add", name)
        self.ip("link", "set", "lo", "up")

    def ip(self, *args: str) -> None:
        sh("ip", "-n", self.name, *args)

    def run(self, *argv: str, check: bool = True,
            timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return run_in(self.name, *argv, check=check, timeout=timeout)

    def sysctl(self, key: str, value: str) -> None:
        self.run("sysctl", "-qw", f"{key}={value}")

    def popen(self, *argv: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """This thread in the namespace (for creating sockets), back out afterwards."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(target)
            os.close(home)

    def socket(self, family: int = socket.AF_INET,
               kind: int = socket.SOCK_STREAM) -> socket.socket:
        with self.inside():
            return socket.socket(family, kind)

    def stop(self, proc: subprocess.Popen[str]) -> None:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=5)
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)

    def close(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)
        sh("ip", "netns", "del", self.name, check=False)


def token() -> str:
    return secrets.token_hex(3)


def require_netns() -> None:
    """Root and a working `ip netns`, or skip/fail with the reason."""
    if os.geteuid() != 0:
        unavailable("network tests need root (network namespaces, nftables)")
    probe = f"{PREFIX}{token()}-probe"
    try:
        result = sh("ip", "netns", "add", probe, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        unavailable(f"`ip netns` cannot run: {exc}")
    if result.returncode != 0:
        unavailable(f"`ip netns add` failed: {result.stderr.strip()}")
    sh("ip", "netns", "del", probe, check=False)


def veth(a: Netns, a_if: str, b: Netns, b_if: str) -> None:
    """A veth pair created straight into two namespaces (never in the host's)."""
    a.ip("link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name)
    a.ip("link", "set", a_if, "up")
    b.ip("link", "set", b_if, "up")


class Namespaces:
    """Owns every namespace a fixture made (`<prefix><token>-<role>`); closes them all, even
    after a failure. Other suites pass their own prefix."""

    def __init__(self, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        self.token = token()
        self.all: list[Netns] = []

    def new(self, role: str) -> Netns:
        ns = Netns(f"{self.prefix}{self.token}-{role}")
        self.all.append(ns)
        return ns

    def close(self) -> None:
        for ns in reversed(self.all):
            ns.close()


@pytest.fixture(scope="module")
def namespaces() -> Iterator[Namespaces]:
    require_netns()
    owned = Namespaces()
    try:
        yield owned
    finally:
        owned.close()


def start_server(ns: Netns, name: str, tcp_port: int, udp_port: int) -> subprocess.Popen[str]:
    """The node's NodePort stand-in: TCP says its name and echoes; UDP answers its name."""
    proc = ns.popen(sys.executable, "-c", SERVER, name, str(tcp_port), str(udp_port))
    assert proc.stdout is not None
    line = proc.stdout.readline()  # bounded: the process prints or dies
    if line.strip() != "ready":
        ns.stop(proc)
        raise AssertionError(f"server {name} in {ns.name} did not start: {line!r}")
    return proc


def wait_until(check: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll `check` until it returns truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not true after {timeout}s: {check}")
