"""Ethernet frames for L2 announcements: ARP (IPv4) and ICMPv6 neighbour discovery (IPv6).

Why by hand with `struct`: the frames are a few dozen bytes with fixed layouts, and a packet
library would be a large dependency for four message types. Everything here is pure (bytes in,
bytes or dataclasses out) so the announcer's behaviour can be unit-tested against hand-computed
bytes without a socket.

Gratuitous ARP is built the way Linux recognises it (`arp_is_garp`): sender IP == target IP, and
for the reply form the target MAC equals the sender MAC; only then does a neighbour that already
has an entry override it regardless of `locktime`. Unsolicited neighbour advertisements go to
all-nodes (ff02::1) with the Override flag and the Target Link-Layer Address option (RFC 4861
7.2.6); every ND message has hop limit 255, which receivers check to reject off-link forgeries.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ARP_REQUEST = 1
ARP_REPLY = 2
IPPROTO_ICMPV6 = 58
ND_NEIGHBOR_SOLICIT = 135
ND_NEIGHBOR_ADVERT = 136
OPT_SOURCE_LLADDR = 1
OPT_TARGET_LLADDR = 2
NA_ROUTER = 0x80
NA_SOLICITED = 0x40
NA_OVERRIDE = 0x20

BROADCAST = "ff:ff:ff:ff:ff:ff"
ZERO_MAC = "00:00:00:00:00:00"
ALL_NODES = "ff02::1"
_ETH = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_IPV6 = struct.Struct("!IHBB16s16s")


# -- MAC and address helpers -------------------------------------------------------------------
def mac_bytes(mac: str) -> bytes:
    """'aa:bb:cc:dd:ee:ff' (or with '-') -> 6 bytes; ValueError otherwise."""
    parts = mac.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 and p.isalnum() for p in parts):
        raise ValueError(f"invalid MAC address {mac!r}")
    try:
        return bytes.fromhex("".join(parts))
    except ValueError:
        raise ValueError(f"invalid MAC address {mac!r}") from None


def mac_str(raw: bytes) -> str:
    """6 bytes -> lower-case 'aa:bb:cc:dd:ee:ff'."""
    if len(raw) != 6:
        raise ValueError(f"a MAC address has 6 bytes, not {len(raw)}")
    return ":".join(f"{b:02x}" for b in raw)


def solicited_node(ip: str) -> str:
    """The solicited-node multicast address of an IPv6 address (ff02::1:ffXX:XXXX)."""
    low = ipaddress.IPv6Address(ip).packed[13:]
    return str(ipaddress.IPv6Address(bytes.fromhex("ff02" + "00" * 8 + "0001ff") + low))


def multicast_mac(ip: str) -> str:
    """The Ethernet address an IPv6 multicast group maps to (33:33 + low 32 bits)."""
    return mac_str(b"\x33\x33" + ipaddress.IPv6Address(ip).packed[12:])


def ethernet(dst: str, src: str, ethertype: int, payload: bytes) -> bytes:
    return _ETH.pack(mac_bytes(dst), mac_bytes(src), ethertype) + payload


# -- ARP ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arp:
    """A parsed Ethernet/IPv4 ARP frame."""

    eth_src: str
    eth_dst: str
    op: int
    sender_mac: str
    sender_ip: str
    target_mac: str
    target_ip: str

    @property
    def gratuitous(self) -> bool:
        return self.sender_ip == self.target_ip


def arp_payload(op: int, sender_mac: str, sender_ip: str, target_mac: str,
                target_ip: str) -> bytes:
    """The 28-byte ARP body for Ethernet (htype 1) / IPv4 (ptype 0x0800)."""
    return _ARP.pack(1, ETH_P_IP, 6, 4, op, mac_bytes(sender_mac),
                     ipaddress.IPv4Address(sender_ip).packed, mac_bytes(target_mac),
                     ipaddress.IPv4Address(target_ip).packed)


def arp_request(src_mac: str, src_ip: str, target_ip: str) -> bytes:
    """Broadcast 'who has target_ip? tell src_ip'."""
    return ethernet(BROADCAST, src_mac, ETH_P_ARP,
                    arp_payload(ARP_REQUEST, src_mac, src_ip, ZERO_MAC, target_ip))


def arp_reply(src_mac: str, src_ip: str, dst_mac: str, dst_ip: str) -> bytes:
    """Unicast 'src_ip is at src_mac' to the asker."""
    return ethernet(dst_mac, src_mac, ETH_P_ARP,
                    arp_payload(ARP_REPLY, src_mac, src_ip, dst_mac, dst_ip))


def gratuitous_arp(mac: str, ip: str, op: int = ARP_REQUEST) -> bytes:
    """Broadcast announcement of ip at mac; the request form has a zero target MAC (RFC 5227),
    the reply form repeats the sender MAC (what Linux requires to treat a reply as gratuitous)."""
    target_mac = ZERO_MAC if op == ARP_REQUEST else mac
    return ethernet(BROADCAST, mac, ETH_P_ARP, arp_payload(op, mac, ip, target_mac, ip))


def parse_arp(frame: bytes) -> Arp | None:
    """An Ethernet/IPv4 ARP frame, or None for anything else (trailing padding is ignored)."""
    if len(frame) < _ETH.size + _ARP.size:
        return None
    dst, src, ethertype = _ETH.unpack_from(frame)
    if ethertype != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(frame, _ETH.size)
    if (htype, ptype, hlen, plen) != (1, ETH_P_IP, 6, 4) or op not in (ARP_REQUEST, ARP_REPLY):
        return None
    return Arp(mac_str(src), mac_str(dst), op, mac_str(sha), str(ipaddress.IPv4Address(spa)),
               mac_str(tha), str(ipaddress.IPv4Address(tpa)))


# -- ICMPv6 neighbour discovery ----------------------------------------------------------------
def _ones_complement_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def icmpv6_checksum(src_ip: str, dst_ip: str, message: bytes) -> int:
    """RFC 4443 2.3: over the IPv6 pseudo-header (src, dst, upper-layer length, next header)
    and the message with its checksum field zero."""
    pseudo = (ipaddress.IPv6Address(src_ip).packed + ipaddress.IPv6Address(dst_ip).packed
              + struct.pack("!I3xB", len(message), IPPROTO_ICMPV6))
    return ~_ones_complement_sum(pseudo + message) & 0xFFFF


def _icmpv6_frame(dst_mac: str, src_mac: str, src_ip: str, dst_ip: str, icmp_type: int,
                  body: bytes) -> bytes:
    message = struct.pack("!BBH", icmp_type, 0, 0) + body
    checksum = icmpv6_checksum(src_ip, dst_ip, message)
    message = message[:2] + struct.pack("!H", checksum) + message[4:]
    header = _IPV6.pack(6 << 28, len(message), IPPROTO_ICMPV6, 255,
                        ipaddress.IPv6Address(src_ip).packed, ipaddress.IPv6Address(dst_ip).packed)
    return ethernet(dst_mac, src_mac, ETH_P_IPV6, header + message)


def neighbour_solicitation(src_mac: str, src_ip: str, target_ip: str) -> bytes:
    """NS for target_ip to its solicited-node group, with our Source Link-Layer Address."""
    group = solicited_node(target_ip)
    body = (b"\x00" * 4 + ipaddress.IPv6Address(target_ip).packed
            + bytes([OPT_SOURCE_LLADDR, 1]) + mac_bytes(src_mac))
    return _icmpv6_frame(multicast_mac(group), src_mac, src_ip, group, ND_NEIGHBOR_SOLICIT, body)


def neighbour_advertisement(src_mac: str, src_ip: str, dst_mac: str, dst_ip: str, target: str,
                            *, solicited: bool, override: bool = True,
                            router: bool = False) -> bytes:
    """NA for target at src_mac, with the Target Link-Layer Address option."""
    flags = (NA_ROUTER if router else 0) | (NA_SOLICITED if solicited else 0) | \
        (NA_OVERRIDE if override else 0)
    body = (struct.pack("!B3x", flags) + ipaddress.IPv6Address(target).packed
            + bytes([OPT_TARGET_LLADDR, 1]) + mac_bytes(src_mac))
    return _icmpv6_frame(dst_mac, src_mac, src_ip, dst_ip, ND_NEIGHBOR_ADVERT, body)


def unsolicited_na(mac: str, ip: str) -> bytes:
    """The IPv6 'gratuitous ARP': to all-nodes, Override set, Solicited clear."""
    return neighbour_advertisement(mac, ip, multicast_mac(ALL_NODES), ALL_NODES, ip,
                                   solicited=False, override=True)


@dataclass(frozen=True)
class Nd:
    """A parsed neighbour solicitation (kind 'ns') or advertisement (kind 'na')."""

    kind: str
    eth_src: str
    src_ip: str
    dst_ip: str
    target: str
    lladdr: str | None
    """Source LLA option of an NS, Target LLA option of an NA, when present."""
    flags: int = 0

    @property
    def override(self) -> bool:
        return bool(self.flags & NA_OVERRIDE)

    @property
    def solicited(self) -> bool:
        return bool(self.flags & NA_SOLICITED)


def parse_nd(frame: bytes) -> Nd | None:
    """An NS or NA without extension headers, hop limit 255, code 0 and a valid checksum;
    None for anything else."""
    start = _ETH.size + _IPV6.size
    if len(frame) < start + 24:
        return None
    _dst, src, ethertype = _ETH.unpack_from(frame)
    if ethertype != ETH_P_IPV6:
        return None
    vtf, plen, nxt, hops, sip, dip = _IPV6.unpack_from(frame, _ETH.size)
    if vtf >> 28 != 6 or nxt != IPPROTO_ICMPV6 or hops != 255 or len(frame) < start + plen:
        return None
    message = frame[start:start + plen]
    icmp_type, code = message[0], message[1]
    if icmp_type not in (ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT) or code != 0 or plen < 24:
        return None
    src_ip, dst_ip = str(ipaddress.IPv6Address(sip)), str(ipaddress.IPv6Address(dip))
    if icmpv6_checksum(src_ip, dst_ip, message[:2] + b"\x00\x00" + message[4:]) != \
            struct.unpack_from("!H", message, 2)[0]:
        return None
    wanted = OPT_SOURCE_LLADDR if icmp_type == ND_NEIGHBOR_SOLICIT else OPT_TARGET_LLADDR
    lladdr: str | None = None
    offset = 24
    while offset + 2 <= len(message):
        opt_type, opt_len = message[offset], message[offset + 1] * 8
        if opt_len == 0 or offset + opt_len > len(message):
            return None  # RFC 4861 4.6: a zero-length option invalidates the message
        if opt_type == wanted and opt_len >= 8:
            lladdr = mac_str(message[offset + 2:offset + 8])
        offset += opt_len
    return Nd("ns" if icmp_type == ND_NEIGHBOR_SOLICIT else "na", mac_str(src), src_ip, dst_ip,
              str(ipaddress.IPv6Address(message[8:24])), lladdr, message[4])
