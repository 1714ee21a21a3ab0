"""Benchmark of the AWS provider against moto: API calls per operation and wall time to hostname.

Prints figures side by side, asserts nothing (a line says so when a steady-state resync made a
mutating call). Everything runs in this process: the AWS emulator (moto's ThreadedMotoServer),
the seeded world (`lbctl/emulators/aws/world.py`: a VPC, two tagged subnets, a node security
group, three running instances), a sandbox whose Nodes are those instances, and a Controller
with the `aws` provider.
Calls are the provider's own count (`AwsClient.calls`, a botocore `before-call` hook: every
request, each retry included), read through `controller.inner_provider.client`.

1. Calls per operation for one 1-port Service: create (the first ensure, which writes the
   hostname, then the poll 5 s later that finds the NLB active), a steady-state resync (the
   drift-repair timer's forced re-ensure with nothing changed: mutating calls must be 0), a node
   change (an instance started and its Node added, with 10 Services provisioned: calls per
   Service), and delete. Next to them the upstream sequence the reference describes
   (clouds.md, "AWS": about 12-15 calls for a one-port create), counted step by step, not run.
2. N Services (default 200) created at once by 8 clients: wall time from the first create to
   the last hostname, p50/p99 of one Service's create -> hostname, then to every NLB polled
   active; total calls and calls per Service. Optionally the same with 1 worker (upstream's
   default) for a ratio.

moto answers from one process with a global lock, so the wall times are moto's and the client's
token buckets' (aws.rateLimits: describe 20/s, modify (ELB writes) 5/s, register 4/s, tagging
10/s, ec2Modify (security groups and rules) 5/s by default), not AWS's: the call counts are the
figures that carry over. GetResources (the tagging API: delete, orphan collection, the
detached-group scan) pages by tag count in moto (about 11 lbctl objects a page) where AWS gives
100 objects a page, so its count here is an upper bound.

Security groups: every NLB gets its own frontend group and the cluster's backend group; the
node group gains one rule per 1-port Service (it used to be two). The 200-Service run still
needs more than AWS's default 60 inbound rules on the node group, so moto's limit is raised
(`--rule-quota`); section 2 prints how many rules the node group ended with.

    .venv/bin/python bench/aws.py [--services 200] [--workers 8] [--one-worker 0]
        [--rates 20,5,4,10] [--rule-quota 1000] [--skip calls,scale]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: `lbctl` and `providers` importable
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from bench import cloud_env  # noqa: E402
from bench.cloud_env import (  # noqa: E402
    CLUSTER,
    NAMESPACE,
    CloudEnv,
    ingress,
    parts,
    start_cloud,
)
from lbctl.emulators.aws import world as world_module  # noqa: E402
from lbctl.emulators.aws.server import AwsEmulator  # noqa: E402
from lbctl.emulators.aws.world import World  # noqa: E402
from lbctl.kube import NODES, SERVICES  # noqa: E402
from providers.aws.client import AwsClient, family, is_read  # noqa: E402

FAMILIES = ("describe", "modify", "register", "tagging", "ec2Modify")
REGION = "us-east-1"
UPSTREAM_CREATE = "~12-15"


# -- the environment -------------------------------------------------------------------------------
def set_rule_quota(limit: int) -> None:
    """moto enforces AWS's default of 60 inbound rules per VPC security group; an account with
    many NLB Services raises that quota (up to 1000 / security groups per interface)."""
    from moto.ec2.exceptions import RulesPerSecurityGroupLimitExceededError
    from moto.ec2.models.security_groups import SecurityGroupBackend

    def verify(_self: Any, _group: Any, current_rule_nb: int, ip_ranges: list[str],
               source_groups: list[dict[str, str]] | None = None, egress: bool = False) -> None:
        if current_rule_nb + len(ip_ranges or ()) + len(source_groups or ()) > limit:
            raise RulesPerSecurityGroupLimitExceededError

    backend: Any = SecurityGroupBackend
    backend._verify_group_will_respect_rule_count_limit = verify


class Moto:
    """A moto server of our own, with fake credentials in os.environ."""

    def __init__(self) -> None:
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            os.environ.pop(key, None)
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106
                          AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE=os.devnull,
                          AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        self.server = AwsEmulator(region=REGION)
        self.url = self.server.start()

    def reset(self) -> None:
        self.server.reset()

    def client(self, service: str) -> Any:
        return boto3.session.Session(region_name=REGION).client(service, endpoint_url=self.url)

    def stop(self) -> None:
        self.server.stop()


@dataclass
class Env(CloudEnv):
    """moto (reset and seeded), a sandbox with the world's nodes, the controller on both."""

    moto: Moto
    world: World

    @property
    def client(self) -> AwsClient:
        client: AwsClient = self.controller.inner_provider.client  # type: ignore[attr-defined]
        return client


Rates = tuple[float, float, float, float, float]
"""describe, modify, register, tagging, ec2Modify (aws.rateLimits)."""


def start_env(moto: Moto, workers: int, rates: Rates) -> Env:
    moto.reset()
    world = world_module.seed(moto.client("ec2"), cluster=CLUSTER, nodes=3, region=REGION)
    describe, modify, register, tagging, ec2_modify = rates
    base = start_cloud(world_module.nodes_file(world), "aws", workers, 200, 400, f"""\
aws:
  region: {REGION}
  endpointURL: "{moto.url}"
  rateLimits: {{describe: {describe}, modify: {modify}, register: {register},
               tagging: {tagging}, ec2Modify: {ec2_modify}}}
""")
    return Env(**parts(base), moto=moto, world=world)


# -- helpers ---------------------------------------------------------------------------------------
def wait(check: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> float:
    """Poll until `check()`; answer time.monotonic() when it first held."""
    held = cloud_env.wait(check, timeout, step)
    if held is None:
        raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
    return held


def create(env: Env, name: str) -> None:
    cloud_env.create(env, name, port_name="p{port}")


def hostname(env: Env, name: str) -> str | None:
    return ingress(env, name, "hostname")


def split(calls: Counter[str]) -> str:
    """`12 (Describe 8, mutate 4: CreateLoadBalancer 1, ...)`."""
    describe = sum(n for op, n in calls.items() if is_read(op))
    writes = sorted((op, n) for op, n in calls.items() if not is_read(op))
    mutate = sum(n for _, n in writes)
    detail = ", ".join(f"{op} {n}" for op, n in writes)
    return (f"{describe + mutate:3d}  (Describe {describe}, mutate {mutate}"
            + (f": {detail})" if detail else ")"))


def describes(calls: Counter[str]) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(calls.items()) if is_read(op))


def per(calls: Counter[str], n: int) -> Counter[str]:
    return Counter({op: round(c / n) for op, c in calls.items() if round(c / n)})


# -- 1. calls per operation ----------------------------------------------------------------------
@dataclass
class CallFigures:
    create_first: Counter[str]
    create_poll: Counter[str]
    create_seconds: float
    active_seconds: float
    resync: Counter[str]
    node: Counter[str]
    node_services: int
    node_seconds: float
    delete: Counter[str]
    delete_seconds: float


def calls_per_operation(moto: Moto, rates: Rates,
                        node_services: int = 5) -> CallFigures:
    env = start_env(moto, 8, rates)
    try:
        client = env.client
        client.reset_calls()
        t0 = time.monotonic()
        create(env, "one")
        t_host = wait(lambda: hostname(env, "one") is not None, 60, "the hostname of one")
        time.sleep(0.2)  # the ensure that wrote it has returned; its poll is 5 s away
        first = client.reset_calls()
        t_active = wait(env.quiet, 60, "one polled active")
        poll = client.reset_calls()

        # steady state: the drift-repair timer's forced re-ensure, nothing changed
        for svc in env.controller.cache.services():
            env.controller._enqueue(svc, force=True)  # what Controller._tick does
        wait(env.quiet, 60, "the resync")
        resync = client.reset_calls()

        # node change with `node_services` provisioned Services
        for i in range(1, node_services):
            create(env, f"n{i:02d}")
        wait(lambda: all(hostname(env, f"n{i:02d}") for i in range(1, node_services)), 120,
             "the node-change Services")
        wait(env.quiet, 120, "the node-change Services polled active")
        client.reset_calls()
        node_seconds = add_node(env, node_services)
        node = client.reset_calls()

        t_del = time.monotonic()
        env.kube.request("DELETE", SERVICES.path(NAMESPACE, "one"))
        wait(lambda: env.controller.cache.service(NAMESPACE, "one") is None, 60,
             "one deleted")
        t_gone = wait(env.quiet, 60, "the delete")
        delete = client.reset_calls()
    finally:
        env.close()
    return CallFigures(first, poll, t_host - t0, t_active - t0, resync, node, node_services,
                       node_seconds, delete, t_gone - t_del)


def add_node(env: Env, services: int) -> float:
    """Start an instance like the world's, add its Node; answer the seconds until every
    Service's ensure registered it (debounce included)."""
    ec2 = env.moto.client("ec2")
    az = sorted(env.world.subnets)[0]
    reservation = ec2.run_instances(
        ImageId=env.world.image_id, InstanceType=world_module.INSTANCE_TYPE, MinCount=1,
        MaxCount=1, SubnetId=env.world.subnets[az],
        SecurityGroupIds=[env.world.security_group_id])
    instance_id = reservation["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id],
                                            WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ip = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0][
        "PrivateIpAddress"]
    name = f"ip-{ip.replace('.', '-')}.{world_module.dns_suffix(REGION)}"
    before = env.client.calls["RegisterTargets"]
    t0 = time.monotonic()
    env.kube.request("POST", NODES.path(), body={
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": az}},
        "spec": {"providerID": f"aws:///{az}/{instance_id}"},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                   "conditions": [{"type": "Ready", "status": "True"}]}})
    wait(lambda: env.client.calls["RegisterTargets"] >= before + services, 120,
         "the new node registered everywhere")
    done = wait(env.quiet, 120, "the node sync")
    return done - t0


# -- 2. many Services at once ---------------------------------------------------------------------
@dataclass
class ScaleFigures:
    services: int
    workers: int
    wall: float
    to_active: float
    p50: float
    p99: float
    calls_hostname: Counter[str]
    calls_active: Counter[str]
    got: int
    delete_one: Counter[str]
    """One Service deleted with all the others still provisioned."""
    node_rules: tuple[int, int]
    """(the node group's inbound rules, how many of them are lbctl's) once all were active."""
    security_groups: int
    """Security groups tagged for the cluster (a frontend per NLB, one backend)."""


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def scale(moto: Moto, services: int, workers: int,
          rates: Rates) -> ScaleFigures:
    env = start_env(moto, workers, rates)
    try:
        client = env.client
        client.reset_calls()
        names = [f"lb-{i:04d}" for i in range(services)]
        sent: dict[str, float] = {}
        seen: dict[str, float] = {}
        lock = threading.Lock()

        def post(name: str) -> None:
            with lock:
                sent[name] = time.monotonic()
            create(env, name)

        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            done = pool.map(post, names)
            deadline = time.monotonic() + 60 + services * 2.0
            while time.monotonic() < deadline and len(seen) < services:
                now = time.monotonic()
                for name in names:
                    if name not in seen and hostname(env, name):
                        seen[name] = now
                time.sleep(0.02)
            list(done)
        at_hostnames = Counter(client.calls)
        last = max(seen.values()) if seen else float("nan")
        t_active = wait(env.quiet, 60 + services * 2.0, "every NLB polled active", step=0.05)
        at_active = client.reset_calls()
        node_rules, security_groups = security_group_figures(env)
        env.kube.request("DELETE", SERVICES.path(NAMESPACE, names[0]))
        wait(lambda: env.controller.cache.service(NAMESPACE, names[0]) is None, 60,
             "one deleted")
        wait(env.quiet, 60, "the delete")
        delete_one = client.reset_calls()
    finally:
        env.close()
    waits = [seen[n] - sent[n] for n in names if n in seen]
    return ScaleFigures(services, workers, last - t0, t_active - t0,
                        statistics.median(waits) if waits else float("nan"),
                        _quantile(waits, 0.99), at_hostnames, at_active, len(seen), delete_one,
                        node_rules, security_groups)


def security_group_figures(env: Env) -> tuple[tuple[int, int], int]:
    """((inbound rules of the node group, lbctl's among them), the cluster's security groups),
    read from moto directly (not counted as the provider's calls)."""
    ec2 = env.moto.client("ec2")
    node = ec2.describe_security_groups(GroupIds=[env.world.security_group_id])[
        "SecurityGroups"][0]
    entries = [e for p in node["IpPermissions"]
               for e in p.get("IpRanges", []) + p.get("UserIdGroupPairs", [])]
    ours = [e for e in entries if str(e.get("Description", "")).startswith("lbctl:")]
    tagged = [g for page in ec2.get_paginator("describe_security_groups").paginate(
        Filters=[{"Name": "tag:lbctl.io/cluster", "Values": [CLUSTER]}])
        for g in page["SecurityGroups"]]
    return (len(entries), len(ours)), len(tagged)


# -- report ----------------------------------------------------------------------------------------
def report_calls(f: CallFigures) -> None:
    create_total = f.create_first + f.create_poll
    node = per(f.node, f.node_services)
    rows = [
        ("create, first ensure (-> hostname)", split(f.create_first), UPSTREAM_CREATE),
        ("create, poll 5 s later (-> active)", split(f.create_poll), "-"),
        ("create, total", split(create_total), UPSTREAM_CREATE),
        ("steady-state resync (forced)", split(f.resync), "0 (no drift repair)"),
        (f"node added, per Service (of {f.node_services})", split(node), "~7-9"),
        ("delete", split(f.delete), "~7-8"),
    ]
    print("\n1. AWS calls per operation, one 1-port Service (each retry counted)")
    print(f"  {'operation':42} {'lbctl calls (by API)':<60} upstream")
    for label, mine, upstream in rows:
        print(f"  {label:42} {mine:<60} {upstream}")
    print(f"  describes on create: {describes(create_total)}")
    print(f"  describes on resync: {describes(f.resync)}")
    mutating = sum(n for op, n in f.resync.items() if not is_read(op))
    print(f"  steady-state resync mutating calls: {mutating}"
          + ("" if not mutating else "  <-- EXPECTED 0"))
    print(f"  times: hostname {f.create_seconds:.2f} s after the create, active "
          f"{f.active_seconds:.1f} s (one 5 s poll); node added -> every Service registered "
          f"{f.node_seconds:.1f} s (1 s debounce); delete {f.delete_seconds:.2f} s")
    print("  upstream: the reference's sequence (clouds.md, AWS steps 1-6) counted per call, "
          "not run:\n  create DescribeInstances, DescribeSubnets, DescribeLoadBalancers, "
          "CreateLoadBalancer,\n  DescribeTargetGroups, CreateTargetGroup, RegisterTargets, "
          "DescribeListeners, CreateListener,\n  Describe/ModifyLoadBalancerAttributes, "
          "DescribeSecurityGroups, Authorize x1-2; node change\n  DescribeInstances, "
          "DescribeLoadBalancers, DescribeTargetGroups, DescribeTargetHealth, Register,\n"
          "  DescribeSecurityGroups, Authorize; delete DescribeLoadBalancers, "
          "DescribeTargetGroups, DescribeListeners,\n  DeleteLoadBalancer, DeleteTargetGroup, "
          "DescribeSecurityGroups, Revoke", flush=True)


def report_scale(runs: list[ScaleFigures], rates: Rates) -> None:
    base = runs[0]
    print(f"\n2. {base.services} 1-port Services created at once (8 clients), moto, "
          f"rate limits describe {rates[0]:g}/s, modify (ELB) {rates[1]:g}/s, register "
          f"{rates[2]:g}/s, tagging {rates[3]:g}/s, ec2Modify {rates[4]:g}/s")
    print(f"  {'':10} {'services':>8} {'-> last hostname s':>18} {'-> all active s':>15} "
          f"{'p50 s':>6} {'p99 s':>6} {'calls':>6} {'per Svc':>7} {'s/Svc ratio':>11}")
    for r in runs:
        total = sum(r.calls_active.values())
        ratio = (r.wall / r.services) / (base.wall / base.services)
        print(f"  {r.workers:2d} worker{'s' if r.workers > 1 else ' '} {r.services:8d} "
              f"{r.wall:18.1f} {r.to_active:15.1f} {r.p50:6.1f} {r.p99:6.1f} {total:6d} "
              f"{total / r.services:7.1f} {ratio:10.2f}x"
              + ("" if r.got == r.services else f"  (only {r.got} got a hostname)"))
    at_host = sum(base.calls_hostname.values())
    print(f"  calls by the last hostname: {split(base.calls_hostname).strip()}")
    print(f"  calls until every NLB was active: {split(base.calls_active).strip()}")
    by_family = Counter({fam: sum(n for op, n in base.calls_active.items() if family(op) == fam)
                         for fam in FAMILIES})
    floors = ", ".join(f"{by_family[fam] / rate:.0f} s of {fam}"
                       for fam, rate in zip(FAMILIES, rates,
                                            strict=True))
    print(f"  floors from the token buckets (calls / rate): {floors}; "
          f"{at_host / base.services:.1f} calls per Service by the last hostname")
    print(f"  delete one Service with {base.services - 1} others provisioned: "
          f"{split(base.delete_one).strip()}")
    total, ours = base.node_rules
    print(f"  node security group: {total} inbound rules ({ours} lbctl's) for {base.services} "
          f"1-port Services (the old scheme: {2 * base.services} lbctl rules); "
          f"{base.security_groups} security groups tagged for the cluster (a frontend per NLB "
          "and the shared backend)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--one-worker", type=int, default=0, metavar="N",
                        help="also create N Services with 1 worker, for a ratio (0: skip)")
    parser.add_argument("--rates", default="20,5,4,10,5",
                        help="aws.rateLimits describe,modify,register[,tagging[,ec2Modify]] "
                             "(lbctl's defaults)")
    parser.add_argument("--rule-quota", type=int, default=1000,
                        help="inbound rules per security group moto allows (AWS default: 60)")
    parser.add_argument("--skip", default="", help="comma-separated: calls,scale")
    args = parser.parse_args()
    rates_list = [float(x) for x in args.rates.split(",")]
    defaults = [20.0, 5.0, 4.0, 10.0, 5.0]
    if not 3 <= len(rates_list) <= 5:
        raise SystemExit("--rates: describe,modify,register[,tagging[,ec2Modify]]")
    rates_list += defaults[len(rates_list):]
    rates = (rates_list[0], rates_list[1], rates_list[2], rates_list[3], rates_list[4])
    skip = set(args.skip.split(","))
    logging.getLogger("lbctl.controller.events").setLevel(logging.ERROR)
    logging.getLogger("providers.aws").setLevel(logging.ERROR)
    started = time.monotonic()
    set_rule_quota(args.rule_quota)
    moto = Moto()
    print(f"AWS benchmark: moto {moto.url} in this process, controller in-process "
          f"({args.workers} workers), 3 node instances; rules per security group raised from "
          f"AWS's default 60 to {args.rule_quota}\n(a 1-port Service adds 1 rule to the node "
          "group, admitting the NLBs' backend security group: at 60 the 60th Service fails, "
          "the 30th with the old 2 per-CIDR rules)", flush=True)
    try:
        if "calls" not in skip:
            report_calls(calls_per_operation(moto, rates))
        if "scale" not in skip:
            runs = [scale(moto, args.services, args.workers, rates)]
            if args.one_worker:
                one = scale(moto, args.one_worker, 1, rates)
                runs.append(one)
            report_scale(runs, rates)
    finally:
        moto.stop()
    print(f"\nbenchmark took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
