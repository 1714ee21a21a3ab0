"""Pools of cluster IPs and node ports that Services draw from, as kube-apiserver keeps them.

kube-apiserver gives every Service a ClusterIP from `--service-cluster-ip-range` and, for NodePort
and LoadBalancer Services, node ports from `--service-node-port-range`. A value the user asks for
is honoured or refused ("already allocated" / "not in the valid range"); a value nobody asked for
is drawn at random, preferring the upper part of the range so that the lower part stays free for
static requests (KEP-3070 and KEP-3668). Both allocators here do the same, in memory, with kube's
error texts, so the admission code can put those texts into 422 answers verbatim.

Each allocator is a set of taken offsets plus a seeded `random.Random`, so allocation is O(1) on
average even for a /12 (a million addresses) and tests can make it deterministic.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator

from lbctl.sandbox.name_formats import IPAddress, IPNetwork, parse_cidr, parse_ip

# The sloppy IP and CIDR parsers live with the IP checks in `name_formats`; re-exported here.
__all__ = [
    "AllocationError",
    "AlreadyAllocatedError",
    "IPAddress",
    "IPAllocator",
    "IPNetwork",
    "NotInRangeError",
    "PortAllocator",
    "RangeFullError",
    "parse_cidr",
    "parse_ip",
]


class AllocationError(Exception):
    """A value could not be reserved; `str(err)` is kube's message for it."""


class NotInRangeError(AllocationError):
    """The requested value lies outside what this allocator hands out."""


class AlreadyAllocatedError(AllocationError):
    """The requested value is valid but already taken."""


class RangeFullError(AllocationError):
    """No free value is left."""

    def __init__(self) -> None:
        super().__init__("range is full")


def _address(version: int, value: int) -> IPAddress:
    if version == 4:
        return ipaddress.IPv4Address(value)
    return ipaddress.IPv6Address(value)


def _range_offset(size: int, low: int, high: int, step: int) -> int:
    """kube's `calculateRangeOffset`: the size of the lower band kept for static requests."""
    if size <= low:
        return 0
    return max(low, min(size // step, high))


class _OffsetPool:
    """Taken offsets in [0, size) and kube's random, upper-band-first choice of a free one."""

    __slots__ = ("_band", "_never_next", "_rng", "_size", "_taken")

    def __init__(self, size: int, band: int, rng: random.Random,
                 never_next: frozenset[int] = frozenset()) -> None:
        self._size = size
        self._band = band
        self._rng = rng
        self._taken: set[int] = set()
        self._never_next = never_next

    @property
    def size(self) -> int:
        return self._size

    @property
    def used(self) -> int:
        return len(self._taken)

    def has(self, offset: int) -> bool:
        return offset in self._taken

    def take(self, offset: int) -> bool:
        if offset in self._taken:
            return False
        self._taken.add(offset)
        return True

    def give(self, offset: int) -> None:
        self._taken.discard(offset)

    def taken(self) -> Iterator[int]:
        return iter(sorted(self._taken))

    def take_next(self) -> int:
        """Take and return a free offset, or raise RangeFullError."""
        blocked = sum(1 for o in self._never_next if o not in self._taken)
        if self._size - len(self._taken) - blocked <= 0:
            raise RangeFullError
        for low, count in ((self._band, self._size - self._band), (0, self._band)):
            if count <= 0:
                continue
            start = self._rng.randrange(count)
            for i in range(count):
                offset = low + (start + i) % count
                if offset not in self._taken and offset not in self._never_next:
                    self._taken.add(offset)
                    return offset
        raise RangeFullError


class _Allocator:
    """What both allocators count the same way: their pool's size, used and free values."""

    _pool: _OffsetPool

    @property
    def size(self) -> int:
        return self._pool.size

    @property
    def used(self) -> int:
        return self._pool.used

    @property
    def free(self) -> int:
        return self.size - self.used


class PortAllocator(_Allocator):
    """Node ports in [first, last]; a `--service-node-port-range` of kube-apiserver."""

    def __init__(self, first: int, last: int, *, seed: int | None = None) -> None:
        if not 0 < first <= last <= 65535:
            raise ValueError(f"invalid port range {first}-{last}")
        self.first = first
        self.last = last
        size = last - first + 1
        # ServiceNodePortStaticSubrange: min(max(16, size/32), 128) ports kept for static use.
        band = _range_offset(size, 16, 128, 32)
        self._pool = _OffsetPool(size, band, random.Random(seed))  # noqa: S311 - not crypto

    def __repr__(self) -> str:
        return f"PortAllocator({self.first}-{self.last}, used={self.used})"

    @property
    def range_text(self) -> str:
        return f"{self.first}-{self.last}"

    def in_range(self, port: int) -> bool:
        return self.first <= port <= self.last

    def has(self, port: int) -> bool:
        return self.in_range(port) and self._pool.has(port - self.first)

    def allocate(self, port: int) -> None:
        """Reserve `port`, or raise NotInRangeError / AlreadyAllocatedError (kube's texts)."""
        if not self.in_range(port):
            raise NotInRangeError(
                "provided port is not in the valid range. "
                f"The range of valid ports is {self.range_text}")
        if not self._pool.take(port - self.first):
            raise AlreadyAllocatedError("provided port is already allocated")

    def allocate_next(self) -> int:
        """Reserve and return a free port, or raise RangeFullError."""
        return self.first + self._pool.take_next()

    def release(self, port: int) -> None:
        """Free `port`; releasing a free or out-of-range port does nothing, as in kube."""
        if self.in_range(port):
            self._pool.give(port - self.first)

    def allocated(self) -> list[int]:
        return [self.first + offset for offset in self._pool.taken()]


class IPAllocator(_Allocator):
    """Service IPs of one CIDR (one IP family); a `--service-cluster-ip-range` entry.

    Never handed out: the network address, the IPv4 broadcast address, and (by `allocate_next`)
    the first address, which kube-apiserver gives to the `kubernetes` Service in `default`.
    It can still be requested explicitly, which is how that Service gets it.
    """

    def __init__(self, cidr: str, *, seed: int | None = None) -> None:
        network = parse_cidr(cidr)
        if network is None:
            raise ValueError(f"invalid CIDR {cidr!r}")
        if network.version == 6 and network.prefixlen < 64:
            raise ValueError(
                f"shortest allowed prefix length for service CIDR is 64, got {network.prefixlen}")
        self.network: IPNetwork = network
        self.family = "IPv4" if network.version == 4 else "IPv6"
        total = network.num_addresses
        # IPv4: no network nor broadcast address; IPv6: no network (subnet-router) address.
        self._size = max(0, total - (2 if network.version == 4 else 1))
        self._base = int(network.network_address) + 1
        band = _range_offset(total, 16, 256, 16)
        never = frozenset({0}) if self._size > 1 else frozenset()
        self._pool = _OffsetPool(self._size, band, random.Random(seed), never)  # noqa: S311

    def __repr__(self) -> str:
        return f"IPAllocator({self.cidr}, used={self.used})"

    @property
    def cidr(self) -> str:
        return str(self.network)

    def _offset(self, ip: str | IPAddress) -> tuple[IPAddress, int | None]:
        addr = parse_ip(ip) if isinstance(ip, str) else ip
        if addr is None:
            raise ValueError(f"invalid IP address {ip!r}")
        if addr.version != self.network.version or addr not in self.network:
            return addr, None
        offset = int(addr) - self._base
        return addr, (offset if 0 <= offset < self._size else None)

    def in_range(self, ip: str | IPAddress) -> bool:
        """Whether `ip` could be allocated here (inside the CIDR, not a reserved address)."""
        return self._offset(ip)[1] is not None

    def has(self, ip: str | IPAddress) -> bool:
        offset = self._offset(ip)[1]
        return offset is not None and self._pool.has(offset)

    def allocate(self, ip: str | IPAddress) -> None:
        """Reserve `ip`, or raise NotInRangeError / AlreadyAllocatedError (kube's texts).

        Outside the CIDR the text is the ServiceCIDR allocator's "the provided network does not
        match the current range"; the network or broadcast address is "not in the valid range".
        """
        addr, offset = self._offset(ip)
        if addr.version != self.network.version or addr not in self.network:
            raise NotInRangeError("the provided network does not match the current range")
        if offset is None:
            raise NotInRangeError(f"provided IP {addr} is not in the valid range")
        if not self._pool.take(offset):
            raise AlreadyAllocatedError("provided IP is already allocated")

    def allocate_next(self) -> str:
        """Reserve and return a free IP (canonical text), or raise RangeFullError."""
        return str(_address(self.network.version, self._base + self._pool.take_next()))

    def release(self, ip: str | IPAddress) -> None:
        """Free `ip`; releasing a free or foreign IP does nothing, as in kube."""
        offset = self._offset(ip)[1]
        if offset is not None:
            self._pool.give(offset)

    def allocated(self) -> list[str]:
        version = self.network.version
        return [str(_address(version, self._base + o)) for o in self._pool.taken()]
