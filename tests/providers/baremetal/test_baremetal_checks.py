"""Which active check the baremetal provider asks the balancer daemons for, per listener:
a UDP nodePort has no TCP listener, so it must never be checked with a TCP connect."""

from __future__ import annotations

from typing import Any

import pytest

from providers.baremetal.daemon_options import DaemonOptions, parse_options
from providers.baremetal.daemons import balancer_body, listener_check
from providers.spec import (
    BalancerRef,
    HealthCheck,
    Listener,
    LoadBalancerSpec,
    ServiceRef,
    Target,
)

OPTIONS = DaemonOptions(interval_seconds=0.5, timeout_seconds=0.4, healthy_threshold=2,
                        unhealthy_threshold=3)
TIMING = {"intervalSeconds": 0.5, "timeoutSeconds": 0.4, "healthyThreshold": 2,
          "unhealthyThreshold": 3}


def _spec(*listeners: tuple[str, int], local: bool = False) -> LoadBalancerSpec:
    return LoadBalancerSpec(
        ref=BalancerRef("lb-x", "c", ServiceRef("default", "x", "uid-x")),
        listeners=tuple(Listener(f"p{i}", proto, 50 + i, node_port)
                        for i, (proto, node_port) in enumerate(listeners)),
        targets=(Target("node-a", "test://a", ("10.0.0.1",)),),
        health_check=HealthCheck("HTTP", 32000, "/healthz") if local else HealthCheck("TCP",
                                                                                     None))


@pytest.mark.parametrize(("listeners", "protocol", "local", "expected"), [
    # Cluster: TCP connects to its own nodePort
    ((("TCP", 30001),), "TCP", False, {"type": "tcp", **TIMING}),
    # Cluster, UDP beside TCP: the node is checked on the TCP nodePort
    ((("UDP", 30002), ("TCP", 30003)), "UDP", False, {"type": "tcp", "port": 30003, **TIMING}),
    # Cluster, UDP only: no TCP port to check, so no active check at all
    ((("UDP", 30004),), "UDP", False, {"type": "none"}),
    # Local: kube-proxy's /healthz on healthCheckNodePort, whatever the protocol
    ((("UDP", 30005),), "UDP", True,
     {"type": "http", "port": 32000, "path": "/healthz", **TIMING}),
    ((("TCP", 30006),), "TCP", True,
     {"type": "http", "port": 32000, "path": "/healthz", **TIMING}),
])
def test_listener_check(listeners: tuple[tuple[str, int], ...], protocol: str, local: bool,
                        expected: dict[str, Any]) -> None:
    assert listener_check(_spec(*listeners, local=local), protocol, OPTIONS) == expected


def test_body_gives_each_listener_its_own_check() -> None:
    body = balancer_body(_spec(("UDP", 30010), ("TCP", 30011)), ("192.0.2.1",), OPTIONS)
    checks = {li["protocol"]: li["healthCheck"] for li in body["listeners"]}
    assert checks == {"UDP": {"type": "tcp", "port": 30011, **TIMING},
                      "TCP": {"type": "tcp", **TIMING}}


def test_upstream_congestion_control_goes_to_tcp_listeners_only() -> None:
    options = DaemonOptions(upstream_congestion_control="reno")
    body = balancer_body(_spec(("UDP", 30020), ("TCP", 30021)), ("192.0.2.1",), options)
    by_protocol = {li["protocol"]: li for li in body["listeners"]}
    assert by_protocol["TCP"]["upstreamCongestionControl"] == "reno"
    assert "upstreamCongestionControl" not in by_protocol["UDP"]
    plain = balancer_body(_spec(("TCP", 30021)), ("192.0.2.1",), OPTIONS)
    assert "upstreamCongestionControl" not in plain["listeners"][0]


def test_kube_proxy_checks_every_cluster_target_on_its_node_and_local_stays() -> None:
    options = DaemonOptions(interval_seconds=0.5, timeout_seconds=0.4, healthy_threshold=2,
                            unhealthy_threshold=3, cluster_check="kubeProxy",
                            kube_proxy_port=10256)
    node = {"type": "http", "port": 10256, "path": "/healthz", **TIMING}
    for protocol in ("TCP", "UDP"):  # UDP-only Services get a check too
        assert listener_check(_spec((protocol, 30030)), protocol, options) == node
    assert listener_check(_spec(("TCP", 30031), local=True), "TCP", options) == {
        "type": "http", "port": 32000, "path": "/healthz", **TIMING}


@pytest.mark.parametrize(("raw", "problem"), [
    ({"clusterPolicy": "kubeproxy"}, ("baremetal.healthCheck.clusterPolicy",
                                      "must be nodePort or kubeProxy, not 'kubeproxy'")),
    ({"kubeProxyPort": "10256"}, ("baremetal.healthCheck.kubeProxyPort",
                                  "must be a whole number from 1 to 65535, not '10256'")),
    ({"kubeProxyPort": 0}, ("baremetal.healthCheck.kubeProxyPort",
                            "must be a whole number from 1 to 65535, not 0")),
])
def test_cluster_policy_keys_are_checked(raw: dict[str, Any], problem: tuple[str, str]) -> None:
    problems: list[tuple[str, str]] = []
    options = parse_options({"healthCheck": raw}, problems)
    assert problems == [problem]
    assert (options.cluster_check, options.kube_proxy_port) == ("nodePort", 10256)
    good = parse_options({"healthCheck": {"clusterPolicy": "kubeProxy", "kubeProxyPort": 10257}},
                         problems := [])
    assert problems == [] and (good.cluster_check, good.kube_proxy_port) == ("kubeProxy", 10257)
