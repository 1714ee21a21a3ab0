"""The nftables data plane as data: balancers + health in, one `nft -j` transaction out.

Why a pure renderer: the kernel rules are a function of (config, health verdicts) and nothing
else, so every change (a balancer PUT, a target going down or up) re-renders the whole table and
replaces it in ONE transaction: `add table` + `delete table` + `add table` + contents, all in one
batch. The kernel commits it atomically (a packet sees the old rules or the new, never a mix),
and base-chain hooks of the new table are registered before the old ones go, so NAT stays
hooked and conntrack keeps every established flow on the target it was DNAT'd to. lbctl owns
exactly one table (`inet lbctl`) and never names another.

Per-packet cost does not grow with the number of balancers: the hooks do one verdict-map lookup
on `daddr . l4proto . dport` that jumps to the frontend's chain, where one `jhash` indexes an
anonymous map of M slots -> `target address . port`.

The slot map is Maglev over the listener's targets with a health overlay (`slot_owners`): every
slot whose Maglev owner (over ALL configured targets) is healthy keeps it; the slots of unhealthy
targets go to their owner in the Maglev table over the healthy targets only. Plain Maglev over
the healthy set would also move a few slots between survivors when one target leaves (measured:
1 of 97 slots with 3 targets, 16 of 331 with 10); the overlay guarantees that a target going
down moves only its own flows, and that its return moves exactly those back.

M = the smallest prime >= max(31, 32 x targets). Maglev shares differ by at most one slot, so
the imbalance is <= targets/M, about 3% (measured 2.1% with 3 targets, M=97; 2.7% with 10,
M=331; 3.3% among the survivors with 1 of 10 down), below the noise of hashing a few thousand
flows. Katran's 65537 slots per frontend would make 1,000 balancers a 65 M-element transaction;
at 32 x, 1,000 balancers of 3 targets render in ~0.1 s and commit in ~0.6-0.8 s (16 x: ~0.5 s).

Known limit: conntrack pins a flow to the target it was DNAT'd to, so a UDP flow on a dead target
stays there until its conntrack entry expires (30 s unreplied, 120 s assured); deleting those
entries needs ctnetlink (`conntrack -D`), which is not done here.

What the host needs (not changed here): `net.ipv4.ip_forward=1` (and IPv6 forwarding) when the
balancer forwards to other machines, no other table dropping the forwarded flows, and, with
`masquerade=False`, targets that route replies back through the balancer.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from collections.abc import Callable, Collection, Sequence
from typing import Any

from .maglev import MaglevTable
from .model import BalancerConfig, ListenerConfig, TargetConfig

TABLE = "lbctl"
FAMILY = "inet"
MIN_SLOTS = 31
SLOTS_PER_TARGET = 32
MAX_SLOTS = 65537
FILTER_PRIORITY = -110
"""dstnat - 10: source ranges are enforced on the VIP before any NAT (kube-proxy's choice)."""
NAT_PRIORITY = -100
SNAT_PRIORITY = 100

Json = dict[str, Any]
IsUp = Callable[[tuple[str, int]], bool]


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    f = 2
    while f * f <= n:
        if n % f == 0:
            return False
        f += 1
    return True


@functools.cache
def slot_count(targets: int) -> int:
    """M: the smallest prime >= max(MIN_SLOTS, SLOTS_PER_TARGET x targets), capped at 65537."""
    n = max(MIN_SLOTS, SLOTS_PER_TARGET * targets)
    if n >= MAX_SLOTS:
        return MAX_SLOTS
    while not _is_prime(n):
        n += 1
    return n


@functools.lru_cache(maxsize=4096)
def _maglev(keys: tuple[str, ...], size: int) -> tuple[str, ...]:
    table = MaglevTable(keys, size)
    return tuple(table.keys[i] for i in table.table)


def slot_owners(keys: Sequence[str], healthy: Collection[str], size: int) -> list[str]:
    """slot -> target key: Maglev over `keys`, each unhealthy owner's slots re-owned by Maglev
    over the healthy keys. Empty when no key is healthy."""
    up = tuple(sorted(k for k in set(keys) if k in healthy))
    if not up:
        return []
    primary = _maglev(tuple(sorted(set(keys))), size)
    if len(up) == len(set(keys)):
        return list(primary)
    fallback = _maglev(up, size)
    return [owner if owner in healthy else fallback[slot] for slot, owner in enumerate(primary)]


def _family(address: str) -> int:
    return ipaddress.ip_address(address).version


def _seed(balancer: str) -> int:
    """A stable per-balancer jhash seed (BLAKE2b, never `hash()`: restarts keep the mapping)."""
    digest = hashlib.blake2b(balancer.encode(), digest_size=4, person=b"lbctl-nft-seed").digest()
    return int.from_bytes(digest, "little")


def _payload(protocol: str, field: str) -> Json:
    return {"payload": {"protocol": protocol, "field": field}}


def _match(left: Json, right: Any, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def _l4proto(protocol: str) -> Json:
    return _match({"meta": {"key": "l4proto"}}, protocol.lower())


class _Doc:
    """The transaction being built: commands in order, all in `family table`."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.commands: list[Json] = []

    def add(self, kind: str, **body: Any) -> None:
        self.commands.append({"add": {kind: {"family": FAMILY, "table": self.table, **body}}})

    def chain(self, name: str, hook: tuple[str, str, int] | None = None) -> None:
        if hook is None:
            self.add("chain", name=name)
        else:
            kind, hook_name, prio = hook
            self.add("chain", name=name, type=kind, hook=hook_name, prio=prio, policy="accept")

    def rule(self, chain: str, *expr: Json, comment: str = "") -> None:
        body: Json = {"chain": chain, "expr": list(expr)}
        if comment:
            body["comment"] = comment[:127]
        self.add("rule", **body)

    def keyed(self, name: str, key_type: list[str] | str, elems: list[Any],
              data: str | None = None, flags: list[str] | None = None) -> None:
        """A named set (data None) or map; `elem` only when non-empty (nft rejects [])."""
        body: Json = {"name": name, "type": key_type}
        if data is not None:
            body["map"] = data
        if flags:
            body["flags"] = flags
        if elems:
            body["elem"] = elems
        self.add("map" if data is not None else "set", **body)


def _dnat(li: ListenerConfig, vip_family: int, affinity: str, seed: int,
          is_up: IsUp) -> list[Json]:
    """The statement sending a new flow to its slot's target, or a reject when none is up."""
    ip = "ip" if vip_family == 4 else "ip6"
    targets: dict[str, TargetConfig] = {
        t.endpoint: t for t in li.targets if _family(t.address) == vip_family}
    healthy = {k for k, t in targets.items() if is_up((t.address, t.port))}
    proto = _l4proto(li.protocol)
    if not healthy:  # fail fast rather than let clients time out (kube-proxy does the same)
        if li.protocol == "TCP":
            return [proto, {"reject": {"type": "tcp reset"}}]
        return [proto, {"reject": {"type": "icmpx", "expr": "port-unreachable"}}]
    if len(healthy) == 1:
        t = targets[next(iter(healthy))]
        return [proto, {"dnat": {"family": ip, "addr": t.address, "port": t.port}}]
    size = slot_count(len(targets))
    owners = slot_owners(list(targets), healthy, size)
    value = {k: {"concat": [t.address, t.port]} for k, t in targets.items() if k in healthy}
    flow: Json = _payload(ip, "saddr")
    if affinity != "ClientIP":
        flow = {"concat": [flow, _payload("th", "sport")]}
    key = {"jhash": {"mod": size, "seed": seed, "expr": flow}}
    elems = [[slot, value[owner]] for slot, owner in enumerate(owners)]
    return [proto, {"dnat": {"family": ip, "addr": {"map": {"key": key,
                                                           "data": {"set": elems}}}}}]


def _ranges(b: BalancerConfig, version: int) -> list[Json] | None:
    """The allowed prefixes of one family (overlaps merged: nft refuses them); None = all."""
    if not b.source_ranges:
        return None
    nets = [n for n in map(ipaddress.ip_network, b.source_ranges) if n.version == version]
    merged = list(ipaddress.collapse_addresses(nets))  # type: ignore[type-var]
    if any(n.prefixlen == 0 for n in merged):
        return None
    return [{"prefix": {"addr": str(n.network_address), "len": n.prefixlen}} for n in merged]


def render(balancers: Sequence[BalancerConfig], is_up: IsUp, *, table: str = TABLE,
           masquerade: bool = True) -> Json:
    """The `nft -j -f -` document replacing `inet <table>` with these balancers, atomically.

    A frontend (protocol, VIP, port) claimed twice keeps its first balancer; targets of the
    other address family than the VIP are ignored (NAT cannot cross families)."""
    doc = _Doc(table)
    top = {"family": FAMILY, "name": table}
    doc.commands += [{"add": {"table": dict(top)}}, {"delete": {"table": dict(top)}},
                     {"add": {"table": dict(top)}}]
    dnat: dict[int, list[Any]] = {4: [], 6: []}
    acl: dict[int, list[Any]] = {4: [], 6: []}
    vips: dict[int, set[str]] = {4: set(), 6: set()}
    seen: set[tuple[str, str, int]] = set()
    body: list[Json] = []  # per-balancer objects, emitted after the chains they name exist
    fe = 0
    for index, b in enumerate(balancers):
        seed = _seed(b.name)
        acl_chain = f"acl-{index}"
        acl_rules: list[list[Json]] = []
        restricted: set[int] = set()
        for version in sorted({_family(v) for v in b.addresses}):
            allowed = _ranges(b, version)
            if allowed is None:
                continue
            restricted.add(version)
            if not allowed:  # ranges given, none of this family: nobody may connect
                acl_rules.append([_match({"meta": {"key": "nfproto"}}, f"ipv{version}"),
                                  {"drop": None}])
                continue
            name = f"src{version}-{index}"
            doc.keyed(name, f"ipv{version}_addr", allowed, flags=["interval"])
            ip = "ip" if version == 4 else "ip6"
            acl_rules.append([_match(_payload(ip, "saddr"), f"@{name}", "!="), {"drop": None}])
        for li in b.listeners:
            for vip in b.addresses:
                front = (li.protocol, vip, li.port)
                if front in seen:
                    continue
                seen.add(front)
                version = _family(vip)
                key = {"concat": [vip, li.protocol.lower(), li.port]}
                chain = f"fe-{fe}"
                fe += 1
                doc.chain(chain)
                body.append({"chain": chain, "expr": _dnat(li, version, b.session_affinity,
                                                           seed, is_up),
                             "comment": f"{b.name} {li.protocol} {vip} {li.port}"})
                dnat[version].append([key, {"goto": {"target": chain}}])
                vips[version].add(vip)
                if version in restricted:
                    acl[version].append([key, {"goto": {"target": acl_chain}}])
        if acl_rules:
            doc.chain(acl_chain)
            for expr in acl_rules:
                body.append({"chain": acl_chain, "expr": expr, "comment": b.name})
    for version in (4, 6):
        key_type = [f"ipv{version}_addr", "inet_proto", "inet_service"]
        doc.keyed(f"dnat{version}", key_type, dnat[version], data="verdict")
        doc.keyed(f"acl{version}", key_type, acl[version], data="verdict")
        doc.keyed(f"vips{version}", f"ipv{version}_addr", sorted(vips[version]))
    for item in body:
        doc.rule(item["chain"], *item["expr"], comment=item["comment"])
    hooks = [("filter-prerouting", ("filter", "prerouting", FILTER_PRIORITY), "acl"),
             ("filter-output", ("filter", "output", FILTER_PRIORITY), "acl"),
             ("nat-prerouting", ("nat", "prerouting", NAT_PRIORITY), "dnat"),
             ("nat-output", ("nat", "output", NAT_PRIORITY), "dnat")]
    for name, hook, vmap in hooks:
        doc.chain(name, hook)
        for version, ip in ((4, "ip"), (6, "ip6")):
            lookup = {"concat": [_payload(ip, "daddr"), {"meta": {"key": "l4proto"}},
                                 _payload("th", "dport")]}
            doc.rule(name, {"vmap": {"key": lookup, "data": f"@{vmap}{version}"}})
    if masquerade:  # only flows DNAT'd from one of our VIPs: other NAT on the host is not ours
        doc.chain("nat-postrouting", ("nat", "postrouting", SNAT_PRIORITY))
        for version, ip in ((4, "ip"), (6, "ip6")):
            doc.rule("nat-postrouting",
                     _match({"ct": {"key": "status"}}, "dnat", "in"),
                     _match({"ct": {"key": f"{ip} daddr", "dir": "original"}},
                            f"@vips{version}"),
                     {"masquerade": None})
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *doc.commands]}


def render_delete(table: str = TABLE) -> Json:
    """Delete `inet <table>` if it exists (the `add` makes a missing table no error)."""
    top = {"family": FAMILY, "name": table}
    return {"nftables": [{"metainfo": {"json_schema_version": 1}},
                         {"add": {"table": dict(top)}}, {"delete": {"table": dict(top)}}]}
