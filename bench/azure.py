"""Benchmark of the Azure provider against the ARM emulator at a realistic operation latency:
200 Services created at once on the cluster's shared load balancer, next to upstream's model
(one LB PUT per Service, serialised), then a node added with 300 Services, a steady-state
resync and the delete of them all, with the provider's goals judged.

Why: Azure writes the cluster's one Standard Load Balancer whole, and every write is a
long-running operation (ARM answers Azure-AsyncOperation; NRP takes seconds). Upstream's
controller writes the LB once per Service behind one process-wide lock, so N Services cost N
serialised PUTs: N x the operation latency. lbctl folds the changes of every Service that
arrives within a batch window into one etag-guarded PUT (`providers/azure/coalesce.py`). The
figures that carry over to Azure are the write counts; the wall times are those of the
emulator's operation delay, the rate limits below and this machine.

Everything runs in this process, as bench/gcp.py does: the ARM emulator (`lbctl/emulators/azure`,
driven through azure-mgmt-network; every PUT/DELETE stays InProgress for `--operation-delay`
seconds, 1.0 by default), its seeded world (a resource group, virtual network, node subnet, NSG
and three VMs), a sandbox whose Nodes are those VMs, and a Controller with the `azure`
provider. lbctl's ArmClient polls an operation every 1.0 s (its `polling_interval`), matching
the 1 s operation; the upstream model's SDK client polls at the same interval. Calls are ARM's
own count: the emulator's call log (`loadBalancers.put`, `operations.get`, ...), cleared between
phases.

1. Upstream's model, measured for real on the same emulator at the same latency: `--sample`
   Services (8 by default) written one at a time, each one SDK GET of the LB and one PUT of it
   with this Service's frontend, rule, probe and the pool added (If-Match: the etag read;
   bodies built by lbctl's own pure functions, so both write the same LB), waited for. The
   Services' public IPs are made beforehand and not timed, and upstream's per-Service public IP
   and NSG writes (serialised under the same lock) are left out: the model's time is a lower
   bound of upstream's. The per-Service mean, times 200, is upstream's time for 200 Services
   (extrapolated linearly: a PUT of a bigger LB costs the emulator a little more, so this too
   favours upstream). Not run in full: 200 serial writes at 1 s take over 3 minutes.
2. 200 1-port Services created at once by 8 clients: wall time from the first create to the
   last ingress IP, LB writes in all (goal <= 25) and the ratio to upstream's 200 (goal >= 5x).
3. 100 more (300 in all), then one node added (a VM in the world and its Node): goal one pool
   write in all (one `loadBalancers.put`, nothing else written).
4. A steady-state resync of the 300 (the drift timer's forced re-ensure, nothing changed):
   goal 0 writes. Each Service's target counts are read here (one load-balancing rule's
   `health` action and its Location poll: `loadBalancingRules.health`, `operationResults.get`),
   shown apart: a POST that changes nothing, though ARM bills it against the write budget.
5. Delete of all 300: wall time until nothing of lbctl's is left in ARM, writes in all.

Rate limits: `--rates` (azure.rateLimits read, write, operations) default to lbctl's defaults
(`providers.azure.settings.DEFAULT_RATE_LIMITS`: under ARM's documented token buckets of 25
reads and 10 writes a second per principal, polls counted as reads). The emulator throttles
nothing itself. Under this budget the 200 Services' wall time is bound by the reads and polls,
not by the LB writes: a PUT ends with the SDK's GET of the resource, so each Service's public
IP costs about 2 reads and a poll.

Workers: `--workers` (controller.workers, by default 32 as `values-azure.yaml` sets it): a
Service holds its worker through its public IP, LB and NSG writes, so the Services in flight
(and hence a batch's size) are at most the workers.

Every wait is bounded by its own cap and by the run's `--budget` (240 s); a phase that did not
complete says so, judges nothing and prints no ratio, and the phases after it are skipped. One
run takes about 3 minutes on a 2-vCPU machine.

    .venv/bin/python bench/azure.py [--services 200] [--more 100] [--workers 32]
        [--rates 12,8,10] [--operation-delay 1.0] [--sample 8] [--budget 240]
        [--skip upstream,node]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
# run as a script, this file's directory leads sys.path, and this file (`azure`) would shadow
# the Azure SDK's `azure` namespace package: drop it; `lbctl` and `providers` from the root
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import cloud_env  # noqa: E402
from bench.cloud_env import (  # noqa: E402
    CLUSTER,
    NAMESPACE,
    CloudEnv,
    create,
    parts,
    quiet_logs,
    rates3,
    start_cloud,
)
from bench.cloud_env import ingress as address  # noqa: E402
from bench.completeness import Judged, verdict  # noqa: E402
from lbctl.emulators.azure import world as world_module  # noqa: E402
from lbctl.emulators.azure.client import network_client  # noqa: E402
from lbctl.emulators.azure.server import AzureEmulator  # noqa: E402
from lbctl.emulators.azure.world import World  # noqa: E402
from lbctl.kube import NODES, SERVICES  # noqa: E402
from providers.azure import names  # noqa: E402
from providers.azure.annotations import parse_annotations  # noqa: E402
from providers.azure.changes import READ_ONLY, lb_change  # noqa: E402
from providers.azure.desired import desired  # noqa: E402
from providers.azure.provider import AzureProvider  # noqa: E402
from providers.azure.settings import DEFAULT_RATE_LIMITS, AzureSettings  # noqa: E402
from providers.spec import (  # noqa: E402
    BalancerRef,
    HealthCheck,
    Listener,
    LoadBalancerSpec,
    ServiceRef,
    Target,
)

GOAL_LB_WRITES = 25
GOAL_SPEEDUP = 5.0
POLLING = 1.0
"""Seconds between operation polls: lbctl's ArmClient default, and the model's SDK client."""
WRITE_SUFFIXES = (".put", ".delete", ".patch", ".post")

Rates = tuple[float, float, float]
"""read, write, operations (azure.rateLimits)."""


# -- the environment ------------------------------------------------------------------------------
@dataclass
class Env(CloudEnv):
    """The emulator (reset, seeded), a sandbox of its nodes, the controller on both."""

    emulator: AzureEmulator
    world: World

    def quiet(self) -> bool:
        return self.controller.quiet()

    def provider(self) -> AzureProvider | None:
        inner = self.controller.inner_provider
        return inner if isinstance(inner, AzureProvider) else None


def start_env(emulator: AzureEmulator, workers: int, rates: Rates) -> Env:
    emulator.reset(keep_world=False)
    world = emulator.seed(CLUSTER, nodes=3)
    read, write, operations = rates
    base = start_cloud(world_module.nodes_file(world), "azure", workers, 400, 800, f"""\
azure:
  subscriptionId: "{world.subscription}"
  resourceGroup: {world.resource_group}
  location: {world.location}
  vnetName: {world.vnet}
  subnetName: {world.subnet}
  securityGroupName: {world.nsg}
  endpoint: "{emulator.endpoint}"
  rateLimits: {{read: {read}, write: {write}, operations: {operations}}}
""")
    emulator.clear_calls()
    return Env(**parts(base), emulator=emulator, world=world)


# -- helpers --------------------------------------------------------------------------------------
def wait(check: Callable[[], bool], timeout: float, step: float = 0.05) -> float | None:
    """cloud_env.wait, polling every 50 ms unless told."""
    return cloud_env.wait(check, timeout, step)


@dataclass
class Calls(Judged):
    """ARM's view of a phase: every request by `<kind>.<verb>`."""

    by_api: Counter[str] = field(default_factory=Counter)

    @classmethod
    def take(cls, emulator: AzureEmulator) -> Calls:
        """The emulator's counts since the last take, cleared."""
        counts = emulator.counts()
        emulator.clear_calls()
        return cls(by_api=Counter(counts))

    @property
    def writes(self) -> int:
        return sum(n for api, n in self.by_api.items() if api.endswith(WRITE_SUFFIXES))

    @property
    def lb_writes(self) -> int:
        return sum(n for api, n in self.by_api.items()
                   if api.startswith("loadBalancers.") and api.endswith(WRITE_SUFFIXES))

    @property
    def health(self) -> int:
        """Rule health actions (POSTs that write nothing: reads here, writes to ARM's budget)."""
        return self.by_api["loadBalancingRules.health"]

    @property
    def polls(self) -> int:
        return self.by_api["operations.get"] + self.by_api["operationResults.get"]

    def reads_text(self) -> str:
        return ", ".join(f"{api} {n}" for api, n in sorted(self.by_api.items())
                         if not api.endswith(WRITE_SUFFIXES) and api != "operations.get")

    def text(self) -> str:
        if not self.complete:
            return f"INCOMPLETE ({self.why})"
        writes = ", ".join(f"{api} {n}" for api, n in sorted(self.by_api.items())
                           if api.endswith(WRITE_SUFFIXES))
        reads = sum(self.by_api.values()) - self.writes - self.polls
        health = (f" ({self.health} of them rule health actions, billed by ARM as writes)"
                  if self.health else "")
        return (f"{self.writes} writes ({writes or 'none'}), {reads} reads{health}, "
                f"{self.polls} operation polls")


def provisioned(env: Env, services: list[str], timeout: float) -> tuple[int, float]:
    """Wait until every Service has its ingress IP (bounded): how many did, and
    time.monotonic() when the last of them was seen with one."""
    pending = set(services)
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    while pending and time.monotonic() < deadline:
        done = {n for n in pending if address(env, n)}
        if done:
            last = time.monotonic()
            pending -= done
        time.sleep(0.1)
    return len(services) - len(pending), last


def create_all(env: Env, services: list[str]) -> float:
    """POST the Services from 8 clients; answers time.monotonic() before the first."""
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: create(env, n), services))
    return t0


# -- 1. upstream's model ---------------------------------------------------------------------------
@dataclass
class Upstream:
    sample: int
    seconds: list[float]
    lb_puts: int
    complete: bool
    why: str = ""

    @property
    def per_service(self) -> float:
        return statistics.fmean(self.seconds) if self.seconds else 0.0

    def for_services(self, n: int) -> float:
        return self.per_service * n


def _spec(world: World, n: int) -> LoadBalancerSpec:
    vm = (f"azure:///subscriptions/{world.subscription}/resourceGroups/{world.resource_group}/"
          "providers/Microsoft.Compute/virtualMachines/")
    uid = f"00000000-0000-0000-0000-{n:012d}"
    return LoadBalancerSpec(
        ref=BalancerRef(f"up-{n:04d}-abcdefghij", CLUSTER, ServiceRef(NAMESPACE, f"up-{n:04d}",
                                                                      uid)),
        listeners=(Listener("http", "TCP", 80, 30000 + n),),
        targets=tuple(Target(v.name, vm + v.name, (v.ip,)) for v in world.nodes),
        health_check=HealthCheck("TCP", None))


def upstream(emulator: AzureEmulator, sample: int, timeout: float) -> Upstream:
    """`sample` Services written into the shared LB one at a time, one GET + one PUT each."""
    emulator.reset(keep_world=False)
    world = emulator.seed(CLUSTER, nodes=3)
    settings = AzureSettings(subscription_id=world.subscription,
                             resource_group=world.resource_group, location=world.location,
                             vnet_name=world.vnet, subnet_name=world.subnet,
                             security_group_name=world.nsg, endpoint=emulator.endpoint)
    sdk = importlib.import_module("azure.mgmt.network")
    net = network_client(sdk.NetworkManagementClient, emulator.endpoint, world.subscription,
                         polling_interval=POLLING)
    group, lb_name = world.resource_group, names.load_balancer(CLUSTER, False)
    wants = [desired(s, parse_annotations(s), settings)
             for s in (_spec(world, n) for n in range(sample))]
    try:
        with ThreadPoolExecutor(8) as pool:  # the public IPs first, not timed
            list(pool.map(lambda w: net.public_ip_addresses.begin_create_or_update(
                w.public_ip_group, w.public_ip_name, w.public_ip).result(), wants))
        emulator.clear_calls()
        seconds: list[float] = []
        deadline = time.monotonic() + timeout
        for want in wants:
            if time.monotonic() > deadline:
                return Upstream(sample, seconds, len(seconds), False,
                                f"{len(seconds)} of {sample} within {timeout:.0f} s")
            t0 = time.monotonic()
            try:  # the REST JSON, as lbctl's client reads it
                raw: dict[str, Any] | None = net.load_balancers.get(
                    group, lb_name, cls=lambda response, _m, _h: response.http_response.json())
            except Exception as exc:  # 404: the first Service makes the LB
                if getattr(exc, "status_code", None) != 404:
                    raise
                raw = None
            body = lb_change(want)(raw)
            assert body is not None
            clean = {k: v for k, v in body.items() if k not in READ_ONLY}
            headers = {"If-Match": str(raw["etag"])} if raw else {"If-None-Match": "*"}
            net.load_balancers.begin_create_or_update(group, lb_name, clean,
                                                      headers=headers).result()
            seconds.append(time.monotonic() - t0)
        puts = emulator.counts().get("loadBalancers.put", 0)
    finally:
        net.close()
    return Upstream(sample, seconds, puts, True)


# -- 2.-5. lbctl -----------------------------------------------------------------------------------
@dataclass
class Phase:
    label: str
    services: int
    got: int
    wall: float
    calls: Calls


@dataclass
class Figures:
    create: Phase | None = None
    grow: Phase | None = None
    node: Phase | None = None
    resync: Phase | None = None
    delete: Phase | None = None
    stats: str = ""


def add_node(env: Env, timeout: float) -> float | None:
    """A new VM in the world and its Node; answers seconds until the controller's node sync
    settled (the pool holds it and the queue is quiet), None on timeout."""
    grown = env.emulator.add_nodes(1)
    node = grown.nodes[-1]
    t0 = time.monotonic()
    env.kube.request("POST", NODES.path(), body={
        "metadata": {"name": node.name,
                     "labels": {"topology.kubernetes.io/zone": node.zone,
                                "topology.kubernetes.io/region": grown.location}},
        "spec": {"providerID": world_module.provider_id(grown.subscription,
                                                        grown.resource_group, node.name)},
        "status": {"addresses": [{"type": "InternalIP", "address": node.ip}],
                   "conditions": [{"type": "Ready", "status": "True"}]}})

    def in_pool() -> bool:
        lbs = env.emulator.snapshot().get("objects", {}).get("loadBalancers", [])
        return any(a.get("properties", {}).get("ipAddress") == node.ip
                   for lb in lbs for p in lb.get("properties", {}).get("backendAddressPools", [])
                   for a in p.get("properties", {}).get("loadBalancerBackendAddresses", []))

    if wait(in_pool, timeout, step=0.5) is None:
        return None
    time.sleep(1.5)  # the debounce's batch has been taken by the workers
    done = wait(env.quiet, timeout)
    return None if done is None else done - t0


class Budget:
    """The run's time: every wait takes at most what is left of it (and its own cap), so one
    run ends in bounded time whatever the emulator or the controller do."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self, cap: float) -> float:
        return max(0.0, min(cap, self.deadline - time.monotonic()))


def _stats(provider: AzureProvider | None) -> str:
    if provider is None:
        return ""
    lb, nsg = provider.lb(False).stats, provider.nsg().stats
    return (f"LB writer: {lb.batches} batches of {lb.changes} changes, {lb.writes} PUTs, "
            f"{lb.deletes} DELETEs, {lb.conflicts} x 412; NSG writer: {nsg.batches} batches, "
            f"{nsg.writes} PUTs, {nsg.conflicts} x 412")


def _create_phase(env: Env, label: str, names: list[str], limit: float, budget: Budget,
                  ) -> Phase:
    """Create `names` at once, wait (`limit`) for their ingress IPs and the queue to settle:
    the phase's figures, failed when either did not happen."""
    t0 = create_all(env, names)
    got, last = provisioned(env, names, limit)
    settled = wait(env.quiet, budget.left(60)) is not None
    calls = Calls.take(env.emulator)
    if got < len(names) or not settled:
        calls.failed(f"{got} of {len(names)} got an ingress IP within {limit:.0f} s"
                     + ("" if settled else ", the queue did not settle"))
    return Phase(label, len(names), got, last - t0, calls)


def lbctl(emulator: AzureEmulator, services: int, more: int, workers: int, rates: Rates,
          skip: set[str], budget: Budget) -> Figures:
    """Phases 2-5 on one controller; stops at the first phase that did not complete."""
    out = Figures()
    env = start_env(emulator, workers, rates)
    try:
        first = [f"lb-{i:04d}" for i in range(services)]
        out.create = _create_phase(env, "create", first, budget.left(120), budget)
        out.stats = _stats(env.provider())
        if not out.create.calls.complete or "node" in skip:
            return out

        second = [f"lb-{i:04d}" for i in range(services, services + more)]
        out.grow = _create_phase(env, "grow", second, budget.left(90), budget)
        if not out.grow.calls.complete:
            return out
        everyone = first + second

        took = add_node(env, budget.left(60))
        calls = Calls.take(emulator)
        if took is None:
            calls.failed("the node never reached the pool, or the sync did not settle")
        out.node = Phase("node", len(everyone), len(everyone), took or 0.0, calls)
        if not calls.complete:
            return out

        t0 = time.monotonic()
        for svc in env.controller.cache.services():  # what Controller._tick does
            env.controller._enqueue(svc, force=True)
        limit = budget.left(60)
        quiet = wait(env.quiet, limit) is not None
        calls = Calls.take(emulator)
        if not quiet:
            calls.failed(f"the resync did not settle within {limit:.0f} s")
        out.resync = Phase("resync", len(everyone), len(everyone), time.monotonic() - t0, calls)
        if not calls.complete:
            return out

        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: env.kube.request("DELETE", SERVICES.path(NAMESPACE, n)),
                          everyone))
        limit = budget.left(120)
        gone = wait(lambda: not env.emulator.objects() and env.quiet(), limit, step=0.5)
        calls = Calls.take(emulator)
        if gone is None:
            left = {k: len(v) for k, v in env.emulator.objects().items()}
            calls.failed(f"lbctl's objects still in ARM after {limit:.0f} s: {left}")
        out.delete = Phase("delete", len(everyone), len(everyone) if gone else 0,
                           (gone or time.monotonic()) - t0, calls)
    finally:
        env.close()
    return out


# -- the report ------------------------------------------------------------------------------------
def report(up: Upstream | None, f: Figures, services: int, more: int, workers: int) -> None:
    print(f"\n1. upstream's model: one LB GET + PUT per Service, serialised "
          f"(measured for real, {up.sample if up else 0} Services, then x {services})")
    if up is None:
        print("  skipped (--skip upstream): no ratio")
    elif not up.complete:
        print(f"  INCOMPLETE ({up.why}): no ratio")
    else:
        print(f"  {up.sample} Services one at a time: {sum(up.seconds):.1f} s, "
              f"{up.lb_puts} LB PUTs; per Service mean {up.per_service:.2f} s "
              f"(min {min(up.seconds):.2f}, max {max(up.seconds):.2f})")
        print(f"  -> {services} Services: {up.for_services(services):.0f} s and {services} "
              "LB PUTs (a lower bound: no public IP or NSG write, and a small LB's PUT cost)")

    c = f.create
    print(f"\n2. lbctl: {services} 1-port Services created at once (8 clients, {workers} "
          "workers)")
    if c is None:
        return
    if not c.calls.complete:
        print(f"  create: {c.calls.text()}")
    else:
        print(f"  all {services} ingress IPs in {c.wall:.1f} s; ARM saw {c.calls.text()}")
        print(f"  LB writes: {c.calls.lb_writes} ({c.calls.lb_writes / services:.2f} per "
              f"Service); upstream's model {services}")
    if f.stats:
        print(f"  {f.stats}")
    print(f"  reads: {c.calls.reads_text()}")
    ok_writes = c.calls.lb_writes <= GOAL_LB_WRITES
    print("  goals:")
    print(f"    {services} Services with <= {GOAL_LB_WRITES} LB writes: "
          f"{c.calls.lb_writes if c.calls.complete else '-'} -> "
          f"{verdict(ok_writes, c.calls.complete)}")
    judged = c.calls.complete and up is not None and up.complete and c.wall > 0
    if judged and up is not None:
        ratio = up.for_services(services) / c.wall
        print(f"    >= {GOAL_SPEEDUP:g}x faster than one PUT per Service serialised at the "
              f"same latency: {up.for_services(services):.0f} s / {c.wall:.1f} s = "
              f"{ratio:.1f}x -> {verdict(ratio >= GOAL_SPEEDUP)}")
    else:
        print(f"    >= {GOAL_SPEEDUP:g}x faster than one PUT per Service serialised: "
              f"{verdict(False, complete=False)}")

    if f.grow is not None:
        g = f.grow
        print(f"\n3. {more} more ({services + more} in all), then one node added")
        print(f"  the {more}: {g.calls.text()}"
              + (f" in {g.wall:.1f} s" if g.calls.complete else ""))
    if f.node is not None:
        n = f.node
        if n.calls.complete:
            print(f"  node added -> settled in {n.wall:.1f} s (1 s debounce): "
                  f"{n.calls.text()}")
        else:
            print(f"  node added: {n.calls.text()}")
        ok = n.calls.by_api["loadBalancers.put"] == 1 and n.calls.writes == 1
        print(f"  goal: one pool write in all with {n.services} Services: "
              f"{n.calls.writes if n.calls.complete else '-'} -> "
              f"{verdict(ok, n.calls.complete)}")
    if f.resync is not None:
        r = f.resync
        print(f"\n4. steady-state resync of {r.services} Services (forced re-ensure): "
              f"{r.calls.text()}" + (f" in {r.wall:.1f} s" if r.calls.complete else ""))
        print(f"  reads: {r.calls.reads_text()}")
        print(f"  goal: 0 writes: {r.calls.writes if r.calls.complete else '-'} -> "
              f"{verdict(r.calls.writes == 0, r.calls.complete)}")
    if f.delete is not None:
        d = f.delete
        print(f"\n5. delete of all {d.services}: "
              + (f"nothing of lbctl's left in ARM after {d.wall:.1f} s; {d.calls.text()}"
                 if d.calls.complete else d.calls.text()))
        if d.calls.complete:
            print(f"  LB writes: {d.calls.lb_writes}; upstream's model: {d.services} "
                  "(one LB PUT per Service, serialised)")
    print(flush=True)


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--more", type=int, default=100,
                        help="Services added before the node change (300 in all by default)")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--rates", default=",".join(
        f"{DEFAULT_RATE_LIMITS[f]:g}" for f in ("read", "write", "operations")),
                        help="azure.rateLimits read,write,operations (lbctl's defaults)")
    parser.add_argument("--operation-delay", type=float, default=1.0,
                        help="seconds an ARM write's operation stays InProgress")
    parser.add_argument("--sample", type=int, default=8,
                        help="Services upstream's model writes for real, one at a time")
    parser.add_argument("--budget", type=float, default=240.0,
                        help="seconds the whole run may wait in all (each phase also has a cap)")
    parser.add_argument("--skip", default="", help="comma-separated: upstream,node")
    args = parser.parse_args(None if argv is None else list(argv))
    rates = rates3(args.rates)
    skip = set(args.skip.split(","))
    quiet_logs("providers.azure")
    started = time.monotonic()
    with AzureEmulator(operation_delay=args.operation_delay) as emulator:
        print(f"Azure benchmark: ARM emulator {emulator.endpoint} in this process (writes "
              f"InProgress {args.operation_delay:g} s, polled every {POLLING:g} s), controller "
              f"in-process ({args.workers} workers, batch window: azure.batchWindowSeconds's "
              f"default), 3 node VMs; azure.rateLimits read {rates[0]:g}/s, write "
              f"{rates[1]:g}/s, operations {rates[2]:g}/s", flush=True)
        budget = Budget(args.budget)
        up = None if "upstream" in skip else upstream(emulator, args.sample, budget.left(60))
        figures = lbctl(emulator, args.services, args.more, args.workers, rates, skip, budget)
        report(up, figures, args.services, args.more, args.workers)
    print(f"benchmark took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
