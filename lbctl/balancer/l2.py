"""L2 announcements: answer ARP / neighbour solicitations for the VIPs this instance owns.

Why in userspace on a raw socket, not by putting the VIP on the NIC (kube-vip) or relying on the
kernel: the kernel would answer for a VIP on every instance that has it bound, which is how two
nodes end up announcing one VIP. Here exactly one instance (the rendezvous owner among alive,
healthy instances, see `membership`) answers, and it says so loudly on takeover: a gratuitous
ARP / unsolicited NA burst (0, 0.2, 0.5 s, then every 1.1 s like MetalLB) so switches and
clients move at once, then a refresh every `refresh_seconds`.

Conflicts: an ARP or NA claiming an owned VIP from a MAC that is neither ours nor an
authenticated peer's makes the owner withdraw (stop answering, unbind), report it
(`on_conflict`, counter) and tell peers in its heartbeat, so no instance fights the intruder.
The conflict clears after `conflict_quiet` seconds without foreign claims.

Binding: the announcer never touches interfaces itself; `on_ownership(vip, owned)` lets the data
plane bind and unbind (`lo_vips`: on `lo`, label `lo:lbctl`, with the ARP sysctls that keep the
kernel from answering for them on every interface: metallb#153's strictARP lesson). IPv6
neighbour discovery is strict by default (only addresses on the receiving interface).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import ipaddress
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from . import l2_frames as f
from .membership import Membership

log = logging.getLogger(__name__)

PACKET_OUTGOING = 4
_SIOCGIFHWADDR = 0x8927
_SO_ATTACH_FILTER = 26
_SOL_PACKET = 263
_PACKET_ADD_MEMBERSHIP = 1
_PACKET_MR_MULTICAST = 0
# ldh [12]; arp -> accept; ip6 && nexthdr == 58 && type in (135, 136) -> accept; else drop
_BPF = [(0x28, 0, 0, 12), (0x15, 7, 0, f.ETH_P_ARP), (0x15, 0, 5, f.ETH_P_IPV6),
        (0x30, 0, 0, 20), (0x15, 0, 3, f.IPPROTO_ICMPV6), (0x30, 0, 0, 54),
        (0x15, 2, 0, f.ND_NEIGHBOR_SOLICIT), (0x15, 1, 0, f.ND_NEIGHBOR_ADVERT),
        (0x06, 0, 0, 0), (0x06, 0, 0, 0x40000)]


def burst_delays(burst: int) -> list[float]:
    """When to announce after a takeover: 0, 0.2, 0.5 s, then every 1.1 s."""
    fixed = [0.0, 0.2, 0.5]
    return (fixed + [0.5 + 1.1 * i for i in range(1, burst)])[:max(burst, 1)]


@dataclass
class L2Counters:
    garp_sent: int = 0
    arp_replies: int = 0
    na_sent: int = 0
    conflicts: int = 0
    takeovers: int = 0
    releases: int = 0


def _norm(vip: str) -> str:
    return str(ipaddress.ip_address(vip))


class L2Announcer:
    """Announce the VIPs `membership` assigns to this instance on `interface`."""

    def __init__(self, interface: str, membership: Membership, *,
                 on_conflict: Callable[[str, str], None],
                 on_ownership: Callable[[str, bool], None] | None = None,
                 refresh_seconds: float = 10.0, burst: int = 3,
                 conflict_quiet: float = 30.0) -> None:
        self.interface = interface
        self.membership = membership
        self.on_conflict = on_conflict
        self.on_ownership = on_ownership
        self.refresh_seconds = refresh_seconds
        self.burst = burst
        self.conflict_quiet = conflict_quiet
        self.counters = L2Counters()
        self.mac = ""
        self._served: set[str] = set()
        self._owned: set[str] = set()
        self._conflicts: dict[str, str] = {}
        self._conflict_seen: dict[str, float] = {}
        self._timers: dict[str, list[asyncio.TimerHandle]] = {}
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._joined: set[str] = set()
        self._mld: socket.socket | None = None
        membership.subscribe(lambda _alive: self._reconcile())

    # -- public view ------------------------------------------------------------------------
    def set_vips(self, vips: Iterable[str]) -> None:
        """The VIPs this instance serves (every instance must be given the same set)."""
        self._served = {_norm(v) for v in vips}
        for vip in [v for v in self._conflicts if v not in self._served]:
            self._clear_conflict(vip)
        self._reconcile()

    def owned(self) -> set[str]:
        return set(self._owned)

    def conflicts(self) -> dict[str, str]:
        """VIP -> the foreign MAC that claimed it."""
        return dict(self._conflicts)

    def status(self) -> dict[str, Any]:
        return {"interface": self.interface, "mac": self.mac, "instance": self.membership.name,
                "alive": self.membership.alive(), "served": sorted(self._served),
                "owned": sorted(self._owned), "conflicts": self.conflicts(),
                "counters": asdict(self.counters)}

    # -- ownership --------------------------------------------------------------------------
    def _reconcile(self) -> None:
        if self._sock is None:
            return
        name = self.membership.name
        want = {v for v in self._served
                if v not in self._conflicts and self.membership.owner(v) == name}
        for vip in sorted(self._owned - want):
            self._release(vip)
        for vip in sorted(want - self._owned):
            self._take(vip)

    def _take(self, vip: str) -> None:
        self._notify(vip, True)  # bind first: traffic that follows the announcement finds it
        self._owned.add(vip)
        self.counters.takeovers += 1
        log.info("%s: taking over %s on %s (%s)", self.membership.name, vip, self.interface,
                 self.mac)
        if ipaddress.ip_address(vip).version == 6:
            self._join(vip)
        loop = asyncio.get_running_loop()
        self._timers[vip] = [loop.call_later(d, self._announce, vip)
                             for d in burst_delays(self.burst)]

    def _release(self, vip: str) -> None:
        self._owned.discard(vip)
        self.counters.releases += 1
        for handle in self._timers.pop(vip, []):
            handle.cancel()
        log.info("%s: releasing %s", self.membership.name, vip)
        self._notify(vip, False)

    def _notify(self, vip: str, owned: bool) -> None:
        if self.on_ownership is not None:
            try:
                self.on_ownership(vip, owned)
            except Exception:
                log.exception("binding %s (owned=%s) failed", vip, owned)

    def _announce(self, vip: str) -> None:
        if vip not in self._owned:
            return
        if ipaddress.ip_address(vip).version == 4:
            self._send(f.gratuitous_arp(self.mac, vip, f.ARP_REQUEST))
            self._send(f.gratuitous_arp(self.mac, vip, f.ARP_REPLY))
            self.counters.garp_sent += 2
        else:
            self._send(f.unsolicited_na(self.mac, vip))
            self.counters.na_sent += 1

    # -- conflicts --------------------------------------------------------------------------
    def _foreign_claim(self, vip: str, mac: str) -> None:
        if vip not in self._served or mac == self.mac or mac in self.membership.peer_macs():
            return
        if vip in self._conflicts:
            self._conflicts[vip] = mac
            self._conflict_seen[vip] = time.monotonic()
            return
        if vip not in self._owned:
            return  # only the owner defends: non-owners cannot tell a rogue from a hand-over
        log.warning("%s: %s claimed by foreign MAC %s: withdrawing", self.membership.name, vip,
                    mac)
        self._conflicts[vip] = mac
        self._conflict_seen[vip] = time.monotonic()
        self.counters.conflicts += 1
        self._release(vip)
        self.membership.set_conflicts(self._conflicts)
        try:
            self.on_conflict(vip, mac)
        except Exception:
            log.exception("on_conflict failed")

    def _clear_conflict(self, vip: str) -> None:
        self._conflicts.pop(vip, None)
        self._conflict_seen.pop(vip, None)
        log.info("%s: conflict on %s cleared", self.membership.name, vip)
        self.membership.set_conflicts(self._conflicts)

    # -- frames -----------------------------------------------------------------------------
    def _send(self, frame: bytes) -> None:
        if self._sock is None:
            return
        try:
            self._sock.send(frame)
        except OSError as exc:
            log.warning("sending on %s: %s", self.interface, exc)

    def _readable(self) -> None:
        assert self._sock is not None
        for _ in range(64):
            try:
                frame, addr = self._sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("receiving on %s: %s", self.interface, exc)
                return
            if addr[2] != PACKET_OUTGOING:
                self.handle_frame(frame)

    def handle_frame(self, frame: bytes) -> None:
        """React to one received frame (public so tests can feed frames)."""
        arp = f.parse_arp(frame)
        if arp is not None:
            self._on_arp(arp)
            return
        nd = f.parse_nd(frame)
        if nd is not None:
            self._on_nd(nd)

    def _on_arp(self, arp: f.Arp) -> None:
        if arp.sender_ip in self._served and arp.sender_mac != self.mac:
            self._foreign_claim(arp.sender_ip, arp.sender_mac)
            return
        if arp.op == f.ARP_REQUEST and arp.target_ip in self._owned:
            self._send(f.arp_reply(self.mac, arp.target_ip, arp.sender_mac, arp.sender_ip))
            self.counters.arp_replies += 1

    def _on_nd(self, nd: f.Nd) -> None:
        if nd.kind == "na":
            mac = nd.lladdr or nd.eth_src
            if mac != self.mac:
                self._foreign_claim(nd.target, mac)
            return
        if nd.target not in self._owned:
            return
        if nd.src_ip == "::":  # duplicate address detection for our VIP: defend it
            self._send(f.unsolicited_na(self.mac, nd.target))
        else:
            self._send(f.neighbour_advertisement(self.mac, nd.target, nd.lladdr or nd.eth_src,
                                                 nd.src_ip, nd.target, solicited=True))
        self.counters.na_sent += 1

    def _join(self, vip: str) -> None:
        """Receive NS for vip: join its solicited-node group on the interface. An IPv6 socket
        join makes the kernel also send MLD reports, so snooping switches forward the group;
        a packet-socket membership (NIC filter only) is the fallback without IPv6."""
        group = f.solicited_node(vip)
        if self._sock is None or group in self._joined:
            return
        index = socket.if_nametoindex(self.interface)
        try:
            if self._mld is None:
                self._mld = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            self._mld.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                                 socket.inet_pton(socket.AF_INET6, group)
                                 + struct.pack("@I", index))
        except OSError as exc:
            log.debug("IPv6 join of %s on %s: %s; joining on the NIC only", group,
                      self.interface, exc)
            mreq = struct.pack("iHH8s", index, _PACKET_MR_MULTICAST, 6,
                               f.mac_bytes(f.multicast_mac(group)))
            try:
                self._sock.setsockopt(_SOL_PACKET, _PACKET_ADD_MEMBERSHIP, mreq)
            except OSError as err:
                log.warning("joining %s on %s: %s", group, self.interface, err)
                return
        self._joined.add(group)

    # -- life cycle -------------------------------------------------------------------------
    def _open(self) -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(f.ETH_P_ALL))
        try:
            program = b"".join(struct.pack("HBBI", *ins) for ins in _BPF)
            buf = ctypes.create_string_buffer(program)
            sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER,
                            struct.pack("HL", len(_BPF), ctypes.addressof(buf)))
            sock.bind((self.interface, f.ETH_P_ALL))
            info = fcntl.ioctl(sock.fileno(), _SIOCGIFHWADDR,
                               struct.pack("256s", self.interface.encode()[:15]))
            self.mac = f.mac_str(info[18:24])
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    async def start(self) -> None:
        """Open the raw socket, start the membership (it carries our MAC) and announce."""
        self._sock = self._open()
        asyncio.get_running_loop().add_reader(self._sock.fileno(), self._readable)
        self.membership.mac = self.mac
        if not self.membership.running:
            await self.membership.start()
        self._task = asyncio.create_task(self._housekeeping())
        self._reconcile()

    async def _housekeeping(self) -> None:
        last_refresh = time.monotonic()
        while True:
            await asyncio.sleep(min(0.5, self.refresh_seconds))
            now = time.monotonic()
            for vip, seen in list(self._conflict_seen.items()):
                if now - seen >= self.conflict_quiet:
                    self._clear_conflict(vip)
            if now - last_refresh >= self.refresh_seconds:
                last_refresh = now
                for vip in sorted(self._owned):
                    self._announce(vip)
            self._reconcile()

    async def stop(self) -> None:
        """Release (unbind) every VIP, then say "leaving" so peers take over at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for vip in sorted(self._owned):
            self._release(vip)
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._mld is not None:
            self._mld.close()  # leaves the solicited-node groups
            self._mld = None
        self._joined.clear()
        await self.membership.stop()
