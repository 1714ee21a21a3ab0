"""The health checker's process (`python -m lbctl.balancer.checker`): probes, off the data plane.

Why a process: 10,000 targets checked every 2 s are 5,000 TCP connects a second, about 0.6 of a
core of Python. On the data plane's event loop they held every request through an unrelated VIP
behind probe callbacks (p99 +160 ms in `bench/balancer_scale.py`); on a thread of their own
they still did (+117 ms: the GIL); in a process of their own the same probes cost that VIP
+1.6 ms. So the daemon runs its `HealthChecker` here, and mirrors the verdicts (`HealthProcess`
in `health_process.py`).

Protocol: JSON lines in on stdin, JSON lines out on what was stdout (fd 1 is pointed at stderr
first, so a stray print cannot corrupt it):
  in   {"op": "owner", "owner": O, "items": [[address, port, check], ...]}  watch exactly these
       {"op": "failed", "key": [address, port], "reason": R}               a passive failure
       {"op": "flush", "seq": N}                                            answer when applied
  out  {"op": "verdict", "key": [address, port], "up": B, "reason": R, "counters": {..}}
                                                       on every transition, counters as of it
       {"op": "counters", "probes": .., "failures": .., "ejections": .., "transitions": ..}
       {"op": "flushed", "seq": N}
EOF on stdin (the daemon closed it, or exited, even by SIGKILL) cancels every probe and ends
the process; SIGINT, SIGTERM and SIGHUP are ignored, so a signal to the whole process group
(Ctrl-C, systemd's stop) reaches the daemon, which then stops its checker in order instead of
seeing it die and starting another.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

from lbctl.logs import setup as setup_logging

from .child import Sender, serve_child
from .health import HealthChecker
from .model import HealthCheckConfig
from .workers import run_on_loop

log = logging.getLogger(__name__)
COUNTERS_SECONDS = 1.0


class Checker:
    """Applies the daemon's messages to a `HealthChecker` and reports what it decides."""

    def __init__(self, send: Sender) -> None:
        self.send = send
        self.health = HealthChecker(self._verdict)
        self._checks: dict[tuple[tuple[str, Any], ...], HealthCheckConfig] = {}

    def _verdict(self, key: tuple[str, int], up: bool, reason: str) -> None:
        self.send({"op": "verdict", "key": [key[0], key[1]], "up": up, "reason": reason,
                   "counters": self.counters()})

    def counters(self) -> dict[str, int]:
        return {"probes": self.health.probes_total,
                "failures": self.health.probe_failures_total,
                "ejections": self.health.ejections_total,
                "transitions": self.health.transitions_total}

    def _check(self, doc: dict[str, Any]) -> HealthCheckConfig:
        """Checks repeat across thousands of targets: parse each distinct one once."""
        key = tuple(sorted(doc.items()))  # a check's values are scalars: hashable as they are
        check = self._checks.get(key)
        if check is None:
            check = self._checks[key] = HealthCheckConfig.model_validate(doc)
        return check

    async def handle(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "owner":
            self.health.set_owner_targets(str(message["owner"]), [
                ((str(a), int(p)), self._check(check)) for a, p, check in message["items"]])
        elif op == "failed":
            key = message["key"]
            self.health.report_failure((str(key[0]), int(key[1])), str(message["reason"]))
        elif op == "flush":
            self.send({"op": "flushed", "seq": message["seq"]})

    async def report(self) -> None:
        while True:
            await asyncio.sleep(COUNTERS_SECONDS)
            self.send({"op": "counters", **self.counters()})

    async def close(self) -> None:
        await self.health.close()


async def _main() -> None:
    await serve_child(Checker, stop_on_sigterm=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="lbctl.balancer.checker")
    parser.add_argument("--log-format", choices=["json", "text"], default="text")
    parser.add_argument("--event-loop", choices=["auto", "uvloop", "asyncio"], default="auto")
    args = parser.parse_args(argv)
    for ignored in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(ignored, signal.SIG_IGN)
    setup_logging(args.log_format)
    run_on_loop(args.event_loop, _main())


if __name__ == "__main__":
    main()
