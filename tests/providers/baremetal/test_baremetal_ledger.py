"""Holdings rebuilt from Service status: held addresses never move, never go to others,
duplicates are repaired, and addresses whose holder vanished cool down."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from providers.baremetal.settings import parse_settings
from providers.cluster import Ingress, ServicePort, ServiceView
from tests.providers.baremetal.test_baremetal_allocator import World, poolset

pytestmark = pytest.mark.unit

POOL = {"name": "p", "addresses": ["10.0.0.1-10.0.0.3", "fd00::/126"]}


def svc(name: str, *ips: str, key: str = "", port: int = 80, kind: str = "LoadBalancer",
        ns: str = "default", rv: str = "") -> ServiceView:
    return ServiceView(
        namespace=ns, name=name, uid=f"uid-{name}", resource_version=rv, type=kind,
        ports=(ServicePort("p", "TCP", port, 30000 + port, port),),
        annotations={"metallb.io/allow-shared-ip": key} if key else {},
        ingress=tuple(Ingress(ip=i, ip_mode="VIP") for i in ips))


def world(*services: ServiceView, pools: tuple[dict[str, Any], ...] = (POOL,)) -> World:
    w = World(poolset(*pools))
    w.ledger.rebuild(services, w.pools, w.now, w.cooldown)
    return w


def held(w: World) -> dict[str, str]:
    return {h.claimant.name: " ".join(map(str, h.ips)) for h in w.ledger.holdings()}


def test_status_addresses_are_held_and_never_handed_out() -> None:
    w = world(svc("a", "10.0.0.1"), svc("b", "10.0.0.3", "fd00::2"))
    assert held(w) == {"a": "10.0.0.1", "b": "10.0.0.3 fd00::2"}
    assert w.ask("new") == "10.0.0.2"
    assert w.ask("c").startswith("TransientError: no available IPs")
    assert w.ask("b", families=("IPv4", "IPv6")) == "10.0.0.3 fd00::2"  # its own, kept
    assert w.ask("a") == "10.0.0.1"


@pytest.mark.parametrize(("service", "expected"), [
    (svc("a", "192.0.2.1"), {}),  # not in a pool: not ours to manage
    (svc("a", "10.0.0.1", kind="ClusterIP"), {}),  # stale status of a former LoadBalancer
    (svc("a"), {}),
    (svc("a", "not-an-ip", "10.0.0.2"), {"a": "10.0.0.2"}),
    (svc("a", "10.0.0.1", "10.0.0.2"), {"a": "10.0.0.1"}),  # one per family
])
def test_what_counts_as_held(service: ServiceView, expected: dict[str, str]) -> None:
    assert held(world(service)) == expected


def test_duplicate_status_is_repaired_not_propagated() -> None:
    w = world(svc("b", "10.0.0.1"), svc("a", "10.0.0.1"))
    assert held(w) == {"a": "10.0.0.1"}  # first by namespace/name keeps it
    assert w.ask("b") == "10.0.0.2"
    assert w.ask("a") == "10.0.0.1"


def test_a_denied_duplicate_is_admitted_when_the_address_frees_up() -> None:
    w = world(svc("b", "10.0.0.1"), svc("a", "10.0.0.1"))
    assert held(w) == {"a": "10.0.0.1"}
    w.release("a")
    assert held(w) == {"b": "10.0.0.1"}  # b's status still shows it: it is b's now
    assert w.ask("c") == "10.0.0.2"
    assert w.ask("b") == "10.0.0.1"


def test_compatible_sharers_in_status_both_hold() -> None:
    w = world(svc("a", "10.0.0.1", key="k"), svc("b", "10.0.0.1", key="k", port=53))
    assert held(w) == {"a": "10.0.0.1", "b": "10.0.0.1"}
    assert w.ask("b", key="k", ports=(("TCP", 53),)) == "10.0.0.1"


def held_all(w: World) -> list[tuple[str, str, bool]]:
    return sorted((h.claimant.name, " ".join(map(str, h.ips)), h.leaving)
                  for h in w.ledger.holdings())


def test_an_address_still_in_status_stays_held_until_the_status_moves() -> None:
    w = world(svc("a"))
    assert w.ask("a") == "10.0.0.1"
    assert w.ask("a", ips=("10.0.0.3",)) == "10.0.0.3"
    # the cache still shows the old address in a's status: it stays a's, as leaving
    w.ledger.rebuild([svc("a", "10.0.0.1"), svc("b")], w.pools, w.now, w.cooldown)
    assert held_all(w) == [("a", "10.0.0.1", True), ("a", "10.0.0.3", False)]
    assert w.ask("b") == "10.0.0.2"
    assert w.ask("c", ips=("10.0.0.1",)) == (
        "PermanentError: spec.loadBalancerIP: 10.0.0.1 is held by default/a, which does not "
        "allow sharing")
    assert w.ask("a") == "10.0.0.3"  # asking again changes nothing
    w.ledger.rebuild([svc("a", "10.0.0.3"), svc("b", "10.0.0.2")], w.pools, w.now, w.cooldown)
    assert held_all(w) == [("a", "10.0.0.3", False), ("b", "10.0.0.2", False)]
    assert w.ask("d") == 'TransientError: no available IPs in pool(s) "p" for IPv4'
    w.now += 30
    assert w.ask("d") == "10.0.0.1"


def test_moving_back_to_a_leaving_address() -> None:
    w = world(svc("a"))
    assert w.ask("a") == "10.0.0.1"
    assert w.ask("a", ips=("10.0.0.3",)) == "10.0.0.3"
    w.ledger.rebuild([svc("a", "10.0.0.1")], w.pools, w.now, w.cooldown)
    assert w.ask("a", ips=("10.0.0.1",)) == "10.0.0.1"
    assert held_all(w) == [("a", "10.0.0.1", False)]
    assert w.release("a") == "10.0.0.1"


def test_a_leaving_address_blocks_colliding_newcomers_but_evicts_no_sharer() -> None:
    w = world(svc("a", "10.0.0.1", key="k"), svc("b", "10.0.0.1", key="k", port=53))
    assert w.ask("b", key="other", ports=(("TCP", 53),)) == "10.0.0.2"  # b moves away
    w.ledger.rebuild([svc("a", "10.0.0.1", key="k"),
                      svc("b", "10.0.0.1", key="other", port=53)], w.pools, w.now, w.cooldown)
    assert w.ask("a", key="k") == "10.0.0.1"  # a is not evicted by b's stale status
    assert w.ask("c", key="k", ports=(("TCP", 53),)) == "10.0.0.3"  # b's port, as published
    assert w.ask("d", key="k", ports=(("TCP", 443),)) == "10.0.0.1"


def test_a_stale_status_seen_only_after_the_move_evicts_nobody() -> None:
    w = world(svc("a"), svc("b"))
    assert w.ask("a", key="k") == "10.0.0.1"
    assert w.ask("b", key="k", ports=(("TCP", 53),)) == "10.0.0.1"
    assert w.ask("b", key="other", ports=(("TCP", 53),)) == "10.0.0.2"
    w.ledger.rebuild([svc("a", "10.0.0.1", key="k"),
                      svc("b", "10.0.0.1", key="other", port=53)], w.pools, w.now, w.cooldown)
    assert held_all(w) == [("a", "10.0.0.1", False), ("b", "10.0.0.1", True),
                           ("b", "10.0.0.2", False)]
    assert w.ask("a", key="k") == "10.0.0.1"
    assert w.ask("c", key="k", ports=(("TCP", 443),)) == "10.0.0.3"


def test_released_status_is_ignored_until_the_service_is_gone() -> None:
    w = world(svc("a", "10.0.0.1"))
    w.release("a")
    w.ledger.rebuild([svc("a", "10.0.0.1")], w.pools, w.now, w.cooldown)  # still terminating
    assert held(w) == {}
    w.now += 60
    assert w.ask("b") == "10.0.0.1"


def test_ensure_after_release_holds_again() -> None:
    w = world(svc("a", "10.0.0.1"))
    w.release("a")
    assert w.ask("a") == "10.0.0.1"
    w.ledger.rebuild([svc("a", "10.0.0.1")], w.pools, w.now, w.cooldown)
    assert held(w) == {"a": "10.0.0.1"}


def test_a_vanished_holder_cools_down() -> None:
    w = world(svc("a", "10.0.0.1"), svc("b", "10.0.0.2"))
    w.ledger.rebuild([svc("b", "10.0.0.2")], w.pools, w.now, w.cooldown)  # a deleted elsewhere
    assert held(w) == {"b": "10.0.0.2"}
    assert w.ask("c") == "10.0.0.3"
    assert w.ask("d").startswith("TransientError")
    w.now += 30
    assert w.ask("d") == "10.0.0.1"


def test_a_vanished_granted_holder_is_dropped() -> None:
    w = world(svc("a"))
    assert w.ask("a") == "10.0.0.1"
    w.ledger.rebuild([], w.pools, w.now, w.cooldown)
    assert held(w) == {} and w.ledger.granted_refs() == ()


def test_frozen_pool_keeps_its_holders_and_hands_out_nothing() -> None:
    settings, problems = parse_settings({"pools": [
        {"name": "ok", "addresses": ["10.0.0.1/32"]},
        {"name": "broken", "addresses": ["10.0.1.0/30", "10.0.1.300/30"]}]})
    assert len(problems) == 1
    w = World(settings.pools)
    w.ledger.rebuild([svc("a", "10.0.1.1")], w.pools, w.now, w.cooldown)
    assert w.ask("a") == "10.0.1.1"
    assert w.notes == ['10.0.1.1 is in pool "broken", which has configuration problems']
    assert w.ask("b") == "10.0.0.1"
    assert w.ask("c") == 'TransientError: no available IPs in pool(s) "ok" for IPv4'
    assert w.ask("d", pool="broken") == (
        "TransientError: metadata.annotations[metallb.io/address-pool]: pool \"broken\", which "
        "has configuration problems (see baremetal.pools[1]); nothing new is allocated from it "
        "until the config is fixed")
    assert w.ask("e", ips=("10.0.1.2",)) == (
        'TransientError: spec.loadBalancerIP: 10.0.1.2 is in pool "broken", which has '
        "configuration problems (see baremetal.pools[1]); nothing new is allocated from it "
        "until the config is fixed")


def test_an_edit_after_a_restart_moves_the_edited_sharer_not_the_other() -> None:
    a, b = svc("a", "10.0.0.1", key="k"), svc("b", "10.0.0.1", key="k", port=53)
    for first in ("a", "b"):  # whichever the controller ensures first after the restart
        w = world(a, b)
        edited = [replace(a, annotations={"metallb.io/allow-shared-ip": "other"}), b]
        w.ledger.rebuild(edited, w.pools, w.now, w.cooldown)
        asks: dict[str, dict[str, Any]] = {"a": {"key": "other"},
                                           "b": {"key": "k", "ports": (("TCP", 53),)}}
        second = "b" if first == "a" else "a"
        got = {first: w.ask(first, **asks[first]), second: w.ask(second, **asks[second])}
        assert got == {"a": "10.0.0.2", "b": "10.0.0.1"}, first


def test_a_colliding_edit_after_a_restart_is_refused_to_the_edited_sharer_only() -> None:
    w = world(svc("a", "10.0.0.1", key="k"), svc("b", "10.0.0.1", key="k", port=53))
    w.ledger.rebuild([svc("a", "10.0.0.1", key="k", port=53),
                      svc("b", "10.0.0.1", key="k", port=53)], w.pools, w.now, w.cooldown)
    assert w.ask("b", key="k", ports=(("TCP", 53),)) == "10.0.0.1"
    assert w.ask("a", key="k", ports=(("TCP", 53),)) == (
        "PermanentError: spec.ports[0]: TCP/53 is already used on 10.0.0.1 by default/b")


def test_pool_changes_rejudge_observed_holdings() -> None:
    w = world(svc("a", "10.0.0.1"))
    w.pools = poolset({"name": "q", "addresses": ["10.0.0.3/32"]})
    w.ledger.forget_observations()
    w.ledger.rebuild([svc("a", "10.0.0.1")], w.pools, w.now, w.cooldown)
    assert held(w) == {}
