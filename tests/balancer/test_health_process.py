"""The health checker's process, seen from the daemon (`HealthProcess`): verdicts come back,
passive failures go out, a checker that dies is replaced, stale verdicts never stick.

Targets are loopback ports: one that listens (a plain TCP server), others where nothing does
(refused at once). Waiting is bounded; each "did not happen" is checked after what could have
made it happen has run (a flush, a probe round).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable

import pytest

from lbctl.balancer.health_process import HealthProcess
from lbctl.balancer.model import HealthCheckConfig

pytestmark = pytest.mark.integration
CHECK = HealthCheckConfig.model_validate({"type": "tcp", "intervalSeconds": 0.1,
                                          "timeoutSeconds": 0.5, "healthyThreshold": 1,
                                          "unhealthyThreshold": 1})
DEAD = ("127.0.94.1", 31001)


async def until(check: Callable[[], bool], what: str, seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_verdicts_failures_restarts_and_forgotten_targets() -> None:
    async def run() -> None:
        server = socket.create_server(("127.0.94.2", 0))
        alive = ("127.0.94.2", server.getsockname()[1])
        changes: list[tuple[tuple[str, int], bool, str]] = []
        health = HealthProcess(lambda key, up, reason: changes.append((key, up, reason)))
        try:
            health.set_owner_targets("web/TCP/80", [(alive, CHECK), (DEAD, CHECK)])
            await until(lambda: not health.is_up(DEAD), "the dead target's verdict")
            assert health.is_up(alive)
            assert "refused" in health.reason(DEAD)
            assert changes[0][:2] == (DEAD, False)
            assert health.verdicts() == {DEAD: False}
            assert health.probes_total > 0 and health.transitions_total == 1

            # a passive failure goes through the checker and comes back as a verdict
            health.report_failure(alive, "connection reset by the proxy")
            await until(lambda: (alive, False, "ejected: connection reset by the proxy")
                        in changes, "the ejection")
            await until(lambda: changes[-1][:2] == (alive, True), "recovery after a probe")
            assert health.is_up(alive) and health.reason(alive) == "1 check passed"
            assert health.ejections_total == 1

            # the checker dies: what it held down goes back up, a new one takes it down again
            proc = health._proc
            assert proc is not None
            os.kill(proc.pid, signal.SIGKILL)
            await until(lambda: health.is_up(DEAD), "the restart's all-clear")
            assert (DEAD, True, "health checker restarted: probing again") in changes
            await until(lambda: health.restarts == 1 and not health.is_up(DEAD),
                        "the new checker's verdict", 20)
            assert health._proc is not None and health._proc.pid != proc.pid

            # a target no owner watches is forgotten: back later, it starts afresh (up)
            health.set_owner_targets("web/TCP/80", [(alive, CHECK)])
            await health.flush()
            assert health.is_up(DEAD) and health.reason(DEAD) == ""
            health.report_failure(DEAD, "nobody watches it")  # ignored: not watched
            await health.flush()
            assert health.is_up(DEAD)
        finally:
            await health.close()
            server.close()
        assert health._proc is None or health._proc.returncode is not None

    asyncio.run(run())
