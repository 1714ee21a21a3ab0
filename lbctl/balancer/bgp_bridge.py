"""ExaBGP's API process: relays its stdin/stdout to the balancer daemon's unix socket.

Why a relay: ExaBGP talks to the programs it starts through their stdin/stdout, and the daemon
that decides what to announce is ExaBGP's parent, not its child. This process connects to the
socket the daemon listens on and copies lines both ways. It imports only the standard library
(it starts on every ExaBGP start), and it exits when either side closes: ExaBGP, run with
`api.terminate`, then exits too, so routes never outlive the daemon that decided them.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time


def _connect(path: str, patience: float = 10.0) -> socket.socket:
    deadline = time.monotonic() + patience
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        else:
            return sock


def _down(sock: socket.socket) -> None:
    """ExaBGP's output (events, acknowledgements) to the daemon."""
    stdin = sys.stdin.buffer
    while line := stdin.readline():
        sock.sendall(line)
    os._exit(0)  # ExaBGP closed our stdin: it is stopping


def main() -> None:
    sock = _connect(sys.argv[1])
    threading.Thread(target=_down, args=(sock,), daemon=True).start()
    out = sys.stdout.buffer
    reader = sock.makefile("rb")
    while line := reader.readline():  # the daemon's commands to ExaBGP
        out.write(line)
        out.flush()
    os._exit(0)  # the daemon is gone: ExaBGP must not announce for it


if __name__ == "__main__":
    main()
