"""Service IP validation: clusterIPs, ipFamilies, ipFamilyPolicy and externalIPs.

The dual-stack fields are the subtle part of `ValidateService` and `ValidateServiceUpdate`
(pkg/apis/core/validation/validation.go): `ValidateServiceClusterIPsRelatedFields` ties
clusterIP, clusterIPs, ipFamilies and ipFamilyPolicy together, and on update
`validateUpgradeDowngradeClusterIPs`/`validateUpgradeDowngradeIPFamilies` keep the primary IP and
family immutable while allowing a secondary to be added or dropped. The allocator runs the
related-fields check on its own before it settles the families, so it lives apart from the rest
of Service validation. Paths and texts are upstream's, including values printed as Go slices.
"""

from __future__ import annotations

from typing import Any

from lbctl.sandbox.admission.services_fields import (
    EXTERNAL_NAME,
    HEADLESS,
    SINGLE_STACK,
    cluster_ips,
    ip_families,
    is_headless,
    service_type,
    spec_of,
    text,
)
from lbctl.sandbox.admission.services_formats import (
    go_field_slice,
    invalid_rendered,
    validate_non_special_ip,
)
from lbctl.sandbox.errors import FieldError, duplicate, invalid, not_supported, required
from lbctl.sandbox.name_formats import ip_family, is_valid_ip

IP_FAMILIES = ["IPv4", "IPv6"]
IP_FAMILY_POLICIES = ["PreferDualStack", "RequireDualStack", "SingleStack"]
_CHANGED = "may not change once set"


def validate_cluster_ips_related(svc: dict[str, Any]) -> list[FieldError]:
    """`ValidateServiceClusterIPsRelatedFields`: clusterIP(s), ipFamilies, ipFamilyPolicy."""
    spec = spec_of(svc)
    if service_type(spec) == EXTERNAL_NAME:
        return []
    errs: list[FieldError] = []
    ips_path, families_path = "spec.clusterIPs", "spec.ipFamilies"
    ip, ips, raw_ips = text(spec.get("clusterIP")), cluster_ips(spec), spec.get("clusterIPs")
    if ip:
        if not ips:
            errs.append(required(ips_path))
        elif ips[0] != ip:
            errs.append(invalid(ips_path, raw_ips, "first value must match `clusterIP`"))
    elif ips:
        errs.append(invalid(ips_path, raw_ips, "must be empty when `clusterIP` is not specified"))
    seen: set[str] = set()
    for i, family in enumerate(ip_families(spec)):
        if family not in IP_FAMILIES:
            errs.append(not_supported(f"{families_path}[{i}]", family, IP_FAMILIES))
        if family in seen:
            errs.append(duplicate(f"{families_path}[{i}]", family))
        seen.add(family)
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in IP_FAMILY_POLICIES:
        errs.append(not_supported("spec.ipFamilyPolicy", policy, IP_FAMILY_POLICIES))
    has_invalid = False
    for i, cluster_ip in enumerate(ips):
        if i == 0 and cluster_ip == HEADLESS:
            if len(ips) > 1:
                has_invalid = True
                errs.append(invalid(ips_path, raw_ips, "'None' must be the first and only value"))
            continue
        bad = is_valid_ip(f"{ips_path}[{i}]", cluster_ip)
        has_invalid = has_invalid or bool(bad)
        errs += bad
    if len(ips) > 2:
        errs.append(invalid(ips_path, raw_ips, "may only hold up to 2 values"))
    if has_invalid:
        return errs
    if len(ips) > 1 and {ip_family(x) for x in ips} != {"IPv4", "IPv6"}:
        errs.append(invalid(ips_path, raw_ips,
                            "may specify no more than one IP for each IP family"))
    families = ip_families(spec)
    if not is_headless(spec) and ips and families:
        for i, cluster_ip in enumerate(ips[:len(families)]):
            actual = ip_family(cluster_ip)
            if families[i] == "IPv4" and actual == "IPv6":
                errs.append(invalid(f"{ips_path}[{i}]", cluster_ip,
                                    f"expected an IPv4 value as indicated by `ipFamilies[{i}]`"))
            if families[i] == "IPv6" and actual != "IPv6":
                errs.append(invalid(f"{ips_path}[{i}]", cluster_ip,
                                    f"expected an IPv6 value as indicated by `ipFamilies[{i}]`"))
    return errs


def validate_external_ips(spec: dict[str, Any]) -> list[FieldError]:
    """Each externalIP is a valid IP and not an unspecified, loopback or link-local one."""
    errs: list[FieldError] = []
    external_ips = spec.get("externalIPs")
    for i, external_ip in enumerate(external_ips if isinstance(external_ips, list) else []):
        path = f"spec.externalIPs[{i}]"
        errs += is_valid_ip(path, external_ip) or validate_non_special_ip(external_ip, path)
    return errs


def _single_stack_to_release(spec: dict[str, Any], what: str) -> list[FieldError]:
    policy = spec.get("ipFamilyPolicy")
    if policy == SINGLE_STACK:
        return []
    return [invalid("spec.ipFamilyPolicy", policy,
                    f"must be set to 'SingleStack' when releasing the secondary {what}")]


def _validate_cluster_ips_update(old: dict[str, Any], spec: dict[str, Any]) -> list[FieldError]:
    """`validateUpgradeDowngradeClusterIPs`: clusterIPs[0] is immutable; dropping [1] needs
    SingleStack."""
    if is_headless(old) and is_headless(spec):
        return []
    errs: list[FieldError] = []
    old_ips, new_ips = cluster_ips(old), cluster_ips(spec)
    rendered = go_field_slice(spec, "clusterIPs", "string")
    path = "spec.clusterIPs[0]"
    if len(old_ips) == len(new_ips):
        errs += [invalid_rendered(f"spec.clusterIPs[{i}]", rendered, _CHANGED)
                 for i, ip in enumerate(old_ips) if ip != new_ips[i]]
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            errs.append(invalid_rendered(path, rendered, "primary clusterIP can not be unset"))
        elif old_ips[0] != new_ips[0]:
            errs.append(invalid_rendered(path, rendered, _CHANGED))
        if len(new_ips) == 1:
            errs += _single_stack_to_release(spec, "clusterIP")
    elif old_ips and new_ips[0] != old_ips[0]:
        errs.append(invalid_rendered(path, rendered, _CHANGED))
    return errs


def _validate_ip_families_update(old: dict[str, Any], spec: dict[str, Any]) -> list[FieldError]:
    """`validateUpgradeDowngradeIPFamilies`: ipFamilies[0] is immutable (headless excepted)."""
    if is_headless(old) or is_headless(spec):
        return []
    errs: list[FieldError] = []
    old_families, families = ip_families(old), ip_families(spec)
    as_families = go_field_slice(spec, "ipFamilies", "core.IPFamily")
    as_ips = go_field_slice(spec, "clusterIPs", "string")
    path = "spec.ipFamilies[0]"
    if len(old_families) == len(families):
        errs += [invalid_rendered(path, as_families, _CHANGED)
                 for i, family in enumerate(old_families) if family != families[i]]
    elif len(old_families) > len(families):
        if not cluster_ips(spec):
            errs.append(invalid_rendered(path, as_families, "primary ipFamily can not be unset"))
        if families and families[0] != old_families[0]:
            errs.append(invalid_rendered(path, as_ips, _CHANGED))
        if len(families) == 1:
            errs += _single_stack_to_release(spec, "ipFamily")
    elif old_families and families and families[0] != old_families[0]:
        errs.append(invalid_rendered(path, as_ips, _CHANGED))
    return errs


def validate_ip_update(old: dict[str, Any], spec: dict[str, Any]) -> list[FieldError]:
    """The upgrade/downgrade checks of clusterIPs, then of ipFamilies; an ExternalName Service
    (before or after) has neither."""
    if EXTERNAL_NAME in (service_type(spec), service_type(old)):
        return []
    return _validate_cluster_ips_update(old, spec) + _validate_ip_families_update(old, spec)
