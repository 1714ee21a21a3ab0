"""The NLB security groups and the node rule quota, against moto through the provider itself
(specs built directly, AWS read back with boto3).

Why these tests: AWS allows 60 inbound rules per security group by default (moto enforces the
same, checked first), and lbctl used to write two per one-port Service on every node group, so
the 30th Service failed. Now every NLB carries its own frontend group (the source ranges) and the
cluster's backend group, and a node group gains one rule per Service (40 Services here). Also:
an NLB an older lbctl made without groups keeps the per-CIDR rules (legacy), the
`aws-load-balancer-security-groups` annotation replaces the frontend group, a group AWS still
holds after the NLB's deletion makes delete poll (RetryAfter) instead of leaking it, the shared
backend group goes with the cluster's last NLB, and delete / list_owned cost the same however
many foreign objects the account holds (the Resource Groups Tagging API).
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lbctl.emulators.aws.world import World
from providers.aws import AwsProvider, groups, names
from providers.aws.model import DesiredSecurityGroup
from providers.aws.settings import RATE_FAMILIES, AwsSettings
from providers.errors import NotOwnedError, RetryAfter
from providers.spec import (
    BalancerRef,
    HealthCheck,
    Listener,
    LoadBalancerSpec,
    LoadBalancerStatus,
    ServiceRef,
    Target,
)
from tests.providers.aws.conftest import Boto, tagged_objects
from tests.providers.aws.fault_proxy import Fault, FaultProxy

pytestmark = pytest.mark.integration

FAST = dict.fromkeys(RATE_FAMILIES, 1000.0)
A = "service.beta.kubernetes.io/aws-load-balancer-"
SERVICES = 40
"""One-port Services on one node group: 80 rules in the old scheme, over AWS's 60."""
DEPENDENCY = Fault("DependencyViolation", 400, "resource sg-x has a dependent object")


def make_provider(boto: Boto, world: World, endpoint: str | None = None) -> AwsProvider:
    settings = AwsSettings(region=world.region, endpoint_url=endpoint or boto.endpoint.url,
                           rate_limits=FAST)
    return AwsProvider(settings, world.cluster, sleep=lambda _: None)


def make_spec(world: World, name: str, *, port: int = 80, node_port: int = 30080,
              annotations: dict[str, str] | None = None,
              source_ranges: tuple[str, ...] = ("0.0.0.0/0",)) -> LoadBalancerSpec:
    uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{world.cluster}/{name}"))
    ref = BalancerRef(f"lb-default-{name[:8]}-{names.short_hash(uid)}", world.cluster,
                      ServiceRef("default", name, uid))
    targets = tuple(Target(i.name, f"aws:///{i.az}/{i.instance_id}", (i.private_ip,), i.az)
                    for i in world.instances)
    return LoadBalancerSpec(ref=ref, listeners=(Listener("p", "TCP", port, node_port),),
                            targets=targets, health_check=HealthCheck("TCP", None),
                            source_ranges=source_ranges,
                            annotations=tuple(sorted((annotations or {}).items())))


def ensure(provider: AwsProvider, spec: LoadBalancerSpec) -> LoadBalancerStatus:
    """ensure, accepting the provisioning RetryAfter (moto reports a new NLB provisioning)."""
    try:
        return provider.ensure(spec)
    except RetryAfter as exc:
        assert isinstance(exc.status, LoadBalancerStatus)
        return exc.status


def writes(calls: Counter[str]) -> Counter[str]:
    return Counter({op: n for op, n in calls.items()
                    if not op.startswith(("Describe", "Get", "List"))})


def inbound(boto: Boto, group: str) -> list[tuple[str, int, str, str]]:
    """(protocol, port, source, description) of every inbound rule of `group`."""
    found = boto("ec2").describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    return [(p["IpProtocol"], int(p.get("FromPort", -1)), source, description)
            for p in found["IpPermissions"]
            for source, description in
            [(r["CidrIp"], r.get("Description", "")) for r in p.get("IpRanges", [])]
            + [(r["GroupId"], r.get("Description", "")) for r in p.get("UserIdGroupPairs", [])]]


def lb_of(boto: Boto, spec: LoadBalancerSpec) -> dict[str, Any]:
    found = boto("elbv2").describe_load_balancers(
        Names=[names.load_balancer_name(spec.name)])["LoadBalancers"]
    assert len(found) == 1, found
    return dict(found[0])


def group_ids(boto: Boto, world: World) -> dict[str, str]:
    """Group name -> ID, for the world's VPC."""
    return {g["GroupName"]: g["GroupId"] for g in boto("ec2").describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [world.vpc_id]}])["SecurityGroups"]}


def test_a_node_group_takes_one_rule_per_one_port_service(boto: Boto, world: World) -> None:
    ec2 = boto("ec2")
    scratch = ec2.create_security_group(GroupName="quota", Description="quota check",
                                        VpcId=world.vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=scratch, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 1, "ToPort": 1,
        "IpRanges": [{"CidrIp": f"10.1.{i}.0/24"} for i in range(60)]}])
    with pytest.raises(ClientError) as quota:  # moto holds AWS's default of 60 inbound rules
        ec2.authorize_security_group_ingress(GroupId=scratch, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 2, "ToPort": 2,
            "IpRanges": [{"CidrIp": "10.2.0.0/24"}]}])
    assert quota.value.response["Error"]["Code"] == "RulesPerSecurityGroupLimitExceeded"
    ec2.delete_security_group(GroupId=scratch)

    node = world.security_group_id
    base = len(inbound(boto, node))
    assert base + 2 * SERVICES > 60  # what the old scheme (traffic + health rule) would need
    provider = make_provider(boto, world)
    specs = [make_spec(world, f"svc{i:02d}", node_port=30100 + i) for i in range(SERVICES)]
    for i, spec in enumerate(specs):
        ensure(provider, spec)
        assert len(inbound(boto, node)) == base + i + 1, spec.name
    backend = group_ids(boto, world)[names.backend_group_name(world.cluster)]
    assert {r for r in inbound(boto, node) if r[3].startswith("lbctl:")} == {
        ("tcp", 30100 + i, backend, f"lbctl:{s.name}:traffic") for i, s in enumerate(specs)}
    frontends = set()
    for spec in specs:
        attached = lb_of(boto, spec)["SecurityGroups"]
        assert len(attached) == 2 and backend in attached
        (frontend,) = set(attached) - {backend}
        assert inbound(boto, frontend) == [("tcp", 80, "0.0.0.0/0", f"lbctl:{spec.name}:frontend")]
        frontends.add(frontend)
    assert len(frontends) == SERVICES
    assert sorted(tagged_objects(boto, world.cluster)["security_groups"]) == sorted(
        frontends | {backend})

    for spec in specs:
        provider.delete(spec.ref)
    assert len(inbound(boto, node)) == base
    assert not any(tagged_objects(boto, world.cluster).values())


def test_an_nlb_made_without_security_groups_keeps_per_cidr_rules(boto: Boto,
                                                                  world: World) -> None:
    spec = make_spec(world, "legacy", source_ranges=("203.0.113.0/24",))
    lb = boto("elbv2").create_load_balancer(  # as an older lbctl made it: no security groups
        Name=names.load_balancer_name(spec.name), Type="network", Scheme="internet-facing",
        Subnets=sorted(world.subnets.values()),
        Tags=names.tag_list(names.object_tags(spec.ref)))["LoadBalancers"][0]
    provider = make_provider(boto, world)
    status = ensure(provider, spec)
    calls = writes(provider.client.reset_calls())
    assert status.degraded is not None and "without security groups" in status.degraded
    assert ("securityGroupMode", "legacy") in status.details
    assert calls["CreateSecurityGroup"] == calls["SetSecurityGroups"] == 0, calls
    assert lb_of(boto, spec)["LoadBalancerArn"] == lb["LoadBalancerArn"]  # not replaced
    assert lb_of(boto, spec).get("SecurityGroups", []) == []
    ours = {r for r in inbound(boto, world.security_group_id) if r[3].startswith("lbctl:")}
    assert ours == {("tcp", 30080, "203.0.113.0/24", f"lbctl:{spec.name}:traffic"),
                    ("tcp", 30080, world.vpc_cidr, f"lbctl:{spec.name}:health")}
    ensure(provider, spec)
    assert writes(provider.client.reset_calls()) == Counter()
    provider.delete(spec.ref)
    assert not any(tagged_objects(boto, world.cluster).values())


def test_the_security_groups_annotation_replaces_the_frontend_group(boto: Boto,
                                                                    world: World) -> None:
    ec2 = boto("ec2")
    user = ec2.create_security_group(
        GroupName="clients", Description="the user's", VpcId=world.vpc_id,
        TagSpecifications=[{"ResourceType": "security-group",
                            "Tags": [{"Key": "Name", "Value": "edge-clients"}]}])["GroupId"]
    provider = make_provider(boto, world)
    byo = make_spec(world, "byo", annotations={A + "security-groups": user})
    ensure(provider, byo)
    assert lb_of(boto, byo)["SecurityGroups"] == [user]
    assert not [r for r in inbound(boto, world.security_group_id) if r[3].startswith("lbctl:")]
    assert tagged_objects(boto, world.cluster)["security_groups"] == []  # as the ALBC: no rules

    managed = make_spec(world, "byo")  # annotation removed: lbctl's groups, set in place
    ensure(provider, managed)
    ids = group_ids(boto, world)
    frontend, backend = (ids[names.frontend_group_name(byo.name)],
                         ids[names.backend_group_name(world.cluster)])
    assert sorted(lb_of(boto, byo)["SecurityGroups"]) == sorted([frontend, backend])
    assert writes(provider.client.reset_calls())["SetSecurityGroups"] == 1

    by_name = make_spec(world, "byo", annotations={
        A + "security-groups": "edge-clients", A + "manage-backend-security-group-rules": "true"})
    ensure(provider, by_name)
    assert lb_of(boto, byo)["SecurityGroups"] == [user, backend]
    assert names.frontend_group_name(byo.name) not in group_ids(boto, world)  # deleted
    assert [r for r in inbound(boto, world.security_group_id) if r[3].startswith("lbctl:")] == [
        ("tcp", 30080, backend, f"lbctl:{byo.name}:traffic")]
    provider.delete(byo.ref)
    assert not any(tagged_objects(boto, world.cluster).values())
    assert user in group_ids(boto, world).values()  # the user's group is never touched


def test_delete_polls_while_aws_still_holds_the_frontend_group(boto: Boto,
                                                                world: World) -> None:
    with FaultProxy(boto.endpoint.url) as proxy:
        provider = make_provider(boto, world, proxy.url)
        spec = make_spec(world, "busy")
        ensure(provider, spec)
        frontend = group_ids(boto, world)[names.frontend_group_name(spec.name)]
        proxy.script("DeleteSecurityGroup", DEPENDENCY, times=2)
        for _ in range(2):
            with pytest.raises(RetryAfter, match="still in use"):
                provider.delete(spec.ref)
            left = tagged_objects(boto, world.cluster)
            assert not left["load_balancers"] and not left["target_groups"]
            assert frontend in left["security_groups"]  # kept, not leaked: found again
        provider.delete(spec.ref)
    assert not any(tagged_objects(boto, world.cluster).values())


def test_the_backend_group_goes_with_the_last_nlb(boto: Boto, world: World) -> None:
    with FaultProxy(boto.endpoint.url) as proxy:
        provider = make_provider(boto, world, proxy.url)
        first, second = make_spec(world, "first"), make_spec(world, "second", node_port=30081)
        ensure(provider, first)
        ensure(provider, second)
        backend = group_ids(boto, world)[names.backend_group_name(world.cluster)]
        provider.delete(first.ref)
        assert backend in group_ids(boto, world).values()  # the second NLB uses it
        # AWS refuses once: the Service's delete still completes; orphan collection
        # (list_owned) deletes the group later
        proxy.script("DeleteSecurityGroup", DEPENDENCY, match={"GroupId": backend})
        provider.delete(second.ref)
        assert tagged_objects(boto, world.cluster)["security_groups"] == [backend]
        assert list(provider.list_owned()) == []
    assert not any(tagged_objects(boto, world.cluster).values())


def test_groups_left_by_a_crash_are_adopted_and_foreign_ones_refused(boto: Boto,
                                                                    world: World) -> None:
    ec2 = boto("ec2")
    spec = make_spec(world, "adopt")
    name = names.frontend_group_name(spec.name)
    tags = names.object_tags(spec.ref, ((names.TAG_GROUP_ROLE, "frontend"),))
    left = ec2.create_security_group(  # a crash right after CreateSecurityGroup
        GroupName=name, Description="x", VpcId=world.vpc_id,
        TagSpecifications=[{"ResourceType": "security-group",
                            "Tags": names.tag_list(tags)}])["GroupId"]
    provider = make_provider(boto, world)
    ensure(provider, spec)
    assert writes(provider.client.reset_calls())["CreateSecurityGroup"] == 1  # the backend only
    assert left in lb_of(boto, spec)["SecurityGroups"]
    backend = DesiredSecurityGroup(names.backend_group_name(world.cluster), "backend", "x",
                                   world.vpc_id, names.backend_tags(world.cluster))
    made = groups.create_group(provider.client, backend, world.cluster, spec.name)
    assert made.id == group_ids(boto, world)[backend.name]  # InvalidGroup.Duplicate: adopted

    other = make_spec(world, "foreign")
    ec2.create_security_group(GroupName=names.frontend_group_name(other.name),
                              Description="someone else's", VpcId=world.vpc_id)
    provider.client.reset_calls()
    with pytest.raises(NotOwnedError):
        ensure(provider, other)
    assert writes(provider.client.reset_calls()) == Counter()
    provider.delete(spec.ref)
    provider.delete(other.ref)
    assert not any(tagged_objects(boto, world.cluster).values())


def test_delete_and_list_owned_cost_does_not_grow_with_the_account(boto: Boto,
                                                                    world: World) -> None:
    provider = make_provider(boto, world)
    specs = [make_spec(world, f"own{i}", node_port=30090 + i) for i in range(2)]
    for spec in specs:
        ensure(provider, spec)
    provider.client.reset_calls()
    assert sorted(r.name for r in provider.list_owned()) == sorted(s.name for s in specs)
    alone = provider.client.reset_calls()
    elbv2 = boto("elbv2")
    for i in range(30):  # the account's other objects: another cluster's, untagged
        elbv2.create_target_group(Name=f"foreign-{i}", Protocol="TCP", Port=31000 + i,
                                  VpcId=world.vpc_id, TargetType="instance")
    for i in range(3):
        elbv2.create_load_balancer(Name=f"foreign-{i}", Type="network",
                                   Subnets=sorted(world.subnets.values()),
                                   Tags=[{"Key": "lbctl.io/cluster", "Value": "other"}])
    assert sorted(r.name for r in provider.list_owned()) == sorted(s.name for s in specs)
    assert provider.client.reset_calls() == alone == Counter({"GetResources": 1})
    provider.delete(specs[0].ref)
    calls = provider.client.reset_calls()
    assert calls["DescribeTargetGroups"] == 0 and calls["DescribeTags"] == 1, calls
    assert calls["DescribeLoadBalancers"] <= 2, calls  # by name; one live NLB left (backend)
    provider.delete(specs[1].ref)
    assert not any(tagged_objects(boto, world.cluster).values())


def test_a_group_detached_by_a_crash_is_found_by_its_tags(boto: Boto, world: World) -> None:
    """A crash between ModifyListener and DeleteTargetGroup leaves a group no NLB uses; a
    restarted provider's first ensure finds it through the tagging API and deletes it."""
    spec = make_spec(world, "detach")
    ensure(make_provider(boto, world), spec)
    elbv2 = boto("elbv2")
    stray = elbv2.create_target_group(
        Name=f"lbctl-{names.short_hash(spec.name)}-tcp-30999", Protocol="TCP", Port=30999,
        VpcId=world.vpc_id, TargetType="instance",
        Tags=names.tag_list(names.object_tags(spec.ref)))["TargetGroups"][0]["TargetGroupArn"]
    restarted = make_provider(boto, world)
    ensure(restarted, spec)
    assert writes(restarted.client.reset_calls()) == Counter({"DeleteTargetGroup": 1})
    left = [tg["TargetGroupArn"] for tg in elbv2.describe_target_groups()["TargetGroups"]]
    assert stray not in left
    ensure(restarted, spec)
    assert restarted.client.reset_calls()["GetResources"] == 0  # the scan is cached
    restarted.delete(spec.ref)
    assert not any(tagged_objects(boto, world.cluster).values())
