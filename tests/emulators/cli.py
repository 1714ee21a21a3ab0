"""`lbctl emulator CLOUD` as a process, for the CLI tests every emulator has: start one and read
its first line, and check that a taken port is refused the same way (exit 1, the flag named,
no traceback)."""

from __future__ import annotations

import socket
import subprocess
import sys


def start(cloud: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """`lbctl emulator CLOUD ARGS...` running, and the first line it printed."""
    proc = subprocess.Popen([sys.executable, "-m", "lbctl", "emulator", cloud, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline()


def assert_a_taken_port_exits_1(cloud: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "lbctl", "emulator", cloud, "--listen",
                              f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60,
                             check=False)
    assert out.returncode == 1 and f"--listen 127.0.0.1:{port}" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
