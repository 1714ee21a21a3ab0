"""Helpers the integration tests share: retrying a check, a port that refuses, and `lbctl sandbox`
as a process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from kubernetes import client, config

T = TypeVar("T")


def retry(check: Callable[[], T], within: float,
          errors: tuple[type[BaseException], ...] = (AssertionError,), pause: float = 0.05) -> T:
    """Call `check` until it returns without one of `errors`, or `within` seconds run out (the
    last error is raised)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return check()
        except errors:
            if time.monotonic() > deadline:
                raise
        time.sleep(pause)


def refused(ip: str, port: int) -> None:
    """Assert that nothing accepts TCP connections on ip:port any more."""
    try:
        socket.create_connection((ip, port), timeout=2).close()
    except ConnectionRefusedError:
        return
    raise AssertionError(f"{ip}:{port} still accepts connections")


class SandboxProcess:
    """`python -m lbctl sandbox ARGS` for the length of a `with`: `line` is its first line of
    output (the ready line); leaving the block sends `stop` and keeps what it printed after."""

    def __init__(self, *args: str, stop: signal.Signals = signal.SIGTERM) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "lbctl", "sandbox", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stop = stop
        self.out = self.err = ""
        assert self.proc.stdout is not None
        self.line = self.proc.stdout.readline()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.proc.send_signal(self.stop)
        self.out, self.err = self.proc.communicate(timeout=20)


def node_names(kubeconfig: Path) -> list[str]:
    """The names of the nodes the official client lists through `kubeconfig`."""
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        return [n.metadata.name for n in client.CoreV1Api(api).list_node().items]
    finally:
        api.close()


class NamedBackend(BaseHTTPRequestHandler):
    """Answers every GET with `backend <the address it was reached on>`."""

    def do_GET(self) -> None:
        body = f"backend {self.connection.getsockname()[0]!s}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        return


class _Backlogged(ThreadingHTTPServer):
    request_queue_size = 256  # socketserver's 5 drops SYNs when a test opens many at once
    daemon_threads = True


def named_backend(ip: str, port: int = 0) -> ThreadingHTTPServer:
    """A `NamedBackend` server on ip:port, serving in a daemon thread (shut it down after)."""
    server = _Backlogged((ip, port), NamedBackend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
