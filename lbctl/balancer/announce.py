"""The daemon's L2 side: which VIPs this instance announces, bound, and what it reports.

Why a module between the daemon and `l2`: the announcer knows frames and ownership; the daemon
knows balancers. This glue gives the announcer every VIP the instance serves after each apply,
binds a VIP on `lo` while (and only while) this instance owns it (userspace sockets need the
address to be local; the kernel data plane does not mind), turns conflicts into problems on the
balancers that use the VIP (-> the provider's degraded reason -> the Service's
`LoadBalancerDegraded` condition and a Warning event), and exposes counters for metrics.
`ip` calls run on one worker thread, in order, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .l2 import L2Announcer
from .lo_vips import bind_vip, clean_stale_vips, prepare_interface
from .membership import Membership
from .model import BalancerConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class L2Options:
    interface: str
    instance: str
    listen: tuple[str, int]
    peers: tuple[tuple[str, str, int], ...] = ()
    interval: float = 0.2
    dead_after: float = 0.8
    refresh_seconds: float = 10.0
    conflict_quiet: float = 30.0
    bind: bool = True
    """Bind owned VIPs on lo (needed by the userspace data plane)."""


@dataclass
class Announcements:
    """L2 for one daemon; `start` after the first apply, `update` after each one."""

    options: L2Options
    key: bytes
    membership: Membership | None = None
    announcer: L2Announcer | None = None
    conflicts: dict[str, str] = field(default_factory=dict)
    skip: Callable[[str], bool] = lambda _vip: False
    """VIPs another announcer (BGP) carries: L2 leaves them alone."""
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="lbctl-vip"))

    async def start(self, balancers: list[BalancerConfig]) -> None:
        o = self.options
        loop = asyncio.get_running_loop()
        removed = await loop.run_in_executor(self._pool, clean_stale_vips)
        if removed:
            log.warning("removed VIPs a previous run left bound on lo: %s", ", ".join(removed))
        await loop.run_in_executor(self._pool, prepare_interface, o.interface)
        self.membership = Membership(o.instance, o.listen, o.peers, o.interval, o.dead_after,
                                     key=self.key, healthy=False)
        self.announcer = L2Announcer(o.interface, self.membership,
                                     on_conflict=self._conflict, on_ownership=self._ownership,
                                     refresh_seconds=o.refresh_seconds,
                                     conflict_quiet=o.conflict_quiet)
        self.update(balancers)
        await self.announcer.start()
        self.membership.set_healthy(True)
        log.info("L2 announcements on %s as %s (peers: %s)", o.interface, o.instance,
                 ", ".join(p[0] for p in o.peers) or "none")

    def update(self, balancers: list[BalancerConfig]) -> None:
        if self.announcer is not None:
            self.announcer.set_vips({vip for b in balancers for vip in b.addresses
                                     if not self.skip(vip)})

    def _ownership(self, vip: str, owned: bool) -> None:
        log.info("VIP %s %s", vip, "owned: announcing" if owned else "released")
        if self.options.bind:
            asyncio.get_running_loop().run_in_executor(self._pool, bind_vip, vip, owned)
        if owned:
            self.conflicts.pop(vip, None)

    def _conflict(self, vip: str, mac: str) -> None:
        log.warning("VIP %s is claimed by another MAC %s: withdrawn", vip, mac)
        self.conflicts[vip] = mac

    def problems(self, balancer: BalancerConfig) -> list[str]:
        """Conflicts on this balancer's VIPs, in words (for its status)."""
        current = self.announcer.conflicts() if self.announcer is not None else {}
        return [f"VIP {vip} is claimed by another host (MAC {current[vip]}): not announced"
                for vip in balancer.addresses if vip in current]

    def owned(self) -> set[str]:
        return self.announcer.owned() if self.announcer is not None else set()

    async def stop(self) -> None:
        if self.announcer is not None:
            await self.announcer.stop()  # unbinds every VIP, says "leaving", stops membership
        self._pool.shutdown(wait=True)
