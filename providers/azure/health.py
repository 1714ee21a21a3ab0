"""Target counts for `LoadBalancerStatus.targets`: what Azure's probes last said about the
backends of one of a Service's load-balancing rules (`load_balancer_load_balancing_rules.
begin_health`: POST `.../loadBalancingRules/RULE/health`, `LoadBalancerHealthPerRule`'s `up`
and `down`).

Why this read, and when: the load balancer resource carries no probe results; the rule health
action is the one per-backend source in the network API, and a long-running one (the POST,
202, then its result at `Location`: two requests, and ARM bills the POST as a write). So it is
read where it costs least: on the resync only (an ensure whose desired state, nodes included,
is the last successful one's), never on a create, a change or the node-only path (the members
just changed: an earlier read would be stale, a new one would ride on every wave of writes);
its requests take a token bucket of their own (`azure.rateLimits.health`); one attempt.

Why one rule is enough: every rule of a Service sends to the same backend pool (the cluster's
nodes), so they count the same targets; with `externalTrafficPolicy: Local` they share one
probe (kube-proxy's healthCheckNodePort), so any rule's answer is every rule's; with Cluster,
each TCP rule probes its own nodePort, which kube-proxy answers on every node for every port
alike: what differs per node (the node, its kube-proxy, its network) is what the counts are
for. The rule read is the Service's first rule with a probe (a UDP-only Service has none: its
first rule). What a one-rule read cannot see: a port whose pods do not listen fails its probe
on every node at once, which is the Service's readiness, not a target's health.

A read that fails (throttled, forbidden, an unknown rule) costs the ensure nothing: the counts
are unknown (None, `lbctl status` shows "-"), and the failure is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from providers.spec import TargetHealth

from .client import ArmClient
from .desired import Desired

log = logging.getLogger(__name__)


def health_rule(want: Desired) -> str | None:
    """The rule whose health stands for the Service's: the first with a probe, else the first
    (None: no rule at all)."""
    rules = want.parts.rules
    probed = [r for r in rules if (r.get("properties") or {}).get("probe")]
    chosen = (probed or list(rules))[:1]
    return str(chosen[0]["name"]) if chosen else None


def counts(answer: dict[str, Any]) -> TargetHealth | None:
    """`LoadBalancerHealthPerRule`'s JSON as counts (None when it has none)."""
    up, down = answer.get("up"), answer.get("down")
    if isinstance(up, int) and isinstance(down, int):
        return TargetHealth(up, up + down)
    addresses = answer.get("loadBalancerBackendAddresses")
    if isinstance(addresses, list):
        healthy = sum(1 for a in addresses if isinstance(a, dict) and a.get("state") == "Up")
        return TargetHealth(healthy, len(addresses))
    return None


def rule_health(arm: ArmClient, want: Desired) -> TargetHealth | None:
    """The counts of `want`'s health rule; None when it has none or the read failed."""
    rule = health_rule(want)
    if rule is None:
        return None
    try:
        answer = arm.health(want.load_balancer_group, want.load_balancer, rule)
    except Exception as exc:  # unknown this time, never the ensure's failure
        log.warning("target health of %s (rule %s) unknown: %s", want.balancer, rule, exc)
        return None
    return counts(answer)
