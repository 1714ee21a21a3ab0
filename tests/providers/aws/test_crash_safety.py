"""Crash safety of the `aws` provider: `lbctl run` as a process is SIGKILLed right after each
distinct mutating AWS call in turn, restarted, and must converge with nothing leaked or
duplicated.

Phase 1 runs one Service through create -> update (a nodePort change, a second port and new
source ranges) -> delete with a clean controller and records, from moto's side, every mutating
operation the controller makes: the controller's endpoint is a small recording proxy in front
of moto that logs each request's `Action` (and its answer's status). Phase 2 runs the same
scenario once per distinct operation C (in the order phase 1 first made them) with a Service of
its own, the controller started with `LBCTL_TEST_CRASH_AFTER_AWS_CALL=C`: it dies (-9) right
after its first successful C, is restarted without the variable, and the phase it died in must
converge: exactly one NLB per live Service (by tags and by name) carrying its own frontend
security group and the cluster's backend group, one target group per port, every group behind a
listener, no duplicate security group rules, no second frontend or backend group, nothing of
the cluster's beyond that; after the final delete, `tagged_objects` is empty (the backend group
included: the last NLB is gone). The kill points include the security group calls
(CreateSecurityGroup: the backend group, created first; DeleteSecurityGroup: the frontend group,
deleted after the NLB).
"""

from __future__ import annotations

import http.client
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError
from kubernetes import client

from lbctl.emulators.aws.world import World
from lbctl.sandbox.app import Sandbox
from providers.aws.client import CRASH_ENV
from tests.providers.aws.conftest import LBCTL_CLUSTER_TAG, Boto, tagged_objects
from tests.providers.aws.test_lifecycle import (
    View,
    aws_view,
    config_text,
    expect_for,
    instance_ids,
    nothing_left,
    problems,
    racing,
)
from tests.providers.controller_process import ControllerProcess, apply_phase
from tests.providers.convergence import NAMESPACE, core_api_of, not_ensured, read_service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

MUTATING = ("Create", "Register", "Deregister", "Modify", "Delete", "Authorize", "Revoke",
            "Set", "Add", "Remove", "Update")
PHASES = ("create", "update", "delete")
NEW_RANGES = ["203.0.113.0/24"]


# -- a recording proxy in front of moto ------------------------------------------------------
@dataclass(frozen=True)
class Call:
    action: str
    status: int
    phase: str
    at: float


@dataclass
class Recorder:
    upstream: str
    calls: list[Call] = field(default_factory=list)
    phase: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, action: str, status: int) -> None:
        with self.lock:
            self.calls.append(Call(action, status, self.phase, time.monotonic()))

    def mark(self, phase: str) -> int:
        """Label the calls from now on; answers the index of the next call."""
        with self.lock:
            self.phase = phase
            return len(self.calls)

    def mutations(self, since: int = 0) -> list[Call]:
        """Successful mutating calls (the ones the crash hook fires after) since `since`."""
        with self.lock:
            return [c for c in self.calls[since:]
                    if c.action.startswith(MUTATING) and c.status < 300]


def _action(body: bytes, path: str, headers: Any) -> str:
    """The AWS operation of a request: the query protocol's `Action` (form body or URL), or
    the JSON protocol's X-Amz-Target."""
    form = parse_qs(body.decode("utf-8", "replace"))
    query = parse_qs(urlsplit(path).query)
    action = (form.get("Action") or query.get("Action") or [""])[0]
    return action or str(headers.get("X-Amz-Target", "")).rpartition(".")[2] or "?"


def start_proxy(upstream: str) -> tuple[ThreadingHTTPServer, Recorder]:
    recorder = Recorder(upstream)
    target = urlsplit(upstream)
    host: str = target.hostname or "127.0.0.1"
    port: int = target.port or 80

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            action = _action(body, self.path, self.headers)
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "connection", "content-length")}
            headers["Host"] = target.netloc
            conn = http.client.HTTPConnection(host, port, timeout=60)
            try:
                conn.request(self.command, self.path, body, headers)
                response = conn.getresponse()
                data = response.read()
            finally:
                conn.close()
            recorder.record(action, response.status)  # before the caller sees the answer
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length",
                                       "server", "date"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="aws-proxy", daemon=True).start()
    return server, recorder


# -- the scenario ----------------------------------------------------------------------------
@dataclass
class Scenario:
    core: client.CoreV1Api
    boto: Boto
    world: World
    name: str
    uid: str = ""
    balancer: str = ""

    def read(self) -> client.V1Service | None:
        return read_service(self.core, self.name, NAMESPACE)

    def apply(self, phase: str) -> None:
        self.uid = apply_phase(self.core, self.name, NAMESPACE, phase, new_ranges=NEW_RANGES,
                               affinity=False) or self.uid

    def check(self, phase: str) -> list[str]:
        """What still stands between AWS (and the Service) and the phase's end state."""
        try:
            return self._check(phase)
        except ClientError as exc:
            if not racing(exc):
                raise
            return [f"objects changing under the listing: {exc}"]

    def _check(self, phase: str) -> list[str]:
        svc = self.read()
        if phase == "delete":
            out = [] if svc is None else [f"Service still there (finalizers "
                                          f"{svc.metadata.finalizers})"]
            view = aws_view(self.boto, self.uid, self.balancer or None)
            if (view.load_balancers or view.target_groups or view.rules or view.named
                    or view.groups):
                out.append(f"left: {len(view.load_balancers)} NLBs, {view.named} named, "
                           f"{len(view.target_groups)} groups, {len(view.rules)} rules, "
                           f"security groups {sorted(view.groups)}")
            return out + nothing_left(self.boto, self.world.cluster)
        if svc is None:
            return ["Service missing"]
        want = expect_for(svc, self.world, instance_ids(self.world))
        if not want.hostname:
            return ["no status hostname yet"]
        if phase == "update" and (want.sources != tuple(NEW_RANGES) or len(want.ports) != 2):
            return ["the update is not in the Service yet"]
        view = aws_view(self.boto, self.uid)
        self.balancer = view.balancer or self.balancer
        return (problems(view, want) or strays(self.boto, self.world.cluster, view)
                or not_ensured(svc))


def strays(boto: Boto, cluster: str, view: View) -> list[str]:
    """Anything tagged for the cluster (or an `lbctl:` rule) that is not the Service's (its
    NLB's security groups are: its frontend group and the cluster's backend group)."""
    found = tagged_objects(boto, cluster)
    out = []
    if set(found["load_balancers"]) != {lb["LoadBalancerArn"] for lb in view.load_balancers}:
        out.append(f"cluster NLBs {found['load_balancers']}")
    if set(found["target_groups"]) != {tg["TargetGroupArn"] for tg in view.target_groups}:
        out.append(f"cluster target groups {found['target_groups']}")
    if len(found["security_group_rules"]) != len(view.rules):
        out.append(f"{len(found['security_group_rules'])} lbctl rules in the cluster's groups, "
                   f"{len(view.rules)} of the Service's")
    groups = {gid for gid, g in view.groups.items()
              if any(t.get("Key") == LBCTL_CLUSTER_TAG and t.get("Value") == cluster
                     for t in g.get("Tags", []))}
    if set(found["security_groups"]) != groups or len(found["security_groups"]) != 2:
        out.append(f"cluster security groups {found['security_groups']}, the Service's NLB "
                   f"has {sorted(groups)}")
    if found["addresses"]:
        out.append(f"addresses {found['addresses']}")
    return out


@dataclass
class KillPoint:
    call: str
    phase: str = ""
    returncode: int | None = None
    converge_seconds: float = 0.0
    total_seconds: float = 0.0


def run_scenario(scenario: Scenario, ctl: ControllerProcess, recorder: Recorder,
                 crash: str | None, timeout: float = 60.0) -> KillPoint | None:
    """create -> update -> delete, each phase to convergence. With `crash`, the controller
    must die (-9) after its first successful `crash` call; it is restarted without the
    variable and the phase it died in must converge. Answers the kill point (None without)."""
    kill = KillPoint(crash) if crash else None
    started = time.monotonic()
    ctl.start(crash)
    armed_at = recorder.mark("create")
    for phase in PHASES:
        recorder.mark(phase)
        scenario.apply(phase)
        deadline = time.monotonic() + timeout
        restarted_at: float | None = None
        while True:
            code = ctl.returncode()
            fired = kill is not None and kill.returncode is None and any(
                c.action == crash for c in recorder.mutations(armed_at))
            if fired and code is None:
                code = ctl.wait(15)  # the hook kills right after the call: moments away
            if code is not None:
                assert kill is not None and kill.returncode is None, (
                    f"the controller exited ({code}) unasked:\n{ctl.log_tail()}")
                assert fired, f"the controller died ({code}) before any {crash}"
                kill.returncode = code
                kill.phase = next(c.phase for c in recorder.mutations(armed_at)
                                  if c.action == crash)
                assert code == -signal.SIGKILL, ctl.log_tail()
                ctl.start(None)
                restarted_at = time.monotonic()
            left = scenario.check(phase)
            if restarted_at is not None and not left and ctl.done_syncs() < 1:
                left = ["the restarted controller has not finished a sync"]
            if not left:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{scenario.name} ({crash or 'clean'}): {phase} did not converge:\n  "
                    + "\n  ".join(left) + f"\n{ctl.log_tail()}")
            time.sleep(0.2)
        if restarted_at is not None and kill is not None:
            kill.converge_seconds = time.monotonic() - restarted_at
    ctl.stop()
    if kill is not None:
        kill.total_seconds = time.monotonic() - started
        assert kill.returncode is not None, f"{crash} never happened: no kill"
    return kill


@pytest.fixture
def core_api(aws_sandbox: Sandbox) -> Iterator[client.CoreV1Api]:
    yield from core_api_of(aws_sandbox)


def test_sigkill_after_every_distinct_aws_call_converges(
        boto: Boto, world: World, aws_sandbox: Sandbox, core_api: client.CoreV1Api,
        tmp_path: Path) -> None:
    server, recorder = start_proxy(boto.endpoint.url)
    try:
        config = tmp_path / "config.yaml"
        config.write_text(config_text(world.cluster,
                                      f"http://127.0.0.1:{server.server_address[1]}"))
        ctl = ControllerProcess(aws_sandbox, config, tmp_path, CRASH_ENV)

        # Phase 1: the distinct mutating calls of a clean create, update and delete.
        run_scenario(Scenario(core_api, boto, world, "clean"), ctl, recorder, None)
        clean = recorder.mutations()
        distinct: list[str] = []
        for made in clean:
            if made.action not in distinct:
                distinct.append(made.action)
        print("\nclean run, mutating calls by phase:")
        for phase in PHASES:
            print(f"  {phase}: {', '.join(c.action for c in clean if c.phase == phase)}")
        print(f"distinct ({len(distinct)}): {', '.join(distinct)}")
        assert {"CreateSecurityGroup", "CreateLoadBalancer", "CreateTargetGroup",
                "RegisterTargets", "CreateListener", "AuthorizeSecurityGroupIngress",
                "ModifyListener", "DeleteLoadBalancer", "DeleteTargetGroup",
                "RevokeSecurityGroupIngress", "DeleteSecurityGroup"} <= set(distinct)
        assert distinct[0] == "CreateSecurityGroup"  # the groups exist before the NLB
        assert not any(tagged_objects(boto, world.cluster).values())

        # Phase 2: a kill point per distinct call, each with a Service of its own.
        kills: list[KillPoint] = []
        for k, call in enumerate(distinct):
            scenario = Scenario(core_api, boto, world, f"crash-{k:02d}")
            kill = run_scenario(scenario, ctl, recorder, call)
            assert kill is not None
            kills.append(kill)
            assert not any(tagged_objects(boto, world.cluster).values())
    finally:
        server.shutdown()
        server.server_close()

    print(f"\n{'kill point':<34} {'phase':<7} {'rc':>4} {'converged':>10} {'total':>7}")
    for kill in kills:
        print(f"{kill.call:<34} {kill.phase:<7} {kill.returncode!s:>4} "
              f"{kill.converge_seconds:>9.1f}s {kill.total_seconds:>6.1f}s")
    assert len(kills) == len(distinct)
    assert [k.call for k in kills] == distinct
    assert all(k.returncode == -signal.SIGKILL for k in kills)
    assert {k.phase for k in kills} <= set(PHASES)
