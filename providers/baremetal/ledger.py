"""Who holds which address, rebuilt from Service status: the provider's only state.

There is no store besides the Services themselves. The ledger merges two sources:

- *granted*: what this process handed out through `ensure` (authoritative for those Services,
  because their status patch may not have reached the cache yet);
- *observed*: the `status.loadBalancer.ingress` IPs of every LoadBalancer Service in the
  ClusterView that fall in a pool, whoever's controller wrote them.

`rebuild` runs on construction and before every allocation, so a restarted controller (or a
new leader) starts from the addresses Services already hold and never hands them to anyone
else: a held IP never moves. Rules:

- Observed holdings are admitted in namespace/name order (later changes in arrival order); an
  address claimed by a Service that may not share it with its current holders is denied to it,
  so duplicates left by other tools are repaired (that Service is re-allocated on its next
  ensure), not propagated. A denied claim is admitted again when the address frees up.
- An observed holding keeps the Service's spec as first seen with those addresses: an edit made
  since is judged when that Service is ensured, against its co-holders as they were granted,
  so it is the edited Service that moves or is told, never the one it shares with.
- An address still in the status of a Service that was granted another one stays held as
  *leaving*: it blocks newcomers until the status moves on, but evicts nobody.
- A Service that leaves the view releases its addresses; `release` (on delete) releases at
  once and ignores the Service's stale status until it is gone. Every address that loses its
  last holder cools down before anyone else may take it.

Rebuilding is incremental: only Services whose type or ingress changed since the previous
rebuild are re-read, so a rebuild costs one comparison per cached Service.
Not thread-safe by itself: the provider holds its lock around every call.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from providers.cluster import Ingress, ServiceView
from providers.spec import BalancerRef

from .addresses import IPAddress, family_of, parse_ip
from .claims import Claimant, claimant_from_view, conflict
from .pools import PoolSet


@dataclass(frozen=True, slots=True)
class Holding:
    """The addresses one Service holds (one per family)."""

    claimant: Claimant
    ips: tuple[IPAddress, ...]
    ref: BalancerRef | None = None
    """Known when this process granted the holding through `ensure`."""
    leaving: bool = False
    """Still in the Service's status, no longer granted: blocks newcomers, evicts nobody."""


@dataclass(frozen=True, slots=True)
class Cooling:
    """An address nobody holds that may not be handed to a new Service before `until`."""

    until: float
    uid: str
    """Its last holder, which may take it back at once."""


def status_ips(service: ServiceView, pools: PoolSet) -> tuple[IPAddress, ...]:
    """The pool addresses `service`'s status says it holds (first per family)."""
    if service.type != "LoadBalancer":
        return ()
    ips: dict[str, IPAddress] = {}
    for ingress in service.ingress:
        ip = parse_ip(ingress.ip) if ingress.ip else None
        if ip is not None and pools.owner(ip) is not None:
            ips.setdefault(family_of(ip), ip)
    return tuple(ips.values())


def admissible(claimant: Claimant, holders: Iterable[Holding]) -> bool:
    """Whether an observed claim may join an address's current holders."""
    return all(conflict(claimant, h.claimant) is None for h in holders
               if h.claimant.uid != claimant.uid)


_Seen = tuple[str, tuple[Ingress, ...], str, Holding | None]  # type, ingress, key, holding


class Ledger:
    """Holdings and cool-downs; read by the allocator, written by the provider."""

    def __init__(self) -> None:
        self._granted: dict[str, Holding] = {}
        self._observed: dict[str, _Seen] = {}
        self._released: set[str] = set()
        self._entries: dict[str, Holding] = {}  # uid, or uid~status for leaving addresses
        self._by_ip: dict[IPAddress, dict[str, Holding]] = {}
        self._denied: dict[IPAddress, set[str]] = {}
        self._cooling: dict[IPAddress, Cooling] = {}
        self._shared: dict[str, dict[IPAddress, int]] = {}  # sharing key -> ip -> holders
        self._now, self._cooldown = 0.0, 0.0

    # -- reads (the allocator's view) ---------------------------------------------------------
    def holding(self, uid: str) -> Holding | None:
        return self._entries.get(uid)

    def holders(self, ip: IPAddress) -> tuple[Holding, ...]:
        return tuple(self._by_ip.get(ip, {}).values())

    def held_ips(self) -> Collection[IPAddress]:
        """Every held address (a set view: membership is O(1))."""
        return self._by_ip.keys()

    def shared_under(self, key: str) -> Iterable[IPAddress]:
        """Addresses with a holder that allows sharing under `key`."""
        return self._shared.get(key, {}).keys()

    def cooling(self, ip: IPAddress, now: float) -> Cooling | None:
        entry = self._cooling.get(ip)
        return entry if entry is not None and entry.until > now else None

    def cooling_ips(self, now: float) -> dict[IPAddress, Cooling]:
        return {ip: c for ip, c in self._cooling.items() if c.until > now}

    def holdings(self) -> tuple[Holding, ...]:
        return tuple(self._entries.values())

    def granted_refs(self) -> tuple[BalancerRef, ...]:
        return tuple(h.ref for h in self._granted.values() if h.ref is not None)

    # -- writes ---------------------------------------------------------------------------------
    def rebuild(self, services: Iterable[ServiceView], pools: PoolSet, now: float,
                cooldown: float) -> None:
        """Bring holdings in line with the cluster's Services (see the module docstring)."""
        self._now, self._cooldown = now, cooldown
        live: set[str] = set()
        changed: list[str] = []
        for service in services:
            uid = service.uid
            live.add(uid)
            seen = self._observed.get(uid)
            if seen is not None and seen[0] == service.type and seen[1] == service.ingress:
                continue
            ips = status_ips(service, pools)
            before = seen[3] if seen is not None else None
            holding = (before if before is not None and before.ips == ips
                       else Holding(claimant_from_view(service), ips) if ips else None)
            self._observed[uid] = (service.type, service.ingress, service.key, holding)
            if holding != before:
                changed.append(uid)
        for uid in (self._observed.keys() | self._granted.keys()) - live:
            self._observed.pop(uid, None)
            self._granted.pop(uid, None)
            changed.append(uid)
        self._released &= live
        self._cooling = {ip: c for ip, c in self._cooling.items() if c.until > now}
        self._refresh(changed)

    def forget_observations(self) -> None:
        """Re-read every Service on the next rebuild (pools changed)."""
        granted = list(self._granted)
        self._observed.clear()
        for key in list(self._entries):
            self._drop(key)
        self._denied.clear()
        self._refresh(granted)

    def assign(self, holding: Holding, now: float, cooldown: float) -> None:
        """`holding` replaces whatever its Service held; dropped addresses cool down."""
        self._now, self._cooldown = now, cooldown
        uid = holding.claimant.uid
        self._granted[uid] = holding
        self._released.discard(uid)
        self._refresh([uid])

    def release(self, uid: str, now: float, cooldown: float) -> tuple[IPAddress, ...]:
        """Forget `uid`'s addresses (idempotent); its status is ignored until it is gone."""
        self._now, self._cooldown = now, cooldown
        held = [*(h.ips for k in (uid, f"{uid}~status") if (h := self._entries.get(k)))]
        self._granted.pop(uid, None)
        self._released.add(uid)
        self._refresh([uid])
        return tuple(dict.fromkeys(ip for ips in held for ip in ips))

    # -- internals ----------------------------------------------------------------------------
    def _name(self, uid: str) -> tuple[str, str]:
        seen = self._observed.get(uid)
        granted = self._granted.get(uid)
        return (seen[2] if seen else granted.claimant.key if granted else "", uid)

    def _refresh(self, uids: Iterable[str]) -> None:
        """Recompute the entries of `uids`, then re-admit claims denied on freed addresses."""
        queue = sorted(set(uids), key=self._name)
        while queue:
            freed = []
            for uid in queue:
                freed += self._drop(uid) + self._drop(f"{uid}~status")
                for denied in self._denied.values():
                    denied.discard(uid)
                self._enter(uid)
            retry = {u for ip in freed if not self._by_ip.get(ip)
                     for u in self._denied.pop(ip, set())}
            queue = sorted(retry, key=self._name)

    def _enter(self, uid: str) -> None:
        granted = self._granted.get(uid)
        seen = self._observed.get(uid)
        observed = seen[3] if seen is not None and uid not in self._released else None
        if granted is not None:
            self._put(uid, granted)
            if observed is not None and (stale := tuple(ip for ip in observed.ips
                                                        if ip not in granted.ips)):
                self._put(f"{uid}~status", Holding(observed.claimant, stale, leaving=True))
            return
        if observed is None:
            return
        kept = []
        for ip in observed.ips:
            if admissible(observed.claimant, self._by_ip.get(ip, {}).values()):
                kept.append(ip)
            else:
                self._denied.setdefault(ip, set()).add(uid)
        if kept:
            self._put(uid, Holding(observed.claimant, tuple(kept)))

    def _put(self, key: str, holding: Holding) -> None:
        self._entries[key] = holding
        sharing = holding.claimant.sharing_key
        for ip in holding.ips:
            self._by_ip.setdefault(ip, {})[key] = holding
            self._cooling.pop(ip, None)
            if sharing:
                counts = self._shared.setdefault(sharing, {})
                counts[ip] = counts.get(ip, 0) + 1

    def _drop(self, key: str) -> list[IPAddress]:
        """Remove an entry; the addresses it was the last holder of start cooling down."""
        holding = self._entries.pop(key, None)
        if holding is None:
            return []
        freed = []
        sharing = holding.claimant.sharing_key
        for ip in holding.ips:
            if sharing:
                counts = self._shared[sharing]
                counts[ip] -= 1
                if not counts[ip]:
                    del counts[ip]
            holders = self._by_ip.get(ip, {})
            holders.pop(key, None)
            if not holders:
                self._by_ip.pop(ip, None)
                freed.append(ip)
                if self._cooldown > 0:
                    self._cooling[ip] = Cooling(self._now + self._cooldown,
                                                holding.claimant.uid)
        return freed
