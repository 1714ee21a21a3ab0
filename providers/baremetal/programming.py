"""The seam to the balancer daemons: making an allocated address carry traffic.

Address management (this package) decides *which* address a Service holds; a `Programmer`
makes the configured balancer daemons (`baremetal.balancers`: name, url, tokenFile) serve it:
the VIP, listeners, targets, health checks and source ranges of the spec (`DaemonProgrammer`
in `daemons`). With no daemons configured the provider uses `NoProgramming`: addresses are
allocated and written to status, which is what MetalLB's controller does for its speakers, and
the network (another announcer, static routes) must deliver them.

The provider calls a programmer outside its allocation lock (daemon I/O must not serialise
unrelated Services), after the address is recorded and before it is released, so a daemon is
never told to serve an address the ledger does not hold for that Service.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from providers.spec import BalancerRef, LoadBalancerSpec, TargetHealth


class Programmer(Protocol):
    """Programs balancer daemons; every call idempotent, errors from `providers.errors`."""

    def program(self, spec: LoadBalancerSpec, ips: tuple[str, ...]) -> str | None:
        """Make the daemons serve `spec` at `ips`; return why serving is degraded, or None."""

    def serving(self, name: str) -> bool:
        """Whether, as far as the daemons last said, balancer `name` carries traffic."""

    def targets(self, name: str) -> TargetHealth | None:
        """Healthy and total targets of balancer `name` as the daemons last said; None when
        nothing checks them."""

    def plan(self, spec: LoadBalancerSpec, ips: tuple[str, ...]) -> list[str]:
        """The writes `program(spec, ips)` would make, in words (for `lbctl plan`)."""

    def unprogram(self, ref: BalancerRef) -> None:
        """Remove everything programmed for `ref`; not-found is success."""

    def programmed(self) -> Iterable[BalancerRef]:
        """Every balancer the daemons carry for this cluster (for orphan collection)."""

    def close(self) -> None:
        """Release clients and connections."""


class NoProgramming:
    """No daemons configured: addresses only."""

    def program(self, spec: LoadBalancerSpec, ips: tuple[str, ...]) -> str | None:
        return None

    def serving(self, name: str) -> bool:
        return True

    def targets(self, name: str) -> TargetHealth | None:
        return None  # no daemon checks anything: the network delivers, unknown health

    def plan(self, spec: LoadBalancerSpec, ips: tuple[str, ...]) -> list[str]:
        return []

    def unprogram(self, ref: BalancerRef) -> None:
        return None

    def programmed(self) -> Iterable[BalancerRef]:
        return ()

    def close(self) -> None:
        return None
