"""Start and stop the traffic process from Python (the sandbox app, the demo, tests).

The child gets the token through its environment (not argv, where `ps` would show it) and
`--exit-with-stdin`: it holds the read end of a pipe only this object writes to, so if the parent
dies without calling `stop` the child sees EOF and exits rather than keep ports open. `start`
can wait for the child's `traffic ready` line; code running on the API server's own event loop
must not block it while the child lists that API, so it uses `start(wait=False)` and then
`await started()`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections import deque
from types import TracebackType

TOKEN_ENV = "LBCTL_SANDBOX_TOKEN"  # noqa: S105 (a variable name, not a secret)
CA_ENV = "LBCTL_SANDBOX_CA_PEM"
"""The sandbox's CA (PEM) when it serves TLS with a CA of its own."""
READY = "traffic ready"


class TrafficError(RuntimeError):
    """The traffic process exited or did not become ready in time."""


class TrafficProcess:
    def __init__(self, url: str, token: str, *, ready_timeout: float = 30.0,
                 udp_idle_timeout: float | None = None, log_level: str = "INFO",
                 python: str = sys.executable, ca_pem: bytes | None = None) -> None:
        self.url, self.token = url, token
        self.ca_pem = ca_pem
        self.ready_timeout = ready_timeout
        self.argv = [python, "-m", "lbctl.sandbox.traffic", "--server", url,
                     "--exit-with-stdin", "--log-level", log_level]
        if udp_idle_timeout is not None:
            self.argv += ["--udp-idle-timeout", str(udp_idle_timeout)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: deque[str] = deque(maxlen=50)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, *, wait: bool = True) -> TrafficProcess:
        if self.proc is not None:
            raise TrafficError("already started")
        env = {**os.environ, TOKEN_ENV: self.token}
        if self.ca_pem:
            env[CA_ENV] = self.ca_pem.decode()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env)
        self._reader = threading.Thread(target=self._read, args=(self.proc,),
                                        name="traffic-stdout", daemon=True)
        self._reader.start()
        if wait:
            self.wait_ready()
        return self

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.output.append(line)
            if READY in line:
                self._ready.set()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the child's sockets are open; stops it and raises if that fails."""
        deadline = time.monotonic() + (self.ready_timeout if timeout is None else timeout)
        while not self._ready.wait(0.05):
            if self.proc is None:
                raise TrafficError("not started")
            code = self.proc.poll()
            if code is not None:
                raise TrafficError(f"traffic process exited with {code} before it was ready")
            if time.monotonic() > deadline:
                self.stop()
                raise TrafficError("traffic process not ready in time")

    async def started(self) -> None:
        """`wait_ready` without blocking the caller's event loop (up to `ready_timeout`)."""
        await asyncio.to_thread(self.wait_ready)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdin is not None:
            proc.stdin.close()
        if self._reader is not None:
            self._reader.join(2)
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    async def aclose(self) -> int | None:
        """`stop` without blocking the caller's event loop."""
        return await asyncio.to_thread(self.stop)

    def __enter__(self) -> TrafficProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
