"""Crash safety of the `azure` provider: `lbctl run` as a process dies (SIGKILL, by
`LBCTL_TEST_CRASH_AFTER_ARM_CALL`) right after each distinct mutating ARM call of a Service's
create, update, node change and delete in turn, is restarted, and must converge with nothing
leaked or duplicated.

Phase 1 runs one Service through create -> update (a nodePort change, a second port, source
ranges, ClientIP affinity) -> nodes (a node excluded) -> delete with a clean controller and takes,
from the emulator's call log, the accepted writes of each phase, in order (`loadBalancers.put`,
the name the provider's client counts calls by and the crash variable takes). They must be
ARM's order: our public IP before the frontend that uses it and the NSG rules that need its
address (those two are written side by side, in either order); on delete the NSG rules, then
the frontend (the LB goes with its last), then the public IP (in use until then).

Phase 2 runs the same scenario with a second Service, killing the controller after each distinct
write of each phase (the same kind in two phases is two kill points: an LB write of a create is
not the LB write of a node change). Each phase starts a controller armed with its first kill
point; it dies right after that call (-9; the call is the last write ARM saw), is restarted
armed with the phase's next one, and so on; after the phase's last kill point a clean restart
finishes it. Writes made side by side (the LB's and the NSG's) can both land before the kill
that follows one of them: the other's kill point then finds its write already done after the
restart, and its crash state (both written) was the one the first kill left; it is recorded as
covered, and only such a side-by-side write may be. Why a chain and not a scenario per kill
point: a crash leaves ARM in the state the
clean sequence had reached at that call, which is where the restart stands when it makes the
next call, so the chain reaches every kill point's state at one restart each. Each phase must
end exactly at its expected state (the Service's frontend, rules, probes, public IP and NSG
rules, nothing else of the cluster's: no second public IP, frontend or NSG rule), the pool at
the nodes, the status IP the public IP's, reported ensured by a restarted controller that has
finished a sync; the address is the same throughout; after the delete nothing is left.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client

from lbctl.emulators.azure.server import AzureAdmin, AzureEmulator
from lbctl.emulators.azure.world import World
from lbctl.sandbox.app import Sandbox
from providers.azure.client import CRASH_ENV
from tests.providers.azure.e2e import (
    EXCLUDE,
    Snapshot,
    cluster_problems,
    config_text,
    leaks,
    not_ensured,
    want_for,
    world_nodes,
)
from tests.providers.controller_process import CRASH_RANGES, ControllerProcess, PhasedService

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PHASES = ("create", "update", "nodes", "delete")
NEW_RANGES = CRASH_RANGES
CLEAN = {
    "create": ["publicIPAddresses.put", "loadBalancers.put", "networkSecurityGroups.put"],
    "update": ["loadBalancers.put", "networkSecurityGroups.put"],
    "nodes": ["loadBalancers.put"],
    "delete": ["networkSecurityGroups.put", "loadBalancers.delete", "publicIPAddresses.delete"],
}
"""The accepted writes of each phase of a clean run, in order."""
BESIDE = frozenset({"loadBalancers.put", "networkSecurityGroups.put"})
"""Written side by side by an external Service's ensure: either may land first."""


def in_order(calls: list[str]) -> list[str]:
    """`calls` with each run of side-by-side writes sorted (their order is free)."""
    out: list[str] = []
    run: list[str] = []
    for call in [*calls, ""]:
        if call in BESIDE:
            run.append(call)
            continue
        out += sorted(run)
        run = []
        if call:
            out.append(call)
    return out


def writes(emu: AzureAdmin, since: int = 0) -> list[str]:
    """The accepted writes in the emulator's call log from index `since`."""
    return [c["api"] for c in emu.calls()[since:]
            if c["family"] == "write" and c["status"] in (200, 201, 202)]


# -- the scenario ----------------------------------------------------------------------------
@dataclass
class Scenario(PhasedService):
    core: client.CoreV1Api
    emu: AzureAdmin
    world: World
    name: str
    uid: str = ""
    ips: dict[str, str] = field(default_factory=dict)
    """The status IP each phase ended with (a crash must not cost the Service its address)."""

    def nodes(self, phase: str) -> dict[str, str]:
        return world_nodes(self.world, without=self.excluded(phase))

    def check(self, phase: str) -> list[str]:
        """What still stands between ARM (and the Service) and the phase's end state."""
        if phase == "delete":
            return self.still_there() + [f"left: {rid}" for rid in leaks(self.emu)]
        svc = self.read()
        if svc is None:
            return ["Service missing"]
        want = want_for(svc)
        if not want.ip:
            return ["no status IP yet"]
        if phase != "create" and (want.sources != tuple(NEW_RANGES) or len(want.ports) != 2):
            return ["the update is not in the Service yet"]
        found = cluster_problems(Snapshot.read(self.emu, self.world), [want],
                                 self.nodes(phase))
        if found:
            return found
        self.ips[phase] = want.ip
        return not_ensured(svc)


@dataclass
class KillPoint:
    phase: str
    call: str
    returncode: int | None = None
    seconds: float = 0.0


def run_scenario(scenario: Scenario, ctl: ControllerProcess, emu: AzureAdmin,
                 kills: dict[str, list[str]] | None, fired: list[KillPoint],
                 timeout: float = 30.0,
                 covered: list[tuple[str, str]] | None = None) -> dict[str, list[str]]:
    """create -> update -> nodes -> delete, each phase to convergence; answers the writes by
    phase. With `kills` (phase -> calls), each phase's controller runs armed with the phase's
    next kill point; each death is checked (SIGKILL, right after the armed call) and followed
    by a restart armed with the next (none left: a clean one)."""
    made: dict[str, list[str]] = {}
    started = time.monotonic()
    for phase in PHASES:
        pending = list((kills or {}).get(phase, []))
        ctl.start(pending[0] if pending else None)
        mark = len(emu.calls())
        scenario.apply(phase)
        deadline = time.monotonic() + timeout
        restarted = False
        while True:
            code = ctl.returncode()
            if code is not None:
                assert ctl.crash, f"the controller exited ({code}) unasked:\n{ctl.log_tail()}"
                done = writes(emu, mark)
                assert code == -signal.SIGKILL, ctl.log_tail()
                # the armed call is the last write, or the one before a write made beside it
                assert done and (done[-1] == ctl.crash or (
                    len(done) > 1 and done[-2] == ctl.crash and {done[-1], ctl.crash} <= BESIDE)
                ), f"died ({code}) armed with {ctl.crash}, last writes {done[-3:]}"
                fired.append(KillPoint(phase, ctl.crash, code, time.monotonic() - started))
                pending.pop(0)
                ctl.start(pending[0] if pending else None)
                restarted = True
            left = scenario.check(phase)
            while not left and pending and pending[0] in BESIDE and restarted \
                    and pending[0] in writes(emu, mark) and covered is not None:
                covered.append((phase, pending.pop(0)))  # landed beside the last kill's
                ctl.stop()
                ctl.start(pending[0] if pending else None)
                left = scenario.check(phase)
            if not left and pending:
                left = [f"converged with kill points of {phase} unfired: {pending}"]
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
        ctl.stop()
    return made


def test_sigkill_after_every_distinct_arm_write_converges(
        emulator: AzureEmulator, world: World, box: Sandbox, core_api: client.CoreV1Api,
        tmp_path: Path) -> None:
    emu = emulator
    config = tmp_path / "config.yaml"
    config.write_text(config_text(world, emu.endpoint))
    ctl = ControllerProcess(box, config, tmp_path, CRASH_ENV)

    # Phase 1: the writes of a clean create, update, node change and delete, in ARM's order.
    clean = run_scenario(Scenario(core_api, emu, world, "clean"), ctl, emu, None, [])
    print("\nclean run, writes by phase:")
    for phase in PHASES:
        print(f"  {phase}: {', '.join(clean[phase])}")
    assert {p: in_order(c) for p, c in clean.items()} == {
        p: in_order(c) for p, c in CLEAN.items()}
    assert emu.objects() == {}
    core_api.patch_node(world.nodes[0].name, {"metadata": {"labels": {EXCLUDE: None}}})

    # Phase 2: a kill point after each distinct write of each phase.
    kills = {phase: list(dict.fromkeys(calls)) for phase, calls in clean.items()}
    fired: list[KillPoint] = []
    covered: list[tuple[str, str]] = []
    crashy = Scenario(core_api, emu, world, "crashy")
    run_scenario(crashy, ctl, emu, kills, fired, covered=covered)
    assert emu.objects() == {}
    assert len(set(crashy.ips.values())) == 1, crashy.ips  # one address throughout

    print(f"\n{'phase':<7} {'kill point':<28} {'rc':>4} {'at':>7}")
    for kill in fired:
        print(f"{kill.phase:<7} {kill.call:<28} {kill.returncode!s:>4} {kill.seconds:>6.1f}s")
    assert sorted([(k.phase, k.call) for k in fired] + covered) == sorted(
        (phase, call) for phase in PHASES for call in kills[phase])
    assert all(call in BESIDE for _, call in covered), covered
    assert len(fired) >= len(PHASES) + 2  # the chain did kill, not only cover
    assert all(k.returncode == -signal.SIGKILL for k in fired)
