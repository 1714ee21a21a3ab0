"""Service admission end to end, through the official client: the seed's examples, nodePort
allocation, type changes and the rules a LoadBalancer controller relies on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.conftest import svc

pytestmark = pytest.mark.integration

SEED = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "myapp-service"},
        "spec": {"selector": {"app": "front-end"}, "ports": [
            {"protocol": "TCP", "port": 80, "nodePort": 30008, "targetPort": 8080}]}}


def _refused(call: Any, *args: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as info:
        call(*args)
    assert info.value.status == 422
    body: dict[str, Any] = json.loads(info.value.body)
    return body


def test_seed_yaml_as_written_is_refused(core: client.CoreV1Api, ns: str) -> None:
    status = _refused(core.create_namespaced_service, ns, SEED)
    assert status["message"] == ('Service "myapp-service" is invalid: spec.ports[0].nodePort: '
                                 "Forbidden: may not be used when `type` is 'ClusterIP'")
    assert status["details"]["causes"] == [{
        "reason": "FieldValueForbidden", "field": "spec.ports[0].nodePort",
        "message": "Forbidden: may not be used when `type` is 'ClusterIP'"}]


def test_seed_yaml_as_node_port(core: client.CoreV1Api, ns: str) -> None:
    body = json.loads(json.dumps(SEED))
    body["spec"]["type"] = "NodePort"
    out = core.create_namespaced_service(ns, body)
    port = out.spec.ports[0]
    assert (port.port, port.node_port, port.target_port, port.protocol) == (80, 30008, 8080,
                                                                          "TCP")
    again = json.loads(json.dumps(body))
    again["metadata"]["name"] = "second"
    status = _refused(core.create_namespaced_service, ns, again)
    assert "spec.ports[0].nodePort: Invalid value: 30008: provided port is already allocated" \
        in status["message"]


def test_defaults(core: client.CoreV1Api, ns: str) -> None:
    out = core.create_namespaced_service(ns, {"metadata": {"name": "d"},
                                              "spec": {"ports": [{"port": 80}]}})
    assert out.spec.type == "ClusterIP"
    assert out.spec.ports[0].protocol == "TCP"
    assert out.spec.ports[0].target_port == 80
    assert out.spec.session_affinity == "None"
    assert out.spec.cluster_ip.startswith("10.")
    assert out.spec.cluster_ips == [out.spec.cluster_ip]
    assert out.spec.ip_families == ["IPv4"]


def test_load_balancer_gets_node_ports_and_health_check_port(core: client.CoreV1Api,
                                                             ns: str) -> None:
    out = core.create_namespaced_service(ns, svc("lb", type="LoadBalancer",
                                                 externalTrafficPolicy="Local"))
    assert 30000 <= out.spec.ports[0].node_port <= 32767
    assert 30000 <= out.spec.health_check_node_port <= 32767
    assert out.spec.allocate_load_balancer_node_ports is True
    back = core.patch_namespaced_service("lb", ns, {"spec": {"externalTrafficPolicy": "Cluster"}})
    assert back.spec.health_check_node_port is None


def test_type_changes_keep_and_drop_node_ports(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_service(ns, svc("t"))
    as_np = core.patch_namespaced_service("t", ns, {"spec": {"type": "NodePort"}})
    node_port = as_np.spec.ports[0].node_port
    as_lb = core.patch_namespaced_service("t", ns, {"spec": {
        "type": "LoadBalancer", "loadBalancerClass": "lbctl.io/baremetal"}})
    assert as_lb.spec.ports[0].node_port == node_port
    status = _refused(core.patch_namespaced_service, "t", ns,
                      {"spec": {"loadBalancerClass": "other.io/x"}})
    assert "spec.loadBalancerClass" in status["message"]
    as_cip = core.patch_namespaced_service("t", ns, {"spec": {"type": "ClusterIP"}})
    assert as_cip.spec.ports[0].node_port is None
    assert as_cip.spec.load_balancer_class is None
    # The released port can be taken by someone else now.
    core.create_namespaced_service(ns, svc("taker", type="NodePort", ports=[
        {"port": 80, "nodePort": node_port}]))


def test_allocate_load_balancer_node_ports_false(core: client.CoreV1Api, ns: str) -> None:
    out = core.create_namespaced_service(ns, svc("nonp", type="LoadBalancer",
                                                 allocateLoadBalancerNodePorts=False))
    assert out.spec.ports[0].node_port is None


def test_external_name(core: client.CoreV1Api, ns: str) -> None:
    out = core.create_namespaced_service(ns, {"metadata": {"name": "ext"}, "spec": {
        "type": "ExternalName", "externalName": "db.example.com"}})
    assert out.spec.cluster_ip is None
    status = _refused(core.create_namespaced_service, ns, {"metadata": {"name": "ext2"},
                                                           "spec": {"type": "ExternalName"}})
    assert "spec.externalName" in status["message"]


def test_load_balancer_class_only_for_load_balancers(core: client.CoreV1Api, ns: str) -> None:
    status = _refused(core.create_namespaced_service, ns,
                      svc("c", loadBalancerClass="lbctl.io/baremetal"))
    assert "spec.loadBalancerClass: Forbidden" in status["message"]


def test_port_names_required_and_unique(core: client.CoreV1Api, ns: str) -> None:
    status = _refused(core.create_namespaced_service, ns, svc("p", ports=[
        {"port": 80}, {"port": 443, "name": "https"}, {"port": 8443, "name": "https"}]))
    fields = [c["field"] for c in status["details"]["causes"]]
    assert "spec.ports[0].name" in fields
    assert "spec.ports[2].name" in fields


def test_mixed_protocols_share_a_node_port(core: client.CoreV1Api, ns: str) -> None:
    out = core.create_namespaced_service(ns, svc("dns", type="LoadBalancer", ports=[
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        {"name": "dns-udp", "port": 53, "protocol": "UDP"}]))
    assert {p.protocol for p in out.spec.ports} == {"TCP", "UDP"}


def test_status_ingress_validation(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_service(ns, svc("s", type="LoadBalancer"))
    status = _refused(core.patch_namespaced_service_status, "s", ns, {
        "status": {"loadBalancer": {"ingress": [{"ip": "not-an-ip"}]}}})
    assert "status.loadBalancer.ingress[0].ip" in status["message"]
    status = _refused(core.patch_namespaced_service_status, "s", ns, {
        "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com",
                                                 "ipMode": "VIP"}]}}})
    assert "ipMode" in status["message"]


def test_node_provider_id_may_only_change_from_empty(core: client.CoreV1Api) -> None:
    core.create_node({"metadata": {"name": "pid-node"}})
    core.patch_node("pid-node", {"spec": {"providerID": "aws:///us-east-1a/i-1"}})
    with pytest.raises(ApiException) as info:
        core.patch_node("pid-node", {"spec": {"providerID": "aws:///us-east-1a/i-2"}})
    assert info.value.status == 422
    assert ('spec.providerID: Forbidden: node updates may not change providerID except from "" '
            "to valid") in json.loads(info.value.body)["message"]
    core.delete_node("pid-node")
