"""Fault injection against the AWS provider: the controller, in this process, reaches moto through
`FaultProxy`, which answers a share of the calls with Throttling / RequestLimitExceeded / 5xx
and a share of DescribeLoadBalancers with an NLB still `provisioning`, and loses the reply to a
share of the (idempotent) writes it forwarded.

One scenario (10 LoadBalancer Services created, four changed, five deleted) runs twice on the
same controller: fault-free first (its call count is the yardstick), then with faults in a
namespace of its own. Both must converge to exactly the desired AWS objects: one NLB per live
Service whose DNS name is the Service's hostname, one listener per port forwarding to a target
group on the port's nodePort with every node instance registered, no target group left over
from a change, the node security group rules for the nodePorts and nothing else; the deleted
Services leave nothing (NLB, target groups, rules, frontend security group), nothing is
duplicated. Rules: the node group admits the cluster's backend security group (one rule per
protocol and nodePort, plus TCP for a UDP port's health check), each NLB's frontend group holds
its source ranges. The faulty run must show every kind of fault, stay under the client's token
buckets (requests in any 1 s window, per API family, the tagging API's included) and cost at
most a bounded multiple of the fault-free run's calls. At the end every Service is deleted under
faults (the tagging API throttled too) and the cluster's leak check is empty.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lbctl.controller.config import Config, parse_config
from lbctl.controller.controller import Controller
from lbctl.controller.embedded import running_controller
from lbctl.emulators.aws.world import World
from lbctl.sandbox.app import Sandbox
from providers.aws import names
from providers.aws.client import family
from tests.conftest import client_for
from tests.providers.aws.conftest import Boto, tagged_objects
from tests.providers.aws.fault_proxy import (
    EC2_ERRORS,
    ELBV2_ERRORS,
    LOST_REPLY,
    PROVISIONING,
    TAGGING_ERRORS,
    FaultProxy,
    Record,
)

pytestmark = pytest.mark.integration

RATES = {"describe": 20.0, "modify": 10.0, "register": 10.0, "tagging": 10.0,
         "ec2Modify": 10.0}
"""The client's token buckets (rate = burst): at most 2 x rate requests in any 1 s window."""
ERROR_SHARE = 0.25
PROVISIONING_SHARE = 0.25
LOST_REPLY_SHARE = 0.2
LOST_REPLY_ACTIONS = frozenset({
    "CreateTargetGroup", "RegisterTargets", "DeregisterTargets", "ModifyListener",
    "ModifyTargetGroup", "AddTags", "DeleteListener", "DeleteLoadBalancer", "DeleteTargetGroup",
    "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress", "CreateSecurityGroup",
    "DeleteSecurityGroup"})
"""Writes whose reply may be lost (made, then answered 500). Not CreateLoadBalancer and
CreateListener: AWS answers a repeat with the same settings with the existing object, but moto
makes a second NLB of the same name and a second listener on the same port (its duplicate check
looks the port up among listener ARNs), which AWS never does."""
SEED = 20240611
SERVICES = 10
CONVERGE_SECONDS = 90.0
MAX_COST_RATIO = 4.0
"""The faulty run may cost at most this many times the fault-free run's calls."""


# -- the controller behind the proxy -----------------------------------------------------------
@dataclass
class Stack:
    world: World
    boto: Boto
    proxy: FaultProxy
    controller: Controller
    core: client.CoreV1Api
    config: Config

    def quiet(self) -> bool:
        """No node sync pending, no key queued, in flight (both read in one step: a key that
        `done` queues again is never missed between them) or waiting for a delayed retry."""
        queue = self.controller.queue
        return queue is not None and self.controller.quiet() and not queue.delayed()


def _config(cluster: str, endpoint: str) -> str:
    rates = ", ".join(f"{k}: {v}" for k, v in RATES.items())
    return f"""
clusterName: {cluster}
provider: aws
controller: {{workers: 8, nodeSyncDebounceSeconds: 0.2, resyncSeconds: 3600}}
aws:
  region: us-east-1
  endpointURL: "{endpoint}"
  rateLimits: {{{rates}}}
"""


@pytest.fixture
def stack(world: World, boto: Boto, aws_sandbox: Sandbox) -> Iterator[Stack]:
    proxy = FaultProxy(boto.endpoint.url, seed=SEED).start()
    config = parse_config(_config(world.cluster, proxy.url))
    api = client_for(aws_sandbox)
    try:
        with running_controller(str(aws_sandbox.options.kubeconfig), config, qps=500,
                                burst=1000) as embedded:
            yield Stack(world, boto, proxy, embedded.controller, client.CoreV1Api(api), config)
    finally:
        api.close()
        proxy.stop()


# -- what AWS holds, read straight from moto ------------------------------------------------------
@dataclass
class TargetGroup:
    arn: str
    name: str
    protocol: str
    port: int
    tags: dict[str, str]
    targets: frozenset[str]


@dataclass
class Nlb:
    arn: str
    name: str
    dns: str
    tags: dict[str, str]
    listeners: dict[int, tuple[str, str | None]]
    """port -> (protocol, target group ARN it forwards to)"""
    ports: list[int]
    """The port of every listener (a port twice is a duplicate listener)."""


@dataclass
class AwsState:
    nlbs: list[Nlb]
    groups: list[TargetGroup]
    rules: list[tuple[str, str, str, str, int, str]]
    """lbctl's rules in the VPC: (balancer, purpose, group, protocol, port, source)."""
    security_groups: dict[str, str]
    """The VPC's security groups: name -> ID."""

    def nlbs_of(self, uid: str) -> list[Nlb]:
        return [lb for lb in self.nlbs if lb.tags.get(names.TAG_UID) == uid]

    def groups_of(self, uid: str) -> list[TargetGroup]:
        return [tg for tg in self.groups if tg.tags.get(names.TAG_UID) == uid]

    def rules_of(self, balancer: str) -> set[tuple[str, str, str, int, str]]:
        return {(purpose, group, proto, port, source)
                for b, purpose, group, proto, port, source in self.rules if b == balancer}


def _tags(elbv2: Any, arns: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for i in range(0, len(arns), 20):
        for d in elbv2.describe_tags(ResourceArns=arns[i:i + 20])["TagDescriptions"]:
            out[d["ResourceArn"]] = {t["Key"]: t["Value"] for t in d.get("Tags", [])}
    return out


def aws_state(stack: Stack) -> AwsState:
    elbv2, ec2 = stack.boto("elbv2"), stack.boto("ec2")
    cluster = stack.world.cluster
    raw_lbs = [lb for page in elbv2.get_paginator("describe_load_balancers").paginate()
               for lb in page["LoadBalancers"]]
    raw_tgs = [tg for page in elbv2.get_paginator("describe_target_groups").paginate()
               for tg in page["TargetGroups"]]
    tags = _tags(elbv2, [lb["LoadBalancerArn"] for lb in raw_lbs]
                 + [tg["TargetGroupArn"] for tg in raw_tgs])
    nlbs = []
    for lb in raw_lbs:
        arn = lb["LoadBalancerArn"]
        if tags.get(arn, {}).get(names.TAG_CLUSTER) != cluster:
            continue
        listeners, ports = {}, []
        for li in elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
            ports.append(int(li["Port"]))
            forward = next((a.get("TargetGroupArn") for a in li.get("DefaultActions", [])
                            if a.get("Type") == "forward"), None)
            listeners[int(li["Port"])] = (str(li["Protocol"]), forward)
        nlbs.append(Nlb(arn, lb["LoadBalancerName"], lb.get("DNSName", ""), tags[arn],
                        listeners, ports))
    groups = []
    for tg in raw_tgs:
        arn = tg["TargetGroupArn"]
        if tags.get(arn, {}).get(names.TAG_CLUSTER) != cluster:
            continue
        health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        targets = frozenset(h["Target"]["Id"] for h in health
                            if h.get("TargetHealth", {}).get("State") != "draining")
        groups.append(TargetGroup(arn, tg["TargetGroupName"], tg["Protocol"], int(tg["Port"]),
                                  tags[arn], targets))
    rules = []
    vpc_groups = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [stack.world.vpc_id]}])["SecurityGroups"]
    for sg in vpc_groups:
        for perm in sg.get("IpPermissions", []):
            sources = [(r["CidrIp"], r.get("Description", "")) for r in perm.get("IpRanges", [])]
            sources += [(r["GroupId"], r.get("Description", ""))
                        for r in perm.get("UserIdGroupPairs", [])]
            for source, desc in sources:
                if str(desc).startswith("lbctl:"):
                    _, balancer, purpose = str(desc).split(":", 2)
                    rules.append((balancer, purpose, sg["GroupId"], perm["IpProtocol"],
                                  int(perm["FromPort"]), source))
    return AwsState(nlbs, groups, rules, {g["GroupName"]: g["GroupId"] for g in vpc_groups})


# -- the scenario ---------------------------------------------------------------------------------
@dataclass
class Scenario:
    namespace: str
    uids: dict[str, str] = field(default_factory=dict)
    """Service name -> UID (kept after a delete)."""
    balancers: dict[str, str] = field(default_factory=dict)
    """Service name -> balancer name (read from the NLB's tags once created)."""
    deleted: set[str] = field(default_factory=set)

    @property
    def live(self) -> list[str]:
        return sorted(n for n in self.uids if n not in self.deleted)


def _ports(i: int) -> list[dict[str, Any]]:
    if i % 4 == 3:
        return [{"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]
    ports = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
    if i % 2 == 0:
        ports.append({"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"})
    return ports


def _create(stack: Stack, scenario: Scenario) -> None:
    ns = scenario.namespace
    stack.core.create_namespace({"metadata": {"name": ns}})
    for i in range(SERVICES):
        name = f"s{i}"
        created = stack.core.create_namespaced_service(ns, {
            "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": _ports(i)}})
        scenario.uids[name] = created.metadata.uid


def _change_and_delete(stack: Stack, scenario: Scenario) -> None:
    ns = scenario.namespace
    core = stack.core

    def edit(name: str, change: Callable[[Any], None]) -> None:
        svc = core.read_namespaced_service(name, ns)
        change(svc.spec)
        core.replace_namespaced_service(name, ns, svc)

    def move(spec: Any) -> None:  # a listener port moves: 80 -> 8080 (same nodePort)
        spec.ports[0].port = 8080

    def add(spec: Any) -> None:  # a port is added
        spec.ports.append(client.V1ServicePort(name="admin", port=9000, target_port=9000,
                                               protocol="TCP"))

    def drop(spec: Any) -> None:  # a port is removed (its target group must go)
        spec.ports = spec.ports[:1]

    def narrow(spec: Any) -> None:  # source ranges replace 0.0.0.0/0 in the rules
        spec.load_balancer_source_ranges = ["192.168.0.0/24", "172.16.0.0/12"]

    for name, change in (("s0", move), ("s1", add), ("s2", drop), ("s4", narrow)):
        edit(name, change)
    for i in range(5, SERVICES):
        core.delete_namespaced_service(f"s{i}", ns)
        scenario.deleted.add(f"s{i}")


def _delete_all(stack: Stack, scenario: Scenario) -> None:
    for name in scenario.live:
        stack.core.delete_namespaced_service(name, scenario.namespace)
        scenario.deleted.add(name)


def _hostnames(stack: Stack, scenario: Scenario) -> dict[str, str]:
    out = {}
    for svc in stack.core.list_namespaced_service(scenario.namespace).items:
        ingress = (svc.status.load_balancer.ingress or []) if svc.status.load_balancer else []
        if ingress and ingress[0].hostname:
            out[svc.metadata.name] = ingress[0].hostname
    return out


def _remember_balancers(stack: Stack, scenario: Scenario) -> None:
    state = wait_for_state(stack)
    for name, uid in scenario.uids.items():
        found = state.nlbs_of(uid)
        if found:
            scenario.balancers[name] = found[0].tags[names.TAG_BALANCER]


def wait_for_state(stack: Stack) -> AwsState:
    for _ in range(20):
        try:
            return aws_state(stack)
        except ClientError:
            time.sleep(0.2)
    return aws_state(stack)


def problems(stack: Stack, scenario: Scenario) -> list[str]:
    """Everything that differs from the converged state (empty: converged)."""
    out: list[str] = []
    try:
        state = aws_state(stack)
    except ClientError as exc:  # an object went away while we read: look again
        return [f"reading AWS raced a change: {exc}"]
    instances = frozenset(i.instance_id for i in stack.world.instances)
    node = stack.world.security_group_id
    backend = state.security_groups.get(names.backend_group_name(stack.world.cluster), "?")
    hostnames = _hostnames(stack, scenario)
    live = {svc.metadata.name: svc
            for svc in stack.core.list_namespaced_service(scenario.namespace).items}
    for name in scenario.live:
        svc, uid = live.get(name), scenario.uids[name]
        if svc is None:
            out.append(f"{name}: the Service is gone")
            continue
        nlbs = state.nlbs_of(uid)
        if len(nlbs) != 1:
            out.append(f"{name}: {len(nlbs)} NLBs")
            continue
        lb = nlbs[0]
        if len(lb.ports) != len(set(lb.ports)):
            out.append(f"{name}: duplicate listeners {sorted(lb.ports)}")
        balancer = lb.tags[names.TAG_BALANCER]
        if lb.name != names.load_balancer_name(balancer):
            out.append(f"{name}: NLB named {lb.name}, balancer {balancer}")
        if hostnames.get(name) != lb.dns:
            out.append(f"{name}: hostname {hostnames.get(name)!r}, NLB DNS name {lb.dns!r}")
        wanted = {p.port: (p.protocol, p.node_port) for p in svc.spec.ports}
        if {p: proto for p, (proto, _) in lb.listeners.items()} != {
                p: proto for p, (proto, _) in wanted.items()}:
            out.append(f"{name}: listeners {lb.listeners}, wanted {wanted}")
            continue
        groups = {tg.arn: tg for tg in state.groups_of(uid)}
        used = {arn for _, arn in lb.listeners.values()}
        if set(groups) != used:
            out.append(f"{name}: target groups {sorted(g.name for g in groups.values())}, "
                       f"{len(used)} used by listeners")
        for port, (_, arn) in lb.listeners.items():
            tg = groups.get(arn or "")
            if tg is None:
                out.append(f"{name}: listener {port} forwards to {arn}, not a group of ours")
                continue
            if (tg.protocol, tg.port) != wanted[port]:
                out.append(f"{name}: listener {port} -> {tg.protocol}:{tg.port}, wanted "
                           f"{wanted[port]}")
            if tg.targets != instances:
                out.append(f"{name}: {tg.name} targets {sorted(tg.targets)}")
            if tg.tags.get(names.TAG_BALANCER) != balancer:
                out.append(f"{name}: {tg.name} tagged for {tg.tags.get(names.TAG_BALANCER)}")
        sources = svc.spec.load_balancer_source_ranges or ["0.0.0.0/0"]
        frontend = state.security_groups.get(names.frontend_group_name(balancer), "?")
        rules = {("traffic", node, proto.lower(), node_port, backend)
                 for proto, node_port in wanted.values()}
        rules |= {("health", node, "tcp", node_port, backend)
                  for proto, node_port in wanted.values() if proto == "UDP"}
        rules |= {("frontend", frontend, proto.lower(), port, cidr)
                  for port, (proto, _) in wanted.items() for cidr in sources}
        have = state.rules_of(balancer)
        if have != rules:
            out.append(f"{name}: rules missing {sorted(rules - have)}, extra "
                       f"{sorted(have - rules)}")
    for name in sorted(scenario.deleted):
        uid = scenario.uids[name]
        if name in live:
            out.append(f"{name}: deleted Service still there (finalizer held)")
        if state.nlbs_of(uid) or state.groups_of(uid):
            out.append(f"{name}: left {len(state.nlbs_of(uid))} NLBs, "
                       f"{len(state.groups_of(uid))} target groups")
        known = scenario.balancers.get(name)
        if known is None:
            out.append(f"{name}: its balancer was never seen")
        elif state.rules_of(known):
            out.append(f"{name}: left rules {sorted(state.rules_of(known))}")
        elif known and names.frontend_group_name(known) in state.security_groups:
            out.append(f"{name}: left its frontend security group")
    for kind, seen in (("NLB", Counter(lb.name for lb in state.nlbs)),
                       ("target group", Counter(tg.name for tg in state.groups))):
        out += [f"duplicate {kind} {n} (x{c})" for n, c in seen.items() if c > 1]
    return out


def wait_until(check: Callable[[], list[str]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: list[str] = ["not checked yet"]
    while time.monotonic() < deadline:
        last = check()
        if not last:
            return
        time.sleep(0.5)
    raise AssertionError(f"{what}: not converged after {timeout:.0f} s:\n  "
                         + "\n  ".join(last[:30]))


def run_scenario(stack: Stack, scenario: Scenario) -> list[Record]:
    """Create, wait for hostnames, change and delete, wait until converged and quiet; answer
    the requests the provider made meanwhile."""
    mark = stack.proxy.mark()
    _create(stack, scenario)
    wait_until(lambda: [f"{n}: no hostname" for n in scenario.uids
                        if n not in _hostnames(stack, scenario)], CONVERGE_SECONDS,
               f"{scenario.namespace}: hostnames")
    _remember_balancers(stack, scenario)
    _change_and_delete(stack, scenario)
    wait_until(lambda: problems(stack, scenario) or ([] if stack.quiet() else ["busy"]),
               CONVERGE_SECONDS, f"{scenario.namespace}: converged")
    return stack.proxy.since(mark)


def max_per_window(records: list[Record], window: float = 1.0) -> int:
    """The most requests that arrived within any `window` seconds."""
    times = sorted(r.at for r in records)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- the test -------------------------------------------------------------------------------------
def test_converges_under_throttling_5xx_and_provisioning(stack: Stack) -> None:
    calm = Scenario(f"calm-{uuid.uuid4().hex[:4]}")
    calm_calls = run_scenario(stack, calm)
    assert not stack.proxy.faults(calm_calls)
    _delete_all(stack, calm)
    wait_until(lambda: problems(stack, calm) or ([] if stack.quiet() else ["busy"]),
               CONVERGE_SECONDS, "fault-free cleanup")

    stack.proxy.configure(error_share=ERROR_SHARE, provisioning_share=PROVISIONING_SHARE,
                          lost_reply_share=LOST_REPLY_SHARE,
                          lost_reply_actions=LOST_REPLY_ACTIONS)
    storm = Scenario(f"storm-{uuid.uuid4().hex[:4]}")
    storm_mark = stack.proxy.mark()
    storm_calls = run_scenario(stack, storm)
    faults = stack.proxy.faults(storm_calls)

    # bounded cost: faults cost at most a bounded multiple of the fault-free run's calls
    assert len(storm_calls) <= MAX_COST_RATIO * len(calm_calls), (
        len(storm_calls), len(calm_calls), faults)
    print(f"\nfault-free {len(calm_calls)} calls; faulty {len(storm_calls)} calls "
          f"({sum(faults.values())} faulted: {dict(faults)}); busiest second "
          f"{max_per_window(storm_calls)}")

    # everything deleted under faults (the tagging API throttled twice on top of the shares):
    # nothing of the cluster is left in AWS
    stack.proxy.script("GetResources", TAGGING_ERRORS[0], times=2)
    _delete_all(stack, storm)
    wait_until(lambda: problems(stack, storm) or ([] if stack.quiet() else ["busy"]),
               CONVERGE_SECONDS, "faulty cleanup")
    leaks = tagged_objects(stack.boto, stack.world.cluster)
    assert not any(leaks.values()), leaks
    everything = stack.proxy.since(storm_mark)
    injected = stack.proxy.faults(everything)
    # bounded rate: the token buckets hold under retries (each attempt takes a token)
    for fam, rate in RATES.items():
        mine = [r for r in everything if family(r.action) == fam]
        assert max_per_window(mine) <= 2 * rate + 2, (fam, max_per_window(mine))
    assert max_per_window(everything) <= 2 * sum(RATES.values()) + 2
    kinds = [f.code for f in ELBV2_ERRORS + EC2_ERRORS] + [PROVISIONING, LOST_REPLY]
    assert all(injected[k] > 0 for k in kinds), injected
    assert injected[TAGGING_ERRORS[0].code] >= 2, injected
    for scenario in (calm, storm):
        for name in scenario.uids:
            with pytest.raises(ApiException) as gone:
                stack.core.read_namespaced_service(name, scenario.namespace)
            assert gone.value.status == 404
