"""Address pools and which of them may serve a Service, in which order.

A pool is MetalLB's `IPAddressPool`: address ranges, `autoAssign`, `avoidBuggyIPs` and an optional
`serviceAllocation` (priority, namespaces, namespace and service selectors). The order in which
pools are tried follows MetalLB: pools whose `serviceAllocation` restricts them to this Service
first, then the others; within each group a lower positive `priority` first and an unset (0)
priority last; then the order of the config (MetalLB's order there is a map's, i.e. random).

Unlike MetalLB, a pool with configuration problems does not stop the others: it is kept
*frozen*: the Services already holding its addresses keep them, and nothing new is allocated
from it until the config is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .addresses import AddressRange, IPAddress, confuses_buggy_firmware
from .claims import Claimant
from .selectors import LabelSelector


@dataclass(frozen=True, slots=True)
class ServiceAllocation:
    """Which Services a pool serves, and how strongly it is preferred."""

    priority: int = 0
    namespaces: frozenset[str] = frozenset()
    namespace_selectors: tuple[LabelSelector, ...] = ()
    service_selectors: tuple[LabelSelector, ...] = ()

    @property
    def restricts(self) -> bool:
        return bool(self.namespaces or self.namespace_selectors or self.service_selectors)

    def refuses(self, claimant: Claimant) -> str | None:
        """Why this allocation does not serve `claimant`, or None when it does."""
        # `namespaces` and `namespaceSelectors` are alternatives (MetalLB's docs: "created
        # either in namespace-a or namespace-b or any namespace has a label foo:bar").
        if self.namespaces or self.namespace_selectors:
            ns_labels = claimant.namespace_labels
            if claimant.namespace not in self.namespaces and not any(
                    s.matches(ns_labels) for s in self.namespace_selectors):
                named = (f"namespaces {', '.join(sorted(self.namespaces))}"
                         if self.namespaces else "")
                matching = ("namespaces matching its namespaceSelectors"
                            if self.namespace_selectors else "")
                return f"serves only {' or '.join(x for x in (named, matching) if x)}"
        labels = claimant.label_map
        if self.service_selectors and not any(s.matches(labels)
                                              for s in self.service_selectors):
            return "serves only Services matching its serviceSelectors"
        return None


@dataclass(frozen=True, slots=True)
class Pool:
    """One named set of address ranges."""

    name: str
    ranges: tuple[AddressRange, ...]
    auto_assign: bool = True
    avoid_buggy_ips: bool = False
    allocation: ServiceAllocation | None = None
    frozen: bool = False
    """Has configuration problems: holders keep their addresses, nothing new is handed out."""
    path: str = ""
    """Where it is configured, e.g. `baremetal.pools[0]`."""

    @property
    def families(self) -> frozenset[str]:
        return frozenset(r.family for r in self.ranges)

    @property
    def priority(self) -> int:
        return self.allocation.priority if self.allocation else 0

    def contains(self, ip: IPAddress) -> bool:
        """`ip` is one of this pool's usable addresses (avoidBuggyIPs excludes .0 and .255)."""
        if self.avoid_buggy_ips and confuses_buggy_firmware(ip):
            return False
        return any(r.contains(ip) for r in self.ranges)

    def excludes_as_buggy(self, ip: IPAddress) -> bool:
        return (self.avoid_buggy_ips and confuses_buggy_firmware(ip)
                and any(r.contains(ip) for r in self.ranges))

    def ranges_of(self, family: str) -> tuple[AddressRange, ...]:
        return tuple(r for r in self.ranges if r.family == family)

    def refuses(self, claimant: Claimant, *, explicit: bool = False) -> str | None:
        """Why this pool may not give `claimant` a new address, or None. `explicit`: the
        Service named the pool or one of its addresses, so `autoAssign: false` is no bar."""
        if self.frozen:
            return f"has configuration problems (see {self.path or 'the config'})"
        if not explicit and not self.auto_assign:
            return "has autoAssign: false"
        return self.allocation.refuses(claimant) if self.allocation else None


def _order(pool: Pool, index: int) -> tuple[int, float, int]:
    pinned = 0 if pool.allocation is not None and pool.allocation.restricts else 1
    priority = pool.priority if pool.priority > 0 else float("inf")
    return pinned, priority, index


@dataclass(frozen=True, slots=True)
class PoolSet:
    """The configured pools: `active` ones allocate, `frozen` ones only keep their holders."""

    active: tuple[Pool, ...] = ()
    frozen: tuple[Pool, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in (*self.active, *self.frozen))

    def owner(self, ip: IPAddress) -> Pool | None:
        """The pool `ip` belongs to (an active one before a frozen one), or None."""
        for pool in (*self.active, *self.frozen):
            if pool.contains(ip):
                return pool
        return None

    def named(self, name: str) -> Pool | None:
        for pool in (*self.active, *self.frozen):
            if pool.name == name:
                return pool
        return None

    def candidates(self, claimant: Claimant) -> tuple[Pool, ...]:
        """Pools that may auto-assign to `claimant`, most preferred first."""
        ranked = sorted((i for i, p in enumerate(self.active) if p.refuses(claimant) is None),
                        key=lambda i: _order(self.active[i], i))
        return tuple(self.active[i] for i in ranked)

    def refusals(self, claimant: Claimant) -> tuple[str, ...]:
        """Why each pool is not a candidate, e.g. `"b" has autoAssign: false`."""
        out = []
        for pool in (*self.active, *self.frozen):
            why = pool.refuses(claimant)
            if why is not None:
                out.append(f'"{pool.name}" {why}')
        return tuple(out)
