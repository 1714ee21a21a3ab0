"""A recording fake provider: the controller's tests and benchmarks run against it.

Like cloud-provider's `fake.Cloud`, it keeps balancers in memory, records every call in order,
and can be told to fail (`fail_next`) or to be slow (`latency`), so tests can assert exactly which
provider calls a scenario caused and how the controller reacts to each kind of error. Addresses
come from 198.51.100.0/24 (TEST-NET-2) in creation order, stable per balancer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from providers.cluster import ClusterView
from providers.errors import PermanentError, ProviderError
from providers.interface import Capabilities
from providers.spec import (
    BalancerRef,
    IngressPoint,
    LoadBalancerSpec,
    LoadBalancerStatus,
    PortStatus,
)


@dataclass(frozen=True)
class Call:
    op: str  # ensure | observe | delete | list_owned | validate
    name: str
    service: str  # namespace/name
    targets: tuple[str, ...] = ()


@dataclass
class FakeProvider:
    """In-memory balancers plus a call log and error/latency injection."""

    cluster_name: str = "kubernetes"
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(
        ip_families=frozenset({"IPv4", "IPv6"}), annotation_prefixes=("fake.lbctl.io/",)))
    latency: float = 0.0
    calls: list[Call] = field(default_factory=list)
    balancers: dict[str, LoadBalancerSpec] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)
    released: set[str] = field(default_factory=set)
    """Balancers kept but no longer owned (their ownership marks dropped)."""
    _failures: dict[str, list[ProviderError]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- test controls ------------------------------------------------------------------
    def fail_next(self, op: str, error: ProviderError, times: int = 1) -> None:
        """Make the next `times` calls of `op` raise `error`."""
        with self._lock:
            self._failures.setdefault(op, []).extend([error] * times)

    def ops(self, op: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if op is None or c.op == op]

    def _enter(self, op: str, name: str, service: str, targets: tuple[str, ...] = ()) -> None:
        with self._lock:
            self.calls.append(Call(op, name, service, targets))
            pending = self._failures.get(op)
            error = pending.pop(0) if pending else None
        if self.latency:
            time.sleep(self.latency)
        if error is not None:
            raise error

    # -- Provider ---------------------------------------------------------------------------
    def validate(self, spec: LoadBalancerSpec) -> None:
        value = spec.annotation("fake.lbctl.io/fail")
        if value is not None:
            raise PermanentError("metadata.annotations[fake.lbctl.io/fail]",
                                 f"asked to fail: {value!r}")

    def ensure(self, spec: LoadBalancerSpec) -> LoadBalancerStatus:
        self._enter("ensure", spec.name, spec.ref.service.key,
                    tuple(t.node for t in spec.targets))
        with self._lock:
            self.balancers[spec.name] = spec
            self.released.discard(spec.name)  # ensuring adopts it again
            if spec.name not in self.addresses:
                self.addresses[spec.name] = f"198.51.100.{len(self.addresses) % 250 + 1}"
            ip = spec.requested_ips[0] if spec.requested_ips else self.addresses[spec.name]
        degraded = None if spec.targets else "no backend nodes"
        return LoadBalancerStatus(
            ingress=(IngressPoint(ip=ip, ip_mode="VIP"),),
            ports=tuple(PortStatus(li.port, li.protocol) for li in spec.listeners),
            degraded=degraded)

    def plan(self, spec: LoadBalancerSpec) -> list[str]:
        with self._lock:
            current = self.balancers.get(spec.name)
        if current is None:
            return [f"create balancer {spec.name} with {len(spec.listeners)} listener(s) and "
                    f"{len(spec.targets)} target(s)"]
        return [] if current == spec else [f"update balancer {spec.name}"]

    def observe(self, ref: BalancerRef) -> LoadBalancerStatus | None:
        self._enter("observe", ref.name, ref.service.key)
        with self._lock:
            spec = self.balancers.get(ref.name)
            if spec is None:
                return None
            return LoadBalancerStatus(ingress=(IngressPoint(ip=self.addresses[ref.name],
                                                            ip_mode="VIP"),))

    def delete(self, ref: BalancerRef) -> None:
        self._enter("delete", ref.name, ref.service.key)
        with self._lock:
            self.balancers.pop(ref.name, None)

    def release(self, ref: BalancerRef) -> None:
        self._enter("release", ref.name, ref.service.key)
        with self._lock:
            if ref.name in self.balancers:
                self.released.add(ref.name)

    def list_owned(self) -> Iterable[BalancerRef]:
        self._enter("list_owned", "", "")
        with self._lock:
            return [s.ref for s in self.balancers.values()
                    if s.ref.cluster == self.cluster_name and s.ref.name not in self.released]

    def close(self) -> None:
        return None


def create(settings: Mapping[str, Any], cluster_name: str, cluster: ClusterView) -> FakeProvider:
    """Factory (`provider: fake`); `settings.latencySeconds` slows every call."""
    latency = settings.get("latencySeconds", 0.0)
    if not isinstance(latency, int | float) or latency < 0:
        raise PermanentError("fake.latencySeconds", "must be a non-negative number")
    return FakeProvider(cluster_name=cluster_name, latency=float(latency))
