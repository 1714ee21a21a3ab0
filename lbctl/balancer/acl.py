"""Source-range ACL (`sourceRanges`): which client addresses may use a balancer.

Why not `ipaddress` per check: parsing an address into an object and testing membership against
every network costs microseconds per range, paid on every accepted connection or datagram.
Here each range becomes (prefix length, masked integer); a check converts the address to an
integer once (`inet_pton`) and does one set lookup per distinct prefix length, and verdicts are
cached in a bounded dict because a busy VIP sees the same clients again and again.
IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack socket reports for an IPv4
client) are judged as the IPv4 address, and a mapped range is judged as the IPv4 range.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

CACHE_SIZE = 65536


def _to_int(ip: str) -> tuple[int, int] | None:
    """(4 or 6, address as int) with mapped IPv6 folded to IPv4; None if not an address."""
    try:
        if ":" not in ip:
            return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, ip.split("%", 1)[0]), "big")
    except (OSError, ValueError):
        return None
    if value >> 32 == 0xFFFF:
        return 4, value & 0xFFFFFFFF
    return 6, value


class Acl:
    """`allows(ip)`: True when `ip` lies in one of the CIDRs, or when there are none."""

    def __init__(self, cidrs: Iterable[str] = ()) -> None:
        self.cidrs: tuple[str, ...] = tuple(cidrs)
        # family -> [(prefix length, mask, {network ints})], longest prefixes first.
        tables: dict[int, dict[int, set[int]]] = {4: {}, 6: {}}
        family: int
        for cidr in self.cidrs:
            net = ipaddress.ip_network(cidr.strip(), strict=False)
            family, base, plen = net.version, int(net.network_address), net.prefixlen
            if family == 6 and plen >= 96 and base >> 32 == 0xFFFF:
                family, base, plen = 4, base & 0xFFFFFFFF, plen - 96
            tables[family].setdefault(plen, set()).add(base)
        self._tables: dict[int, list[tuple[int, set[int]]]] = {}
        for family, by_len in tables.items():
            bits = 32 if family == 4 else 128
            full = (1 << bits) - 1
            self._tables[family] = [
                (full ^ ((1 << (bits - plen)) - 1), nets)
                for plen, nets in sorted(by_len.items(), reverse=True)
            ]
        self.allow_all: bool = not self.cidrs
        self._cache: dict[str, bool] = {}

    def __repr__(self) -> str:
        return f"Acl({list(self.cidrs)!r})"

    def _decide(self, ip: str) -> bool:
        parsed = _to_int(ip)
        if parsed is None:
            return False
        family, value = parsed
        return any(value & mask in nets for mask, nets in self._tables[family])

    def allows(self, ip: str) -> bool:
        if self.allow_all:
            return True
        verdict = self._cache.get(ip)
        if verdict is None:
            verdict = self._decide(ip)
            if len(self._cache) >= CACHE_SIZE:
                # Evict the oldest entry (dicts keep insertion order): a cheap FIFO bound.
                del self._cache[next(iter(self._cache))]
            self._cache[ip] = verdict
        return verdict
