"""Crash safety of the `gcp` provider: `lbctl run` as a process dies (SIGKILL, by
`LBCTL_TEST_CRASH_AFTER_GCE_CALL`) right after each distinct mutating GCE call of a Service's
create, update and delete in turn, is restarted, and must converge with nothing leaked or
duplicated.

Phase 1 runs one Service through create -> update (a nodePort change, a second port, new source
ranges, ClientIP affinity) -> nodes (a node excluded) -> delete with a clean controller and
takes, from the emulator's call log, the distinct successful writes in the order they were
first made (`instanceGroups.addInstances` is the provider's `instanceGroups.add_instances`);
after its create, a clean restart must sync the Service with reads only.

Phase 2 runs the same scenario once more with a second Service, as a chain of kill points: the
controller starts armed with the first call, dies right after it (-9; the call is the last
successful write GCE saw), is restarted armed with the next one, and so on; a kill point whose
call belongs to a later phase lets the current phase converge clean first. Why a chain and not
a scenario per kill point: a crash leaves GCE in the state the clean sequence had reached at
that call, which is exactly where the previous restart stands when it makes the next call, so
the chain reaches every kill point's state, at one restart each (~2 s) instead of a whole
lifecycle each. Each phase must end exactly at its expected state: the Service's objects and
the cluster's shared ones, nothing else of the cluster's (no duplicate address, rule, group),
the group members right, the Service's status IP the forwarding rule's, reported ensured by a
restarted controller that has finished a sync; after the delete, nothing of the cluster's is
left (its shared check, firewall and groups included: the Service was the last).
"""

from __future__ import annotations

import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client

from lbctl.emulators.gcp.server import GceAdmin, GceEmulator
from lbctl.emulators.gcp.world import World
from lbctl.sandbox.app import Sandbox
from providers.gcp.client import CRASH_ENV
from tests.providers.controller_process import CRASH_RANGES, ControllerProcess, PhasedService
from tests.providers.gcp.e2e import (
    EXCLUDE,
    Snapshot,
    balancer_of,
    cluster_left,
    config_text,
    not_ensured,
    problems,
    service_paths,
    shared_paths,
    want_for,
    world_instances,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PHASES = ("create", "update", "nodes", "delete")
NEW_RANGES = CRASH_RANGES


def provider_call(api: str) -> str:
    """`compute.instanceGroups.addInstances` -> `instanceGroups.add_instances`: the name the
    provider's client counts calls by, and the crash variable takes."""
    collection, method = api.removeprefix("compute.").split(".")
    snake = re.sub(r"([A-Z])", r"_\1", method).lower()
    return f"{collection}.{snake}"


def writes(emu: GceAdmin, since: int = 0) -> list[str]:
    """The successful writes in the emulator's call log from index `since`, as provider calls."""
    return [provider_call(c["api"]) for c in emu.calls()[since:]
            if c["family"] == "write" and c["status"] == 200]


# -- the scenario ----------------------------------------------------------------------------
@dataclass
class Scenario(PhasedService):
    core: client.CoreV1Api
    emu: GceAdmin
    world: World
    name: str
    uid: str = ""
    balancer: str = ""
    ips: dict[str, str] = field(default_factory=dict)
    """The status IP each phase ended with (a crash must not cost the Service its address)."""

    def members(self, phase: str) -> dict[str, str]:
        return world_instances(self.world, without=self.excluded(phase))

    def check(self, phase: str) -> list[str]:
        """What still stands between GCE (and the Service) and the phase's end state."""
        if phase == "delete":
            return self.still_there() + [f"left: {p}" for p in cluster_left(self.emu,
                                                                            self.world.cluster)]
        svc = self.read()
        if svc is None:
            return ["Service missing"]
        want = want_for(svc, self.members(phase))
        if not want.ip:
            return ["no status IP yet"]
        if phase != "create" and (want.sources != tuple(NEW_RANGES)
                                  or len(want.ports["TCP"]) != 2):
            return ["the update is not in the Service yet"]
        snap = Snapshot.read(self.emu)
        found = problems(snap, self.world, want)
        if found:
            return found
        self.balancer = balancer_of(snap.of_service(self.uid))
        expected = service_paths(self.world, want, self.balancer) | shared_paths(self.world,
                                                                                 want)
        cluster = set(snap.of_cluster(self.world.cluster))
        if cluster != expected:
            return [f"the cluster's objects: extra {sorted(cluster - expected)}, missing "
                    f"{sorted(expected - cluster)}"]
        self.ips[phase] = want.ip
        return not_ensured(svc)


@dataclass
class KillPoint:
    call: str
    phase: str = ""
    returncode: int | None = None
    seconds: float = 0.0


@dataclass
class Chain:
    """The kill points still to fire, in order, and what happened to each."""

    pending: list[str]
    fired: list[KillPoint] = field(default_factory=list)

    @property
    def armed(self) -> str | None:
        return self.pending[0] if self.pending else None


def run_scenario(scenario: Scenario, ctl: ControllerProcess, emu: GceAdmin,
                 chain: Chain | None, timeout: float = 45.0) -> dict[str, list[str]]:
    """create -> update -> nodes -> delete, each phase to convergence; answers the writes by
    phase.
    With a chain, the controller runs armed with its next kill point; each death is checked
    (SIGKILL, right after the armed call) and followed by a restart armed with the next."""
    made: dict[str, list[str]] = {}
    ctl.start(chain.armed if chain else None)
    armed_at = len(emu.calls())
    started = time.monotonic()
    for phase in PHASES:
        mark = len(emu.calls())
        scenario.apply(phase)
        deadline = time.monotonic() + timeout
        restarted = False
        while True:
            # GCE first, then whether the armed call was made: a phase that looks done the
            # moment the call landed must not end before the process it kills is seen dying
            left = scenario.check(phase)
            code = ctl.returncode()
            fired = bool(ctl.crash) and ctl.crash in writes(emu, armed_at)
            if fired and code is None:
                code = ctl.wait(15)  # the hook kills right after the call: moments away
            if code is not None:
                assert chain is not None and ctl.crash, (
                    f"the controller exited ({code}) unasked:\n{ctl.log_tail()}")
                done = writes(emu, mark)
                assert code == -signal.SIGKILL, ctl.log_tail()
                assert done and done[-1] == ctl.crash, (
                    f"died ({code}) armed with {ctl.crash}, last writes {done[-3:]}")
                chain.fired.append(KillPoint(ctl.crash, phase, code,
                                             time.monotonic() - started))
                chain.pending.pop(0)
                ctl.start(chain.armed)
                armed_at = len(emu.calls())
                restarted = True
                continue
            if restarted and not left and ctl.done_syncs() < 1:
                left = ["the restarted controller has not finished a sync"]
            if not left:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{scenario.name} (armed {ctl.crash}): {phase} did not converge:\n  "
                    + "\n  ".join(left) + f"\n{ctl.log_tail()}")
            time.sleep(0.1)
        made[phase] = writes(emu, mark)
        if chain is None and phase == "create":
            restart_writes_nothing(ctl, emu)
    ctl.stop()
    return made


def restart_writes_nothing(ctl: ControllerProcess, emu: GceAdmin,
                           timeout: float = 30.0) -> None:
    """A controller restarted over a converged Service syncs it (reads) and writes nothing."""
    ctl.stop()
    mark = len(emu.calls())
    ctl.start(None)
    ctl.wait_for_sync(timeout)
    calls = emu.calls()[mark:]
    assert any(c["api"] == "compute.forwardingRules.get" for c in calls)  # it looked
    assert [c["api"] for c in calls if c["family"] == "write"] == []


@pytest.fixture
def emu(emulator: GceEmulator, world: World) -> GceEmulator:
    return emulator


def test_sigkill_after_every_distinct_gce_write_converges(
        emu: GceEmulator, world: World, box: Sandbox, core_api: client.CoreV1Api,
        tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(config_text(world, emu.endpoint))
    ctl = ControllerProcess(box, config, tmp_path, CRASH_ENV)

    # Phase 1: the distinct writes of a clean create, update and delete.
    clean = run_scenario(Scenario(core_api, emu, world, "clean"), ctl, emu, None)
    distinct = list(dict.fromkeys(w for phase in PHASES for w in clean[phase]))
    print("\nclean run, writes by phase:")
    for phase in PHASES:
        print(f"  {phase}: {', '.join(clean[phase])}")
    print(f"distinct ({len(distinct)}): {', '.join(distinct)}")
    assert {"regionHealthChecks.insert", "firewalls.insert", "instanceGroups.insert",
            "instanceGroups.add_instances", "regionBackendServices.insert", "addresses.insert",
            "forwardingRules.insert", "forwardingRules.delete", "firewalls.patch",
            "regionBackendServices.patch", "instanceGroups.remove_instances",
            "addresses.delete", "firewalls.delete", "regionBackendServices.delete",
            "regionHealthChecks.delete", "instanceGroups.delete"} <= set(distinct)
    assert clean["create"][-1] == "firewalls.insert"  # the clients' rule needs the IP: last
    assert clean["create"].index("forwardingRules.insert") > clean["create"].index(
        "regionBackendServices.insert")
    assert clean["create"].count("addresses.insert") == 1
    assert emu.objects() == {}
    core_api.patch_node(world.nodes[0].name, {"metadata": {"labels": {EXCLUDE: None}}})

    # Phase 2: every kill point in one chain of restarts.
    chain = Chain(list(distinct))
    crashy = Scenario(core_api, emu, world, "crashy")
    run_scenario(crashy, ctl, emu, chain)
    assert emu.objects() == {}
    assert len(set(crashy.ips.values())) == 1, crashy.ips  # one address throughout

    print(f"\n{'kill point':<36} {'phase':<7} {'rc':>4} {'at':>7}")
    for kill in chain.fired:
        print(f"{kill.call:<36} {kill.phase:<7} {kill.returncode!s:>4} {kill.seconds:>6.1f}s")
    assert [k.call for k in chain.fired] == distinct, f"never fired: {chain.pending}"
    assert all(k.returncode == -signal.SIGKILL for k in chain.fired)
    first_phase = {w: next(p for p in PHASES if w in clean[p]) for w in distinct}
    assert [k.phase for k in chain.fired] == [first_phase[k.call] for k in chain.fired]
