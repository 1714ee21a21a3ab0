"""L2 and BGP in one daemon serve different pools: the VIPs a BGP advertisement covers go to
BGP (bound on lo as `lo:lbctlbgp`, planned for the peers), every other VIP to L2 (owned,
bound as `lo:lbctl`), never both. The real CLI in a namespace of our own; the BGP peer does
not answer (what is announced does not matter here, who carries which VIP does)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.balancer.network.conftest import Namespaces, Netns, veth
from tests.balancer.network.test_daemon_kernel_l2 import http_get

pytestmark = pytest.mark.network
LBCTL = Path(sys.executable).with_name("lbctl")
BGP_VIP, L2_VIP = "10.97.0.100", "10.97.0.101"
TOKEN = "token-for-the-l2-and-bgp-test"


def _static() -> str:
    def balancer(name: str, vip: str) -> str:
        return (f"  - name: {name}\n    vip: {vip}\n    listeners:\n"
                f"      - {{protocol: TCP, port: 80, targets: ['10.97.1.1:30080'],\n"
                f"         healthCheck: {{type: none}}}}\n")

    return ("balancers:\n" + balancer("routed", BGP_VIP) + balancer("switched", L2_VIP)
            + "bgp:\n  myASN: 64512\n  routerID: 10.97.0.2\n"
              "  peers: [{peerAddress: 10.97.0.1, peerASN: 64500, holdTime: 3s}]\n"
              f"  advertisements: [{{addresses: ['{BGP_VIP}/32']}}]\n")


def _api(ns: Netns, path: str) -> Any:
    code, body = http_get(ns, 18090, path, TOKEN)
    assert code == 200, body
    return json.loads(body)


def _lo(ns: Netns) -> dict[str, str]:
    out = {}
    for link in json.loads(ns.run("ip", "-j", "addr", "show", "dev", "lo").stdout):
        for info in link["addr_info"]:
            if info.get("family") == "inet" and info["local"] != "127.0.0.1":
                out[info["local"]] = info.get("label", "")
    return out


def test_l2_takes_what_bgp_does_not(namespaces: Namespaces, tmp_path: Path) -> None:
    lb, other = namespaces.new("lb"), namespaces.new("peer")
    veth(lb, "front", other, "peer0")
    lb.ip("addr", "add", "10.97.0.2/24", "dev", "front")
    other.ip("addr", "add", "10.97.0.1/24", "dev", "peer0")
    (tmp_path / "lb.yaml").write_text(_static())
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "hb").write_text("a-heartbeat-key-of-enough-bytes")
    proc = lb.popen(str(LBCTL), "balancer", "serve", "--config", str(tmp_path / "lb.yaml"),
                    "--api-listen", "127.0.0.1:18090", "--token-file", str(tmp_path / "token"),
                    "--interface", "front", "--instance-name", "a",
                    "--heartbeat-listen", "10.97.0.2:9451",
                    "--heartbeat-key-file", str(tmp_path / "hb"), "--kernel-dataplane", "off")
    try:
        deadline = time.monotonic() + 30
        seen: tuple[Any, ...] = ()
        while time.monotonic() < deadline:
            try:
                listed = {b["balancer"]["name"]: b["status"]
                          for b in _api(lb, "/v1/balancers")["balancers"]}
                bgp = _api(lb, "/v1/bgp")["status"]
            except (OSError, AssertionError, ValueError, IndexError):
                time.sleep(0.1)
                continue
            seen = (listed["switched"].get("announced"), sorted(bgp["vips"]), _lo(lb))
            if seen[0] == [L2_VIP] and len(seen[2]) == 2:
                break
            time.sleep(0.1)
        announced, bgp_vips, bound = seen
        assert announced == [L2_VIP]  # L2 owns and answers ARP for the one BGP leaves it
        assert listed["routed"].get("announced") == []  # ... and not for BGP's
        assert bgp_vips == [BGP_VIP]
        assert "bgp" in listed["routed"] and "bgp" not in listed["switched"]
        assert bound == {BGP_VIP: "lo:lbctlbgp", L2_VIP: "lo:lbctl"}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert _lo(lb) == {}  # both announcers unbound what they bound
