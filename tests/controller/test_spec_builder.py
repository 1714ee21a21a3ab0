"""build_spec: pure, deterministic, golden-tested; bad input names the field."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from lbctl.controller.config import parse_config
from lbctl.controller.records import node_view, service_view
from lbctl.controller.spec_builder import balancer_name, build_spec
from providers.errors import PermanentError

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden"
CONFIG = parse_config("clusterName: prod-east\n")


def service(**spec: Any) -> dict[str, Any]:
    annotations = spec.pop("annotations", {})
    base: dict[str, Any] = {
        "type": "LoadBalancer", "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"],
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080,
                   "nodePort": 30080}],
    }
    base.update(spec)
    return {"metadata": {"namespace": "shop", "name": "web",
                         "uid": "6f1c2f7e-0d7a-4b83-9d7c-2a7f6b1e9c01",
                         "resourceVersion": "42", "annotations": annotations}, "spec": base}


def node(name: str, ip: str, **extra: Any) -> dict[str, Any]:
    labels = {"topology.kubernetes.io/zone": "zone-a", **extra.pop("labels", {})}
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "labels": labels}
    if extra.pop("deleting", False):
        meta["deletionTimestamp"] = "2026-11-26T00:00:00Z"
    return {"metadata": meta, "spec": {"providerID": f"sandbox://{name}", **extra},
            "status": {"addresses": [{"type": "Hostname", "address": name},
                                     {"type": "ExternalIP", "address": "203.0.113.9"},
                                     {"type": "InternalIP", "address": ip}],
                       "conditions": [{"type": "Ready", "status": "False"}]}}


NODES = [node("n2", "10.0.0.2"), node("n1", "10.0.0.1"),
         node("gone", "10.0.0.3", deleting=True),
         node("excluded", "10.0.0.4",
              labels={"node.kubernetes.io/exclude-from-external-load-balancers": ""}),
         node("kept", "10.0.0.5",
              labels={"node.kubernetes.io/exclude-from-external-load-balancers": "false"}),
         node("scaled", "10.0.0.6",
              taints=[{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}])]

CASES: dict[str, dict[str, Any]] = {
    "cluster-policy": service(annotations={"lbctl.io/other": "x", "unrelated.io/y": "z"}),
    "local-policy-udp-affinity": service(
        externalTrafficPolicy="Local", healthCheckNodePort=31999, sessionAffinity="ClientIP",
        sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}},
        ports=[{"name": "dns", "protocol": "UDP", "port": 53, "nodePort": 30053},
               {"name": "dns-tcp", "protocol": "TCP", "port": 53, "nodePort": 30053}]),
    "source-ranges-and-ips": service(
        loadBalancerIP="192.0.2.10", loadBalancerSourceRanges=["10.0.0.0/8", "192.168.1.7/32"],
        annotations={"metallb.io/loadBalancerIPs": "192.0.2.10,2001:db8::10"}),
    "annotation-source-ranges-dual-stack": service(
        ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="PreferDualStack",
        annotations={"service.beta.kubernetes.io/load-balancer-source-ranges":
                     " 10.1.0.0/16 , 10.2.0.0/16"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    spec = build_spec(service_view(CASES[case]), [node_view(n) for n in NODES], CONFIG)
    got = spec.to_json()
    path = GOLDEN / f"spec-{case}.json"
    if os.environ.get("LBCTL_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(path.read_text())


def test_pure_and_deterministic() -> None:
    nodes = [node_view(n) for n in NODES]
    a = build_spec(service_view(CASES["cluster-policy"]), nodes, CONFIG)
    b = build_spec(service_view(CASES["cluster-policy"]), list(reversed(nodes)), CONFIG)
    assert a == b
    assert [t.node for t in a.targets] == ["kept", "n1", "n2"]  # readiness is not a filter


def test_names() -> None:
    view = service_view(CASES["cluster-policy"])
    name = balancer_name("prod-east", view)
    assert name.startswith("lb-shop-web-") and len(name) <= 32
    assert name != "a" + view.uid.replace("-", "")[:31]
    assert balancer_name("prod-west", view) != name
    long = service_view({**CASES["cluster-policy"], "metadata": {
        **CASES["cluster-policy"]["metadata"], "namespace": "a-very-long-namespace-name",
        "name": "and.a.very.long.service.name"}})
    assert len(balancer_name("prod-east", long)) <= 32


@pytest.mark.parametrize(("spec", "field"), [
    ({"loadBalancerSourceRanges": ["10.0.0.0/8", "nonsense"]}, "spec.loadBalancerSourceRanges"),
    ({"annotations": {"service.beta.kubernetes.io/load-balancer-source-ranges": "1.2.3/99"}},
     "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]"),
    ({"loadBalancerIP": "300.1.1.1"}, "spec.loadBalancerIP"),
    ({"annotations": {"metallb.io/loadBalancerIPs": "192.0.2.1,x"}},
     "metadata.annotations[metallb.io/loadBalancerIPs]"),
    ({"annotations": {"metallb.io/loadBalancerIPs": "192.0.2.1",
                      "metallb.universe.tf/loadBalancerIPs": "192.0.2.2"}},
     "metadata.annotations[metallb.universe.tf/loadBalancerIPs]"),
])
def test_bad_input_names_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(PermanentError) as info:
        build_spec(service_view(service(**spec)), [], CONFIG)
    assert info.value.field == field


def test_records_survive_malformed_objects() -> None:
    view = service_view({"metadata": {"name": "x", "annotations": {"a": 1}},
                         "spec": {"ports": [{"port": "eighty"}, "junk", {"port": 80}],
                                  "healthCheckNodePort": "x", "ipFamilies": None},
                         "status": {"loadBalancer": {"ingress": ["bad", {"ip": "1.2.3.4"}]}}})
    assert [p.port for p in view.ports] == [80]
    assert view.ports[0].target_port == 80
    assert view.health_check_node_port is None
    assert view.ip_families == ("IPv4",)
    assert [i.ip for i in view.ingress] == ["1.2.3.4"]
    assert dict(view.annotations) == {}
    last = service_view({"metadata": {"annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": "{...}", "k": "v"}}})
    assert dict(last.annotations) == {"k": "v"}


def test_metallbs_older_prefix_asks_for_the_same_addresses() -> None:
    older = {"metallb.universe.tf/loadBalancerIPs": "192.0.2.10"}
    assert build_spec(service_view(service(annotations=older)), [], CONFIG).requested_ips == (
        "192.0.2.10",)
    both = {**older, "metallb.io/loadBalancerIPs": "192.0.2.10"}  # agreeing aliases: one ask
    assert build_spec(service_view(service(annotations=both)), [], CONFIG).requested_ips == (
        "192.0.2.10",)
