"""Which prefixes this host announces to which peer: a pure function of what it serves.

Why pure: the speaker (ExaBGP) and the event loop are hard to test; the decision is not, and it
is where the promises live. A VIP is announced only while this host can serve it: some balancer
with that VIP has a listener with a healthy target (health comes from the checker that already
steers the data plane), the daemon is not draining, and it has been healthy for the hold-down
since it was last withdrawn for health (a withdrawal is immediate; a return waits, so targets
that bounce do not make the routers recompute every second). With an aggregation length the
aggregate is announced while any VIP in it is announceable.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lbctl.bgp_config import AdvertisementConfig, BgpConfig, PeerConfig, community

from .model import BalancerConfig


@dataclass(frozen=True, order=True)
class Route:
    """One prefix with the attributes it is announced with to one peer."""

    prefix: str
    communities: tuple[str, ...] = ()
    large_communities: tuple[str, ...] = ()
    local_pref: int | None = None

    def exabgp(self) -> str:
        """The route in ExaBGP's API syntax (after `announce route ` / `withdraw route `)."""
        parts = [self.prefix, "next-hop self"]
        if self.local_pref is not None:
            parts.append(f"local-preference {self.local_pref}")
        if self.communities:
            parts.append(f"community [{' '.join(self.communities)}]")
        if self.large_communities:
            parts.append(f"large-community [{' '.join(self.large_communities)}]")
        return " ".join(parts)


@dataclass(frozen=True)
class VipState:
    announced: bool
    reason: str
    peers: tuple[str, ...] = ()


@dataclass
class HoldDown:
    """Per VIP: when it was last withdrawn for health, and since when it is healthy again."""

    seconds: float
    withdrawn_at: dict[str, float] = field(default_factory=dict)
    healthy_since: dict[str, float] = field(default_factory=dict)

    def allows(self, vip: str, healthy: bool, now: float) -> tuple[bool, str]:
        if not healthy:
            self.withdrawn_at[vip] = now
            self.healthy_since.pop(vip, None)
            return False, "no healthy target: withdrawn"
        if vip not in self.withdrawn_at:
            return True, "healthy"
        since = self.healthy_since.setdefault(vip, now)
        wait = self.seconds - (now - since)
        if wait > 0:
            return False, f"healthy again: hold-down {wait:.1f}s before it is announced"
        del self.withdrawn_at[vip], self.healthy_since[vip]
        return True, "healthy"

    def forget(self, keep: Iterable[str]) -> None:
        kept = set(keep)
        for table in (self.withdrawn_at, self.healthy_since):
            for vip in [v for v in table if v not in kept]:
                del table[vip]


def servable(balancers: Iterable[BalancerConfig],
             is_up: Callable[[tuple[str, int]], bool]) -> dict[str, bool]:
    """VIP -> whether some balancer with it has a listener with a healthy target."""
    out: dict[str, bool] = {}
    for b in balancers:
        ok = any(is_up((t.address, t.port)) for li in b.listeners for t in li.targets)
        for vip in b.addresses:
            out[vip] = out.get(vip, False) or ok
    return out


def _route(adv: AdvertisementConfig, vip: str, peer: PeerConfig, my_asn: int) -> Route:
    standard: list[str] = []
    large: list[str] = []
    for text in adv.communities:
        kind, value = community(text)
        (large if kind == "large" else standard).append(value)
    ibgp = (peer.my_asn or my_asn) == peer.peer_asn
    return Route(adv.prefix(vip), tuple(standard), tuple(large),
                 adv.local_pref if ibgp else None)


DEFAULT = AdvertisementConfig()


def plan(config: BgpConfig, health: dict[str, bool], hold: HoldDown, now: float, *,
         draining: bool = False, claimed: Callable[[str], bool] = lambda _vip: True,
         ) -> tuple[dict[str, set[Route]], dict[str, VipState]]:
    """(peer key -> routes to announce, VIP -> its state) for VIPs `claimed` by BGP."""
    routes: dict[str, set[Route]] = {p.key: set() for p in config.peers}
    states: dict[str, VipState] = {}
    advertisements = config.advertisements or (DEFAULT,)
    hold.forget(health)
    for vip, healthy in sorted(health.items()):
        if not claimed(vip):
            continue
        ok, reason = hold.allows(vip, healthy, now)
        if draining:
            ok, reason = False, "draining: withdrawn before the listeners close"
        version = ipaddress.ip_address(vip).version
        to: set[str] = set()
        covering = [a for a in advertisements if a.covers(vip)]
        if not covering:
            states[vip] = VipState(False, "no advertisement covers it")
            continue
        for adv in covering:
            for peer in config.peers:
                if peer.version != version or (
                        adv.peers and peer.key not in adv.peers
                        and peer.peer_address not in adv.peers):
                    continue
                to.add(peer.key)
                if ok:
                    routes[peer.key].add(_route(adv, vip, peer, config.my_asn))
        if not to:
            states[vip] = VipState(False, f"no IPv{version} peer to announce it to")
        else:
            states[vip] = VipState(ok, reason, tuple(sorted(to)) if ok else ())
    return routes, states


def claimed_by(config: BgpConfig | None) -> Callable[[str], bool]:
    """Whether BGP announces `vip` (else L2 may): covered by an advertisement."""
    if config is None:
        return lambda _vip: False
    advertisements = config.advertisements or (DEFAULT,)
    return lambda vip: any(a.covers(vip) for a in advertisements)
