"""The seam to the balancer daemons: making an allocated address carry traffic.

Address management (this package) decides *which* address a Service holds; a `Programmer`
makes the configured balancer daemons (`baremetal.balancers`: name, url, tokenFile) serve it:
the VIP, listeners, targets, health checks and source ranges of the spec. That client is the
next issue's work. Until it lands the provider uses `NoProgramming`: addresses are allocated and
written to status (what MetalLB's controller does without speakers), and, when daemons are
configured, every status says `degraded` so nobody mistakes an address for a working balancer.

The provider calls a programmer outside its allocation lock (daemon I/O must not serialise
unrelated Services), after the address is recorded and before it is released, so a daemon is
never told to serve an address the ledger does not hold for that Service.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from providers.spec import BalancerRef, LoadBalancerSpec

from .settings import BalancerDaemon


class Programmer(Protocol):
    """Programs balancer daemons; every call idempotent, errors from `providers.errors`."""

    def program(self, spec: LoadBalancerSpec, ips: tuple[str, ...]) -> str | None:
        """Make the daemons serve `spec` at `ips`; return why serving is degraded, or None."""

    def plan(self, spec: LoadBalancerSpec, ips: tuple[str, ...]) -> list[str]:
        """The writes `program(spec, ips)` would make, in words (for `lbctl plan`)."""

    def unprogram(self, ref: BalancerRef) -> None:
        """Remove everything programmed for `ref`; not-found is success."""

    def programmed(self) -> Iterable[BalancerRef]:
        """Every balancer the daemons carry for this cluster (for orphan collection)."""

    def close(self) -> None:
        """Release clients and connections."""


class NoProgramming:
    """The default: nothing to program yet; says so when daemons are configured."""

    def __init__(self, balancers: tuple[BalancerDaemon, ...] = ()) -> None:
        self.balancers = balancers

    def program(self, spec: LoadBalancerSpec, ips: tuple[str, ...]) -> str | None:
        if not self.balancers:
            return None
        names = ", ".join(b.name for b in self.balancers)
        return (f"address allocated, but not programmed on balancer daemons ({names}): "
                "daemon programming is not implemented yet")

    def plan(self, spec: LoadBalancerSpec, ips: tuple[str, ...]) -> list[str]:
        return []

    def unprogram(self, ref: BalancerRef) -> None:
        return None

    def programmed(self) -> Iterable[BalancerRef]:
        return ()

    def close(self) -> None:
        return None
