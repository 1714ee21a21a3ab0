"""The nftables document: one transaction on our table only, Maglev slot maps, ACLs, families.

The last tests hand rendered documents to `nft -c` (check mode: the kernel validates the batch
and commits nothing), so a document the kernel would refuse fails here, not on a live host;
they skip without root or `nft` (and fail under CI, which has both).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from typing import Any

import pytest

from lbctl.balancer.maglev import MaglevTable, populate
from lbctl.balancer.model import BalancerConfig, parse_balancer
from lbctl.balancer.nft import NftablesDataplane, NftError, has_net_admin
from lbctl.balancer.nft_rules import render, render_delete, slot_count, slot_owners
from tests.conftest import unavailable

pytestmark = pytest.mark.unit

NODES = ["10.0.1.11:30080", "10.0.1.12:30080", "10.0.1.13:30080"]


def balancer(**kw: Any) -> BalancerConfig:
    doc: dict[str, Any] = {"name": "web", "vip": "192.0.2.10",
                           "listeners": [{"port": 80, "targets": NODES}]}
    doc.update(kw)
    return parse_balancer(doc)


def all_up(_key: tuple[str, int]) -> bool:
    return True


def down(*addresses: str) -> Any:
    return lambda key: key[0] not in addresses


def commands(doc: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = doc["nftables"]
    assert items[0] == {"metainfo": {"json_schema_version": 1}}
    return items[1:]


def objects(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [c["add"][kind] for c in commands(doc) if kind in c.get("add", {})]


def named(doc: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects(doc, kind) if o.get("name") == name]
    assert len(found) == 1, f"{kind} {name}: {found}"
    return found[0]


def chain_rules(doc: dict[str, Any], chain: str) -> list[list[dict[str, Any]]]:
    return [r["expr"] for r in objects(doc, "rule") if r["chain"] == chain]


def dnat_of(doc: dict[str, Any], chain: str = "fe-0") -> dict[str, Any]:
    (rule,) = chain_rules(doc, chain)
    stmt = [e for e in rule if "dnat" in e]
    assert stmt, rule
    dnat: dict[str, Any] = stmt[0]["dnat"]
    return dnat


def slot_targets(doc: dict[str, Any], chain: str = "fe-0") -> list[str]:
    """slot -> "address:port" from the anonymous map of a frontend chain."""
    mapping = dnat_of(doc, chain)["addr"]["map"]
    elems = mapping["data"]["set"]
    assert [slot for slot, _ in elems] == list(range(len(elems)))
    return [f"{v['concat'][0]}:{v['concat'][1]}" for _, v in elems]


def test_one_transaction_that_replaces_only_our_table() -> None:
    doc = render([balancer()], all_up)
    cmds = commands(doc)
    table = {"family": "inet", "name": "lbctl"}
    assert cmds[:3] == [{"add": {"table": table}}, {"delete": {"table": table}},
                        {"add": {"table": table}}]
    for cmd in cmds[3:]:
        assert list(cmd) == ["add"], cmd  # nothing flushed or deleted after the swap
        (body,) = cmd["add"].values()
        assert (body["family"], body["table"]) == ("inet", "lbctl")
    assert "flush" not in str(doc) and "ruleset" not in str(doc)
    other = render([balancer()], all_up, table="lbtest")
    assert {c["add"][k]["table"] for c in commands(other)[3:] for k in c["add"]} == {"lbtest"}
    assert render_delete("lbtest")["nftables"][1:] == [
        {"add": {"table": {"family": "inet", "name": "lbtest"}}},
        {"delete": {"table": {"family": "inet", "name": "lbtest"}}}]


def test_hooks_dispatch_through_verdict_maps() -> None:
    doc = render([balancer(name=f"b{i}", vip=f"192.0.2.{i + 1}") for i in range(50)], all_up)
    hooks = {c["name"]: (c["type"], c["hook"], c["prio"]) for c in objects(doc, "chain")
             if "hook" in c}
    assert hooks == {"filter-prerouting": ("filter", "prerouting", -110),
                     "filter-output": ("filter", "output", -110),
                     "nat-prerouting": ("nat", "prerouting", -100),
                     "nat-output": ("nat", "output", -100),
                     "nat-postrouting": ("nat", "postrouting", 100)}
    for hook in ("nat-prerouting", "nat-output", "filter-prerouting"):
        assert len(chain_rules(doc, hook)) == 2  # ip + ip6: constant, whatever the count
    dnat4 = named(doc, "map", "dnat4")
    assert dnat4["map"] == "verdict" and len(dnat4["elem"]) == 50
    assert dnat4["elem"][0] == [{"concat": ["192.0.2.1", "tcp", 80]},
                                {"goto": {"target": "fe-0"}}]
    assert "elem" not in named(doc, "map", "dnat6")
    masq = chain_rules(doc, "nat-postrouting")
    assert len(masq) == 2 and all(rule[-1] == {"masquerade": None} for rule in masq)
    assert len(named(doc, "set", "vips4")["elem"]) == 50
    plain = render([balancer()], all_up, masquerade=False)
    assert not chain_rules(plain, "nat-postrouting")
    assert "nat-postrouting" not in {c["name"] for c in objects(plain, "chain")}


def test_slot_map_is_maglev_over_the_healthy_targets() -> None:
    doc = render([balancer()], all_up)
    size = slot_count(3)
    dnat = dnat_of(doc)
    assert dnat["family"] == "ip"
    jhash = dnat["addr"]["map"]["key"]["jhash"]
    assert jhash["mod"] == size
    assert jhash["expr"] == {"concat": [{"payload": {"protocol": "ip", "field": "saddr"}},
                                        {"payload": {"protocol": "th", "field": "sport"}}]}
    keys = sorted(NODES)
    assert slot_targets(doc) == [keys[i] for i in populate(keys, size)]
    assert slot_targets(doc) == [MaglevTable(NODES, size).keys[i]
                                 for i in MaglevTable(NODES, size).table]


def test_a_target_leaving_moves_only_its_own_slots() -> None:
    before = slot_targets(render([balancer()], all_up))
    after = slot_targets(render([balancer()], down("10.0.1.12")))
    assert len(before) == len(after) == slot_count(3)
    gone = "10.0.1.12:30080"
    assert gone not in after
    for old, new in zip(before, after, strict=True):
        assert old in (new, gone)
    moved = Counter(new for old, new in zip(before, after, strict=True) if old == gone)
    assert set(moved) == {"10.0.1.11:30080", "10.0.1.13:30080"}  # spread, not dumped on one
    healthy = sorted(set(NODES) - {gone})
    fallback = [healthy[i] for i in populate(healthy, slot_count(3))]
    assert [old if old != gone else fallback[s] for s, old in enumerate(before)] == after
    back = slot_targets(render([balancer()], all_up))
    assert back == before  # coming back restores exactly its slots


def test_slot_owners_and_sizes() -> None:
    assert [slot_count(n) for n in (0, 1, 2, 3, 10)] == [31, 37, 67, 97, 331]
    assert slot_count(3000) == 65537
    for n in range(1, 12):
        size = slot_count(n)
        keys = [f"10.0.0.{i}:1" for i in range(n)]
        shares = Counter(slot_owners(keys, set(keys), size))
        assert max(shares.values()) - min(shares.values()) <= 1
        assert max(shares.values()) / (size / n) - 1 < 0.035  # M >= 32 x targets: < 3.5%
    assert slot_owners(NODES, set(), 31) == []
    assert set(slot_owners(NODES, {NODES[0]}, 31)) == {NODES[0]}


def test_client_ip_affinity_hashes_the_source_address_only() -> None:
    doc = render([balancer(sessionAffinity="ClientIP")], all_up)
    jhash = dnat_of(doc)["addr"]["map"]["key"]["jhash"]
    assert jhash["expr"] == {"payload": {"protocol": "ip", "field": "saddr"}}


def test_source_ranges_drop_outsiders_before_nat() -> None:
    doc = render([balancer(sourceRanges=["10.1.0.0/16", "10.1.2.0/24", "198.51.100.7/32",
                                         "fd00::/8"])], all_up)
    src = named(doc, "set", "src4-0")
    assert src["flags"] == ["interval"]
    assert src["elem"] == [{"prefix": {"addr": "10.1.0.0", "len": 16}},  # overlap merged
                           {"prefix": {"addr": "198.51.100.7", "len": 32}}]
    assert named(doc, "map", "acl4")["elem"] == [[{"concat": ["192.0.2.10", "tcp", 80]},
                                                  {"goto": {"target": "acl-0"}}]]
    assert chain_rules(doc, "acl-0") == [[
        {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                   "right": "@src4-0"}}, {"drop": None}]]
    # an IPv4 VIP with only IPv6 ranges is closed to everyone; 0.0.0.0/0 is no restriction
    closed = render([balancer(sourceRanges=["fd00::/8"])], all_up)
    assert chain_rules(closed, "acl-0") == [[
        {"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}},
        {"drop": None}]]
    opened = render([balancer(sourceRanges=["0.0.0.0/0"])], all_up)
    assert "elem" not in named(opened, "map", "acl4")
    assert "elem" not in named(render([balancer()], all_up), "map", "acl4")


def test_udp_frontend_and_ipv6_vip() -> None:
    b = balancer(vips=["192.0.2.10", "2001:db8::10"], listeners=[
        {"protocol": "UDP", "port": 53,
         "targets": ["10.0.1.11:30053", "[fd00::11]:30053", "[fd00::12]:30053"]}])
    doc = render([b], all_up)
    assert named(doc, "map", "dnat4")["elem"][0][0] == {"concat": ["192.0.2.10", "udp", 53]}
    assert named(doc, "map", "dnat6")["elem"][0][0] == {"concat": ["2001:db8::10", "udp", 53]}
    v4, v6 = chain_rules(doc, "fe-0")[0], chain_rules(doc, "fe-1")[0]
    proto = {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "udp"}}
    assert v4[0] == v6[0] == proto
    assert v4[1] == {"dnat": {"family": "ip", "addr": "10.0.1.11", "port": 30053}}  # only v4
    assert dnat_of(doc, "fe-1")["family"] == "ip6"
    assert set(slot_targets(doc, "fe-1")) == {"fd00::11:30053", "fd00::12:30053"}
    assert len(slot_targets(doc, "fe-1")) == slot_count(2)


def test_no_healthy_target_rejects() -> None:
    b = balancer(listeners=[{"port": 80, "targets": NODES},
                            {"protocol": "UDP", "port": 53, "targets": ["10.0.1.11:30053"]},
                            {"port": 81, "targets": []}])
    doc = render([b], down("10.0.1.11", "10.0.1.12", "10.0.1.13"))
    assert chain_rules(doc, "fe-0")[0][1] == {"reject": {"type": "tcp reset"}}
    assert chain_rules(doc, "fe-1")[0][1] == {"reject": {"type": "icmpx",
                                                         "expr": "port-unreachable"}}
    assert chain_rules(doc, "fe-2")[0][1] == {"reject": {"type": "tcp reset"}}


def test_a_frontend_claimed_twice_keeps_the_first() -> None:
    doc = render([balancer(name="a"), balancer(name="b")], all_up)
    assert len(named(doc, "map", "dnat4")["elem"]) == 1
    assert objects(doc, "rule")[0]["comment"].startswith("a ")


def test_has_net_admin_reads_the_effective_set(tmp_path: Any) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t0000000000001000\n")
    assert has_net_admin(status)
    status.write_text("Name:\tx\nCapEff:\t0000000000000400\n")
    assert not has_net_admin(status)
    assert not has_net_admin(tmp_path / "missing")


CHECKS = {
    "v4": [balancer(sourceRanges=["10.0.0.0/8"])],
    "dual-stack-udp-affinity": [balancer(
        vips=["192.0.2.10", "2001:db8::10"], sessionAffinity="ClientIP",
        sourceRanges=["10.0.0.0/8", "fd00::/8"],
        listeners=[{"protocol": "UDP", "port": 53, "targets": ["[fd00::11]:30053",
                                                                "[fd00::12]:30053"]},
                   {"port": 443, "targets": NODES}])],
    "ipv6-only": [balancer(vip="2001:db8::10", listeners=[
        {"port": 80, "targets": ["[fd00::11]:30080", "[fd00::12]:30080"]}])],
    "many": [balancer(name=f"b{i}", vip=f"192.0.2.{i + 1}") for i in range(100)],
    "empty": [],
}


@pytest.mark.parametrize("healthy", ["all", "none", "one-down"])
@pytest.mark.parametrize("config", sorted(CHECKS))
def test_the_kernel_accepts_the_document(config: str, healthy: str) -> None:
    if not has_net_admin() or shutil.which("nft") is None:
        unavailable("nft check mode needs CAP_NET_ADMIN and the nft binary")
    is_up = {"all": all_up, "none": lambda _k: False,
             "one-down": down("10.0.1.12", "fd00::12")}[healthy]
    dp = NftablesDataplane(table=f"lbctl-check-{os.getpid()}")
    assert dp.run_document(render(CHECKS[config], is_up, table=dp.table), check=True) < 10
    assert dp.current() is None  # check mode commits nothing


def test_a_refused_document_raises_with_nfts_words() -> None:
    if not has_net_admin() or shutil.which("nft") is None:
        unavailable("nft check mode needs CAP_NET_ADMIN and the nft binary")
    dp = NftablesDataplane(table=f"lbctl-check-{os.getpid()}")
    doc = render([balancer()], all_up, table=dp.table)
    doc["nftables"].append({"add": {"rule": {"family": "inet", "table": dp.table,
                                             "chain": "no-such-chain", "expr": []}}})
    with pytest.raises(NftError) as caught:
        dp.run_document(doc, check=True)
    assert "No such file or directory" in caught.value.stderr
