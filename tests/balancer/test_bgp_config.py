"""The `bgp:` section and the announcement plan: pure, no speaker.

Errors name the key in the file's own terms (`bgp.peers[0].holdTime`); the plan announces a
VIP only while a target of it is healthy, withdraws at once, waits out the hold-down before it
returns, aggregates, and sends LOCAL_PREF to iBGP peers only (as MetalLB does).
"""

from __future__ import annotations

import ipaddress

import pytest

from lbctl.balancer.bgp import BgpAnnouncements, explain
from lbctl.balancer.bgp_policy import HoldDown, Route, plan, servable, settle_times
from lbctl.balancer.bgp_speaker import SpeakerError, render, router_id
from lbctl.balancer.model import parse_balancer, parse_file
from lbctl.bgp_config import community, parse_bgp
from lbctl.parsing import ConfigError

PEER = {"peerAddress": "10.0.0.1", "peerASN": 64500}


def _problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_file(text, "lb.yaml")
    return caught.value.problems


def test_the_issues_example_parses_with_metallb_names() -> None:
    parsed = parse_file("bgp: {myASN: 64512, routerID: 10.0.0.2, peers: [{peerAddress: "
                        "10.0.0.1, peerASN: 64500, holdTime: 3s, passwordFile: /etc/pw}]}\n")
    assert parsed.bgp is not None
    peer = parsed.bgp.peers[0]
    assert (parsed.bgp.my_asn, peer.peer_asn, peer.hold_time, peer.password_file,
            peer.peer_port) == (64512, 64500, 3.0, "/etc/pw", 179)
    assert parsed.balancers == ()


@pytest.mark.parametrize(("peer", "where", "words"), [
    ({**PEER, "holdTime": "2s"}, "bgp.peers[0].holdTime", "between 3s and 65535s"),
    ({**PEER, "holdTime": "soon"}, "bgp.peers[0].holdTime", "duration"),
    ({**PEER, "peerASN": 0}, "bgp.peers[0].peerASN", "greater than or equal to 1"),
    ({**PEER, "peerAddress": "router"}, "bgp.peers[0].peerAddress", "not an IP address"),
    ({**PEER, "passwordFile": "pw.txt"}, "bgp.peers[0].passwordFile", "absolute path"),
    ({**PEER, "password": "x"}, "bgp.peers[0]", "password: a TCP-MD5 secret is never"),
    ({**PEER, "ebgpMultiHop": "yes"}, "bgp.peers[0].ebgpMultiHop", "boolean"),
])
def test_bad_peer_fields_are_named(peer: dict[str, object], where: str, words: str) -> None:
    import json

    problems = _problems(f"bgp: {{myASN: 64512, routerID: 10.0.0.2, "
                         f"peers: [{json.dumps(peer)}]}}\n")
    assert [p for p, _ in problems] == [where], problems
    assert words in problems[0][1]


def test_section_level_problems_are_named() -> None:
    assert _problems("bgp: {myASN: 64512, peers: []}\n")[0][1].startswith(
        "peers: give at least one peer")
    dup = _problems("bgp: {myASN: 1, routerID: 1.1.1.1, peers: [{peerAddress: 10.0.0.1, "
                    "peerASN: 2}, {peerAddress: 10.0.0.1, peerASN: 3}]}\n")
    assert "10.0.0.1 defined more than once" in dup[0][1]
    unknown = _problems("bgp: {myASN: 1, routerID: 1.1.1.1, peers: [{peerAddress: 10.0.0.1, "
                        "peerASN: 2}], advertisements: [{peers: [tor-b]}]}\n")
    assert "advertisements[0].peers: no peer named tor-b" in unknown[0][1]
    bad = _problems("bgp: {myASN: 1, routerID: 1.1.1.1, peers: [{peerAddress: 10.0.0.1, "
                    "peerASN: 2}], advertisements: [{communities: [no-such], "
                    "addresses: [10.0.0.9-10.0.0.1]}]}\n")
    assert sorted(p for p, _ in bad) == ["bgp.advertisements[0].addresses",
                                         "bgp.advertisements[0].communities"]


def test_communities_take_metallb_forms() -> None:
    assert community("no-advertise") == ("standard", "65535:65282")
    assert community("64512:100") == ("standard", "64512:100")
    assert community("large:64512:1:2") == ("large", "64512:1:2")
    for bad in ("65536:1", "1:2:3", "large:1:2", "nope"):
        with pytest.raises(ValueError, match="community"):
            community(bad)


def _balancer(name: str, vip: str, *targets: str) -> object:
    return parse_balancer({"name": name, "vip": vip, "listeners": [
        {"protocol": "TCP", "port": 80, "targets": list(targets)}]})


def test_a_vip_is_announced_while_a_target_is_healthy_and_held_down_after() -> None:
    config = parse_bgp({"myASN": 64512, "routerID": "10.0.0.2", "holdDownSeconds": 5,
                        "peers": [PEER]})
    balancers = [_balancer("a", "10.9.0.1", "10.1.0.1:30080", "10.1.0.2:30080"),
                 _balancer("b", "10.9.0.2", "10.1.0.3:30080")]
    down: set[tuple[str, int]] = set()
    hold = HoldDown(config.hold_down_seconds)

    def run(now: float) -> set[str]:
        health = servable(balancers, lambda key: key not in down)  # type: ignore[arg-type]
        routes, _ = plan(config, health, hold, now)
        return {r.prefix for r in routes["10.0.0.1"]}

    assert run(0) == {"10.9.0.1/32", "10.9.0.2/32"}
    down.add(("10.1.0.1", 30080))
    assert run(1) == {"10.9.0.1/32", "10.9.0.2/32"}  # one of two targets: still served
    down.add(("10.1.0.3", 30080))
    assert run(2) == {"10.9.0.1/32"}  # withdrawn at once
    down.clear()
    assert run(3) == {"10.9.0.1/32"}  # healthy again, held down
    _, states = plan(config, {"10.9.0.1": True, "10.9.0.2": True}, hold, 6)
    assert "hold-down 2.0s" in states["10.9.0.2"].reason
    assert run(8.5) == {"10.9.0.1/32", "10.9.0.2/32"}  # 5 s after it came back
    routes, states = plan(config, {"10.9.0.1": True}, hold, 9, draining=True)
    assert routes["10.0.0.1"] == set() and "draining" in states["10.9.0.1"].reason


def test_advertisements_aggregate_filter_and_set_attributes() -> None:
    config = parse_bgp({
        "myASN": 64512, "routerID": "10.0.0.2",
        "peers": [{**PEER, "name": "tor-a"}, {"name": "tor-b", "peerAddress": "10.0.0.5",
                                                "peerASN": 64512},
                  {"name": "v6", "peerAddress": "fd00::1", "peerASN": 64500}],
        "advertisements": [
            {"addresses": ["10.9.0.0/28"], "aggregationLength": 24, "localPref": 200,
             "communities": ["no-export", "large:64512:1:2"]},
            {"addresses": ["10.9.1.10-10.9.1.20"], "peers": ["tor-b"], "localPref": 50}]})
    health = {"10.9.0.1": True, "10.9.0.2": True, "10.9.1.15": True, "10.9.2.1": True,
              "fd00:9::1": True}
    routes, states = plan(config, health, HoldDown(0), 0)
    agg_a = Route("10.9.0.0/24", ("65535:65281",), ("64512:1:2",), None)  # eBGP: no pref
    agg_b = Route("10.9.0.0/24", ("65535:65281",), ("64512:1:2",), 200)   # iBGP: pref
    assert routes["tor-a"] == {agg_a}
    assert routes["tor-b"] == {agg_b, Route("10.9.1.15/32", (), (), 50)}
    assert routes["v6"] == set()
    assert states["10.9.2.1"].reason == "no advertisement covers it"
    assert states["fd00:9::1"].reason == "no advertisement covers it"
    assert agg_b.exabgp() == ("10.9.0.0/24 next-hop self local-preference 200 "
                              "community [65535:65281] large-community [64512:1:2]")


def test_the_speaker_config_carries_each_peer_and_reads_the_password_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    config = parse_bgp({"myASN": 64512, "routerID": "10.0.0.2", "peers": [
        {**PEER, "passwordFile": str(secret), "sourceAddress": "10.0.0.2",
         "ebgpMultiHop": True, "peerPort": 1179, "holdTime": 3},
        {"peerAddress": "fd00::1", "peerASN": 64501, "myASN": 65001}]})
    text = render(config, ["python", "-m", "bridge"])
    assert 'md5-password "s3cret";' in text and "outgoing-ttl 255;" in text
    assert "local-address 10.0.0.2;" in text and "connect 1179;" in text
    assert "hold-time 3;" in text and "local-as 65001;" in text
    assert "family { ipv6 unicast; }" in text and "local-address auto;" in text
    secret.write_text("")
    with pytest.raises(SpeakerError, match=r"peer 10\.0\.0\.1: passwordFile .* one line"):
        render(config, ["x"])
    secret.unlink()
    with pytest.raises(SpeakerError, match="No such file"):
        render(config, ["x"])


def test_a_vip_without_a_session_says_what_the_peers_said() -> None:
    config = parse_bgp({"myASN": 64512, "routerID": "10.0.0.2", "peers": [
        {**PEER, "name": "tor-a"}, {"name": "tor-b", "peerAddress": "10.0.0.5",
                                    "peerASN": 64500}]})
    bgp = BgpAnnouncements(config, lambda _key: True)
    _, bgp.vips = plan(config, {"10.9.0.1": True}, HoldDown(0), 0)
    assert bgp.vip_view("10.9.0.1")["reason"].startswith("no BGP session is up (peer")
    bgp.peers["tor-a"].last_error = explain("notification received (2,2)")
    view = bgp.vip_view("10.9.0.1")
    assert view == {"announced": False, "peers": [], "reason": (
        "no BGP session is up (tor-a: notification received (2,2): OPEN Message Error: Bad "
        "Peer AS (myASN here and peerASN there must agree))")}
    bgp.peers["tor-b"].state = "up"
    assert bgp.vip_view("10.9.0.1") == {"announced": True, "reason": "healthy",
                                        "peers": ["tor-b"]}


def test_the_router_id_is_the_configs_else_this_hosts_address_towards_the_peer() -> None:
    given = parse_bgp({"myASN": 1, "routerID": "10.0.0.7", "peers": [PEER]})
    assert router_id(given) == "10.0.0.7"
    from_source = parse_bgp({"myASN": 1, "peers": [{**PEER, "sourceAddress": "10.0.0.8"}]})
    assert from_source.identifier == "10.0.0.8" and router_id(from_source) == "10.0.0.8"
    # Neither: the host's own (what `ip route get` says it reaches the peer from), so every
    # daemon given the provider's one section gets an identifier of its own; a host with no
    # IPv4 address at all is told to give one.
    try:
        derived = router_id(parse_bgp({"myASN": 1, "peers": [PEER]}))
    except SpeakerError as exc:
        assert str(exc).startswith("routerID: not given")
    else:
        assert ipaddress.ip_address(derived).version == 4 and derived != "10.0.0.1"


def test_a_new_vip_waits_until_dead_targets_would_have_failed_their_checks() -> None:
    """Targets count as up until checked: a VIP is first announced only once its targets'
    checks could have failed (interval x unhealthyThreshold + timeout), so a host that
    starts beside others never draws traffic to targets it cannot reach."""
    checked = parse_balancer({"name": "a", "vip": "10.9.0.1", "listeners": [
        {"protocol": "TCP", "port": 80, "targets": ["10.1.0.1:30080"], "healthCheck": {
            "intervalSeconds": 1, "unhealthyThreshold": 3, "timeoutSeconds": 0.5}},
        {"protocol": "TCP", "port": 81, "targets": ["10.1.0.1:30081"]}]})  # 1 x 2 + 1
    unchecked = parse_balancer({"name": "b", "vip": "10.9.0.2", "listeners": [
        {"protocol": "TCP", "port": 80, "targets": ["10.1.0.1:30080"],
         "healthCheck": {"type": "none"}}]})
    settle = settle_times([checked, unchecked])
    assert settle == {"10.9.0.1": 3.5, "10.9.0.2": 0.0}
    config = parse_bgp({"myASN": 64512, "routerID": "10.0.0.2", "peers": [PEER]})
    hold = HoldDown(config.hold_down_seconds)
    health = {"10.9.0.1": True, "10.9.0.2": True}

    def announced(now: float) -> set[str]:
        routes, _ = plan(config, health, hold, now, settle=settle)
        return {r.prefix for r in routes["10.0.0.1"]}

    assert announced(0) == {"10.9.0.2/32"}  # nothing to wait for
    _, states = plan(config, health, hold, 1.0, settle=settle)
    assert states["10.9.0.1"].reason == "new: its targets' first checks, 2.5s before it is " \
                                         "announced"
    assert announced(3.5) == {"10.9.0.1/32", "10.9.0.2/32"}
    health["10.9.0.1"] = False  # withdrawn for health: the hold-down applies from now on
    assert announced(4) == {"10.9.0.2/32"}
