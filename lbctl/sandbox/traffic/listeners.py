"""The open sockets, kept equal to what the newest plan asks for.

`apply` closes every listener the plan dropped (or now wants for something else: a different pod
on the same ip:port) before opening the new ones, so a port freed by one Service can be taken by
another in the same pass. A bind that fails (the address is taken by something outside the
sandbox, or no descriptors left) is logged once per pass with a count and retried a few seconds
later, never fatal. At most half the process's descriptor limit goes to listeners, so that
accepting connections and talking to the API keep working whatever the cluster asks for.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Mapping
from typing import Protocol

from .healthcheck import HealthCheck, ProxyHealth
from .plan import (
    HealthListener,
    Listener,
    ListenerKey,
    NodePortListener,
    Plan,
    PodListener,
    ProxyHealthListener,
)
from .pods import PodHttp, PodUdp
from .router import Router
from .tcp_proxy import TcpNodePort
from .udp_proxy import UdpNodePort

log = logging.getLogger(__name__)


class Handle(Protocol):
    async def close(self) -> None: ...


def socket_budget() -> int:
    """Half the descriptors this process may open: the rest stay for connections and the API."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(64, soft // 2) if soft != resource.RLIM_INFINITY else 100_000


class Listeners:
    def __init__(self, router: Router, *, udp_idle_timeout: float = 30.0,
                 budget: int | None = None, retry_after: float = 5.0) -> None:
        self.router = router
        self.udp_idle_timeout = udp_idle_timeout
        self.budget = budget if budget is not None else socket_budget()
        self.retry_after = retry_after
        self.open: dict[ListenerKey, tuple[Listener, Handle]] = {}
        self.failed: dict[ListenerKey, tuple[str, float]] = {}
        """Binds that failed: the error and when to try again."""
        self._over_budget = 0

    async def apply(self, plan: Plan) -> tuple[int, int]:
        """Make the open set match the plan and give the router its routes; returns (opened,
        closed). In the order a real node keeps: a pod listens before any route leads to it
        (as a Ready pod does), and stops only once no route leads there any more; the proxies
        and health checks, which consult the router, open after its swap. A socket whose
        address now belongs to another listener closes first, to be bound again."""
        wanted = plan.listeners
        stale = [k for k, (spec, _) in self.open.items() if wanted.get(k) != spec]
        rebound = [self.open.pop(key)[1] for key in stale if key in wanted]
        await asyncio.gather(*(h.close() for h in rebound))
        self.failed = {k: v for k, v in self.failed.items() if k in wanted}
        pods = {k: v for k, v in wanted.items() if isinstance(v, PodListener)}
        news: list[str] = []
        opened, over = await self._open(pods, news)
        self.router.update(plan)
        gone = [self.open.pop(key)[1] for key in stale if key not in wanted]
        await asyncio.gather(*(h.close() for h in gone))
        more, more_over = await self._open({k: v for k, v in wanted.items() if k not in pods},
                                           news)
        opened, over = opened + more, over + more_over
        if news:
            log.warning("cannot listen on %d socket(s), retrying every %.0fs; first: %s",
                        len(news), self.retry_after, news[0])
        if over != self._over_budget and over:
            log.warning("%d socket(s) not opened: over this process's budget of %d", over,
                        self.budget)
        self._over_budget = over
        return opened, len(stale)

    async def _open(self, wanted: Mapping[ListenerKey, Listener], news: list[str]
                    ) -> tuple[int, int]:
        """Open what `wanted` holds and is not open yet, within the budget: (opened, left
        out over the budget); a bind error not seen before for its key goes to `news`."""
        now = time.monotonic()
        opened, over = 0, 0
        for key, spec in wanted.items():
            if key in self.open:
                continue
            failed = self.failed.get(key)
            if failed is not None and failed[1] > now:
                continue
            if len(self.open) >= self.budget:
                over += 1
                continue
            try:
                handle = await self._start(key, spec)
            except OSError as exc:
                if failed is None or failed[0] != str(exc):
                    news.append(f"{key[0]}:{key[1]}/{key[2]} for {spec}: {exc}")
                self.failed[key] = (str(exc), now + self.retry_after)
                continue
            self.failed.pop(key, None)
            self.open[key] = (spec, handle)
            opened += 1
            log.debug("listening on %s:%d/%s for %s", *key, spec)
        return opened, over

    async def _start(self, key: ListenerKey, spec: Listener) -> Handle:
        address, port, protocol = key
        if isinstance(spec, PodListener):
            if protocol == "UDP":
                return await PodUdp(address, port, spec).start()
            return await PodHttp(address, port, spec).start()
        if isinstance(spec, NodePortListener):
            if protocol == "UDP":
                return await UdpNodePort(address, port, spec, self.router,
                                         idle_timeout=self.udp_idle_timeout).start()
            return await TcpNodePort(address, port, spec, self.router).start()
        if isinstance(spec, ProxyHealthListener):
            return await ProxyHealth(address, port, spec).start()
        assert isinstance(spec, HealthListener)
        return await HealthCheck(address, port, spec, self.router).start()

    async def close_all(self) -> None:
        handles = [h for _, h in self.open.values()]
        self.open.clear()
        await asyncio.gather(*(h.close() for h in handles), return_exceptions=True)
