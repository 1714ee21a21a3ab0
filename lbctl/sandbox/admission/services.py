"""Service admission: what kube-apiserver's Service registry does between decoding and storing.

`ServiceAdmission` is what the store calls for Services. It runs upstream's steps in upstream's
order (pkg/registry/core/service: storage.go's beginCreate/beginUpdate, then strategy.go):

    create:  defaults -> normalizeClusterIPs -> allocate (ipFamilies, clusterIPs, nodePorts,
             healthCheckNodePort) -> PrepareForCreate -> ValidateService
    update:  defaults -> patchAllocatedValues/normalizeClusterIPs -> allocate what is new, defer
             releasing what is dropped -> PrepareForUpdate (dropTypeDependentFields) ->
             ValidateServiceUpdate
    status:  defaults -> ValidateServiceStatusUpdate

The steps live in sibling modules: `services_defaults` (defaults, strategy fix-ups, wire form),
`services_cluster_ips` and `services_node_ports` (allocation, through the pools and transaction
of `services_allocation`) and `services_validation` (with `services_port_validation` and
`services_ip_validation`).

As upstream, allocation comes first: a taken nodePort is reported alone, while every validation
problem is reported together in one 422. Each call is a transaction: if it raises, every value it
reserved is freed and nothing it meant to release has been released; the input is never mutated.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from lbctl.sandbox.admission.allocators import IPAllocator, PortAllocator
from lbctl.sandbox.admission.services_allocation import ServiceAllocator
from lbctl.sandbox.admission.services_cluster_ips import (
    alloc_cluster_ips,
    init_ip_family_fields,
    update_cluster_ips,
)
from lbctl.sandbox.admission.services_defaults import (
    default_ip_families_on_read,
    drop_type_dependent_fields,
    normalize_cluster_ips,
    patch_allocated_values,
    set_defaults,
    to_wire,
)
from lbctl.sandbox.admission.services_fields import needs_health_check, needs_node_port, spec_of
from lbctl.sandbox.admission.services_formats import rejected
from lbctl.sandbox.admission.services_node_ports import (
    alloc_health_check_port,
    init_node_ports,
    update_node_ports,
)
from lbctl.sandbox.admission.services_validation import (
    validate_service,
    validate_service_status_update,
    validate_service_update,
)
from lbctl.sandbox.errors import FieldError


def _check(svc: dict[str, Any], errors: list[FieldError]) -> None:
    """Refuse `svc` with one 422 listing every problem, if there are any."""
    if errors:
        raise rejected(svc, errors)


class ServiceAdmission:
    """Defaulting, validation and IP/port allocation for Services, as kube-apiserver does them.

    `meta_errors` (metadata problems found by the caller) are reported first in the same 422
    as the spec's, after allocation succeeded, like `ValidateObjectMeta` inside `ValidateService`.
    With `dry_run` a request is checked (conflicts included) and answered as it would be, then
    every reservation it made is undone and nothing is released.
    """

    def __init__(self, service_cidr: str = "10.96.0.0/12",
                 ipv6_service_cidr: str | None = "fd00:10:96::/108",
                 node_port_range: tuple[int, int] = (30000, 32767), *,
                 seed: int | None = None) -> None:
        self._alloc = ServiceAllocator(service_cidr, ipv6_service_cidr, node_port_range, seed)

    @property
    def ip_allocators(self) -> Mapping[str, IPAllocator]:
        """The ClusterIP pools by family ("IPv4", "IPv6"); the first CIDR's is the default."""
        return self._alloc.ips

    @property
    def node_ports(self) -> PortAllocator:
        return self._alloc.ports

    def create(self, svc: dict[str, Any], *, meta_errors: Sequence[FieldError] = (),
               dry_run: bool = False) -> dict[str, Any]:
        new = copy.deepcopy(svc)
        set_defaults(new)
        spec = new["spec"]
        normalize_cluster_ips(spec, None)
        with self._alloc.transaction(dry_run) as txn:
            init_ip_family_fields(new, None, self._alloc.families)
            alloc_cluster_ips(new, txn)
            if needs_node_port(spec):
                init_node_ports(new, txn)
            if needs_health_check(spec):
                alloc_health_check_port(new, txn)
            new["status"] = {"loadBalancer": {}}
            _check(new, [*meta_errors, *validate_service(new)])
        return to_wire(new)

    def update(self, old: dict[str, Any], new: dict[str, Any], *,
               meta_errors: Sequence[FieldError] = (), dry_run: bool = False) -> dict[str, Any]:
        before = copy.deepcopy(old)
        after = copy.deepcopy(new)
        set_defaults(after)
        old_spec, spec = spec_of(before), after["spec"]
        normalize_cluster_ips(old_spec, None)
        default_ip_families_on_read(old_spec, self._alloc.primary_family)
        patch_allocated_values(spec, old_spec)
        normalize_cluster_ips(spec, old_spec)
        with self._alloc.transaction(dry_run) as txn:
            init_ip_family_fields(after, before, self._alloc.families)
            update_cluster_ips(after, before, txn)
            update_node_ports(after, before, txn)
            drop_type_dependent_fields(after, before)
            _check(after, [*meta_errors, *validate_service_update(after, before)])
        return to_wire(after)

    def update_status(self, old: dict[str, Any], new: dict[str, Any], *,
                      meta_errors: Sequence[FieldError] = ()) -> dict[str, Any]:
        del old  # the caller carried the spec over; upstream checks only the new status
        after = copy.deepcopy(new)
        set_defaults(after)
        _check(after, [*meta_errors, *validate_service_status_update(after)])
        return to_wire(after)

    def release(self, svc: dict[str, Any]) -> None:
        """`releaseAllocatedResources`: the Service is gone; free its IPs and ports."""
        self._alloc.release(svc)

    def restore(self, svc: dict[str, Any]) -> None:
        """Mark a stored Service's IPs and ports as taken (loading state; repeats are fine)."""
        self._alloc.restore(svc)
