"""ClusterIP allocation for Services: ipFamilyPolicy/ipFamilies, then one IP per family.

Ports kube's service `storage/alloc.go`: `initIPFamilyFields` settles ipFamilyPolicy and
ipFamilies against the families this cluster serves (refusing what it cannot serve, with
upstream's texts), `allocClusterIPs` reserves the requested IPs or draws free ones, and
`updateClusterIPs` works out what an update adds (ExternalName to an IP type, a dual-stack
upgrade) and what it drops (to be released once the update succeeds). Reservations go through
the request's `Transaction`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lbctl.sandbox.admission.allocators import AllocationError, RangeFullError
from lbctl.sandbox.admission.services_allocation import Transaction
from lbctl.sandbox.admission.services_fields import (
    CLUSTER_IP,
    EXTERNAL_NAME,
    HEADLESS,
    LOAD_BALANCER,
    NODE_PORT,
    OTHER_FAMILY,
    PREFER_DUAL_STACK,
    REQUIRE_DUAL_STACK,
    SINGLE_STACK,
    cluster_ips,
    headless_first,
    headless_without_selector,
    ip_families,
    service_type,
    spec_of,
)
from lbctl.sandbox.admission.services_formats import rejected
from lbctl.sandbox.admission.services_ip_validation import validate_cluster_ips_related
from lbctl.sandbox.errors import internal, invalid
from lbctl.sandbox.name_formats import ip_family


def init_ip_family_fields(svc: dict[str, Any], old_svc: dict[str, Any] | None,
                          configured: Sequence[str]) -> None:
    """`initIPFamilyFields`: settle ipFamilyPolicy and ipFamilies against this cluster, whose
    `configured` families are listed default first."""
    spec = svc["spec"]
    old = spec_of(old_svc) if old_svc is not None else None
    if service_type(spec) == EXTERNAL_NAME or _same_prefer_dual_stack(spec, old):
        return
    if spec.get("ipFamilyPolicy") is None:
        if old is not None and old.get("ipFamilyPolicy") is not None:
            spec["ipFamilyPolicy"] = old["ipFamilyPolicy"]
        elif headless_without_selector(spec):
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
            if family not in configured:
                errors.append(invalid(f"spec.clusterIPs[{i}]", ips,
                                      f"{family} is not configured on this cluster"))
            else:
                families.append(family)
    _store_families(spec, ips, families)
    if errors:
        raise rejected(svc, errors)
    if headless_without_selector(spec):
        families = families or [configured[0]]
        if len(families) < 2 and policy != SINGLE_STACK:
            families.append(OTHER_FAMILY.get(families[0], "IPv4"))
        _store_families(spec, ips, families)
        return
    if policy == REQUIRE_DUAL_STACK and len(configured) < 2:
        errors.append(invalid("spec.ipFamilyPolicy", policy,
                              "this cluster is not configured for dual-stack services"))
    errors += [invalid(f"spec.ipFamilies[{i}]", family, "not configured on this cluster")
               for i, family in enumerate(families) if family not in configured]
    if errors:
        raise rejected(svc, errors)
    families = families or [configured[0]]
    if policy != SINGLE_STACK and len(families) == 1 and len(configured) == 2:
        families.append(OTHER_FAMILY[families[0]])
    _store_families(spec, ips, families)


def _store_families(spec: dict[str, Any], ips: list[str], families: list[str]) -> None:
    if ips or "clusterIPs" in spec:
        spec["clusterIPs"] = list(ips)
    if families or "ipFamilies" in spec:
        spec["ipFamilies"] = list(families)


def _same_prefer_dual_stack(spec: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """`isMatchingPreferDualStackClusterIPFields`: an unchanged PreferDualStack Service."""
    return (old is not None and spec.get("ipFamilyPolicy") is not None
            and service_type(old) == service_type(spec)
            and service_type(spec) in (CLUSTER_IP, NODE_PORT, LOAD_BALANCER)
            and spec.get("ipFamilyPolicy") == PREFER_DUAL_STACK
            and old.get("ipFamilyPolicy") in (None, PREFER_DUAL_STACK)
            and cluster_ips(old) == cluster_ips(spec)
            and ip_families(old) == ip_families(spec))


def _alloc_ips(svc: dict[str, Any], wanted: dict[str, str], txn: Transaction) -> dict[str, str]:
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


def alloc_cluster_ips(svc: dict[str, Any], txn: Transaction) -> None:
    """`allocClusterIPs`: one IP per family in ipFamilies (none for headless/ExternalName)."""
    spec = svc["spec"]
    if service_type(spec) == EXTERNAL_NAME or headless_first(spec):
        return
    ips, families = cluster_ips(spec), ip_families(spec)
    ips += [""] * (len(families) - len(ips))
    spec["clusterIPs"] = ips
    done = _alloc_ips(svc, {f: ips[i] for i, f in enumerate(families)}, txn)
    for i, family in enumerate(families):
        if family in done:
            ips[i] = done[family]
    if ips:
        spec["clusterIP"] = ips[0]


def update_cluster_ips(svc: dict[str, Any], old_svc: dict[str, Any], txn: Transaction) -> None:
    """`updateClusterIPs`: ExternalName <-> IP types, and dual-stack up/downgrades."""
    spec, old = svc["spec"], spec_of(old_svc)
    if _same_prefer_dual_stack(spec, old):
        return
    was_name, is_name = service_type(old) == EXTERNAL_NAME, service_type(spec) == EXTERNAL_NAME
    if was_name and not is_name:
        alloc_cluster_ips(svc, txn)
        return
    if headless_first(old):
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
        ips[1] = _alloc_ips(svc, {families[1]: ips[1]}, txn)[families[1]]
    elif len(old_families) == 2 and len(families) == 1 and len(old_ips) > 1:
        txn.release_ip_later(old_families[1], old_ips[1])
