"""Target counts from the provider to `lbctl status`, through the one channel the controller
writes: the `LoadBalancerServing` condition's message (`conditions.with_targets`).

A real `Reconciler` over a fake provider that reports counts, its status patches applied to the
Service as the API server would (conditions by type), and the patched Service read back by
`status_view` as `lbctl status` reads it: the counts arrive, a resync with the same counts
writes nothing, a change of health costs exactly one patch and moves no transition time, and
unknown counts leave the message as it always was (TARGETS "-").
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from lbctl.controller import conditions
from lbctl.controller.config import parse_config
from lbctl.controller.reconciler import Reconciler
from lbctl.controller.records import EndpointSliceView, node_view, service_view
from lbctl.controller.status_view import Targets, build_rows, document, table, target_health
from providers.cluster import NodeView, ServiceView
from providers.fake import FakeProvider
from providers.spec import LoadBalancerSpec, LoadBalancerStatus, TargetHealth

pytestmark = pytest.mark.unit
NOW = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
CONFIG = parse_config("provider: fake\nclusterName: counts\n")
NODES = [node_view({"metadata": {"name": f"n{i}", "uid": f"u{i}"},
                    "spec": {"providerID": f"sandbox://n{i}"},
                    "status": {"addresses": [{"type": "InternalIP", "address": f"10.0.0.{i}"}]}})
         for i in (1, 2, 3, 4)]


class Counting(FakeProvider):
    """The fake provider, reporting whatever target counts the test sets."""

    health: TargetHealth | None = None

    def ensure(self, spec: LoadBalancerSpec) -> LoadBalancerStatus:
        return replace(super().ensure(spec), targets=self.health)


class Cluster:
    """One Service as a dict; status patches land on it as the API server merges them."""

    def __init__(self) -> None:
        self.obj: dict[str, Any] = {
            "metadata": {"namespace": "shop", "name": "web", "uid": "uid-web",
                         "resourceVersion": "1", "generation": 1,
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"type": "LoadBalancer", "ipFamilies": ["IPv4"],
                     "ports": [{"name": "http", "port": 80, "nodePort": 30080}]},
            "status": {}}
        self.patches: list[dict[str, Any]] = []

    # -- the reconciler's cache and writes ------------------------------------------------
    def service(self, namespace: str, name: str) -> ServiceView | None:
        return service_view(copy.deepcopy(self.obj))

    def nodes(self) -> list[NodeView]:
        return NODES

    def endpoint_slices(self, namespace: str, name: str) -> list[EndpointSliceView] | None:
        return []

    def set_finalizer(self, svc: ServiceView, finalizer: str, present: bool) -> None:
        self.obj["metadata"]["finalizers"] = [finalizer] if present else []

    def patch_status(self, svc: ServiceView, status: dict[str, Any]) -> None:
        self.patches.append(status)
        mine = self.obj["status"]
        if "loadBalancer" in status:
            mine["loadBalancer"] = status["loadBalancer"]
        if "conditions" in status:
            by_type = {c["type"]: c for c in mine.get("conditions", [])}
            by_type.update({c["type"]: c for c in status["conditions"]})
            mine["conditions"] = list(by_type.values())

    def event(self, svc: ServiceView, type_: str, reason: str, message: str) -> None:
        return None

    def serving(self) -> dict[str, Any]:
        return next(c for c in self.obj["status"]["conditions"]
                    if c["type"] == conditions.SERVING)


def test_counts_reach_lbctl_status_and_are_written_only_on_change() -> None:
    cluster, provider = Cluster(), Counting(cluster_name="counts")
    stamps = iter(f"2026-01-01T00:0{i}:00Z" for i in range(10))
    reconciler = Reconciler(cluster, provider, lambda: CONFIG, cluster, cluster,
                            clock=lambda: next(stamps))
    provider.health = TargetHealth(3, 4)
    reconciler.sync("shop/web")
    assert cluster.serving()["message"] == (
        "the load balancer serves the Service's ports (targets healthy: 3/4)")
    assert target_health(cluster.obj) == Targets(3, 4)
    (row,) = build_rows([cluster.obj], [])
    assert document([row])[0]["targets"] == {"healthy": 3, "total": 4}
    assert table([row], NOW)[1].split()[7] == "3/4"  # the TARGETS column
    since = cluster.serving()["lastTransitionTime"]

    patches = len(cluster.patches)
    reconciler.sync("shop/web", force=True)  # a resync, nothing changed: no write at all
    assert len(cluster.patches) == patches

    provider.health = TargetHealth(4, 4)  # a node came back: one patch, the condition's
    reconciler.sync("shop/web", force=True)
    assert len(cluster.patches) == patches + 1
    assert list(cluster.patches[-1]) == ["conditions"]
    assert cluster.serving()["lastTransitionTime"] == since  # still True: no transition
    assert target_health(cluster.obj) == Targets(4, 4)

    provider.health = None  # the provider cannot tell: no count, TARGETS "-"
    reconciler.sync("shop/web", force=True)
    assert cluster.serving()["message"] == "the load balancer serves the Service's ports"
    assert target_health(cluster.obj) == Targets()


def test_no_healthy_target_carries_the_count_after_the_reason() -> None:
    wants = conditions.ensured("balancer lb1: 0 of 2 targets healthy; down: n1, n2",
                               serving=False, targets=TargetHealth(0, 2))
    serving = next(w for w in wants if w.type == conditions.SERVING)
    assert (serving.status, serving.reason) == (False, "NoHealthyTargets")
    assert serving.message.endswith("(targets healthy: 0/2)")
    assert conditions.targets_of(serving.message) == TargetHealth(0, 2)


@pytest.mark.parametrize(("message", "expected"), [
    (conditions.with_targets("served", TargetHealth(10, 12)), TargetHealth(10, 12)),
    (conditions.with_targets("served", None), None),
    ("balancer lb-1: 2 of 3 targets healthy; down: n3", None),  # words are not the form
    ("(targets healthy: 1/2) and then more", None),  # only at the end, where it is written
])
def test_the_one_form(message: str, expected: TargetHealth | None) -> None:
    assert conditions.targets_of(message) == expected


def test_published_counts_win_over_older_words() -> None:
    """A Service whose Degraded words (an older controller's, or the daemon's own) say one
    thing and whose serving condition carries counts: the counts are the provider's report."""
    svc = Cluster().obj
    svc["status"]["conditions"] = [
        {"type": conditions.SERVING, "status": "True", "reason": "Ensured",
         "message": conditions.with_targets("serving", TargetHealth(2, 3))},
        {"type": conditions.DEGRADED, "status": "True", "reason": "Degraded",
         "message": "balancer lb-1: 1 of 3 targets healthy; down: n2, n3"}]
    assert target_health(svc) == Targets(2, 3)
