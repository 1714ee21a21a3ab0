"""The controller end to end through the sandbox and the official client, with the recording
fake provider: create, update, type change, delete, foreign class, status only on change."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

from lbctl.controller.decisions import LBCTL_FINALIZER, STANDARD_FINALIZER
from tests.conftest import svc, wait_for
from tests.controller.conftest import Running

pytestmark = pytest.mark.integration


def _ingress(core: client.CoreV1Api, name: str) -> list[str]:
    got = core.read_namespaced_service(name, "default")
    lb = got.status.load_balancer if got.status else None
    return [i.ip for i in (lb.ingress or [])] if lb else []


def _events(core: client.CoreV1Api, name: str) -> list[tuple[str, str]]:
    items = core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={name}").items
    return [(e.type, e.reason) for e in items]


def _conditions(core: client.CoreV1Api, name: str) -> dict[str, Any]:
    got = core.read_namespaced_service(name, "default")
    return {c.type: (c.status, c.reason) for c in (got.status.conditions or [])}


def test_create_provisions_and_writes_status(running: Running,
                                             core_api: client.CoreV1Api) -> None:
    core_api.create_namespaced_service("default", svc("web", type="LoadBalancer"))
    ips = wait_for(lambda: _ingress(core_api, "web"), what="ingress")
    assert ips[0].startswith("198.51.100.")
    got = core_api.read_namespaced_service("web", "default")
    assert got.metadata.finalizers == [STANDARD_FINALIZER]
    assert got.status.load_balancer.ingress[0].ip_mode == "VIP"
    assert _conditions(core_api, "web") == {
        "LoadBalancerProvisioning": ("False", "Ensured"),
        "LoadBalancerServing": ("True", "Ensured"),
        "LoadBalancerDegraded": ("False", "Healthy")}
    ensures = running.fake.ops("ensure")
    assert len(ensures) == 1
    assert ensures[0].targets == ("sandbox-node-1", "sandbox-node-2", "sandbox-node-3")
    running.events.flush()
    reasons = [r for _, r in wait_for(lambda: _events(core_api, "web"), what="events")]
    assert "EnsuringLoadBalancer" in reasons and "EnsuredLoadBalancer" in reasons
    # Settled: no more writes (status patched only on change, own writes cause no sync).
    rv = core_api.read_namespaced_service("web", "default").metadata.resource_version
    time.sleep(1.0)
    assert core_api.read_namespaced_service("web", "default").metadata.resource_version == rv
    assert len(running.fake.ops("ensure")) == 1


def test_port_change_keeps_the_address(running: Running, core_api: client.CoreV1Api) -> None:
    core_api.create_namespaced_service("default", svc("p", type="LoadBalancer"))
    ip = wait_for(lambda: _ingress(core_api, "p"))[0]
    core_api.patch_namespaced_service("p", "default", {"spec": {"ports": [
        {"port": 80, "$patch": "delete"}, {"name": "https", "port": 443, "targetPort": 8443}]}})
    wait_for(lambda: any(c.op == "ensure" for c in running.fake.ops()[1:]), what="re-ensure")
    spec = running.fake.balancers[running.fake.ops("ensure")[-1].name]
    assert [li.port for li in spec.listeners] == [443]
    assert _ingress(core_api, "p") == [ip]


def test_type_change_and_delete_clean_up(running: Running, core_api: client.CoreV1Api) -> None:
    core_api.create_namespaced_service("default", svc("t", type="LoadBalancer"))
    wait_for(lambda: _ingress(core_api, "t"))
    core_api.patch_namespaced_service("t", "default", {"spec": {"type": "ClusterIP"}})

    def cleaned() -> bool:
        got = core_api.read_namespaced_service("t", "default")
        return not got.metadata.finalizers and not _ingress(core_api, "t")

    wait_for(cleaned, what="cleanup after type change")
    assert [c.op for c in running.fake.ops() if c.op in ("ensure", "delete")] == [
        "ensure", "delete"]
    assert "LoadBalancerServing" not in _conditions(core_api, "t")
    # Back to LoadBalancer, then delete: finalizer re-added, delete waits for the provider.
    core_api.patch_namespaced_service("t", "default", {"spec": {"type": "LoadBalancer"}})
    wait_for(lambda: _ingress(core_api, "t"))
    core_api.delete_namespaced_service("t", "default")

    def gone() -> bool:
        return not any(s.metadata.name == "t"
                       for s in core_api.list_namespaced_service("default").items)

    wait_for(gone, what="service gone")
    assert [c.op for c in running.fake.ops() if c.op in ("ensure", "delete")] == [
        "ensure", "delete", "ensure", "delete"]
    assert running.fake.balancers == {}


def test_foreign_class_is_never_touched(running: Running, core_api: client.CoreV1Api) -> None:
    core_api.create_namespaced_service("default", svc(
        "foreign", type="LoadBalancer", loadBalancerClass="other.io/lb"))
    core_api.create_namespaced_service("default", svc("mine", type="LoadBalancer"))
    wait_for(lambda: _ingress(core_api, "mine"))
    got = core_api.read_namespaced_service("foreign", "default")
    assert not got.metadata.finalizers
    assert not _ingress(core_api, "foreign") and not got.status.conditions
    assert all(c.service != "default/foreign" for c in running.fake.ops())
    running.events.flush()
    assert _events(core_api, "foreign") == []


def test_owned_class_uses_lbctl_finalizer(running: Running, core_api: client.CoreV1Api) -> None:
    running.set_config("provider: fake\nloadBalancerClasses: [lbctl.io/metal]\n")
    core_api.create_namespaced_service("default", svc(
        "classy", type="LoadBalancer", loadBalancerClass="lbctl.io/metal"))
    wait_for(lambda: _ingress(core_api, "classy"))
    got = core_api.read_namespaced_service("classy", "default")
    assert got.metadata.finalizers == [LBCTL_FINALIZER]
