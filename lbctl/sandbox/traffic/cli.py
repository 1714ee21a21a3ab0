"""`python -m lbctl.sandbox.traffic --server URL --token TOKEN`: the traffic process's entry point.

Runs out of the API server's process so that load on pods and node proxies never starves the
API's event loop. Prints one line containing `traffic ready` on stdout once its sockets are open,
exits 0 on SIGTERM/SIGINT, and with `--exit-with-stdin` also when its stdin closes, so a parent
that dies without stopping it (a killed test run) never leaves listeners behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import signal
import ssl
import sys
from urllib.parse import urlsplit

from .daemon import Traffic
from .process import CA_ENV, TOKEN_ENV
from .records import is_loopback


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lbctl.sandbox.traffic",
                                description="Serve the sandbox's simulated pods and nodes.")
    p.add_argument("--server", required=True, help="the sandbox API URL (loopback only)")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV, ""),
                   help=f"bearer token (default: ${TOKEN_ENV})")
    p.add_argument("--udp-idle-timeout", type=float, default=30.0,
                   help="seconds before an idle UDP flow through a NodePort is forgotten")
    p.add_argument("--resync", type=float, default=5.0,
                   help="seconds between passes that retry failed binds")
    p.add_argument("--insecure-skip-tls-verify", action="store_true")
    p.add_argument("--exit-with-stdin", action="store_true",
                   help="exit when stdin reaches EOF (the parent process went away)")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def check_server(url: str) -> str | None:
    """Why this URL is refused, or None: the traffic process talks to loopback only."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"--server: {url!r} is not an http(s) URL"
    if parts.hostname != "localhost" and not is_loopback(parts.hostname):
        return f"--server: {parts.hostname} is not a 127.0.0.0/8 address or localhost"
    return None


class _ParentPipe(asyncio.Protocol):
    """stdin from the parent: EOF (or loss) means the parent is gone, so stop."""

    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task

    def data_received(self, data: bytes) -> None:
        """Nothing is ever written; whatever comes is ignored."""

    def eof_received(self) -> bool:
        self.task.cancel()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.task.cancel()


async def _main(args: argparse.Namespace) -> None:
    tls: ssl.SSLContext | bool = not args.insecure_skip_tls_verify
    ca_pem = os.environ.get(CA_ENV, "")
    if ca_pem and tls:  # trust the sandbox's own CA (it serves --tls with a CA of its own)
        tls = ssl.create_default_context(cadata=ca_pem)
    traffic = Traffic(args.server, args.token, udp_idle_timeout=args.udp_idle_timeout,
                      resync=args.resync, tls=tls)

    def ready(t: Traffic) -> None:
        print(f"traffic ready server={args.server} sockets={len(t.listeners.open)}",
              flush=True)

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    if args.exit_with_stdin:
        await loop.connect_read_pipe(lambda: _ParentPipe(task), sys.stdin)
    with contextlib.suppress(asyncio.CancelledError):
        await traffic.run(ready)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = check_server(args.server)
    if problem is None and not args.token:
        problem = f"--token (or ${TOKEN_ENV}) is required"
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:  # every listener is a descriptor: take all the kernel allows
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="traffic %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_main(args))
    except RuntimeError as exc:
        logging.getLogger(__name__).error("%s", exc)
        return 1
    return 0
