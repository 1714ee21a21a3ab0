"""The `aws` provider end to end: an in-process Controller against a sandbox whose nodes are the
world's EC2 instances in moto, Services created with the official client, every assertion read
back from AWS with boto3 (all load balancers, target groups, listeners, targets and security
group rules, not only the ones lbctl would find).

Covered: create (one NLB with our tags and two security groups, its own frontend group and the
cluster's backend group; one target group per port on the Service's nodePort, listeners
forwarding to them, the world's instance IDs registered, one `lbctl:` rule per nodePort on the
node security group admitting the backend group, the source ranges on the frontend group,
status hostname = DNSName), port changes (old target group gone), nodes
excluded / re-included / deleted / added, Local traffic policy (HTTP health check on the
healthCheckNodePort), loadBalancerSourceRanges changes, annotation changes (target group and
load balancer attributes; a bad value -> a Warning event naming the annotation, the balancer
kept), type change to ClusterIP and delete (zero tagged objects left: load balancers, target
groups, listeners, security groups and rules).

`aws_view` / `problems` / `Expect` are shared with `test_crash_safety.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError
from kubernetes import client

from lbctl.controller.config import parse_config
from lbctl.controller.embedded import running_controller
from lbctl.emulators.aws import world as world_module
from lbctl.emulators.aws.world import Instance, World
from lbctl.sandbox.app import Sandbox
from tests.conftest import client_for, wait_for
from tests.providers.aws.conftest import Boto, tagged_objects
from tests.providers.convergence import NAMESPACE, ServiceEnv, not_ensured, wait_until

pytestmark = pytest.mark.integration

EXCLUDE = "node.kubernetes.io/exclude-from-external-load-balancers"
FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
TG_ATTRIBUTES = "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"
CROSS_ZONE = "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled"
TAG_UID = "lbctl.io/service-uid"
TAG_BALANCER = "lbctl.io/balancer"
TAG_CLUSTER = "lbctl.io/cluster"
EVERYONE = ("0.0.0.0/0",)


def frontend_name(balancer: str) -> str:
    """The NLB's own security group (the Service's source ranges on its listener ports)."""
    return f"lbctl-frontend-{balancer}"


def backend_name(cluster: str) -> str:
    """The cluster's shared security group: on every NLB, the source of the node rules."""
    return f"lbctl-backend-{cluster}"


def config_text(cluster: str, endpoint: str, resync: float = 300.0) -> str:
    return (f"clusterName: {cluster}\nprovider: aws\n"
            f"controller: {{nodeSyncDebounceSeconds: 0.2, resyncSeconds: {resync}}}\n"
            f"aws: {{region: us-east-1, endpointURL: \"{endpoint}\"}}\n")


# -- AWS, read back in full ------------------------------------------------------------------
def _pages(api: Any, operation: str, key: str, **kw: Any) -> list[dict[str, Any]]:
    return [item for page in api.get_paginator(operation).paginate(**kw)
            for item in page.get(key, [])]


def _tags(elbv2: Any, arns: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for start in range(0, len(arns), 20):
        for d in elbv2.describe_tags(ResourceArns=arns[start:start + 20])["TagDescriptions"]:
            out[d["ResourceArn"]] = {t["Key"]: t.get("Value", "") for t in d.get("Tags", [])}
    return out


@dataclass
class View:
    """Everything in AWS that belongs to one Service (by its UID tag / rule descriptions)."""

    balancer: str
    load_balancers: list[dict[str, Any]]
    """Every NLB tagged with the Service's UID (crash leftovers included)."""
    named: int
    """How many NLBs carry the balancer's name, whatever their tags."""
    target_groups: list[dict[str, Any]]
    """Every target group tagged with the Service's UID."""
    tags: dict[str, dict[str, str]]
    listeners: list[dict[str, Any]]
    """The listeners of every NLB above."""
    targets: dict[str, set[str]]
    """Target group ARN -> registered target IDs (draining ones left out)."""
    rules: list[tuple[str, str, int, str, str]]
    """(group, protocol, port, source, description) of every ingress rule described
    `lbctl:<balancer>:` in any security group, duplicates kept; the source is a CIDR or a
    security group ID (read from DescribeSecurityGroups: moto's DescribeSecurityGroupRules
    leaves out the description of a rule whose source is a group)."""
    groups: dict[str, dict[str, Any]]
    """Security groups by ID: the NLBs' and every one tagged with the Service's UID."""

    @property
    def lb(self) -> dict[str, Any]:
        assert len(self.load_balancers) == 1, self.load_balancers
        return self.load_balancers[0]

    def forwards(self) -> dict[int, str]:
        """Listener port -> the target group ARN it forwards to."""
        out: dict[int, str] = {}
        for li in self.listeners:
            action = li["DefaultActions"][0]
            out[int(li["Port"])] = action.get("TargetGroupArn") or \
                action["ForwardConfig"]["TargetGroups"][0]["TargetGroupArn"]
        return out

    def group_by_port(self) -> dict[int, dict[str, Any]]:
        return {int(tg["Port"]): tg for tg in self.target_groups}


def aws_view(boto: Boto, uid: str, balancer: str | None = None) -> View:
    """The View of the Service `uid` (retried while a listed object vanishes mid-read)."""
    for _ in range(20):
        try:
            return _aws_view(boto, uid, balancer)
        except ClientError as exc:
            if not racing(exc):
                raise
            time.sleep(0.1)
    return _aws_view(boto, uid, balancer)


def _aws_view(boto: Boto, uid: str, balancer: str | None = None) -> View:
    elbv2, ec2 = boto("elbv2"), boto("ec2")
    lbs = _pages(elbv2, "describe_load_balancers", "LoadBalancers")
    tgs = _pages(elbv2, "describe_target_groups", "TargetGroups")
    tags = _tags(elbv2, [lb["LoadBalancerArn"] for lb in lbs]
                 + [tg["TargetGroupArn"] for tg in tgs])
    mine_lbs = [lb for lb in lbs if tags.get(lb["LoadBalancerArn"], {}).get(TAG_UID) == uid]
    mine_tgs = [tg for tg in tgs if tags.get(tg["TargetGroupArn"], {}).get(TAG_UID) == uid]
    if balancer is None:
        found = {tags[o["LoadBalancerArn"]][TAG_BALANCER] for o in mine_lbs} | {
            tags[o["TargetGroupArn"]][TAG_BALANCER] for o in mine_tgs}
        balancer = found.pop() if len(found) == 1 else ""
    listeners = [li for lb in mine_lbs for li in _pages(
        elbv2, "describe_listeners", "Listeners", LoadBalancerArn=lb["LoadBalancerArn"])]
    targets = {}
    for tg in mine_tgs:
        health = elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
        targets[tg["TargetGroupArn"]] = {
            d["Target"]["Id"] for d in health["TargetHealthDescriptions"]
            if d.get("TargetHealth", {}).get("State") != "draining"}
    prefix = f"lbctl:{balancer}:" if balancer else "lbctl:<unknown>:"
    all_groups = _pages(ec2, "describe_security_groups", "SecurityGroups")
    rules = [(g["GroupId"], perm["IpProtocol"], int(perm["FromPort"]), source, description)
             for g in all_groups for perm in g.get("IpPermissions", [])
             for source, description in _sources(perm)
             if description.startswith(prefix)]
    attached = {sg for lb in mine_lbs for sg in lb.get("SecurityGroups") or ()}
    groups = {g["GroupId"]: g for g in all_groups if g["GroupId"] in attached or any(
        t["Key"] == TAG_UID and t["Value"] == uid for t in g.get("Tags", []))}
    return View(balancer, mine_lbs,
                sum(1 for lb in lbs if balancer and lb["LoadBalancerName"] == balancer),
                mine_tgs, tags, listeners, targets, rules, groups)


def _sources(perm: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, description) of each entry of an IpPermissions item."""
    return ([(r["CidrIp"], str(r.get("Description", ""))) for r in perm.get("IpRanges", [])]
            + [(r["CidrIpv6"], str(r.get("Description", "")))
               for r in perm.get("Ipv6Ranges", [])]
            + [(r["GroupId"], str(r.get("Description", "")))
               for r in perm.get("UserIdGroupPairs", [])])


@dataclass
class Expect:
    """What AWS should hold for one Service."""

    ports: dict[int, int]
    """Listener port -> nodePort."""
    instances: set[str]
    vpc_cidr: str
    node_group: str
    cluster: str
    sources: tuple[str, ...] = EVERYONE
    health_port: int | None = None
    """The healthCheckNodePort (Local policy); None: each target group's own port."""
    hostname: str | None = None
    """The Service's status hostname, compared with the NLB's DNS name when given."""
    protocols: dict[int, str] = field(default_factory=dict)
    """nodePort -> its protocol (TCP when absent)."""
    extra: list[str] = field(default_factory=list)


def expect_for(svc: client.V1Service, world: World, instances: set[str]) -> Expect:
    """The expectation a Service's spec and status imply."""
    spec = svc.spec
    local = spec.external_traffic_policy == "Local" and spec.health_check_node_port
    ingress = (svc.status.load_balancer.ingress or []) if svc.status.load_balancer else []
    return Expect(ports={p.port: p.node_port for p in spec.ports}, instances=instances,
                  protocols={p.node_port: p.protocol or "TCP" for p in spec.ports},
                  vpc_cidr=world.vpc_cidr, node_group=world.security_group_id,
                  cluster=world.cluster,
                  sources=tuple(spec.load_balancer_source_ranges or EVERYONE),
                  health_port=int(spec.health_check_node_port) if local else None,
                  hostname=ingress[0].hostname if ingress else "")


def problems(view: View, want: Expect) -> list[str]:
    """Every way `view` differs from `want`: leaked or duplicated objects included."""
    out: list[str] = []
    if len(view.load_balancers) != 1:
        return [f"{len(view.load_balancers)} NLBs tagged for the Service: "
                f"{[lb['LoadBalancerName'] for lb in view.load_balancers]}"]
    lb = view.lb
    if view.named != 1:
        out.append(f"{view.named} NLBs named {view.balancer}")
    if lb["LoadBalancerName"] != view.balancer or lb["Type"] != "network":
        out.append(f"NLB {lb['LoadBalancerName']} ({lb['Type']}), want {view.balancer} network")
    if lb.get("State", {}).get("Code") != "active":
        out.append(f"NLB state {lb.get('State')}")
    if want.hostname is not None and want.hostname != lb["DNSName"]:
        out.append(f"status hostname {want.hostname!r} != DNSName {lb['DNSName']!r}")
    by_port = view.group_by_port()
    node_ports = set(want.ports.values())
    if len(view.target_groups) != len(node_ports) or set(by_port) != node_ports:
        have = sorted((tg["TargetGroupName"], tg["Port"]) for tg in view.target_groups)
        out.append(f"target groups {have}, want one per nodePort {sorted(node_ports)}")
    names = [tg["TargetGroupName"] for tg in view.target_groups]
    if len(set(names)) != len(names):
        out.append(f"duplicate target group names {names}")
    forwards = view.forwards()
    if set(forwards) != set(want.ports) or len(view.listeners) != len(want.ports):
        out.append(f"listener ports {sorted(int(li['Port']) for li in view.listeners)}, "
                   f"want {sorted(want.ports)}")
    for port, node_port in want.ports.items():
        tg = by_port.get(node_port)
        if tg is not None and port in forwards and forwards[port] != tg["TargetGroupArn"]:
            out.append(f"listener {port} forwards to {forwards[port]}, want the group on "
                       f"{node_port}")
    used = set(forwards.values())
    for tg in view.target_groups:
        if tg["TargetGroupArn"] not in used:
            out.append(f"target group {tg['TargetGroupName']} has no listener")
        if view.targets.get(tg["TargetGroupArn"]) != want.instances:
            out.append(f"targets of {tg['TargetGroupName']}: "
                       f"{sorted(view.targets.get(tg['TargetGroupArn'], ()))}, "
                       f"want {sorted(want.instances)}")
        hc: tuple[str, str, str | None]
        if want.health_port is None:
            hc = ("TCP", "traffic-port", None)
        else:
            hc = ("HTTP", str(want.health_port), "/healthz")
        got = (tg.get("HealthCheckProtocol"), tg.get("HealthCheckPort"),
               tg.get("HealthCheckPath") if tg.get("HealthCheckProtocol") == "HTTP" else None)
        if got != hc:
            out.append(f"health check of {tg['TargetGroupName']}: {got}, want {hc}")
    frontend, backend, group_problems = _groups(view, want)
    out += group_problems
    traffic = f"lbctl:{view.balancer}:traffic"
    health = f"lbctl:{view.balancer}:health"
    # the node group admits the backend group: one rule per (protocol, nodePort), plus TCP on
    # the health-check port unless a traffic rule already covers it
    wanted = {(want.node_group, want.protocols.get(np, "TCP").lower(), np, backend, traffic)
              for np in node_ports}
    health_ports = {want.health_port} if want.health_port is not None else node_ports
    wanted |= {(want.node_group, "tcp", p, backend, health) for p in health_ports}
    covered = {(g, pr, p, c) for g, pr, p, c, d in wanted if d == traffic}
    wanted = {r for r in wanted if r[4] == traffic or r[:4] not in covered}
    # the frontend group holds the source ranges on the listener ports
    wanted |= {(frontend, want.protocols.get(np, "TCP").lower(), port, cidr,
                f"lbctl:{view.balancer}:frontend")
               for port, np in want.ports.items() for cidr in want.sources}
    if len(view.rules) != len(set(view.rules)):
        out.append(f"duplicate security group rules: {sorted(view.rules)}")
    if set(view.rules) != wanted:
        out.append(f"security group rules: extra {sorted(set(view.rules) - wanted)}, "
                   f"missing {sorted(wanted - set(view.rules))}")
    return out + want.extra


def _groups(view: View, want: Expect) -> tuple[str, str, list[str]]:
    """(frontend ID, backend ID, problems): the NLB carries exactly its own frontend group
    (named after it, tagged for the Service) and the cluster's backend group."""
    out: list[str] = []
    attached = list(view.lb.get("SecurityGroups") or [])
    by_name = {view.groups[g]["GroupName"]: g for g in attached if g in view.groups}
    frontend = by_name.get(frontend_name(view.balancer), "<no frontend group>")
    backend = by_name.get(backend_name(want.cluster), "<no backend group>")
    if sorted(attached) != sorted({frontend, backend}):
        out.append(f"NLB security groups {attached}, want its frontend and the backend "
                   f"({sorted(by_name)})")
    mine = [g for g in view.groups.values()
            if any(t["Key"] == TAG_BALANCER for t in g.get("Tags", []))]
    if [g["GroupId"] for g in mine] != [frontend]:
        out.append(f"groups tagged for the Service: {[g['GroupName'] for g in mine]}")
    backend_tags = {t["Key"]: t["Value"] for t in view.groups.get(backend, {}).get("Tags", [])}
    if backend_tags.get(TAG_CLUSTER) != want.cluster or TAG_BALANCER in backend_tags:
        out.append(f"backend group tags {backend_tags}")
    return frontend, backend, out


def instance_ids(world: World) -> set[str]:
    return {i.instance_id for i in world.instances}


def racing(exc: Exception) -> bool:
    """A describe that lost a race with the controller deleting what it had just listed."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return "NotFound" in str(code)


def nothing_left(boto: Boto, cluster: str) -> list[str]:
    try:
        left = tagged_objects(boto, cluster)
    except ClientError as exc:
        if not racing(exc):
            raise
        return [f"objects changing under the listing: {exc}"]
    return [f"{kind}: {items}" for kind, items in left.items() if items]


# -- the controller and the cluster --------------------------------------------------------
@dataclass
class Env(ServiceEnv):
    boto: Boto
    world: World
    box: Sandbox

    def converge(self, name: str, instances: set[str] | None = None, timeout: float = 45.0,
                 extra: Callable[[View], list[str]] | None = None) -> View:
        """Wait until AWS holds exactly what the Service asks for; answers the view."""
        ids = instance_ids(self.world) if instances is None else instances

        def check() -> list[str]:
            svc = self.read(name)
            want = expect_for(svc, self.world, ids)
            if not want.hostname:
                return ["no status hostname yet"]
            view = aws_view(self.boto, svc.metadata.uid)
            found = problems(view, want) or not_ensured(svc)
            return found or (extra(view) if extra else [])

        wait_until(check, timeout, f"{name} converged in AWS")
        return aws_view(self.boto, self.read(name).metadata.uid)

    def warnings(self, name: str) -> list[client.CoreV1Event]:
        return [e for e in self.core.list_namespaced_event(
            NAMESPACE, field_selector=f"involvedObject.name={name}").items
            if e.type == "Warning"]


@pytest.fixture
def env(boto: Boto, world: World, aws_sandbox: Sandbox) -> Iterator[Env]:
    config = parse_config(config_text(world.cluster, boto.endpoint.url))
    assert aws_sandbox.options.kubeconfig is not None
    api = client_for(aws_sandbox)
    try:
        with running_controller(str(aws_sandbox.options.kubeconfig), config, qps=500,
                                burst=1000):
            yield Env(client.CoreV1Api(api), boto, world, aws_sandbox)
    finally:
        api.close()


def _tg_attributes(boto: Boto, arn: str) -> dict[str, str]:
    return {a["Key"]: a["Value"] for a in boto("elbv2").describe_target_group_attributes(
        TargetGroupArn=arn)["Attributes"]}


def _lb_attributes(boto: Boto, arn: str) -> dict[str, str]:
    return {a["Key"]: a["Value"] for a in boto("elbv2").describe_load_balancer_attributes(
        LoadBalancerArn=arn)["Attributes"]}


def _free_node_port(core: client.CoreV1Api, start: int = 32100) -> int:
    used = {p.node_port for s in core.list_service_for_all_namespaces().items
            for p in (s.spec.ports or []) if p.node_port}
    used |= {s.spec.health_check_node_port for s in core.list_service_for_all_namespaces().items
             if s.spec.health_check_node_port}
    return next(p for p in range(start, 32768) if p not in used)


# -- the tests -------------------------------------------------------------------------------
def test_create_ports_annotations_and_delete(env: Env) -> None:
    boto, world = env.boto, env.world
    svc = env.create("web")
    uid = svc.metadata.uid
    node_port = svc.spec.ports[0].node_port
    view = env.converge("web")

    # create: exactly one NLB, ours, and nothing else of the cluster's
    lb = view.lb
    tags = view.tags[lb["LoadBalancerArn"]]
    assert tags["lbctl.io/cluster"] == world.cluster
    assert tags["lbctl.io/service-namespace"] == NAMESPACE
    assert tags["lbctl.io/service-name"] == "web"
    assert tags[TAG_UID] == uid
    assert tags["lbctl.io/managed-by"] == "lbctl"
    assert tags["kubernetes.io/service-name"] == f"{NAMESPACE}/web"
    assert tags[f"kubernetes.io/cluster/{world.cluster}"] == "owned"
    assert lb["LoadBalancerName"] == tags[TAG_BALANCER] == view.balancer
    assert view.balancer.startswith("lb-defaul-web-")
    assert lb["Scheme"] == "internet-facing" and lb["VpcId"] == world.vpc_id
    assert {z["SubnetId"] for z in lb["AvailabilityZones"]} == set(world.subnets.values())
    found = tagged_objects(boto, world.cluster)
    assert found["load_balancers"] == [lb["LoadBalancerArn"]]
    (tg,) = view.target_groups
    assert found["target_groups"] == [tg["TargetGroupArn"]]
    assert (tg["Protocol"], tg["Port"], tg["TargetType"], tg["VpcId"]) == (
        "TCP", node_port, "instance", world.vpc_id)
    assert view.tags[tg["TargetGroupArn"]][TAG_UID] == uid
    (listener,) = view.listeners
    assert (listener["Port"], listener["Protocol"]) == (80, "TCP")
    assert view.forwards() == {80: tg["TargetGroupArn"]}
    assert view.targets[tg["TargetGroupArn"]] == instance_ids(world)
    groups = {g["GroupName"]: g["GroupId"] for g in view.groups.values()}
    frontend, backend = groups[frontend_name(view.balancer)], groups[backend_name(world.cluster)]
    assert sorted(lb["SecurityGroups"]) == sorted([frontend, backend])
    assert sorted(view.rules) == sorted([  # one node rule for a one-port Service
        (world.security_group_id, "tcp", node_port, backend, f"lbctl:{view.balancer}:traffic"),
        (frontend, "tcp", 80, "0.0.0.0/0", f"lbctl:{view.balancer}:frontend")])
    assert len(found["security_group_rules"]) == 2
    assert sorted(found["security_groups"]) == sorted([frontend, backend])
    assert env.hostname("web") == lb["DNSName"]
    assert FINALIZER in env.read("web").metadata.finalizers
    first_dns = lb["DNSName"]

    # port change: a new nodePort for :80 and a second port -> a new group each, old one gone
    new_node_port = _free_node_port(env.core)
    svc = env.read("web")
    svc.spec.ports = [client.V1ServicePort(name="http", port=80, target_port=8080,
                                           node_port=new_node_port),
                      client.V1ServicePort(name="https", port=443, target_port=8443)]
    env.core.replace_namespaced_service("web", NAMESPACE, svc)
    view = env.converge("web")
    https_port = env.read("web").spec.ports[1].node_port
    assert set(view.group_by_port()) == {new_node_port, https_port}
    assert tg["TargetGroupArn"] not in {g["TargetGroupArn"] for g in view.target_groups}
    all_groups = _pages(boto("elbv2"), "describe_target_groups", "TargetGroups")
    assert tg["TargetGroupName"] not in {g["TargetGroupName"] for g in all_groups}
    assert node_port not in {r[2] for r in view.rules}
    assert view.lb["DNSName"] == first_dns  # the same NLB throughout

    # a listener port change keeps the group, moves the listener
    kept = view.group_by_port()[https_port]["TargetGroupArn"]
    svc = env.read("web")
    svc.spec.ports[1].port = 8443  # a strategic merge patch would merge by port: replace
    env.core.replace_namespaced_service("web", NAMESPACE, svc)
    view = env.converge("web")
    assert view.forwards() == {80: view.group_by_port()[new_node_port]["TargetGroupArn"],
                               8443: kept}

    # annotations: target group and load balancer attributes are modified
    env.core.patch_namespaced_service("web", NAMESPACE, {"metadata": {"annotations": {
        TG_ATTRIBUTES: "deregistration_delay.timeout_seconds=30", CROSS_ZONE: "true"}}})

    def attributes_applied(v: View) -> list[str]:
        delays = {g["TargetGroupName"]: _tg_attributes(boto, g["TargetGroupArn"]).get(
            "deregistration_delay.timeout_seconds") for g in v.target_groups}
        out = [f"{name}: deregistration delay {delay}" for name, delay in delays.items()
               if delay != "30"]
        cross = _lb_attributes(boto, v.lb["LoadBalancerArn"]).get(
            "load_balancing.cross_zone.enabled")
        return out + ([f"cross zone {cross}"] if cross != "true" else [])

    view = env.converge("web", extra=attributes_applied)

    # a bad annotation value: a Warning naming the annotation; the balancer stays as it was
    env.core.patch_namespaced_service("web", NAMESPACE, {"metadata": {"annotations": {
        TG_ATTRIBUTES: "deregistration_delay.timeout_seconds=soon"}}})
    warning = wait_for(lambda: [e for e in env.warnings("web") if TG_ATTRIBUTES in e.message],
                       30, "a Warning event naming the annotation")[0]
    assert warning.reason == "SyncLoadBalancerFailed"
    assert "soon" in warning.message
    # The Warning is the pass that met the bad value: it ran, and annotations are read before
    # any write, so the balancer is as it was.
    assert env.hostname("web") == first_dns
    after = aws_view(boto, uid)
    assert not problems(after, expect_for(env.read("web"), world, instance_ids(world)))
    assert {g["TargetGroupArn"] for g in after.target_groups} == {
        g["TargetGroupArn"] for g in view.target_groups}
    assert not attributes_applied(after)

    # delete: nothing of the cluster's is left in AWS, the Service is gone
    env.core.delete_namespaced_service("web", NAMESPACE)
    wait_until(lambda: nothing_left(boto, world.cluster), 45, "every tagged object deleted")
    wait_for(lambda: not [s for s in env.core.list_namespaced_service(NAMESPACE).items
                          if s.metadata.name == "web"], 30, "the Service gone")
    assert not any(tagged_objects(boto, world.cluster).values())
    gone = aws_view(boto, uid, view.balancer)
    assert (gone.named, gone.load_balancers, gone.target_groups, gone.rules, gone.groups) == (
        0, [], [], [], {})


def _add_instance(boto: Boto, world: World) -> Instance:
    ec2 = boto("ec2")
    az = sorted(world.subnets)[0]
    reservation = ec2.run_instances(
        ImageId=world.image_id, InstanceType=world_module.INSTANCE_TYPE, MinCount=1,
        MaxCount=1, SubnetId=world.subnets[az], SecurityGroupIds=[world.security_group_id],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": world_module.cluster_tag(world.cluster), "Value": "owned"}]}])
    iid = reservation["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid],
                                            WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    found = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    ip = found["PrivateIpAddress"]
    name = f"ip-{ip.replace('.', '-')}.{world_module.dns_suffix(world.region)}"
    return Instance(name, iid, az, ip)


def test_nodes_excluded_deleted_and_added(env: Env) -> None:
    boto, world = env.boto, env.world
    env.create("nodes")
    ids = instance_ids(world)
    env.converge("nodes", ids)
    first, second = world.instances[0], world.instances[1]

    env.core.patch_node(first.name, {"metadata": {"labels": {EXCLUDE: "true"}}})
    env.converge("nodes", ids - {first.instance_id})
    env.core.patch_node(first.name, {"metadata": {"labels": {EXCLUDE: None}}})
    env.converge("nodes", ids)

    env.core.delete_node(second.name)
    env.converge("nodes", ids - {second.instance_id})

    added = _add_instance(boto, world)
    env.core.create_node({
        "metadata": {"name": added.name, "labels": {
            "topology.kubernetes.io/zone": added.az,
            "topology.kubernetes.io/region": world.region}},
        "spec": {"providerID": world_module.provider_id(added)},
        "status": {"addresses": [{"type": "InternalIP", "address": added.private_ip},
                                 {"type": "Hostname", "address": added.name}]}})
    view = env.converge("nodes", ids - {second.instance_id} | {added.instance_id})
    (tg,) = view.target_groups
    assert view.targets[tg["TargetGroupArn"]] == {
        world.instances[0].instance_id, world.instances[2].instance_id, added.instance_id}

    env.core.delete_namespaced_service("nodes", NAMESPACE)
    wait_until(lambda: nothing_left(boto, world.cluster), 45, "every tagged object deleted")


def test_local_policy_and_source_ranges(env: Env) -> None:
    boto, world = env.boto, env.world
    svc = env.create("local", externalTrafficPolicy="Local")
    hc_port = svc.spec.health_check_node_port
    assert hc_port
    view = env.converge("local")
    (tg,) = view.target_groups
    assert (tg["HealthCheckProtocol"], tg["HealthCheckPort"], tg["HealthCheckPath"]) == (
        "HTTP", str(hc_port), "/healthz")
    assert (tg["HealthCheckIntervalSeconds"], tg["HealthyThresholdCount"],
            tg["UnhealthyThresholdCount"]) == (10, 2, 2)
    node_port = svc.spec.ports[0].node_port
    backend = next(g["GroupId"] for g in view.groups.values()
                   if g["GroupName"] == backend_name(world.cluster))
    assert sorted(r for r in view.rules if r[0] == world.security_group_id) == sorted([
        (world.security_group_id, "tcp", node_port, backend, f"lbctl:{view.balancer}:traffic"),
        (world.security_group_id, "tcp", hc_port, backend, f"lbctl:{view.balancer}:health")])

    ranges = ["203.0.113.0/24", "198.51.100.7/32"]
    env.core.patch_namespaced_service("local", NAMESPACE,
                                      {"spec": {"loadBalancerSourceRanges": ranges}})
    view = env.converge("local")
    frontend = sorted(r[3] for r in view.rules if r[4].endswith(":frontend"))
    assert frontend == sorted(ranges)
    assert "0.0.0.0/0" not in {r[3] for r in view.rules}
    assert len([r for r in view.rules if r[0] == world.security_group_id]) == 2  # unchanged

    env.core.patch_namespaced_service("local", NAMESPACE,
                                      {"spec": {"loadBalancerSourceRanges": ["192.0.2.0/24"]}})
    view = env.converge("local")
    assert sorted(r[3] for r in view.rules if r[4].endswith(":frontend")) == ["192.0.2.0/24"]

    # back to Cluster: the TCP traffic-port check, the health rule on the nodePort
    env.core.patch_namespaced_service("local", NAMESPACE, {"spec": {
        "externalTrafficPolicy": "Cluster", "loadBalancerSourceRanges": None}})
    view = env.converge("local")
    (tg,) = view.target_groups
    assert (tg["HealthCheckProtocol"], tg["HealthCheckPort"]) == ("TCP", "traffic-port")
    assert hc_port not in {r[2] for r in view.rules}

    env.core.delete_namespaced_service("local", NAMESPACE)
    wait_until(lambda: nothing_left(boto, world.cluster), 45, "every tagged object deleted")


def test_type_change_to_cluster_ip_deletes_everything(env: Env) -> None:
    boto, world = env.boto, env.world
    env.create("flip", ports=[{"name": "a", "port": 80, "targetPort": 8080},
                              {"name": "b", "port": 53, "targetPort": 53, "protocol": "UDP"}])
    view = env.converge("flip")
    assert {tg["Protocol"] for tg in view.target_groups} == {"TCP", "UDP"}
    assert {r[1] for r in view.rules} == {"tcp", "udp"}

    env.core.patch_namespaced_service("flip", NAMESPACE, {"spec": {"type": "ClusterIP"}})
    wait_until(lambda: nothing_left(boto, world.cluster), 45, "every tagged object deleted")

    def cleared() -> bool:
        svc = env.read("flip")
        lb = svc.status.load_balancer if svc.status else None
        return (not (lb and lb.ingress)) and FINALIZER not in (svc.metadata.finalizers or [])

    wait_for(cleared, 30, "status cleared and finalizer removed")
    svc = env.read("flip")
    assert svc.spec.type == "ClusterIP"
    assert not [c for c in (svc.status.conditions or []) if c.type.startswith("LoadBalancer")]
    gone = aws_view(boto, svc.metadata.uid, view.balancer)
    assert not gone.load_balancers and not gone.target_groups and not gone.rules
    assert not gone.groups
    assert gone.named == 0
    env.core.delete_namespaced_service("flip", NAMESPACE)
