"""Issue 18, the controller end to end: a LoadBalancer Service in the sandbox, its pool advertised
over BGP, the VIP reachable from the client namespace through the router.

The network is bgp_lab.BgpLab with one balancer host (BIRD2 router AS 65000, host1 AS 65001 on
10.99.11.2, the client 10.99.1.2 behind the router). The whole Kubernetes side runs INSIDE
host1's namespace, in one process (bgp_e2e_runner.py, which says why and speaks a line protocol
on stdin/stdout): the traffic sandbox (3 simulated nodes on 127.0.10.K, pods on 127.0.20.x of
that namespace's loopback), a balancer daemon and the controller whose `baremetal` config has a
routable pool (POOL, never 127/8: the router does not forward loopback), the daemon as its one
balancer and `bgp:` with the router as peer (holdTime 3 s) and one advertisement of that pool.
Nothing of this module is faked: the provider pushes the `bgp:` section to the daemon
(`PUT /v1/bgp`), the daemon binds the VIP on host1's lo and has ExaBGP announce it, BIRD puts
it in the router's kernel table, and the client's connections cross the router to host1,
the daemon's userspace proxy, a simulated node's NodePort and a pod, which answers with its name.

What it proves, in order (times printed with `pytest -s`):
1. the Service gets a VIP from the pool, `ipMode: Proxy`, LoadBalancerServing True and no
   LoadBalancerDegraded True (the provider saw the daemon announce it);
2. the router learns VIP/32 from host1 (BIRD's route and the kernel's), the daemon reports the
   session up and the VIP announced, bound on lo:lbctlbgp;
3. N connections from the client namespace to VIP:port are all answered by the Service's pods
   (and spread over more than one);
4. deleting the Service withdraws the route (the router's kernel and BIRD lose the /32), the
   daemon drops the balancer, unbinds the VIP and no longer claims it, and the address is free
   again: the next Service gets the same one (the pool hands out its lowest free address;
   the runner's config has `cooldownSeconds: 0`), announced and answered by its pod.

No `traffic_lock`: the lock guards the fixed 127.0.10.x / 127.0.20.x addresses, which only clash
within one network namespace; this sandbox runs in the lab's own host namespace with its own
loopback, so it can run beside a root-namespace traffic sandbox (and another lab's).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.balancer.network.bgp_lab import HOST_ASN, ROUTER_ASN, BgpLab, require_bgp_tools
from tests.conftest import wait_for

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]
ROOT = Path(__file__).resolve().parents[3]
POOL = "10.99.50.0/28"
PORT = 80
REQUESTS = 30


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    require_bgp_tools(lbctl=True)


class Runner:
    """bgp_e2e_runner in `host`'s namespace: `ask(op, **args)` sends one command and answers
    the runner's one-line reply (AssertionError on an `error` reply, a timeout or an exit)."""

    def __init__(self, lab: BgpLab, host: str) -> None:
        self.lab, self.host = lab, host
        self.log = lab.tmp / "runner.log"
        self._err = self.log.open("a")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", lab.ns[host].name, sys.executable, "-m",
             "tests.balancer.network.bgp_e2e_runner", "--tmp", str(lab.tmp), "--pool", POOL,
             "--source", lab.host_ip(host), "--peer", lab.router_ip(host),
             "--my-asn", str(HOST_ASN), "--peer-asn", str(ROUTER_ASN), "--hold", str(lab.hold),
             "--limit", "85"],
            text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        lab.ns[host].procs.append(self.proc)  # killed by the lab's teardown whatever happens
        self._buffer = b""

    def read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"runner: no answer in {timeout:g} s\n{self.tail()}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"runner exited ({self.proc.wait(5)})\n{self.tail()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        doc: dict[str, Any] = json.loads(line)
        if "error" in doc:
            raise AssertionError(f"runner: {doc['error']}\n{self.tail()}")
        return doc

    def ask(self, op: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def quit(self) -> None:
        with contextlib.suppress(OSError, AssertionError, ValueError):
            self.ask("quit", timeout=15)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def tail(self, chars: int = 6000) -> str:
        self._err.flush()
        return self.log.read_text(errors="replace")[-chars:]

    def close(self) -> None:
        self._err.close()


@contextlib.contextmanager
def lab_and_runner(tmp: Path) -> Iterator[tuple[BgpLab, Runner]]:
    """One host, its runner ready (sandbox, daemon, controller up); logs printed on failure."""
    with BgpLab(1, tmp=tmp) as lab:
        runner = Runner(lab, "host1")
        try:
            started = time.monotonic()
            hello = runner.read(45)
            print(f"runner ready after {time.monotonic() - started:.2f} s: {hello}")
            yield lab, runner
            runner.quit()
        except BaseException:
            print(f"--- runner log ---\n{runner.tail()}\n--- bird ---\n"
                  f"{lab.read_log('bird.out')}{lab.log.read_text() if lab.log.exists() else ''}"
                  f"\n--- router ---\n{lab.birdc('show route all', check=False).stdout}")
            raise
        finally:
            runner.close()


def http_from_client(lab: BgpLab, vip: str, port: int, timeout: float = 3.0) -> str:
    """One HTTP request from the client namespace to vip:port; the body (a pod's name)."""
    with lab.ns["client"].socket() as sock:
        sock.settimeout(timeout)
        sock.connect((vip, port))
        sock.sendall(f"GET / HTTP/1.0\r\nHost: {vip}\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    head, sep, body = data.decode(errors="replace").partition("\r\n\r\n")
    if not sep:
        raise ConnectionError(f"incomplete response from {vip}:{port}: {head[:80]!r}")
    return body.strip()


def bound_on_lo(lab: BgpLab, host: str) -> str:
    return lab.run(host, "ip", "-4", "-o", "addr", "show", "dev", "lo").stdout


def test_service_vip_announced_over_bgp_reachable_from_the_client_and_withdrawn(
        tmp_path: Path) -> None:
    with lab_and_runner(tmp_path) as (lab, runner):
        started = time.monotonic()
        view = runner.ask("create", name="web", port=PORT, replicas=3, timeout=40)
        served = time.monotonic() - started
        vip, prefix = view["vip"], f"{view['vip']}/32"
        assert vip.startswith("10.99.50."), view
        assert view["ipMode"] == "Proxy", view
        assert view["conditions"]["LoadBalancerServing"]["status"] == "True", view

        # the router learns VIP/32 from host1
        wait_for(lambda: lab.route_hosts(prefix) == ["host1"], 15, f"{prefix} via host1")
        routed = time.monotonic() - started
        bird = lab.birdc(f"show route {prefix} all").stdout
        assert f"via {lab.host_ip('host1')}" in bird and f"BGP.as_path: {HOST_ASN}" in bird, bird
        doc = runner.ask("bgp")
        assert doc["source"] == "programmed", doc  # pushed by the provider, no static file
        [advert] = doc["config"]["advertisements"]
        assert advert["addresses"] == [POOL], doc  # the pool's name resolved to its range
        bgp = doc["status"]
        [peer] = bgp["peers"]
        assert peer["state"] == "up" and peer["prefixes"] == 1, bgp
        assert bgp["vips"][vip]["announced"] is True, bgp
        assert bgp["vips"][vip]["peers"] == [lab.router_ip("host1")], bgp
        assert f"{vip}/32" in bound_on_lo(lab, "host1")

        # the provider saw it announced: Serving, and no Degraded condition says otherwise
        view = wait_for(lambda: (v := runner.ask("service", name="web"))["conditions"].get(
            "LoadBalancerDegraded", {}).get("status") != "True" and v, 10, "not degraded")
        assert view["vip"] == vip
        assert view["conditions"]["LoadBalancerServing"]["status"] == "True", view

        # the client, behind the router, reaches the pods through the VIP
        t0 = time.monotonic()
        answers = Counter(http_from_client(lab, vip, PORT) for _ in range(REQUESTS))
        took = time.monotonic() - t0
        print(f"Service web: VIP {vip} served after {served:.2f} s, routed via host1 after "
              f"{routed:.2f} s; {REQUESTS} requests from the client in {took:.2f} s -> "
              f"{dict(answers)}")
        assert sum(answers.values()) == REQUESTS
        assert all(a.startswith("pod web-") for a in answers), answers
        assert len(answers) >= 2, answers  # spread over the pods (3 of them, 30 requests)

        # deleting the Service withdraws the route and frees the address
        deleted_at = time.monotonic()
        left = runner.ask("delete", name="web")
        assert "web" not in left["balancers"], left
        wait_for(lambda: lab.route_hosts(prefix) == [], 10, f"{prefix} withdrawn")
        withdrawn = time.monotonic() - deleted_at
        bird = lab.birdc(f"show route {prefix} all", check=False).stdout  # exits 1: not found
        assert "BGP.as_path" not in bird and "via" not in bird, bird
        bgp = runner.ask("bgp")["status"]
        assert vip not in bgp["vips"] and vip not in bgp["boundOnLo"], bgp
        assert bgp["peers"][0]["state"] == "up" and bgp["peers"][0]["prefixes"] == 0, bgp
        assert f"{vip}/32" not in bound_on_lo(lab, "host1")
        with pytest.raises(OSError):
            http_from_client(lab, vip, PORT, timeout=1.0)
        print(f"deleted: gone from the API and the daemon, route withdrawn after "
              f"{withdrawn:.2f} s")

        again_at = time.monotonic()
        again = runner.ask("create", name="web2", port=PORT, replicas=1, timeout=40)
        assert again["vip"] == vip, (again, vip)  # released, handed out again
        wait_for(lambda: lab.route_hosts(prefix) == ["host1"], 15, f"{prefix} back via host1")
        answer = http_from_client(lab, vip, PORT)
        print(f"Service web2: the same VIP {vip}, routed and answered ({answer!r}) after "
              f"{time.monotonic() - again_at:.2f} s")
        assert answer.startswith("pod web2-"), answer
