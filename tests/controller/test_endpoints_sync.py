"""The controller in the endpoints target mode, against the sandbox with the recording fake:
EndpointSlices are watched only once a Service uses the mode, a slice change re-ensures only
the Services in the mode whose slices changed (debounced), and a provider without the mode
refuses a Service without nodePorts with a Warning naming the field, never watching slices.

The sandbox runs without workloads: the EndpointSlices are written here, standing in for the
EndpointSlice controller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from lbctl.sandbox.app import Sandbox
from providers.fake import FakeProvider
from providers.interface import Capabilities
from providers.spec import Endpoint
from tests.conftest import svc, wait_for
from tests.controller.conftest import (
    CONFIG,
    Running,
    sample,
    settle,
    start_controller,
    stop_controller,
)

pytestmark = pytest.mark.integration
BOTH = Capabilities(ip_families=frozenset({"IPv4"}),
                    target_modes=frozenset({"nodePort", "endpoints"}))


@pytest.fixture
def both(ctl_sandbox: Sandbox) -> Iterator[Running]:
    run = start_controller(ctl_sandbox, CONFIG, FakeProvider(capabilities=BOTH))
    yield run
    stop_controller(run)


def _no_node_ports(name: str, **extra: Any) -> dict[str, Any]:
    return svc(name, type="LoadBalancer", allocateLoadBalancerNodePorts=False,
               ports=[{"name": "http", "port": 80, "targetPort": 8080}], **extra)


def _slice(service: str, *ips: str, ready: bool = True, suffix: str = "x") -> dict[str, Any]:
    return {"metadata": {"name": f"{service}-{suffix}",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "nodeName": "sandbox-node-1",
                           "conditions": {"ready": ready},
                           "targetRef": {"kind": "Pod", "name": f"{service}-{i}"}}
                          for i, ip in enumerate(ips)]}


def _settle(run: Running, core: client.CoreV1Api) -> None:
    """`settle`, and the EndpointSlice informer caught up too (when it runs)."""
    slices = run.controller.slices.informer
    if slices is not None:
        now = int(core.list_namespaced_config_map("default", limit=1).metadata.resource_version)
        wait_for(lambda: int(slices.resource_version or 0) >= now, 15, "the slice informer")
    settle(run, core)


def _ensured(run: Running, name: str) -> tuple[Endpoint, ...] | None:
    spec = next((s for s in run.fake.balancers.values() if s.ref.service.name == name), None)
    return None if spec is None else spec.endpoints


def _ensures(run: Running, name: str) -> int:
    return sum(c.service == f"default/{name}" for c in run.fake.ops("ensure"))


def test_slices_are_not_watched_while_no_service_uses_the_mode(
        both: Running, core_api: client.CoreV1Api) -> None:
    core_api.create_namespaced_service("default", svc("plain", type="LoadBalancer"))
    wait_for(lambda: _ensures(both, "plain") == 1, what="the nodePort Service ensured")
    _settle(both, core_api)
    assert both.controller.slices.informer is None
    assert both.controller.ready()


def test_a_service_without_node_ports_gets_its_pods_and_follows_them(
        both: Running, core_api: client.CoreV1Api) -> None:
    disc = client.DiscoveryV1Api(core_api.api_client)
    disc.create_namespaced_endpoint_slice("default", _slice("web", "10.244.1.1", "10.244.1.2"))
    core_api.create_namespaced_service("default", _no_node_ports("web"))
    got = wait_for(lambda: _ensured(both, "web"), what="web ensured with its endpoints")
    assert both.controller.slices.informer is not None
    assert [(e.address, e.target_port, e.name) for e in got] == [
        ("10.244.1.1", 8080, "web-0"), ("10.244.1.2", 8080, "web-1")]
    assert both.fake.balancers[next(iter(both.fake.balancers))].targets == ()
    # a pod replaced: the balancer follows; a not-ready pod is left out
    disc.replace_namespaced_endpoint_slice("web-x", "default", _slice("web", "10.244.1.3"))
    wait_for(lambda: [e.address for e in _ensured(both, "web") or ()] == ["10.244.1.3"],
             what="the replaced pod")
    disc.create_namespaced_endpoint_slice("default", _slice("web", "10.244.1.4", ready=False,
                                                            suffix="y"))
    _settle(both, core_api)
    assert [e.address for e in _ensured(both, "web") or ()] == ["10.244.1.3"]


def test_a_slice_change_reensures_only_its_service_debounced(
        both: Running, core_api: client.CoreV1Api) -> None:
    disc = client.DiscoveryV1Api(core_api.api_client)
    for name in ("a", "b"):
        disc.create_namespaced_endpoint_slice("default", _slice(name, "10.244.2.1"))
        core_api.create_namespaced_service("default", _no_node_ports(name))
    core_api.create_namespaced_service("default", svc("c", type="LoadBalancer"))
    disc.create_namespaced_endpoint_slice("default", _slice("c", "10.244.2.9"))
    # a ClusterIP Service's slices are watched too (one informer for all), never acted on
    core_api.create_namespaced_service("default", svc("d"))
    disc.create_namespaced_endpoint_slice("default", _slice("d", "10.244.2.8"))
    wait_for(lambda: all(_ensured(both, n) for n in ("a", "b")), what="a and b ensured")
    _settle(both, core_api)
    before = {n: _ensures(both, n) for n in "abcd"}
    queued = sample(both, "lbctl_endpoint_sync_queued_total")
    for i in range(3, 8):  # five writes inside one debounce window (0.2 s)
        disc.replace_namespaced_endpoint_slice("a-x", "default", _slice("a", f"10.244.2.{i}"))
    disc.replace_namespaced_endpoint_slice("c-x", "default", _slice("c", "10.244.2.10"))
    disc.replace_namespaced_endpoint_slice("d-x", "default", _slice("d", "10.244.2.11"))
    wait_for(lambda: [e.address for e in _ensured(both, "a") or ()] == ["10.244.2.7"],
             what="a's last endpoint")
    _settle(both, core_api)
    after = {n: _ensures(both, n) for n in "abcd"}
    assert after["b"] == before["b"] and after["c"] == before["c"] and after["d"] == 0
    assert 1 <= after["a"] - before["a"] <= 2  # the burst: one pass (two if split by a window)
    assert sample(both, "lbctl_endpoint_sync_queued_total") - queued == after["a"] - before["a"]


def test_a_node_change_does_not_reensure_services_in_the_endpoints_mode(
        both: Running, core_api: client.CoreV1Api) -> None:
    client.DiscoveryV1Api(core_api.api_client).create_namespaced_endpoint_slice(
        "default", _slice("direct", "10.244.3.1"))
    core_api.create_namespaced_service("default", _no_node_ports("direct"))
    core_api.create_namespaced_service("default", svc("nodes", type="LoadBalancer"))
    wait_for(lambda: _ensured(both, "direct") and _ensures(both, "nodes"), what="both ensured")
    _settle(both, core_api)
    direct, nodes = _ensures(both, "direct"), _ensures(both, "nodes")
    core_api.create_node({"metadata": {"name": "extra"},
                          "spec": {"providerID": "sandbox://extra"},
                          "status": {"addresses": [{"type": "InternalIP",
                                                    "address": "127.0.10.9"}]}})
    wait_for(lambda: _ensures(both, "nodes") == nodes + 1, what="the nodePort Service")
    _settle(both, core_api)
    assert _ensures(both, "direct") == direct


def test_a_provider_without_the_mode_warns_naming_the_field(
        running: Running, core_api: client.CoreV1Api) -> None:
    core_api.create_namespaced_service("default", _no_node_ports("old"))

    def warned() -> list[Any]:
        running.events.flush()
        return [e for e in core_api.list_namespaced_event(
            "default", field_selector="involvedObject.name=old").items if e.type == "Warning"]

    events = wait_for(warned, what="a Warning event")
    assert events[0].reason == "SyncLoadBalancerFailed"
    assert events[0].message == (
        "Error syncing load balancer: spec.allocateLoadBalancerNodePorts: spec.ports[0] has no "
        "nodePort: this provider's balancers send traffic to each node's nodePort; set "
        "spec.allocateLoadBalancerNodePorts to true (or remove it)")
    _settle(running, core_api)
    assert running.fake.ops("ensure") == []
    assert running.controller.slices.informer is None
