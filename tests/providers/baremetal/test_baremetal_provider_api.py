"""The `baremetal` provider against real API objects: Services created in the sandbox, decoded
by the controller's records, specs from `build_spec`, status written through the API, then a
restart that rebuilds from that status alone."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from kubernetes import client

from lbctl.controller.config import parse_config
from lbctl.controller.records import node_view, service_view
from lbctl.controller.spec_builder import build_spec
from providers.baremetal import create
from providers.cluster import NodeView, ServiceView
from providers.errors import PermanentError, TransientError
from providers.spec import LoadBalancerSpec, LoadBalancerStatus
from tests.conftest import svc

pytestmark = pytest.mark.integration

CONFIG = parse_config("""
clusterName: it
baremetal:
  pools:
  - {name: main, addresses: ["10.77.0.1-10.77.0.3", "fd77::/127"]}
  - {name: reserved, addresses: ["10.77.1.0/30"], autoAssign: false}
  cooldownSeconds: 30
""")


class LiveView:
    """A ClusterView read straight from the API server (the informer cache, uncached)."""

    def __init__(self, core: client.CoreV1Api) -> None:
        self.core = core

    def _list(self, call: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(call(_preload_content=False).data)["items"]
        return items

    def services(self) -> Iterable[ServiceView]:
        return [service_view(o) for o in self._list(self.core.list_service_for_all_namespaces)]

    def service(self, namespace: str, name: str) -> ServiceView | None:
        return next((s for s in self.services()
                     if (s.namespace, s.name) == (namespace, name)), None)

    def nodes(self) -> Iterable[NodeView]:
        return [node_view(o) for o in self._list(self.core.list_node)]

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        found = self._list(lambda **kw: self.core.list_namespace(
            field_selector=f"metadata.name={name}", **kw))
        return dict(found[0]["metadata"].get("labels") or {}) if found else None


def _spec(view: LiveView, ns: str, name: str) -> LoadBalancerSpec:
    found = view.service(ns, name)
    assert found is not None
    return build_spec(found, view.nodes(), CONFIG)


def _publish(core: client.CoreV1Api, spec: LoadBalancerSpec, status: LoadBalancerStatus) -> None:
    ingress = [{"ip": i.ip, "ipMode": i.ip_mode} for i in status.ingress]
    core.patch_namespaced_service_status(spec.ref.service.name, spec.ref.service.namespace,
                                         {"status": {"loadBalancer": {"ingress": ingress}}})


def _ips(status: LoadBalancerStatus | None) -> list[str | None]:
    assert status is not None
    return [i.ip for i in status.ingress]


def test_allocate_publish_restart_reuse(core: client.CoreV1Api, ns: str) -> None:
    view = LiveView(core)
    core.create_namespaced_service(ns, svc("web", type="LoadBalancer", ipFamilyPolicy=(
        "PreferDualStack"), ports=[{"port": 80, "targetPort": 8080}]))
    core.create_namespaced_service(ns, svc("dns", type="LoadBalancer", ports=[
        {"name": "udp", "port": 53, "protocol": "UDP", "targetPort": 53}]))
    core.create_namespaced_service(ns, svc("pinned", type="LoadBalancer", loadBalancerIP=(
        "10.77.1.2"), ports=[{"port": 443, "targetPort": 8443}]))
    provider = create(CONFIG.provider_settings(), CONFIG.cluster_name, view)
    assert provider.problems == ()
    got = {}
    for name in ("web", "dns", "pinned"):
        spec = _spec(view, ns, name)
        status = provider.ensure(spec)
        _publish(core, spec, status)
        got[name] = _ips(status)
    # the sandbox is dual-stack: PreferDualStack gets both families
    assert got == {"web": ["10.77.0.1", "fd77::"], "dns": ["10.77.0.2"],
                   "pinned": ["10.77.1.2"]}
    provider.close()

    restarted = create(CONFIG.provider_settings(), CONFIG.cluster_name, view)
    assert list(restarted.list_owned()) == []  # nothing ensured by this process yet
    assert _ips(restarted.observe(_spec(view, ns, "dns").ref)) == ["10.77.0.2"]
    core.create_namespaced_service(ns, svc("late", type="LoadBalancer"))
    assert _ips(restarted.ensure(_spec(view, ns, "late"))) == ["10.77.0.3"]
    for name, ips in got.items():
        assert _ips(restarted.ensure(_spec(view, ns, name))) == ips

    dns = _spec(view, ns, "dns")
    restarted.delete(dns.ref)
    core.delete_namespaced_service("dns", ns)
    core.create_namespaced_service(ns, svc("next", type="LoadBalancer"))
    with pytest.raises(TransientError, match=r'no available IPs in pool\(s\) "main" for IPv4'):
        restarted.ensure(_spec(view, ns, "next"))  # 10.77.0.2 is cooling down


def test_requested_address_outside_the_pools(core: client.CoreV1Api, ns: str) -> None:
    view = LiveView(core)
    core.create_namespaced_service(ns, svc("odd", type="LoadBalancer"))
    core.patch_namespaced_service("odd", ns, {"metadata": {"annotations": {
        "metallb.io/loadBalancerIPs": "192.0.2.7"}}})
    provider = create(CONFIG.provider_settings(), CONFIG.cluster_name, view)
    spec = _spec(view, ns, "odd")
    with pytest.raises(PermanentError) as info:
        provider.validate(spec)
    assert info.value.field == "metadata.annotations[metallb.io/loadBalancerIPs]"
    assert info.value.detail == ('192.0.2.7 is not in any address pool (pools: "main", '
                                 '"reserved")')
