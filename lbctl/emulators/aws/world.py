"""The AWS world lbctl's AWS tests and demo run in: one definition, seeded through boto3.

A VPC tagged for the cluster, one subnet per availability zone carrying the role tags the
provider discovers subnets by (`kubernetes.io/role/elb` and `kubernetes.io/role/internal-elb`,
plus `kubernetes.io/cluster/<name>=owned`), an internet gateway, a node security group and N
running instances spread over the zones. `nodes_file` turns it into a `lbctl sandbox --nodes-file`
whose nodes carry the instances' providerIDs (`aws:///<az>/<instance-id>`), so the provider sees
the nodes that AWS would. `init/ready.d/10-lbctl-world.sh` builds the same world with the AWS CLI.

This module imports only boto3's client objects handed to it (and PyYAML), never lbctl.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import nodes_file as nodes_file_module

VPC_CIDR = "10.0.0.0/16"
INSTANCE_TYPE = "t3.medium"
ROLE_ELB = "kubernetes.io/role/elb"
ROLE_INTERNAL_ELB = "kubernetes.io/role/internal-elb"


def cluster_tag(cluster: str) -> str:
    """The tag key that marks a resource as the cluster's (value `owned` or `shared`)."""
    return f"kubernetes.io/cluster/{cluster}"


class Instance(NamedTuple):
    name: str
    """The node name: the instance's private DNS name, as the AWS cloud provider names nodes."""
    instance_id: str
    az: str
    private_ip: str


@dataclass(frozen=True)
class World:
    vpc_id: str
    vpc_cidr: str
    subnets: dict[str, str]
    """Availability zone -> subnet id, one per zone."""
    security_group_id: str
    """The nodes' security group (where the provider opens NodePorts to the balancer)."""
    instances: list[Instance]
    cluster: str = "kubernetes"
    region: str = "us-east-1"
    internet_gateway_id: str = ""
    image_id: str = ""

    @property
    def provider_ids(self) -> list[str]:
        return [provider_id(i) for i in self.instances]


def provider_id(instance: Instance) -> str:
    return f"aws:///{instance.az}/{instance.instance_id}"


def dns_suffix(region: str) -> str:
    return "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"


def _tags(kind: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def _image(ec2: Any) -> str:
    """An AMI the endpoint knows: moto and LocalStack ship Amazon-owned images."""
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": [
        "al2023-ami-*-x86_64", "amzn2-ami-hvm-*-x86_64-gp2"]}]).get("Images", [])
    if not images:
        images = ec2.describe_images().get("Images", [])
    if not images:
        raise RuntimeError("the EC2 endpoint lists no images to start instances from")
    return str(sorted(images, key=lambda i: str(i["ImageId"]))[0]["ImageId"])


def seed(ec2: Any, cluster: str = "kubernetes", nodes: int = 3, region: str = "us-east-1",
         zones: int = 2) -> World:
    """Create the world through `ec2` (a boto3 EC2 client for `region`) and wait until its
    instances run. Every call creates new resources: use a fresh endpoint (moto reset) or a
    cluster name of its own."""
    if not 1 <= zones <= 6:
        raise ValueError("zones: between 1 and 6")
    owned = {cluster_tag(cluster): "owned"}
    available = sorted(z["ZoneName"] for z in ec2.describe_availability_zones(
        Filters=[{"Name": "region-name", "Values": [region]}])["AvailabilityZones"])
    azs = available[:zones]
    if len(azs) < zones:
        raise RuntimeError(f"{region} has {len(available)} availability zones, {zones} wanted")

    vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=_tags(
        "vpc", {"Name": f"{cluster}-vpc", **owned}))["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    igw = ec2.create_internet_gateway(TagSpecifications=_tags(
        "internet-gateway", {"Name": f"{cluster}-igw", **owned}))
    igw_id = igw["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    route_table = ec2.create_route_table(VpcId=vpc_id, TagSpecifications=_tags(
        "route-table", {"Name": f"{cluster}-public", **owned}))["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=route_table, DestinationCidrBlock="0.0.0.0/0",
                     GatewayId=igw_id)

    subnets: dict[str, str] = {}
    for k, az in enumerate(azs):
        subnet_id = ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=f"10.0.{16 * k}.0/20", AvailabilityZone=az,
            TagSpecifications=_tags("subnet", {
                "Name": f"{cluster}-{az}", ROLE_ELB: "1", ROLE_INTERNAL_ELB: "1", **owned}),
        )["Subnet"]["SubnetId"]
        ec2.associate_route_table(RouteTableId=route_table, SubnetId=subnet_id)
        subnets[az] = subnet_id

    sg_id = ec2.create_security_group(
        GroupName=f"{cluster}-node", Description=f"nodes of cluster {cluster}", VpcId=vpc_id,
        TagSpecifications=_tags("security-group", {"Name": f"{cluster}-node", **owned}),
    )["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg_id, IpPermissions=[{
        "IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": sg_id,
                                                  "Description": "node to node"}]}])

    image = _image(ec2)
    ids: list[tuple[str, str]] = []
    for k in range(nodes):
        az = azs[k % len(azs)]
        reservation = ec2.run_instances(
            ImageId=image, InstanceType=INSTANCE_TYPE, MinCount=1, MaxCount=1,
            SubnetId=subnets[az], SecurityGroupIds=[sg_id],
            TagSpecifications=_tags("instance", {"Name": f"{cluster}-node-{k + 1}", **owned}))
        ids.append((reservation["Instances"][0]["InstanceId"], az))

    instances: list[Instance] = []
    if ids:
        waiter = ec2.get_waiter("instance_running")
        waiter.wait(InstanceIds=[i for i, _ in ids], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        found = {i["InstanceId"]: i
                 for r in ec2.describe_instances(InstanceIds=[i for i, _ in ids])["Reservations"]
                 for i in r["Instances"]}
        for instance_id, az in ids:
            ip = str(found[instance_id]["PrivateIpAddress"])
            name = f"ip-{ip.replace('.', '-')}.{dns_suffix(region)}"
            instances.append(Instance(name, instance_id, az, ip))
    return World(vpc_id, VPC_CIDR, subnets, sg_id, instances, cluster, region, igw_id, image)


def nodes(world: World) -> list[dict[str, Any]]:
    """The nodes-file entries: one per instance, not simulated (the sandbox serves no traffic
    for them: their addresses are the VPC's)."""
    return [nodes_file_module.entry(i.name, provider_id(i), i.private_ip, i.az, world.region,
                                    INSTANCE_TYPE, dns=True)
            for i in world.instances]


def nodes_file(world: World) -> str:
    """YAML for `lbctl sandbox --nodes-file` (the format of `lbctl.sandbox.nodes.from_file`)."""
    return nodes_file_module.text(f"cluster {world.cluster}, {world.region}, VPC {world.vpc_id}",
                                  nodes(world))


def clients(endpoint: str, region: str = "us-east-1") -> tuple[Any, Any]:
    """(ec2, elbv2) boto3 clients on `endpoint`: how the demo reaches the world it seeds
    (lbctl's core never imports a cloud SDK; this tooling package may)."""
    import boto3  # noqa: PLC0415 - only the AWS demo and the tests need it

    session = boto3.session.Session(region_name=region)
    return (session.client("ec2", endpoint_url=endpoint),
            session.client("elbv2", endpoint_url=endpoint))
