"""The Service IP and port pools, and the transaction every Service write reserves through.

`ServiceAllocator` owns the pools (one `IPAllocator` per IP family, the first CIDR's family being
the cluster default, and one `PortAllocator`) and frees or re-marks a whole Service's values
(`releaseAllocatedResources`, and loading stored state). The steps of kube's service
`storage/alloc.go` that decide what a request reserves are `services_cluster_ips` and
`services_node_ports`; they reserve through a `Transaction`, so a failed request frees what it took
and releases nothing, a dry run undoes everything, and releases of dropped values wait until the
request has succeeded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from types import MappingProxyType, TracebackType
from typing import Any

from lbctl.sandbox.admission.allocators import AllocationError, IPAllocator, PortAllocator
from lbctl.sandbox.admission.services_fields import (
    EXTERNAL_NAME,
    cluster_ips,
    headless_first,
    needs_health_check,
    needs_node_port,
    node_ports,
    number,
    service_type,
    spec_of,
)
from lbctl.sandbox.name_formats import ip_family, parse_ip


class Transaction:
    """Values reserved by one request, and releases deferred until it succeeds.

    As a context manager it settles itself: an exception reverts it, success finishes it.
    """

    def __init__(self, ips: Mapping[str, IPAllocator], ports: PortAllocator, *,
                 dry_run: bool = False) -> None:
        self._ips, self._ports, self._dry_run = ips, ports, dry_run
        self._taken_ips: list[tuple[str, str]] = []
        self._taken_ports: list[int] = []
        self._later_ips: list[tuple[str, str]] = []
        self._later_ports: list[int] = []

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.revert()

    def take_ip(self, family: str, ip: str) -> None:
        self._ips[family].allocate(ip)
        self._taken_ips.append((family, ip))

    def next_ip(self, family: str) -> str:
        ip = self._ips[family].allocate_next()
        self._taken_ips.append((family, ip))
        return ip

    def take_port(self, port: int) -> None:
        self._ports.allocate(port)
        self._taken_ports.append(port)

    def next_port(self) -> int:
        port = self._ports.allocate_next()
        self._taken_ports.append(port)
        return port

    def release_ip_later(self, family: str, ip: str) -> None:
        self._later_ips.append((family, ip))

    def release_port_later(self, port: int) -> None:
        self._later_ports.append(port)

    def finish(self) -> None:
        """Success: apply the deferred releases, or in a dry run undo everything."""
        if self._dry_run:
            self.revert()
        else:
            self.commit()

    def commit(self) -> None:
        for family, ip in self._later_ips:
            if family in self._ips and parse_ip(ip) is not None:
                self._ips[family].release(ip)
        for port in self._later_ports:
            self._ports.release(port)

    def revert(self) -> None:
        for family, ip in self._taken_ips:
            self._ips[family].release(ip)
        for port in self._taken_ports:
            self._ports.release(port)


class ServiceAllocator:
    """The ClusterIP pools by family and the nodePort pool."""

    def __init__(self, service_cidr: str, ipv6_service_cidr: str | None,
                 node_port_range: tuple[int, int], seed: int | None = None) -> None:
        primary = IPAllocator(service_cidr, seed=seed)
        self._ips: dict[str, IPAllocator] = {primary.family: primary}
        if ipv6_service_cidr:
            secondary = IPAllocator(ipv6_service_cidr, seed=seed)
            if secondary.family == primary.family:
                raise ValueError("the secondary service CIDR must be of the other IP family")
            self._ips[secondary.family] = secondary
        self.primary_family = primary.family
        self._ports = PortAllocator(*node_port_range, seed=seed)

    @property
    def ips(self) -> Mapping[str, IPAllocator]:
        return MappingProxyType(self._ips)

    @property
    def families(self) -> tuple[str, ...]:
        """The IP families this cluster serves, the default (primary) one first."""
        return tuple(self._ips)

    @property
    def ports(self) -> PortAllocator:
        return self._ports

    def transaction(self, dry_run: bool = False) -> Transaction:
        return Transaction(self._ips, self._ports, dry_run=dry_run)

    def _owned(self, spec: dict[str, Any]) -> tuple[list[tuple[IPAllocator, str]], list[int]]:
        """The cluster IPs (with their pool) and the ports a stored Service holds.

        Only types that allocate nodePorts own them (an ExternalName Service may carry a nodePort
        it never reserved); values outside the pools are left to the pools to ignore.
        """
        ips: list[tuple[IPAllocator, str]] = []
        if service_type(spec) != EXTERNAL_NAME and not headless_first(spec):
            for ip in cluster_ips(spec):
                family = ip_family(ip)
                if family in self._ips:
                    ips.append((self._ips[family], ip))
        ports = node_ports(spec) if needs_node_port(spec) else []
        if needs_health_check(spec) and number(spec.get("healthCheckNodePort")):
            ports.append(number(spec.get("healthCheckNodePort")))
        return ips, ports

    def release(self, svc: dict[str, Any]) -> None:
        """`releaseAllocatedResources`: the Service is gone; free its IPs and ports."""
        ips, ports = self._owned(spec_of(svc))
        for pool, ip in ips:
            pool.release(ip)
        for port in ports:
            self._ports.release(port)

    def restore(self, svc: dict[str, Any]) -> None:
        """Mark a stored Service's IPs and ports as taken (loading state; repeats are fine)."""
        ips, ports = self._owned(spec_of(svc))
        for pool, ip in ips:
            with contextlib.suppress(AllocationError):
                pool.allocate(ip)
        for port in ports:
            with contextlib.suppress(AllocationError):
                self._ports.allocate(port)
