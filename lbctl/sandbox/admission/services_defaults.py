"""Service defaulting and the registry strategy's field fix-ups, on wire-shaped dicts.

kube-apiserver changes a Service in three places before it validates it, and clients see the
result: `SetDefaults_Service` when the request is decoded (type ClusterIP, protocol TCP, targetPort
= port, the traffic policies, allocateLoadBalancerNodePorts...), the service storage's
`normalizeClusterIPs`/`patchAllocatedValues` (a PUT that omits allocated values keeps them), and the
strategy's `dropTypeDependentFields` (a type change wipes nodePorts, clusterIPs, the health check
port, loadBalancerClass... that no longer apply, so they can be released). `to_wire` finally drops
the zero values Go's `omitempty` would not write and orders fields as kube prints them.

Every function works in place on the caller's private copy of the object and reads only its
arguments, through the typed readers of `services_fields`.
"""

from __future__ import annotations

from typing import Any

from lbctl.sandbox.admission.services_fields import (
    CLUSTER_IP,
    EXTERNAL_NAME,
    HEADLESS,
    LOAD_BALANCER,
    NODE_PORT,
    OTHER_FAMILY,
    REQUIRE_DUAL_STACK,
    SINGLE_STACK,
    cluster_ips,
    externally_accessible,
    ip_families,
    mapping,
    needs_cluster_ip,
    needs_health_check,
    needs_node_port,
    node_ports,
    number,
    ports_of,
    service_type,
    spec_of,
    text,
)

DEFAULT_AFFINITY_TIMEOUT = 10800


# --- SetDefaults_Service --------------------------------------------------------------------


def set_defaults(svc: dict[str, Any]) -> None:
    """`SetDefaults_Service` (pkg/apis/core/v1/defaults.go), run as the request is decoded."""
    spec = svc.get("spec")
    if not isinstance(spec, dict):
        spec = svc["spec"] = {}
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client = mapping(mapping(spec.get("sessionAffinityConfig")).get("clientIP"))
        if client.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {
                "clientIP": {"timeoutSeconds": DEFAULT_AFFINITY_TIMEOUT}}
    if not spec.get("type"):
        spec["type"] = CLUSTER_IP
    if isinstance(spec.get("ports"), list):
        spec["ports"] = ports_of(spec)
    for port in ports_of(spec):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        target = port.get("targetPort")
        if target is None or target == "" or (number(target) == 0 and isinstance(target, int)):
            port["targetPort"] = port.get("port", 0)
    if externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    kind = service_type(spec)
    if spec.get("internalTrafficPolicy") is None and kind in (NODE_PORT, LOAD_BALANCER,
                                                               CLUSTER_IP):
        spec["internalTrafficPolicy"] = "Cluster"
    if kind == LOAD_BALANCER:
        if spec.get("allocateLoadBalancerNodePorts") is None:
            spec["allocateLoadBalancerNodePorts"] = True
        for ingress in mapping(mapping(svc.get("status")).get("loadBalancer")).get("ingress") or []:
            if isinstance(ingress, dict) and ingress.get("ip") and ingress.get("ipMode") is None:
                ingress["ipMode"] = "VIP"


# --- service storage: normalizeClusterIPs, patchAllocatedValues, defaultOnRead --------------


def normalize_cluster_ips(spec: dict[str, Any], old: dict[str, Any] | None) -> None:
    """`normalizeClusterIPs`: keep clusterIP and clusterIPs in step for one-field clients."""
    ip, ips = text(spec.get("clusterIP")), cluster_ips(spec)
    if old is None:
        if ip and not ips:
            spec["clusterIPs"] = [ip]
        return
    old_ip, old_ips = text(old.get("clusterIP")), cluster_ips(old)
    if old_ips and not ips and old_ip == ip:
        spec["clusterIPs"] = list(old_ips)
    if old_ip != ip:
        same = cluster_ips(spec) == old_ips
        if old_ip and not ip:
            if same:
                spec.pop("clusterIPs", None)
        elif same:
            spec["clusterIPs"] = [ip]


def patch_allocated_values(spec: dict[str, Any], old: dict[str, Any]) -> None:
    """`patchAllocatedValues`: a PUT that omits values kube allocated keeps them."""
    if needs_cluster_ip(old) and needs_cluster_ip(spec):
        if not text(spec.get("clusterIP")) and "clusterIP" in old:
            spec["clusterIP"] = old["clusterIP"]
        if not cluster_ips(spec) and cluster_ips(old):
            spec["clusterIPs"] = list(cluster_ips(old))
    if needs_node_port(old) and needs_node_port(spec):
        used = set(node_ports(old)) & set(node_ports(spec))
        by_name = {text(p.get("name")): number(p.get("nodePort")) for p in ports_of(old)}
        for port in ports_of(spec):
            if number(port.get("nodePort")) == 0:
                previous = by_name.get(text(port.get("name")), 0)
                if previous and previous not in used:
                    port["nodePort"] = previous
    if (needs_health_check(old) and needs_health_check(spec)
            and number(spec.get("healthCheckNodePort")) == 0
            and number(old.get("healthCheckNodePort"))):
        spec["healthCheckNodePort"] = old["healthCheckNodePort"]


def default_ip_families_on_read(spec: dict[str, Any], primary: str) -> None:
    """`defaultOnReadIPFamilies`: fill ipFamilies/ipFamilyPolicy on objects stored without them."""
    if not needs_cluster_ip(spec) or ip_families(spec):
        return
    if text(spec.get("clusterIP")) == HEADLESS:
        if not mapping(spec.get("selector")):
            spec["ipFamilyPolicy"] = REQUIRE_DUAL_STACK
            spec["ipFamilies"] = [primary, OTHER_FAMILY[primary]]
        else:
            spec["ipFamilyPolicy"], spec["ipFamilies"] = SINGLE_STACK, [primary]
        return
    families = ["IPv6" if ":" in ip else "IPv4" for ip in cluster_ips(spec)]
    if families:
        spec["ipFamilies"] = families
        spec["ipFamilyPolicy"] = SINGLE_STACK if len(families) == 1 else REQUIRE_DUAL_STACK


# --- strategy: dropTypeDependentFields ------------------------------------------------------


def drop_type_dependent_fields(svc: dict[str, Any], old_svc: dict[str, Any]) -> None:
    """`dropTypeDependentFields`: wipe what the new type cannot use, unless the user changed it.

    The values wiped here were allocated from pools; the allocation step releases them.
    """
    spec, old = svc["spec"], spec_of(old_svc)
    if needs_cluster_ip(old) and not needs_cluster_ip(spec):
        if (text(old.get("clusterIP")) == text(spec.get("clusterIP"))
                and cluster_ips(old) == cluster_ips(spec)):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if ip_families(old) == ip_families(spec):
            spec.pop("ipFamilies", None)
        if text(old.get("ipFamilyPolicy")) == text(spec.get("ipFamilyPolicy")):
            spec.pop("ipFamilyPolicy", None)
    if (needs_node_port(old) and not needs_node_port(spec)
            and set(node_ports(spec)) <= set(node_ports(old))):
        for port in ports_of(spec):
            port.pop("nodePort", None)
    if (needs_health_check(old) and not needs_health_check(spec)
            and number(old.get("healthCheckNodePort")) == number(spec.get("healthCheckNodePort"))):
        spec.pop("healthCheckNodePort", None)
    was_lb, is_lb = service_type(old) == LOAD_BALANCER, service_type(spec) == LOAD_BALANCER
    if was_lb and not is_lb:
        before, after = old.get("allocateLoadBalancerNodePorts"), spec.get(
            "allocateLoadBalancerNodePorts")
        if before is not None and before == after:
            spec.pop("allocateLoadBalancerNodePorts", None)
        if old.get("loadBalancerClass") == spec.get("loadBalancerClass"):
            spec.pop("loadBalancerClass", None)
    if (externally_accessible(old) and not externally_accessible(spec)
            and text(old.get("externalTrafficPolicy")) == text(spec.get("externalTrafficPolicy"))):
        spec.pop("externalTrafficPolicy", None)
    if not is_lb:
        status = svc.get("status")
        if isinstance(status, dict):
            status["loadBalancer"] = {}


# --- writing the object back as kube-apiserver would ----------------------------------------

_SPEC_ORDER = (
    "ports", "selector", "clusterIP", "clusterIPs", "type", "externalIPs", "sessionAffinity",
    "loadBalancerIP", "loadBalancerSourceRanges", "externalName", "externalTrafficPolicy",
    "healthCheckNodePort", "publishNotReadyAddresses", "sessionAffinityConfig", "ipFamilies",
    "ipFamilyPolicy", "allocateLoadBalancerNodePorts", "loadBalancerClass",
    "internalTrafficPolicy", "trafficDistribution")
_SPEC_POINTERS = frozenset({
    "sessionAffinityConfig", "ipFamilyPolicy", "allocateLoadBalancerNodePorts",
    "loadBalancerClass", "internalTrafficPolicy", "trafficDistribution"})
_PORT_ORDER = ("name", "protocol", "appProtocol", "port", "targetPort", "nodePort")
_PORT_OMIT_ZERO = frozenset({"name", "protocol", "nodePort"})
_INGRESS_OMIT_ZERO = frozenset({"ip", "hostname", "ports"})


def _is_zero(value: Any) -> bool:
    if value is None or value is False:
        return True
    if isinstance(value, bool):
        return False
    return value in ("", 0) or (isinstance(value, list | dict) and not value)


def _ordered(obj: dict[str, Any], order: tuple[str, ...], omit_zero: frozenset[str] | None,
             pointers: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Known keys in Go struct order, then unknown ones; drop what `omitempty` drops."""
    out: dict[str, Any] = {}
    for key in (*[k for k in order if k in obj], *[k for k in obj if k not in order]):
        value = obj[key]
        if value is None:
            continue
        zero_omitted = omit_zero is None or key in omit_zero
        if key not in pointers and zero_omitted and key in order and _is_zero(value):
            continue
        out[key] = value
    return out


def to_wire(svc: dict[str, Any]) -> dict[str, Any]:
    """The object as kube-apiserver stores and prints it (zero values omitted, kube's order).

    Also `defaultOnReadInternalTrafficPolicy`: ExternalName Services show no
    internalTrafficPolicy.
    """
    spec = spec_of(svc)
    if service_type(spec) == EXTERNAL_NAME:
        spec.pop("internalTrafficPolicy", None)
    if isinstance(spec.get("ports"), list):
        spec["ports"] = [_ordered(p, _PORT_ORDER, _PORT_OMIT_ZERO, frozenset({"appProtocol"}))
                         for p in ports_of(spec)]
    svc["spec"] = _ordered(spec, _SPEC_ORDER, None, _SPEC_POINTERS)
    status = mapping(svc.get("status"))
    balancer = mapping(status.get("loadBalancer"))
    ingress = balancer.get("ingress")
    if isinstance(ingress, list):
        balancer["ingress"] = [
            _ordered(i, ("ip", "hostname", "ipMode", "ports"), _INGRESS_OMIT_ZERO,
                     frozenset({"ipMode"})) if isinstance(i, dict) else i for i in ingress]
        if not balancer["ingress"]:
            del balancer["ingress"]
    status["loadBalancer"] = balancer
    if not status.get("conditions"):
        status.pop("conditions", None)
    svc["status"] = {"loadBalancer": balancer, **{k: v for k, v in status.items()
                                                   if k != "loadBalancer"}}
    return svc
