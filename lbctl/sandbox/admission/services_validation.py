"""Service validation: `ValidateService`, `ValidateServiceUpdate`, `ValidateServiceStatusUpdate`.

A port of `pkg/apis/core/validation/validation.go` for the Service spec and status (metadata is
validated by the caller). Checks run in upstream's order and keep upstream's field paths and
texts, including its quirks (`spec.LoadBalancerSourceRanges` with a capital L, duplicate ports
reported as a Go struct), because users and clients compare 422 answers with a real cluster's.
This module holds the entry points and the checks of the type, session affinity, ExternalName,
load balancer and traffic policy fields; ports are `services_port_validation`, cluster IPs, IP
families and external IPs `services_ip_validation`.

Each function takes wire-shaped dicts that have already been defaulted and returns every problem
as a list of `FieldError`s; nothing here raises or mutates.
"""

from __future__ import annotations

from typing import Any

from lbctl.sandbox.admission.meta import invalid_each, required_one_of, validate_labels
from lbctl.sandbox.admission.services_fields import (
    CLUSTER_IP,
    EXTERNAL_NAME,
    HEADLESS,
    LB_SOURCE_RANGES_ANNOTATION,
    LOAD_BALANCER,
    NODE_PORT,
    annotations_of,
    externally_accessible,
    is_headless,
    mapping,
    needs_health_check,
    number,
    ports_of,
    service_type,
    spec_of,
    text,
)
from lbctl.sandbox.admission.services_ip_validation import (
    validate_cluster_ips_related,
    validate_external_ips,
    validate_ip_update,
)
from lbctl.sandbox.admission.services_port_validation import (
    validate_port_uniqueness,
    validate_service_ports,
)
from lbctl.sandbox.errors import FieldError, forbidden, invalid, not_supported, required
from lbctl.sandbox.name_formats import (
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_cidr,
    is_valid_ip,
    is_valid_port_num,
    parse_ip,
)

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
AFFINITIES = ["ClientIP", "None"]
TRAFFIC_POLICIES = ["Cluster", "Local"]
TRAFFIC_DISTRIBUTIONS = ["PreferClose"]  # 1.33: PreferSameZone/Node are behind an alpha gate
IP_MODES = ["Proxy", "VIP"]
MAX_AFFINITY_TIMEOUT = 86400
_ONLY_LB = "may only be used when `type` is 'LoadBalancer'"
_TOPOLOGY_MODE = "service.kubernetes.io/topology-mode"
_TOPOLOGY_HINTS = "service.kubernetes.io/topology-aware-hints"


def _validate_session_affinity(spec: dict[str, Any]) -> list[FieldError]:
    affinity = spec.get("sessionAffinity")
    errs = required_one_of("spec.sessionAffinity", affinity, AFFINITIES)
    if affinity == "ClientIP":
        errs += _validate_client_ip_affinity(spec.get("sessionAffinityConfig"),
                                             "spec.sessionAffinityConfig")
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        errs.append(forbidden("spec.sessionAffinityConfig",
                              "must not be set when session affinity is None"))
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


def _validate_external_name(spec: dict[str, Any]) -> list[FieldError]:
    """An ExternalName Service has no cluster IP fields, and a DNS name to point at."""
    errs: list[FieldError] = []
    for key in ("clusterIPs", "ipFamilies"):
        if strings_present(spec.get(key)):
            errs.append(forbidden(f"spec.{key}", "may not be set for ExternalName services"))
    if spec.get("ipFamilyPolicy") is not None:
        errs.append(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
    cname = text(spec.get("externalName")).removesuffix(".")
    if cname:
        errs += invalid_each("spec.externalName", cname, is_dns1123_subdomain(cname))
    else:
        errs.append(required("spec.externalName"))
    return errs


def strings_present(value: Any) -> bool:
    return isinstance(value, list) and bool(value)


def _validate_lb_class(old: dict[str, Any] | None, spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    path, lb_class = "spec.loadBalancerClass", spec.get("loadBalancerClass")
    is_lb = service_type(spec) == LOAD_BALANCER
    if (old is not None and is_lb and service_type(old) == LOAD_BALANCER
            and old.get("loadBalancerClass") != lb_class):
        errs.append(invalid(path, lb_class, "may not change once set"))
    if lb_class is not None:
        if is_lb:
            errs += invalid_each(path, lb_class, is_qualified_name(text(lb_class)))
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
    else:
        errs += required_one_of("spec.externalTrafficPolicy", policy, TRAFFIC_POLICIES)
    health_port = spec.get("healthCheckNodePort") or 0
    if not needs_health_check(spec):
        if health_port:
            errs.append(invalid("spec.healthCheckNodePort", health_port,
                                "may only be set when `type` is 'LoadBalancer' and "
                                "`externalTrafficPolicy` is 'Local'"))
    elif not health_port:
        errs.append(required("spec.healthCheckNodePort"))
    else:
        errs += invalid_each("spec.healthCheckNodePort", health_port,
                             is_valid_port_num(health_port))
    return errs


def _validate_source_ranges(svc: dict[str, Any], spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    is_lb = service_type(spec) == LOAD_BALANCER
    ranges = spec.get("loadBalancerSourceRanges")
    annotations = annotations_of(svc)
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
    annotations = annotations_of(svc)
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
        errs += _validate_external_name(spec)
    errs += validate_service_ports(ports)
    if isinstance(spec.get("selector"), dict):
        errs += validate_labels({str(k): text(v) for k, v in spec["selector"].items()},
                                "spec.selector")
    errs += _validate_session_affinity(spec)
    errs += validate_cluster_ips_related(svc)
    errs += validate_external_ips(spec)
    errs += required_one_of("spec.type", kind, SERVICE_TYPES)
    errs += validate_port_uniqueness(kind, ports)
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


def validate_service_update(svc: dict[str, Any], old_svc: dict[str, Any]) -> list[FieldError]:
    """`ValidateServiceUpdate` without `ValidateObjectMetaUpdate`."""
    spec, old = spec_of(svc), spec_of(old_svc)
    errs = validate_ip_update(old, spec)
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
            errs += invalid_each(f"{where}.hostname", hostname,
                                 is_dns1123_subdomain(text(hostname)))
            if parse_ip(text(hostname)) is not None:
                errs.append(invalid(f"{where}.hostname", hostname,
                                    "must be a DNS name, not an IP address"))
    return errs
