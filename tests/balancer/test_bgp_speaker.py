"""The speaker's channel and process handling, without a BGP peer (a fake bridge, fake ExaBGPs).

An ack read from an old connection never resolves a command written to a new one; ExaBGP's
stderr is drained whatever its lines' length; a start whose ExaBGP exits at once fails at once.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lbctl.balancer import bgp_speaker
from lbctl.balancer.bgp_speaker import Speaker, SpeakerError
from lbctl.bgp_config import parse_bgp

CONFIG = parse_bgp({"myASN": 64512, "routerID": "10.0.0.2",
                    "peers": [{"peerAddress": "10.0.0.1", "peerASN": 64500}]})


def test_an_ack_of_the_old_connection_never_resolves_a_command_to_the_new_one() -> None:
    async def scenario() -> None:
        speaker = Speaker(lambda _e: None, lambda _r: None)
        speaker._server = await asyncio.start_unix_server(speaker._accept,
                                                          path=str(speaker._socket))
        try:
            old_r, old_w = await asyncio.open_unix_connection(str(speaker._socket))
            await asyncio.wait_for(speaker._connected.wait(), 5)
            lost = speaker.send(["announce one"])
            assert await old_r.readline() == b"announce one\n"
            # The bridge reconnects (or a second one appears) while the first still reads.
            new_r, new_w = await asyncio.open_unix_connection(str(speaker._socket))
            for _ in range(100):
                if speaker._channel is not None and speaker._channel.writer is not None \
                        and lost[0].done():
                    break
                await asyncio.sleep(0.01)
            assert lost[0].done() and lost[0].result() is False  # its connection is gone
            fresh = speaker.send(["announce two"])
            assert await new_r.readline() == b"announce two\n"
            old_w.write(b"done\n")  # a late ack on the old connection
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.shield(fresh[0]), 0.3)
            new_w.write(b"error\n")
            assert await asyncio.wait_for(fresh[0], 5) is False  # the new one's own answer
            old_w.close()
            new_w.close()
        finally:
            await speaker.close()

    asyncio.run(scenario())


def test_stderr_is_drained_past_a_line_longer_than_the_readers_limit() -> None:
    """ExaBGP may echo a long command in a warning: reading stops at such a line no more (the
    pipe would fill and ExaBGP block on its next log line), and the exit is still reported."""
    exits: list[str] = []

    async def scenario() -> None:
        speaker = Speaker(lambda _e: None, exits.append)
        try:
            code = ("import sys; sys.stderr.write('x' * 300000 + '\\n'); "
                    "sys.stderr.write('error: after the long line\\n' * 5000); sys.exit(3)")
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", code, stderr=asyncio.subprocess.PIPE)
            speaker._process = process
            speaker._connected.set()  # it was up
            await asyncio.wait_for(speaker._wait(process), 20)
        finally:
            speaker._process = None
            await speaker.close()

    asyncio.run(scenario())
    assert len(exits) == 1 and "exited with 3" in exits[0] and "after the long line" in exits[0]


def _fake_exabgp(tmp: Path, body: str) -> str:
    script = tmp / "exabgp"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_a_start_whose_exabgp_exits_fails_at_once_not_after_the_patience(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bgp_speaker, "exabgp_binary",
                        lambda: _fake_exabgp(tmp_path, "echo 'error: bad config' >&2; exit 1"))
    exits: list[str] = []

    async def scenario() -> float:
        speaker = Speaker(lambda _e: None, exits.append)
        started = time.monotonic()
        try:
            with pytest.raises(SpeakerError, match="exited with 1: error: bad config"):
                await speaker.start(CONFIG, patience=20)
            return time.monotonic() - started
        finally:
            await speaker.close()

    assert asyncio.run(scenario()) < 5  # was the whole 20 s patience
    assert exits == []  # reported once, by start, not also as an exit of a running speaker


def test_the_config_with_the_md5_secret_is_not_left_on_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon killed -9 never runs close(): the rendered config must be gone once ExaBGP
    read it (here a fake that connects the bridge and stays)."""
    secret = tmp_path / "secret"
    secret.write_text("s3cret-key\n")
    config = parse_bgp({"myASN": 64512, "routerID": "10.0.0.2", "peers": [
        {"peerAddress": "10.0.0.1", "peerASN": 64500, "passwordFile": str(secret)}]})
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        speaker = Speaker(lambda _e: None, lambda _r: None)
        body = (f"grep -q s3cret-key \"$1\" || exit 9\n"
                f"exec {sys.executable} -c 'import socket, sys, time; "
                f"socket.socket(socket.AF_UNIX).connect(sys.argv[1]); time.sleep(60)' "
                f"{speaker._socket}")
        monkeypatch.setattr(bgp_speaker, "exabgp_binary", lambda: _fake_exabgp(tmp_path, body))
        try:
            await speaker.start(config, patience=20)
            seen["files"] = sorted(p.name for p in speaker._dir.iterdir())
            seen["running"] = speaker.running
        finally:
            await speaker.close()

    asyncio.run(scenario())
    assert seen == {"files": ["api.sock"], "running": True}
