"""The `baremetal` provider through the Provider interface: lifecycle, restarts, annotations,
threads, the programming seam."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lbctl.controller.spec_builder import REQUESTED_IPS_ANNOTATIONS
from providers.baremetal import BaremetalProvider, NoProgramming, create, parse_settings
from providers.cluster import Ingress, ServicePort, ServiceView, StaticView
from providers.errors import PermanentError, RetryAfter, TransientError
from providers.interface import Provider, check_capabilities
from providers.registry import load
from providers.spec import (
    BalancerRef,
    HealthCheck,
    Listener,
    LoadBalancerSpec,
    LoadBalancerStatus,
    ServiceRef,
    TargetHealth,
)

pytestmark = pytest.mark.unit

SETTINGS: dict[str, Any] = {"pools": [
    {"name": "default", "addresses": ["10.0.0.1-10.0.0.3", "fd00::/127"]},
    {"name": "manual", "addresses": ["10.9.0.0/30"], "autoAssign": False},
    {"name": "edge", "addresses": ["10.5.0.0/30"], "serviceAllocation": {
        "priority": 1, "serviceSelectors": [{"matchLabels": {"tier": "edge"}}]}},
]}


class Cluster(StaticView):
    """An in-memory ClusterView; `patch` plays the controller writing status."""

    def add(self, name: str, *, ns: str = "default", ports: tuple[int, ...] = (80,),
            annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None,
            families: tuple[str, ...] = ("IPv4",), policy: str = "SingleStack",
            lb_ip: str | None = None, local: bool = False) -> LoadBalancerSpec:
        view = ServiceView(
            namespace=ns, name=name, uid=f"uid-{ns}-{name}", resource_version="",
            type="LoadBalancer",
            ports=tuple(ServicePort(f"p{p}", "TCP", p, 30000 + p, p) for p in ports),
            annotations=annotations or {}, labels=labels or {}, ip_families=families,
            ip_family_policy=policy, load_balancer_ip=lb_ip,
            external_traffic_policy="Local" if local else "Cluster")
        self.by_key[view.key] = view
        return spec_for(view)

    def patch(self, spec: LoadBalancerSpec, status: LoadBalancerStatus) -> None:
        key = spec.ref.service.key
        self.by_key[key] = replace(self.by_key[key], ingress=tuple(
            Ingress(ip=i.ip, ip_mode=i.ip_mode) for i in status.ingress))

    def remove(self, spec: LoadBalancerSpec) -> None:
        del self.by_key[spec.ref.service.key]


def spec_for(view: ServiceView) -> LoadBalancerSpec:
    """What build_spec makes of `view` (the parts this provider reads)."""
    requested = [view.load_balancer_ip] if view.load_balancer_ip else []
    for key in REQUESTED_IPS_ANNOTATIONS:
        requested += [p.strip() for p in view.annotations.get(key, "").split(",") if p.strip()]
    return LoadBalancerSpec(
        ref=BalancerRef(f"lb-{view.name}", "k", ServiceRef(view.namespace, view.name, view.uid)),
        listeners=tuple(Listener(p.name, p.protocol, p.port, p.node_port) for p in view.ports),
        targets=(), health_check=HealthCheck("TCP", None),
        requested_ips=tuple(dict.fromkeys(requested)), ip_families=view.ip_families,
        external_traffic_policy=view.external_traffic_policy,
        annotations=tuple(sorted(view.annotations.items())))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(cluster: Cluster, raw: dict[str, Any] | None = None, **kw: Any) -> BaremetalProvider:
    settings, problems = parse_settings(SETTINGS if raw is None else raw)
    assert problems == []
    return BaremetalProvider(settings, "k", cluster, **kw)


def ips(status: LoadBalancerStatus | None) -> list[str | None]:
    assert status is not None
    return [i.ip for i in status.ingress]


def test_registry_and_protocol() -> None:
    provider: Provider = load("baremetal")(SETTINGS, "k", Cluster())
    assert isinstance(provider, BaremetalProvider)
    caps = provider.capabilities
    assert caps.ip_families == {"IPv4", "IPv6"} and caps.shared_objects and caps.static_ips
    assert caps.protocols == {"TCP", "UDP"} and caps.ingress == "ip" and caps.source_ranges
    spec = Cluster().add("a", families=("IPv6", "IPv4"))
    check_capabilities(caps, replace(spec, listeners=(Listener("dns", "UDP", 53, 30053),)))


def test_create_keeps_good_pools_and_reports_bad_ones() -> None:
    cluster = Cluster()
    provider = create({"pools": [{"name": "a", "addresses": ["10.0.0.1/32"]},
                                 {"name": "b", "addresses": ["10.0.0.300/24"]}]}, "k", cluster)
    assert provider.problems == (('baremetal.pools[1] "b".addresses[0]',
                                  '"10.0.0.300/24" is not a CIDR or range'),)
    assert ips(provider.ensure(cluster.add("s"))) == ["10.0.0.1"]


def test_lifecycle() -> None:
    cluster, clock = Cluster(), Clock()
    provider = make(cluster, clock=clock)
    spec = cluster.add("a", ports=(80, 443))
    status = provider.ensure(spec)
    assert status.ingress[0].ip == "10.0.0.1" and status.ingress[0].ip_mode == "VIP"
    assert [(p.port, p.protocol) for p in status.ports] == [(80, "TCP"), (443, "TCP")]
    assert status.details == (("addressPools", "default"),) and status.degraded is None
    assert provider.ensure(spec) == status
    assert ips(provider.observe(spec.ref)) == ["10.0.0.1"]
    assert list(provider.list_owned()) == [spec.ref]
    provider.delete(spec.ref)
    provider.delete(spec.ref)  # idempotent
    assert provider.observe(spec.ref) is None and list(provider.list_owned()) == []
    assert ips(provider.ensure(cluster.add("b"))) == ["10.0.0.2"]  # 10.0.0.1 cools down
    clock.now += 30
    assert ips(provider.ensure(cluster.add("c"))) == ["10.0.0.1"]


def test_restart_converges_on_status() -> None:
    cluster = Cluster()
    first = make(cluster)
    specs = [cluster.add(n, families=("IPv4", "IPv6")) for n in ("b", "a")]
    for spec in specs:
        cluster.patch(spec, first.ensure(spec))
    first.close()
    second = make(cluster)  # a restart or a new leader: memory is gone, status is not
    assert list(second.list_owned()) == []
    assert ips(second.observe(specs[0].ref)) == ["10.0.0.1", "fd00::"]
    spec_c = cluster.add("c")
    assert ips(second.ensure(spec_c)) == ["10.0.0.3"]
    assert [ips(second.ensure(s)) for s in specs] == [["10.0.0.1", "fd00::"],
                                                     ["10.0.0.2", "fd00::1"]]
    assert set(second.list_owned()) == {s.ref for s in specs} | {spec_c.ref}


def test_lost_status_patch_gets_the_lowest_free_again() -> None:
    cluster = Cluster()
    spec = cluster.add("a")
    assert ips(make(cluster).ensure(spec)) == ["10.0.0.1"]  # crash before the status patch
    assert ips(make(cluster).ensure(spec)) == ["10.0.0.1"]


def test_service_deleted_while_down_releases_after_cooldown() -> None:
    cluster, clock = Cluster(), Clock()
    provider = make(cluster, clock=clock)
    spec = cluster.add("a")
    cluster.patch(spec, provider.ensure(spec))
    cluster.remove(spec)  # deleted without a delete() call (e.g. finalizer removed by hand)
    assert ips(provider.ensure(cluster.add("b"))) == ["10.0.0.2"]
    clock.now += 30
    assert ips(provider.ensure(cluster.add("c"))) == ["10.0.0.1"]


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"annotations": {"metallb.io/address-pool": "manual"}}, ["10.9.0.0"]),
    ({"annotations": {"lbctl.io/address-pool": "manual"}}, ["10.9.0.0"]),
    # MetalLB's older prefix, which it still honours
    ({"annotations": {"metallb.universe.tf/address-pool": "manual"}}, ["10.9.0.0"]),
    ({"annotations": {"metallb.universe.tf/loadBalancerIPs": "10.0.0.3"}}, ["10.0.0.3"]),
    ({"annotations": {"metallb.io/address-pool": "manual",
                      "metallb.universe.tf/address-pool": "manual"}}, ["10.9.0.0"]),
    ({"labels": {"tier": "edge"}}, ["10.5.0.0"]),
    ({"lb_ip": "10.9.0.2"}, ["10.9.0.2"]),
    ({"annotations": {"metallb.io/loadBalancerIPs": "10.0.0.3,fd00::1"},
      "families": ("IPv4", "IPv6")}, ["10.0.0.3", "fd00::1"]),
    ({"families": ("IPv4", "IPv6"), "policy": "PreferDualStack",
      "annotations": {"metallb.io/address-pool": "manual"}}, ["10.9.0.0"]),
])
def test_annotations_and_view(kwargs: dict[str, Any], expected: list[str]) -> None:
    cluster = Cluster()
    assert ips(make(cluster).ensure(cluster.add("s", **kwargs))) == expected


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"lb_ip": "192.0.2.9"}, PermanentError(
        "spec.loadBalancerIP",
        '192.0.2.9 is not in any address pool (pools: "default", "manual", "edge")')),
    ({"annotations": {"metallb.io/loadBalancerIPs": "192.0.2.9"}}, PermanentError(
        "metadata.annotations[metallb.io/loadBalancerIPs]",
        '192.0.2.9 is not in any address pool (pools: "default", "manual", "edge")')),
    ({"annotations": {"lbctl.io/load-balancer-ips": "fd00::1"}}, PermanentError(
        "metadata.annotations[lbctl.io/load-balancer-ips]",
        "fd00::1 is IPv6, but the Service's ipFamilies are [IPv4]")),
    ({"annotations": {"metallb.io/address-pool": "nope"}}, PermanentError(
        "metadata.annotations[metallb.io/address-pool]",
        'no pool named "nope" (pools: "default", "manual", "edge")')),
    ({"annotations": {"metallb.io/address-pool": "default", "lbctl.io/address-pool": "edge"}},
     PermanentError("metadata.annotations[lbctl.io/address-pool]",
                    '"edge" disagrees with metallb.io/address-pool ("default")')),
    ({"annotations": {"metallb.io/address-pool": "default",
                      "metallb.universe.tf/address-pool": "manual"}},
     PermanentError("metadata.annotations[metallb.universe.tf/address-pool]",
                    '"manual" disagrees with metallb.io/address-pool ("default")')),
    ({"annotations": {"metallb.io/allow-shared-ip": "a", "lbctl.io/allow-shared-ip": "b"}},
     PermanentError("metadata.annotations[lbctl.io/allow-shared-ip]",
                    '"b" disagrees with metallb.io/allow-shared-ip ("a")')),
    ({"annotations": {"metallb.io/address-pool": "edge"}}, PermanentError(
        "metadata.annotations[metallb.io/address-pool]",
        'pool "edge", which serves only Services matching its serviceSelectors')),
])
def test_validate_and_ensure_name_the_field(kwargs: dict[str, Any],
                                            error: PermanentError) -> None:
    cluster = Cluster()
    provider = make(cluster)
    spec = cluster.add("s", **kwargs)
    for call in (provider.validate, provider.ensure):
        with pytest.raises(PermanentError) as info:
            call(spec)
        assert (info.value.field, info.value.detail) == (error.field, error.detail)
    assert list(provider.list_owned()) == []


def test_sharing_through_annotations() -> None:
    cluster = Cluster()
    provider = make(cluster)
    shared = {"metallb.io/allow-shared-ip": "web"}
    a = provider.ensure(cluster.add("a", ports=(80,), annotations=shared))
    b = provider.ensure(cluster.add("b", ports=(443,), annotations=shared))
    c = provider.ensure(cluster.add("c", ports=(8080,), annotations=shared, local=True))
    assert ips(a) == ips(b) == ["10.0.0.1"] and ips(c) == ["10.0.0.2"]
    older = {"metallb.universe.tf/allow-shared-ip": "web"}  # MetalLB's older prefix: same key
    d = provider.ensure(cluster.add("d", ports=(8443,), annotations=older))
    assert ips(d) == ["10.0.0.1"]


def test_exhaustion_is_transient_and_names_the_pools() -> None:
    cluster = Cluster()
    provider = make(cluster)
    for name in "abc":
        provider.ensure(cluster.add(name))
    with pytest.raises(TransientError, match=r'^no available IPs in pool\(s\) "default" for '
                                             r"IPv4$") as info:
        provider.ensure(cluster.add("d"))
    assert info.value.event == "AllocationFailed"  # the event reason MetalLB's users know
    with pytest.raises(PermanentError) as refused:
        provider.validate(cluster.add("e", lb_ip="192.0.2.1"))
    assert refused.value.event == "AllocationFailed"


def test_validate_and_plan_allocate_nothing() -> None:
    cluster, clock = Cluster(), Clock()
    provider = make(cluster, clock=clock)
    spec = cluster.add("a")
    provider.validate(spec)
    assert provider.plan(spec) == ['allocate 10.0.0.1 from pool "default"']
    assert provider.observe(spec.ref) is None and list(provider.list_owned()) == []
    assert ips(provider.ensure(spec)) == ["10.0.0.1"]
    assert provider.plan(spec) == []
    moved = replace(spec, requested_ips=("10.0.0.3",))
    assert provider.plan(moved) == ['allocate 10.0.0.3 from pool "default"',
                                    "release 10.0.0.1 (cools down for 30s)"]
    shared = {"metallb.io/allow-shared-ip": "k"}
    first = cluster.add("s1", annotations=shared)
    provider.ensure(first)
    assert provider.plan(cluster.add("s2", ports=(443,), annotations=shared)) == [
        'allocate 10.0.0.2 from pool "default" (shared with default/s1)']


def test_concurrent_ensures_never_share_an_address() -> None:
    cluster = Cluster()
    provider = make(cluster, {"pools": [{"name": "big", "addresses": ["10.0.0.0/24"]}]})
    specs = [cluster.add(f"s{i}") for i in range(200)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda s: ips(provider.ensure(s))[0], specs))
    assert len(set(got)) == 200
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda s: provider.delete(s.ref), specs[::2]))
    assert len(list(provider.list_owned())) == 100


class Recorder:
    """A Programmer that records and can fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []
        self.fail = False
        self.lock = threading.Lock()

    def program(self, spec: LoadBalancerSpec, ips: tuple[str, ...]) -> str | None:
        with self.lock:
            self.calls.append(("program", spec.name, ips))
        if self.fail:
            raise TransientError("daemon unreachable")
        return "1 of 2 daemons serving" if len(ips) > 1 else None

    def serving(self, name: str) -> bool:
        return name != "lb-dark"

    def targets(self, name: str) -> TargetHealth | None:
        return TargetHealth(0, 2) if name == "lb-dark" else TargetHealth(2, 2)

    def plan(self, spec: LoadBalancerSpec, ips: tuple[str, ...]) -> list[str]:
        return [f"program {spec.name} at {', '.join(ips)}"]

    def unprogram(self, ref: BalancerRef) -> None:
        self.calls.append(("unprogram", ref.name, ()))

    def programmed(self) -> Iterable[BalancerRef]:
        return [BalancerRef("lb-orphan", "k", ServiceRef("x", "orphan", "uid-orphan")),
                BalancerRef("lb-other", "other-cluster", ServiceRef("x", "y", "uid-y"))]

    def close(self) -> None:
        self.calls.append(("close", "", ()))


def test_programming_seam() -> None:
    cluster, recorder = Cluster(), Recorder()
    provider = make(cluster, programmer=recorder)
    spec = cluster.add("a", families=("IPv4", "IPv6"))
    status = provider.ensure(spec)
    assert status.degraded == "1 of 2 daemons serving"
    assert status.targets == TargetHealth(2, 2)  # the daemons' counts, passed on
    recorder.fail = True
    with pytest.raises(TransientError):
        provider.ensure(spec)
    recorder.fail = False
    assert ips(provider.ensure(spec)) == ["10.0.0.1", "fd00::"]  # kept across the failure
    assert provider.plan(spec) == ["program lb-a at 10.0.0.1, fd00::"]
    assert {r.name for r in provider.list_owned()} == {"lb-a", "lb-orphan"}
    provider.delete(spec.ref)
    provider.close()
    assert [c[0] for c in recorder.calls] == ["program"] * 3 + ["unprogram", "close"]
    assert recorder.calls[0][2] == ("10.0.0.1", "fd00::")


def test_unreachable_daemons_fail_the_ensure_and_name_the_daemon(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    cluster = Cluster()
    raw = {**SETTINGS, "balancers": [{"name": "lb1", "url": "http://127.0.0.1:1",
                                      "tokenFile": str(token)}]}
    provider = make(cluster, raw)
    assert provider.ip_mode == "Proxy"  # daemons proxy: kube-proxy must not short-circuit
    with pytest.raises(TransientError, match="no balancer daemon took the balancer: "
                                             "balancer lb1 unreachable"):
        provider.ensure(cluster.add("a"))
    provider.close()
    assert make(cluster).ip_mode == "VIP"
    assert NoProgramming().program(cluster.add("b"), ("10.0.0.1",)) is None


def test_reconfigure_keeps_cooldowns() -> None:
    cluster, clock = Cluster(), Clock()
    provider = make(cluster, clock=clock)
    spec = cluster.add("a")
    provider.ensure(spec)
    provider.delete(spec.ref)
    cluster.remove(spec)
    settings, _ = parse_settings({"pools": [{"name": "x", "addresses": ["10.0.0.1-10.0.0.2"]}]})
    provider.reconfigure(settings)
    assert ips(provider.ensure(cluster.add("b"))) == ["10.0.0.2"]
    with pytest.raises(TransientError, match='"x"'):
        provider.ensure(cluster.add("c"))


# -- namespaceSelectors: the namespace's labels from the ClusterView -------------------------------

NS_POOLS: dict[str, Any] = {"pools": [
    {"name": "default", "addresses": ["10.0.0.1-10.0.0.3"]},
    {"name": "foobar", "addresses": ["10.7.0.1-10.7.0.3"], "serviceAllocation": {
        "namespaceSelectors": [{"matchLabels": {"foo": "bar"}}]}},
]}


class CountingCluster(Cluster):
    """Counts the namespace-label lookups (each would start the controller's informer)."""

    def __init__(self, namespaces: dict[str, dict[str, str]] | None = None) -> None:
        super().__init__(namespaces=namespaces)
        self.lookups: list[str] = []

    def namespace_labels(self, name: str) -> Any:
        self.lookups.append(name)
        return super().namespace_labels(name)


def test_namespace_selectors_read_the_namespace_labels() -> None:
    cluster = CountingCluster({"shop": {"foo": "bar"}, "dev": {}})
    provider = make(cluster, NS_POOLS)
    assert ips(provider.ensure(cluster.add("a", ns="shop"))) == ["10.7.0.1"]
    assert ips(provider.ensure(cluster.add("b", ns="dev"))) == ["10.0.0.1"]
    assert "shop" in cluster.lookups and "dev" in cluster.lookups
    assert provider.plan(cluster.add("c", ns="shop")) == ['allocate 10.7.0.2 from pool "foobar"']


def test_namespace_labels_are_not_read_without_a_pool_selecting_on_them() -> None:
    """Pools selecting on nothing, or only on kubernetes.io/metadata.name, never ask the
    cluster for Namespaces (so the controller never watches them)."""
    cluster = CountingCluster()
    by_name = {"pools": [{"name": "ops", "addresses": ["10.6.0.1/32"], "serviceAllocation": {
        "namespaceSelectors": [{"matchLabels": {"kubernetes.io/metadata.name": "ops"}}]}}]}
    for raw in (SETTINGS, by_name):
        provider = make(cluster, raw)
        spec = cluster.add("a", ns="ops")
        provider.validate(spec)
        provider.ensure(spec)
        provider.plan(spec)
    assert ips(provider.observe(spec.ref)) == ["10.6.0.1"]
    assert cluster.lookups == []


def test_unknown_namespace_labels_retry_and_a_label_change_moves_no_address() -> None:
    cluster = CountingCluster({"dev": {}})
    provider = make(cluster, NS_POOLS)
    new = cluster.add("new", ns="shop")  # its Namespace not listed yet
    with pytest.raises(RetryAfter, match="waiting for the labels of namespace shop"):
        provider.ensure(new)
    cluster.namespaces["shop"] = {"foo": "bar"}
    status = provider.ensure(new)
    assert ips(status) == ["10.7.0.1"]
    cluster.patch(new, status)
    held = cluster.add("held", ns="dev")
    status = provider.ensure(held)
    assert ips(status) == ["10.0.0.1"]
    cluster.patch(held, status)
    # labels swap: dev gains foo=bar, shop loses it; each Service keeps what it holds
    cluster.namespaces.update(dev={"foo": "bar"}, shop={})
    assert ips(provider.ensure(held)) == ["10.0.0.1"]
    assert ips(provider.ensure(new)) == ["10.7.0.1"]
    assert ips(provider.ensure(cluster.add("next", ns="dev"))) == ["10.7.0.2"]
    assert ips(provider.ensure(cluster.add("other", ns="shop"))) == ["10.0.0.2"]
