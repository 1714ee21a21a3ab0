"""Service admission: what kube-apiserver's Service registry does between decoding and storing.

`ServiceAdmission` is what the store calls for Services. It runs upstream's steps in upstream's
order (pkg/registry/core/service: storage.go's beginCreate/beginUpdate, then strategy.go):

    create:  defaults -> normalizeClusterIPs -> allocate (ipFamilies, clusterIPs, nodePorts,
             healthCheckNodePort) -> PrepareForCreate -> ValidateService
    update:  defaults -> patchAllocatedValues/normalizeClusterIPs -> allocate what is new, defer
             releasing what is dropped -> PrepareForUpdate (dropTypeDependentFields) ->
             ValidateServiceUpdate
    status:  defaults -> ValidateServiceStatusUpdate

As upstream, allocation comes first: a taken nodePort is reported alone, while every validation
problem is reported together in one 422. Each call is a transaction: if it raises, every value it
reserved is freed and nothing it meant to release has been released; the input is never mutated.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from lbctl.sandbox.admission.services_allocation import ServiceAllocator, rejected
from lbctl.sandbox.admission.services_defaults import (
    default_ip_families_on_read,
    drop_type_dependent_fields,
    needs_health_check,
    needs_node_port,
    normalize_cluster_ips,
    patch_allocated_values,
    set_defaults,
    spec_of,
    to_wire,
)
from lbctl.sandbox.admission.services_validation import (
    validate_service,
    validate_service_status_update,
    validate_service_update,
)
from lbctl.sandbox.allocators import IPAllocator, PortAllocator
from lbctl.sandbox.errors import FieldError


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
        txn = self._alloc.transaction()
        try:
            self._alloc.init_ip_family_fields(new, None)
            self._alloc.alloc_cluster_ips(new, txn)
            if needs_node_port(spec):
                self._alloc.init_node_ports(new, txn)
            if needs_health_check(spec):
                self._alloc.alloc_health_check_port(new, txn)
            new["status"] = {"loadBalancer": {}}
            errors = [*meta_errors, *validate_service(new)]
            if errors:
                raise rejected(new, errors)
        except BaseException:
            txn.revert()
            raise
        txn.finish(dry_run)
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
        txn = self._alloc.transaction()
        try:
            self._alloc.init_ip_family_fields(after, before)
            self._alloc.update_cluster_ips(after, before, txn)
            self._alloc.update_node_ports(after, before, txn)
            drop_type_dependent_fields(after, before)
            errors = [*meta_errors, *validate_service_update(after, before)]
            if errors:
                raise rejected(after, errors)
        except BaseException:
            txn.revert()
            raise
        txn.finish(dry_run)
        return to_wire(after)

    def update_status(self, old: dict[str, Any], new: dict[str, Any], *,
                      meta_errors: Sequence[FieldError] = ()) -> dict[str, Any]:
        del old  # the caller carried the spec over; upstream checks only the new status
        after = copy.deepcopy(new)
        set_defaults(after)
        errors = [*meta_errors, *validate_service_status_update(after)]
        if errors:
            raise rejected(after, errors)
        return to_wire(after)

    def release(self, svc: dict[str, Any]) -> None:
        """`releaseAllocatedResources`: the Service is gone; free its IPs and ports."""
        self._alloc.release(svc)

    def restore(self, svc: dict[str, Any]) -> None:
        """Mark a stored Service's IPs and ports as taken (loading state; repeats are fine)."""
        self._alloc.restore(svc)
