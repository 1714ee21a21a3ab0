"""ARP and ICMPv6 ND frames against hand-computed bytes, and parsing back what we build."""

from __future__ import annotations

import pytest

from lbctl.balancer import l2_frames as f

pytestmark = pytest.mark.unit

MAC = "02:00:00:00:00:01"
PEER = "02:00:00:00:00:02"


def test_mac_helpers() -> None:
    assert f.mac_bytes("02:00:00:00:00:0A") == b"\x02\x00\x00\x00\x00\x0a"
    assert f.mac_bytes("02-00-00-00-00-0a") == b"\x02\x00\x00\x00\x00\x0a"
    assert f.mac_str(b"\x02\x00\x00\x00\x00\x0a") == "02:00:00:00:00:0a"
    for bad in ("02:00:00:00:00", "02:00:00:00:00:0g", "0200.0000.0001"):
        with pytest.raises(ValueError, match="MAC"):
            f.mac_bytes(bad)
    with pytest.raises(ValueError, match="6 bytes"):
        f.mac_str(b"\x00")


def test_multicast_addresses() -> None:
    assert f.solicited_node("fd00::1:2:3:100") == "ff02::1:ff03:100"
    assert f.multicast_mac("ff02::1:ff03:100") == "33:33:ff:03:01:00"
    assert f.multicast_mac("ff02::1") == "33:33:00:00:00:01"


def test_gratuitous_arp_request_bytes() -> None:
    expected = bytes.fromhex(
        "ffffffffffff" "020000000001" "0806"          # broadcast, from us, ARP
        "0001" "0800" "06" "04" "0001"                 # Ethernet/IPv4, request
        "020000000001" "0a610064"                      # sender: us, 10.97.0.100
        "000000000000" "0a610064")                     # target: zero MAC, same IP
    assert f.gratuitous_arp(MAC, "10.97.0.100") == expected


def test_gratuitous_arp_reply_repeats_sender_mac() -> None:
    frame = f.gratuitous_arp(MAC, "10.97.0.100", f.ARP_REPLY)
    assert frame[20:22] == b"\x00\x02"
    assert frame[32:38] == f.mac_bytes(MAC)  # what Linux's arp_is_garp wants for replies
    parsed = f.parse_arp(frame)
    assert parsed is not None and parsed.gratuitous and parsed.op == f.ARP_REPLY


def test_arp_request_and_reply_bytes() -> None:
    assert f.arp_request(PEER, "10.97.0.2", "10.97.0.100") == bytes.fromhex(
        "ffffffffffff020000000002" "0806" "0001080006040001"
        "020000000002" "0a610002" "000000000000" "0a610064")
    assert f.arp_reply(MAC, "10.97.0.100", PEER, "10.97.0.2") == bytes.fromhex(
        "020000000002020000000001" "0806" "0001080006040002"
        "020000000001" "0a610064" "020000000002" "0a610002")


def test_parse_arp_roundtrip_and_padding() -> None:
    frame = f.arp_request(PEER, "10.97.0.2", "10.97.0.100") + b"\x00" * 18  # 60-byte minimum
    parsed = f.parse_arp(frame)
    assert parsed == f.Arp(PEER, f.BROADCAST, f.ARP_REQUEST, PEER, "10.97.0.2", f.ZERO_MAC,
                           "10.97.0.100")
    assert not parsed.gratuitous
    assert f.parse_arp(frame[:30]) is None
    assert f.parse_arp(frame[:12] + b"\x08\x00" + frame[14:]) is None  # IPv4, not ARP
    assert f.parse_arp(frame[:20] + b"\x00\x09" + frame[22:]) is None  # unknown opcode


def test_unsolicited_na_bytes() -> None:
    # checksum by hand: pseudo-header fd00::100 > ff02::1, length 32, next header 58, plus
    # 8800 2000 fd00 0100 0201 0200 0001 -> sum 0x3a75f -> fold 0xa762 -> complement 0x589d
    expected = bytes.fromhex(
        "333300000001" "020000000001" "86dd"                         # all-nodes, from us, IPv6
        "60000000" "0020" "3a" "ff"                                    # len 32, ICMPv6, hops 255
        "fd000000000000000000000000000100" "ff020000000000000000000000000001"
        "88" "00" "589d" "20000000"                                    # NA, Override only
        "fd000000000000000000000000000100"                             # target
        "02" "01" "020000000001")                                      # target LLA option
    assert f.unsolicited_na(MAC, "fd00::100") == expected


def test_neighbour_solicitation_bytes() -> None:
    expected = bytes.fromhex(
        "3333ff000100" "020000000002" "86dd"
        "60000000" "0020" "3a" "ff"
        "fd000000000000000000000000000002" "ff0200000000000000000001ff000100"
        "87" "00" "7b99" "00000000"
        "fd000000000000000000000000000100"
        "01" "01" "020000000002")
    assert f.neighbour_solicitation(PEER, "fd00::2", "fd00::100") == expected


def test_checksum_verifies_to_zero() -> None:
    frame = f.neighbour_advertisement(MAC, "fd00::100", PEER, "fd00::2", "fd00::100",
                                      solicited=True)
    message = frame[54:]
    # the sum over pseudo-header + message including its checksum is 0xffff: complement 0
    assert f.icmpv6_checksum("fd00::100", "fd00::2", message) == 0
    assert message[4] == f.NA_SOLICITED | f.NA_OVERRIDE


def test_parse_nd() -> None:
    ns = f.parse_nd(f.neighbour_solicitation(PEER, "fd00::2", "fd00::100"))
    assert ns == f.Nd("ns", PEER, "fd00::2", "ff02::1:ff00:100", "fd00::100", PEER, 0)
    na = f.parse_nd(f.unsolicited_na(MAC, "fd00::100"))
    assert na is not None and na.kind == "na" and na.lladdr == MAC
    assert na.override and not na.solicited and na.target == "fd00::100"


def test_parse_nd_rejects_bad_frames() -> None:
    good = f.unsolicited_na(MAC, "fd00::100")
    corrupt = bytearray(good)
    corrupt[-1] ^= 1  # payload changed, checksum not
    assert f.parse_nd(bytes(corrupt)) is None
    hops = bytearray(good)
    hops[21] = 64  # forwarded: not on-link
    assert f.parse_nd(bytes(hops)) is None
    zero_opt = bytearray(good)
    zero_opt[-7] = 0  # option length 0 (checksum recomputed below)
    body = bytes(zero_opt[54:56]) + b"\x00\x00" + bytes(zero_opt[58:])
    csum = f.icmpv6_checksum("fd00::100", "ff02::1", body)
    zero_opt[56:58] = csum.to_bytes(2, "big")
    assert f.parse_nd(bytes(zero_opt)) is None
    assert f.parse_nd(f.gratuitous_arp(MAC, "10.0.0.1")) is None
    assert f.parse_nd(good[:60]) is None


# -- the announcer's reaction to frames (no socket: frames fed in, frames sent captured) -------
class _Sock:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, frame: bytes) -> int:
        self.sent.append(frame)
        return len(frame)


def test_announcer_answers_defends_and_withdraws() -> None:
    import asyncio

    from lbctl.balancer.l2 import L2Announcer, burst_delays
    from lbctl.balancer.membership import Membership

    assert burst_delays(3) == [0.0, 0.2, 0.5]
    assert burst_delays(5) == pytest.approx([0.0, 0.2, 0.5, 1.6, 2.7])

    async def main() -> None:
        m = Membership("a", ("127.0.0.1", 0), [], key=b"k")
        m._started = -1e9  # settled, alone
        conflicts: list[tuple[str, str]] = []
        bound: list[tuple[str, bool]] = []
        ann = L2Announcer("eth0", m, on_conflict=lambda v, mac: conflicts.append((v, mac)),
                          on_ownership=lambda v, o: bound.append((v, o)))
        sock = _Sock()
        ann._sock = sock  # type: ignore[assignment]
        ann.mac = MAC
        ann.set_vips(["10.97.0.100", "FD00::0100"])
        assert ann.owned() == {"10.97.0.100", "fd00::100"}
        assert bound == [("10.97.0.100", True), ("fd00::100", True)]
        await asyncio.sleep(0.05)  # the burst's first announcement
        assert f.gratuitous_arp(MAC, "10.97.0.100") in sock.sent
        assert f.unsolicited_na(MAC, "fd00::100") in sock.sent
        sock.sent.clear()

        ann.handle_frame(f.arp_request(PEER, "10.97.0.2", "10.97.0.100"))
        ann.handle_frame(f.arp_request(PEER, "10.97.0.2", "10.97.0.7"))  # not ours
        ann.handle_frame(f.neighbour_solicitation(PEER, "fd00::2", "fd00::100"))
        assert sock.sent == [
            f.arp_reply(MAC, "10.97.0.100", PEER, "10.97.0.2"),
            f.neighbour_advertisement(MAC, "fd00::100", PEER, "fd00::2", "fd00::100",
                                      solicited=True)]
        assert (ann.counters.arp_replies, ann.counters.na_sent) == (1, 2)

        rogue = "02:00:00:00:00:66"
        ann.handle_frame(f.gratuitous_arp(rogue, "10.97.0.100"))
        ann.handle_frame(f.unsolicited_na(rogue, "fd00::100"))
        assert conflicts == [("10.97.0.100", rogue), ("fd00::100", rogue)]
        assert ann.owned() == set() and ann.conflicts() == {"10.97.0.100": rogue,
                                                             "fd00::100": rogue}
        assert bound[-2:] == [("10.97.0.100", False), ("fd00::100", False)]
        assert m.conflicted() == {"10.97.0.100", "fd00::100"}  # told to peers
        sock.sent.clear()
        ann.handle_frame(f.arp_request(PEER, "10.97.0.2", "10.97.0.100"))
        assert sock.sent == []  # withdrawn: silent
        ann.handle_frame(f.gratuitous_arp(rogue, "10.97.0.100"))
        assert ann.counters.conflicts == 2  # one per episode, not per frame

        ann.conflict_quiet = 0.0
        ann._clear_conflict("10.97.0.100")
        ann._reconcile()
        assert ann.owned() == {"10.97.0.100"} and ann.counters.takeovers == 3
        ann._sock = None  # nothing to close
        await ann.stop()
        assert ann.owned() == set() and bound[-1] == ("10.97.0.100", False)

    asyncio.run(main())
