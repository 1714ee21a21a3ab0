"""Which addresses a Service gets: a pure decision over the pools and the ledger.

`allocate(request, pools, ledger, now)` reads, never writes; the provider applies the `Grant`.
In order:

1. Requested addresses (`spec.loadBalancerIP`, `metallb.io/loadBalancerIPs`, ...) must lie in a
   pool that may serve the Service (else PermanentError naming the field that asked), and may be
   shared only under MetalLB's rules. A requested address in cool-down is granted: cool-down
   keeps addresses from being handed out *automatically*.
2. Addresses the Service already holds are kept, family by family, unless the Service now asks
   otherwise (other address, other pool, family dropped) or its sharing key no longer matches
   the Services it shares them with (it asked to share differently, so it moves). A port or
   traffic-policy collision with those Services is a PermanentError naming the field: the
   Service keeps serving on its address rather than moving under its clients' feet.
3. Missing families come from the named pool, else from the pools already used by the Service,
   then the candidates by priority (see `pools`). Within a pool: an address already shared
   under the same key (if compatible), then one this Service released and is cooling down, then
   the lowest free address not cooling down (avoidBuggyIPs skips .0 and .255).

Exhaustion raises TransientError `no available IPs in pool(s) "a", "b" for IPv4` (pools can
grow; the controller reports AllocationFailed). PreferDualStack is content with one family.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from providers.errors import PermanentError, TransientError

from .addresses import IPAddress, confuses_buggy_firmware, family_of
from .claims import Claimant, Request, RequestedIP, conflict
from .ledger import Cooling, Holding
from .pools import Pool, PoolSet


class LedgerView(Protocol):
    """What the allocator reads of the ledger."""

    def holding(self, uid: str) -> Holding | None: ...
    def holders(self, ip: IPAddress) -> tuple[Holding, ...]: ...
    def held_ips(self) -> Collection[IPAddress]: ...
    def shared_under(self, key: str) -> Iterable[IPAddress]: ...
    def cooling_ips(self, now: float) -> Mapping[IPAddress, Cooling]: ...


@dataclass(frozen=True, slots=True)
class Grant:
    """The addresses a Service should hold, in the order of its ipFamilies."""

    ips: tuple[IPAddress, ...]
    pools: tuple[str, ...]
    """The pool of each address."""
    notes: tuple[str, ...] = ()
    """Serving, but not as asked (reported as `degraded`)."""


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _named_pool(request: Request, pools: PoolSet) -> Pool | None:
    if request.pool is None:
        return None
    pool = pools.named(request.pool)
    if pool is None:
        raise PermanentError(request.pool_field, f'no pool named "{request.pool}" '
                                                 f"(pools: {_quoted(pools.names) or 'none'})")
    return pool


def _refuse(pool: Pool, claimant: Claimant, field: str, subject: str) -> None:
    why = pool.refuses(claimant, explicit=True)
    if why is None:
        return
    if pool.frozen:
        raise TransientError(f'{field}: {subject}pool "{pool.name}", which {why}; nothing new '
                             "is allocated from it until the config is fixed")
    raise PermanentError(field, f'{subject}pool "{pool.name}", which {why}')


def check_request(request: Request, pools: PoolSet,
                  held: frozenset[IPAddress] = frozenset()) -> dict[str, tuple[RequestedIP, Pool]]:
    """The static checks (also `validate`): the named pool and each requested address, by
    family. Addresses in `held` skip the pool's eligibility rules: a held IP never moves."""
    claimant = request.claimant
    named = _named_pool(request, pools)
    if named is not None and not (held and all(named.contains(ip) for ip in held)):
        _refuse(named, claimant, request.pool_field, "")
    chosen: dict[str, tuple[RequestedIP, Pool]] = {}
    for want in request.requested:
        family = family_of(want.ip)
        if family not in request.families:
            raise PermanentError(want.field, f"{want.ip} is {family}, but the Service's "
                                             f"ipFamilies are [{', '.join(request.families)}]")
        if family in chosen:
            raise PermanentError(want.field, f"{want.ip} is a second {family} address "
                                             f"({chosen[family][0].ip} is requested too); one "
                                             "address per IP family")
        pool = pools.owner(want.ip)
        if pool is None:
            buggy = [p.name for p in (*pools.active, *pools.frozen)
                     if p.excludes_as_buggy(want.ip)]
            if buggy:
                raise PermanentError(want.field, f'{want.ip} is excluded by pool "{buggy[0]}" '
                                                 "(avoidBuggyIPs: no address ending in .0 or "
                                                 ".255)")
            raise PermanentError(want.field, f"{want.ip} is not in any address pool (pools: "
                                             f"{_quoted(pools.names) or 'none'})")
        if named is not None and pool.name != named.name:
            raise PermanentError(want.field, f'{want.ip} is in pool "{pool.name}", but '
                                             f'{request.pool_annotation} asks for '
                                             f'"{named.name}"')
        if want.ip not in held:
            _refuse(pool, claimant, want.field, f"{want.ip} is in ")
        chosen[family] = (want, pool)
    return chosen


def _conflict_with_others(claimant: Claimant, ip: IPAddress, ledger: LedgerView, *,
                          joining: bool) -> tuple[str, str, str] | None:
    """(kind, field, message) of the first other holder of `ip` that `claimant` may not hold
    it with. Holders leaving `ip` only count against a Service `joining` it."""
    for holding in ledger.holders(ip):
        if holding.claimant.uid == claimant.uid or (holding.leaving and not joining):
            continue
        found = conflict(claimant, holding.claimant)
        if found is not None:
            return (found.kind, *found.describe(claimant, ip))
    return None


def _free_address(pool: Pool, family: str, claimant: Claimant, ledger: LedgerView,
                  cooling: Mapping[IPAddress, Cooling]) -> IPAddress | None:
    version = 4 if family == "IPv4" else 6
    if claimant.sharing_key:
        for ip in sorted(ip for ip in ledger.shared_under(claimant.sharing_key)
                         if ip.version == version and pool.contains(ip)):
            others = [h for h in ledger.holders(ip) if h.claimant.uid != claimant.uid]
            if others and all(conflict(claimant, h.claimant) is None for h in others):
                return ip
    own = min((ip for ip, c in cooling.items() if c.uid == claimant.uid
               and ip.version == version and pool.contains(ip)), default=None)
    if own is not None:
        return own
    held = ledger.held_ips()
    for rng in pool.ranges_of(family):
        for ip in rng.addresses():
            if (ip in cooling or ip in held
                    or (pool.avoid_buggy_ips and confuses_buggy_firmware(ip))):
                continue
            return ip
    return None


def _kept(request: Request, pools: PoolSet, ledger: LedgerView, named: Pool | None,
          picked: dict[str, tuple[IPAddress, Pool]]) -> None:
    """Add the addresses the Service already holds and may keep (rule 2) to `picked`."""
    held = ledger.holding(request.claimant.uid)
    for ip in held.ips if held is not None else ():
        family = family_of(ip)
        pool = pools.owner(ip)
        if (family not in request.families or family in picked or pool is None
                or (named is not None and pool.name != named.name)):
            continue
        found = _conflict_with_others(request.claimant, ip, ledger, joining=False)
        if found is not None:
            kind, field, message = found
            if kind == "key":
                continue
            raise PermanentError(field, message)
        picked[family] = (ip, pool)


def _shortage(request: Request, pools: PoolSet, order: list[Pool], family: str,
              served: bool) -> str:
    """The note when PreferDualStack can do without `family`; else raise why it cannot."""
    tried = [p.name for p in order if family in p.families]
    if not order:
        refusals = "; ".join(pools.refusals(request.claimant))
        raise TransientError(f"no address pool may serve {request.claimant.key}: {refusals}"
                             if refusals else "no address pools are configured "
                                              "(baremetal.pools)")
    if served and not request.require_all_families:
        return (f"PreferDualStack: no {family} address available (pools tried: "
                f"{_quoted(tried) or 'none has ' + family})")
    if not tried:
        raise PermanentError("spec.ipFamilies", f"no address pool that may serve this Service "
                                                f"has {family} addresses (pools: "
                                                f"{_quoted(p.name for p in order)})")
    raise TransientError(f"no available IPs in pool(s) {_quoted(tried)} for {family}")


def allocate(request: Request, pools: PoolSet, ledger: LedgerView, now: float) -> Grant:
    """The addresses `request`'s Service should hold now (see the module docstring)."""
    claimant = request.claimant
    held = ledger.holding(claimant.uid)
    chosen = check_request(request, pools, frozenset(held.ips) if held else frozenset())
    named = _named_pool(request, pools)
    picked: dict[str, tuple[IPAddress, Pool]] = {}
    for family, (want, pool) in chosen.items():
        found = _conflict_with_others(claimant, want.ip, ledger,
                                      joining=held is None or want.ip not in held.ips)
        if found is not None:
            kind, field, message = found
            raise PermanentError(want.field if kind == "key" else field, message)
        picked[family] = (want.ip, pool)
    _kept(request, pools, ledger, named, picked)
    notes = [f'{ip} is in pool "{pool.name}", which has configuration problems'
             for ip, pool in picked.values() if pool.frozen]
    missing = [f for f in request.families if f not in picked]
    if missing:
        order = [named] if named is not None else list(pools.candidates(claimant))
        used = [p for _, p in picked.values() if p.refuses(claimant, explicit=True) is None]
        order = list(dict.fromkeys([*used, *order]))
        cooling = ledger.cooling_ips(now)
        for family in missing:
            for pool in order:
                ip = _free_address(pool, family, claimant, ledger, cooling)
                if ip is not None:
                    picked[family] = (ip, pool)
                    break
        for family in (f for f in missing if f not in picked):
            notes.append(_shortage(request, pools, order, family, bool(picked)))
    families = [f for f in request.families if f in picked]
    return Grant(tuple(picked[f][0] for f in families), tuple(picked[f][1].name for f in families),
                 tuple(notes))
