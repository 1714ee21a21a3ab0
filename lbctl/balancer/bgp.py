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
`drain` withdraws everything and waits `drainSeconds` before the listeners close (none when no
session is up). A dead ExaBGP is started again (backoff 1-30 s) and everything re-announced.

One ExaBGP at a time, whoever starts it: the first start, a new section (`set_config`), a
restart after it died, a changed `passwordFile` (its content is read every few seconds; a
mounted Secret that rotates restarts the speaker with the new key). Starts and stops are
serialized by a lock, a restart that finds a speaker running (`set_config` was first) does
nothing, and each start bumps a generation: a sync whose commands went to an older ExaBGP does
not record them as held by the new one. A command that failed or was never acknowledged leaves
its peer's prefixes *unknown*, not forgotten: the next sync withdraws every one not wanted and
announces the wanted again (forgetting them would leave a withdrawal that timed out announced
for good).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lbctl.bgp_config import BgpConfig

from . import bgp_policy
from .bgp_notifications import CODES, explain, notification
from .bgp_policy import HoldDown, Planner, Route, VipState, peer_commands, servable_in, target_index
from .bgp_speaker import Speaker, SpeakerError, acknowledged, secrets
from .model import BalancerConfig

__all__ = ["BgpAnnouncements", "PeerState", "explain", "follow"]
log = logging.getLogger(__name__)
IsUp = Callable[[tuple[str, int]], bool]
NOT_UP_HINT = "peer unreachable or refusing, or a TCP-MD5 password that does not match"
SECRET_POLL = 2.0
"""How often the peers' `passwordFile`s are read for a changed key."""
DRAIN_PATIENCE = 2.0
"""How long `drain` waits for ExaBGP to take the withdrawals (SIGTERM's budget is 2 s)."""
UNKNOWN = ("unknown",)
"""The communities of a route whose fate a failed command left unknown: equal to no planned
route, so the next sync withdraws or re-announces it."""


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
        self.planner = Planner(config)
        self.index = target_index(())
        self.settle: dict[str, float] = {}
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()
        """One sync at a time."""
        self._life = asyncio.Lock()
        """One start or stop of the speaker at a time."""
        self._generation = 0
        self._secrets = secrets(config)
        self._task: asyncio.Task[None] | None = None
        self._restarter: asyncio.Task[None] | None = None
        self._restart_delay = 1.0
        self._closed = False
        self.ack_patience = 10.0

    def claimed(self, vip: str) -> bool:
        """Whether BGP announces `vip` (else L2 may)."""
        return self.planner.claimed(vip)

    def _peer_states(self, config: BgpConfig) -> dict[str, PeerState]:
        now = self.clock()
        return {p.key: PeerState(p.key, p.peer_address, since=now) for p in config.peers}

    # -- life cycle -------------------------------------------------------------------------
    async def start(self, balancers: list[BalancerConfig]) -> None:
        """Never raises for the speaker: a failed start is reported per peer and retried."""
        self.update(balancers)
        self._task = asyncio.create_task(self._run())
        if await self._start_speaker():
            log.info("BGP: AS %d, router id %s, peers %s", self.config.my_asn,
                     self.speaker.router_id, ", ".join(p.key for p in self.config.peers))

    def update(self, balancers: list[BalancerConfig]) -> None:
        self.balancers = balancers
        self.index = target_index(balancers)
        self.settle = bgp_policy.settle_times(balancers)
        self.changed()

    def changed(self) -> None:
        """Something that decides announcements changed (balancers, health, config)."""
        self._dirty.set()

    async def set_config(self, config: BgpConfig) -> None:
        """A new section: the speaker restarts only when sessions must (peers, identity)."""
        old, self.config = self.config, config
        self.planner = Planner(config)
        self.hold.seconds = config.hold_down_seconds
        if (old.peers, old.my_asn, old.identifier) != (config.peers, config.my_asn,
                                                         config.identifier):
            log.info("BGP peers changed: restarting the speaker")
            self.peers = self._peer_states(config)
            await self._start_speaker()
        self.changed()

    async def _start_speaker(self) -> bool:
        """(Re)start ExaBGP with the config in force; on failure the error is reported per
        peer and a restart scheduled. Answers whether it runs."""
        async with self._life:
            if self._closed:
                return False
            ok = await self._start_locked()
        if not ok:
            self._schedule_restart()
        return ok

    async def _start_locked(self) -> bool:
        self._generation += 1  # what an older ExaBGP acknowledges is not what this one holds
        self.sent.clear()
        self._secrets = secrets(self.config)
        try:
            await self.speaker.start(self.config)  # stops the one running first
        except SpeakerError as exc:
            self._down(str(exc))
            return False
        self._generation += 1
        self.sent.clear()
        self.changed()
        return True

    async def drain(self, patience: float = DRAIN_PATIENCE) -> None:
        """Withdraw every prefix, wait (at most `patience`) until ExaBGP took it, then
        `drainSeconds` if some session was up (else nothing was announced: no wait)."""
        self.draining = True
        self._cancel_restart()
        announced = any(self.sent.get(k) for k, p in self.peers.items() if p.state == "up")
        try:
            await asyncio.wait_for(self._sync(), patience)
        except TimeoutError:
            log.warning("BGP drain: ExaBGP took no withdrawal within %.1f s", patience)
        if any(self.sent.get(k) for k in self.peers):
            log.warning("BGP drain: some withdrawals were not acknowledged")
        if announced:
            await asyncio.sleep(self.config.drain_seconds)

    async def stop(self) -> None:
        self._closed = True
        self._cancel_restart()
        for task in (self._task, self._restarter):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.speaker.close()

    def _cancel_restart(self) -> None:
        if self._restarter is not None:
            self._restarter.cancel()

    # -- the loop ---------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            waiting = any("before it is announced" in s.reason for s in self.vips.values())
            keyed = any(p.password_file for p in self.config.peers)
            timeout = 0.25 if waiting else SECRET_POLL if keyed else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout)
            self._dirty.clear()
            try:
                if keyed and not self.draining and secrets(self.config) != self._secrets:
                    log.info("BGP: a peer's passwordFile changed: restarting the speaker")
                    await self._start_speaker()
                if not await self._sync():
                    await asyncio.sleep(0.5)  # ExaBGP refused or did not answer: not a spin
                    self._dirty.set()
            except Exception:  # the loop must outlive any surprise: log, try again soon
                log.exception("BGP sync failed")
                await asyncio.sleep(1.0)
                self._dirty.set()

    async def _sync(self) -> bool:
        async with self._lock:
            return await self._sync_locked()

    def _plan(self, ready: bool) -> tuple[dict[str, VipState], list[_Diff]]:
        """VIP states, and per peer what to send to make ExaBGP hold what it should."""
        health = servable_in(self.index, self.is_up)
        routes, states = self.planner.plan(health, self.hold, self.clock(),
                                           draining=self.draining, settle=self.settle)
        diffs: list[_Diff] = []
        for key, wanted in routes.items() if ready else ():
            peer = self.peers.get(key)
            if peer is None:
                continue
            have = self.sent.get(key, {})
            desired = {r.prefix: r for r in sorted(wanted)}
            commands = peer_commands(peer.address, have, desired)
            if commands:
                diffs.append((key, have, desired, commands))
        return states, diffs

    async def _sync_locked(self) -> bool:
        """Plan, send every peer's difference at once, record what ExaBGP took; answers
        False when a command failed (its peer's prefixes are then unknown)."""
        # Pure Python over every VIP, target and route (tens of ms at 10,000 VIPs, hundreds for
        # a config's first plan): in a thread, the GIL back to the traffic loop every 5 ms.
        self.vips, diffs = await asyncio.to_thread(self._plan, self.speaker.ready)
        if not self.speaker.ready:
            return True  # its start announces everything afresh
        generation = self._generation
        waits = [(key, have, desired, self.speaker.send(commands))  # all peers at once:
                 for key, have, desired, commands in diffs]          # acknowledged side by side
        results = await asyncio.gather(*(acknowledged(futures, self.ack_patience)
                                         for *_, futures in waits))
        if generation != self._generation:
            return True  # a new ExaBGP since: it holds nothing of this, its start re-plans
        ok = True
        for (key, have, desired, _), took in zip(waits, results, strict=True):
            if took:
                self.sent[key] = desired
            else:
                log.warning("BGP: ExaBGP did not take every command for %s; resending", key)
                self.sent[key] = _unknown(self.sent.get(key, {}), have, desired)
                ok = False
        return ok

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
                # announce everything afresh on a new session (and withdraw what is not wanted)
                self.sent[peer.key] = _unknown(self.sent.get(peer.key, {}))
                self._dirty.set()
            elif state == "down" and reason and (CODES.search(reason)
                                                 or not CODES.search(peer.last_error)):
                # ExaBGP names the NOTIFICATION that ended an attempt ("notification sent
                # (2,2)"), then often a bare "closing connection" for the next, collided or
                # refused one: the reason that says why stays until a session comes up.
                peer.last_error = explain(reason)
        elif kind == "notification":
            peer.last_error = f"NOTIFICATION: {notification(event)}"
            log.warning("BGP peer %s: %s", peer.key, peer.last_error)

    def _down(self, reason: str) -> None:
        log.error("BGP speaker stopped: %s", reason)
        for peer in self.peers.values():
            peer.state, peer.last_error = "idle", reason
        self._generation += 1
        self.sent.clear()

    def _exited(self, reason: str) -> None:
        """The running ExaBGP exited (the speaker calls this for its current process only)."""
        self._down(reason)
        self._schedule_restart()

    def _schedule_restart(self) -> None:
        if self._closed or self.draining:
            return
        if self._restarter is None or self._restarter.done():
            self._restarter = asyncio.get_running_loop().create_task(self._restart())

    async def _restart(self) -> None:
        """Start ExaBGP again, with backoff, until it runs, unless another start was first."""
        while not self._closed and not self.draining:
            await asyncio.sleep(self._restart_delay)
            self._restart_delay = min(self._restart_delay * 2, 30.0)
            async with self._life:
                if self._closed or self.draining:
                    return
                if self.speaker.running:  # set_config (or a secret's change) started one
                    self._restart_delay = 1.0
                    return
                if await self._start_locked():
                    self._restart_delay = 1.0
                    return

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
                          "prefixes": sum(r.communities != UNKNOWN for r in
                                          self.sent.get(peer.key, {}).values())
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


_Diff = tuple[str, dict[str, Route], dict[str, Route], list[str]]
"""(peer key, what ExaBGP holds for it, what it should hold, the commands in between)."""


def _unknown(*tables: dict[str, Route]) -> dict[str, Route]:
    """Every prefix of `tables`, its fate unknown (see `UNKNOWN`)."""
    return {p: Route(p, UNKNOWN) for table in tables for p in table}

