"""The balancer daemon's BGP mode in the netns lab (bgp_lab.py): the real `lbctl balancer serve`
in each host namespace, BIRD2 with multipath as the upstream router, the client behind it.

Each host runs the daemon with a static file (bgp_lab.Balancer): one balancer `web`, VIP
10.99.0.100:80 -> every node's NODE_PORT (30080, health-checked every 0.2 s), and a `bgp:`
section whose one peer is the router (AS 65000, holdTime 3 s; the hosts are AS 65001). The
nodes answer `<node> <host's back address>`, so the client knows which host and node carried
each connection. Every test builds its own lab (a failure never leaks routes or sessions into
the next) and tears it down; measured times are printed (`pytest -s`), the asserted ceilings are
safety nets. Issue 18's cases:

1. every host's route learned, one kernel route with a nexthop per host, connections spread
   over the hosts and answered by the nodes: userspace and nftables data planes;
2. host death without a FIN (`cut`): new connections succeed again within the hold time;
   established flows through the survivors all keep working with a resilient nexthop group
   (ResilientAgent) and, with plain hash-threshold multipath, those of the middle nexthop that
   the re-split moves are reset (never the last nexthop's); kill -9 of a daemon: ExaBGP dies
   with it, FIN, the route goes at once;
3. SIGTERM: the route leaves before the listeners close; 0 failed new connections;
4. every target unreachable from one host: that host withdraws, the others keep the route,
   every connection succeeds; reachable again: back after the hold-down;
5. wrong TCP-MD5 password / wrong peer ASN on one host: no session, BIRD and `GET /v1/bgp` say
   why, the others unaffected; a router restart: sessions and the 3-way route come back.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.balancer.network.bgp_lab import (
    HOST_ASN,
    NODE_PORT,
    VIP,
    VIP_PORT,
    VIP_PREFIX,
    Balancer,
    BgpLab,
    Prober,
    ResilientAgent,
    open_flow,
    probe_flows,
    require_bgp_tools,
    resilient_supported,
    start_nodes,
)
from tests.balancer.network.conftest import sh
from tests.conftest import wait_for

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]
TABLE = 100
"""BIRD's kernel table when the test programs a resilient group (ResilientAgent)."""


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    require_bgp_tools(lbctl=True)


@contextlib.contextmanager
def daemons(tmp: Path, *, dataplane: str = "userspace", kernel_table: int | None = None,
            password: str | None = None, per_host: dict[str, dict[str, Any]] | None = None,
            announced_by: list[str] | None = None,
            ) -> Iterator[tuple[BgpLab, dict[str, Balancer]]]:
    """3 hosts, 2 nodes serving, a daemon in every host (started side by side), and the
    router's route through `announced_by` (default: every host). On a failure the daemons'
    and BIRD's logs are printed."""
    with BgpLab(3, nodes=2, kernel_table=kernel_table, password=password, tmp=tmp) as lab:
        start_nodes(lab)
        started = time.monotonic()
        lbs = {h: Balancer(lab, h, dataplane=dataplane, **(per_host or {}).get(h, {}))
               for h in lab.hosts}
        try:
            for lb in lbs.values():
                lb.start(wait=False)
            for lb in lbs.values():
                lb.wait_ready()
            want = lab.hosts if announced_by is None else announced_by
            wait_for(lambda: lab.route_hosts(VIP_PREFIX, kernel_table) == want, 20,
                     f"route through {want}")
            print(f"\n3 daemons started -> route through {want}: "
                  f"{time.monotonic() - started:.2f} s")
            yield lab, lbs
        except BaseException:
            for lb in lbs.values():
                print(f"\n===== {lb.host} daemon =====\n{lb.tail()}")
            print(f"\n===== bird =====\n{lab.read_log('bird.log')[-3000:]}")
            raise


def spread(lab: BgpLab, count: int) -> Counter[tuple[str, str]]:
    """`count` connections from the client, one after another: (host, node) -> how many."""
    seen: Counter[tuple[str, str]] = Counter()
    for _ in range(count):
        sock, node, host = open_flow(lab)
        sock.close()
        seen[(host, node)] += 1
    return seen


# -- 1 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataplane", ["userspace", "nftables"])
def test_every_host_announces_one_ecmp_route_and_the_nodes_answer(tmp_path: Path,
                                                                  dataplane: str) -> None:
    with daemons(tmp_path, dataplane=dataplane) as (lab, lbs):
        bird = lab.birdc(f"show route {VIP_PREFIX} all").stdout
        assert all(f"via {lab.host_ip(h)}" in bird for h in lab.hosts), bird
        assert bird.count(f"BGP.as_path: {HOST_ASN}") == 3, bird
        [route] = lab.kernel_routes(VIP_PREFIX)  # ONE kernel route, a nexthop per host
        assert sorted(hop["gateway"] for hop in route["nexthops"]) == [
            lab.host_ip(h) for h in lab.hosts]
        for lb in lbs.values():
            bgp = lb.bgp()
            assert bgp["speaker"] == "running"
            assert lb.peer()["state"] == "up" and lb.peer()["prefixes"] == 1, bgp
            assert bgp["vips"][VIP] == {"announced": True, "reason": "healthy",
                                        "peers": [lab.router_ip(lb.host)]}
            code, view = lb.http("/v1/balancers/web")
            assert code == 200 and view["status"]["bgp"][VIP]["announced"], view
            code, metrics = lb.http("/metrics")
            assert "lbctl_bgp_" in metrics, metrics[:2000]
            tables = lab.run(lb.host, "nft", "list", "tables").stdout
            assert ("lbctl" in tables) == (dataplane == "nftables"), tables
            bound = lab.run(lb.host, "ip", "-4", "-o", "addr", "show", "dev", "lo").stdout
            assert f"{VIP}/32" in bound and "lo:lbctlbgp" in bound, bound  # the daemon's bind

        seen = spread(lab, 60)
        hosts = Counter(h for h, _ in seen.elements())
        nodes = Counter(n for _, n in seen.elements())
        print(f"{dataplane}: 60 connections -> hosts {dict(sorted(hosts.items()))}, "
              f"nodes {dict(sorted(nodes.items()))}")
        assert set(hosts) == set(lab.hosts), hosts  # 60 over 3: all of them, or a broken hash
        assert set(nodes) == set(lab.nodes), nodes


# -- 2 ------------------------------------------------------------------------------------------
def open_flows(lab: BgpLab, count: int) -> list[tuple[socket.socket, str, str]]:
    flows = [open_flow(lab) for _ in range(count)]
    assert set(probe_flows(flows)) == {"ok"}
    return flows


def cut_and_measure(lab: BgpLab, victim: str, table: int | None,
                    ) -> tuple[float, float, Prober]:
    """Cut `victim` while a prober opens a connection every 20 ms; answers (seconds until the
    router's route left it, seconds until every new connection succeeded, the prober)."""
    survivors = sorted(set(lab.hosts) - {victim})
    with Prober(lab, interval=0.02, timeout=0.5, limit=20) as prober:
        time.sleep(0.5)
        cut_at = time.monotonic()
        lab.cut(victim)
        wait_for(lambda: lab.route_hosts(VIP_PREFIX) == survivors, lab.hold + 4,
                 f"{victim} out of the main table's route", interval=0.01)
        withdrawn = time.monotonic() - cut_at
        time.sleep(1.0)  # a second of connections after it: all must succeed
    recovered = prober.recovery(cut_at)
    assert recovered is not None, f"still failing: {prober.done()[-5:]}"
    assert "Hold timer expired" in lab.session_detail(victim)
    return withdrawn, recovered, prober


@pytest.mark.skipif(not resilient_supported(), reason="no resilient nexthop groups (< 5.13)")
def test_host_death_survivors_flows_kept_with_a_resilient_group(tmp_path: Path) -> None:
    with daemons(tmp_path, dataplane="nftables", kernel_table=TABLE) as (lab, _), \
            ResilientAgent(lab, VIP_PREFIX) as agent:
        wait_for(lambda: lab.route_hosts(VIP_PREFIX) == lab.hosts, 5, "the resilient group")
        flows = open_flows(lab, 45)
        victim = "host1"
        withdrawn, recovered, prober = cut_and_measure(lab, victim, TABLE)
        failed = prober.failures(prober.done()[0].start)
        outcome = probe_flows(flows)
        kept = [o for o, (_, _, host) in zip(outcome, flows, strict=True) if host != victim]
        print(f"resilient group, {victim} cut (no FIN): route without it after "
              f"{withdrawn:.2f} s, every new connection succeeds after {recovered:.2f} s "
              f"({len(failed)} failed of {len(prober.done())}, all through {victim}: "
              f"{Counter(a.error for a in failed)}); survivors' flows kept "
              f"{kept.count('ok')}/{len(kept)}; agent errors {agent.errors}")
        assert recovered < 6.0
        assert kept.count("ok") == len(kept), Counter(kept)
        assert not agent.errors
        for sock, _, _ in flows:
            sock.close()


def test_host_death_with_plain_multipath_resets_some_middle_flows(tmp_path: Path) -> None:
    """Hash-threshold: the route's first nexthop goes; [0,1/3) [1/3,2/3) [2/3,1) become
    [0,1/2) [1/2,1): the middle host's flows hashed in [1/2,2/3) move to the last host (a
    reset each, about half of the middle's), the last host's flows all stay."""
    with daemons(tmp_path, dataplane="nftables") as (lab, _):
        raw = lab.kernel_routes(VIP_PREFIX)[0]["nexthops"]
        first, middle, last = (lab.host_of(hop["gateway"]) for hop in raw)
        assert first and middle and last
        flows = open_flows(lab, 60)
        withdrawn, recovered, prober = cut_and_measure(lab, first, None)
        outcome = probe_flows(flows)
        by_host = {h: Counter(o for o, f in zip(outcome, flows, strict=True) if f[2] == h)
                   for h in (middle, last)}
        print(f"plain multipath, first nexthop {first} cut: route without it after "
              f"{withdrawn:.2f} s, new connections all succeed after {recovered:.2f} s "
              f"({len(prober.failures(prober.done()[0].start))} failed); survivors' flows: "
              f"middle {middle} {dict(by_host[middle])}, last {last} {dict(by_host[last])}")
        assert recovered < 6.0
        assert set(by_host[last]) == {"ok"}, by_host  # its slice only grew
        assert by_host[middle]["ok"] < sum(by_host[middle].values()), by_host  # some moved
        for sock, _, _ in flows:
            sock.close()


def test_kill_9_of_a_daemon_withdraws_at_once(tmp_path: Path) -> None:
    with daemons(tmp_path) as (lab, lbs):
        victim = lbs["host2"]
        assert victim.proc is not None
        with Prober(lab, interval=0.02, timeout=0.5, limit=20) as prober:
            time.sleep(0.3)
            killed_at = time.monotonic()
            victim.signal(signal.SIGKILL)
            wait_for(lambda: lab.route_hosts(VIP_PREFIX) == ["host1", "host3"], 3,
                     "host2 withdrawn", interval=0.005)
            gone = time.monotonic() - killed_at
            time.sleep(0.5)
        recovered = prober.recovery(killed_at)
        error = lab.session_detail("host2").split("Last error:")[-1].splitlines()[0].strip()
        left = sh("ip", "netns", "pids", lab.ns["host2"].name).stdout.split()
        print(f"kill -9 of host2's daemon: route without it after {gone * 1000:.0f} ms "
              f"(BIRD: {error}), new connections all succeed after "
              f"{recovered if recovered is None else round(recovered, 3)} s, "
              f"{len(prober.failures(killed_at))} failed")
        assert gone < 1.0  # a FIN, not the hold timer
        assert recovered is not None and recovered < 1.5
        assert not left, "the daemon's children (ExaBGP, checker) outlived it"


# -- 3 ------------------------------------------------------------------------------------------
def test_sigterm_withdraws_before_the_listeners_close_with_no_failed_connection(
        tmp_path: Path) -> None:
    with daemons(tmp_path) as (lab, lbs):
        victim = lbs["host2"]
        marks: dict[str, float] = {}
        stop = threading.Event()

        def watch() -> None:  # the router's route and host2's listener, as fast as `ip`/`ss`
            while not stop.is_set() and len(marks) < 2:
                if "withdrawn" not in marks and "host2" not in lab.route_hosts(VIP_PREFIX):
                    marks["withdrawn"] = time.monotonic()
                listening = lab.run("host2", "ss", "-Hltn", f"sport = :{VIP_PORT}").stdout
                if "closed" not in marks and VIP not in listening:
                    marks["closed"] = time.monotonic()

        watcher = threading.Thread(target=watch, daemon=True)
        with Prober(lab, interval=0.05, timeout=1.0, limit=10) as prober:  # 20/s, 5 s
            time.sleep(1.0)
            watcher.start()
            sent = time.monotonic()
            victim.signal(signal.SIGTERM, wait=None)
            code = victim.reap(10)
            exited = time.monotonic()
            time.sleep(max(0.0, sent + 4.0 - time.monotonic()))
        stop.set()
        watcher.join(2)
        attempts = prober.done()
        failed = prober.failures()
        log = victim.tail()
        print(f"SIGTERM host2: route withdrawn after {marks['withdrawn'] - sent:.3f} s, its "
              f"listener closed after {marks['closed'] - sent:.3f} s, exit {code} after "
              f"{exited - sent:.2f} s; {len(attempts)} new connections during 5 s, "
              f"{len(failed)} failed; by host {Counter(a.host for a in attempts)}")
        assert code == 0, log
        assert marks["withdrawn"] < marks["closed"], marks
        assert "BGP: withdrawn and drained" in log
        assert len(attempts) >= 90
        assert not failed, failed


# -- 4 ------------------------------------------------------------------------------------------
DROP = ["add table inet lbg_targets",
        "add chain inet lbg_targets out { type filter hook output priority 0 ; }",
        f"add rule inet lbg_targets out ip daddr 10.99.2.0/24 tcp dport {NODE_PORT} drop"]


def test_every_target_unhealthy_on_one_host_withdraws_there_only(tmp_path: Path) -> None:
    with daemons(tmp_path) as (lab, lbs):
        sick = lbs["host3"]
        broke_at = time.monotonic()
        for command in DROP:  # host3 -> nodes' NodePort: every SYN dropped
            lab.run("host3", "nft", *command.split())
        wait_for(lambda: lab.route_hosts(VIP_PREFIX) == ["host1", "host2"], 10,
                 "host3 withdrawn", interval=0.01)
        withdrawn = time.monotonic() - broke_at
        vip = sick.bgp()["vips"][VIP]
        status = sick.http("/v1/balancers/web")[1]["status"]
        others = [lbs[h].bgp()["vips"][VIP]["announced"] for h in ("host1", "host2")]
        seen = spread(lab, 40)
        print(f"host3's targets unreachable: withdrawn after {withdrawn:.2f} s "
              f"({vip['reason']}; balancer status: problems {status['problems']}, bgp "
              f"{status['bgp']}); 40 connections -> {dict(seen)}")
        assert vip["announced"] is False and "no healthy target" in vip["reason"], vip
        assert status["bgp"][VIP]["announced"] is False, status
        assert others == [True, True]
        assert {h for h, _ in seen} == {"host1", "host2"}

        healed_at = time.monotonic()
        lab.run("host3", "nft", "delete", "table", "inet", "lbg_targets")
        wait_for(lambda: lab.route_hosts(VIP_PREFIX) == lab.hosts, 10, "host3 back")
        back = time.monotonic() - healed_at
        print(f"reachable again: host3 back in the route after {back:.2f} s "
              f"(holdDownSeconds {sick.hold_down})")
        assert back >= sick.hold_down  # no flapping: the hold-down is waited out


# -- 5 ------------------------------------------------------------------------------------------
def test_wrong_password_and_wrong_asn_are_reported_and_the_others_unaffected(
        tmp_path: Path) -> None:
    per_host: dict[str, dict[str, Any]] = {
        "host1": {"password": "right-secret"},
        "host2": {"password": "wrong-secret"},
        "host3": {"password": "right-secret", "peer_asn": 65123}}
    with daemons(tmp_path, password="right-secret", per_host=per_host,
                 announced_by=["host1"]) as (lab, lbs):
        wrong_asn = wait_for(lambda: "Bad peer AS" in lab.session_detail("host3") and
                             lbs["host3"].peer()["lastError"], 15, "host3's lastError")
        states = set()
        deadline = time.monotonic() + 4  # > the hold time and several connect retries
        while time.monotonic() < deadline:
            states |= {lab.session_state("host2"), lab.session_state("host3")}
            time.sleep(0.1)
        wrong_pw = wait_for(lambda: lbs["host2"].peer()["lastError"], 10, "host2's lastError")
        counters = lab.tcp_counters()
        view = lbs["host2"].http("/v1/balancers/web")[1]["status"]["bgp"][VIP]
        seen = spread(lab, 20)
        print(f"wrong ASN (host3): BIRD "
              f"{lab.session_detail('host3').split('Last error:')[-1].splitlines()[0].strip()};"
              f" daemon lastError {wrong_asn!r}\nwrong password (host2): BIRD states "
              f"{sorted(states)}, router {counters}; daemon lastError {wrong_pw!r}; balancer's "
              f"VIP {view}\nhost1 unaffected: 20 connections -> {dict(seen)}")
        assert "Established" not in states
        assert "Bad Peer AS" in wrong_asn, wrong_asn
        assert lbs["host2"].peer()["state"] != "up"
        assert "TCP-MD5" in wrong_pw, wrong_pw
        assert counters["TCPMD5Failure"] > 0, counters
        assert view["announced"] is False and view["peers"] == [], view
        assert lbs["host1"].peer()["state"] == "up"
        assert lab.route_hosts(VIP_PREFIX) == ["host1"]
        assert {h for h, _ in seen} == {"host1"}


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_router_restart_brings_sessions_and_routes_back(tmp_path: Path, kill: bool) -> None:
    with daemons(tmp_path) as (lab, lbs):
        started = time.monotonic()
        lab.restart_router(kill=kill)
        wait_for(lambda: all(lab.session_state(h) == "Established" for h in lab.hosts), 30,
                 "3 sessions back")
        wait_for(lambda: lab.route_hosts(VIP_PREFIX) == lab.hosts, 10, "3-way route back")
        back = time.monotonic() - started
        established = [lb.peer()["established"] for lb in lbs.values()]
        seen = spread(lab, 30)
        print(f"router restart ({'SIGKILL' if kill else 'SIGTERM'}): 3 sessions and the "
              f"3-way route back after {back:.2f} s; sessions per daemon {established}; "
              f"30 connections -> hosts {dict(Counter(h for h, _ in seen.elements()))}")
        assert all(n >= 2 for n in established), established
        assert len({h for h, _ in seen}) >= 2
