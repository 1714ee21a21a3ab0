"""How the `baremetal` provider drives its balancer daemons: checks, data plane, polling.

Kept beside `settings` (pools) because these keys only matter once `balancers:` lists daemons.
The defaults are bare-metal defaults, not cloud ones: a 1 s health-check interval with 2 failed
checks to eject, so a dead node leaves the rotation in about two seconds, far inside the tens of
seconds EndpointSlice readiness takes (the root of most slow-failover reports).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lbctl.parsing import Problems

ROOT = "baremetal"
KEYS = ("healthCheck", "dataplane", "statusPollSeconds", "drainSeconds",
        "upstreamCongestionControl", "targetMode")
TARGET_MODES = ("nodePort", "endpoints")
_CHECK_LIMITS = {"intervalSeconds": (0.1, 300.0), "timeoutSeconds": (0.1, 60.0),
                 "healthyThreshold": (1, 10), "unhealthyThreshold": (1, 10)}
_CHECK_KEYS = (*_CHECK_LIMITS, "clusterPolicy", "kubeProxyPort")


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    interval_seconds: float = 1.0
    timeout_seconds: float = 1.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2
    dataplane: str = "userspace"
    """userspace | nftables (the daemon falls back to userspace where it cannot)."""
    status_poll_seconds: float = 2.0
    """How often the provider reads every daemon's status (target health, lost state)."""
    drain_seconds: float = 30.0
    cluster_check: str = "nodePort"
    """How targets of `externalTrafficPolicy: Cluster` Services are checked: nodePort (a
    connect to each target, as AWS does) or kubeProxy (kube-proxy's `/healthz` on each node,
    as GKE does since KEP-3836: one probe per node shared by every Service, so 10,000 targets
    on 100 nodes cost 100 probes a round; needs kube-proxy, or a replacement serving it)."""
    kube_proxy_port: int = 10256
    upstream_congestion_control: str = ""
    """TCP congestion control of the userspace data plane's connections to the nodes (e.g.
    reno, cubic); "": the balancer host's default (see `lbctl.balancer.model`)."""
    target_mode: str = "nodePort"
    """Where the daemons send a Service's traffic unless it says (`lbctl.io/target-mode`):
    nodePort (each node's nodePort, kube-proxy picks the pod) or endpoints (straight to the
    ready pods from EndpointSlices: one hop fewer, the client's address kept, and
    externalTrafficPolicy moot). A Service without nodePorts always uses endpoints."""


def _number(raw: Mapping[str, Any], key: str, lo: float, hi: float, default: float,
            path: str, problems: Problems, integer: bool = False) -> float:
    value = raw.get(key, default)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and lo <= value <= hi
    if ok and integer and value != int(value):
        ok = False
    if not ok:
        kind = "a whole number" if integer else "a number"
        problems.append((f"{path}.{key}", f"must be {kind} from {lo:g} to {hi:g}, "
                                          f"not {value!r}"))
        return default
    return float(value)


def parse_options(raw: Mapping[str, Any], problems: Problems) -> DaemonOptions:
    d = DaemonOptions()
    check = raw.get("healthCheck") or {}
    path = f"{ROOT}.healthCheck"
    if not isinstance(check, Mapping):
        problems.append((path, "must be a mapping (intervalSeconds, timeoutSeconds, "
                               "healthyThreshold, unhealthyThreshold, clusterPolicy, "
                               "kubeProxyPort)"))
        check = {}
    for key in check:
        if key not in _CHECK_KEYS:
            problems.append((f"{path}.{key}", "unknown key"))
    values = {key: _number(check, key, lo, hi, getattr(d, _attr(key)), path, problems,
                           integer=key.endswith("Threshold"))
              for key, (lo, hi) in _CHECK_LIMITS.items()}
    cluster = check.get("clusterPolicy", d.cluster_check)
    if cluster not in ("nodePort", "kubeProxy"):
        problems.append((f"{path}.clusterPolicy", f"must be nodePort or kubeProxy, not "
                                                  f"{cluster!r}"))
        cluster = d.cluster_check
    proxy_port = _number(check, "kubeProxyPort", 1, 65535, d.kube_proxy_port, path, problems,
                         integer=True)
    dataplane = raw.get("dataplane", d.dataplane)
    if dataplane not in ("userspace", "nftables"):
        problems.append((f"{ROOT}.dataplane", f"must be userspace or nftables, not "
                                              f"{dataplane!r}"))
        dataplane = d.dataplane
    congestion = raw.get("upstreamCongestionControl", d.upstream_congestion_control)
    if not (isinstance(congestion, str) and re.fullmatch(r"([a-z][a-z0-9_]{0,14})?", congestion)):
        problems.append((f"{ROOT}.upstreamCongestionControl",
                         f"must be a congestion control name such as cubic or reno, not "
                         f"{congestion!r}"))
        congestion = d.upstream_congestion_control
    mode = raw.get("targetMode", d.target_mode)
    if mode not in TARGET_MODES:
        problems.append((f"{ROOT}.targetMode", f"must be {' or '.join(TARGET_MODES)}, not "
                                               f"{mode!r}"))
        mode = d.target_mode
    return DaemonOptions(
        target_mode=str(mode), upstream_congestion_control=str(congestion),
        cluster_check=str(cluster),
        kube_proxy_port=int(proxy_port),
        interval_seconds=values["intervalSeconds"], timeout_seconds=values["timeoutSeconds"],
        healthy_threshold=int(values["healthyThreshold"]),
        unhealthy_threshold=int(values["unhealthyThreshold"]), dataplane=str(dataplane),
        status_poll_seconds=_number(raw, "statusPollSeconds", 0.2, 600, d.status_poll_seconds,
                                    ROOT, problems),
        drain_seconds=_number(raw, "drainSeconds", 0, 3600, d.drain_seconds, ROOT, problems))


def _attr(key: str) -> str:
    return {"intervalSeconds": "interval_seconds", "timeoutSeconds": "timeout_seconds",
            "healthyThreshold": "healthy_threshold",
            "unhealthyThreshold": "unhealthy_threshold"}[key]
