"""The hand-made TCP probe and the probes' limit: every outcome a probe can have (connected,
refused, timed out, cancelled) leaves no socket or callback behind, and the limit hands slots
over in order even to waiters that were cancelled."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from pathlib import Path

import pytest

from lbctl.balancer.probes import TIMED_OUT, Limit, describe_errno, tcp


def _fds() -> int:
    return sum(1 for _ in Path(f"/proc/{os.getpid()}/fd").iterdir())


def test_connected_refused_timed_out_and_cancelled_leave_nothing_behind() -> None:
    async def main() -> None:
        listener = socket.create_server(("127.0.103.40", 0))
        port = listener.getsockname()[1]
        with socket.socket() as s:
            s.bind(("127.0.103.40", 0))
            closed_port = s.getsockname()[1]
        before = _fds()
        assert await tcp("127.0.103.40", port, 1.0) == 0
        assert await tcp("127.0.103.40", closed_port, 1.0) == errno.ECONNREFUSED
        assert describe_errno(errno.ECONNREFUSED) == "refused"
        # a full backlog never answers the SYN: the probe times out
        blackhole = socket.socket()
        blackhole.bind(("127.0.103.41", 0))
        blackhole.listen(0)
        fillers = []
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(blackhole.getsockname())
            fillers.append(filler)
        await asyncio.sleep(0.1)
        host, full = blackhole.getsockname()[:2]
        results = await asyncio.gather(*(tcp(host, full, 0.3) for _ in range(4)))
        assert TIMED_OUT in results
        pending = tcp(host, full, 5.0)
        pending.cancel()
        await asyncio.sleep(0)
        for f in fillers:
            f.close()
        blackhole.close()
        listener.close()
        assert _fds() <= before - 1  # the listener went; every probe socket too

    asyncio.run(main())


def test_limit_is_fair_and_survives_cancelled_waiters() -> None:
    async def main() -> None:
        limit = Limit(2)
        order: list[int] = []
        release = asyncio.Event()

        async def user(i: int) -> None:
            async with limit:
                order.append(i)
                await release.wait()

        tasks = [asyncio.create_task(user(i)) for i in range(5)]
        await asyncio.sleep(0.01)
        assert order == [0, 1] and limit.free == 0
        tasks[2].cancel()  # a waiter leaves before its turn
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert order == [0, 1, 3, 4]
        assert limit.free == 2  # every slot came back

    asyncio.run(main())


@pytest.mark.parametrize("family_address", ["::1"])
def test_ipv6_targets(family_address: str) -> None:
    async def main() -> None:
        listener = socket.create_server((family_address, 0), family=socket.AF_INET6)
        assert await tcp(family_address, listener.getsockname()[1], 1.0) == 0
        listener.close()

    asyncio.run(main())
