"""Address ranges of the bare-metal pools: parsing, membership, lazy iteration.

Pools are written as MetalLB writes them: CIDRs (`192.168.10.0/24`, `fd00::/120`) and inclusive
`first-last` ranges (`10.0.0.10-10.0.0.20`). Both become one `AddressRange` of integers, so a
`/64` is never expanded, overlap is two comparisons and iteration is lazy. Parsing is stricter
than MetalLB's `net.ParseCIDR`: a CIDR with host bits set (`10.0.0.5/24`) is refused rather than
silently widened, because the operator meant one of two different things.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

FAMILIES = {4: "IPv4", 6: "IPv6"}


class RangeError(ValueError):
    """An address entry that cannot be used; the message is ready for the operator."""


@dataclass(frozen=True, slots=True, order=True)
class AddressRange:
    """Every address from `first` to `last` (inclusive) of one IP version."""

    version: int
    first: int
    last: int
    text: str = ""
    """As the operator wrote it (for messages)."""

    @property
    def family(self) -> str:
        return FAMILIES[self.version]

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def contains(self, ip: IPAddress) -> bool:
        return ip.version == self.version and self.first <= int(ip) <= self.last

    def overlaps(self, other: AddressRange) -> bool:
        return (self.version == other.version and self.first <= other.last
                and other.first <= self.last)

    def addresses(self) -> Iterator[IPAddress]:
        """Lowest first, lazily (a /64 is fine)."""
        make = ipaddress.IPv4Address if self.version == 4 else ipaddress.IPv6Address
        for value in range(self.first, self.last + 1):
            yield make(value)


def _address(text: str) -> IPAddress | None:
    if "%" in text:  # IPv6 zone ids name an interface, not an address a Service can hold
        return None
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def parse_ip(text: str) -> IPAddress | None:
    """The address in `text`, or None when it is not one."""
    return _address(text)


def family_of(ip: IPAddress) -> str:
    return FAMILIES[ip.version]


def parse_range(text: str) -> AddressRange:
    """`text` as a range; RangeError says precisely why it is not one."""
    raw = text.strip()
    if "-" in raw:
        start_text, _, end_text = raw.partition("-")
        start, end = _address(start_text), _address(end_text)
        if start is None or end is None:
            raise RangeError(f'"{raw}" is not a CIDR or range')
        if start.version != end.version:
            raise RangeError(f'invalid IP range "{raw}": start and end are of different '
                             "IP families")
        if int(start) > int(end):
            raise RangeError(f'invalid IP range "{raw}": start IP {start} is after the '
                             f"end IP {end}")
        return _assignable(AddressRange(start.version, int(start), int(end), raw))
    if "/" not in raw:
        single = _address(raw)
        hint = f' (write "{single}/{single.max_prefixlen}" for one address)' if single else ""
        raise RangeError(f'"{raw}" is not a CIDR or range{hint}')
    try:
        interface = ipaddress.ip_interface(raw) if "%" not in raw else None
    except ValueError:
        interface = None
    if interface is None:
        raise RangeError(f'"{raw}" is not a CIDR or range')
    network = interface.network
    if interface.ip != network.network_address:
        raise RangeError(f'"{raw}" has host bits set: the network is "{network}", the one '
                         f'address is "{interface.ip}/{network.max_prefixlen}"')
    return _assignable(AddressRange(network.version, int(network.network_address),
                                    int(network.broadcast_address), raw))


_NOT_ASSIGNABLE = {
    4: [(ipaddress.ip_network("0.0.0.0/32"), "the unspecified address 0.0.0.0"),
        (ipaddress.ip_network("224.0.0.0/4"), "multicast addresses (224.0.0.0/4)"),
        (ipaddress.ip_network("240.0.0.0/4"),
         "reserved addresses and the broadcast address (240.0.0.0/4)")],
    6: [(ipaddress.ip_network("::/128"), "the unspecified address ::"),
        (ipaddress.ip_network("ff00::/8"), "multicast addresses (ff00::/8)")],
}
"""What a Service can never be given: a VIP is one host's unicast address (loopback is fine
for demos and tests)."""


def _assignable(rng: AddressRange) -> AddressRange:
    for network, what in _NOT_ASSIGNABLE[rng.version]:
        if rng.first <= int(network.broadcast_address) and rng.last >= int(
                network.network_address):
            raise RangeError(f'"{rng.text}" includes {what}, which cannot be a Service\'s '
                             "address")
    return rng


def confuses_buggy_firmware(ip: IPAddress) -> bool:
    """IPv4 addresses ending in .0 or .255: some CPE firmware drops them as smurf attacks
    (MetalLB's `avoidBuggyIPs`)."""
    return ip.version == 4 and int(ip) & 0xFF in (0, 255)
