"""The pure allocator, as scenarios: each step asks for (or releases) addresses and states the
exact outcome: the addresses granted, or the error type and its message."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest

from providers.baremetal.allocator import allocate
from providers.baremetal.claims import Claimant, Request, RequestedIP
from providers.baremetal.ledger import Holding, Ledger
from providers.baremetal.pools import PoolSet
from providers.baremetal.settings import parse_settings
from providers.errors import ProviderError

pytestmark = pytest.mark.unit


def poolset(*pools: dict[str, Any]) -> PoolSet:
    settings, problems = parse_settings({"pools": list(pools)})
    assert problems == []
    return settings.pools


@dataclass
class World:
    """Pools, a ledger and a clock; `step` runs one allocation or release."""

    pools: PoolSet
    cooldown: float = 30.0
    now: float = 1000.0
    ledger: Ledger = field(default_factory=Ledger)
    notes: list[str] = field(default_factory=list)

    def ask(self, name: str, *, ns: str = "default", ports: tuple[tuple[str, int], ...] = (
            ("TCP", 80),), key: str = "", local: bool = False,
            labels: dict[str, str] | None = None, families: tuple[str, ...] = ("IPv4",),
            prefer: bool = False, ips: tuple[str, ...] = (), pool: str | None = None,
            ns_labels: dict[str, str] | tuple[()] | None = ()) -> str:
        """`ns_labels`: the namespace's labels as the provider read them; () when it read
        none (no pool selects on them), None when they are unknown."""
        items = (tuple(sorted(ns_labels.items())) if isinstance(ns_labels, dict)
                 else ns_labels)
        claimant = Claimant(f"uid-{name}", ns, name, tuple(sorted((labels or {}).items())),
                            ports, key, not local, namespace_label_items=items)
        request = Request(claimant, families, not prefer,
                          tuple(RequestedIP(ipaddress.ip_address(i), "spec.loadBalancerIP")
                                for i in ips), pool)
        try:
            grant = allocate(request, self.pools, self.ledger, self.now)
        except ProviderError as exc:
            return f"{exc.reason}: {exc}"
        self.ledger.assign(Holding(claimant, grant.ips), self.now, self.cooldown)
        self.notes = list(grant.notes)
        return " ".join(map(str, grant.ips))

    def release(self, name: str) -> str:
        return " ".join(map(str, self.ledger.release(f"uid-{name}", self.now, self.cooldown)))


Step = tuple[str, dict[str, Any], str]  # (name or "-name" to release or "+N" to wait, ...)

SMALL = {"name": "small", "addresses": ["10.0.0.0/31", "10.0.1.5-10.0.1.6"]}
DUAL = {"name": "dual", "addresses": ["10.0.0.1-10.0.0.2", "fd00::/127"]}
BUGGY = {"name": "edge", "addresses": ["10.0.0.254-10.0.1.1"], "avoidBuggyIPs": True}
V6 = {"name": "v6", "addresses": ["fd00::/127"]}

SCENARIOS: dict[str, tuple[list[dict[str, Any]], list[Step]]] = {
    "lowest free first, ranges in config order, then exhaustion names the pool": ([SMALL], [
        ("a", {}, "10.0.0.0"), ("b", {}, "10.0.0.1"), ("c", {}, "10.0.1.5"),
        ("d", {}, "10.0.1.6"),
        ("e", {}, 'TransientError: no available IPs in pool(s) "small" for IPv4'),
    ]),
    "an allocation is stable: asking again keeps the addresses": ([SMALL], [
        ("a", {}, "10.0.0.0"), ("b", {}, "10.0.0.1"), ("a", {}, "10.0.0.0"),
        ("b", {"ports": (("UDP", 53),)}, "10.0.0.1"),
    ]),
    "avoidBuggyIPs skips .0 and .255 across a /24 boundary": ([BUGGY], [
        ("a", {}, "10.0.0.254"), ("b", {}, "10.0.1.1"),
        ("c", {}, 'TransientError: no available IPs in pool(s) "edge" for IPv4'),
    ]),
    "without avoidBuggyIPs .0 and .255 are ordinary": ([{**BUGGY, "avoidBuggyIPs": False}], [
        ("a", {}, "10.0.0.254"), ("b", {}, "10.0.0.255"), ("c", {}, "10.0.1.0"),
    ]),
    "requested .0 in an avoidBuggyIPs pool": ([BUGGY], [
        ("a", {"ips": ("10.0.1.0",)}, 'PermanentError: spec.loadBalancerIP: 10.0.1.0 is '
                                      'excluded by pool "edge" (avoidBuggyIPs: no address '
                                      "ending in .0 or .255)"),
    ]),
    "IPv6 only": ([V6], [
        ("a", {"families": ("IPv6",)}, "fd00::"), ("b", {"families": ("IPv6",)}, "fd00::1"),
        ("c", {"families": ("IPv6",)}, 'TransientError: no available IPs in pool(s) "v6" '
                                       "for IPv6"),
    ]),
    "dual-stack: one address per family, in ipFamilies order": ([DUAL], [
        ("a", {"families": ("IPv4", "IPv6")}, "10.0.0.1 fd00::"),
        ("b", {"families": ("IPv6", "IPv4")}, "fd00::1 10.0.0.2"),
        ("c", {"families": ("IPv4", "IPv6")}, 'TransientError: no available IPs in pool(s) '
                                              '"dual" for IPv4'),
    ]),
    "RequireDualStack with no IPv6 anywhere": ([SMALL], [
        ("a", {"families": ("IPv4", "IPv6")}, "PermanentError: spec.ipFamilies: no address "
                                              "pool that may serve this Service has IPv6 "
                                              'addresses (pools: "small")'),
    ]),
    "PreferDualStack settles for one family": ([SMALL], [
        ("a", {"families": ("IPv4", "IPv6"), "prefer": True}, "10.0.0.0"),
    ]),
    "PreferDualStack primary family exhausted: the other one": ([V6, SMALL], [
        ("a", {"families": ("IPv6",)}, "fd00::"), ("b", {"families": ("IPv6",)}, "fd00::1"),
        ("c", {"families": ("IPv6", "IPv4"), "prefer": True}, "10.0.0.0"),
        ("d", {"families": ("IPv6", "IPv4")}, 'TransientError: no available IPs in pool(s) '
                                              '"v6" for IPv6'),
    ]),
    "a family dropped is released, a family added keeps the other": ([DUAL], [
        ("a", {"families": ("IPv4", "IPv6")}, "10.0.0.1 fd00::"),
        ("a", {"families": ("IPv4",)}, "10.0.0.1"),
        ("b", {"families": ("IPv6",)}, "fd00::1"),  # fd00:: is cooling down
        ("a", {"families": ("IPv4", "IPv6")}, "10.0.0.1 fd00::"),  # its own, back at once
    ]),
}


def _run(world: World, steps: list[Step]) -> list[str]:
    out = []
    for name, kwargs, _ in steps:
        if name.startswith("-"):
            out.append(world.release(name[1:]))
        elif name.startswith("+"):
            world.now += float(name[1:])
            out.append("")
        else:
            out.append(world.ask(name, **kwargs))
    return out


@pytest.mark.parametrize("case", list(SCENARIOS))
def test_scenarios(case: str) -> None:
    pools, steps = SCENARIOS[case]
    world = World(poolset(*pools))
    assert _run(world, steps) == [expected for _, _, expected in steps]


# -- pool choice: priority, namespaces, selectors, autoAssign, the address-pool annotation -------

A = {"name": "a", "addresses": ["10.1.0.0/30"]}
PRIO_3 = {"name": "p3", "addresses": ["10.3.0.0/30"], "serviceAllocation": {"priority": 3}}
PRIO_0 = {"name": "p0", "addresses": ["10.0.0.0/30"], "serviceAllocation": {"priority": 0}}
PRIO_1 = {"name": "p1", "addresses": ["10.4.0.0/30"], "serviceAllocation": {"priority": 1}}
WEB = {"name": "web", "addresses": ["10.2.0.0/30"],
       "serviceAllocation": {"priority": 10, "namespaces": ["web"]}}
EDGE = {"name": "edge", "addresses": ["10.5.0.0/30"],
        "serviceAllocation": {"serviceSelectors": [{"matchLabels": {"tier": "edge"}}]}}
MANUAL = {"name": "manual", "addresses": ["10.9.0.0/30"], "autoAssign": False}
NS_SEL = {"name": "nssel", "addresses": ["10.6.0.0/30"], "serviceAllocation": {
    "namespaceSelectors": [{"matchLabels": {"kubernetes.io/metadata.name": "ops"}}]}}
FOO_BAR = {"name": "foobar", "addresses": ["10.7.0.0/30"], "serviceAllocation": {
    "namespaceSelectors": [{"matchLabels": {"foo": "bar"}}]}}
NOT_DEV = {"name": "notdev", "addresses": ["10.8.0.0/30"], "serviceAllocation": {
    "namespaceSelectors": [{"matchExpressions": [
        {"key": "stage", "operator": "NotIn", "values": ["dev"]},
        {"key": "quarantine", "operator": "DoesNotExist"}]}]}}

POOL_CHOICE: list[tuple[str, list[dict[str, Any]], dict[str, Any], str]] = [
    ("lower positive priority first", [A, PRIO_3, PRIO_1], {}, "10.4.0.0"),
    ("priority 0 is unset: after positive ones", [PRIO_0, PRIO_3], {}, "10.3.0.0"),
    ("equal priority: config order", [A, PRIO_0], {}, "10.1.0.0"),
    ("a pool restricted to the namespace beats any priority", [PRIO_1, WEB], {"ns": "web"},
     "10.2.0.0"),
    ("a pool for another namespace is skipped", [WEB, A], {"ns": "api"}, "10.1.0.0"),
    ("only pools for other namespaces", [WEB], {"ns": "api"},
     'TransientError: no address pool may serve api/s: "web" serves only namespaces web'),
    ("serviceSelectors match labels", [A, EDGE], {"labels": {"tier": "edge"}}, "10.5.0.0"),
    ("serviceSelectors not matching", [EDGE, A], {"labels": {"tier": "core"}}, "10.1.0.0"),
    ("namespaceSelectors on the namespace's name", [A, NS_SEL], {"ns": "ops"}, "10.6.0.0"),
    ("namespaceSelectors not matching", [NS_SEL], {"ns": "dev"},
     'TransientError: no address pool may serve dev/s: "nssel" serves only namespaces '
     "matching its namespaceSelectors"),
    ("namespaceSelectors on a namespace label", [A, FOO_BAR],
     {"ns": "shop", "ns_labels": {"foo": "bar", "team": "x"}}, "10.7.0.0"),
    ("namespaceSelectors on a label the namespace lacks", [FOO_BAR, A],
     {"ns": "shop", "ns_labels": {"foo": "baz"}}, "10.1.0.0"),
    ("namespaceSelectors with only the name known (no lookup)", [FOO_BAR],
     {"ns": "shop"}, 'TransientError: no address pool may serve shop/s: "foobar" serves only '
                     "namespaces matching its namespaceSelectors"),
    ("namespaceSelectors NotIn and DoesNotExist: matching", [A, NOT_DEV],
     {"ns": "shop", "ns_labels": {"stage": "prod"}}, "10.8.0.0"),
    ("namespaceSelectors NotIn: excluded value", [A, NOT_DEV],
     {"ns": "shop", "ns_labels": {"stage": "dev"}}, "10.1.0.0"),
    ("namespaceSelectors DoesNotExist: the label is there", [A, NOT_DEV],
     {"ns": "shop", "ns_labels": {"quarantine": ""}}, "10.1.0.0"),
    ("namespaceSelectors and the name label together", [A, NS_SEL],
     {"ns": "ops", "ns_labels": {"foo": "bar"}}, "10.6.0.0"),
    ("namespace labels unknown: wait rather than guess", [A, FOO_BAR],
     {"ns": "shop", "ns_labels": None},
     "RetryAfter: waiting for the labels of namespace shop (a pool's namespaceSelectors): "
     "the Namespace is not in the cache yet"),
    ("the address-pool annotation names a pool the namespace's labels do not match",
     [A, FOO_BAR], {"ns": "shop", "ns_labels": {}, "pool": "foobar"},
     'PermanentError: metadata.annotations[metallb.io/address-pool]: pool "foobar", which '
     "serves only namespaces matching its namespaceSelectors"),
    ("autoAssign false is never chosen automatically", [MANUAL, A], {}, "10.1.0.0"),
    ("autoAssign false only", [MANUAL], {},
     'TransientError: no address pool may serve default/s: "manual" has autoAssign: false'),
    ("no pools at all", [], {}, "TransientError: no address pools are configured "
                                "(baremetal.pools)"),
    ("the address-pool annotation picks a pool, even a manual one", [A, MANUAL],
     {"pool": "manual"}, "10.9.0.0"),
    ("the address-pool annotation names an unknown pool", [A, MANUAL], {"pool": "nope"},
     "PermanentError: metadata.annotations[metallb.io/address-pool]: no pool named \"nope\" "
     '(pools: "a", "manual")'),
    ("the address-pool annotation names a pool for another namespace", [WEB], {"pool": "web"},
     "PermanentError: metadata.annotations[metallb.io/address-pool]: pool \"web\", which "
     "serves only namespaces web"),
    ("a requested address in a manual pool", [A, MANUAL], {"ips": ("10.9.0.2",)}, "10.9.0.2"),
    ("a requested address in no pool", [A, MANUAL], {"ips": ("192.0.2.1",)},
     'PermanentError: spec.loadBalancerIP: 192.0.2.1 is not in any address pool (pools: "a", '
     '"manual")'),
    ("a requested address in a pool for another namespace", [WEB], {"ips": ("10.2.0.1",)},
     'PermanentError: spec.loadBalancerIP: 10.2.0.1 is in pool "web", which serves only '
     "namespaces web"),
    ("a requested address outside the named pool", [A, MANUAL],
     {"ips": ("10.1.0.1",), "pool": "manual"},
     'PermanentError: spec.loadBalancerIP: 10.1.0.1 is in pool "a", but '
     'metallb.io/address-pool asks for "manual"'),
    ("a requested address of another family", [DUAL], {"ips": ("fd00::1",)},
     "PermanentError: spec.loadBalancerIP: fd00::1 is IPv6, but the Service's ipFamilies are "
     "[IPv4]"),
    ("two requested addresses of one family", [A], {"ips": ("10.1.0.1", "10.1.0.2")},
     "PermanentError: spec.loadBalancerIP: 10.1.0.2 is a second IPv4 address (10.1.0.1 is "
     "requested too); one address per IP family"),
    ("requested for one family, the other allocated from the same pool", [A, DUAL],
     {"ips": ("fd00::1",), "families": ("IPv4", "IPv6")}, "10.0.0.1 fd00::1"),
]


@pytest.mark.parametrize(("case", "pools", "kwargs", "expected"), POOL_CHOICE,
                         ids=[c[0] for c in POOL_CHOICE])
def test_pool_choice(case: str, pools: list[dict[str, Any]], kwargs: dict[str, Any],
                     expected: str) -> None:
    assert World(poolset(*pools)).ask("s", **kwargs) == expected


def test_pool_choice_falls_through_in_order_when_exhausted() -> None:
    world = World(poolset({**PRIO_1, "addresses": ["10.4.0.0/32"]}, A, WEB))
    assert [world.ask(n, ns="web") for n in "abc"] == ["10.2.0.0", "10.2.0.1", "10.2.0.2"]
    assert [world.ask(n, ns="web") for n in "def"] == ["10.2.0.3", "10.4.0.0", "10.1.0.0"]
    assert world.ask("x", ns="api") == "10.1.0.1"


# -- sharing (metallb.io/allow-shared-ip) ---------------------------------------------------------

ONE = {"name": "one", "addresses": ["10.0.0.1-10.0.0.2"]}
HTTP, DNS = (("TCP", 80),), (("UDP", 53), ("TCP", 53))

SHARING: dict[str, tuple[list[dict[str, Any]], list[Step]]] = {
    "same key, different ports: one address": ([ONE], [
        ("a", {"key": "k", "ports": HTTP}, "10.0.0.1"),
        ("b", {"key": "k", "ports": DNS}, "10.0.0.1"),
        ("c", {}, "10.0.0.2"),
    ]),
    "joining a sharer is preferred over a lower free address": ([ONE], [
        ("x", {}, "10.0.0.1"), ("a", {"key": "k"}, "10.0.0.2"), ("-x", {}, "10.0.0.1"),
        ("+60", {}, ""),
        ("b", {"key": "k", "ports": DNS}, "10.0.0.2"),
    ]),
    "same key, same port: not shared": ([ONE], [
        ("a", {"key": "k"}, "10.0.0.1"), ("b", {"key": "k"}, "10.0.0.2"),
    ]),
    "same port number, other protocol: shared": ([ONE], [
        ("a", {"key": "k", "ports": (("TCP", 53),)}, "10.0.0.1"),
        ("b", {"key": "k", "ports": (("UDP", 53),)}, "10.0.0.1"),
    ]),
    "different keys: not shared": ([ONE], [
        ("a", {"key": "k"}, "10.0.0.1"), ("b", {"key": "j", "ports": DNS}, "10.0.0.2"),
    ]),
    "no key on one side: not shared": ([ONE], [
        ("a", {"key": "k"}, "10.0.0.1"), ("b", {"ports": DNS}, "10.0.0.2"),
    ]),
    "Local policy: not shared (MetalLB needs the same pods; approximated as never)": ([ONE], [
        ("a", {"key": "k"}, "10.0.0.1"), ("b", {"key": "k", "ports": DNS, "local": True},
                                          "10.0.0.2"),
    ]),
    "requested address shared under the key": ([ONE], [
        ("a", {"key": "k", "ips": ("10.0.0.2",)}, "10.0.0.2"),
        ("b", {"key": "k", "ports": DNS, "ips": ("10.0.0.2",)}, "10.0.0.2"),
    ]),
    "requested address held by a Service that does not share": ([ONE], [
        ("a", {}, "10.0.0.1"),
        ("b", {"key": "k", "ports": DNS, "ips": ("10.0.0.1",)},
         "PermanentError: spec.loadBalancerIP: 10.0.0.1 is held by default/a, which does not "
         "allow sharing"),
    ]),
    "requested address shared under another key": ([ONE], [
        ("a", {"key": "k"}, "10.0.0.1"),
        ("b", {"key": "j", "ports": DNS, "ips": ("10.0.0.1",)},
         'PermanentError: spec.loadBalancerIP: 10.0.0.1 is shared by default/a under key "k", '
         'not "j"'),
        ("c", {"ports": DNS, "ips": ("10.0.0.1",)},
         'PermanentError: spec.loadBalancerIP: 10.0.0.1 is shared by default/a under key "k"; '
         "this Service allows no sharing"),
    ]),
    "requested address: ports collide": ([ONE], [
        ("a", {"key": "k", "ports": DNS}, "10.0.0.1"),
        ("b", {"key": "k", "ports": (("TCP", 80), ("TCP", 53)), "ips": ("10.0.0.1",)},
         "PermanentError: spec.ports[1]: TCP/53 is already used on 10.0.0.1 by default/a"),
    ]),
    "requested address: Local policy": ([ONE], [
        ("a", {"key": "k", "ports": DNS}, "10.0.0.1"),
        ("b", {"key": "k", "local": True, "ips": ("10.0.0.1",)},
         "PermanentError: spec.externalTrafficPolicy: 10.0.0.1 is shared with default/a; "
         "Services sharing an address must all use externalTrafficPolicy Cluster"),
    ]),
    "a sharer adding a colliding port keeps its address and is told": ([ONE], [
        ("a", {"key": "k", "ports": HTTP}, "10.0.0.1"),
        ("b", {"key": "k", "ports": DNS}, "10.0.0.1"),
        ("b", {"key": "k", "ports": (*DNS, ("TCP", 80))},
         "PermanentError: spec.ports[2]: TCP/80 is already used on 10.0.0.1 by default/a"),
        ("a", {"key": "k", "ports": HTTP}, "10.0.0.1"),
    ]),
    "a sharer switching to Local is told": ([ONE], [
        ("a", {"key": "k", "ports": HTTP}, "10.0.0.1"),
        ("b", {"key": "k", "ports": DNS}, "10.0.0.1"),
        ("b", {"key": "k", "ports": DNS, "local": True},
         "PermanentError: spec.externalTrafficPolicy: 10.0.0.1 is shared with default/a; "
         "Services sharing an address must all use externalTrafficPolicy Cluster"),
    ]),
    "a sharer changing its key moves; the other stays": ([ONE], [
        ("a", {"key": "k", "ports": HTTP}, "10.0.0.1"),
        ("b", {"key": "k", "ports": DNS}, "10.0.0.1"),
        ("b", {"key": "other", "ports": DNS}, "10.0.0.2"),
        ("a", {"key": "k", "ports": HTTP}, "10.0.0.1"),
    ]),
    "a sole holder changing its key keeps its address": ([ONE], [
        ("a", {"key": "k"}, "10.0.0.1"), ("a", {}, "10.0.0.1"), ("a", {"key": "z"}, "10.0.0.1"),
    ]),
    "dual-stack sharing shares both addresses": ([DUAL], [
        ("a", {"key": "k", "families": ("IPv4", "IPv6")}, "10.0.0.1 fd00::"),
        ("b", {"key": "k", "ports": DNS, "families": ("IPv4", "IPv6")}, "10.0.0.1 fd00::"),
    ]),
}


@pytest.mark.parametrize("case", list(SHARING))
def test_sharing(case: str) -> None:
    pools, steps = SHARING[case]
    world = World(poolset(*pools))
    assert _run(world, steps) == [expected for _, _, expected in steps]


# -- keeping, moving, cool-down -------------------------------------------------------------------

LIFECYCLE: dict[str, tuple[list[dict[str, Any]], list[Step]]] = {
    "a released address cools down before anyone else gets it": ([ONE], [
        ("a", {}, "10.0.0.1"), ("-a", {}, "10.0.0.1"),
        ("b", {}, "10.0.0.2"),
        ("c", {}, 'TransientError: no available IPs in pool(s) "one" for IPv4'),
        ("+29", {}, ""),
        ("c", {}, 'TransientError: no available IPs in pool(s) "one" for IPv4'),
        ("+1", {}, ""), ("c", {}, "10.0.0.1"),
    ]),
    "the last holder takes its address back at once": ([ONE], [
        ("a", {}, "10.0.0.1"), ("-a", {}, "10.0.0.1"), ("a", {}, "10.0.0.1"),
    ]),
    "a requested address is granted during its cool-down": ([ONE], [
        ("a", {}, "10.0.0.1"), ("-a", {}, "10.0.0.1"), ("b", {"ips": ("10.0.0.1",)}, "10.0.0.1"),
    ]),
    "release is idempotent": ([ONE], [
        ("a", {}, "10.0.0.1"), ("-a", {}, "10.0.0.1"), ("-a", {}, ""), ("-nobody", {}, ""),
    ]),
    "a shared address cools down only when its last holder leaves": ([ONE], [
        ("a", {"key": "k"}, "10.0.0.1"), ("b", {"key": "k", "ports": DNS}, "10.0.0.1"),
        ("-a", {}, "10.0.0.1"),
        ("c", {"key": "k", "ports": (("TCP", 443),)}, "10.0.0.1"),  # still held by b: joins
        ("-b", {}, "10.0.0.1"), ("-c", {}, "10.0.0.1"),
        ("d", {"key": "k"}, "10.0.0.2"),
    ]),
    "requesting another address moves, the old one cools down": ([ONE], [
        ("a", {}, "10.0.0.1"), ("a", {"ips": ("10.0.0.2",)}, "10.0.0.2"),
        ("b", {}, 'TransientError: no available IPs in pool(s) "one" for IPv4'),
    ]),
    "dropping the request keeps the address": ([ONE], [
        ("a", {"ips": ("10.0.0.2",)}, "10.0.0.2"), ("a", {}, "10.0.0.2"),
    ]),
    "naming another pool moves into it": ([ONE, MANUAL], [
        ("a", {}, "10.0.0.1"), ("a", {"pool": "manual"}, "10.9.0.0"), ("a", {}, "10.9.0.0"),
    ]),
}


@pytest.mark.parametrize("case", list(LIFECYCLE))
def test_lifecycle(case: str) -> None:
    pools, steps = LIFECYCLE[case]
    world = World(poolset(*pools))
    assert _run(world, steps) == [expected for _, _, expected in steps]


def test_held_address_survives_selector_change() -> None:
    world = World(poolset(ONE))
    assert world.ask("a", ns="web") == "10.0.0.1"
    world.pools = poolset({**ONE, "serviceAllocation": {"namespaces": ["api"]}})
    assert world.ask("a", ns="web") == "10.0.0.1"  # a held IP never moves
    assert world.ask("b", ns="web").startswith("TransientError: no address pool may serve")


def test_held_address_survives_namespace_labels_change() -> None:
    """A namespace that loses the label a pool selects on (or one that gains the label of a
    preferred pool) moves none of its Services' addresses: only new ones follow the labels."""
    world = World(poolset(A, FOO_BAR))
    assert world.ask("a", ns="shop", ns_labels={"foo": "bar"}) == "10.7.0.0"
    assert world.ask("a", ns="shop", ns_labels={}) == "10.7.0.0"  # a held IP never moves
    assert world.ask("b", ns="shop", ns_labels={}) == "10.1.0.0"
    assert world.ask("b", ns="shop", ns_labels={"foo": "bar"}) == "10.1.0.0"
    assert world.ask("c", ns="shop", ns_labels={"foo": "bar"}) == "10.7.0.1"


def test_held_addresses_need_no_namespace_labels() -> None:
    """A Service holding all it asks for is decided without its namespace's labels: unknown
    labels delay only Services that still need an address."""
    world = World(poolset(FOO_BAR))
    assert world.ask("a", ns="shop", ns_labels={"foo": "bar"}) == "10.7.0.0"
    assert world.ask("a", ns="shop", ns_labels=None) == "10.7.0.0"


def test_cooldown_zero_reuses_at_once() -> None:
    world = World(poolset({"name": "x", "addresses": ["10.0.0.1/32"]}), cooldown=0)
    assert world.ask("a") == "10.0.0.1" and world.release("a") == "10.0.0.1"
    assert world.ask("b") == "10.0.0.1"


def test_prefer_dual_stack_note_names_pools_tried() -> None:
    world = World(poolset(SMALL, V6))
    world.ask("x", families=("IPv6",)), world.ask("y", families=("IPv6",))
    assert world.ask("a", families=("IPv4", "IPv6"), prefer=True) == "10.0.0.0"
    assert world.notes == ['PreferDualStack: no IPv6 address available (pools tried: "v6")']
