"""`baremetal.bgp`: parsed with MetalLB's names, pools resolved, pushed to each daemon with its
own peers, withdrawn when the section leaves the config, and a Service degraded only when no
daemon announces its VIP.

The end-to-end test runs the two-daemon rig of `test_baremetal_daemons` and a real BGP peer
(a second ExaBGP, `tests/balancer/bgp_peer.py`) on loopback; the routers of the namespace
tests are not needed to see what the provider pushes and what the peer receives.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lbctl.balancer.bgp_speaker import exabgp_binary
from lbctl.bgp_config import parse_bgp
from providers.baremetal import create
from providers.baremetal.bgp_push import BgpPusher
from providers.baremetal.bgp_settings import BgpSettings
from providers.baremetal.daemons import _summary
from providers.baremetal.settings import parse_settings
from tests.balancer.bgp_peer import RecordingPeer
from tests.conftest import wait_for
from tests.providers.baremetal.test_baremetal_daemons import (
    CLUSTER,
    DAEMONS,
    OneService,
    Rig,
    _settings,
    _spec,
)

POOLS = [{"name": "edge", "addresses": ["10.20.0.0/28", "10.20.1.10-10.20.1.20"]},
         {"name": "l2", "addresses": ["10.30.0.0/28"]}]
BALANCERS = [{"name": "lb1", "url": "http://127.0.0.1:1", "tokenFile": "/t"},
             {"name": "lb2", "url": "http://127.0.0.1:2", "tokenFile": "/t"}]
PEER = {"peerAddress": "10.0.0.1", "peerASN": 64500}


def _parse(bgp: object) -> tuple[object, list[tuple[str, str]]]:
    settings, problems = parse_settings({"pools": POOLS, "balancers": BALANCERS, "bgp": bgp})
    return settings.bgp, problems


def test_pools_become_addresses_and_instances_narrow_the_peers() -> None:
    bgp, problems = _parse({"myASN": 64512, "routerID": "10.0.0.2",
                            "peers": [{**PEER, "instances": ["lb1"]},
                                      {"peerAddress": "10.0.0.9", "peerASN": 64500}],
                            "advertisements": [{"ipAddressPools": ["edge"],
                                                "communities": ["no-export"]}]})
    assert problems == []
    config = bgp.config  # type: ignore[attr-defined]
    assert config.advertisements[0].addresses == ("10.20.0.0/28", "10.20.1.10-10.20.1.20")
    assert config.advertisements[0].covers("10.20.1.15")
    assert not config.advertisements[0].covers("10.30.0.1")  # the L2 pool stays L2's
    assert [p.peer_address for p in config.for_instance("lb1").peers] == ["10.0.0.1", "10.0.0.9"]
    assert [p.peer_address for p in config.for_instance("lb2").peers] == ["10.0.0.9"]


@pytest.mark.parametrize(("bgp", "expected"), [
    ({"myASN": 64512, "routerID": "10.0.0.2", "peers": [{**PEER, "holdTime": "1s"}]},
     [("baremetal.bgp.peers[0].holdTime", "must be 0 or between 3s and 65535s (RFC 4271), "
                                          "not '1s'")]),
    ({"myASN": 64512, "routerID": "10.0.0.2", "peers": [PEER],
      "advertisements": [{"ipAddressPools": ["edge", "gone"]}]},
     [("baremetal.bgp.advertisements[0].ipAddressPools[1]",
       "no pool named 'gone' (pools: edge, l2)")]),
    ({"myASN": 64512, "routerID": "10.0.0.2", "peers": [{**PEER, "instances": ["lb9"]}]},
     [("baremetal.bgp.peers[0].instances[0]",
       "no balancer named 'lb9' in baremetal.balancers (lb1, lb2)")]),
    ({"myASN": 64512, "routerID": "10.0.0.2", "peers": [{**PEER, "password": "x"}]},
     [("baremetal.bgp.peers[0]", "password: a TCP-MD5 secret is never written in config; put "
                                 "it in a file (a mounted Secret) and give passwordFile")]),
])
def test_a_bad_section_is_named_and_not_pushed(bgp: object,
                                               expected: list[tuple[str, str]]) -> None:
    settings, problems = _parse(bgp)
    assert problems == expected
    assert settings.config is None and settings.present  # type: ignore[attr-defined]
    assert not settings.managed  # type: ignore[attr-defined]  # daemons keep their last good


@pytest.mark.integration
@pytest.mark.skipif(exabgp_binary() is None, reason="exabgp not installed")
def test_pushed_announced_degraded_until_announced_and_withdrawn_on_removal(
        tmp_path: Path) -> None:
    rig = Rig(tmp_path, 21)  # the two-daemon rig, address block 21
    for name in DAEMONS:
        rig.start(name)
    servers = rig.serve_backends()
    peer = RecordingPeer(tmp_path).start()
    cluster = OneService()
    base = _settings(rig)
    section = peer.config()
    section["peers"][0]["instances"] = ["lb1"]  # lb2 peers with nobody: it gets no section
    section["advertisements"] = [{"ipAddressPools": ["lbs"], "communities": ["no-export"]}]
    provider = create({**base, "bgp": section}, CLUSTER, cluster)
    try:
        assert provider.problems == ()
        spec = _spec(servers)
        cluster.add(spec)
        first = provider.ensure(spec)
        code, lb1 = rig.api("lb1", path="/v1/bgp")
        assert code == 200 and lb1["source"] == "programmed"
        assert [p["peerAddress"] for p in lb1["config"]["peers"]] == [peer.address]
        assert lb1["config"]["advertisements"][0]["addresses"] == [f"{rig.vip}/32"]
        assert rig.api("lb2", path="/v1/bgp")[1]["source"] == "none"
        routes = wait_for(lambda: peer.routes() or None, 30, "the VIP announced to the peer")
        assert list(routes) == [f"{rig.vip}/32"]
        assert routes[f"{rig.vip}/32"]["community"] == [[65535, 65281]]
        if first.degraded:  # the session came up after the first ensure: said so, then fine
            assert f"VIP {rig.vip} is announced over BGP by no balancer host" in first.degraded
        provider._programmer.poll_once()  # type: ignore[attr-defined]
        assert provider.ensure(spec).degraded is None
        # The peer goes away: no host announces the VIP, and the Service says so.
        peer.stop()
        wait_for(lambda: rig.api("lb1", path="/v1/bgp")[1]["status"]["peers"][0]["state"]
                 != "up", 20, "the session down")
        provider._programmer.poll_once()  # type: ignore[attr-defined]
        degraded = provider.ensure(spec).degraded or ""
        assert f"VIP {rig.vip} is announced over BGP by no balancer host (lb1: no BGP " \
               f"session is up" in degraded, degraded
        peer.start()
        wait_for(lambda: peer.routes() or None, 30, "announced again to the restarted peer")
        # The section leaves the config: withdrawn from the daemon on the next poll.
        provider.apply_settings(base)
        provider._programmer.poll_once()  # type: ignore[attr-defined]
        assert rig.api("lb1", path="/v1/bgp")[1]["source"] == "none"
        wait_for(lambda: peer.states()[-1] == "down", 10, "the session closed")
        assert peer.routes() == {}
    finally:
        provider.close()
        peer.stop()
        rig.close()


def test_a_vip_waiting_out_its_first_checks_is_not_a_problem_and_its_change_is_seen() -> None:
    pusher = BgpPusher(BgpSettings(parse_bgp({"myASN": 1, "peers": [PEER]}), True),
                       lambda *_: (200, {}))

    def report(announced: bool, reason: str) -> dict[str, object]:
        return {"balancer": {"revision": "r"}, "status": {"serving": True, "bgp": {
            "10.20.0.1": {"announced": announced, "reason": reason, "peers": []}}}}

    new = report(False, "new: its targets' first checks, 2.0s before it is announced")
    down = report(False, "no healthy target: withdrawn")
    up = report(True, "healthy")
    assert pusher.unannounced(("10.20.0.1",), {"lb1": new, "lb2": new}) == []
    assert pusher.unannounced(("10.20.0.1",), {"lb1": new, "lb2": down}) == [
        "VIP 10.20.0.1 is announced over BGP by no balancer host (lb1: new: its targets' "
        "first checks, 2.0s before it is announced; lb2: no healthy target: withdrawn)"]
    assert pusher.unannounced(("10.20.0.1",), {"lb1": up, "lb2": down}) == []
    # The poll notifies the controller when a daemon's view of a VIP changes.
    assert _summary(new) != _summary(up) and _summary(new) == _summary(down)
