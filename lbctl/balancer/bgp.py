"""The daemon's BGP side: announce what this host can serve, withdraw what it cannot.

Why a module between the daemon and the speaker: the daemon knows balancers and health, the
speaker knows ExaBGP; this glue keeps them in step. After every apply and every batch of health
verdicts it asks `bgp_policy.plan` what each peer should have, compares with what ExaBGP was
told, and sends only the difference (one command per peer and attribute set, many prefixes
each), so a probe round that takes 1,000 VIPs down costs a few lines on a socket, never a
stall of the loop that carries traffic. It keeps per peer the session state, the prefixes
announced and the last error (a NOTIFICATION such as a wrong ASN, a session that never comes up
with a wrong TCP-MD5 password), and per VIP whether it is announced and why not; the daemon's
status, the metrics and, through the provider, the Service's conditions read them. On SIGTERM
`drain` withdraws everything and waits `drainSeconds` before the listeners close. If ExaBGP
dies it is started again (backoff 1 s .. 30 s), and everything is announced afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lbctl.bgp_config import BgpConfig

from .bgp_policy import HoldDown, Route, VipState, claimed_by, plan, servable
from .bgp_speaker import Speaker, SpeakerError
from .model import BalancerConfig

log = logging.getLogger(__name__)
IsUp = Callable[[tuple[str, int]], bool]
NOT_UP_HINT = "peer unreachable or refusing, or a TCP-MD5 password that does not match"


@dataclass
class PeerState:
    key: str
    address: str
    state: str = "idle"
    since: float = 0.0
    last_error: str = ""
    established: int = 0
    """How many times the session came up."""


class BgpAnnouncements:
    """BGP for one daemon; `start` after the first apply, `update` after each one."""

    def __init__(self, config: BgpConfig, is_up: IsUp, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.is_up = is_up
        self.clock = clock
        self.hold = HoldDown(config.hold_down_seconds)
        self.speaker = Speaker(self._event, self._exited)
        self.peers = self._peer_states(config)
        self.sent: dict[str, dict[str, Route]] = {}
        """Per peer key: what ExaBGP holds for it now (announced, acknowledged)."""
        self.vips: dict[str, VipState] = {}
        self.balancers: list[BalancerConfig] = []
        self.draining = False
        self.claimed = claimed_by(config)
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._restart_delay = 1.0
        self._restarting = False

    def _peer_states(self, config: BgpConfig) -> dict[str, PeerState]:
        now = self.clock()
        return {p.key: PeerState(p.key, p.peer_address, since=now) for p in config.peers}

    # -- life cycle -------------------------------------------------------------------------
    async def start(self, balancers: list[BalancerConfig]) -> None:
        """Never raises for the speaker: a failed start is reported per peer and retried."""
        self.balancers = balancers
        self._task = asyncio.create_task(self._run())
        try:
            await self.speaker.start(self.config)
        except SpeakerError as exc:
            self._exited(str(exc))
            return
        self.changed()
        log.info("BGP: AS %d, router id %s, peers %s", self.config.my_asn,
                 self.speaker.router_id, ", ".join(p.key for p in self.config.peers))

    def update(self, balancers: list[BalancerConfig]) -> None:
        self.balancers = balancers
        self.changed()

    def changed(self) -> None:
        """Something that decides announcements changed (balancers, health, config)."""
        self._dirty.set()

    async def set_config(self, config: BgpConfig) -> None:
        """A new section: the speaker restarts only when sessions must (peers, identity)."""
        old, self.config = self.config, config
        self.claimed = claimed_by(config)
        self.hold.seconds = config.hold_down_seconds
        if (old.peers, old.my_asn, old.identifier) != (config.peers, config.my_asn,
                                                         config.identifier):
            log.info("BGP peers changed: restarting the speaker")
            await self.speaker.stop()
            self.sent.clear()
            self.peers = self._peer_states(config)
            try:
                await self.speaker.start(config)
            except SpeakerError as exc:
                self._exited(str(exc))
        self.changed()

    async def drain(self) -> None:
        """Withdraw every prefix, wait until ExaBGP took it, then `drainSeconds`."""
        self.draining = True
        await self._sync()
        if any(self.sent.get(k) for k in self.peers):
            log.warning("BGP drain: some withdrawals were not acknowledged")
        await asyncio.sleep(self.config.drain_seconds)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.speaker.close()

    # -- the loop ---------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            waiting = any("hold-down" in s.reason for s in self.vips.values())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), 0.25 if waiting else None)
            self._dirty.clear()
            try:
                await self._sync()
            except Exception:  # the loop must outlive any surprise: log, try again soon
                log.exception("BGP sync failed")
                await asyncio.sleep(1.0)
                self._dirty.set()

    async def _sync(self) -> None:
        async with self._lock:
            await self._sync_locked()

    async def _sync_locked(self) -> None:
        health = servable(self.balancers, self.is_up)
        routes, self.vips = plan(self.config, health, self.hold, self.clock(),
                                 draining=self.draining, claimed=self.claimed)
        if not self.speaker.running:
            return
        waits = []
        for key, wanted in routes.items():
            peer = self.peers[key]
            have = self.sent.setdefault(key, {})
            desired = {r.prefix: r for r in sorted(wanted)}
            gone = [r for p, r in have.items() if desired.get(p) != r]
            new = [r for p, r in desired.items() if have.get(p) != r]
            withdrawn = [r.prefix for r in gone if r.prefix not in desired]
            commands = [f"neighbor {peer.address} withdraw attributes next-hop self nlri "
                        f"{' '.join(withdrawn)}"] if withdrawn else []
            commands += _grouped(peer.address, new)
            if commands:
                waits.append((key, desired, self.speaker.command(commands)))
        for key, desired, pending in waits:
            if await pending:
                self.sent[key] = desired
            else:
                self.sent.pop(key, None)  # unknown: resent in full next time
                self._dirty.set()

    # -- speaker events ---------------------------------------------------------------------
    def _by_address(self, event: dict[str, Any]) -> PeerState | None:
        neighbor = event.get("neighbor")
        address = neighbor.get("address", {}).get("peer") if isinstance(neighbor, dict) else None
        return next((p for p in self.peers.values() if p.address == address), None)

    def _event(self, event: dict[str, Any]) -> None:
        peer = self._by_address(event)
        kind = event.get("type")
        if peer is None:
            return
        if kind == "state":
            state = str(event["neighbor"].get("state", "unknown"))
            reason = str(event["neighbor"].get("reason", ""))
            if state != peer.state:
                log.info("BGP peer %s: %s%s", peer.key, state, f" ({reason})" if reason else "")
            peer.state, peer.since = state, self.clock()
            if state == "up":
                peer.established += 1
                peer.last_error = ""
                self.sent.pop(peer.key, None)  # announce everything afresh on a new session
                self._dirty.set()
            elif state == "down" and reason and (_CODES.search(reason)
                                                 or not _CODES.search(peer.last_error)):
                # ExaBGP names the NOTIFICATION that ended an attempt ("notification sent
                # (2,2)"), then often a bare "closing connection" for the next, collided or
                # refused one: the reason that says why stays until a session comes up.
                peer.last_error = explain(reason)
        elif kind == "notification":
            peer.last_error = f"NOTIFICATION: {_notification(event)}"
            log.warning("BGP peer %s: %s", peer.key, peer.last_error)

    def _exited(self, reason: str) -> None:
        log.error("BGP speaker stopped: %s", reason)
        for peer in self.peers.values():
            peer.state, peer.last_error = "idle", reason
        self.sent.clear()
        if not self._restarting:
            self._restarting = True
            asyncio.get_running_loop().create_task(self._restart())

    async def _restart(self) -> None:
        try:
            await asyncio.sleep(self._restart_delay)
            self._restart_delay = min(self._restart_delay * 2, 30.0)
            await self.speaker.start(self.config)
            self._restart_delay = 1.0
            self.changed()
        except SpeakerError as exc:
            log.error("BGP speaker restart failed: %s", exc)
            self._restarting = False
            self._exited(str(exc))
            return
        self._restarting = False

    # -- reporting --------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        now = self.clock()
        peers = []
        for peer in self.peers.values():
            error = peer.last_error
            if peer.state != "up" and not error and now - peer.since > 5:
                error = f"no session for {now - peer.since:.0f}s: {NOT_UP_HINT}"
            peers.append({"name": peer.key, "address": peer.address, "state": peer.state,
                          "since": round(now - peer.since, 1), "established": peer.established,
                          "prefixes": len(self.sent.get(peer.key, {}))
                          if peer.state == "up" else 0, "lastError": error})
        return {"asn": self.config.my_asn,
                "routerID": self.speaker.router_id or self.config.identifier,
                "speaker": "running" if self.speaker.running else "stopped",
                "draining": self.draining, "peers": peers,
                "vips": {vip: self.vip_view(vip) for vip in self.vips}}

    def vip_view(self, vip: str) -> dict[str, Any]:
        state = self.vips.get(vip)
        if state is None:
            return {"announced": False, "reason": "not planned yet", "peers": []}
        up = [p for p in state.peers if p in self.peers and self.peers[p].state == "up"]
        reason = state.reason
        if state.announced and not up:  # what each peer said, so a Service's event shows it
            said = "; ".join(f"{p}: {self.peers[p].last_error}" for p in state.peers
                             if p in self.peers and self.peers[p].last_error)
            reason = f"no BGP session is up ({said or NOT_UP_HINT})"
        return {"announced": state.announced and bool(up), "reason": reason, "peers": up}

    def up_peers(self) -> list[str]:
        return [p.key for p in self.peers.values() if p.state == "up"]



async def follow(current: BgpAnnouncements | None, config: BgpConfig | None,
                 desired: list[BalancerConfig], is_up: IsUp) -> BgpAnnouncements | None:
    """Start, re-configure or stop BGP as `config` (the store's section) says, re-plan, and
    answer the announcer now in force."""
    if config is None:
        if current is not None:
            log.info("BGP section removed: withdrawing every prefix")
            await current.stop()  # ExaBGP's Cease: the routers withdraw at once
        return None
    if current is None:
        current = BgpAnnouncements(config, is_up)
        await current.start(desired)
    elif config != current.config:
        await current.set_config(config)
    current.update(desired)
    return current


def _grouped(address: str, routes: list[Route]) -> list[str]:
    """One `announce attributes ... nlri P1 P2 ...` per attribute set (ExaBGP's batch form)."""
    groups: dict[str, list[str]] = {}
    for r in routes:
        attributes = Route("", r.communities, r.large_communities, r.local_pref).exabgp()
        groups.setdefault(attributes.strip(), []).append(r.prefix)
    return [f"neighbor {address} announce attributes {attrs} nlri {' '.join(prefixes)}"
            for attrs, prefixes in groups.items()]


def _notification(event: dict[str, Any]) -> str:
    body = event.get("notification")
    if isinstance(body, dict):
        code, sub = body.get("code"), body.get("subcode")
        text = body.get("message") or body.get("data") or ""
        return explain(f"({code},{sub}) {text}".strip())
    return str(body)


NOTIFICATIONS = {
    (1, 0): "Message Header Error", (2, 0): "OPEN Message Error",
    (2, 1): "OPEN Message Error: Unsupported Version Number",
    (2, 2): "OPEN Message Error: Bad Peer AS (myASN here and peerASN there must agree)",
    (2, 3): "OPEN Message Error: Bad BGP Identifier (routerID)",
    (2, 4): "OPEN Message Error: Unsupported Optional Parameter",
    (2, 6): "OPEN Message Error: Unacceptable Hold Time (holdTime)",
    (2, 7): "OPEN Message Error: Unsupported Capability",
    (3, 0): "UPDATE Message Error", (4, 0): "Hold Timer Expired",
    (5, 0): "Finite State Machine Error", (6, 0): "Cease",
    (6, 1): "Cease: Maximum Number of Prefixes Reached",
    (6, 2): "Cease: Administrative Shutdown", (6, 3): "Cease: Peer De-configured",
    (6, 4): "Cease: Administrative Reset", (6, 5): "Cease: Connection Rejected",
    (6, 6): "Cease: Other Configuration Change",
    (6, 7): "Cease: Connection Collision Resolution", (6, 8): "Cease: Out of Resources",
}
"""RFC 4271 section 4.5 and RFC 4486 names, so a status says what the peer objected to."""
_CODES = re.compile(r"\((\d+), ?(\d+)\)")


def explain(text: str) -> str:
    """`notification received (2,2)` -> `... (2,2) OPEN Message Error: Bad Peer AS ...`."""
    match = _CODES.search(text)
    if match is None:
        return text
    code, sub = int(match.group(1)), int(match.group(2))
    name = NOTIFICATIONS.get((code, sub)) or NOTIFICATIONS.get((code, 0), "unknown code")
    return f"{text}: {name}"
