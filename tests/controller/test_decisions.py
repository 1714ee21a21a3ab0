"""Pure controller decisions: ownership, finalizers, cleanup, sync triggers, meltdown."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest

from lbctl.controller import conditions
from lbctl.controller.config import parse_config
from lbctl.controller.decisions import (
    LBCTL_FINALIZER,
    STANDARD_FINALIZER,
    finalizer_for,
    needs_cleanup,
    needs_sync,
    owned,
)
from lbctl.controller.meltdown import limit_removals
from providers.cluster import Condition, ServicePort, ServiceView
from providers.spec import Target

pytestmark = pytest.mark.unit

BASE = ServiceView("ns", "web", "uid-1", "1", "LoadBalancer",
                   (ServicePort("http", "TCP", 80, 30080, 8080),))


@pytest.mark.parametrize(("cls", "config", "expected"), [
    (None, "", True),
    (None, "handleClasslessServices: false", False),
    ("lbctl.io/metal", "loadBalancerClasses: [lbctl.io/metal]", True),
    ("other.io/x", "loadBalancerClasses: [lbctl.io/metal]", False),
    ("other.io/x", "", False),
])
def test_ownership(cls: str | None, config: str, expected: bool) -> None:
    assert owned(replace(BASE, load_balancer_class=cls), parse_config(config)) is expected


def test_finalizer_per_class() -> None:
    assert finalizer_for(BASE) == STANDARD_FINALIZER
    assert finalizer_for(replace(BASE, load_balancer_class="lbctl.io/metal")) == LBCTL_FINALIZER


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, False),
    ({"finalizers": (STANDARD_FINALIZER,)}, False),
    ({"finalizers": (STANDARD_FINALIZER,), "deleting": True}, True),
    ({"finalizers": (STANDARD_FINALIZER,), "type": "ClusterIP"}, True),
    # lbctl's own finalizer stays ours after a type change cleared the class.
    ({"finalizers": (LBCTL_FINALIZER,), "type": "ClusterIP"}, True),
    ({"deleting": True}, False),
])
def test_needs_cleanup(changes: dict[str, object], expected: bool) -> None:
    config = parse_config("")
    assert needs_cleanup(replace(BASE, **changes), config) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "expected"), [
    ({"resource_version": "2"}, False),
    ({"ingress": ()}, False),
    ({"conditions": (Condition("X", "True"),)}, False),
    ({"annotations": MappingProxyType({"a": "b"})}, True),
    ({"ports": (ServicePort("http", "TCP", 81, 30080, 8080),)}, True),
    ({"external_traffic_policy": "Local"}, True),
    ({"type": "ClusterIP"}, True),
    ({"deleting": True}, True),
    ({"source_ranges": ("10.0.0.0/8",)}, True),
])
def test_needs_sync(changes: dict[str, object], expected: bool) -> None:
    assert needs_sync(BASE, replace(BASE, **changes)) is expected  # type: ignore[arg-type]


def _t(*names: str) -> tuple[Target, ...]:
    return tuple(Target(n, f"p://{n}", ("10.0.0.1",)) for n in names)


@pytest.mark.parametrize(("current", "desired", "fraction", "applied", "held"), [
    (None, _t("a"), 0.5, ["a"], []),
    (_t("a", "b", "c", "d"), _t("a", "b"), 0.5, ["a", "b"], []),
    (_t("a", "b", "c", "d"), _t("a"), 0.5, ["a", "d"], ["d"]),
    (_t("a", "b", "c", "d"), (), 0.5, ["a", "b", "c", "d"], ["a", "b", "c", "d"]),
    (_t("a", "b"), _t("c"), 0.5, ["b", "c"], ["b"]),
    (_t("a", "b", "c", "d"), _t("e"), 1.0, ["e"], []),
])
def test_meltdown_steps(current: tuple[Target, ...] | None, desired: tuple[Target, ...],
                        fraction: float, applied: list[str], held: list[str]) -> None:
    step = limit_removals(current, desired, fraction)
    assert [t.node for t in step.targets] == applied
    assert list(step.held_back) == held


def test_meltdown_converges_never_to_zero() -> None:
    current = _t(*"abcdefgh")
    desired = _t("h")
    for _ in range(10):
        step = limit_removals(current, desired, 0.5)
        assert step.targets
        current = step.targets
    assert [t.node for t in current] == ["h"]


def test_conditions_change_only_when_needed() -> None:
    first = conditions.merge((), conditions.ensured(None), 3, "T1")
    assert first is not None
    assert [(c["type"], c["status"]) for c in first] == [
        ("LoadBalancerProvisioning", "False"), ("LoadBalancerServing", "True"),
        ("LoadBalancerDegraded", "False")]
    stored = tuple(Condition(c["type"], c["status"], c["reason"], c["message"],
                             c["observedGeneration"], c["lastTransitionTime"]) for c in first)
    assert conditions.merge(stored, conditions.ensured(None), 3, "T2") is None
    degraded = conditions.merge(stored, conditions.ensured("no backend nodes"), 3, "T3")
    assert degraded is not None
    by_type = {c["type"]: c for c in degraded}
    assert by_type["LoadBalancerDegraded"]["lastTransitionTime"] == "T3"
    assert by_type["LoadBalancerServing"]["lastTransitionTime"] == "T1"
