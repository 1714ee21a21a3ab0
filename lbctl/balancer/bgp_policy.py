"""Which prefixes this host announces to which peer: a pure function of what it serves.

Why pure: the speaker (ExaBGP) and the event loop are hard to test; the decision is not, and it
is where the promises live. A VIP is announced only while this host can serve it: some balancer
with that VIP has a listener with a healthy target (health comes from the checker that already
steers the data plane), the daemon is not draining, and it has been healthy for the hold-down
since it was last withdrawn for health (a withdrawal is immediate; a return waits, so targets
that bounce do not make the routers recompute every second). With an aggregation length the
aggregate is announced while any VIP in it is announceable.

Why a `Planner` with a cache: what a VIP is announced as (its prefix, communities, peers) depends
on the config only, and working it out (address parsing, community names, covering ranges) costs
some 70 us a VIP: at 10,000 VIPs that was 0.7 s of a blocked event loop on every batch of health
verdicts, and 4 times a second during a hold-down. Worked out once per VIP and config, a plan
is a dictionary walk (about 15 ms at 10,000 VIPs). `TargetIndex` does the same for `servable`:
the (VIPs, target keys) of each balancer, flattened once per apply, not walked through the
models on every verdict batch.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    first_seen: dict[str, float] = field(default_factory=dict)

    def allows(self, vip: str, healthy: bool, now: float, settle: float = 0.0
               ) -> tuple[bool, str]:
        """`settle`: how long a new VIP's targets take to fail their checks if they are dead
        (targets count as up until checked): a VIP is first announced only after it, so a
        host that starts, or a Service that is new, never draws traffic to dead targets."""
        first = self.first_seen.setdefault(vip, now)
        if not healthy:
            self.withdrawn_at[vip] = now
            self.healthy_since.pop(vip, None)
            return False, "no healthy target: withdrawn"
        if vip not in self.withdrawn_at:
            wait = settle - (now - first)
            if wait > 0:
                return False, (f"new: its targets' first checks, {wait:.1f}s before it is "
                               f"announced")
            return True, "healthy"
        since = self.healthy_since.setdefault(vip, now)
        wait = self.seconds - (now - since)
        if wait > 0:
            return False, f"healthy again: hold-down {wait:.1f}s before it is announced"
        del self.withdrawn_at[vip], self.healthy_since[vip]
        return True, "healthy"

    def forget(self, keep: Iterable[str], now: float | None = None) -> None:
        """Drop what is known of VIPs not in `keep`; with `now`, a VIP withdrawn for health
        less than the hold-down ago is remembered (its count since healthy starts again): one
        that vanishes from the config and comes back must not skip its hold-down."""
        kept = set(keep)
        for table in (self.healthy_since, self.first_seen):
            for vip in [v for v in table if v not in kept]:
                del table[vip]
        for vip, at in list(self.withdrawn_at.items()):
            if vip not in kept and (now is None or now - at >= self.seconds):
                del self.withdrawn_at[vip]


TargetIndex = Sequence[tuple[tuple[str, ...], tuple[tuple[str, int], ...]]]
"""Per balancer: (its VIPs, its listeners' target keys)."""


def target_index(balancers: Iterable[BalancerConfig]) -> TargetIndex:
    return [(b.addresses, tuple((t.address, t.port) for li in b.listeners for t in li.targets))
            for b in balancers]


def settle_times(balancers: Iterable[BalancerConfig]) -> dict[str, float]:
    """VIP -> how long its targets' active checks take to find a dead one (interval x
    unhealthyThreshold + timeout, the slowest listener's); 0 for listeners not checked."""
    out: dict[str, float] = {}
    for b in balancers:
        slowest = max((li.health_check.interval_seconds * li.health_check.unhealthy_threshold
                       + li.health_check.timeout_seconds for li in b.listeners
                       if li.health_check.type != "none"), default=0.0)
        for vip in b.addresses:
            out[vip] = max(out.get(vip, 0.0), slowest)
    return out


def servable(balancers: Iterable[BalancerConfig],
             is_up: Callable[[tuple[str, int]], bool]) -> dict[str, bool]:
    """VIP -> whether some balancer with it has a listener with a healthy target."""
    return servable_in(target_index(balancers), is_up)


def servable_in(index: TargetIndex, is_up: Callable[[tuple[str, int]], bool]
                ) -> dict[str, bool]:
    """`servable` from the balancers' `target_index`."""
    out: dict[str, bool] = {}
    for vips, keys in index:
        ok = any(is_up(key) for key in keys)
        for vip in vips:
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


@dataclass(frozen=True)
class _Vip:
    """What a VIP is announced as under one config, worked out once."""

    routes: tuple[tuple[str, Route], ...] = ()
    """(peer key, route) for each peer it goes to."""
    peers: tuple[str, ...] = ()
    missing: str = ""
    """Why it can go to no peer ("" when it can)."""


class Planner:
    """`plan` for one config, with each VIP's routes cached (see the module's docstring)."""

    def __init__(self, config: BgpConfig,
                 claimed: Callable[[str], bool] | None = None) -> None:
        self.config = config
        self.claimed = claimed or claimed_by(config)
        self._vips: dict[str, _Vip | None] = {}

    def _vip(self, vip: str) -> _Vip | None:
        if not self.claimed(vip):
            return None
        config = self.config
        version = ipaddress.ip_address(vip).version
        covering = [a for a in config.advertisements or (DEFAULT,) if a.covers(vip)]
        if not covering:
            return _Vip(missing="no advertisement covers it")
        routes: dict[tuple[str, Route], None] = {}
        for adv in covering:
            for peer in config.peers:
                if peer.version != version or (
                        adv.peers and peer.key not in adv.peers
                        and peer.peer_address not in adv.peers):
                    continue
                routes[(peer.key, _route(adv, vip, peer, config.my_asn))] = None
        to = tuple(sorted({key for key, _ in routes}))
        if not to:
            return _Vip(missing=f"no IPv{version} peer to announce it to")
        return _Vip(tuple(routes), to)

    def plan(self, health: dict[str, bool], hold: HoldDown, now: float, *,
             draining: bool = False, settle: Mapping[str, float] | None = None,
             ) -> tuple[dict[str, set[Route]], dict[str, VipState]]:
        """(peer key -> routes to announce, VIP -> its state) for VIPs claimed by BGP."""
        routes: dict[str, set[Route]] = {p.key: set() for p in self.config.peers}
        states: dict[str, VipState] = {}
        hold.forget(health, now)
        if len(self._vips) > 2 * len(health) + 1024:  # VIPs long gone: not kept forever
            self._vips = {v: info for v, info in self._vips.items() if v in health}
        for vip, healthy in sorted(health.items()):
            if vip in self._vips:
                info = self._vips[vip]
            else:
                info = self._vips[vip] = self._vip(vip)
            if info is None:
                continue
            ok, reason = hold.allows(vip, healthy, now, (settle or {}).get(vip, 0.0))
            if draining:
                ok, reason = False, "draining: withdrawn before the listeners close"
            if info.missing:
                states[vip] = VipState(False, info.missing)
                continue
            if ok:
                for key, route in info.routes:
                    routes[key].add(route)
            states[vip] = VipState(ok, reason, info.peers if ok else ())
        return routes, states


def plan(config: BgpConfig, health: dict[str, bool], hold: HoldDown, now: float, *,
         draining: bool = False, claimed: Callable[[str], bool] = lambda _vip: True,
         settle: Mapping[str, float] | None = None,
         ) -> tuple[dict[str, set[Route]], dict[str, VipState]]:
    """(peer key -> routes to announce, VIP -> its state) for VIPs `claimed` by BGP."""
    return Planner(config, claimed).plan(health, hold, now, draining=draining, settle=settle)


def claimed_by(config: BgpConfig | None) -> Callable[[str], bool]:
    """Whether BGP announces `vip` (else L2 may): covered by an advertisement."""
    if config is None:
        return lambda _vip: False
    advertisements = config.advertisements or (DEFAULT,)
    return lambda vip: any(a.covers(vip) for a in advertisements)


# -- ExaBGP's API commands --------------------------------------------------------------------
MAX_NLRI = 500
"""Prefixes per API line: ExaBGP drops a command over 1 MiB (`MAX_COMMAND_SIZE`), and a
shorter line keeps each of its parsing steps short."""


def peer_commands(address: str, have: dict[str, Route], desired: dict[str, Route]) -> list[str]:
    """What turns `have` into `desired` for one peer: withdrawals, then announcements."""
    gone = [p for p in have if p not in desired]
    return [f"neighbor {address} withdraw attributes next-hop self nlri {' '.join(chunk)}"
            for chunk in chunks(gone)] + grouped(
        address, [r for p, r in desired.items() if have.get(p) != r])


def grouped(address: str, routes: list[Route]) -> list[str]:
    """One `announce attributes ... nlri P1 P2 ...` per attribute set (ExaBGP's batch form)
    and `MAX_NLRI` prefixes."""
    groups: dict[str, list[str]] = {}
    for r in routes:
        attributes = Route("", r.communities, r.large_communities, r.local_pref).exabgp()
        groups.setdefault(attributes.strip(), []).append(r.prefix)
    return [f"neighbor {address} announce attributes {attrs} nlri {' '.join(chunk)}"
            for attrs, prefixes in groups.items() for chunk in chunks(prefixes)]


def chunks(prefixes: list[str]) -> list[list[str]]:
    return [prefixes[i:i + MAX_NLRI] for i in range(0, len(prefixes), MAX_NLRI)]
