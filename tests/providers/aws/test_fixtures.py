"""The AWS fixtures work: the world in EC2, its nodes in a sandbox, the leak check, the call
counter, `lbctl emulator aws` as a process and the LocalStack init script against moto."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from kubernetes import client, config

from lbctl.controller.config import parse_config
from lbctl.emulators.aws import world as world_module
from lbctl.emulators.aws.world import World
from lbctl.sandbox.app import Sandbox
from lbctl.sandbox.nodes import SIMULATED, from_file
from tests.providers.aws.conftest import (
    LBCTL_CLUSTER_TAG,
    Boto,
    CallCounter,
    Endpoint,
    tagged_objects,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
INIT_SCRIPT = ROOT / "localstack" / "init" / "ready.d" / "10-lbctl-world.sh"


def test_endpoint_and_credentials(aws_reset: Endpoint) -> None:
    assert aws_reset.url.startswith("http")
    assert os.environ["AWS_ACCESS_KEY_ID"] and os.environ["AWS_SECRET_ACCESS_KEY"]
    assert os.environ["AWS_DEFAULT_REGION"] == aws_reset.region
    # code under test that builds its own clients lands on the same server
    assert os.environ["AWS_ENDPOINT_URL"] == aws_reset.url
    assert boto3.client("sts").get_caller_identity()["Account"]
    assert boto3.client("ec2").describe_availability_zones()["AvailabilityZones"]


def test_world_is_seeded(boto: Boto, world: World) -> None:
    ec2 = boto("ec2")
    assert len(world.subnets) == 2 and len(set(world.subnets)) == 2
    subnets = ec2.describe_subnets(SubnetIds=list(world.subnets.values()))["Subnets"]
    for subnet in subnets:
        tags = {t["Key"]: t["Value"] for t in subnet["Tags"]}
        assert tags[world_module.ROLE_ELB] == "1"
        assert tags[world_module.ROLE_INTERNAL_ELB] == "1"
        assert tags[f"kubernetes.io/cluster/{world.cluster}"] == "owned"
        assert subnet["VpcId"] == world.vpc_id
        assert world.subnets[subnet["AvailabilityZone"]] == subnet["SubnetId"]
    tagged = ec2.describe_subnets(Filters=[
        {"Name": "tag:kubernetes.io/role/elb", "Values": ["1"]},
        {"Name": f"tag:kubernetes.io/cluster/{world.cluster}", "Values": ["owned", "shared"]}])
    assert {s["SubnetId"] for s in tagged["Subnets"]} == set(world.subnets.values())

    ids = [i.instance_id for i in world.instances]
    assert len(ids) == 3
    found = {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
             for i in r["Instances"]}
    for inst in world.instances:
        described = found[inst.instance_id]
        assert described["State"]["Name"] == "running"
        assert described["Placement"]["AvailabilityZone"] == inst.az
        assert described["SubnetId"] == world.subnets[inst.az]
        assert described["PrivateIpAddress"] == inst.private_ip
        assert [g["GroupId"] for g in described["SecurityGroups"]] == [world.security_group_id]
    assert {i.az for i in world.instances} == set(world.subnets)
    group = ec2.describe_security_groups(GroupIds=[world.security_group_id])["SecurityGroups"][0]
    assert group["VpcId"] == world.vpc_id


def test_nodes_file_loads(world: World, world_nodes_file: Path) -> None:
    specs = from_file(world_nodes_file)
    assert [s.provider_id for s in specs] == [
        f"aws:///{i.az}/{i.instance_id}" for i in world.instances] == world.provider_ids
    assert [s.internal_ip for s in specs] == [i.private_ip for i in world.instances]
    assert not any(s.simulate for s in specs)
    assert [s.labels["topology.kubernetes.io/zone"] for s in specs] == [
        i.az for i in world.instances]


def test_sandbox_lists_the_world_nodes(world: World, aws_sandbox: Sandbox) -> None:
    assert aws_sandbox.options.kubeconfig is not None
    api = config.new_client_from_config(config_file=str(aws_sandbox.options.kubeconfig))
    try:
        nodes = client.CoreV1Api(api).list_node().items
    finally:
        api.close()
    got = {n.metadata.name: n for n in nodes}
    assert sorted(got) == sorted(i.name for i in world.instances)
    for inst in world.instances:
        node = got[inst.name]
        assert node.spec.provider_id == f"aws:///{inst.az}/{inst.instance_id}"
        assert node.metadata.annotations[SIMULATED] == "false"
        assert {a.type: a.address for a in node.status.addresses}["InternalIP"] == \
            inst.private_ip
        assert node.metadata.labels["topology.kubernetes.io/zone"] == inst.az


def test_tagged_objects_finds_lbctl_objects_only(boto: Boto, world: World) -> None:
    ec2, elbv2 = boto("ec2"), boto("elbv2")
    mine = [{"Key": LBCTL_CLUSTER_TAG, "Value": world.cluster}]
    other = [{"Key": LBCTL_CLUSTER_TAG, "Value": "another-cluster"}]
    subnets = list(world.subnets.values())
    suffix = uuid.uuid4().hex[:6]

    lb = elbv2.create_load_balancer(Name=f"lbctl-{suffix}", Subnets=subnets, Type="network",
                                    Tags=mine)["LoadBalancers"][0]["LoadBalancerArn"]
    bare_lb = elbv2.create_load_balancer(Name=f"bare-{suffix}", Subnets=subnets,
                                         Type="network")["LoadBalancers"][0]["LoadBalancerArn"]
    other_lb = elbv2.create_load_balancer(Name=f"other-{suffix}", Subnets=subnets,
                                          Type="network", Tags=other)
    assert other_lb["LoadBalancers"]
    tg = elbv2.create_target_group(Name=f"lbctl-{suffix}", Protocol="TCP", Port=30080,
                                   VpcId=world.vpc_id, TargetType="instance",
                                   Tags=mine)["TargetGroups"][0]["TargetGroupArn"]
    bare_tg = elbv2.create_target_group(Name=f"bare-{suffix}", Protocol="TCP", Port=30081,
                                        VpcId=world.vpc_id,
                                        TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    listener = elbv2.create_listener(LoadBalancerArn=lb, Protocol="TCP", Port=80,
                                     DefaultActions=[{"Type": "forward",
                                                      "TargetGroupArn": tg}])
    listener_arn = listener["Listeners"][0]["ListenerArn"]
    elbv2.create_listener(LoadBalancerArn=bare_lb, Protocol="TCP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": bare_tg}])

    sg = ec2.create_security_group(
        GroupName=f"lbctl-{suffix}", Description="lbctl", VpcId=world.vpc_id,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": mine}])["GroupId"]
    bare_sg = ec2.create_security_group(GroupName=f"bare-{suffix}", Description="not lbctl's",
                                        VpcId=world.vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=world.security_group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 30080, "ToPort": 30080,
         "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": f"lbctl: default/web {suffix}"}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "ssh from the VPC"}]},
        # a node rule admitting a security group (the NLBs' backend group), and a foreign one
        {"IpProtocol": "tcp", "FromPort": 30081, "ToPort": 30081,
         "UserIdGroupPairs": [{"GroupId": sg, "Description": f"lbctl:lb-{suffix}:traffic"}]},
        {"IpProtocol": "tcp", "FromPort": 30082, "ToPort": 30082,
         "UserIdGroupPairs": [{"GroupId": bare_sg, "Description": "someone else's"}]},
    ])
    rules = ec2.describe_security_group_rules(Filters=[
        {"Name": "group-id", "Values": [world.security_group_id]}])["SecurityGroupRules"]
    lbctl_rules = [r["SecurityGroupRuleId"] for r in rules
                   if str(r.get("Description", "")).startswith("lbctl:")
                   or (r.get("ReferencedGroupInfo") or {}).get("GroupId") == sg]
    assert len(lbctl_rules) == 2
    eip = ec2.allocate_address(Domain="vpc", TagSpecifications=[
        {"ResourceType": "elastic-ip", "Tags": mine}])["AllocationId"]
    ec2.allocate_address(Domain="vpc")

    found = tagged_objects(boto, world.cluster)
    assert found == {"load_balancers": [lb], "target_groups": [tg], "listeners": [listener_arn],
                     "security_groups": [sg], "security_group_rules": lbctl_rules,
                     "addresses": [eip]}

    # cleaned up, nothing is reported
    elbv2.delete_listener(ListenerArn=listener_arn)
    elbv2.delete_load_balancer(LoadBalancerArn=lb)
    elbv2.delete_target_group(TargetGroupArn=tg)
    ec2.revoke_security_group_ingress(GroupId=world.security_group_id,
                                      SecurityGroupRuleIds=lbctl_rules)
    ec2.delete_security_group(GroupId=sg)
    ec2.release_address(AllocationId=eip)
    assert not any(tagged_objects(boto, world.cluster).values())


def test_call_counter_counts_operations(boto: Boto, world: World) -> None:
    ec2 = boto("ec2")
    with CallCounter(ec2) as calls:
        ec2.describe_instances()
        ec2.describe_instances(InstanceIds=[world.instances[0].instance_id])
        ec2.describe_subnets()
        assert calls["DescribeInstances"] == 2 and calls["DescribeSubnets"] == 1
        assert calls.total == 3
        calls.reset()
        ec2.describe_vpcs()
        assert dict(calls.counts) == {"DescribeVpcs": 1}
    ec2.describe_vpcs()
    assert calls.total == 1  # detached when the block ended


def start_runner(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "lbctl", "emulator", "aws", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline()


def test_emulator_serves_seeds_and_stops(tmp_path: Path) -> None:
    nodes_file, config_out = tmp_path / "nodes.yaml", tmp_path / "config.yaml"
    proc, line = start_runner("--listen", "127.0.0.1:0", "--cluster", "demo", "--nodes", "2",
                              "--nodes-file", str(nodes_file), "--config-out", str(config_out))
    try:
        match = re.search(r"ready at (http://127\.0\.0\.1:(\d+))", line)
        assert match, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr
                              else "")
        endpoint = match.group(1)
        assert f"nodes-file={nodes_file}" in line and f"config={config_out}" in line
        config = parse_config(config_out.read_text())
        assert (config.provider, config.cluster_name) == ("aws", "demo")
        assert config.aws == {"region": "us-east-1", "endpointURL": endpoint}
        ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        running = [i for r in ec2.describe_instances(Filters=[
            {"Name": "tag:kubernetes.io/cluster/demo", "Values": ["owned"]},
            {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
            for i in r["Instances"]]
        specs = from_file(nodes_file)
        assert sorted(s.provider_id for s in specs) == sorted(
            f"aws:///{i['Placement']['AvailabilityZone']}/{i['InstanceId']}" for i in running)
        assert len(specs) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_emulator_without_nodes_and_sigint() -> None:
    proc, line = start_runner("--listen", "127.0.0.1:0", "--nodes", "0")
    try:
        assert "ready at http://127.0.0.1:" in line and "0 nodes" in line, line
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_emulator_names_a_bad_flag_and_a_taken_port() -> None:
    bad = subprocess.run([sys.executable, "-m", "lbctl", "emulator", "aws", "--listen", "x"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "--listen" in bad.stderr, bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "lbctl", "emulator", "aws", "--listen",
                              f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60,
                             check=False)
    assert out.returncode == 1 and f"--listen 127.0.0.1:{port}" in out.stderr, out.stderr


def test_init_script_builds_the_same_world(aws_reset: Endpoint, tmp_path: Path) -> None:
    """`init/ready.d/10-lbctl-world.sh` through the AWS CLI against the endpoint: a nodes file
    the sandbox loads, naming the instances it tagged for the cluster; rerun: nothing to do."""
    aws = shutil.which("aws")
    if aws is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the AWS CLI (`aws`) is not installed")
        pytest.skip("the AWS CLI (`aws`) is not installed")
    cluster = f"sh-{uuid.uuid4().hex[:6]}"
    nodes_file = tmp_path / "nodes.yaml"
    env = {**os.environ, "AWS_ENDPOINT_URL": aws_reset.url, "LBCTL_CLUSTER": cluster,
           "LBCTL_NODES": "2", "LBCTL_NODES_FILE": str(nodes_file),
           "AWS_DEFAULT_REGION": aws_reset.region}
    result = subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True,
                            text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == nodes_file.read_text()
    specs = from_file(nodes_file)
    ec2 = Boto(aws_reset)("ec2")
    running = [i for r in ec2.describe_instances(Filters=[
        {"Name": f"tag:kubernetes.io/cluster/{cluster}", "Values": ["owned"]}])["Reservations"]
        for i in r["Instances"]]
    assert sorted(s.provider_id for s in specs) == sorted(
        f"aws:///{i['Placement']['AvailabilityZone']}/{i['InstanceId']}" for i in running)
    assert {s.labels["topology.kubernetes.io/zone"] for s in specs} == {"us-east-1a",
                                                                         "us-east-1b"}
    assert not any(s.simulate for s in specs)
    subnets = ec2.describe_subnets(Filters=[
        {"Name": "tag:kubernetes.io/role/elb", "Values": ["1"]},
        {"Name": f"tag:kubernetes.io/cluster/{cluster}", "Values": ["owned"]}])["Subnets"]
    assert len(subnets) == 2

    again = subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True,
                           timeout=120, check=False)
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr
