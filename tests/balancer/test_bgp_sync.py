"""The announcer's sync and life cycle against a fake speaker: no ExaBGP, no peer.

What ExaBGP holds must stay known after a failed command; every peer's commands go out before
any acknowledgement is awaited; one speaker at a time whoever starts it (a restart after an
exit, a new section); a changed passwordFile restarts it; a drain with nothing announced does not
wait; nothing restarts after stop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from lbctl.balancer import bgp as bgp_module
from lbctl.balancer.bgp import BgpAnnouncements
from lbctl.balancer.bgp_speaker import SpeakerError, acknowledged
from lbctl.balancer.model import parse_balancer
from lbctl.bgp_config import BgpConfig, parse_bgp

PEERS = [{"peerAddress": "10.0.0.1", "peerASN": 64500},
         {"peerAddress": "10.0.0.3", "peerASN": 64500}]


def _config(**extra: Any) -> BgpConfig:
    return parse_bgp({"myASN": 64512, "routerID": "10.0.0.2", "holdDownSeconds": 0,
                      "drainSeconds": 3, "peers": PEERS, **extra})


BALANCER = parse_balancer({"name": "web", "vip": "10.9.0.1", "listeners": [
    {"port": 80, "targets": ["10.1.0.1:80"], "healthCheck": {"type": "none"}}]})
"""Unchecked targets: announced at once (checked ones first wait out their checks)."""


class FakeSpeaker:
    """Records commands; each is answered by `answer` (True/False) or left pending (None)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.futures: list[asyncio.Future[bool]] = []
        self.answer: bool | None = True
        self.alive = 0
        self.starts = 0
        self.most_alive = 0
        self.fail_start = False
        self.router_id = "10.0.0.2"

    @property
    def running(self) -> bool:
        return self.alive > 0

    @property
    def ready(self) -> bool:
        return self.alive > 0

    async def start(self, _config: BgpConfig) -> None:
        await self.stop()
        await asyncio.sleep(0.05)
        if self.fail_start:
            raise SpeakerError("no exabgp")
        self.starts += 1
        self.alive += 1
        self.most_alive = max(self.most_alive, self.alive)

    async def stop(self) -> None:
        self.alive = 0

    async def close(self) -> None:
        await self.stop()

    def send(self, commands: list[str]) -> list[asyncio.Future[bool]]:
        loop = asyncio.get_running_loop()
        out = []
        for command in commands:
            self.sent.append(command)
            fut = loop.create_future()
            if self.answer is not None:
                fut.set_result(self.answer)
            out.append(fut)
        self.futures += out
        return out

    async def command(self, commands: list[str], patience: float = 10.0) -> bool:
        return await acknowledged(self.send(commands), patience)


def _announcer(config: BgpConfig, up: set[tuple[str, int]]) -> tuple[BgpAnnouncements,
                                                                    FakeSpeaker]:
    bgp = BgpAnnouncements(config, lambda key: key in up)
    fake = FakeSpeaker()
    bgp.speaker = fake  # type: ignore[assignment]
    bgp.update([BALANCER])
    return bgp, fake


def test_a_withdrawal_that_failed_is_sent_again() -> None:
    """It was forgotten: the peer's table was dropped, the next sync had nothing to withdraw,
    and ExaBGP kept announcing a VIP with no healthy target."""
    async def scenario() -> list[str]:
        up = {("10.1.0.1", 80)}
        bgp, fake = _announcer(_config(peers=PEERS[:1]), up)
        fake.alive = 1
        await bgp._sync()
        assert fake.sent == ["neighbor 10.0.0.1 announce attributes next-hop self nlri "
                             "10.9.0.1/32"]
        up.clear()
        fake.answer = False  # ExaBGP answers "error" (or never: an ack timeout)
        await bgp._sync()
        fake.answer = True
        await bgp._sync()
        await bgp._sync()  # and then nothing more to say
        return fake.sent

    sent = asyncio.run(scenario())
    withdraw = "neighbor 10.0.0.1 withdraw attributes next-hop self nlri 10.9.0.1/32"
    assert sent[1:] == [withdraw, withdraw]


def test_every_peers_commands_go_out_before_any_ack_is_awaited() -> None:
    async def scenario() -> list[str]:
        bgp, fake = _announcer(_config(), {("10.1.0.1", 80)})
        fake.alive = 1
        fake.answer = None  # acks come later
        bgp.ack_patience = 5
        sync = asyncio.create_task(bgp._sync())
        await asyncio.sleep(0.1)
        seen = list(fake.sent)
        for fut in fake.futures:
            fut.set_result(True)
        await sync
        return seen

    assert [c.split()[1] for c in asyncio.run(scenario())] == ["10.0.0.1", "10.0.0.3"]


def test_a_restart_after_an_exit_does_not_start_a_second_speaker_beside_set_configs() -> None:
    async def scenario() -> FakeSpeaker:
        bgp, fake = _announcer(_config(), set())
        await bgp.start([BALANCER])
        assert fake.starts == 1
        bgp._exited("exabgp exited with -9")  # a restart is scheduled in 1 s...
        await bgp.set_config(_config(peers=[{**PEERS[0], "holdTime": "9s"}]))  # ...one now
        await asyncio.sleep(1.5)
        await bgp.stop()
        return fake

    fake = asyncio.run(scenario())
    assert fake.starts == 2  # the first and set_config's; the restart found it running


def test_a_changed_password_file_restarts_the_speaker(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Same path, new content (a rotated Secret): a restart with the new key, never a touch."""
    monkeypatch.setattr(bgp_module, "SECRET_POLL", 0.1)
    secret = tmp_path / "secret"
    secret.write_text("old-key\n")

    async def scenario() -> list[int]:
        bgp, fake = _announcer(_config(peers=[{**PEERS[0], "passwordFile": str(secret)}]),
                               set())
        await bgp.start([BALANCER])
        counts = [fake.starts]
        secret.write_text("old-key\n")  # rewritten, same key: no restart
        await asyncio.sleep(0.5)
        counts.append(fake.starts)
        secret.write_text("new-key\n")
        await asyncio.sleep(0.5)
        counts.append(fake.starts)
        await bgp.stop()
        return counts

    assert asyncio.run(scenario()) == [1, 1, 2]


def test_a_drain_with_nothing_announced_does_not_wait_and_nothing_restarts_after_stop(
        ) -> None:
    async def scenario() -> tuple[float, int]:
        bgp, fake = _announcer(_config(), {("10.1.0.1", 80)})
        fake.fail_start = True
        await bgp.start([BALANCER])  # fails: reported, a restart scheduled
        loop = asyncio.get_running_loop()
        started = loop.time()
        await bgp.drain()  # drainSeconds is 3: no session was up, nothing to wait for
        took = loop.time() - started
        await bgp.stop()
        fake.fail_start = False
        await asyncio.sleep(1.5)
        return took, fake.starts

    took, starts = asyncio.run(scenario())
    assert took < 1 and starts == 0
