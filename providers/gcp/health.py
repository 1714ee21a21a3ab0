"""Target counts for `LoadBalancerStatus.targets`: what GCE's probers last said about the
instances behind a balancer's backend services (`regionBackendServices.getHealth`).

Why this read, and when: GCE answers health per backend service and instance group (one zone),
so a balancer costs one read per backend service (one per protocol) and zone of its targets.
It is the only source (no listing carries health), so the provider makes it on the full ensure
only, the one a resync runs, never on the node-only path that must stay free (its status then
says nothing about targets: the membership just changed, so an earlier read would be stale).

Counting: each instance once per backend service (GCE lists it once per forwarding rule of the
service), healthy when every entry says HEALTHY; the balancer's view is the worst backend
service's (they front the same instances). A read that fails costs the ensure nothing: the
counts are unknown, and the failure is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from providers.spec import TargetHealth

from .client import GceClient, GceError

log = logging.getLogger(__name__)


def group_counts(answer: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(every instance, the unhealthy ones) of one getHealth answer."""
    seen: set[str] = set()
    bad: set[str] = set()
    for entry in answer.get("healthStatus") or []:
        instance = str(entry.get("instance") or entry.get("ipAddress") or "")
        seen.add(instance)
        if entry.get("healthState") != "HEALTHY":
            bad.add(instance)
    return seen, bad


def backend_health(gce: GceClient, services: Iterable[tuple[str, dict[str, Any]]],
                   ) -> TargetHealth | None:
    """The worst backend service's counts over all its groups; None when a read failed or
    there is no backend service."""
    s = gce.settings
    views: list[TargetHealth | None] = []
    for name, body in services:
        seen: set[str] = set()
        bad: set[str] = set()
        for backend in body.get("backends") or []:
            try:
                answer = gce.read(
                    "regionBackendServices", "get_health", project=s.project, region=s.region,
                    backend_service=name,
                    resource_group_reference_resource=gce.compute.ResourceGroupReference(
                        group=backend["group"]))
            except GceError as exc:
                log.warning("target health of backend service %s unknown: %s", name, exc)
                return None
            group_seen, group_bad = group_counts(answer)
            seen |= group_seen
            bad |= group_bad
        views.append(TargetHealth(len(seen - bad), len(seen)))
    return TargetHealth.worst(views)

