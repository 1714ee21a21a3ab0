"""Which active check the baremetal provider asks the balancer daemons for, per listener:
a UDP nodePort has no TCP listener, so it must never be checked with a TCP connect."""

from __future__ import annotations

from typing import Any

import pytest

from providers.baremetal.daemon_options import DaemonOptions
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
