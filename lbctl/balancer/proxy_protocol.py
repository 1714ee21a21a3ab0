"""PROXY protocol v2 headers, so targets behind the userspace balancer still see client addresses.

Why: a userspace proxy opens its own connection to the target, so the target's peer address is
the balancer's. Targets that speak the PROXY protocol (nginx `proxy_protocol`, HAProxy
`accept-proxy`, Envoy's listener filter) read the original client address from a binary header
sent before any payload. The format is HAProxy's proxy-protocol.txt, section 2.2: 12-byte
signature, version 2 / command PROXY (0x21), family+transport (0x11 TCP over IPv4, 0x21 TCP over
IPv6), 16-bit big-endian length of the address block, then source address, destination address,
source port, destination port. v2 rather than v1 text: fixed layout, nothing to escape, cheaper
for the target to parse.
"""

from __future__ import annotations

import ipaddress
import struct

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
VERSION_COMMAND_PROXY = 0x21
VERSION_COMMAND_LOCAL = 0x20
TCP_OVER_IPV4 = 0x11
TCP_OVER_IPV6 = 0x21
UDP_OVER_IPV4 = 0x12
UDP_OVER_IPV6 = 0x22

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _unmap(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _as_v6(address: Address) -> ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv4Address):
        return ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + address.packed)
    return address


def v2_header(src_ip: str, src_port: int, dst_ip: str, dst_port: int, *,
              udp: bool = False) -> bytes:
    """A PROXY v2 header for a connection from src (the client) to dst (the VIP and port).

    IPv4-mapped IPv6 addresses are sent as IPv4; if only one side is IPv4 (a dual-stack VIP),
    both are sent as IPv6 with the IPv4 one mapped, since a header carries a single family."""
    src = _unmap(ipaddress.ip_address(src_ip.split("%", 1)[0]))
    dst = _unmap(ipaddress.ip_address(dst_ip.split("%", 1)[0]))
    if isinstance(src, ipaddress.IPv4Address) and isinstance(dst, ipaddress.IPv4Address):
        family = UDP_OVER_IPV4 if udp else TCP_OVER_IPV4
        body = src.packed + dst.packed + struct.pack("!HH", src_port, dst_port)
    else:
        family = UDP_OVER_IPV6 if udp else TCP_OVER_IPV6
        body = _as_v6(src).packed + _as_v6(dst).packed + struct.pack("!HH", src_port, dst_port)
    return SIGNATURE + struct.pack("!BBH", VERSION_COMMAND_PROXY, family, len(body)) + body


def v2_local_header() -> bytes:
    """The LOCAL command (family UNSPEC, no addresses): what a health check sends so a target
    that requires the header accepts a connection that carries no client."""
    return SIGNATURE + struct.pack("!BBH", VERSION_COMMAND_LOCAL, 0x00, 0)
