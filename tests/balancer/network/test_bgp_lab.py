"""The BGP lab (bgp_lab.py) proven with plain ExaBGP: no lbctl code involved.

Each host runs ExaBGP with a config written here: one neighbor (the router), and an API
`process` (SPEAKER below) that prints `announce route 10.99.0.100/32 next-hop self` and logs
every line ExaBGP writes to it (JSON state/open/notification/update messages, done/error ACKs).
Each host has the VIP on lo and a trivial TCP server on it (conftest's SERVER: says its name,
then echoes lines prefixed with it). Every test builds its own lab, so a failure never leaks
sessions or routes into the next; measured times are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.balancer.network.bgp_lab import (
    EXABGP_ENV,
    HOST_ASN,
    ROUTER_ASN,
    BgpLab,
    exabgp_binary,
    open_flow,
    probe_lines,
    require_bgp_tools,
    resilient_supported,
)
from tests.balancer.network.conftest import start_server
from tests.conftest import wait_for

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]

VIP, PREFIX, PORT = "10.99.0.100", "10.99.0.100/32", 8080

SPEAKER = r"""
import sys, time
log = open(sys.argv[1], "a", buffering=1)
for command in sys.argv[2:]:
    sys.stdout.write(command + "\n")
    sys.stdout.flush()
for line in sys.stdin:  # until ExaBGP goes (EOF)
    log.write(line)
"""


def speaker_config(lab: BgpLab, host: str, *, password: str | None = None,
                   peer_as: int = ROUTER_ASN) -> Path:
    """ExaBGP 5 config for `host`: the router as its one neighbor, the SPEAKER process."""
    events = lab.tmp / f"{host}.events"
    script = lab.tmp / "speaker.py"
    script.write_text(SPEAKER)
    announce = f"announce route {PREFIX} next-hop self"
    md5 = f"    md5-password {password};\n" if password else ""
    text = (
        "process speaker {\n"
        f'    run {sys.executable} {script} {events} "{announce}";\n'
        "    encoder json;\n"
        "}\n"
        f"neighbor {lab.router_ip(host)} {{\n"
        f"    router-id {lab.host_ip(host)};\n"
        f"    local-address {lab.host_ip(host)};\n"
        f"    local-as {HOST_ASN};\n"
        f"    peer-as {peer_as};\n"
        f"    hold-time {lab.hold};\n"
        f"{md5}"
        "    family { ipv4 unicast; }\n"
        "    api {\n"
        "        processes [ speaker ];\n"
        "        neighbor-changes;\n"
        "        receive { parsed; notification; open; update; }\n"
        "    }\n"
        "}\n")
    path = lab.tmp / f"{host}.exabgp.conf"
    path.write_text(text)
    return path


def start_speaker(lab: BgpLab, host: str, **kw: Any) -> Any:
    exabgp = exabgp_binary()
    assert exabgp is not None
    return lab.spawn(host, exabgp, str(speaker_config(lab, host, **kw)),
                     log=f"{host}.exabgp.log", env=EXABGP_ENV)


def events(lab: BgpLab, host: str) -> list[Any]:
    """What ExaBGP wrote to the host's API process: JSON messages and the plain ACK lines."""
    lines = lab.read_log(f"{host}.events").splitlines()
    return [json.loads(line) if line.startswith("{") else line for line in lines]


def serve_vip(lab: BgpLab, host: str) -> None:
    lab.bind_vip(host, VIP)
    start_server(lab.ns[host], host, PORT, PORT)


def established(lab: BgpLab, *hosts: str) -> bool:
    return all(lab.session_state(h) == "Established" for h in hosts)


def connect(lab: BgpLab) -> tuple[socket.socket, str]:
    """One TCP connection from the client to the VIP and the host name it greets with."""
    sock, name, _ = open_flow(lab, timeout=3, port=PORT)
    return sock, name


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    require_bgp_tools()


@pytest.fixture
def lab3(tmp_path: Path) -> Iterator[BgpLab]:
    """Three hosts, each announcing the VIP through ExaBGP and serving it; all Established
    and the router's kernel route through all three."""
    with BgpLab(3, tmp=tmp_path) as lab:
        started = time.monotonic()
        for host in lab.hosts:
            serve_vip(lab, host)
            start_speaker(lab, host)
        wait_for(lambda: established(lab, *lab.hosts), 30, "three sessions Established")
        wait_for(lambda: lab.route_hosts(PREFIX) == lab.hosts, 10, "route through 3 hosts")
        print(f"\nthree ExaBGP speakers started -> multipath route installed: "
              f"{time.monotonic() - started:.2f} s")
        yield lab


def test_every_host_is_learned_into_one_multipath_route_and_connections_spread(
        lab3: BgpLab) -> None:
    bird = lab3.birdc(f"show route {PREFIX} all").stdout
    assert all(f"via {lab3.host_ip(h)}" in bird for h in lab3.hosts), bird
    assert bird.count(f"BGP.as_path: {HOST_ASN}") == 3
    [route] = lab3.kernel_routes(PREFIX)  # ONE kernel route...
    assert route["protocol"] == "bird"
    assert sorted(hop["gateway"] for hop in route["nexthops"]) == [
        lab3.host_ip(h) for h in lab3.hosts]  # ...with a nexthop per host
    up = [e for e in events(lab3, "host1") if isinstance(e, dict) and e["type"] == "state"]
    assert [e["neighbor"]["state"] for e in up][:2] == ["connected", "up"]
    assert "done" in events(lab3, "host1")  # the ACK for the announce command

    conns = [connect(lab3) for _ in range(60)]
    spread = Counter(name for _, name in conns)
    print(f"60 connections from one client: {dict(sorted(spread.items()))}")
    assert len(spread) >= 2, spread
    for sock, _ in conns:
        sock.close()


def test_wrong_md5_password_never_establishes(tmp_path: Path) -> None:
    with BgpLab(2, password="right-secret", tmp=tmp_path) as lab:
        start_speaker(lab, "host1", password="right-secret")
        start_speaker(lab, "host2", password="wrong-secret")
        wait_for(lambda: established(lab, "host1"), 15, "host1 (right password) Established")
        states = set()
        deadline = time.monotonic() + 4  # > one hold time and several connect retries
        while time.monotonic() < deadline:
            states.add(lab.session_state("host2"))
            time.sleep(0.1)
        counters = lab.tcp_counters()
        print(f"\nwrong password: BIRD states seen {sorted(states)}, router {counters}")
        assert "Established" not in states
        assert states <= {"Connect", "Active", "Idle", "OpenSent"}, states
        assert counters["TCPMD5Failure"] > 0, counters  # the kernel says why: bad signature
        assert lab.route_hosts(PREFIX) == ["host1"]
        assert not [e for e in events(lab, "host2") if isinstance(e, dict)]  # never connected


def test_wrong_peer_as_is_refused_with_a_notification(tmp_path: Path) -> None:
    with BgpLab(1, tmp=tmp_path) as lab:
        start_speaker(lab, "host1", peer_as=65123)  # expects 65123, the router is 65000
        down = wait_for(lambda: [e for e in events(lab, "host1") if isinstance(e, dict)
                                 and e["neighbor"].get("state") == "down"], 15, "down event")
        print(f"\nwrong peer AS: ExaBGP says {down[0]['neighbor']}; BIRD says "
              f"{lab.session_detail('host1').split('Last error:')[-1].splitlines()[0].strip()}")
        assert down[0]["neighbor"]["reason"] == "notification sent (2,2)"  # Bad Peer AS
        wait_for(lambda: "Bad peer AS" in lab.session_detail("host1"), 10, "BIRD's error")


def test_cut_host_leaves_the_route_after_the_hold_time(lab3: BgpLab) -> None:
    cut_at = time.monotonic()
    lab3.cut("host3")
    wait_for(lambda: lab3.route_hosts(PREFIX) == ["host1", "host2"], lab3.hold + 3,
             "host3 withdrawn", interval=0.01)
    detected = time.monotonic() - cut_at
    assert "Hold timer expired" in lab3.session_detail("host3")
    print(f"\ncut link (no FIN, carrier kept): route without host3 after {detected:.2f} s "
          f"(hold time {lab3.hold} s, keepalive 1 s)")
    assert 0.5 < detected < lab3.hold + 1.5  # the hold timer, not a link event

    killed_at = time.monotonic()
    speaker = next(p for p in lab3.ns["host2"].procs if "exabgp" in str(p.args))
    speaker.kill()  # SIGKILL ExaBGP: its kernel closes the socket (FIN)
    wait_for(lambda: lab3.route_hosts(PREFIX) == ["host1"], 5, "host2 withdrawn",
             interval=0.01)
    gone = time.monotonic() - killed_at
    print(f"kill -9 exabgp: route without host2 after {gone:.3f} s "
          f"({lab3.session_detail('host2').split('Last error:')[-1].splitlines()[0].strip()})")
    assert gone < 1.0

    healed_at = time.monotonic()
    lab3.heal("host3")
    wait_for(lambda: lab3.route_hosts(PREFIX) == ["host1", "host3"], 15, "host3 back")
    print(f"healed link: host3 back in the route after {time.monotonic() - healed_at:.2f} s")


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_router_restart_brings_sessions_and_routes_back(lab3: BgpLab, kill: bool) -> None:
    started = time.monotonic()
    lab3.restart_router(kill=kill)
    wait_for(lambda: established(lab3, *lab3.hosts), 20, "sessions back")
    wait_for(lambda: lab3.route_hosts(PREFIX) == lab3.hosts, 10, "route back")
    print(f"\nrouter restart ({'SIGKILL' if kill else 'SIGTERM'}): 3 sessions and the route "
          f"back after {time.monotonic() - started:.2f} s")
    [route] = lab3.kernel_routes(PREFIX)
    assert len(route["nexthops"]) == 3
    if not kill:  # a clean shutdown says so: Cease / Administrative Shutdown
        notes = [e for e in events(lab3, "host1")
                 if isinstance(e, dict) and e["type"] == "notification"]
        assert notes and notes[0]["neighbor"]["notification"]["code"] == 6, notes


@pytest.mark.parametrize(("mode", "position"), [("multipath", 0), ("multipath", 1),
                                                ("resilient", 0)],
                         ids=["multipath-cut-first", "multipath-cut-middle", "resilient-cut-first"])
def test_flows_on_surviving_hosts(tmp_path: Path, mode: str, position: int) -> None:
    """30 long-lived connections over 3 hosts; the host of the kernel route's first (or middle)
    nexthop is cut; which connections through the two surviving hosts still work? Hash-threshold
    moves 1/4 of them (a reset each) when the first goes, none when the middle goes; a resilient
    group moves none."""
    resilient = mode == "resilient"
    if resilient and not resilient_supported():
        pytest.skip("this kernel has no resilient nexthop groups (Linux >= 5.13)")
    table = 100 if resilient else None
    with BgpLab(3, kernel_table=table, tmp=tmp_path) as lab:
        for host in lab.hosts:
            serve_vip(lab, host)
            start_speaker(lab, host)
        wait_for(lambda: lab.route_hosts(PREFIX, table) == lab.hosts, 30, "3 nexthops")
        if resilient:
            assert lab.program_resilient(PREFIX, buckets=128) == lab.hosts
        raw = lab.kernel_routes(PREFIX, table or "main")[0]["nexthops"]
        victim = lab.host_of(raw[position]["gateway"])
        assert victim is not None
        conns = [connect(lab) for _ in range(30)]
        before = Counter(name for _, name in conns)
        assert len(before) == 3, before
        assert set(probe_lines(conns)) == {"ok"}

        lab.cut(victim)
        survivors = sorted(set(lab.hosts) - {victim})
        wait_for(lambda: lab.route_hosts(PREFIX, table) == survivors, lab.hold + 3,
                 f"{victim} withdrawn")
        if resilient:
            assert lab.program_resilient(PREFIX, buckets=128) == survivors
        assert lab.route_hosts(PREFIX) == survivors
        outcome = probe_lines(conns)
        kept = [outcome[i] for i, (_, name) in enumerate(conns) if name != victim]
        print(f"\n{mode}, nexthop #{position} cut: 30 flows {dict(sorted(before.items()))}, "
              f"cut {victim}: "
              f"{kept.count('ok')}/{len(kept)} flows through the survivors still work, "
              f"others {dict(Counter(k for k in kept if k != 'ok'))}")
        for sock, _ in conns:
            sock.close()
        if resilient or position == 1:
            assert kept.count("ok") == len(kept)
        else:
            assert kept.count("ok") >= 1
