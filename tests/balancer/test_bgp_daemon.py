"""The daemon's BGP mode against a real BGP peer (a second ExaBGP) on loopback, no root.

What the routers would see: the /32 of a served VIP with the advertisement's communities, a
withdrawal as soon as no target is healthy, the route back only after the hold-down, the
withdrawal on SIGTERM while the listeners still answer, a NOTIFICATION (wrong ASN) reported,
no session with a wrong TCP-MD5 password, the provider's section pushed over the API, and a
speaker that dies started again. The namespace tests (`network/test_bgp_*.py`) do the same
through a router (BIRD2) with ECMP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbctl.balancer.bgp import BgpAnnouncements
from lbctl.balancer.bgp_speaker import exabgp_binary
from lbctl.balancer.daemon import DaemonThread, ServeOptions
from lbctl.balancer.model import parse_file
from tests.balancer.bgp_peer import RecordingPeer
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(exabgp_binary() is None, reason="exabgp not installed")]
TOKEN = "bgp-test-token-0123456789"


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[RecordingPeer]:
    started = RecordingPeer(tmp_path).start()
    yield started
    started.stop()


class _Backend:
    """A target that accepts (and closes) connections: health checks pass while it runs."""

    def __init__(self, port: int = 0) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            conn.close()

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()


def _backend(port: int = 0) -> _Backend:
    return _Backend(port)


def _file(tmp: Path, vip: str, target_port: int, bgp: dict[str, Any] | None) -> Path:
    doc: dict[str, Any] = {"balancers": [{
        "name": "web", "vip": vip, "listeners": [{
            "protocol": "TCP", "port": 18080, "targets": [f"127.0.0.1:{target_port}"],
            "healthCheck": {"type": "tcp", "intervalSeconds": 0.1, "timeoutSeconds": 0.2,
                            "healthyThreshold": 1, "unhealthyThreshold": 1}}]}]}
    if bgp is not None:
        doc["bgp"] = bgp
    path = tmp / "lb.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _daemon(tmp: Path, config: Path | None = None) -> DaemonThread:
    (tmp / "token").write_text(TOKEN)
    thread = DaemonThread(ServeOptions(config=config, kernel="off", api_listen="127.0.0.1:0",
                                       token_file=tmp / "token",
                                       state_file=tmp / "state.json"))
    thread.start()
    return thread


def _status(thread: DaemonThread) -> dict[str, Any]:
    daemon = thread.daemon
    assert daemon is not None and daemon.bgp is not None
    return daemon.bgp.status()


def _vip(peer: RecordingPeer) -> str:
    return peer.address.rsplit(".", 1)[0] + ".100"


def test_announce_withdraw_hold_down_and_drain(tmp_path: Path, peer: RecordingPeer) -> None:
    backend = _backend()
    port = backend.getsockname()[1]
    vip = _vip(peer)
    config = _file(tmp_path, vip, port, {**peer.config(), "holdDownSeconds": 1.5,
                                         "drainSeconds": 1.0,
                                         "advertisements": [{"communities": ["no-export"]}]})
    thread = _daemon(tmp_path, config)
    try:
        routes = wait_for(lambda: peer.routes() or None, 20, "the VIP announced")
        assert list(routes) == [f"{vip}/32"]
        assert routes[f"{vip}/32"]["community"] == [[65535, 65281]]
        assert routes[f"{vip}/32"]["as-path"]["0"]["value"] == [64512]
        # Every target down: withdrawn (no hold-down on the way out).
        backend.close()
        wait_for(lambda: peer.routes() == {}, 10, "withdrawn when no target is healthy")
        backend = _backend(port)
        # Healthy again: the checker says so, BGP holds the route back for 1.5 s.
        wait_for(lambda: "hold-down" in _status(thread)["vips"][vip]["reason"], 10,
                 "the return held down")
        assert peer.routes() == {}
        wait_for(lambda: list(peer.routes()) == [f"{vip}/32"], 10, "announced again")
        st = _status(thread)
        assert st["peers"][0]["state"] == "up" and st["peers"][0]["prefixes"] == 1
        # SIGTERM's drain: withdrawn while the listener still answers.
        stopper = threading.Thread(target=thread.stop)
        stopper.start()
        wait_for(lambda: peer.routes() == {}, 5, "withdrawn on stop")
        with socket.create_connection((vip, 18080), timeout=2):
            pass  # the drain keeps the listener open after the withdrawal
        stopper.join(10)
        assert peer.states()[-1] == "down"
    finally:
        backend.close()
        thread.stop()


def test_wrong_asn_is_reported_and_the_daemon_keeps_serving(tmp_path: Path) -> None:
    peer = RecordingPeer(tmp_path, peer_asn=64999).start()  # expects AS 64999, we are 64512
    try:
        backend = _backend()
        thread = _daemon(tmp_path, _file(tmp_path, _vip(peer), backend.getsockname()[1],
                                         peer.config(myASN=64512)))
        try:
            error = wait_for(lambda: _status(thread)["peers"][0]["lastError"] or None, 20,
                             "the refusal reported")
            assert "Bad Peer AS" in error, error
            assert _status(thread)["peers"][0]["state"] != "up"
            assert peer.routes() == {}
            with socket.create_connection((_vip(peer), 18080), timeout=2):
                pass  # still serving
        finally:
            thread.stop()
            backend.close()
    finally:
        peer.stop()


def test_tcp_md5_password_must_match(tmp_path: Path) -> None:
    peer = RecordingPeer(tmp_path, password="right-one").start()
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    right.write_text("right-one\n")
    wrong.write_text("wrong-one\n")
    backend = _backend()
    try:
        thread = _daemon(tmp_path, _file(tmp_path, _vip(peer), backend.getsockname()[1],
                                         peer.config(passwordFile=str(wrong))))
        try:
            # The speaker did try: its session stays short of "up", and after the grace the
            # status says why it might be.
            wait_for(lambda: "TCP-MD5" in _status(thread)["peers"][0]["lastError"], 20,
                     "no session reported")
            assert "up" not in peer.states() and peer.routes() == {}
            # The right password (the file re-pushed through the static file): a session.
            _file(tmp_path, _vip(peer), backend.getsockname()[1],
                  peer.config(passwordFile=str(right)))
            wait_for(lambda: peer.routes() or None, 20, "announced with the right password")
        finally:
            thread.stop()
    finally:
        backend.close()
        peer.stop()


def _http(thread: DaemonThread, method: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{thread.url}/v1/bgp", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {TOKEN}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_providers_section_over_the_api(tmp_path: Path, peer: RecordingPeer) -> None:
    backend = _backend()
    thread = _daemon(tmp_path, _file(tmp_path, _vip(peer), backend.getsockname()[1], None))
    try:
        code, body = _http(thread, "PUT", {**peer.config(), "peers": [
            {**peer.config()["peers"][0], "holdTime": "1s"}]})
        assert code == 422 and body["problems"][0]["field"] == "peers[0].holdTime"
        code, body = _http(thread, "PUT", peer.config())
        assert code == 200 and body["changed"] and body["source"] == "programmed"
        wait_for(lambda: list(peer.routes()) == [f"{_vip(peer)}/32"], 20, "announced")
        code, body = _http(thread, "GET")
        assert body["status"]["peers"][0]["state"] == "up"
        assert body["status"]["vips"][_vip(peer)]["announced"] is True
        assert json.loads((tmp_path / "state.json").read_text())["bgp"]["myASN"] == 64512
        code, body = _http(thread, "DELETE")
        assert code == 200 and body["source"] == "none"
        wait_for(lambda: peer.states()[-1] == "down" and peer.routes() == {}, 10,
                 "withdrawn when the section goes")
    finally:
        thread.stop()
        backend.close()


def test_a_static_section_wins_over_a_push(tmp_path: Path, peer: RecordingPeer) -> None:
    backend = _backend()
    thread = _daemon(tmp_path, _file(tmp_path, _vip(peer), backend.getsockname()[1],
                                     peer.config()))
    try:
        wait_for(lambda: peer.routes() or None, 20, "announced")
        code, body = _http(thread, "PUT", peer.config())
        assert code == 409 and "static file" in body["error"]
    finally:
        thread.stop()
        backend.close()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(x) for x in out.stdout.split()]


def test_speaker_killed_is_restarted_and_daemon_killed_takes_it_along(
        tmp_path: Path, peer: RecordingPeer) -> None:
    backend = _backend()
    config = _file(tmp_path, _vip(peer), backend.getsockname()[1], peer.config())
    proc = subprocess.Popen([sys.executable, "-m", "lbctl", "balancer", "serve", "--config",
                             str(config), "--kernel-dataplane", "off"],
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "err").open("w"))
    try:
        wait_for(lambda: peer.routes() or None, 30, "announced")

        def exabgp() -> int | None:
            return next((c for c in _children(proc.pid)
                         if "exabgp" in Path(f"/proc/{c}/cmdline").read_text()), None)

        first = wait_for(exabgp, 10, "the speaker process")
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: peer.states().count("up") >= 2 and peer.routes(), 30,
                 "a new speaker, the route announced again")
        second = exabgp()
        assert second is not None and second != first
        downs = peer.states().count("down")
        os.kill(proc.pid, signal.SIGKILL)  # the daemon dies: its speaker must not outlive it
        started = time.monotonic()
        wait_for(lambda: peer.states().count("down") > downs, 10, "the session closed")
        assert time.monotonic() - started < 2.5  # at once, not after the 3 s hold time
        wait_for(lambda: not Path(f"/proc/{second}").exists(), 5, "exabgp gone")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        backend.close()


def test_a_notification_stays_the_last_error_over_a_bare_close() -> None:
    """ExaBGP reports the NOTIFICATION that ended an attempt, then often a bare "closing
    connection" for the next (collided or refused) one, a few ms later: the status keeps saying
    why (seen in the netns lab against BIRD with a wrong peerASN) until a session comes up."""
    parsed = parse_file(yaml.safe_dump({"balancers": [], "bgp": {
        "myASN": 64512, "routerID": "10.0.0.2",
        "peers": [{"peerAddress": "10.0.0.1", "peerASN": 64999}]}}))
    config = parsed.bgp
    assert config is not None

    def down(reason: str, state: str = "down") -> dict[str, Any]:
        return {"type": "state", "neighbor": {"address": {"peer": "10.0.0.1"},
                                              "state": state, "reason": reason}}

    async def scenario() -> list[str]:
        bgp = BgpAnnouncements(config, lambda _key: True)
        seen = []
        try:
            for event in (down("notification sent (2,2)"), down("closing connection"),
                          down("", "connected"), down("closing connection"),
                          down("", "up"), down("closing connection"),
                          down("notification received (6,2)"), down("peer reset")):
                bgp._event(event)
                seen.append(bgp.status()["peers"][0]["lastError"])
        finally:
            await bgp.speaker.close()
        return seen

    seen = asyncio.run(scenario())
    bad_as = "notification sent (2,2): OPEN Message Error: Bad Peer AS"
    assert [s.startswith(bad_as) for s in seen[:4]] == [True] * 4, seen
    assert seen[4:6] == ["", "closing connection"]  # a session came up: a fresh story
    assert seen[6:] == ["notification received (6,2): Cease: Administrative Shutdown"] * 2
