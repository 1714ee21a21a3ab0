"""Heartbeat membership: rendezvous ownership, HMAC, replay, death detection, leaving."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter

import pytest

from lbctl.balancer.membership import Membership, rendezvous_owner, weight

pytestmark = pytest.mark.unit

KEY = b"token-from-the-api-token-file"
VIPS = [f"10.{i // 250}.{i % 250}.7" for i in range(300)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pair(clock: Clock, key_b: bytes = KEY) -> tuple[Membership, Membership]:
    peers = [("a", "127.0.0.1", 1), ("b", "127.0.0.1", 2)]
    a = Membership("a", ("127.0.0.1", 1), peers, key=KEY, clock=clock)
    b = Membership("b", ("127.0.0.1", 2), peers, key=key_b, clock=clock)
    return a, b


def test_weight_is_stable_across_processes() -> None:
    # blake2b, not hash(): the same on every host whatever PYTHONHASHSEED says
    assert weight("10.0.0.1", "a") == int.from_bytes(
        __import__("hashlib").blake2b(b"10.0.0.1\x00a", digest_size=8).digest(), "big")
    assert rendezvous_owner("10.0.0.1", []) is None


def test_rendezvous_spreads_evenly() -> None:
    owners = Counter(rendezvous_owner(v, ["a", "b", "c"]) for v in VIPS)
    assert set(owners) == {"a", "b", "c"}
    for count in owners.values():
        assert 85 <= count <= 115, owners


def test_only_the_dead_instances_vips_move() -> None:
    before = {v: rendezvous_owner(v, ["a", "b", "c"]) for v in VIPS}
    after = {v: rendezvous_owner(v, ["a", "b"]) for v in VIPS}
    moved = {v for v in VIPS if before[v] != after[v]}
    assert moved == {v for v in VIPS if before[v] == "c"}
    # and order of the instance list does not matter
    assert all(rendezvous_owner(v, ["c", "b", "a"]) == before[v] for v in VIPS)


def test_hmac_rejects_forged_and_tampered_heartbeats() -> None:
    clock = Clock()
    a, b = _pair(clock)
    _, stranger = _pair(clock, key_b=b"guessed")
    assert not a.receive(stranger.encode())
    packet = b.encode()
    tampered = packet.replace(b'"h":false', b'"h":true ')
    assert tampered != packet and not a.receive(tampered)
    assert not a.receive(b"LBH1" + b"x" * 40)
    assert a.alive() == ["a"]
    assert a.receive(packet)
    assert a.alive() == ["a", "b"]
    assert a.rejected == 3


def test_unknown_names_and_replays_are_refused() -> None:
    clock = Clock()
    a, b = _pair(clock)
    intruder = Membership("z", ("127.0.0.1", 3), [("a", "127.0.0.1", 1)], key=KEY, clock=clock)
    assert not a.receive(intruder.encode())  # right key, but not a configured peer
    first, second = b.encode(), b.encode()
    assert a.receive(second)
    assert not a.receive(first)  # overtaken
    assert not a.receive(second)  # replayed
    # a restarted peer (new boot id) is accepted only with a newer timestamp
    b2 = Membership("b", ("127.0.0.1", 2), [("a", "127.0.0.1", 1)], key=KEY, clock=clock,
                    wall=lambda: 0.0)
    assert not a.receive(b2.encode())
    b3 = Membership("b", ("127.0.0.1", 2), [("a", "127.0.0.1", 1)], key=KEY, clock=clock,
                    wall=lambda: 4e9)
    assert a.receive(b3.encode())


def test_alive_set_changes_after_dead_after() -> None:
    clock = Clock()
    a, b = _pair(clock)
    changes: list[list[str]] = []
    a.subscribe(changes.append)
    a.receive(b.encode())
    assert changes[-1] == ["a", "b"]
    clock.now += 0.79
    a.tick()
    assert a.alive() == ["a", "b"]
    clock.now += 0.02
    a.tick()
    assert a.alive() == ["a"]
    assert changes[-1] == ["a"]
    a.receive(b.encode())
    assert changes[-1] == ["a", "b"]


def test_leaving_conflicts_and_health() -> None:
    clock = Clock()
    a, b = _pair(clock)
    a._started = clock.now - 1  # settled, without a socket
    b._started = clock.now - 1
    a.receive(b.encode())
    assert a.candidates() == ["a", "b"]
    vip = next(v for v in VIPS if rendezvous_owner(v, ["a", "b"]) == "b")
    assert a.owner(vip) == "b"
    b.set_healthy(False)
    a.receive(b.encode())
    assert a.candidates() == ["a"] and a.owner(vip) == "a" and a.alive() == ["a", "b"]
    b.set_healthy(True)
    b.set_conflicts([vip])
    a.receive(b.encode())
    assert a.conflicted() == {vip} and a.owner(vip) is None  # nobody fights the intruder
    b.set_conflicts([])
    a.receive(b.encode(leaving=True))
    assert a.alive() == ["a"] and a.owner(vip) == "a"  # at once, not after dead_after


def test_unsettled_instance_claims_nothing() -> None:
    clock = Clock()
    a, b = _pair(clock)
    a._started = clock.now
    assert a.candidates() == []  # has not heard b, has not waited dead_after
    a.receive(b.encode())
    assert a.candidates() == ["a"]  # heard every peer (b says it is not settled itself)
    assert Membership("x", ("127.0.0.1", 9), [], key=KEY).candidates() == []
    with pytest.raises(ValueError, match="key"):
        Membership("x", ("127.0.0.1", 9), [], key=b"")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


async def _wait(cond: object, limit: float = 3.0) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not callable(cond) or not cond():
        if loop.time() - start > limit:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
    return loop.time() - start


def test_real_heartbeats_on_loopback() -> None:
    async def main() -> None:
        pa, pb, pc = _free_ports(3)
        peers = [("a", "127.0.0.1", pa), ("b", "127.0.0.1", pb), ("c", "127.0.0.1", pc)]
        kw = {"interval": 0.05, "dead_after": 0.2, "key": KEY}
        ms = {n: Membership(n, ("127.0.0.1", p), peers, **kw)  # type: ignore[arg-type]
              for n, _, p in peers}
        for m in ms.values():
            await m.start()
        try:
            await _wait(lambda: all(m.candidates() == ["a", "b", "c"] for m in ms.values()))
            vip = next(v for v in VIPS if rendezvous_owner(v, ["a", "b", "c"]) == "c")
            assert ms["a"].owner(vip) == ms["b"].owner(vip) == "c"
            # a crash: c goes silent (its transport closes without "leaving")
            c = ms.pop("c")
            assert c._task is not None and c._transport is not None
            c._task.cancel()
            c._transport.close()
            c._transport = None
            took = await _wait(lambda: ms["a"].alive() == ["a", "b"])
            assert 0.1 < took < 1.0
            assert ms["a"].owner(vip) == ms["b"].owner(vip) != "c"
            # a graceful stop: b says "leaving", a sees it at once
            await ms["b"].stop()
            took = await _wait(lambda: ms["a"].alive() == ["a"])
            assert took < 0.15
        finally:
            for m in ms.values():
                await m.stop()

    asyncio.run(main())
