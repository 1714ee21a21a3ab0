"""`lbctl status` rows from Service and Event dicts: what each column says, and why.

Every message below is one a provider really writes (the balancer daemon's status, the AWS
provider's target-group note, the fake provider's), so a provider rewording its report breaks
TARGETS here rather than silently in an operator's terminal.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lbctl.controller.config import parse_config
from lbctl.controller.status_view import (
    Targets,
    build_rows,
    document,
    human_duration,
    provider_of,
    table,
    target_health,
)
from lbctl.sandbox.tables.durations import human_duration as sandbox_duration

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def cond(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": f"LoadBalancer{kind}", "status": status, "reason": reason,
            "message": message, "observedGeneration": 1,
            "lastTransitionTime": "2026-12-07T11:00:00Z"}


def service(name: str = "web", *, conditions: list[dict[str, Any]] | None = None,
            ingress: list[dict[str, Any]] | None = None, class_: str | None = None,
            finalizers: tuple[str, ...] = (), annotations: dict[str, str] | None = None,
            type_: str = "LoadBalancer", ns: str = "default",
            uid: str = "uid-1") -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type_, "ports": [
        {"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]}
    if class_:
        spec["loadBalancerClass"] = class_
    return {"metadata": {"name": name, "namespace": ns, "uid": uid,
                         "creationTimestamp": "2026-12-07T11:55:00Z",
                         "finalizers": list(finalizers), "annotations": annotations or {}},
            "spec": spec,
            "status": {"loadBalancer": {"ingress": ingress or []},
                       "conditions": conditions or []}}


def warning(reason: str, at: str, *, name: str = "web", uid: str = "uid-1",
            type_: str = "Warning") -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": f"{name}.{reason}"},
            "involvedObject": {"kind": "Service", "namespace": "default", "name": name,
                               "uid": uid},
            "type": type_, "reason": reason, "message": f"{reason} happened", "count": 2,
            "lastTimestamp": at}


SERVING = [cond("Provisioning", "False", "Ensured"), cond("Serving", "True", "Ensured"),
           cond("Degraded", "False", "Healthy")]


@pytest.mark.parametrize(("conditions", "expected"), [
    ([cond("Degraded", "True", "Degraded",
           "balancer lb-1: 2 of 3 targets healthy; down: sandbox-node-3")], Targets(2, 3)),
    # two daemons see the same nodes differently: the worst view is the one to act on
    ([cond("Degraded", "True", "Degraded",
           "balancer lb-1: 2 of 3 targets healthy; down: n3; balancer lb-2: 1 of 3 targets "
           "healthy; down: n2, n3")], Targets(1, 3)),
    ([cond("Degraded", "True", "Degraded", "1 of 4 targets unhealthy in k8s-tg-80")],
     Targets(3, 4)),
    ([cond("Degraded", "True", "Degraded", "no backend nodes")], Targets(0, 0)),
    ([cond("Serving", "False", "NoHealthyTargets",
           "balancer lb-1: 0 of 2 targets healthy; down: n1, n2")], Targets(0, 2)),
    # counts nobody reported stay unknown, never a guess
    (SERVING, Targets()),
    ([cond("Serving", "False", "NoHealthyTargets", "no target passes its health checks")],
     Targets()),
    ([cond("Degraded", "True", "Degraded", "meltdown protection holds back removal of 1 "
                                           "node(s): n3")], Targets()),
    # a recovered balancer's old words are not read: Degraded is False now
    ([cond("Degraded", "False", "Healthy", "balancer lb-1: 0 of 3 targets healthy")],
     Targets()),
])
def test_target_health_from_the_providers_words(conditions: list[dict[str, Any]],
                                                expected: Targets) -> None:
    assert target_health(service(conditions=conditions)) == expected


def test_targets_cell() -> None:
    assert [Targets(2, 3).cell(), Targets(0, 0).cell(), Targets().cell()] == ["2/3", "0/0", "-"]


@pytest.mark.parametrize(("svc", "provider", "source"), [
    (service(class_="lbctl.io/aws"), "aws", "class"),
    (service(class_="lbctl.io/gcp", conditions=SERVING), "gcp", "class"),
    (service(class_="lbctl.io/whatever", conditions=SERVING), "lbctl", "finalizer"),
    (service(conditions=SERVING,
             annotations={"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}),
     "aws", "annotations"),
    (service(finalizers=("lbctl.io/load-balancer-cleanup",), annotations={
        "metallb.io/loadBalancerIPs": "10.0.0.5"}), "baremetal", "annotations"),
    (service(conditions=SERVING,
             ingress=[{"hostname": "k8s-web-0a1b.elb.us-east-1.amazonaws.com"}]),
     "aws", "ingress"),
    (service(conditions=SERVING), "lbctl", "finalizer"),
    # the standard finalizer alone is the upstream controllers' too; annotations alone are a
    # user's wish, not lbctl's work
    (service(finalizers=("service.kubernetes.io/load-balancer-cleanup",)), None, "none"),
    (service(annotations={"networking.gke.io/load-balancer-type": "Internal"}), None, "none"),
    (service(class_="example.com/other"), None, "none"),
])
def test_provider_from_what_the_service_tells(svc: dict[str, Any], provider: str | None,
                                              source: str) -> None:
    assert provider_of(svc, None) == (provider, source)


def test_the_config_names_the_provider_of_the_classes_it_owns() -> None:
    config = parse_config("provider: baremetal\nloadBalancerClasses: [lbctl.io/metal]\n"
                          "handleClasslessServices: false\n")
    assert provider_of(service(class_="lbctl.io/metal"), config) == ("baremetal", "config")
    # not this controller's: what the Service tells still counts
    assert provider_of(service(conditions=SERVING), config) == ("lbctl", "finalizer")
    assert provider_of(service(class_="lbctl.io/aws"), config) == ("aws", "class")


def test_rows_ready_address_and_the_last_warning() -> None:
    services = [
        service("web", conditions=SERVING, ingress=[{"ip": "198.51.100.1", "ipMode": "VIP"},
                                                    {"hostname": "web.example.com"}]),
        service("pending", uid="uid-2", conditions=[
            cond("Provisioning", "True", "SyncFailed", "quota exceeded"),
            cond("Serving", "False", "SyncFailed", "quota exceeded")]),
        service("new", uid="uid-3", finalizers=("lbctl.io/load-balancer-cleanup",)),
        service("foreign", uid="uid-4", class_="example.com/other"),
        service("plain", uid="uid-5", type_="ClusterIP"),
        service("web", ns="aaa", uid="uid-6", conditions=SERVING),
    ]
    events = [warning("SyncLoadBalancerFailed", "2026-12-07T11:58:00Z", name="pending",
                      uid="uid-2"),
              warning("AllocationFailed", "2026-12-07T11:59:00Z", name="pending", uid="uid-2"),
              warning("Ensuring", "2026-12-07T11:59:30Z", name="pending", uid="uid-2",
                      type_="Normal"),
              warning("Stale", "2026-12-07T11:59:59Z", name="pending", uid="an-older-one"),
              warning("UnAvailableLoadBalancer", "2026-12-07T11:57:00Z", name="web")]
    rows = build_rows(services, events)
    assert [(r.namespace, r.name) for r in rows] == [
        ("aaa", "web"), ("default", "foreign"), ("default", "new"), ("default", "pending"),
        ("default", "web")]
    by_name = {r.name: r for r in rows if r.namespace == "default"}
    assert by_name["web"].addresses == ("198.51.100.1", "web.example.com")
    assert [by_name[n].ready for n in ("web", "pending", "new", "foreign")] == [
        "True", "False", "Unknown", None]
    assert by_name["pending"].last_warning == {
        "reason": "AllocationFailed", "message": "AllocationFailed happened", "count": 2,
        "lastSeen": "2026-12-07T11:59:00Z"}

    lines = table(rows, NOW)
    assert lines[0].split() == ["NAMESPACE", "NAME", "CLASS", "ADDRESS", "PORTS", "PROVIDER",
                                "READY", "TARGETS", "AGE", "WARNING"]
    cells = {tuple(line.split()[:2]): line.split() for line in lines[1:]}
    assert cells["default", "web"] == ["default", "web", "<none>",
                                       "198.51.100.1,web.example.com", "80:30080/TCP", "lbctl",
                                       "True", "-", "5m", "-"]  # ready: old warnings are history
    assert cells["default", "pending"][2:] == ["<none>", "<pending>", "80:30080/TCP", "lbctl",
                                               "False", "-", "5m", "AllocationFailed"]
    assert cells["default", "foreign"][2:] == ["example.com/other", "<pending>", "80:30080/TCP",
                                               "-", "-", "-", "5m", "-"]
    assert len({line.index("READY") if i == 0 else 0 for i, line in enumerate(lines)}) == 2


def test_wide_adds_conditions_and_what_the_bad_ones_say() -> None:
    rows = build_rows([service("pending", conditions=[
        cond("Provisioning", "True", "SyncFailed", "quota exceeded"),
        cond("Serving", "False", "SyncFailed", "quota exceeded"),
        cond("Degraded", "False", "Healthy", "")])], [])
    header, line = table(rows, NOW, wide=True, namespace_column=False)
    assert header.split()[-2:] == ["CONDITIONS", "MESSAGE"]
    assert header.split()[0] == "NAME"
    assert "Provisioning=True,Serving=False,Degraded=False" in line
    assert line.endswith("Provisioning: quota exceeded; Serving: quota exceeded")


def test_the_document_is_plain_stable_json() -> None:
    svc = service(conditions=[*SERVING[:2], cond(
        "Degraded", "True", "Degraded", "balancer lb-1: 2 of 3 targets healthy; down: n3")],
        ingress=[{"ip": "198.51.100.1"}])
    [doc] = document(build_rows([svc], [warning("LoadBalancerDegraded",
                                                "2026-12-07T11:59:00Z")]))
    assert list(doc) == ["namespace", "name", "class", "addresses", "ports", "provider",
                         "providerSource", "ready", "targets", "creationTimestamp",
                         "conditions", "lastWarning"]
    assert doc["targets"] == {"healthy": 2, "total": 3}
    assert doc["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]
    assert doc["conditions"] == svc["status"]["conditions"]  # in full
    assert doc["lastWarning"]["reason"] == "LoadBalancerDegraded"  # JSON keeps it when ready
    assert json.loads(json.dumps(doc)) == doc


def test_event_times_of_every_shape() -> None:
    """events.k8s.io-style Events carry eventTime (MicroTime) and series, not lastTimestamp."""
    old = warning("Old", "2026-12-07T11:00:00Z")
    new = {**warning("New", ""), "lastTimestamp": None,
           "eventTime": "2026-12-07T11:30:00.123456Z", "series": {"count": 7}}
    [row] = build_rows([service()], [new, old])
    assert row.last_warning is not None
    assert (row.last_warning["reason"], row.last_warning["count"]) == ("New", 2)


def test_age_prints_like_kubectl() -> None:
    """The sandbox's port of HumanDuration is checked against Go's; the CLI's must agree."""
    probes = [0, 59, 119, 120, 599, 600, 3599, 10799, 10800, 28799, 28800, 172799, 172800,
              691199, 691200, 63071999, 63072000, 252287999, 252288000, -5]
    probes += [int(x * 1.37) for x in range(0, 10**6, 7919)]
    assert [human_duration(s) for s in probes] == [sandbox_duration(s) for s in probes]
    assert human_duration(timedelta(days=2, hours=3).total_seconds()) == "2d3h"
