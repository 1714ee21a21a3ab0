"""Golden cases for Service admission: defaults, kube's exact 422 texts, allocation and release.

Expected messages are copied from kube-apiserver's validation, registry and allocator code, so a
difference here is a difference from a real cluster.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import pytest

from lbctl.sandbox.admission.services import ServiceAdmission
from lbctl.sandbox.errors import ApiError, invalid
from tests.sandbox.kube_messages import DNS1123_LABEL, SUBDOMAIN

pytestmark = pytest.mark.unit

IP = "<allocated>"
IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
ONLY_LB = "may only be used when `type` is 'LoadBalancer'"


def service(spec: dict[str, Any], name: str = "myapp-service",
            annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def admission() -> ServiceAdmission:
    return ServiceAdmission(seed=1234)


def counts(adm: ServiceAdmission) -> tuple[int, int, int]:
    return (adm.ip_allocators["IPv4"].used, adm.ip_allocators["IPv6"].used, adm.node_ports.used)


def masked(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with allocated IPs replaced by a marker (they are random, like kube's)."""
    out = copy.deepcopy(spec)
    if out.get("clusterIP") not in (None, "None"):
        out["clusterIP"] = IP
        out["clusterIPs"] = [IP for _ in out["clusterIPs"]]
    return out


def rejection(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


def causes(err: ApiError) -> list[tuple[str, str, str]]:
    return [(c["reason"], c["field"], c["message"]) for c in err.details["causes"]]


# --- the seed example -------------------------------------------------------------------------

SEED_SPEC: dict[str, Any] = {
    "selector": {"app": "myapp"},
    "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30008}],
}


def test_seed_nodeport_without_type_is_refused_exactly_like_kube() -> None:
    adm = admission()
    err = rejection(lambda: adm.create(service(copy.deepcopy(SEED_SPEC))))
    assert err.code == 422
    assert err.reason == "Invalid"
    assert err.message == ("Service \"myapp-service\" is invalid: spec.ports[0].nodePort: "
                           "Forbidden: may not be used when `type` is 'ClusterIP'")
    assert err.details == {"name": "myapp-service", "kind": "Service", "causes": [{
        "reason": "FieldValueForbidden",
        "message": "Forbidden: may not be used when `type` is 'ClusterIP'",
        "field": "spec.ports[0].nodePort"}]}
    assert counts(adm) == (0, 0, 0)


def test_seed_with_type_nodeport_gets_its_nodeport_and_target_port() -> None:
    adm = admission()
    out = adm.create(service({**copy.deepcopy(SEED_SPEC), "type": "NodePort"}))
    assert masked(out["spec"]) == {
        "ports": [{"protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30008}],
        "selector": {"app": "myapp"},
        "clusterIP": IP,
        "clusterIPs": [IP],
        "type": "NodePort",
        "sessionAffinity": "None",
        "externalTrafficPolicy": "Cluster",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "internalTrafficPolicy": "Cluster",
    }
    assert out["status"] == {"loadBalancer": {}}
    assert ipaddress.ip_address(out["spec"]["clusterIP"]) in ipaddress.ip_network("10.96.0.0/12")
    assert adm.node_ports.has(30008)
    assert counts(adm) == (1, 0, 1)


# --- defaulting ---------------------------------------------------------------------------------

DEFAULTS = [
    pytest.param(
        {"ports": [{"port": 80}]},
        {"ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}], "clusterIP": IP,
         "clusterIPs": [IP], "type": "ClusterIP", "sessionAffinity": "None",
         "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
         "internalTrafficPolicy": "Cluster"},
        id="minimal-clusterip"),
    pytest.param(
        {"ports": [{"port": 80, "targetPort": "http", "protocol": "UDP", "name": "web"}],
         "sessionAffinity": "ClientIP"},
        {"ports": [{"name": "web", "protocol": "UDP", "port": 80, "targetPort": "http"}],
         "clusterIP": IP, "clusterIPs": [IP], "type": "ClusterIP",
         "sessionAffinity": "ClientIP",
         "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
         "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
         "internalTrafficPolicy": "Cluster"},
        id="client-ip-affinity-timeout"),
    pytest.param(
        {"ports": [{"port": 80}], "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}},
        {"ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}], "clusterIP": IP,
         "clusterIPs": [IP], "type": "ClusterIP", "sessionAffinity": "None",
         "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
         "internalTrafficPolicy": "Cluster"},
        id="affinity-config-dropped-for-none"),
    pytest.param(
        {"ports": [{"port": 80}], "externalIPs": ["192.0.2.10"]},
        {"ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}], "clusterIP": IP,
         "clusterIPs": [IP], "type": "ClusterIP", "externalIPs": ["192.0.2.10"],
         "sessionAffinity": "None", "externalTrafficPolicy": "Cluster",
         "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
         "internalTrafficPolicy": "Cluster"},
        id="external-ips-get-external-traffic-policy"),
    pytest.param(
        {"clusterIP": "None", "ports": [{"port": 5432}]},
        {"ports": [{"protocol": "TCP", "port": 5432, "targetPort": 5432}],
         "clusterIP": "None", "clusterIPs": ["None"], "type": "ClusterIP",
         "sessionAffinity": "None", "ipFamilies": ["IPv4", "IPv6"],
         "ipFamilyPolicy": "RequireDualStack", "internalTrafficPolicy": "Cluster"},
        id="headless-selectorless-is-dual"),
    pytest.param(
        {"clusterIP": "None", "selector": {"app": "db"}},
        {"selector": {"app": "db"}, "clusterIP": "None", "clusterIPs": ["None"],
         "type": "ClusterIP", "sessionAffinity": "None", "ipFamilies": ["IPv4"],
         "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"},
        id="headless-with-selector-needs-no-ports"),
    pytest.param(
        {"type": "ExternalName", "externalName": "db.example.com."},
        {"type": "ExternalName", "sessionAffinity": "None", "externalName": "db.example.com."},
        id="external-name"),
    pytest.param(
        {"ports": [{"port": 80}], "ipFamilyPolicy": "RequireDualStack"},
        {"ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}], "clusterIP": IP,
         "clusterIPs": [IP, IP], "type": "ClusterIP", "sessionAffinity": "None",
         "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack",
         "internalTrafficPolicy": "Cluster"},
        id="require-dual-stack"),
    pytest.param(
        {"ports": [{"port": 80}], "ipFamilies": ["IPv6"]},
        {"ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}], "clusterIP": IP,
         "clusterIPs": [IP], "type": "ClusterIP", "sessionAffinity": "None",
         "ipFamilies": ["IPv6"], "ipFamilyPolicy": "SingleStack",
         "internalTrafficPolicy": "Cluster"},
        id="ipv6-single-stack"),
    pytest.param(
        {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False,
         "ports": [{"port": 443, "targetPort": 8443}]},
        {"ports": [{"protocol": "TCP", "port": 443, "targetPort": 8443}], "clusterIP": IP,
         "clusterIPs": [IP], "type": "LoadBalancer", "sessionAffinity": "None",
         "externalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"],
         "ipFamilyPolicy": "SingleStack", "allocateLoadBalancerNodePorts": False,
         "internalTrafficPolicy": "Cluster"},
        id="lb-without-node-ports"),
]


@pytest.mark.parametrize(("spec", "expected"), DEFAULTS)
def test_defaults(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    out = admission().create(service(spec))
    assert masked(out["spec"]) == expected


def test_defaults_for_load_balancer() -> None:
    adm = admission()
    out = adm.create(service({"type": "LoadBalancer", "ports": [{"port": 80}],
                              "loadBalancerClass": "example.com/lb"}))
    spec = out["spec"]
    assert spec["allocateLoadBalancerNodePorts"] is True
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["loadBalancerClass"] == "example.com/lb"
    assert 30000 <= spec["ports"][0]["nodePort"] <= 32767
    assert "healthCheckNodePort" not in spec
    assert counts(adm) == (1, 0, 1)


def test_dual_stack_ips_are_one_per_family() -> None:
    out = admission().create(service({"ports": [{"port": 80}],
                                      "ipFamilyPolicy": "PreferDualStack"}))
    v4, v6 = out["spec"]["clusterIPs"]
    assert ipaddress.ip_address(v4) in ipaddress.ip_network("10.96.0.0/12")
    assert ipaddress.ip_address(v6) in ipaddress.ip_network("fd00:10:96::/108")
    assert out["spec"]["clusterIP"] == v4


def test_local_traffic_load_balancer_gets_a_health_check_node_port() -> None:
    adm = admission()
    out = adm.create(service({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                              "ports": [{"port": 80}]}))
    health = out["spec"]["healthCheckNodePort"]
    assert 30000 <= health <= 32767 and health != out["spec"]["ports"][0]["nodePort"]
    assert counts(adm) == (1, 0, 2)


def test_explicit_values_are_honoured() -> None:
    adm = admission()
    out = adm.create(service({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                              "clusterIP": "10.96.0.50", "healthCheckNodePort": 31000,
                              "ports": [{"port": 80, "nodePort": 30080}]}))
    assert out["spec"]["clusterIPs"] == ["10.96.0.50"]
    assert out["spec"]["healthCheckNodePort"] == 31000
    assert out["spec"]["ports"][0]["nodePort"] == 30080
    assert adm.ip_allocators["IPv4"].has("10.96.0.50")
    assert adm.node_ports.allocated() == [30080, 31000]


def test_create_never_mutates_its_input() -> None:
    original = service({"type": "NodePort", "ports": [{"port": 80}]})
    frozen = copy.deepcopy(original)
    admission().create(original)
    assert original == frozen


def test_create_resets_status() -> None:
    svc = service({"type": "LoadBalancer", "ports": [{"port": 80}]})
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
    assert admission().create(svc)["status"] == {"loadBalancer": {}}


# --- 422 golden cases on create ---------------------------------------------------------------

REJECTIONS = [
    pytest.param(
        {"type": "ClusterIP"},
        [("FieldValueRequired", "spec.ports", "Required value")],
        id="ports-required"),
    pytest.param(
        {"ports": [{"port": 0, "targetPort": 8080}, {"port": 70000, "name": "b",
                                                     "targetPort": 1}]},
        [("FieldValueRequired", "spec.ports[0].name", "Required value"),
         ("FieldValueInvalid", "spec.ports[0].port",
          "Invalid value: 0: must be between 1 and 65535, inclusive"),
         ("FieldValueInvalid", "spec.ports[1].port",
          "Invalid value: 70000: must be between 1 and 65535, inclusive")],
        id="port-range-and-names"),
    pytest.param(
        {"ports": [{"port": 80, "name": "http"}, {"port": 81, "name": "http"}]},
        [("FieldValueDuplicate", "spec.ports[1].name", 'Duplicate value: "http"')],
        id="duplicate-port-names"),
    pytest.param(
        {"ports": [{"port": 80, "name": "Web_1"}]},
        [("FieldValueInvalid", "spec.ports[0].name", f'Invalid value: "Web_1": {DNS1123_LABEL}')],
        id="port-name-dns-label"),
    pytest.param(
        {"ports": [{"port": 80, "protocol": "ICMP"}]},
        [("FieldValueNotSupported", "spec.ports[0].protocol",
          'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"')],
        id="protocol"),
    pytest.param(
        {"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]},
        [("FieldValueDuplicate", "spec.ports[1]",
          'Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
          'AppProtocol:(*string)(nil), Port:80, '
          'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')],
        id="duplicate-port-and-protocol"),
    pytest.param(
        {"ports": [{"port": 80, "targetPort": "HTTP--web-server-x"}]},
        [("FieldValueInvalid", "spec.ports[0].targetPort",
          f'Invalid value: "HTTP--web-server-x": {msg}') for msg in (
            "must be no more than 15 characters",
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "must not contain consecutive hyphens")],
        id="target-port-iana-name"),
    pytest.param(
        {"ports": [{"port": 80, "targetPort": 65536}]},
        [("FieldValueInvalid", "spec.ports[0].targetPort",
          "Invalid value: 65536: must be between 1 and 65535, inclusive")],
        id="target-port-number"),
    pytest.param(
        {"ports": [{"port": 80}], "loadBalancerClass": "example.com/lb"},
        [("FieldValueForbidden", "spec.loadBalancerClass", f"Forbidden: {ONLY_LB}")],
        id="lb-class-on-clusterip"),
    pytest.param(
        {"type": "LoadBalancer", "ports": [{"port": 80}], "loadBalancerClass": "a/b/c"},
        [("FieldValueInvalid", "spec.loadBalancerClass",
          "Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric "
          "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
          "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
          "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
          "and '/' (e.g. 'example.com/MyName')")],
        id="lb-class-format"),
    pytest.param(
        {"type": "NodePort", "ports": [{"port": 80}],
         "loadBalancerSourceRanges": ["10.0.0.0/8", "10.0.0.0/33"]},
        [("FieldValueForbidden", "spec.LoadBalancerSourceRanges", f"Forbidden: {ONLY_LB}"),
         ("FieldValueInvalid", "spec.LoadBalancerSourceRanges[1]",
          f'Invalid value: "10.0.0.0/33": {CIDR_MSG}')],
        id="source-ranges"),
    pytest.param(
        {"type": "NodePort", "ports": [{"port": 80}], "allocateLoadBalancerNodePorts": False},
        [("FieldValueForbidden", "spec.allocateLoadBalancerNodePorts", f"Forbidden: {ONLY_LB}")],
        id="allocate-lb-node-ports-only-for-lb"),
    pytest.param(
        {"type": "NodePort", "ports": [{"port": 80}], "healthCheckNodePort": 31000},
        [("FieldValueInvalid", "spec.healthCheckNodePort",
          "Invalid value: 31000: may only be set when `type` is 'LoadBalancer' and "
          "`externalTrafficPolicy` is 'Local'")],
        id="health-check-port-only-for-local-lb"),
    pytest.param(
        {"ports": [{"port": 80}], "externalTrafficPolicy": "Local"},
        [("FieldValueInvalid", "spec.externalTrafficPolicy",
          'Invalid value: "Local": may only be set for externally-accessible services')],
        id="external-traffic-policy-on-internal-service"),
    pytest.param(
        {"type": "NodePort", "ports": [{"port": 80}], "externalTrafficPolicy": "Nearest",
         "internalTrafficPolicy": "Nearest", "trafficDistribution": "Anywhere"},
        [("FieldValueNotSupported", "spec.externalTrafficPolicy",
          'Unsupported value: "Nearest": supported values: "Cluster", "Local"'),
         ("FieldValueNotSupported", "spec.internalTrafficPolicy",
          'Unsupported value: "Nearest": supported values: "Cluster", "Local"'),
         ("FieldValueNotSupported", "spec.trafficDistribution",
          'Unsupported value: "Anywhere": supported values: "PreferClose"')],
        id="traffic-policies"),
    pytest.param(
        {"type": "ExternalName"},
        [("FieldValueRequired", "spec.externalName", "Required value")],
        id="external-name-required"),
    pytest.param(
        {"type": "ExternalName", "externalName": "Not_A_Host", "clusterIP": "10.96.0.9"},
        [("FieldValueForbidden", "spec.clusterIPs",
          "Forbidden: may not be set for ExternalName services"),
         ("FieldValueInvalid", "spec.externalName",
          f'Invalid value: "Not_A_Host": {SUBDOMAIN}')],
        id="external-name-format-and-no-cluster-ip"),
    pytest.param(
        {"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]},
        [("FieldValueInvalid", "spec.clusterIPs[0]",
          'Invalid value: "None": may not be set to \'None\' for NodePort services')],
        id="headless-nodeport"),
    pytest.param(
        {"ports": [{"port": 80}], "externalIPs": ["300.1.1.1", "127.0.0.1", "169.254.1.1"]},
        [("FieldValueInvalid", "spec.externalIPs[0]", f'Invalid value: "300.1.1.1": {IP_MSG}'),
         ("FieldValueInvalid", "spec.externalIPs[1]",
          'Invalid value: "127.0.0.1": may not be in the loopback range '
          "(127.0.0.0/8, ::1/128)"),
         ("FieldValueInvalid", "spec.externalIPs[2]",
          'Invalid value: "169.254.1.1": may not be in the link-local range '
          "(169.254.0.0/16, fe80::/10)")],
        id="external-ips"),
    pytest.param(
        {"ports": [{"port": 80}], "sessionAffinity": "ClientIP",
         "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86401}}},
        [("FieldValueInvalid", "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
          "Invalid value: 86401: must be greater than 0 and less than 86400")],
        id="affinity-timeout"),
    pytest.param(
        {"ports": [{"port": 80}], "sessionAffinity": "Sticky"},
        [("FieldValueNotSupported", "spec.sessionAffinity",
          'Unsupported value: "Sticky": supported values: "ClientIP", "None"')],
        id="affinity-type"),
    pytest.param(
        {"ports": [{"port": 80}], "selector": {"app": "my app"}},
        [("FieldValueInvalid", "spec.selector",
          "Invalid value: \"my app\": a valid label must be an empty string or consist of "
          "alphanumeric characters, '-', '_' or '.', and must start and end with an "
          "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
          "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")],
        id="selector-label-value"),
    pytest.param(
        {"type": "Ingress", "ports": [{"port": 80, "appProtocol": "bad proto"}]},
        [("FieldValueInvalid", "spec.ports[0].appProtocol",
          "Invalid value: \"bad proto\": name part must consist of alphanumeric characters, "
          "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
          "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
          "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
         ("FieldValueNotSupported", "spec.type",
          'Unsupported value: "Ingress": supported values: "ClusterIP", "ExternalName", '
          '"LoadBalancer", "NodePort"')],
        id="type-and-app-protocol"),
    pytest.param(
        {"ports": [{"port": 80}], "clusterIP": "10.96.0.300"},
        [("FieldValueInvalid", "spec.clusterIPs[0]", f'Invalid value: "10.96.0.300": {IP_MSG}')],
        id="cluster-ip-format"),
    pytest.param(
        {"ports": [{"port": 80}], "ipFamilyPolicy": "DualStack"},
        [("FieldValueNotSupported", "spec.ipFamilyPolicy",
          'Unsupported value: "DualStack": supported values: "PreferDualStack", '
          '"RequireDualStack", "SingleStack"')],
        id="ip-family-policy-value"),
    pytest.param(
        {"ports": [{"port": 80}], "clusterIP": "10.96.0.5",
         "clusterIPs": ["10.96.0.5", "10.96.0.6"], "ipFamilyPolicy": "RequireDualStack"},
        [("FieldValueInvalid", "spec.clusterIPs",
          'Invalid value: []string{"10.96.0.5", "10.96.0.6"}: may specify no more than one IP '
          "for each IP family")],
        id="two-ips-same-family"),
    pytest.param(
        {"ports": [{"port": 80}], "ipFamilies": ["IPv4", "IPv6"]},
        [("FieldValueInvalid", "spec.ipFamilyPolicy",
          'Invalid value: "SingleStack": must be \'RequireDualStack\' or \'PreferDualStack\' '
          "when multiple IP families are specified")],
        id="single-stack-with-two-families"),
    pytest.param(
        {"ports": [{"port": 80}], "clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.6"]},
        [("FieldValueInvalid", "spec.clusterIPs",
          'Invalid value: []string{"10.96.0.6"}: first value must match `clusterIP`')],
        id="cluster-ip-and-ips-disagree"),
]


@pytest.mark.parametrize(("spec", "expected"), REJECTIONS)
def test_create_rejections(spec: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    adm = admission()
    err = rejection(lambda: adm.create(service(spec)))
    assert err.code == 422
    assert causes(err) == expected
    rendered = [f"{field}: {message}" for _, field, message in expected]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    assert err.message == f'Service "myapp-service" is invalid: {summary}'
    assert counts(adm) == (0, 0, 0)


def test_annotation_source_ranges_and_topology_annotations() -> None:
    svc = service({"ports": [{"port": 80}]}, annotations={
        "service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8, nope",
        "service.kubernetes.io/topology-mode": "Auto",
        "service.kubernetes.io/topology-aware-hints": "Disabled"})
    err = rejection(lambda: admission().create(svc))
    assert causes(err) == [
        ("FieldValueInvalid", "metadata.annotations[service.kubernetes.io/topology-mode]",
         'Invalid value: "Auto": must match '
         "annotations[service.kubernetes.io/topology-aware-hints] when both are specified"),
        ("FieldValueForbidden",
         "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]",
         f"Forbidden: {ONLY_LB}"),
        ("FieldValueInvalid",
         "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]",
         f'Invalid value: "nope": {CIDR_MSG}'),
    ]


def test_metadata_errors_from_the_caller_come_first_in_the_same_422() -> None:
    adm = admission()
    name_error = invalid("metadata.name", "Bad", "a DNS-1035 label must ...")
    err = rejection(lambda: adm.create(service({"ports": [{"port": 0}]}),
                                       meta_errors=[name_error]))
    assert [c[1] for c in causes(err)] == ["metadata.name", "spec.ports[0].port",
                                           "spec.ports[0].targetPort"]
    assert counts(adm) == (0, 0, 0)


# --- allocation conflicts and atomicity -------------------------------------------------------


def test_taken_node_port_is_refused_and_nothing_leaks() -> None:
    adm = admission()
    adm.create(service({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30008}]}, "a"))
    before = counts(adm)
    err = rejection(lambda: adm.create(service(
        {"type": "NodePort", "ports": [{"port": 81, "name": "x"},
                                       {"port": 80, "name": "y", "nodePort": 30008}]}, "b")))
    assert err.message == ('Service "b" is invalid: spec.ports[1].nodePort: Invalid value: '
                           "30008: provided port is already allocated")
    assert causes(err) == [("FieldValueInvalid", "spec.ports[1].nodePort",
                            "Invalid value: 30008: provided port is already allocated")]
    assert counts(adm) == before


def test_out_of_range_node_port() -> None:
    adm = admission()
    err = rejection(lambda: adm.create(service(
        {"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]})))
    assert err.message == (
        'Service "myapp-service" is invalid: spec.ports[0].nodePort: Invalid value: 8080: '
        "provided port is not in the valid range. The range of valid ports is 30000-32767")
    assert counts(adm) == (0, 0, 0)


@pytest.mark.parametrize(("ip", "detail"), [
    ("10.96.0.5", "failed to allocate IP 10.96.0.5: provided IP is already allocated"),
    ("192.168.0.5", "failed to allocate IP 192.168.0.5: the provided network does not match "
                    "the current range"),
    ("10.96.0.0", "failed to allocate IP 10.96.0.0: provided IP 10.96.0.0 is not in the valid "
                  "range"),
])
def test_cluster_ip_conflicts(ip: str, detail: str) -> None:
    adm = admission()
    adm.create(service({"clusterIP": "10.96.0.5", "ports": [{"port": 80}]}, "first"))
    err = rejection(lambda: adm.create(service({"clusterIP": ip, "ports": [{"port": 80}]})))
    assert err.message == (f'Service "myapp-service" is invalid: spec.clusterIPs: Invalid '
                           f'value: []string{{"{ip}"}}: {detail}')
    assert counts(adm) == (1, 0, 0)


def test_validation_failure_after_allocation_frees_everything() -> None:
    adm = admission()
    err = rejection(lambda: adm.create(service(
        {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ipFamilyPolicy":
         "RequireDualStack", "selector": {"app": "bad value!"},
         "ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "b"}]})))
    assert err.code == 422
    assert counts(adm) == (0, 0, 0)


def test_dual_stack_secondary_failure_frees_the_primary() -> None:
    adm = admission()
    adm.create(service({"clusterIP": "fd00:10:96::10", "ports": [{"port": 80}]}, "v6"))
    err = rejection(lambda: adm.create(service(
        {"clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7", "fd00:10:96::10"],
         "ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]})))
    assert "failed to allocate IP fd00:10:96::10: provided IP is already allocated" in err.message
    assert counts(adm) == (0, 1, 0)


def test_full_node_port_range_is_an_internal_error() -> None:
    adm = ServiceAdmission(node_port_range=(30000, 30001), seed=1)
    adm.create(service({"type": "NodePort", "ports": [{"port": 80, "name": "a"},
                                                      {"port": 81, "name": "b"}]}, "full"))
    err = rejection(lambda: adm.create(service({"type": "NodePort", "ports": [{"port": 80}]})))
    assert (err.code, err.reason) == (500, "InternalError")
    assert err.message == "Internal error occurred: failed to allocate a nodePort: range is full"
    assert counts(adm) == (1, 0, 2)


def test_taken_health_check_port_is_an_internal_error() -> None:
    adm = admission()
    adm.create(service({"type": "NodePort", "ports": [{"port": 80, "nodePort": 31000}]}, "a"))
    err = rejection(lambda: adm.create(service(
        {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000,
         "ports": [{"port": 80}]})))
    assert err.code == 500
    assert err.message == ("Internal error occurred: failed to allocate requested HealthCheck "
                           "NodePort 31000: provided port is already allocated")
    assert counts(adm) == (1, 0, 1)


def test_tcp_and_udp_of_one_port_share_a_node_port() -> None:
    adm = admission()
    out = adm.create(service({"type": "NodePort", "ports": [
        {"name": "dns-udp", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}))
    first, second = (p["nodePort"] for p in out["spec"]["ports"])
    assert first == second
    assert adm.node_ports.used == 1


def test_explicit_shared_node_port_for_mixed_protocols() -> None:
    adm = admission()
    out = adm.create(service({"type": "LoadBalancer", "ports": [
        {"name": "u", "port": 53, "protocol": "UDP", "nodePort": 30053},
        {"name": "t", "port": 53, "protocol": "TCP", "nodePort": 30053}]}))
    assert [p["nodePort"] for p in out["spec"]["ports"]] == [30053, 30053]


def test_one_node_port_for_two_port_numbers_is_refused_like_upstream() -> None:
    err = rejection(lambda: admission().create(service({"type": "NodePort", "ports": [
        {"name": "a", "port": 80, "protocol": "TCP", "nodePort": 30010},
        {"name": "b", "port": 81, "protocol": "UDP", "nodePort": 30010}]})))
    assert causes(err) == [("FieldValueInvalid", "spec.ports[1].nodePort",
                            "Invalid value: 30010: provided port is already allocated")]


def test_many_services_get_unique_values() -> None:
    adm = admission()
    node_ports: list[int] = []
    ips: list[str] = []
    for i in range(2000):
        kind = "NodePort" if i % 2 else "ClusterIP"
        out = adm.create(service({"type": kind, "ports": [{"port": 80}]}, f"svc-{i}"))
        ips.append(out["spec"]["clusterIP"])
        node_ports += [p["nodePort"] for p in out["spec"]["ports"] if "nodePort" in p]
    assert len(set(ips)) == 2000 and len(node_ports) == 1000
    assert len(set(node_ports)) == 1000
    assert counts(adm) == (2000, 0, 1000)


def test_ten_thousand_cluster_ip_services() -> None:
    adm = admission()
    outs = [adm.create(service({"ports": [{"port": 80}]}, f"s{i}")) for i in range(10_000)]
    assert len({o["spec"]["clusterIP"] for o in outs}) == 10_000
    for out in outs:
        adm.release(out)
    assert counts(adm) == (0, 0, 0)


# --- updates ----------------------------------------------------------------------------------


def updated(old: dict[str, Any], **changes: Any) -> dict[str, Any]:
    new = copy.deepcopy(old)
    for key, value in changes.items():
        if value is None:
            new["spec"].pop(key, None)
        else:
            new["spec"][key] = value
    return new


def test_type_changes_keep_then_drop_node_ports() -> None:
    adm = admission()
    cluster = adm.create(service({"ports": [{"port": 80}]}))
    as_node_port = adm.update(cluster, updated(cluster, type="NodePort"))
    node_port = as_node_port["spec"]["ports"][0]["nodePort"]
    assert as_node_port["spec"]["clusterIP"] == cluster["spec"]["clusterIP"]
    as_lb = adm.update(as_node_port, updated(as_node_port, type="LoadBalancer"))
    assert as_lb["spec"]["ports"][0]["nodePort"] == node_port
    assert as_lb["spec"]["allocateLoadBalancerNodePorts"] is True
    assert counts(adm) == (1, 0, 1)
    back = adm.update(as_lb, updated(as_lb, type="ClusterIP"))
    assert "nodePort" not in back["spec"]["ports"][0]
    assert "allocateLoadBalancerNodePorts" not in back["spec"]
    assert "externalTrafficPolicy" not in back["spec"]
    assert not adm.node_ports.has(node_port)
    assert counts(adm) == (1, 0, 0)


def test_put_without_allocated_values_keeps_them() -> None:
    adm = admission()
    created = adm.create(service({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                                  "ports": [{"name": "http", "port": 80}]}))
    resubmitted = service({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                           "ports": [{"name": "http", "port": 80}]})
    resubmitted["status"] = created["status"]
    out = adm.update(created, resubmitted)
    assert out["spec"] == created["spec"]
    assert counts(adm) == (1, 0, 2)


def test_changing_a_node_port_to_a_free_one_releases_the_old() -> None:
    adm = admission()
    old = adm.create(service({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30100}]}))
    new = copy.deepcopy(old)
    new["spec"]["ports"][0]["nodePort"] = 30200
    out = adm.update(old, new)
    assert out["spec"]["ports"][0]["nodePort"] == 30200
    assert adm.node_ports.allocated() == [30200]


def test_changing_a_node_port_to_a_taken_one_changes_nothing() -> None:
    adm = admission()
    adm.create(service({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30200}]}, "a"))
    old = adm.create(service({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30100}]}))
    new = copy.deepcopy(old)
    new["spec"]["ports"][0]["nodePort"] = 30200
    err = rejection(lambda: adm.update(old, new))
    assert err.message == ('Service "myapp-service" is invalid: spec.ports[0].nodePort: '
                           "Invalid value: 30200: provided port is already allocated")
    assert adm.node_ports.allocated() == [30100, 30200]


def test_cluster_ip_is_immutable() -> None:
    adm = admission()
    old = adm.create(service({"clusterIP": "10.96.0.20", "ports": [{"port": 80}]}))
    err = rejection(lambda: adm.update(old, updated(old, clusterIP="10.96.0.21",
                                                    clusterIPs=["10.96.0.21"])))
    assert err.message == ('Service "myapp-service" is invalid: spec.clusterIPs[0]: Invalid '
                           'value: []string{"10.96.0.21"}: may not change once set')
    assert adm.ip_allocators["IPv4"].allocated() == ["10.96.0.20"]


def test_to_external_name_releases_ip_and_node_ports_and_back() -> None:
    adm = admission()
    old = adm.create(service({"type": "NodePort", "ports": [{"port": 80}]}))
    named = adm.update(old, updated(old, type="ExternalName", externalName="example.com"))
    spec = named["spec"]
    for gone in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy",
                 "internalTrafficPolicy", "externalTrafficPolicy"):
        assert gone not in spec
    assert "nodePort" not in spec["ports"][0]
    assert counts(adm) == (0, 0, 0)
    again = adm.update(named, updated(named, type="ClusterIP", externalName=None))
    assert ipaddress.ip_address(again["spec"]["clusterIP"])
    assert again["spec"]["ipFamilyPolicy"] == "SingleStack"
    assert counts(adm) == (1, 0, 0)


def test_load_balancer_class_is_immutable_then_dropped_with_the_type() -> None:
    adm = admission()
    old = adm.create(service({"type": "LoadBalancer", "loadBalancerClass": "x",
                              "ports": [{"port": 80}]}))
    err = rejection(lambda: adm.update(old, updated(old, loadBalancerClass="y")))
    assert causes(err) == [("FieldValueInvalid", "spec.loadBalancerClass",
                            'Invalid value: "y": may not change once set')]
    as_node_port = adm.update(old, updated(old, type="NodePort"))
    assert "loadBalancerClass" not in as_node_port["spec"]
    assert as_node_port["spec"]["ports"] == old["spec"]["ports"]


def test_health_check_port_follows_the_traffic_policy() -> None:
    adm = admission()
    old = adm.create(service({"type": "LoadBalancer", "ports": [{"port": 80}]}))
    local = adm.update(old, updated(old, externalTrafficPolicy="Local"))
    health = local["spec"]["healthCheckNodePort"]
    assert adm.node_ports.has(health)
    err = rejection(lambda: adm.update(local, updated(local, healthCheckNodePort=health + 1)))
    assert causes(err) == [("FieldValueForbidden", "spec.healthCheckNodePort",
                            "Forbidden: field is immutable")]
    cluster = adm.update(local, updated(local, externalTrafficPolicy="Cluster"))
    assert "healthCheckNodePort" not in cluster["spec"]
    assert not adm.node_ports.has(health)
    assert counts(adm) == (1, 0, 1)


def test_allocate_load_balancer_node_ports_false_keeps_explicit_ones() -> None:
    adm = admission()
    out = adm.create(service({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False,
                              "ports": [{"name": "a", "port": 80, "nodePort": 30080},
                                        {"name": "b", "port": 81}]}))
    assert [p.get("nodePort") for p in out["spec"]["ports"]] == [30080, None]
    assert adm.node_ports.allocated() == [30080]


def test_dual_stack_upgrade_and_downgrade() -> None:
    adm = admission()
    single = adm.create(service({"ports": [{"port": 80}]}))
    dual = adm.update(single, updated(single, ipFamilyPolicy="RequireDualStack"))
    assert dual["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
    assert dual["spec"]["clusterIPs"][0] == single["spec"]["clusterIP"]
    assert counts(adm) == (1, 1, 0)
    err = rejection(lambda: adm.update(dual, updated(dual, ipFamilies=["IPv4"],
                                                     clusterIPs=dual["spec"]["clusterIPs"][:1])))
    assert causes(err)[0] == ("FieldValueInvalid", "spec.ipFamilyPolicy",
                              'Invalid value: "RequireDualStack": must be \'SingleStack\' to '
                              "release the secondary cluster IP")
    back = adm.update(dual, updated(dual, ipFamilyPolicy="SingleStack"))
    assert back["spec"]["clusterIPs"] == [single["spec"]["clusterIP"]]
    assert back["spec"]["ipFamilies"] == ["IPv4"]
    assert counts(adm) == (1, 0, 0)


def test_failed_update_keeps_old_allocations_and_frees_new_ones() -> None:
    adm = admission()
    old = adm.create(service({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30100}]}))
    new = copy.deepcopy(old)
    new["spec"]["ports"] = [{"port": 80, "nodePort": 30101}, {"port": 81}]
    new["spec"]["selector"] = {"app": "not valid!"}
    frozen = copy.deepcopy(new)
    rejection(lambda: adm.update(old, new))
    assert new == frozen
    assert adm.node_ports.allocated() == [30100]
    assert counts(adm) == (1, 0, 1)


# --- status -----------------------------------------------------------------------------------


def lb_with_status(adm: ServiceAdmission, ingress: list[dict[str, Any]],
                   kind: str = "LoadBalancer") -> tuple[dict[str, Any], dict[str, Any]]:
    old = adm.create(service({"type": kind, "ports": [{"port": 80}]}))
    new = copy.deepcopy(old)
    new["status"] = {"loadBalancer": {"ingress": ingress}}
    return old, new


def test_status_ingress_ip_gets_ip_mode_vip() -> None:
    adm = admission()
    old, new = lb_with_status(adm, [{"ip": "192.0.2.10"}, {"hostname": "lb.example.com"}])
    out = adm.update_status(old, new)
    assert out["status"] == {"loadBalancer": {"ingress": [
        {"ip": "192.0.2.10", "ipMode": "VIP"}, {"hostname": "lb.example.com"}]}}
    assert out["spec"] == old["spec"]


STATUS_REJECTIONS = [
    pytest.param([{"ip": "999.0.0.1"}],
                 [("FieldValueInvalid", "status.loadBalancer.ingress[0].ip",
                   f'Invalid value: "999.0.0.1": {IP_MSG}')], id="bad-ip"),
    pytest.param([{"hostname": "192.0.2.1"}],
                 [("FieldValueInvalid", "status.loadBalancer.ingress[0].hostname",
                   'Invalid value: "192.0.2.1": must be a DNS name, not an IP address')],
                 id="hostname-is-ip"),
    pytest.param([{"hostname": "LB.example.com"}],
                 [("FieldValueInvalid", "status.loadBalancer.ingress[0].hostname",
                   f'Invalid value: "LB.example.com": {SUBDOMAIN}')],
                 id="hostname-format"),
    pytest.param([{"hostname": "lb.example.com", "ipMode": "Proxy"}],
                 [("FieldValueForbidden", "status.loadBalancer.ingress[0].ipMode",
                   "Forbidden: may not be specified when `ip` is not set")],
                 id="ip-mode-without-ip"),
    pytest.param([{"ip": "192.0.2.1", "ipMode": "Direct"}],
                 [("FieldValueNotSupported", "status.loadBalancer.ingress[0].ipMode",
                   'Unsupported value: "Direct": supported values: "Proxy", "VIP"')],
                 id="ip-mode-value"),
]


@pytest.mark.parametrize(("ingress", "expected"), STATUS_REJECTIONS)
def test_status_rejections(ingress: list[dict[str, Any]],
                           expected: list[tuple[str, str, str]]) -> None:
    adm = admission()
    old, new = lb_with_status(adm, ingress)
    err = rejection(lambda: adm.update_status(old, new))
    assert err.code == 422
    assert causes(err) == expected


def test_status_ingress_only_for_load_balancers() -> None:
    adm = admission()
    old, new = lb_with_status(adm, [{"ip": "192.0.2.1"}], kind="NodePort")
    err = rejection(lambda: adm.update_status(old, new))
    assert err.message == ('Service "myapp-service" is invalid: status.loadBalancer.ingress: '
                           "Forbidden: may only be used when `spec.type` is 'LoadBalancer'")


# --- release and restore ----------------------------------------------------------------------


def test_release_frees_ips_node_ports_and_health_check_port() -> None:
    adm = admission()
    out = adm.create(service({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                              "ipFamilyPolicy": "RequireDualStack",
                              "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}))
    assert counts(adm) == (1, 1, 3)
    adm.release(out)
    assert counts(adm) == (0, 0, 0)
    adm.release(out)  # releasing twice is harmless
    assert counts(adm) == (0, 0, 0)


def test_restore_marks_stored_objects_as_taken() -> None:
    first = admission()
    stored = [first.create(service({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                                    "ports": [{"port": 80}]}, "lb")),
              first.create(service({"clusterIP": "None", "ports": [{"port": 80}]}, "headless")),
              first.create(service({"type": "ExternalName", "externalName": "a.b"}, "name"))]
    second = admission()
    for svc in stored:
        second.restore(svc)
        second.restore(svc)  # repeats are fine
    assert counts(second) == counts(first) == (1, 0, 2)
    taken = stored[0]["spec"]["ports"][0]["nodePort"]
    err = rejection(lambda: second.create(service(
        {"type": "NodePort", "ports": [{"port": 80, "nodePort": taken}]})))
    assert "provided port is already allocated" in err.message


# --- dry run ----------------------------------------------------------------------------------


def test_dry_run_create_answers_but_keeps_nothing() -> None:
    adm = admission()
    out = adm.create(service({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30008}]}),
                     dry_run=True)
    assert out["spec"]["ports"][0]["nodePort"] == 30008
    assert counts(adm) == (0, 0, 0)


def test_dry_run_update_neither_takes_nor_releases() -> None:
    adm = admission()
    old = adm.create(service({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30100}]}))
    new = copy.deepcopy(old)
    new["spec"]["ports"][0]["nodePort"] = 30200
    out = adm.update(old, new, dry_run=True)
    assert out["spec"]["ports"][0]["nodePort"] == 30200
    assert adm.node_ports.allocated() == [30100]
    as_cluster_ip = adm.update(old, updated(old, type="ClusterIP"), dry_run=True)
    assert "nodePort" not in as_cluster_ip["spec"]["ports"][0]
    assert adm.node_ports.allocated() == [30100]
