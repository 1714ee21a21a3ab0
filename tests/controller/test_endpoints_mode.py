"""The endpoints target mode, pure: which mode a Service gets, which pods a spec names, what
EndpointSlices decode to, and how providers without the mode refuse a Service without nodePorts
(naming `spec.allocateLoadBalancerNodePorts`, before any cloud call)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from lbctl.controller.endpoints import endpoints_for, target_mode
from lbctl.controller.records import (
    EndpointSliceView,
    SliceEndpoint,
    endpoint_slice_view,
    node_view,
    service_view,
)
from lbctl.controller.spec_builder import build_spec
from providers.aws.provider import CAPABILITIES as AWS
from providers.azure.provider import CAPABILITIES as AZURE
from providers.baremetal.provider import CAPABILITIES as BAREMETAL
from providers.errors import PermanentError
from providers.gcp.provider import CAPABILITIES as GCP
from providers.interface import Capabilities, check_capabilities
from providers.spec import Endpoint, HealthCheck
from tests.controller.test_spec_builder import CONFIG, GOLDEN, NODES, service

pytestmark = pytest.mark.unit

NO_NODE_PORTS = service(allocateLoadBalancerNodePorts=False, ports=[
    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "web"},
    {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 5353}],
    externalTrafficPolicy="Local", healthCheckNodePort=31999)


def slice_(name: str, endpoints: list[Any], ports: list[tuple[str, str, int]],
           service_name: str = "web", address_type: str = "IPv4") -> dict[str, Any]:
    return {"metadata": {"namespace": "shop", "name": name,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": address_type, "endpoints": endpoints,
            "ports": [{"name": n, "protocol": p, "port": port} for n, p, port in ports]}


def ep(ip: str, pod: str, node: str = "n1", **conditions: bool) -> dict[str, Any]:
    return {"addresses": [ip], "nodeName": node, "conditions": conditions,
            "targetRef": {"kind": "Pod", "namespace": "shop", "name": pod}}


PORTS = [("http", "TCP", 8080), ("dns", "UDP", 5353)]
SLICES = [
    slice_("web-a", [ep("10.1.0.2", "web-2", "n2", ready=True),
                     ep("10.1.0.1", "web-1", ready=True),
                     ep("10.1.0.9", "web-9", ready=False, serving=True, terminating=True)],
           PORTS),
    slice_("web-b", [ep("10.1.0.1", "web-1", ready=True)], PORTS),  # moving: counted once
    slice_("web-v6", [ep("fd00::1", "web-1")], PORTS, address_type="IPv6"),
    slice_("other", [ep("10.9.0.1", "other-1")], PORTS, service_name="other"),
]


def views(raw: list[dict[str, Any]], service_name: str = "web") -> list[EndpointSliceView]:
    return [v for v in map(endpoint_slice_view, raw) if v.service == service_name]


# -- records ---------------------------------------------------------------------------------
def test_slices_decode_with_the_apis_defaults_and_survive_nonsense() -> None:
    got = endpoint_slice_view(slice_("s", [
        {"addresses": ["10.0.0.1"]},  # no conditions: ready, serving, not terminating
        {"addresses": ["10.0.0.2"], "conditions": {"ready": False}},  # serving follows ready
        {"addresses": []}, "nonsense", {"addresses": ["10.0.0.3", "10.0.0.4"],
                                        "targetRef": {"kind": "Node", "name": "x"}}],
        [("http", "TCP", 8080)]))
    assert got.service_key == "shop/web" and got.ports == (("http", "TCP", 8080),)
    assert got.endpoints == (SliceEndpoint("10.0.0.1"),
                             SliceEndpoint("10.0.0.2", ready=False, serving=False),
                             SliceEndpoint("10.0.0.3"))
    empty = endpoint_slice_view({"metadata": None, "ports": [{"port": "x"}, 7],
                                 "endpoints": None})
    assert (empty.service, empty.ports, empty.endpoints) == ("", (), ())


# -- the mode --------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "default", "want"), [
    ({}, "nodePort", "nodePort"),
    ({}, "endpoints", "endpoints"),
    ({"annotations": {"lbctl.io/target-mode": "endpoints"}}, "nodePort", "endpoints"),
    ({"annotations": {"lbctl.io/target-mode": " nodePort "}}, "endpoints", "nodePort"),
    ({"allocateLoadBalancerNodePorts": False, "ports": [{"port": 80}]}, "nodePort",
     "endpoints"),
    ({"ports": [{"port": 80, "nodePort": 30080}, {"port": 81}]}, "nodePort", "endpoints"),
    ({"annotations": {"lbctl.io/target-mode": "nodePort"}, "ports": [{"port": 80}]},
     "endpoints", "nodePort"),
])
def test_target_mode(spec: dict[str, Any], default: str, want: str) -> None:
    assert target_mode(service_view(service(**spec)), default) == want


def test_a_bad_target_mode_names_the_annotation() -> None:
    with pytest.raises(PermanentError) as err:
        target_mode(service_view(service(annotations={"lbctl.io/target-mode": "pods"})))
    assert err.value.field == "metadata.annotations[lbctl.io/target-mode]"
    assert "'pods' must be one of nodePort, endpoints" in str(err.value)


# -- which endpoints -------------------------------------------------------------------------
def test_ready_endpoints_per_port_matched_by_name_and_protocol() -> None:
    got = endpoints_for(service_view(NO_NODE_PORTS), views(SLICES))
    assert got == (
        Endpoint(80, "TCP", "10.1.0.1", 8080, "n1", "web-1"),
        Endpoint(80, "TCP", "10.1.0.2", 8080, "n2", "web-2"),
        Endpoint(53, "UDP", "10.1.0.1", 5353, "n1", "web-1"),
        Endpoint(53, "UDP", "10.1.0.2", 5353, "n2", "web-2"))


def test_serving_and_terminating_only_when_none_is_ready_as_kube_proxy() -> None:
    raw = [slice_("web-a", [ep("10.1.0.1", "web-1", ready=False, serving=False,
                               terminating=True),
                            ep("10.1.0.2", "web-2", ready=False, serving=True, terminating=True),
                            ep("10.1.0.3", "web-3", ready=False, serving=False)],
                  [("http", "TCP", 8080)])]
    got = endpoints_for(service_view(NO_NODE_PORTS), views(raw))
    assert [e.name for e in got] == ["web-2"]
    raw[0]["endpoints"].append(ep("10.1.0.4", "web-4", ready=True))
    assert [e.name for e in endpoints_for(service_view(NO_NODE_PORTS), views(raw))] == ["web-4"]


def test_a_port_the_slices_do_not_name_gets_no_endpoint() -> None:
    raw = [slice_("web-a", [ep("10.1.0.1", "web-1")], [("metrics", "TCP", 9090),
                                                        ("http", "UDP", 8080)])]
    assert endpoints_for(service_view(NO_NODE_PORTS), views(raw)) == ()


def test_dual_stack_service_takes_both_families() -> None:
    svc = service_view({**NO_NODE_PORTS, "spec": {**NO_NODE_PORTS["spec"],
                                                  "ipFamilies": ["IPv4", "IPv6"]}})
    assert "fd00::1" in {e.address for e in endpoints_for(svc, views(SLICES))}


# -- the spec --------------------------------------------------------------------------------
def test_golden_endpoints_mode() -> None:
    """No node targets, a TCP check of each pod (the Local policy's healthCheckNodePort means
    nothing without a node hop), the endpoints in a stable order whatever the slices' order."""
    nodes = [node_view(n) for n in NODES]
    spec = build_spec(service_view(NO_NODE_PORTS), nodes, CONFIG, slices=views(SLICES))
    again = build_spec(service_view(NO_NODE_PORTS), list(reversed(nodes)), CONFIG,
                       slices=list(reversed(views(SLICES))))
    assert spec == again
    assert (spec.target_mode, spec.targets, spec.health_check) == (
        "endpoints", (), HealthCheck("TCP", None))
    got = spec.to_json()
    path = GOLDEN / "spec-endpoints-mode.json"
    if os.environ.get("LBCTL_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(path.read_text())


def test_nodeport_mode_ignores_the_slices() -> None:
    spec = build_spec(service_view(service()), [node_view(n) for n in NODES], CONFIG,
                      slices=views(SLICES))
    assert (spec.target_mode, spec.endpoints) == ("nodePort", ())
    assert [t.node for t in spec.targets] == ["kept", "n1", "n2"]


def test_the_providers_default_mode_reaches_the_spec() -> None:
    spec = build_spec(service_view(service()), [], CONFIG, default_target_mode="endpoints")
    assert (spec.target_mode, spec.targets) == ("endpoints", ())


# -- providers that need nodePorts -------------------------------------------------------------
@pytest.mark.parametrize("caps", [AWS, GCP, AZURE, Capabilities()], ids=["aws", "gcp", "azure",
                                                                         "default"])
def test_providers_without_the_mode_refuse_a_service_without_node_ports(
        caps: Capabilities) -> None:
    spec = build_spec(service_view(NO_NODE_PORTS), [], CONFIG)
    with pytest.raises(PermanentError) as err:
        check_capabilities(caps, spec)
    assert err.value.field == "spec.allocateLoadBalancerNodePorts"
    assert str(err.value) == (
        "spec.allocateLoadBalancerNodePorts: spec.ports[0], spec.ports[1] have no nodePort: "
        "this provider's balancers send traffic to each node's nodePort; set "
        "spec.allocateLoadBalancerNodePorts to true (or remove it)")


def test_providers_without_the_mode_refuse_the_annotation_by_name() -> None:
    spec = build_spec(service_view(service(annotations={"lbctl.io/target-mode": "endpoints"})),
                      [], CONFIG)
    with pytest.raises(PermanentError) as err:
        check_capabilities(AWS, spec)
    assert err.value.field == "metadata.annotations[lbctl.io/target-mode]"


def test_baremetal_takes_both_modes_but_nodeport_mode_needs_node_ports() -> None:
    check_capabilities(BAREMETAL, build_spec(service_view(NO_NODE_PORTS), [], CONFIG))
    check_capabilities(BAREMETAL, build_spec(service_view(service()), [], CONFIG))
    forced = service(**{**NO_NODE_PORTS["spec"],
                        "annotations": {"lbctl.io/target-mode": "nodePort"}})
    with pytest.raises(PermanentError) as err:
        check_capabilities(BAREMETAL, build_spec(service_view(forced), [], CONFIG))
    assert err.value.field == "spec.allocateLoadBalancerNodePorts"
    assert "lbctl.io/target-mode is nodePort; set spec.allocateLoadBalancerNodePorts to " \
           "true, or lbctl.io/target-mode: endpoints" in str(err.value)
