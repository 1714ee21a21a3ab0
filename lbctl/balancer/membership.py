"""Which balancer instances are alive, from UDP heartbeats between them, and who owns each VIP.

Why not the API server (Leases, like kube-vip and Cilium): a lease lives 15 s, failover then
takes 10-20 s, and announcing stops when the API server is unreachable. Here every instance
sends a small heartbeat to every configured peer every `interval` seconds and declares a peer
dead after `dead_after` seconds of silence (0.2 s / 0.8 s by default: failover well under 2 s).
A graceful stop sends a "leaving" heartbeat so peers take over at once.

Heartbeats are authenticated with HMAC-SHA256 under a key of their own, `--heartbeat-key-file`
(so a stranger on the segment cannot pose as a peer, and a key that leaks from a host's
heartbeats config does not open the API), and carry the sender's boot id and a sequence
number; a replayed datagram is refused (same boot: the sequence must grow; new boot: its
timestamp must be newer).

Ownership is rendezvous (highest-random-weight) hashing of (VIP, instance) with blake2b over the
alive, healthy instances: every instance computes the same owner from the same view, VIPs spread
evenly, and when an instance dies only its VIPs move. A VIP that any instance reports as
conflicted (another MAC claims it) has no owner, so nobody flaps with the intruder. A starting
instance reports itself unhealthy until it has heard all its peers or waited `dead_after`, so it
never claims a VIP a peer it has not heard from yet still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAGIC = b"LBH1"
_DIGEST = 32
View = tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]


def weight(key: str, instance: str) -> int:
    """The rendezvous weight of an instance for a key: stable across processes and hosts."""
    digest = hashlib.blake2b(f"{key}\x00{instance}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_owner(key: str, instances: Iterable[str]) -> str | None:
    """The instance with the highest weight for key (ties by name), None when there is none."""
    return max(instances, key=lambda name: (weight(key, name), name), default=None)


@dataclass
class PeerState:
    boot: str
    seq: int
    sent_at: float
    last_seen: float
    healthy: bool
    leaving: bool
    mac: str
    conflicts: frozenset[str]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, membership: Membership) -> None:
        self.membership = membership

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.membership.receive(data)


class Membership:
    """Heartbeats to and from `peers` [(name, host, port)]; call from one event loop."""

    def __init__(self, name: str, listen: tuple[str, int], peers: Iterable[tuple[str, str, int]],
                 interval: float = 0.2, dead_after: float = 0.8, *, key: bytes,
                 healthy: bool = True, on_change: Callable[[list[str]], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        if not key:
            raise ValueError("heartbeats need a non-empty key (--heartbeat-key-file)")
        self.name = name
        self.listen = listen
        self.peers = {p: (host, port) for p, host, port in peers if p != name}
        self.interval = interval
        self.dead_after = dead_after
        self.mac = ""
        self.boot = secrets.token_hex(8)
        self.rejected = 0
        self._key = key
        self._healthy = healthy
        self._conflicts: frozenset[str] = frozenset()
        self._clock, self._wall = clock, wall
        self._seq = 0
        self._state: dict[str, PeerState] = {}
        self._listeners: list[Callable[[list[str]], None]] = [on_change] if on_change else []
        self._started: float | None = None
        self._view: View | None = None
        self._advertised: tuple[bool, frozenset[str]] | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None

    # -- local state ------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[list[str]], None]) -> None:
        """Called with alive() whenever the view changes: alive set, health or conflicts."""
        self._listeners.append(callback)

    def set_healthy(self, healthy: bool) -> None:
        self._healthy = healthy
        self._changed()

    def set_conflicts(self, vips: Iterable[str]) -> None:
        self._conflicts = frozenset(vips)
        self._changed()

    @property
    def running(self) -> bool:
        return self._started is not None

    def settled(self, now: float | None = None) -> bool:
        """Heard every peer, or listened long enough to know who is silent."""
        if self._started is None:
            return False
        now = self._clock() if now is None else now
        return now - self._started >= self.dead_after or set(self._state) >= set(self.peers)

    # -- the view ---------------------------------------------------------------------------
    def _live(self, now: float) -> dict[str, PeerState]:
        return {n: s for n, s in self._state.items()
                if not s.leaving and now - s.last_seen < self.dead_after}

    def alive(self) -> list[str]:
        """This instance and every peer heard from within dead_after, sorted."""
        return sorted([self.name, *self._live(self._clock())])

    def candidates(self) -> list[str]:
        """Alive instances that say they are ready to serve (and have settled)."""
        now = self._clock()
        names = [n for n, s in self._live(now).items() if s.healthy]
        if self._healthy and self.settled(now):
            names.append(self.name)
        return sorted(names)

    def conflicted(self) -> set[str]:
        """VIPs this instance or an alive peer reports as claimed by a foreign MAC."""
        found = set(self._conflicts)
        for state in self._live(self._clock()).values():
            found |= state.conflicts
        return found

    def owner(self, vip: str) -> str | None:
        """The instance that should announce vip now (None: conflicted or nobody healthy)."""
        if vip in self.conflicted():
            return None
        return rendezvous_owner(vip, self.candidates())

    def peer_macs(self) -> set[str]:
        """MAC addresses authenticated peers announce from: their claims are hand-overs."""
        return {s.mac for s in self._state.values() if s.mac}

    def tick(self) -> None:
        """Re-evaluate the view (peers time out) and tell listeners when it changed."""
        now = self._clock()
        view: View = (tuple(self.alive()), tuple(self.candidates()),
                      frozenset(self.conflicted()))
        if view != self._view:
            if self._view is not None and view[0] != self._view[0]:
                log.info("membership %s: alive %s", self.name, ", ".join(view[0]))
            self._view = view
            for callback in list(self._listeners):
                try:
                    callback(list(view[0]))
                except Exception:
                    log.exception("membership listener failed")
        advertised = (self._healthy and self.settled(now), self._conflicts)
        if self._transport is not None and advertised != self._advertised:
            self._advertised = advertised
            self.send()

    def _changed(self) -> None:
        self.tick()

    # -- wire format ------------------------------------------------------------------------
    def encode(self, leaving: bool = False) -> bytes:
        self._seq += 1
        body = json.dumps({
            "n": self.name, "b": self.boot, "s": self._seq, "t": self._wall(),
            "h": self._healthy and self.settled(), "l": leaving, "m": self.mac,
            "c": sorted(self._conflicts)}, separators=(",", ":")).encode()
        return MAGIC + body + hmac.new(self._key, MAGIC + body, hashlib.sha256).digest()

    def receive(self, data: bytes) -> bool:
        """Accept one heartbeat datagram; False (and counted) when refused."""
        state = self._decode(data)
        if state is None:
            self.rejected += 1
            return False
        self.tick()
        return True

    def _decode(self, data: bytes) -> PeerState | None:
        if len(data) <= len(MAGIC) + _DIGEST or not data.startswith(MAGIC):
            return None
        signed, digest = data[:-_DIGEST], data[-_DIGEST:]
        if not hmac.compare_digest(hmac.new(self._key, signed, hashlib.sha256).digest(), digest):
            return None
        try:
            msg = json.loads(signed[len(MAGIC):])
            name, boot, seq, sent_at = str(msg["n"]), str(msg["b"]), int(msg["s"]), float(msg["t"])
            conflicts = frozenset(str(v) for v in msg["c"])
            healthy, leaving, mac = bool(msg["h"]), bool(msg["l"]), str(msg["m"])
        except (ValueError, KeyError, TypeError):
            return None
        if name not in self.peers:
            return None
        old = self._state.get(name)
        if old is not None and (seq <= old.seq if boot == old.boot else sent_at <= old.sent_at):
            return None  # a replay, or a datagram overtaken by a newer one
        if old is not None and old.boot != boot:
            log.info("peer %s restarted (boot %s)", name, boot)
        state = PeerState(boot, seq, sent_at, self._clock(), healthy, leaving, mac, conflicts)
        self._state[name] = state
        return state

    # -- life cycle -------------------------------------------------------------------------
    def send(self, leaving: bool = False) -> None:
        if self._transport is None:
            return
        packet = self.encode(leaving)
        for host, port in self.peers.values():
            try:
                self._transport.sendto(packet, (host, port))
            except OSError as exc:
                log.debug("heartbeat to %s:%d: %s", host, port, exc)

    async def start(self) -> None:
        if self._started is not None:
            return
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=self.listen)
        self._transport = transport
        self._started = self._clock()
        self._task = asyncio.create_task(self._run())
        self.send()
        self.tick()

    async def _run(self) -> None:
        checks = 4  # look for dead peers 4x per interval: detection within dead_after + 25%
        count = 0
        while True:
            await asyncio.sleep(self.interval / checks)
            count += 1
            if count % checks == 0:
                self.send()
            self.tick()

    async def stop(self) -> None:
        """Say "leaving" (twice, against a lost datagram) so peers take over at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.send(leaving=True)
        self.send(leaving=True)
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._started = None
        self._view = None
        self._advertised = None
