"""VIPs on `lo` (lo_vips.py) in a namespace of our own: what BGP binds, keeps and cleans up,
and that it never touches what L2 bound (each announcer marks its own addresses)."""

from __future__ import annotations

import asyncio
import json

from lbctl.balancer.lo_vips import LoBinding, bind_vip
from tests.balancer.network.conftest import Namespaces, Netns


def _on_lo(ns: Netns) -> dict[str, str]:
    """address -> its label (IPv4) or metric (IPv6) on the namespace's lo, loopback left out."""
    out = {}
    for link in json.loads(ns.run("ip", "-j", "addr", "show", "dev", "lo").stdout):
        for info in link["addr_info"]:
            if info["local"] not in ("127.0.0.1", "::1"):
                out[info["local"]] = str(info.get("label") or info.get("metric"))
    return out


def test_bgp_vips_bound_kept_cleaned_and_l2_left_alone(namespaces: Namespaces) -> None:
    ns = namespaces.new("lo")

    async def scenario() -> list[dict[str, str]]:
        seen = []
        bind_vip("10.99.7.9", True)  # L2's (label lo:lbctl): not BGP's to clean
        first = LoBinding()
        await first.keep(["10.99.7.1", "10.99.7.2", "fd00:7::1", "127.0.0.5"])
        seen.append(_on_lo(ns))
        await first.keep(["10.99.7.1"])
        seen.append(_on_lo(ns))
        # A crashed run left 10.99.7.1; the next one wants 10.99.7.3 only.
        second = LoBinding()
        await second.keep(["10.99.7.3"])
        seen.append(_on_lo(ns))
        await second.close()
        seen.append(_on_lo(ns))
        assert first.error == "" and second.error == ""
        return seen

    with ns.inside():  # the binders' `ip` runs on threads started in here: in the namespace
        bound, narrowed, restarted, closed = asyncio.run(scenario())
    assert bound == {"10.99.7.9": "lo:lbctl", "10.99.7.1": "lo:lbctlbgp",
                     "10.99.7.2": "lo:lbctlbgp", "fd00:7::1": "47018"}  # no 127.0.0.5
    assert narrowed == {"10.99.7.9": "lo:lbctl", "10.99.7.1": "lo:lbctlbgp"}
    assert restarted == {"10.99.7.9": "lo:lbctl", "10.99.7.3": "lo:lbctlbgp"}
    assert closed == {"10.99.7.9": "lo:lbctl"}
