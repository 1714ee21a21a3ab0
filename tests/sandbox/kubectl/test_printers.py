"""The server-side printers' cell logic against the outputs kube's printers give for the same
objects (values from `pkg/printers/internalversion/printers_test.go` cases and Go's
`duration.HumanDuration`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lbctl.sandbox.tables.core import external_ip, format_endpoints, node_roles, port_string
from lbctl.sandbox.tables.durations import human_duration, since
from lbctl.sandbox.tables.format import format_label_selector, format_labels
from lbctl.sandbox.tables.pods import event_cells, pod_cells
from lbctl.sandbox.tables.workloads import DEPLOYMENT

pytestmark = pytest.mark.kubectl


@pytest.mark.parametrize(("seconds", "shown"), [
    (-3, "<invalid>"), (-1.5, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (150, "2m30s"),
    (599, "9m59s"), (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"),
    (3 * 3600 + 300, "3h5m"), (8 * 3600, "8h"), (47 * 3600 + 59 * 60, "47h"),
    (48 * 3600, "2d"), (49 * 3600, "2d1h"), (8 * 86400, "8d"), (2 * 365 * 86400, "2y"),
    ((2 * 365 + 3) * 86400, "2y3d"), (9 * 365 * 86400, "9y")])
def test_human_duration(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_since() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert since("2025-12-31T23:55:00Z", now) == "5m"
    assert since(None, now) == "<unknown>"
    assert since((now - timedelta(hours=30)).isoformat(), now) == "30h"


def _svc(kind: str, **spec: Any) -> dict[str, Any]:
    return {"spec": {"type": kind, **spec}}


def test_service_external_ip() -> None:
    assert external_ip(_svc("ClusterIP")) == "<none>"
    assert external_ip(_svc("NodePort", externalIPs=["1.2.3.4", "5.6.7.8"])) == "1.2.3.4,5.6.7.8"
    assert external_ip(_svc("LoadBalancer")) == "<pending>"
    ready = {"spec": {"type": "LoadBalancer", "externalIPs": ["9.9.9.9"]},
             "status": {"loadBalancer": {"ingress": [{"ip": "2.2.2.2"}, {"hostname": "a.b"},
                                                     {"ip": "1.1.1.1"}]}}}
    assert external_ip(ready) == "1.1.1.1,2.2.2.2,a.b,9.9.9.9"  # sorted set, then spec IPs
    assert external_ip(_svc("ExternalName", externalName="db.example.com")) == "db.example.com"
    assert external_ip({"spec": {"type": "Weird"}}) == "<unknown>"


def test_port_string() -> None:
    assert port_string([{"port": 80, "protocol": "TCP", "nodePort": 30008},
                        {"port": 53, "protocol": "UDP"}]) == "80:30008/TCP,53/UDP"
    assert port_string([]) == ""


def test_endpoints_cell() -> None:
    assert format_endpoints({}) == "<none>"
    many = {"subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 5)],
                         "ports": [{"port": 80}]}]}
    assert format_endpoints(many) == "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more..."
    v6 = {"subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 443}]}]}
    assert format_endpoints(v6) == "[fd00::1]:443"
    headless = {"subsets": [{"addresses": [{"ip": "10.0.0.9"}]}]}
    assert format_endpoints(headless) == "10.0.0.9"


def test_labels_selectors_and_roles() -> None:
    assert format_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert format_labels({}) == "<none>"
    selector = {"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["b", "a"]},
        {"key": "legacy", "operator": "DoesNotExist"}]}
    assert format_label_selector(selector) == "app=web,!legacy,tier in (a,b)"
    assert format_label_selector({}) == "<none>"
    assert format_label_selector({"matchExpressions": [{"key": "k", "operator": "?"}]}) == (
        "<error>")
    labels = {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}
    assert node_roles({"metadata": {"labels": labels}}) == "control-plane,worker"


def test_pod_status_cells() -> None:
    running = {"metadata": {"name": "web"}, "spec": {"containers": [{}, {}]},
               "status": {"phase": "Running", "podIPs": [{"ip": "10.1.1.1"}], "containerStatuses": [
                   {"ready": True, "restartCount": 0, "state": {"running": {}}},
                   {"ready": False, "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    cells = pod_cells(running)
    assert cells[:4] == ["web", "1/2", "CrashLoopBackOff", "3"]
    assert cells[5:] == ["10.1.1.1", "<none>", "<none>", "<none>"]
    init = {"metadata": {"name": "i"}, "spec": {"initContainers": [{"name": "a"}, {"name": "b"}],
                                                "containers": [{}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 0}}},
                {"name": "b", "state": {"running": {}}}]}}
    assert pod_cells(init)[2] == "Init:1/2"
    gone = {"metadata": {"name": "g", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{}]}, "status": {"phase": "Running"}}
    assert pod_cells(gone)[2] == "Terminating"


def test_event_and_deployment_cells() -> None:
    event = {"metadata": {"name": "e"}, "type": "Warning", "reason": "Failed",
             "involvedObject": {"kind": "Service", "name": "web"}, "message": " boom \n",
             "source": {"component": "lbctl", "host": "node-1"}}
    cells = event_cells(event)
    assert cells[1:7] == ["Warning", "Failed", "service/web", "", "lbctl, node-1", "boom"]
    assert cells[0] == cells[7] == "<unknown>" and cells[8] == 1  # no timestamps, no count
    deployment = {"metadata": {"name": "d"}, "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "d"}},
        "template": {"spec": {"containers": [{"name": "a", "image": "x:1"},
                                             {"name": "b", "image": "y:2"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    cells = DEPLOYMENT.cells(deployment)
    assert cells[:4] == ["d", "2/3", 3, 2] and cells[5:] == ["a,b", "x:1,y:2", "app=d"]
