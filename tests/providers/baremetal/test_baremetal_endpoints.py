"""The baremetal provider in the endpoints target mode: what it asks the balancer daemons for
(the pods at their target ports, each pod checked itself), that the daemon's own schema takes
it (a Service without nodePorts used to be refused: `listeners: at least one is required`),
and where the mode's default comes from (`baremetal.targetMode`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from lbctl.balancer.model import parse_balancer
from providers.baremetal import create, parse_settings
from providers.baremetal.daemon_options import DaemonOptions
from providers.baremetal.daemons import balancer_body
from providers.cluster import StaticView
from providers.spec import (
    BalancerRef,
    Endpoint,
    HealthCheck,
    Listener,
    LoadBalancerSpec,
    ServiceRef,
    Target,
)

pytestmark = pytest.mark.unit

OPTIONS = DaemonOptions(interval_seconds=0.5, timeout_seconds=0.4, healthy_threshold=2,
                        unhealthy_threshold=3, kube_proxy_port=10256)
TIMING = {"intervalSeconds": 0.5, "timeoutSeconds": 0.4, "healthyThreshold": 2,
          "unhealthyThreshold": 3}
PODS = (Endpoint(80, "TCP", "10.244.1.5", 8080, "node-a", "web-1"),
        Endpoint(80, "TCP", "10.244.2.7", 8080, "node-b", "web-2"),
        Endpoint(53, "UDP", "10.244.1.5", 5353, "node-a", "web-1"),
        Endpoint(53, "UDP", "10.244.2.7", 5353, "node-b", ""))


def spec(endpoints: tuple[Endpoint, ...] = PODS, *, node_ports: bool = False,
         local: bool = False) -> LoadBalancerSpec:
    return LoadBalancerSpec(
        ref=BalancerRef("lb-web", "c", ServiceRef("default", "web", "uid-web")),
        listeners=(Listener("http", "TCP", 80, 30080 if node_ports else None),
                   Listener("dns", "UDP", 53, 30053 if node_ports else None)),
        targets=(), health_check=HealthCheck("HTTP", 32000, "/healthz") if local
        else HealthCheck("TCP", None),
        external_traffic_policy="Local" if local else "Cluster",
        target_mode="endpoints", endpoints=endpoints)


def listeners(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {li["protocol"]: li for li in body["listeners"]}


def test_targets_are_the_pods_at_their_target_ports_named_by_pod() -> None:
    body = balancer_body(spec(), ("192.0.2.10",), OPTIONS)
    got = listeners(body)
    assert got["TCP"]["targets"] == [
        {"name": "web-1", "address": "10.244.1.5", "port": 8080},
        {"name": "web-2", "address": "10.244.2.7", "port": 8080}]
    assert got["UDP"]["targets"] == [
        {"name": "web-1", "address": "10.244.1.5", "port": 5353},
        {"name": "10.244.2.7:5353", "address": "10.244.2.7", "port": 5353}]
    parsed = parse_balancer(body)  # the daemon's own validation: no 422 any more
    assert [li.port for li in parsed.listeners] == [80, 53]


@pytest.mark.parametrize("local", [False, True])
@pytest.mark.parametrize("cluster_check", ["nodePort", "kubeProxy"])
def test_each_pod_is_checked_itself_whatever_the_policy(local: bool,
                                                         cluster_check: str) -> None:
    """No node in the path: neither kube-proxy's /healthz nor the healthCheckNodePort."""
    options = replace(OPTIONS, cluster_check=cluster_check)
    got = listeners(balancer_body(spec(local=local), ("192.0.2.10",), options))
    assert got["TCP"]["healthCheck"] == {"type": "tcp", **TIMING}
    assert got["UDP"]["healthCheck"] == {"type": "tcp", "port": 8080, **TIMING}


def test_udp_only_or_disagreeing_tcp_ports_get_no_active_check() -> None:
    udp_only = LoadBalancerSpec(
        ref=BalancerRef("lb-dns", "c", ServiceRef("default", "dns", "uid-dns")),
        listeners=(Listener("dns", "UDP", 53, None),), targets=(),
        health_check=HealthCheck("TCP", None), target_mode="endpoints", endpoints=PODS[2:])
    assert listeners(balancer_body(udp_only, ("192.0.2.10",), OPTIONS))["UDP"][
        "healthCheck"] == {"type": "none"}
    split = (PODS[0], Endpoint(80, "TCP", "10.244.2.7", 9090, "node-b", "web-2"), *PODS[2:])
    assert listeners(balancer_body(spec(split), ("192.0.2.10",), OPTIONS))["UDP"][
        "healthCheck"] == {"type": "none"}


def test_no_ready_pod_is_a_listener_without_targets_not_a_refusal() -> None:
    body = balancer_body(spec(()), ("192.0.2.10",), OPTIONS)
    assert [li["targets"] for li in body["listeners"]] == [[], []]
    parse_balancer(body)


def test_endpoints_mode_ignores_node_ports_and_node_targets() -> None:
    nodes = replace(spec(node_ports=True), targets=(Target("node-a", "x", ("10.0.0.1",)),))
    body = balancer_body(nodes, ("192.0.2.10",), OPTIONS)
    assert {t["address"] for li in body["listeners"] for t in li["targets"]} == {
        "10.244.1.5", "10.244.2.7"}


def test_a_changed_endpoint_changes_the_revision() -> None:
    one = balancer_body(spec(), ("192.0.2.10",), OPTIONS)["revision"]
    moved = (Endpoint(80, "TCP", "10.244.3.9", 8080, "node-c", "web-3"), *PODS[1:])
    assert balancer_body(spec(moved), ("192.0.2.10",), OPTIONS)["revision"] != one
    assert balancer_body(spec(), ("192.0.2.10",), OPTIONS)["revision"] == one


# -- settings and the provider's default ------------------------------------------------------
def test_target_mode_setting() -> None:
    assert parse_settings({})[0].daemon.target_mode == "nodePort"
    assert parse_settings({"targetMode": "endpoints"})[0].daemon.target_mode == "endpoints"
    settings, problems = parse_settings({"targetMode": "pods"})
    assert problems == [("baremetal.targetMode", "must be nodePort or endpoints, not 'pods'")]
    assert settings.daemon.target_mode == "nodePort"


def test_capabilities_follow_the_setting_across_a_reload() -> None:
    provider = create({"pools": [{"name": "p", "addresses": ["192.0.2.0/28"]}]}, "c",
                      StaticView())
    try:
        assert provider.capabilities.target_modes == {"nodePort", "endpoints"}
        assert provider.capabilities.default_target_mode == "nodePort"
        provider.apply_settings({"pools": [{"name": "p", "addresses": ["192.0.2.0/28"]}],
                                 "targetMode": "endpoints"})
        assert provider.capabilities.default_target_mode == "endpoints"
    finally:
        provider.close()
