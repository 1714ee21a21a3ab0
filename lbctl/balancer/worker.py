"""One worker process of the userspace data plane (`python -m lbctl.balancer.worker`).

Why a separate entry point rather than `multiprocessing`: a worker must start from a clean
interpreter (no copy of the daemon's sockets, API server, health probes or event loop) and
talk a protocol the daemon can read without blocking its loop. So the daemon spawns this
module with two pipes (see workers.py): JSON lines in on stdin (the balancers to serve and
the health verdicts), JSON lines out on what was stdout (passive connect failures, bind
problems, counters once a second). stdout is moved off fd 1 first and fd 1 pointed at
stderr, so a stray print can never corrupt the protocol. EOF on stdin (the daemon exited,
even by SIGKILL) closes every frontend and ends the process; SIGINT is ignored so a Ctrl-C
in a terminal stops the daemon, which then stops its workers in order.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from typing import Any

from lbctl.logs import setup as setup_logging

from .backends import EndpointKey
from .child import Sender, serve_child
from .dataplane import Dataplane
from .health import HealthChecker
from .model import parse_balancer
from .workers import run_on_loop

log = logging.getLogger(__name__)

STATS_SECONDS = 1.0


class RemoteHealth(HealthChecker):
    """Health as the daemon decides it: no probes here; verdicts arrive over the pipe and
    passive failures go back to the daemon, whose checker ejects and re-probes."""

    def __init__(self, send: Any) -> None:
        super().__init__(lambda key, up, reason: None)
        self._send = send
        self.known: dict[EndpointKey, bool] = {}
        """The daemon's verdicts, as last sent."""

    def set_owner_targets(self, owner: str, items: Any) -> None:
        """The daemon runs the probes."""

    def report_failure(self, key: EndpointKey, reason: str) -> None:
        self._send({"op": "failed", "key": [key[0], key[1]], "reason": reason})

    def is_up(self, key: EndpointKey) -> bool:
        return self.known.get(key, True)

    def verdicts(self) -> dict[EndpointKey, bool]:
        return dict(self.known)


class Worker:
    """The worker's loop: apply what the daemon sends, report what the daemon needs."""

    def __init__(self, send: Sender) -> None:
        self.send = send
        self.health = RemoteHealth(self.send)
        self.dataplane = Dataplane(health=self.health, kernel=None, log_health=False)

    async def close(self) -> None:
        await self.dataplane.close()

    async def handle(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "apply":
            try:
                self.health.known = {(a, int(p)): bool(up)
                                        for a, p, up in message["verdicts"]}
                balancers = [parse_balancer(doc, "daemon") for doc in message["balancers"]]
                await self.dataplane.apply(balancers)
                for key, up in self.health.known.items():
                    self.dataplane.set_verdict(key, up)
                problems = self.dataplane.problems.by_balancer
            except Exception as exc:  # the daemon must hear back, or it waits for nothing
                log.exception("worker %d: cannot apply the daemon's balancers", os.getpid())
                problems = {str(doc.get("name")): [f"could not apply the update: {exc}"]
                            for doc in message.get("balancers", []) if isinstance(doc, dict)}
            self.send({"op": "applied", "seq": message["seq"], "problems": problems})
        elif op == "health":
            verdicts = {(str(a), int(p)): bool(up) for a, p, up in message["verdicts"]}
            self.health.known.update(verdicts)
            self.dataplane.set_verdicts(verdicts)

    def stats(self) -> dict[str, Any]:
        frontends = []
        for (protocol, vip, port), run in self.dataplane.running.items():
            backends = [[b.address, b.port, b.active, b.total, b.failures]
                        for b in run.backends.backends]
            frontends.append([protocol, vip, port, run.stats.as_dict(), backends])
        return {"op": "stats", "frontends": frontends}

    async def report(self) -> None:
        while True:
            await asyncio.sleep(STATS_SECONDS)
            self.send(self.stats())


async def _main() -> None:
    await serve_child(Worker, stop_on_sigterm=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="lbctl.balancer.worker")
    parser.add_argument("--log-format", choices=["json", "text"], default="text")
    parser.add_argument("--event-loop", choices=["auto", "uvloop", "asyncio"], default="auto")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    setup_logging(args.log_format)
    run_on_loop(args.event_loop, _main())


if __name__ == "__main__":
    main()
