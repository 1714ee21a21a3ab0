"""ClusterIP and nodePort allocation for Services, after kube's service `storage/alloc.go`.

`ServiceAllocator` owns the pools (one `IPAllocator` per IP family, the first CIDR's family being
the cluster default, and one `PortAllocator`) and ports upstream's steps: `initIPFamilyFields`
settles ipFamilyPolicy/ipFamilies, `allocClusterIPs`/`initNodePorts`/`allocHealthCheckNodePort`
reserve values on create, `updateClusterIPs`/`txnUpdateNodePorts` work out what an update adds
and drops. Every reservation goes through a `Transaction`, so a failed request frees what it took
and releases nothing, and a dry run can undo everything; the error texts are upstream's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from lbctl.sandbox.admission.services_defaults import (
    CLUSTER_IP,
    EXTERNAL_NAME,
    HEADLESS,
    LOAD_BALANCER,
    NODE_PORT,
    PREFER_DUAL_STACK,
    REQUIRE_DUAL_STACK,
    SINGLE_STACK,
    cluster_ips,
    ip_families,
    mapping,
    needs_health_check,
    needs_node_port,
    node_ports,
    number,
    ports_of,
    service_type,
    should_allocate_node_ports,
    spec_of,
    text,
)
from lbctl.sandbox.admission.services_formats import ip_family
from lbctl.sandbox.admission.services_validation import validate_cluster_ips_related
from lbctl.sandbox.allocators import (
    AllocationError,
    IPAllocator,
    PortAllocator,
    RangeFullError,
    parse_ip,
)
from lbctl.sandbox.errors import ApiError, FieldError, internal, invalid, invalid_object

_OTHER_FAMILY = {"IPv4": "IPv6", "IPv6": "IPv4"}


def service_name(svc: Mapping[str, Any]) -> str:
    return text(mapping(svc.get("metadata")).get("name"))


def rejected(svc: Mapping[str, Any], errors: list[FieldError]) -> ApiError:
    return invalid_object("Service", "", service_name(svc), errors)


class Transaction:
    """Values reserved by one request, and releases deferred until it succeeds."""

    def __init__(self, ips: Mapping[str, IPAllocator], ports: PortAllocator) -> None:
        self._ips, self._ports = ips, ports
        self._taken_ips: list[tuple[str, str]] = []
        self._taken_ports: list[int] = []
        self._later_ips: list[tuple[str, str]] = []
        self._later_ports: list[int] = []

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

    def finish(self, dry_run: bool) -> None:
        """Success: apply the deferred releases, or with `dry_run` undo everything."""
        if dry_run:
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
    """The ClusterIP pools by family and the nodePort pool, and upstream's allocation steps."""

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
    def ports(self) -> PortAllocator:
        return self._ports

    def transaction(self) -> Transaction:
        return Transaction(self._ips, self._ports)

    def release(self, svc: dict[str, Any]) -> None:
        """`releaseAllocatedResources`: the Service is gone; free its IPs and ports."""
        spec = spec_of(svc)
        if service_type(spec) != EXTERNAL_NAME and not self._headless(spec):
            for ip in cluster_ips(spec):
                family = ip_family(ip)
                if family in self._ips:
                    self._ips[family].release(ip)
        # Upstream releases every nodePort; only types that allocate them own them (an
        # ExternalName Service may carry a nodePort it never reserved).
        for port in node_ports(spec) if needs_node_port(spec) else []:
            self._ports.release(port)
        if needs_health_check(spec) and number(spec.get("healthCheckNodePort")) > 0:
            self._ports.release(number(spec.get("healthCheckNodePort")))

    def restore(self, svc: dict[str, Any]) -> None:
        """Mark a stored Service's IPs and ports as taken (loading state; repeats are fine)."""
        spec = spec_of(svc)
        if service_type(spec) != EXTERNAL_NAME and not self._headless(spec):
            for ip in cluster_ips(spec):
                family = ip_family(ip)
                if family in self._ips:
                    with contextlib.suppress(AllocationError):
                        self._ips[family].allocate(ip)
        owned = node_ports(spec) if needs_node_port(spec) else []
        if needs_health_check(spec):
            owned.append(number(spec.get("healthCheckNodePort")))
        for port in owned:
            if port:
                with contextlib.suppress(AllocationError):
                    self._ports.allocate(port)

    @staticmethod
    def _headless(spec: dict[str, Any]) -> bool:
        ips = cluster_ips(spec)
        return bool(ips) and ips[0] == HEADLESS

    def init_ip_family_fields(self, svc: dict[str, Any], old_svc: dict[str, Any] | None) -> None:
        """`initIPFamilyFields`: settle ipFamilyPolicy and ipFamilies against this cluster."""
        spec = svc["spec"]
        old = spec_of(old_svc) if old_svc is not None else None
        if service_type(spec) == EXTERNAL_NAME or self._same_prefer_dual_stack(spec, old):
            return
        if spec.get("ipFamilyPolicy") is None:
            if old is not None and old.get("ipFamilyPolicy") is not None:
                spec["ipFamilyPolicy"] = old["ipFamilyPolicy"]
            elif text(spec.get("clusterIP")) == HEADLESS and not mapping(spec.get("selector")):
                spec["ipFamilyPolicy"] = REQUIRE_DUAL_STACK
            else:
                spec["ipFamilyPolicy"] = SINGLE_STACK
        if errors := validate_cluster_ips_related(svc):
            raise rejected(svc, errors)
        policy = spec["ipFamilyPolicy"]
        ips, families = cluster_ips(spec), ip_families(spec)
        errors = []
        if old is not None:
            if policy == SINGLE_STACK:
                if ips == cluster_ips(old) and len(ips) > 1:
                    ips = ips[:1]
                if families == ip_families(old) and len(families) > 1:
                    families = families[:1]
            else:
                if ips and len(ips) < len(cluster_ips(old)):
                    errors.append(invalid("spec.ipFamilyPolicy", policy,
                                          "must be 'SingleStack' to release the secondary "
                                          "cluster IP"))
                if families and len(families) < len(ip_families(old)):
                    errors.append(invalid("spec.ipFamilyPolicy", policy,
                                          "must be 'SingleStack' to release the secondary IP "
                                          "family"))
        if policy == SINGLE_STACK:
            if len(ips) == 2:
                errors.append(invalid("spec.ipFamilyPolicy", policy,
                                      "must be 'RequireDualStack' or 'PreferDualStack' when "
                                      "multiple cluster IPs are specified"))
            if len(families) == 2:
                errors.append(invalid("spec.ipFamilyPolicy", policy,
                                      "must be 'RequireDualStack' or 'PreferDualStack' when "
                                      "multiple IP families are specified"))
        for i, ip in enumerate(ips):
            if ip == HEADLESS:
                break
            family = ip_family(ip) or "unknown"
            if i >= len(families):
                if family not in self._ips:
                    errors.append(invalid(f"spec.clusterIPs[{i}]", ips,
                                          f"{family} is not configured on this cluster"))
                else:
                    families.append(family)
        self._store_families(spec, ips, families)
        if errors:
            raise rejected(svc, errors)
        if text(spec.get("clusterIP")) == HEADLESS and not mapping(spec.get("selector")):
            families = families or [self.primary_family]
            if len(families) < 2 and policy != SINGLE_STACK:
                families.append(_OTHER_FAMILY.get(families[0], "IPv4"))
            self._store_families(spec, ips, families)
            return
        if policy == REQUIRE_DUAL_STACK and len(self._ips) < 2:
            errors.append(invalid("spec.ipFamilyPolicy", policy,
                                  "this cluster is not configured for dual-stack services"))
        errors += [invalid(f"spec.ipFamilies[{i}]", family, "not configured on this cluster")
                   for i, family in enumerate(families) if family not in self._ips]
        if errors:
            raise rejected(svc, errors)
        families = families or [self.primary_family]
        if policy != SINGLE_STACK and len(families) == 1 and len(self._ips) == 2:
            families.append(_OTHER_FAMILY[families[0]])
        self._store_families(spec, ips, families)

    @staticmethod
    def _store_families(spec: dict[str, Any], ips: list[str], families: list[str]) -> None:
        if ips or "clusterIPs" in spec:
            spec["clusterIPs"] = list(ips)
        if families or "ipFamilies" in spec:
            spec["ipFamilies"] = list(families)

    @staticmethod
    def _same_prefer_dual_stack(spec: dict[str, Any], old: dict[str, Any] | None) -> bool:
        """`isMatchingPreferDualStackClusterIPFields`: an unchanged PreferDualStack Service."""
        return (old is not None and spec.get("ipFamilyPolicy") is not None
                and service_type(old) == service_type(spec)
                and service_type(spec) in (CLUSTER_IP, NODE_PORT, LOAD_BALANCER)
                and spec.get("ipFamilyPolicy") == PREFER_DUAL_STACK
                and old.get("ipFamilyPolicy") in (None, PREFER_DUAL_STACK)
                and cluster_ips(old) == cluster_ips(spec)
                and ip_families(old) == ip_families(spec))

    def _alloc_ips(self, svc: dict[str, Any], wanted: dict[str, str],
                   txn: Transaction) -> dict[str, str]:
        """`allocIPs`: the requested IP per family, or the next free one where none is given."""
        done: dict[str, str] = {}
        for family, ip in wanted.items():
            if not ip:
                try:
                    done[family] = txn.next_ip(family)
                except RangeFullError as err:
                    raise internal(f"failed to allocate a serviceIP: {err}") from None
                continue
            try:
                txn.take_ip(family, ip)
            except AllocationError as err:
                raise rejected(svc, [invalid("spec.clusterIPs", spec_of(svc).get("clusterIPs"),
                                              f"failed to allocate IP {ip}: {err}")]) from None
            done[family] = ip
        return done

    def alloc_cluster_ips(self, svc: dict[str, Any], txn: Transaction) -> None:
        """`allocClusterIPs`: one IP per family in ipFamilies (none for headless/ExternalName)."""
        spec = svc["spec"]
        if service_type(spec) == EXTERNAL_NAME or self._headless(spec):
            return
        ips, families = cluster_ips(spec), ip_families(spec)
        ips += [""] * (len(families) - len(ips))
        spec["clusterIPs"] = ips
        done = self._alloc_ips(svc, {f: ips[i] for i, f in enumerate(families)}, txn)
        for i, family in enumerate(families):
            if family in done:
                ips[i] = done[family]
        if ips:
            spec["clusterIP"] = ips[0]

    def update_cluster_ips(self, svc: dict[str, Any], old_svc: dict[str, Any],
                            txn: Transaction) -> None:
        """`updateClusterIPs`: ExternalName <-> IP types, and dual-stack up/downgrades."""
        spec, old = svc["spec"], spec_of(old_svc)
        if self._same_prefer_dual_stack(spec, old):
            return
        was_name, is_name = service_type(old) == EXTERNAL_NAME, service_type(spec) == EXTERNAL_NAME
        if was_name and not is_name:
            self.alloc_cluster_ips(svc, txn)
            return
        if self._headless(old):
            return
        old_ips, old_families = cluster_ips(old), ip_families(old)
        if is_name and not was_name:
            for family, ip in zip(old_families, old_ips, strict=False):
                txn.release_ip_later(family, ip)
            return
        families = ip_families(spec)
        if len(old_families) == 1 and len(families) == 2:
            ips = cluster_ips(spec)
            ips += [""] * (2 - len(ips))
            spec["clusterIPs"] = ips
            ips[1] = self._alloc_ips(svc, {families[1]: ips[1]}, txn)[families[1]]
        elif len(old_families) == 2 and len(families) == 1 and len(old_ips) > 1:
            txn.release_ip_later(old_families[1], old_ips[1])

    def _node_port_error(self, svc: dict[str, Any], index: int, port: int,
                         err: AllocationError) -> ApiError:
        return rejected(svc, [invalid(f"spec.ports[{index}].nodePort", port, str(err))])

    def init_node_ports(self, svc: dict[str, Any], txn: Transaction) -> None:
        """`initNodePorts`: requested nodePorts, else new ones; one per port number, so TCP and
        UDP of the same port share it."""
        spec = svc["spec"]
        ports = ports_of(spec)
        by_number: dict[Any, int] = {}
        for i, port in enumerate(ports):
            requested = number(port.get("nodePort"))
            if requested == 0 and not should_allocate_node_ports(spec):
                continue
            key = port.get("port")
            given = by_number.get(key, 0)
            if given == 0:
                wanted = next((number(p.get("nodePort")) for p in ports
                               if p.get("port") == key and number(p.get("nodePort"))), 0)
                if wanted:
                    try:
                        txn.take_port(wanted)
                    except AllocationError as err:
                        raise self._node_port_error(svc, i, wanted, err) from None
                else:
                    try:
                        wanted = txn.next_port()
                    except RangeFullError as err:
                        raise internal(f"failed to allocate a nodePort: {err}") from None
                port["nodePort"] = by_number[key] = wanted
            elif requested != given:
                if requested == 0:
                    port["nodePort"] = given
                else:
                    try:
                        txn.take_port(requested)
                    except AllocationError as err:
                        raise self._node_port_error(svc, i, requested, err) from None

    def update_node_ports(self, svc: dict[str, Any], old_svc: dict[str, Any],
                           txn: Transaction) -> None:
        """`txnUpdateNodePorts`: allocate new nodePorts, release dropped ones on success."""
        spec, old = svc["spec"], spec_of(old_svc)
        if needs_node_port(old) and service_type(spec) in (EXTERNAL_NAME, CLUSTER_IP):
            for old_port in node_ports(old):
                txn.release_port_later(old_port)
        if needs_node_port(spec):
            old_numbers = node_ports(old)
            seen: list[tuple[Any, int]] = []
            taken_here: set[int] = set()
            for i, port in enumerate(ports_of(spec)):
                value = number(port.get("nodePort"))
                if value == 0 and not should_allocate_node_ports(spec):
                    continue
                if value == 0:
                    try:
                        value = port["nodePort"] = txn.next_port()
                    except RangeFullError as err:
                        raise internal(f"failed to allocate a nodePort: {err}") from None
                elif value not in old_numbers and value not in taken_here:
                    try:
                        txn.take_port(value)
                    except AllocationError as err:
                        raise self._node_port_error(svc, i, value, err) from None
                    taken_here.add(value)
                key = (port.get("protocol"), value)
                if key in seen:
                    raise ApiError(500, "", f"duplicate nodePort: {{{key[0]} {value}}}")
                seen.append(key)
            kept = node_ports(spec)
            for value in old_numbers:
                if value not in kept:
                    txn.release_port_later(value)
        if not needs_health_check(old) and needs_health_check(spec):
            self.alloc_health_check_port(svc, txn)
        elif (needs_health_check(old) and not needs_health_check(spec)
              and (previous := number(old.get("healthCheckNodePort")))):
            txn.release_port_later(previous)

    def alloc_health_check_port(self, svc: dict[str, Any], txn: Transaction) -> None:
        """`allocHealthCheckNodePort`; upstream answers its failures with a 500."""
        spec = svc["spec"]
        wanted = number(spec.get("healthCheckNodePort"))
        try:
            if wanted:
                txn.take_port(wanted)
            else:
                spec["healthCheckNodePort"] = txn.next_port()
        except AllocationError as err:
            if wanted:
                raise internal(f"failed to allocate requested HealthCheck NodePort {wanted}: "
                               f"{err}") from None
            raise internal(f"failed to allocate a HealthCheck NodePort 0: {err}") from None
