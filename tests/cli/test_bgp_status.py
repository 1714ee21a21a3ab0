"""`lbctl balancer bgp`: two real daemons asked side by side; one announces the VIP to a real
peer (ExaBGP on loopback), the other's peer never answers; a third cannot be reached."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from lbctl.balancer.bgp_speaker import exabgp_binary
from lbctl.balancer.daemon import DaemonThread, ServeOptions
from lbctl.cli import main
from tests.balancer.bgp_peer import RecordingPeer, free_loopback
from tests.conftest import wait_for
from tests.helpers import named_backend

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(exabgp_binary() is None, reason="exabgp not installed")]


def _daemon(tmp: Path, name: str, vip: str, port: int, bgp: dict[str, object]) -> DaemonThread:
    static = tmp / f"{name}.yaml"
    static.write_text(yaml.safe_dump({"balancers": [{"name": "web", "vip": vip, "listeners": [
        {"protocol": "TCP", "port": 18080, "targets": [f"127.0.0.1:{port}"],
         "healthCheck": {"intervalSeconds": 0.1, "healthyThreshold": 1}}]}], "bgp": bgp}))
    thread = DaemonThread(ServeOptions(config=static, kernel="off", api_listen="127.0.0.1:0",
                                       token_file=tmp / "token"))
    thread.start()
    return thread


def test_which_hosts_announce_each_vip(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("a-token-for-the-bgp-cli-test")
    backend = named_backend("127.0.0.1")
    peer = RecordingPeer(tmp_path).start()
    vip = peer.address.rsplit(".", 1)[0] + ".100"
    dead, ours, dead_port = free_loopback()  # nobody listens there
    silent = {"myASN": 64512, "routerID": "10.0.0.3", "peers": [
        {"peerAddress": dead, "peerASN": 64500, "peerPort": dead_port, "holdTime": "3s",
         "sourceAddress": ours}]}
    port = backend.server_address[1]
    one = _daemon(tmp_path, "one", vip, port, peer.config())
    two = _daemon(tmp_path, "two", vip, port, silent)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    try:
        wait_for(lambda: peer.routes() or None, 30, "announced by one")
        token = str(tmp_path / "token")
        args = ["balancer", "bgp", "--daemon", f"one={one.url}", "--daemon", f"two={two.url}",
                "--daemon", f"three=http://127.0.0.1:{closed}", "--token-file", token]
        def asked() -> dict[str, Any] | None:  # "two" past its targets' first checks
            result = CliRunner().invoke(main, [*args, "-o", "json"])
            assert result.exit_code == 0, result.output
            answer: dict[str, Any] = json.loads(result.output)
            two = answer["vips"].get(vip, {}).get("notBy", {}).get("two", "")
            return answer if "new:" not in two else None

        report = wait_for(asked, 20, "the report past the first checks")
        assert report["vips"][vip]["announcedBy"] == ["one"]
        assert "no BGP session is up" in report["vips"][vip]["notBy"]["two"]
        assert report["hosts"]["three"]["error"].startswith("unreachable")
        table = CliRunner().invoke(main, args)
        assert table.exit_code == 0, table.output
        lines = table.output.splitlines()
        assert lines[0].split() == ["HOST", "PEER", "STATE", "PREFIXES", "LAST", "ERROR"]
        assert any(line.startswith("one") and " up " in line for line in lines)
        assert any(line.startswith(vip) and " one " in f"{line} " for line in lines)
        assert any(line.startswith("three") and "unreachable" in line for line in lines)
        bad = CliRunner().invoke(main, ["balancer", "bgp", "--daemon", "x"])
        assert bad.exit_code == 2 and "NAME=URL" in bad.output
    finally:
        one.stop()
        two.stop()
        peer.stop()
        backend.shutdown()
        backend.server_close()
