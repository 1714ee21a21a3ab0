"""The `aws` provider against a moto server (or any endpoint in AWS_ENDPOINT_URL), driven
through real boto3: a VPC with tagged subnets, a node security group and three instances, then
specs built directly. Every assertion reads AWS back with a separate boto3 client, and API cost
is read from the provider's own call counter (a no-op ensure must only Describe).

Each test uses its own cluster name, so the tests also hold against a shared endpoint where
state cannot be reset."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from providers.aws import AwsProvider
from providers.aws import names as aws_names
from providers.aws.client import AwsClient, map_error
from providers.aws.settings import RATE_FAMILIES, AwsSettings
from providers.errors import NotOwnedError, PermanentError, RetryAfter, TransientError
from providers.spec import (
    BalancerRef,
    HealthCheck,
    Listener,
    LoadBalancerSpec,
    LoadBalancerStatus,
    ServiceRef,
    Target,
    TargetHealth,
)

pytestmark = pytest.mark.integration

REGION = "us-east-1"
READ_PREFIXES = ("Describe", "Get")  # GetResources: the tagging API
FAST = dict.fromkeys(RATE_FAMILIES, 1000.0)
INTERNAL = "service.beta.kubernetes.io/aws-load-balancer-internal"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    url = os.environ.get("AWS_ENDPOINT_URL")
    if url:
        yield url
        return
    from lbctl.emulators.aws.server import AwsEmulator

    with AwsEmulator(region=REGION) as emulator:
        yield emulator.endpoint


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


@dataclass
class World:
    """A VPC laid out like a cluster's, and boto3 clients to read it back."""

    cluster: str
    endpoint: str
    ec2: Any
    elbv2: Any
    vpc_id: str
    public_subnets: tuple[str, str]
    internal_subnets: tuple[str, str]
    node_sg: str
    instances: tuple[tuple[str, str, str], ...]  # (id, zone, private ip)

    def provider(self, **settings: Any) -> AwsProvider:
        return AwsProvider(AwsSettings(region=REGION, endpoint_url=self.endpoint,
                                       rate_limits=FAST, **settings),
                           self.cluster, client=None, sleep=lambda _: None)

    def spec(self, *, ports: tuple[tuple[int, str, int | None], ...] = ((80, "TCP", 30080),),
             nodes: int = 3, local: int | None = None, annotations: dict[str, str] | None = None,
             source_ranges: tuple[str, ...] = ("0.0.0.0/0",), name: str = "web",
             provider_ids: tuple[str, ...] | None = None) -> LoadBalancerSpec:
        uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.cluster}/{name}"))
        ref = BalancerRef(f"lb-default-{name[:8]}-{aws_names.short_hash(uid)}", self.cluster,
                          ServiceRef("default", name, uid))
        ids = provider_ids or tuple(f"aws:///{zone}/{iid}" for iid, zone, _ in self.instances)
        targets = tuple(Target(f"node-{i}", pid, (self.instances[i % 3][2],),
                               self.instances[i % 3][1])
                        for i, pid in enumerate(ids[:nodes]))
        return LoadBalancerSpec(
            ref=ref,
            listeners=tuple(Listener(f"p{i}", proto, port, np)
                            for i, (port, proto, np) in enumerate(ports)),
            targets=targets,
            health_check=(HealthCheck("HTTP", local, "/healthz") if local
                          else HealthCheck("TCP", None)),
            source_ranges=source_ranges,
            external_traffic_policy="Local" if local else "Cluster",
            annotations=tuple(sorted((annotations or {}).items())))

    # -- reading AWS back ----------------------------------------------------------------
    def tags(self, arns: list[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for i in range(0, len(arns), 20):
            for d in self.elbv2.describe_tags(ResourceArns=arns[i:i + 20])["TagDescriptions"]:
                out[d["ResourceArn"]] = {t["Key"]: t["Value"] for t in d["Tags"]}
        return out

    def owned(self) -> list[tuple[str, str]]:
        """(kind, name) of every ELBv2 object tagged for this cluster."""
        lbs = self.elbv2.describe_load_balancers()["LoadBalancers"]
        tgs = self.elbv2.describe_target_groups()["TargetGroups"]
        arns = {lb["LoadBalancerArn"]: ("lb", lb["LoadBalancerName"]) for lb in lbs}
        arns |= {tg["TargetGroupArn"]: ("tg", tg["TargetGroupName"]) for tg in tgs}
        tags = self.tags(list(arns))
        return sorted(arns[a] for a, t in tags.items()
                      if t.get("lbctl.io/cluster") == self.cluster)

    def lbs(self, name: str) -> list[dict[str, Any]]:
        return [lb for lb in self.elbv2.describe_load_balancers()["LoadBalancers"]
                if lb["LoadBalancerName"] == name]

    def lb(self, name: str) -> dict[str, Any]:
        found = self.lbs(name)
        assert len(found) == 1, found
        return found[0]

    def groups(self, lb_arn: str) -> list[dict[str, Any]]:
        """The target groups the NLB's listeners forward to (moto does not link a group that
        ModifyListener switched to, so LoadBalancerArn= would miss it)."""
        arns = sorted({li["DefaultActions"][0]["TargetGroupArn"]
                       for li in self.listeners(lb_arn)})
        if not arns:
            return []
        groups = self.elbv2.describe_target_groups(TargetGroupArns=arns)["TargetGroups"]
        return sorted(groups, key=lambda g: g["TargetGroupName"])

    def listeners(self, lb_arn: str) -> list[dict[str, Any]]:
        return list(self.elbv2.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"])

    def target_ids(self, tg_arn: str) -> set[str]:
        health = self.elbv2.describe_target_health(TargetGroupArn=tg_arn)
        return {d["Target"]["Id"] for d in health["TargetHealthDescriptions"]}

    def rules(self, balancer: str) -> set[tuple[str, str, int, str, str]]:
        """(group, protocol, port, source CIDR or group, purpose) of every ingress rule
        described as ours."""
        out = set()
        prefix = aws_names.rule_prefix(balancer)
        groups = self.ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [self.vpc_id]}])["SecurityGroups"]
        for g in groups:
            for p in g["IpPermissions"]:
                sources = [(r["CidrIp"], r.get("Description", ""))
                           for r in p.get("IpRanges", [])]
                sources += [(r["GroupId"], r.get("Description", ""))
                            for r in p.get("UserIdGroupPairs", [])]
                for source, description in sources:
                    if description.startswith(prefix):
                        out.add((g["GroupId"], p["IpProtocol"], p["FromPort"], source,
                                 description.removeprefix(prefix)))
        return out

    def group_id(self, name: str) -> str:
        found = self.ec2.describe_security_groups(Filters=[
            {"Name": "vpc-id", "Values": [self.vpc_id]},
            {"Name": "group-name", "Values": [name]}])["SecurityGroups"]
        assert len(found) == 1, (name, found)
        return str(found[0]["GroupId"])


@pytest.fixture
def world(endpoint: str, credentials: None) -> World:
    cluster = f"it-{uuid.uuid4().hex[:8]}"
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
    elbv2 = boto3.client("elbv2", region_name=REGION, endpoint_url=endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    cluster_tag = {"Key": f"kubernetes.io/cluster/{cluster}", "Value": "shared"}

    def subnet(cidr: str, zone: str, role: str) -> str:
        sid: str = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)[
            "Subnet"]["SubnetId"]
        ec2.create_tags(Resources=[sid], Tags=[cluster_tag, {"Key": role, "Value": "1"},
                                               {"Key": "Name", "Value": f"{role}-{zone}"}])
        return sid

    public = (subnet("10.0.1.0/24", "us-east-1a", "kubernetes.io/role/elb"),
              subnet("10.0.2.0/24", "us-east-1b", "kubernetes.io/role/elb"))
    internal = (subnet("10.0.3.0/24", "us-east-1a", "kubernetes.io/role/internal-elb"),
                subnet("10.0.4.0/24", "us-east-1b", "kubernetes.io/role/internal-elb"))
    sg = ec2.create_security_group(GroupName=f"nodes-{cluster}", Description="nodes",
                                   VpcId=vpc)["GroupId"]
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    instances = []
    for i, (sid, zone) in enumerate(((internal[0], "us-east-1a"), (internal[0], "us-east-1a"),
                                     (internal[1], "us-east-1b"))):
        inst = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=sid,
                                 SecurityGroupIds=[sg], InstanceType="t3.small",
                                 PrivateIpAddress=f"10.0.{3 + (i == 2)}.{10 + i}")["Instances"][0]
        instances.append((inst["InstanceId"], zone, inst["PrivateIpAddress"]))
    return World(cluster, endpoint, ec2, elbv2, vpc, public, internal, sg, tuple(instances))


def ensure(provider: AwsProvider, spec: LoadBalancerSpec) -> LoadBalancerStatus:
    """ensure, accepting the provisioning RetryAfter (moto reports a new NLB provisioning)."""
    try:
        return provider.ensure(spec)
    except RetryAfter as exc:
        assert exc.seconds == 5
        assert isinstance(exc.status, LoadBalancerStatus)
        return exc.status


def writes(calls: Counter[str]) -> Counter[str]:
    return Counter({op: n for op, n in calls.items() if not op.startswith(READ_PREFIXES)})


# -- create, no-op, updates ------------------------------------------------------------------
def test_create_then_noop(world: World) -> None:
    provider = world.provider()
    spec = world.spec()
    with pytest.raises(RetryAfter) as caught:
        provider.ensure(spec)
    status = caught.value.status
    created = provider.client.reset_calls()
    lb = world.lb(spec.name)
    assert lb["Type"] == "network" and lb["Scheme"] == "internet-facing"
    assert status.ingress[0].hostname == lb["DNSName"]
    assert {z["SubnetId"] for z in lb["AvailabilityZones"]} == set(world.public_subnets)
    groups = world.groups(lb["LoadBalancerArn"])
    assert [(g["Protocol"], g["Port"], g["TargetType"]) for g in groups] == [
        ("TCP", 30080, "instance")]
    tg = groups[0]
    assert (tg["HealthCheckProtocol"], tg["HealthCheckPort"], tg["HealthCheckIntervalSeconds"],
            tg["HealthyThresholdCount"], tg["UnhealthyThresholdCount"]) == (
        "TCP", "traffic-port", 30, 3, 3)
    assert world.target_ids(tg["TargetGroupArn"]) == {i for i, _, _ in world.instances}
    [listener] = world.listeners(lb["LoadBalancerArn"])
    assert (listener["Protocol"], listener["Port"]) == ("TCP", 80)
    assert listener["DefaultActions"][0]["TargetGroupArn"] == tg["TargetGroupArn"]
    tags = world.tags([lb["LoadBalancerArn"], tg["TargetGroupArn"]])
    for arn_tags in tags.values():
        assert arn_tags[f"kubernetes.io/cluster/{world.cluster}"] == "owned"
        assert arn_tags["kubernetes.io/service-name"] == "default/web"
        assert arn_tags["lbctl.io/balancer"] == spec.name
        assert arn_tags["lbctl.io/service-uid"] == spec.ref.service.uid
        assert arn_tags["lbctl.io/managed-by"] == "lbctl"
    frontend = world.group_id(aws_names.frontend_group_name(spec.name))
    backend = world.group_id(aws_names.backend_group_name(world.cluster))
    assert sorted(lb["SecurityGroups"]) == sorted([frontend, backend])
    # the source ranges on the NLB's own group; one rule on the node group, from the NLBs'
    # backend group (traffic and health checks alike)
    assert world.rules(spec.name) == {
        (world.node_sg, "tcp", 30080, backend, "traffic"),
        (frontend, "tcp", 80, "0.0.0.0/0", "frontend")}
    assert writes(created) == Counter({
        "CreateSecurityGroup": 2, "CreateLoadBalancer": 1, "CreateTargetGroup": 1,
        "RegisterTargets": 1, "CreateListener": 1, "AuthorizeSecurityGroupIngress": 2})

    again = provider.ensure(spec)  # moto's NLB is active once described
    noop = provider.client.reset_calls()
    assert writes(noop) == Counter(), noop
    assert again.ingress[0].hostname == lb["DNSName"] and again.serving
    assert provider.plan(spec) == []
    assert len(world.lbs(spec.name)) == 1
    print(f"\nAWS calls: create={sum(created.values())} {dict(created)}\n"
          f"           no-op={sum(noop.values())} {dict(noop)}")


def test_target_counts_come_from_the_health_read_the_resync_makes_anyway(
        world: World) -> None:
    """`status.targets` is DescribeTargetHealth's, which every ensure reads already (which
    targets are registered): the resync costs the same calls as before, one health read per
    target group, and nothing more."""
    provider = world.provider()
    spec = world.spec()
    assert ensure(provider, spec).targets is None  # the group was made in that pass: unread
    provider.client.reset_calls()
    status = provider.ensure(spec)
    resync = provider.client.reset_calls()
    assert status.targets == TargetHealth(3, 3)
    assert resync == Counter({  # the same seven reads the no-op ensure always made
        "DescribeLoadBalancers": 1, "DescribeSecurityGroups": 1, "DescribeListeners": 1,
        "DescribeTargetGroups": 1, "DescribeTags": 1, "DescribeTargetHealth": 1,
        "DescribeTargetGroupAttributes": 1}), resync
    world.ec2.stop_instances(InstanceIds=[world.instances[2][0]])  # AWS: "unused", no traffic
    assert provider.ensure(spec).targets == TargetHealth(2, 3)


def test_node_removed_is_one_deregister(world: World) -> None:
    provider = world.provider()
    ensure(provider, world.spec())
    provider.client.reset_calls()
    spec = world.spec(nodes=2)
    assert provider.plan(spec) == [
        f"deregister {world.instances[2][0]} from "
        f"{aws_names.target_group_name(spec.name, 'TCP', 30080, 'instance')}"]
    provider.ensure(spec)
    calls = provider.client.reset_calls()
    assert writes(calls) == Counter({"DeregisterTargets": 1})
    tg = world.groups(world.lb(spec.name)["LoadBalancerArn"])[0]
    assert world.target_ids(tg["TargetGroupArn"]) == {i for i, _, _ in world.instances[:2]}
    print(f"\nAWS calls: node change={sum(calls.values())} {dict(calls)}")


def test_annotations_are_parsed_once_per_ensure_and_per_plan(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from providers.aws.annotations import parse_annotations as real

    parsed: list[str] = []

    def counting(spec: LoadBalancerSpec) -> Any:
        parsed.append(spec.name)
        return real(spec)

    monkeypatch.setattr("providers.aws.provider.parse_annotations", counting)
    provider = world.provider()
    spec = world.spec()
    ensure(provider, spec)  # creates: observe, desired, deploy
    assert len(parsed) == 1
    provider.ensure(spec)  # no-op
    assert len(parsed) == 2
    assert provider.plan(spec) == []
    assert len(parsed) == 3
    provider.validate(spec)
    assert parsed == [spec.name] * 4


def test_port_change_replaces_target_group(world: World) -> None:
    provider = world.provider()
    ensure(provider, world.spec())
    lb_arn = world.lb(world.spec().name)["LoadBalancerArn"]
    old = world.groups(lb_arn)[0]["TargetGroupArn"]
    provider.client.reset_calls()
    spec = world.spec(ports=((80, "TCP", 30081),))
    provider.ensure(spec)
    calls = writes(provider.client.reset_calls())
    assert calls == Counter({"CreateTargetGroup": 1, "RegisterTargets": 1, "ModifyListener": 1,
                             "DeleteTargetGroup": 1, "AuthorizeSecurityGroupIngress": 1,
                             "RevokeSecurityGroupIngress": 1})
    [tg] = world.groups(lb_arn)
    assert tg["Port"] == 30081 and tg["TargetGroupArn"] != old
    [listener] = world.listeners(lb_arn)
    assert listener["DefaultActions"][0]["TargetGroupArn"] == tg["TargetGroupArn"]
    all_names = {g["TargetGroupName"] for g in world.elbv2.describe_target_groups()[
        "TargetGroups"]}
    assert aws_names.target_group_name(spec.name, "TCP", 30080, "instance") not in all_names
    assert {r[2] for r in world.rules(spec.name) if r[0] == world.node_sg} == {30081}


def test_mixed_protocols_share_a_tcp_udp_group(world: World) -> None:
    provider = world.provider()
    spec = world.spec(ports=((53, "TCP", 30053), (53, "UDP", 30053), (80, "TCP", 30080)))
    ensure(provider, spec)
    lb_arn = world.lb(spec.name)["LoadBalancerArn"]
    assert sorted((g["Protocol"], g["Port"]) for g in world.groups(lb_arn)) == [
        ("TCP", 30080), ("TCP_UDP", 30053)]
    assert sorted((li["Protocol"], li["Port"]) for li in world.listeners(lb_arn)) == [
        ("TCP", 80), ("TCP_UDP", 53)]
    assert {(r[1], r[2]) for r in world.rules(spec.name) if r[4] == "traffic"} == {
        ("tcp", 30053), ("udp", 30053), ("tcp", 30080)}
    provider.client.reset_calls()
    provider.ensure(spec)
    assert writes(provider.client.reset_calls()) == Counter()
    bad = world.spec(ports=((53, "TCP", 30053), (53, "UDP", 30054)))
    with pytest.raises(PermanentError) as caught:
        provider.ensure(bad)
    assert caught.value.field == "spec.ports"


def test_local_policy_health_check(world: World) -> None:
    provider = world.provider()
    spec = world.spec(local=32000)
    ensure(provider, spec)
    [tg] = world.groups(world.lb(spec.name)["LoadBalancerArn"])
    assert (tg["HealthCheckProtocol"], tg["HealthCheckPort"], tg["HealthCheckPath"],
            tg["HealthCheckIntervalSeconds"], tg["HealthyThresholdCount"],
            tg["UnhealthyThresholdCount"]) == ("HTTP", "32000", "/healthz", 10, 2, 2)
    backend = world.group_id(aws_names.backend_group_name(world.cluster))
    assert (world.node_sg, "tcp", 32000, backend, "health") in world.rules(spec.name)
    provider.client.reset_calls()
    provider.ensure(spec)
    assert writes(provider.client.reset_calls()) == Counter()
    # back to Cluster: the health check changes in place, the group stays
    provider.ensure(world.spec())
    assert writes(provider.client.reset_calls()) == Counter({  # the traffic rule covers health
        "ModifyTargetGroup": 1, "RevokeSecurityGroupIngress": 1})


def test_source_ranges_become_rules(world: World) -> None:
    provider = world.provider()
    ranges = ("203.0.113.0/24", "198.51.100.0/24")
    spec = world.spec(source_ranges=ranges)
    ensure(provider, spec)
    assert {r[3] for r in world.rules(spec.name) if r[4] == "frontend"} == set(ranges)
    provider.client.reset_calls()
    provider.ensure(world.spec(source_ranges=ranges[:1]))
    assert writes(provider.client.reset_calls()) == Counter({"RevokeSecurityGroupIngress": 1})
    assert {r[3] for r in world.rules(spec.name) if r[4] == "frontend"} == {ranges[0]}


def test_internal_scheme_uses_internal_subnets(world: World) -> None:
    provider = world.provider()
    spec = world.spec(annotations={INTERNAL: "true"})
    ensure(provider, spec)
    lb = world.lb(spec.name)
    assert lb["Scheme"] == "internal"
    assert {z["SubnetId"] for z in lb["AvailabilityZones"]} == set(world.internal_subnets)


def test_ip_targets(world: World) -> None:
    provider = world.provider()
    spec = world.spec(annotations={
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip"})
    ensure(provider, spec)
    [tg] = world.groups(world.lb(spec.name)["LoadBalancerArn"])
    assert tg["TargetType"] == "ip"
    assert world.target_ids(tg["TargetGroupArn"]) == {ip for _, _, ip in world.instances}


def test_bad_provider_ids_are_skipped_and_reported(world: World) -> None:
    provider = world.provider()
    good = tuple(f"aws:///{z}/{i}" for i, z, _ in world.instances[:2])
    spec = world.spec(provider_ids=(*good, "gce://project/zone/vm-1"))
    status = ensure(provider, spec)
    assert status.degraded is not None and "node-2" in status.degraded
    [tg] = world.groups(world.lb(spec.name)["LoadBalancerArn"])
    assert world.target_ids(tg["TargetGroupArn"]) == {i for i, _, _ in world.instances[:2]}


def test_concurrent_ensures_for_different_services(world: World) -> None:
    provider = world.provider()
    specs = [world.spec(name=f"svc{i}", ports=((80 + i, "TCP", 30100 + i),)) for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda s: ensure(provider, s), specs))
    assert all(st.ingress and st.ingress[0].hostname for st in statuses)
    for s in specs:
        assert len(world.lbs(s.name)) == 1
        assert {r[2] for r in world.rules(s.name) if r[0] == world.node_sg} == {
            s.listeners[0].node_port}
    assert sorted(r.name for r in provider.list_owned()) == sorted(s.name for s in specs)
    for s in specs:
        provider.delete(s.ref)
    assert world.owned() == []


# -- delete, leftovers, ownership ------------------------------------------------------------
def test_delete_leaves_nothing(world: World) -> None:
    provider = world.provider()
    spec = world.spec(ports=((80, "TCP", 30080), (53, "UDP", 30053)))
    ensure(provider, spec)
    assert len(world.owned()) == 3
    assert list(provider.list_owned()) == [spec.ref]
    provider.client.reset_calls()
    provider.delete(spec.ref)
    calls = provider.client.reset_calls()
    assert world.owned() == []
    assert world.rules(spec.name) == set()
    assert world.lbs(spec.name) == []
    lbctl_groups = world.ec2.describe_security_groups(Filters=[
        {"Name": "tag:lbctl.io/cluster", "Values": [world.cluster]}])["SecurityGroups"]
    assert lbctl_groups == []
    provider.delete(spec.ref)  # idempotent
    assert writes(provider.client.reset_calls()) == Counter()
    assert list(provider.list_owned()) == []
    print(f"\nAWS calls: delete={sum(calls.values())} {dict(calls)}")


def test_delete_finds_crash_leftovers(world: World) -> None:
    provider = world.provider()
    spec = world.spec()
    ensure(provider, spec)
    lb = world.lb(spec.name)
    for listener in world.listeners(lb["LoadBalancerArn"]):
        world.elbv2.delete_listener(ListenerArn=listener["ListenerArn"])
    world.elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    assert world.owned() == [("tg", aws_names.target_group_name(spec.name, "TCP", 30080,
                                                                "instance"))]
    assert list(provider.list_owned()) == [spec.ref]  # found by its target group alone
    assert provider.observe(spec.ref) is None
    provider.delete(spec.ref)
    assert world.owned() == []
    assert world.rules(spec.name) == set()


def test_release_drops_ownership_only(world: World) -> None:
    provider = world.provider()
    spec = world.spec()
    ensure(provider, spec)
    provider.release(spec.ref)
    assert list(provider.list_owned()) == []
    assert len(world.lbs(spec.name)) == 1  # still there, no longer ours
    assert provider.observe(spec.ref) is None
    with pytest.raises(NotOwnedError):
        provider.ensure(spec)


def test_foreign_balancer_with_our_name_is_not_touched(world: World) -> None:
    provider = world.provider()
    spec = world.spec()
    world.elbv2.create_load_balancer(Name=spec.name, Type="network",
                                     Subnets=list(world.public_subnets))
    provider.client.reset_calls()
    with pytest.raises(NotOwnedError):
        provider.ensure(spec)
    assert writes(provider.client.reset_calls()) == Counter()
    provider.delete(spec.ref)
    assert len(world.lbs(spec.name)) == 1


# -- errors ----------------------------------------------------------------------------------
def test_throttling_is_retried_then_transient(world: World) -> None:
    client = AwsClient(AwsSettings(region=REGION, endpoint_url=world.endpoint, rate_limits=FAST),
                       sleep=lambda _: None)
    provider = AwsProvider(AwsSettings(region=REGION, endpoint_url=world.endpoint),
                           world.cluster, client=client)
    spec = world.spec()
    with Stubber(client.elbv2_client) as stub:
        for _ in range(5):
            stub.add_client_error("describe_load_balancers", service_error_code="Throttling",
                                  service_message="Rate exceeded", http_status_code=400)
        with pytest.raises(TransientError, match="Throttling"):
            provider.observe(spec.ref)
    assert client.calls["DescribeLoadBalancers"] == 5
    with Stubber(client.elbv2_client) as stub:
        stub.add_client_error("describe_load_balancers", service_error_code="Throttling",
                              http_status_code=400)
        stub.add_response("describe_load_balancers", {"LoadBalancers": []},
                          {"Names": [spec.name]})
        assert provider.observe(spec.ref) is None  # one retry, then the answer


def test_errors_map_to_the_taxonomy(world: World) -> None:
    client = AwsClient(AwsSettings(region=REGION, endpoint_url=world.endpoint, rate_limits=FAST),
                       sleep=lambda _: None)
    with Stubber(client.elbv2_client) as stub:
        stub.add_client_error("create_load_balancer", service_error_code="ValidationError",
                              service_message="bad", http_status_code=400)
        stub.add_client_error("create_load_balancer", service_error_code="TooManyLoadBalancers",
                              http_status_code=400)
        stub.add_client_error("create_load_balancer", service_error_code="AllocationIdNotFound",
                              http_status_code=400)
        for _ in range(5):
            stub.add_client_error("create_load_balancer", service_error_code="InternalFailure",
                                  http_status_code=500)
        errors = []
        for _ in range(4):
            try:
                client.elbv2("CreateLoadBalancer", Name="x", Subnets=["subnet-1"])
            except Exception as exc:
                errors.append(map_error(exc))
            else:
                pytest.fail("stubbed error not raised")
            if isinstance(errors[-1], TransientError):
                break
    assert isinstance(errors[0], PermanentError) and errors[0].field == "spec"
    assert isinstance(errors[1], PermanentError) and "quota" in str(errors[1])
    assert isinstance(errors[2], PermanentError)
    assert errors[2].field.endswith("aws-load-balancer-eip-allocations]")
    assert isinstance(errors[3], TransientError)
    assert client.calls["CreateLoadBalancer"] == 3 + 5  # the 5xx was retried to exhaustion


def test_a_target_group_left_behind_is_adopted(world: World) -> None:
    """The NLB gone but its group left (a crash mid-delete, or an out-of-band delete): the
    next ensure recreates the NLB and adopts the group (targets and all), never a second
    group; a group with our name but not our tags is refused."""
    provider = world.provider()
    spec = world.spec()
    ensure(provider, spec)
    lb = world.lb(spec.name)
    for listener in world.listeners(lb["LoadBalancerArn"]):
        world.elbv2.delete_listener(ListenerArn=listener["ListenerArn"])
    world.elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    provider.client.reset_calls()
    ensure(provider, spec)
    assert writes(provider.client.reset_calls()) == Counter({
        "CreateLoadBalancer": 1, "CreateTargetGroup": 1,  # -> DuplicateTargetGroupName, adopted
        "CreateListener": 1})
    assert [kind for kind, _ in world.owned()] == ["lb", "tg"]

    other = world.spec(name="other")
    world.elbv2.create_target_group(
        Name=aws_names.target_group_name(other.name, "TCP", 30080, "instance"), Protocol="TCP",
        Port=30080, VpcId=world.vpc_id, TargetType="instance")
    with pytest.raises(NotOwnedError):
        ensure(provider, other)


def test_a_group_detached_by_a_crash_mid_switch_is_deleted_after_a_restart(world: World) -> None:
    """Real AWS detaches a group from its NLB once no listener forwards to it, so a crash
    between ModifyListener and DeleteTargetGroup would leave a group the NLB no longer lists.
    A restarted provider scans the cluster's groups on its first ensure and deletes it."""
    spec = world.spec()
    ensure(world.provider(), spec)
    stale = aws_names.target_group_name(spec.name, "TCP", 30999, "instance")
    tags = world.elbv2.describe_tags(ResourceArns=[world.groups(
        world.lb(spec.name)["LoadBalancerArn"])[0]["TargetGroupArn"]])["TagDescriptions"][0]
    world.elbv2.create_target_group(
        Name=stale, Protocol="TCP", Port=30999, VpcId=world.vpc_id, TargetType="instance",
        Tags=tags["Tags"])  # ours, attached to nothing
    restarted = world.provider()
    restarted.client.reset_calls()
    ensure(restarted, spec)
    assert writes(restarted.client.reset_calls()) == Counter({"DeleteTargetGroup": 1})
    left = {g["TargetGroupName"] for g in world.elbv2.describe_target_groups()["TargetGroups"]}
    assert stale not in left
    ensure(restarted, spec)  # and the scan is not repeated on every ensure
    assert restarted.client.reset_calls()["DescribeTargetGroups"] <= 1
