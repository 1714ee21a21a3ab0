"""Service validation: `ValidateService`, `ValidateServiceUpdate`, `ValidateServiceStatusUpdate`.

A port of `pkg/apis/core/validation/validation.go` for the Service spec and status (metadata is
validated by the caller). Checks run in upstream's order and keep upstream's field paths and
texts, including its quirks (`spec.LoadBalancerSourceRanges` with a capital L, duplicate ports
reported as a Go struct), because users and clients compare 422 answers with a real cluster's.

Each function takes wire-shaped dicts that have already been defaulted and returns every problem
as a list of `FieldError`s; nothing here raises or mutates.
"""

from __future__ import annotations

from typing import Any

from lbctl.sandbox.admission.meta import validate_labels
from lbctl.sandbox.admission.services_defaults import (
    CLUSTER_IP,
    EXTERNAL_NAME,
    HEADLESS,
    LB_SOURCE_RANGES_ANNOTATION,
    LOAD_BALANCER,
    NODE_PORT,
    SINGLE_STACK,
    cluster_ips,
    externally_accessible,
    ip_families,
    is_headless,
    mapping,
    needs_health_check,
    number,
    ports_of,
    service_type,
    spec_of,
    text,
)
from lbctl.sandbox.admission.services_formats import (
    GoRendered,
    go_service_port_key,
    go_slice,
    ip_family,
    is_valid_cidr,
    is_valid_ip,
    is_valid_port_name,
    is_valid_port_num,
    validate_non_special_ip,
)
from lbctl.sandbox.allocators import parse_ip
from lbctl.sandbox.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
)
from lbctl.sandbox.name_formats import is_dns1123_label, is_dns1123_subdomain, is_qualified_name

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
AFFINITIES = ["ClientIP", "None"]
TRAFFIC_POLICIES = ["Cluster", "Local"]
IP_FAMILIES = ["IPv4", "IPv6"]
IP_FAMILY_POLICIES = ["PreferDualStack", "RequireDualStack", "SingleStack"]
TRAFFIC_DISTRIBUTIONS = ["PreferClose"]  # 1.33: PreferSameZone/Node are behind an alpha gate
IP_MODES = ["Proxy", "VIP"]
MAX_AFFINITY_TIMEOUT = 86400
_ONLY_LB = "may only be used when `type` is 'LoadBalancer'"
_TOPOLOGY_MODE = "service.kubernetes.io/topology-mode"
_TOPOLOGY_HINTS = "service.kubernetes.io/topology-aware-hints"


def _invalid_each(path: str, value: Any, messages: list[str]) -> list[FieldError]:
    return [invalid(path, value, msg) for msg in messages]


def validate_port_num_or_name(port: Any, path: str) -> list[FieldError]:
    if isinstance(port, str):
        return _invalid_each(path, port, is_valid_port_name(port))
    return _invalid_each(path, port, is_valid_port_num(port))


def _validate_service_port(port: dict[str, Any], require_name: bool, names: set[str],
                           path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = text(port.get("name"))
    if require_name and not name:
        errs.append(required(f"{path}.name"))
    elif name:
        errs += _invalid_each(f"{path}.name", name, is_dns1123_label(name))
        if name in names:
            errs.append(duplicate(f"{path}.name", name))
        names.add(name)
    number_value = port.get("port", 0)
    errs += _invalid_each(f"{path}.port", number_value, is_valid_port_num(number_value))
    protocol = port.get("protocol")
    if not protocol:
        errs.append(required(f"{path}.protocol"))
    elif protocol not in PROTOCOLS:
        errs.append(not_supported(f"{path}.protocol", protocol, PROTOCOLS))
    errs += validate_port_num_or_name(port.get("targetPort", 0), f"{path}.targetPort")
    app_protocol = port.get("appProtocol")
    if app_protocol is not None:
        errs += _invalid_each(f"{path}.appProtocol", app_protocol,
                              is_qualified_name(text(app_protocol)))
    return errs


def _validate_client_ip_affinity(config: Any, path: str) -> list[FieldError]:
    detail = "when session affinity type is ClientIP"
    if config is None:
        return [required(path, detail)]
    client = mapping(config).get("clientIP")
    if client is None:
        return [required(f"{path}.clientIP", detail)]
    timeout = mapping(client).get("timeoutSeconds")
    if timeout is None:
        return [required(f"{path}.clientIP.timeoutSeconds", detail)]
    if not 0 < number(timeout) <= MAX_AFFINITY_TIMEOUT:
        return [invalid(f"{path}.clientIP.timeoutSeconds", timeout,
                        f"must be greater than 0 and less than {MAX_AFFINITY_TIMEOUT}")]
    return []


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


def _validate_lb_class(old: dict[str, Any] | None, spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    path, lb_class = "spec.loadBalancerClass", spec.get("loadBalancerClass")
    is_lb = service_type(spec) == LOAD_BALANCER
    if (old is not None and is_lb and service_type(old) == LOAD_BALANCER
            and old.get("loadBalancerClass") != lb_class):
        errs.append(invalid(path, lb_class, "may not change once set"))
    if lb_class is not None:
        if is_lb:
            errs += _invalid_each(path, lb_class, is_qualified_name(text(lb_class)))
        else:
            errs.append(forbidden(path, _ONLY_LB))
    return errs


def _validate_external_traffic(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    policy = spec.get("externalTrafficPolicy") or ""
    if not externally_accessible(spec):
        if policy:
            errs.append(invalid("spec.externalTrafficPolicy", policy,
                                "may only be set for externally-accessible services"))
    elif not policy:
        errs.append(required("spec.externalTrafficPolicy"))
    elif policy not in TRAFFIC_POLICIES:
        errs.append(not_supported("spec.externalTrafficPolicy", policy, TRAFFIC_POLICIES))
    health_port = spec.get("healthCheckNodePort") or 0
    if not needs_health_check(spec):
        if health_port:
            errs.append(invalid("spec.healthCheckNodePort", health_port,
                                "may only be set when `type` is 'LoadBalancer' and "
                                "`externalTrafficPolicy` is 'Local'"))
    elif not health_port:
        errs.append(required("spec.healthCheckNodePort"))
    else:
        errs += _invalid_each("spec.healthCheckNodePort", health_port,
                              is_valid_port_num(health_port))
    return errs


def _validate_source_ranges(svc: dict[str, Any], spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    is_lb = service_type(spec) == LOAD_BALANCER
    ranges = spec.get("loadBalancerSourceRanges")
    annotations = mapping(mapping(svc.get("metadata")).get("annotations"))
    if isinstance(ranges, list) and ranges:
        path = "spec.LoadBalancerSourceRanges"  # sic: upstream's path has a capital L
        if not is_lb:
            errs.append(forbidden(path, _ONLY_LB))
        for i, value in enumerate(ranges):
            errs += is_valid_cidr(f"{path}[{i}]", text(value).strip())
    elif LB_SOURCE_RANGES_ANNOTATION in annotations:
        path = f"metadata.annotations[{LB_SOURCE_RANGES_ANNOTATION}]"
        if not is_lb:
            errs.append(forbidden(path, _ONLY_LB))
        value = text(annotations[LB_SOURCE_RANGES_ANNOTATION]).strip()
        if value:
            for cidr in value.split(","):
                errs += is_valid_cidr(path, cidr.strip())
    return errs


def validate_service(svc: dict[str, Any]) -> list[FieldError]:
    """`ValidateService` without `ValidateObjectMeta`."""
    errs: list[FieldError] = []
    annotations = mapping(mapping(svc.get("metadata")).get("annotations"))
    if (_TOPOLOGY_MODE in annotations and _TOPOLOGY_HINTS in annotations
            and annotations[_TOPOLOGY_MODE] != annotations[_TOPOLOGY_HINTS]):
        errs.append(invalid(f"metadata.annotations[{_TOPOLOGY_MODE}]", annotations[_TOPOLOGY_MODE],
                            f"must match annotations[{_TOPOLOGY_HINTS}] when both are specified"))
    spec = spec_of(svc)
    kind, ports, headless = service_type(spec), ports_of(spec), is_headless(spec)
    if not ports and not headless and kind != EXTERNAL_NAME:
        errs.append(required("spec.ports"))
    if kind in (LOAD_BALANCER, NODE_PORT) and headless:
        errs.append(invalid("spec.clusterIPs[0]", HEADLESS,
                            f"may not be set to 'None' for {kind} services"))
    elif kind == EXTERNAL_NAME:
        for key in ("clusterIPs", "ipFamilies"):
            if strings_present(spec.get(key)):
                errs.append(forbidden(f"spec.{key}", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(forbidden("spec.ipFamilyPolicy",
                                  "may not be set for ExternalName services"))
        cname = text(spec.get("externalName")).removesuffix(".")
        if cname:
            errs += _invalid_each("spec.externalName", cname, is_dns1123_subdomain(cname))
        else:
            errs.append(required("spec.externalName"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        errs += _validate_service_port(port, len(ports) > 1, names, f"spec.ports[{i}]")
    if isinstance(spec.get("selector"), dict):
        errs += validate_labels({str(k): text(v) for k, v in spec["selector"].items()},
                                "spec.selector")
    affinity = spec.get("sessionAffinity")
    if not affinity:
        errs.append(required("spec.sessionAffinity"))
    elif affinity not in AFFINITIES:
        errs.append(not_supported("spec.sessionAffinity", affinity, AFFINITIES))
    if affinity == "ClientIP":
        errs += _validate_client_ip_affinity(spec.get("sessionAffinityConfig"),
                                             "spec.sessionAffinityConfig")
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        errs.append(forbidden("spec.sessionAffinityConfig",
                              "must not be set when session affinity is None"))
    errs += validate_cluster_ips_related(svc)
    external_ips = spec.get("externalIPs")
    for i, external_ip in enumerate(external_ips if isinstance(external_ips, list) else []):
        path = f"spec.externalIPs[{i}]"
        bad = is_valid_ip(path, external_ip)
        errs += bad or validate_non_special_ip(external_ip, path)
    if not kind:
        errs.append(required("spec.type"))
    elif kind not in SERVICE_TYPES:
        errs.append(not_supported("spec.type", spec.get("type"), SERVICE_TYPES))
    if kind == CLUSTER_IP:
        errs += [forbidden(f"spec.ports[{i}].nodePort",
                           "may not be used when `type` is 'ClusterIP'")
                 for i, port in enumerate(ports) if port.get("nodePort")]
    seen_node_ports: set[tuple[Any, Any]] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        node_port = port.get("nodePort")
        if node_port:
            if (port.get("protocol"), node_port) in seen_node_ports:
                errs.append(duplicate(f"spec.ports[{i}].nodePort", node_port))
            seen_node_ports.add((port.get("protocol"), node_port))
    for i, port in enumerate(ports):
        port_key = (port.get("protocol"), port.get("port", 0))
        if port_key in seen_ports:
            errs.append(GoRendered("FieldValueDuplicate", f"spec.ports[{i}]",
                                   rendered=go_service_port_key(*port_key)))
        seen_ports.add(port_key)
    errs += _validate_source_ranges(svc, spec)
    if spec.get("allocateLoadBalancerNodePorts") is not None and kind != LOAD_BALANCER:
        errs.append(forbidden("spec.allocateLoadBalancerNodePorts", _ONLY_LB))
    if kind == LOAD_BALANCER and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(required("allocateLoadBalancerNodePorts"))  # sic: upstream omits "spec."
    errs += _validate_lb_class(None, spec)
    errs += _validate_external_traffic(spec)
    internal_policy = spec.get("internalTrafficPolicy")
    if internal_policy is None and kind in (NODE_PORT, LOAD_BALANCER, CLUSTER_IP):
        errs.append(required("spec.internalTrafficPolicy"))
    if internal_policy is not None and internal_policy not in TRAFFIC_POLICIES:
        errs.append(not_supported("spec.internalTrafficPolicy", internal_policy, TRAFFIC_POLICIES))
    distribution = spec.get("trafficDistribution")
    if distribution is not None and distribution not in TRAFFIC_DISTRIBUTIONS:
        errs.append(not_supported("spec.trafficDistribution", distribution, TRAFFIC_DISTRIBUTIONS))
    return errs


def strings_present(value: Any) -> bool:
    return isinstance(value, list) and bool(value)


def _raw_slice(spec: dict[str, Any], key: str, type_name: str) -> str:
    value = spec.get(key)
    return go_slice(type_name, [text(v) for v in value] if isinstance(value, list) else None)


def _validate_cluster_ips_update(old: dict[str, Any], spec: dict[str, Any]) -> list[FieldError]:
    """`validateUpgradeDowngradeClusterIPs`: clusterIPs[0] is immutable; dropping [1] needs
    SingleStack."""
    if EXTERNAL_NAME in (service_type(spec), service_type(old)):
        return []
    if is_headless(old) and is_headless(spec):
        return []
    errs: list[FieldError] = []
    old_ips, new_ips = cluster_ips(old), cluster_ips(spec)
    rendered = _raw_slice(spec, "clusterIPs", "string")
    changed = GoRendered("FieldValueInvalid", "spec.clusterIPs[0]", rendered=rendered,
                         detail="may not change once set")
    if len(old_ips) == len(new_ips):
        errs += [GoRendered("FieldValueInvalid", f"spec.clusterIPs[{i}]", rendered=rendered,
                            detail="may not change once set")
                 for i, ip in enumerate(old_ips) if ip != new_ips[i]]
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            errs.append(GoRendered("FieldValueInvalid", "spec.clusterIPs[0]", rendered=rendered,
                                   detail="primary clusterIP can not be unset"))
        elif old_ips[0] != new_ips[0]:
            errs.append(changed)
        if len(new_ips) == 1 and spec.get("ipFamilyPolicy") != SINGLE_STACK:
            errs.append(invalid("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"),
                                "must be set to 'SingleStack' when releasing the secondary "
                                "clusterIP"))
    elif old_ips and new_ips[0] != old_ips[0]:
        errs.append(changed)
    return errs


def _validate_ip_families_update(old: dict[str, Any], spec: dict[str, Any]) -> list[FieldError]:
    """`validateUpgradeDowngradeIPFamilies`: ipFamilies[0] is immutable (headless excepted)."""
    if EXTERNAL_NAME in (service_type(spec), service_type(old)):
        return []
    if is_headless(old) or is_headless(spec):
        return []
    errs: list[FieldError] = []
    old_families, families = ip_families(old), ip_families(spec)
    as_families = _raw_slice(spec, "ipFamilies", "core.IPFamily")
    as_ips = _raw_slice(spec, "clusterIPs", "string")
    path = "spec.ipFamilies[0]"
    if len(old_families) == len(families):
        errs += [GoRendered("FieldValueInvalid", path, rendered=as_families,
                            detail="may not change once set")
                 for i, family in enumerate(old_families) if family != families[i]]
    elif len(old_families) > len(families):
        if not cluster_ips(spec):
            errs.append(GoRendered("FieldValueInvalid", path, rendered=as_families,
                                   detail="primary ipFamily can not be unset"))
        if families and families[0] != old_families[0]:
            errs.append(GoRendered("FieldValueInvalid", path, rendered=as_ips,
                                   detail="may not change once set"))
        if len(families) == 1 and spec.get("ipFamilyPolicy") != SINGLE_STACK:
            errs.append(invalid("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"),
                                "must be set to 'SingleStack' when releasing the secondary "
                                "ipFamily"))
    elif old_families and families and families[0] != old_families[0]:
        errs.append(GoRendered("FieldValueInvalid", path, rendered=as_ips,
                               detail="may not change once set"))
    return errs


def validate_service_update(svc: dict[str, Any], old_svc: dict[str, Any]) -> list[FieldError]:
    """`ValidateServiceUpdate` without `ValidateObjectMetaUpdate`."""
    spec, old = spec_of(svc), spec_of(old_svc)
    errs = _validate_cluster_ips_update(old, spec)
    errs += _validate_ip_families_update(old, spec)
    errs += _validate_lb_class(old, spec)
    if (needs_health_check(old) and needs_health_check(spec)
            and number(spec.get("healthCheckNodePort")) != number(old.get("healthCheckNodePort"))):
        errs.append(forbidden("spec.healthCheckNodePort", "field is immutable"))
    return errs + validate_service(svc)


def validate_service_status_update(svc: dict[str, Any]) -> list[FieldError]:
    """`ValidateServiceStatusUpdate` without metadata: `ValidateLoadBalancerStatus`.

    Upstream validates neither `status.conditions` nor `ingress[].ports`; neither does this.
    """
    path = "status.loadBalancer.ingress"
    balancer = mapping(mapping(svc.get("status")).get("loadBalancer"))
    ingresses = balancer.get("ingress")
    ingresses = ingresses if isinstance(ingresses, list) else []
    if service_type(spec_of(svc)) != LOAD_BALANCER and ingresses:
        return [forbidden(path, "may only be used when `spec.type` is 'LoadBalancer'")]
    errs: list[FieldError] = []
    for i, raw in enumerate(ingresses):
        ingress, where = mapping(raw), f"{path}[{i}]"
        ip, mode = ingress.get("ip") or "", ingress.get("ipMode")
        if ip:
            errs += is_valid_ip(f"{where}.ip", ip)
        if mode is None:
            if ip:
                errs.append(required(f"{where}.ipMode", "must be specified when `ip` is set"))
        elif not ip:
            errs.append(forbidden(f"{where}.ipMode", "may not be specified when `ip` is not set"))
        elif mode not in IP_MODES:
            errs.append(not_supported(f"{where}.ipMode", mode, IP_MODES))
        hostname = ingress.get("hostname") or ""
        if hostname:
            errs += _invalid_each(f"{where}.hostname", hostname,
                                  is_dns1123_subdomain(text(hostname)))
            if parse_ip(text(hostname)) is not None:
                errs.append(invalid(f"{where}.hostname", hostname,
                                    "must be a DNS name, not an IP address"))
    return errs
