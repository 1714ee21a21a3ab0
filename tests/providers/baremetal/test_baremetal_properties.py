"""Properties of bare-metal address management under random operations (hypothesis).

Six Services take turns being ensured with one of ten random specs (sharing keys, ports,
traffic policy, families, policies, requested addresses, pool names), deleted, aged, and
restarted over, against small pools so that sharing, exhaustion and cool-downs happen often.
Status patches may lag (applied later) or be lost to a crash. After every step:

- every published address lies in a pool and respects avoidBuggyIPs;
- no two Services publish one address unless, as last granted (what their balancers serve),
  they may share it;
- an address never moves while the Service's spec is unchanged, across restarts too;
- no deleted Service's address goes to another Service while it cools down.

Settings and ranges are fuzzed too: junk yields problems, never an exception.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.baremetal import BaremetalProvider, parse_settings, validate_settings
from providers.baremetal.addresses import RangeError, confuses_buggy_firmware, parse_range
from providers.baremetal.claims import Claimant, claimant_from_view, conflict
from providers.errors import PermanentError, TransientError
from providers.spec import LoadBalancerSpec, LoadBalancerStatus
from tests.providers.baremetal.test_baremetal_provider import Clock, Cluster, spec_for

pytestmark = pytest.mark.unit

POOLS: dict[str, Any] = {"cooldownSeconds": 30, "pools": [
    {"name": "a", "addresses": ["10.0.0.254-10.0.1.1"], "avoidBuggyIPs": True},
    {"name": "b", "addresses": ["10.0.2.0/31", "fd00::/127"]},
    {"name": "m", "addresses": ["10.0.9.0/31"], "autoAssign": False},
]}
IN_POOLS = ["10.0.0.254", "10.0.1.0", "10.0.2.1", "fd00::1", "10.0.9.1", "192.0.2.1"]


@dataclass(frozen=True)
class ServiceDef:
    key: str
    ports: frozenset[int]
    local: bool
    families: tuple[str, ...]
    policy: str
    requested: str | None
    pool: str | None


services = st.builds(
    ServiceDef, key=st.sampled_from(["k", "k", "k", "", "j"]),
    ports=st.frozensets(st.sampled_from([53, 80, 443]), min_size=1),
    local=st.sampled_from([False, False, False, True]),
    families=st.sampled_from([("IPv4",), ("IPv6",), ("IPv4", "IPv6"), ("IPv6", "IPv4")]),
    policy=st.sampled_from(["SingleStack", "PreferDualStack", "RequireDualStack"]),
    requested=st.none() | st.none() | st.sampled_from(IN_POOLS),
    pool=st.none() | st.none() | st.sampled_from(["b", "m"]))
# (operation, Service index, spec variant index): an edit is an ensure of another variant
operations = st.lists(st.tuples(st.sampled_from(["ensure", "ensure", "ensure", "lag", "delete",
                                                 "tick", "restart", "crash-before-patch"]),
                                st.integers(0, 5), st.integers(0, 9)), max_size=60)


@dataclass(frozen=True)
class Claim:
    """Addresses as granted to one spec variant of a Service."""

    variant: int
    ips: tuple[str, ...]
    claimant: Claimant


@dataclass
class Pending:
    """An ensure whose status patch has not landed yet."""

    spec: LoadBalancerSpec
    status: LoadBalancerStatus
    claim: Claim
    lost: bool
    """The process dies before patching (dropped on restart) rather than lagging."""


@dataclass
class Model:
    """The cluster as the controller drives it. Simplifications: an edit the provider refuses
    is reverted by its user, and a crash only ever loses the patch of an unchanged spec (a
    restart while an incompatible edit is pending may move either Service: see `ledger`)."""

    defs: list[ServiceDef]
    cluster: Cluster = field(default_factory=Cluster)
    clock: Clock = field(default_factory=Clock)
    current: dict[str, int] = field(default_factory=dict)  # key -> variant in its spec
    granted: dict[str, Claim] = field(default_factory=dict)  # what its balancer serves
    published: dict[str, Claim] = field(default_factory=dict)  # what its status shows
    pending: dict[str, Pending] = field(default_factory=dict)
    released: dict[str, tuple[float, str]] = field(default_factory=dict)  # ip -> (when, uid)

    def __post_init__(self) -> None:
        self.provider = self.start()

    def start(self) -> BaremetalProvider:
        for key, pending in self.pending.items():
            if not pending.lost:
                self.publish(pending)
            elif key in self.published:
                self.granted[key] = self.published[key]
            else:
                self.granted.pop(key, None)
        self.pending.clear()
        self.released.clear()  # cool-down lives in memory only (documented)
        parsed, problems = parse_settings(POOLS)
        assert problems == []
        return BaremetalProvider(parsed, "k", self.cluster, clock=self.clock)

    def publish(self, pending: Pending) -> None:
        self.cluster.patch(pending.spec, pending.status)
        self.published[pending.spec.ref.service.key] = pending.claim

    def ensure(self, index: int, variant: int, mode: str) -> None:
        key = f"default/s{index}"
        if mode == "crash-before-patch":
            variant = self.current.get(key, variant)
        d = self.defs[variant]
        notes = {"metallb.io/allow-shared-ip": d.key} if d.key else {}
        if d.pool:
            notes["metallb.io/address-pool"] = d.pool
        old = self.cluster.service("default", f"s{index}")
        spec = self.cluster.add(f"s{index}", ports=tuple(sorted(d.ports)), annotations=notes,
                                families=d.families, policy=d.policy, lb_ip=d.requested,
                                local=d.local)
        view = self.cluster.by_key[key]
        if old is not None:  # the same Service, its published status intact
            view = self.cluster.by_key[key] = replace(view, ingress=old.ingress)
        try:
            status = self.provider.ensure(spec)
        except (PermanentError, TransientError):
            if old is not None:
                self.cluster.by_key[key] = old
            else:
                self.cluster.remove(spec)
            return
        got = tuple(i.ip or "" for i in status.ingress)
        last = self.granted.get(key)
        if last is not None and last.variant == variant:
            assert set(last.ips) <= set(got), f"{key} moved from {last.ips} to {got}"
        for ip in got:
            when = self.released.get(ip)
            if when is not None and when[1] != view.uid and ip != d.requested:
                assert self.clock.now >= when[0] + 30, f"{ip} reused during its cool-down"
            self.released.pop(ip, None)  # held again: a later sharer is no reuse
        self.current[key] = variant
        claim = self.granted[key] = Claim(variant, got, claimant_from_view(view))
        pending = Pending(spec, status, claim, mode == "crash-before-patch")
        self.pending.pop(key, None)
        if mode == "ensure":
            self.publish(pending)
        else:
            self.pending[key] = pending

    def delete(self, index: int) -> None:
        view = self.cluster.service("default", f"s{index}")
        if view is None:
            return
        spec = spec_for(view)
        holding = self.provider.observe(spec.ref)
        self.provider.delete(spec.ref)
        for point in holding.ingress if holding else ():
            self.released[point.ip or ""] = (self.clock.now, view.uid)
        self.cluster.remove(spec)
        for table in (self.current, self.granted, self.published, self.pending):
            table.pop(view.key, None)
        for ip in list(self.released):  # still held by a sharer: not released at all
            if any(ip in c.ips for c in (*self.granted.values(), *self.published.values())):
                del self.released[ip]

    def check(self) -> None:
        """Published addresses lie in pools; claims on one address are compatible: fully
        between what balancers serve, by sharing key against a status that lags behind."""
        parsed, _ = parse_settings(POOLS)
        for view in self.cluster.services():
            for ingress in view.ingress:
                ip = ipaddress.ip_address(ingress.ip or "")
                pool = parsed.pools.owner(ip)
                assert pool is not None, f"{ip} is outside every pool"
                assert not (pool.avoid_buggy_ips and confuses_buggy_firmware(ip))
        claims = [(key, claim, True) for key, claim in self.granted.items()]
        # A status shows addresses only; who holds them, with which sharing key and ports, is
        # the Service's spec as it is now (what a restarted ledger reads), not as it was when
        # the status was written: an edit whose patch lags (s0: key k -> j) makes s0 a sharer
        # under key j at once.
        claims += [(key, replace(claim, claimant=claimant_from_view(self.cluster.by_key[key])),
                    False) for key, claim in self.published.items() if key in self.cluster.by_key]
        for i, (a, ca, full_a) in enumerate(claims):
            for b, cb, full_b in claims[i + 1:]:
                shared = set(ca.ips) & set(cb.ips)
                if a == b or not shared:
                    continue
                found = conflict(ca.claimant, cb.claimant)
                if found is not None and (found.kind == "key" or (full_a and full_b)):
                    raise AssertionError(f"{shared} claimed by {a} and {b}: {found}")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(defs=st.lists(services, min_size=10, max_size=10), ops=operations)
def test_random_operations_keep_the_invariants(defs: list[ServiceDef],
                                               ops: list[tuple[str, int, int]]) -> None:
    model = Model(defs)
    for op, index, variant in ops:
        if op in ("ensure", "lag", "crash-before-patch"):
            model.ensure(index, variant, op)
        elif op == "delete":
            model.delete(index)
        elif op == "tick":
            model.clock.now += index * 6
        else:
            model.provider.close()
            model.provider = model.start()
        model.check()


# -- fuzzed settings and ranges -------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 300) | st.text(max_size=12)
    | st.sampled_from(["10.0.0.0/24", "10.0.0.1-10.0.0.9", "fd00::/120", "In", "Exists"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=3),
    max_leaves=12)
pool_keys = st.sampled_from(["name", "addresses", "autoAssign", "avoidBuggyIPs",
                             "serviceAllocation", "priority", "namespaces", "serviceSelectors",
                             "namespaceSelectors", "matchLabels", "matchExpressions", "bogus"])
pool_like = st.dictionaries(pool_keys, json_values | st.dictionaries(pool_keys, json_values,
                                                                     max_size=3), max_size=5)


@settings(max_examples=500, deadline=None)
@given(raw=st.dictionaries(st.sampled_from(["pools", "balancers", "cooldownSeconds", "x"]),
                           st.lists(pool_like, max_size=4) | json_values, max_size=3))
def test_any_settings_give_problems_not_exceptions(raw: dict[str, Any]) -> None:
    parsed, problems = parse_settings(raw)
    assert [(f"baremetal.{k}" if k else "baremetal", m)
            for k, m in validate_settings(raw)] == problems
    assert all(path.startswith("baremetal") and message for path, message in problems)
    pools = [*parsed.pools.active, *parsed.pools.frozen]
    assert all(not p.frozen for p in parsed.pools.active)
    assert all(any(path.startswith(p.path) for path, _ in problems) for p in parsed.pools.frozen)
    assert len(pools) <= len(raw.get("pools") or []) if isinstance(raw.get("pools"), list) else \
        not pools


@given(st.text(max_size=40))
def test_any_text_parses_or_says_why(text: str) -> None:
    try:
        rng = parse_range(text)
    except RangeError as exc:
        assert str(exc)
    else:
        assert rng.first <= rng.last


UNASSIGNABLE = [ipaddress.ip_network(n) for n in
                ("0.0.0.0/32", "224.0.0.0/4", "240.0.0.0/4", "::/128", "ff00::/8")]


def _assignable(first: int, last: int, version: int) -> bool:
    return not any(n.version == version and first <= int(n.broadcast_address)
                   and last >= int(n.network_address) for n in UNASSIGNABLE)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_ipv4_ranges_roundtrip_or_are_refused_naming_why(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    text = f"{ipaddress.IPv4Address(lo)}-{ipaddress.IPv4Address(hi)}"
    if not _assignable(lo, hi, 4):  # unspecified, multicast, reserved or broadcast inside
        with pytest.raises(RangeError, match="which cannot be a Service's address"):
            parse_range(text)
        return
    rng = parse_range(text)
    assert (rng.first, rng.last, rng.size) == (lo, hi, hi - lo + 1)


@given(st.integers(0, 2**128 - 1), st.integers(0, 128))
def test_ipv6_cidrs_roundtrip_or_are_refused_naming_why(value: int, prefix: int) -> None:
    network = ipaddress.IPv6Network((value, prefix), strict=False)
    first, last = int(network.network_address), int(network.broadcast_address)
    if not _assignable(first, last, 6):
        with pytest.raises(RangeError, match="which cannot be a Service's address"):
            parse_range(str(network))
        return
    rng = parse_range(str(network))
    assert rng.size == network.num_addresses
    assert rng.contains(network.network_address) and rng.contains(network.broadcast_address)
