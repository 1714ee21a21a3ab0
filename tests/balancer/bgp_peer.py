"""A BGP peer on loopback for tests without namespaces: a second ExaBGP, passive, recording.

It listens on its own loopback address and port, accepts our daemon's session and writes every
JSON message it receives (state changes, UPDATEs, NOTIFICATIONs) to a file; `routes()` replays
the UPDATEs into the set of prefixes the peer holds now, with their attributes. A real router
(BIRD2) is used by the namespace tests (`network/bgp_lab.py`); this one needs no root.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbctl.balancer.bgp_speaker import exabgp_binary

RECORDER = """
import sys
out = open(sys.argv[1], "a", buffering=1)
for line in sys.stdin:
    out.write(line)
"""


def free_loopback() -> tuple[str, str, int]:
    """(peer address, our address, port): two addresses of one random 127.x.y.0/30."""
    while True:
        base = f"127.{100 + secrets.randbelow(150)}.{secrets.randbelow(256)}"
        with socket.socket() as s:
            try:
                s.bind((f"{base}.1", 0))
            except OSError:
                continue
            return f"{base}.1", f"{base}.2", s.getsockname()[1]


@dataclass
class RecordingPeer:
    tmp: Path
    asn: int = 64500
    peer_asn: int = 64512
    password: str = ""
    address: str = ""
    ours: str = ""
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        if not self.address:
            self.address, self.ours, self.port = free_loopback()
        self.log = self.tmp / f"peer-{self.address}.jsonl"

    def start(self) -> RecordingPeer:
        binary = exabgp_binary()
        assert binary is not None, "exabgp is not installed"
        recorder = self.tmp / "recorder.py"
        recorder.write_text(RECORDER)
        md5 = f'    md5-password "{self.password}";\n' if self.password else ""
        conf = self.tmp / f"peer-{self.address}.conf"
        conf.write_text(
            f"process rec {{\n    run {sys.executable} {recorder} {self.log};\n"
            f"    encoder json;\n}}\n"
            f"neighbor {self.ours} {{\n    router-id {self.address};\n"
            f"    local-address {self.address};\n    local-as {self.asn};\n"
            f"    peer-as {self.peer_asn};\n    hold-time 3;\n    listen {self.port};\n"
            f"    passive true;\n{md5}"
            f"    api {{ processes [ rec ]; neighbor-changes;\n"
            f"          receive {{ parsed; update; notification; open; }} }}\n}}\n")
        env = {**os.environ, "exabgp_log_destination": "stderr", "exabgp_log_level": "ERROR",
               "exabgp_daemon_user": "root", "exabgp_daemon_drop": "false",
               "exabgp_api_cli": "false", "exabgp_tcp_bind": self.address,
               "exabgp_tcp_port": str(self.port)}
        self.process = subprocess.Popen([binary, str(conf)], env=env,
                                        stdout=subprocess.DEVNULL,
                                        stderr=(self.tmp / "peer.err").open("ab"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex((self.address, self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise AssertionError(f"peer exabgp did not listen: {(self.tmp / 'peer.err').read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def messages(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def states(self) -> list[str]:
        return [m["neighbor"]["state"] for m in self.messages() if m.get("type") == "state"]

    def routes(self) -> dict[str, dict[str, Any]]:
        """prefix -> attributes, as the peer holds them now (UPDATEs replayed in order)."""
        held: dict[str, dict[str, Any]] = {}
        for m in self.messages():
            if m.get("type") == "state" and m["neighbor"]["state"] == "down":
                held.clear()
            update = m.get("neighbor", {}).get("message", {}).get("update")
            if m.get("type") != "update" or not update:
                continue
            for entries in update.get("withdraw", {}).values():
                for entry in entries:
                    held.pop(entry["nlri"], None)
            for by_hop in update.get("announce", {}).values():
                for entries in by_hop.values():
                    for entry in entries:
                        held[entry["nlri"]] = update.get("attribute", {})
        return held

    def config(self, **extra: Any) -> dict[str, Any]:
        """A `bgp:` section for our daemon that peers with this one."""
        return {"myASN": self.peer_asn, "routerID": "10.0.0.2",
                "peers": [{"peerAddress": self.address, "peerASN": self.asn,
                           "peerPort": self.port, "holdTime": "3s",
                           "sourceAddress": self.ours, **extra}]}
