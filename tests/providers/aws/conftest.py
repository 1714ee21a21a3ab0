"""Fixtures for the AWS tests: an endpoint, clients on it, the seeded world, a leak check.

The endpoint is `AWS_ENDPOINT_URL` when set (LocalStack Pro, or `lbctl emulator aws`), else
the AWS emulator (moto) this session starts on 127.0.0.1 (one per xdist worker). Only a server the
session started is reset between tests (`POST /moto-api/reset`): a shared endpoint is left alone,
so every test seeds a world with a cluster name of its own and checks leaks by that name.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import pytest

from lbctl.emulators.aws import world as world_module
from lbctl.emulators.aws.server import FAKE_CREDENTIALS, AwsEmulator
from lbctl.emulators.aws.world import World
from lbctl.sandbox.app import Sandbox
from tests.providers.convergence import world_sandbox

REGION = "us-east-1"
LBCTL_CLUSTER_TAG = "lbctl.io/cluster"
LBCTL_RULE_PREFIX = "lbctl:"


@dataclass(frozen=True)
class Endpoint:
    url: str
    region: str
    own_moto: bool
    """True when this session started the server (a moto it may reset)."""

    def __str__(self) -> str:
        return self.url


class Boto:
    """A factory for boto3 clients on the endpoint: `boto("ec2")`, `boto("elbv2")`."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            region_name=endpoint.region)

    def __call__(self, service: str, region: str | None = None) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint.url,
                                   region_name=region or self.endpoint.region)


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[Endpoint]:
    """The AWS endpoint for the session. Sets fake credentials and the region in os.environ
    (kept if AWS_ENDPOINT_URL was given), restored at the end of the session."""
    saved = dict(os.environ)
    external = os.environ.get("AWS_ENDPOINT_URL", "")
    server: AwsEmulator | None = None
    try:
        if external:
            for key, value in FAKE_CREDENTIALS.items():
                os.environ.setdefault(key, value)
            os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
            endpoint = Endpoint(external.rstrip("/"), os.environ["AWS_DEFAULT_REGION"], False)
        else:
            server = AwsEmulator(region=REGION)
            server.start()
            for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
                os.environ.pop(key, None)
            os.environ.update(FAKE_CREDENTIALS, AWS_DEFAULT_REGION=REGION,
                              AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
            endpoint = Endpoint(server.endpoint, REGION, True)
        yield endpoint
    finally:
        if server is not None:
            server.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def aws_reset(aws_endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> Endpoint:
    """A clean moto before the test (only for a server this session owns), and
    AWS_ENDPOINT_URL pointing at it for the test, so code under test that builds its own
    clients (a provider, `lbctl` in a subprocess) lands there too."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint.url)
    if aws_endpoint.own_moto:
        AwsEmulator(endpoint=aws_endpoint.url).reset()
    return aws_endpoint


@pytest.fixture
def boto(aws_reset: Endpoint) -> Boto:
    return Boto(aws_reset)


def cluster_name(endpoint: Endpoint) -> str:
    """`kubernetes` on a moto of our own (reset per test), else a name no other test uses."""
    return "kubernetes" if endpoint.own_moto else f"lbctl-t-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def world(boto: Boto) -> World:
    """The seeded world (3 instances over 2 zones); its cluster name is `world.cluster`."""
    return world_module.seed(boto("ec2"), cluster=cluster_name(boto.endpoint), nodes=3,
                             region=boto.endpoint.region)


@pytest.fixture
def world_nodes_file(world: World, tmp_path: Path) -> Path:
    path = tmp_path / "nodes.yaml"
    path.write_text(world_module.nodes_file(world))
    return path


@pytest.fixture
def aws_sandbox(world_nodes_file: Path, tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox of the test's own whose nodes are the world's instances (not simulated)."""
    yield from world_sandbox(world_nodes_file, tmp_path, bookmark_interval=0.5)


def _tagged(tags: list[dict[str, str]], cluster: str) -> bool:
    return any(t.get("Key") == LBCTL_CLUSTER_TAG and t.get("Value") == cluster for t in tags)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _elbv2_tags(elbv2: Any, arns: list[str]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for chunk in _chunks(arns, 20):
        for desc in elbv2.describe_tags(ResourceArns=chunk)["TagDescriptions"]:
            out[desc["ResourceArn"]] = desc.get("Tags", [])
    return out


def _pages(client: Any, operation: str, key: str, **kw: Any) -> list[dict[str, Any]]:
    return [item for page in client.get_paginator(operation).paginate(**kw)
            for item in page.get(key, [])]


def tagged_objects(boto: Boto, cluster: str) -> dict[str, list[str]]:
    """Every AWS object lbctl would have made for `cluster`, by kind: the leak check.

    load_balancers, target_groups, listeners (ARNs): tagged `lbctl.io/cluster=<cluster>` (a
    listener also counts when its balancer is); security_groups, addresses (ids): tagged;
    security_group_rules (rule ids): tagged, or described `lbctl:...` in a group that is the
    cluster's (tagged by lbctl or `kubernetes.io/cluster/<cluster>`, or in such a VPC). A rule
    whose source is a security group is matched through DescribeSecurityGroups, since moto's
    DescribeSecurityGroupRules leaves such a rule's description out.
    `assert not any(tagged_objects(boto, c).values())` after a delete finds what leaked."""
    elbv2, ec2 = boto("elbv2"), boto("ec2")
    balancers = [lb["LoadBalancerArn"] for lb in _pages(elbv2, "describe_load_balancers",
                                                        "LoadBalancers")]
    lb_tags = _elbv2_tags(elbv2, balancers)
    found_lbs = [arn for arn in balancers if _tagged(lb_tags.get(arn, []), cluster)]
    groups = [tg["TargetGroupArn"] for tg in _pages(elbv2, "describe_target_groups",
                                                    "TargetGroups")]
    tg_tags = _elbv2_tags(elbv2, groups)
    found_tgs = [arn for arn in groups if _tagged(tg_tags.get(arn, []), cluster)]
    owner = {ls["ListenerArn"]: arn for arn in balancers
             for ls in _pages(elbv2, "describe_listeners", "Listeners", LoadBalancerArn=arn)}
    ls_tags = _elbv2_tags(elbv2, list(owner))
    found_listeners = [ls for ls, lb in owner.items()
                       if lb in found_lbs or _tagged(ls_tags.get(ls, []), cluster)]

    kube_tag = world_module.cluster_tag(cluster)
    vpcs = {v["VpcId"] for v in _pages(ec2, "describe_vpcs", "Vpcs",
                                       Filters=[{"Name": f"tag:{kube_tag}",
                                                 "Values": ["owned", "shared"]}])}
    security_groups = _pages(ec2, "describe_security_groups", "SecurityGroups")
    found_sgs = [sg["GroupId"] for sg in security_groups if _tagged(sg.get("Tags", []), cluster)]
    cluster_groups = {sg["GroupId"] for sg in security_groups
                      if sg["GroupId"] in found_sgs or sg.get("VpcId") in vpcs
                      or any(t.get("Key") == kube_tag for t in sg.get("Tags", []))}
    rules = _pages(ec2, "describe_security_group_rules", "SecurityGroupRules")
    pairs = {(sg["GroupId"], perm.get("IpProtocol"), perm.get("FromPort"), perm.get("ToPort"),
              pair.get("GroupId"))
             for sg in security_groups if sg["GroupId"] in cluster_groups
             for perm in sg.get("IpPermissions", []) for pair in perm.get("UserIdGroupPairs", [])
             if str(pair.get("Description", "")).startswith(LBCTL_RULE_PREFIX)}
    found_rules = [r["SecurityGroupRuleId"] for r in rules
                   if _tagged(r.get("Tags", []), cluster)
                   or (r.get("GroupId") in cluster_groups
                       and str(r.get("Description", "")).startswith(LBCTL_RULE_PREFIX))
                   or (not r.get("IsEgress") and (
                       r.get("GroupId"), r.get("IpProtocol"), r.get("FromPort"), r.get("ToPort"),
                       (r.get("ReferencedGroupInfo") or {}).get("GroupId")) in pairs)]
    addresses = ec2.describe_addresses()["Addresses"]
    found_eips = [a["AllocationId"] for a in addresses if _tagged(a.get("Tags", []), cluster)]
    return {"load_balancers": found_lbs, "target_groups": found_tgs,
            "listeners": found_listeners, "security_groups": found_sgs,
            "security_group_rules": found_rules, "addresses": found_eips}


class CallCounter:
    """Counts the API operations a boto3 client makes (`before-call.*.*`), by operation name:
    `with CallCounter(ec2) as calls: ...; calls["DescribeInstances"]`, `calls.total`."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.counts: Counter[str] = Counter()
        self._attached = False
        self.attach()

    def _count(self, model: Any = None, **_: Any) -> None:
        self.counts[str(getattr(model, "name", "?"))] += 1

    def attach(self) -> None:
        if not self._attached:
            self.client.meta.events.register("before-call.*.*", self._count,
                                             unique_id=f"lbctl-call-counter-{id(self)}")
            self._attached = True

    def detach(self) -> None:
        if self._attached:
            self.client.meta.events.unregister("before-call.*.*", self._count,
                                               unique_id=f"lbctl-call-counter-{id(self)}")
            self._attached = False

    def reset(self) -> None:
        self.counts.clear()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __getitem__(self, operation: str) -> int:
        return self.counts[operation]

    def __enter__(self) -> CallCounter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.detach()
