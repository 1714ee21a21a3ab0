"""The desired NLB (`providers.aws.desired`): pure, golden-tested as JSON like the ALBC's model
builder; bad input names the field. Set LBCTL_UPDATE_GOLDEN=1 to rewrite the documents.

The goldens have an outside reference too: every request a deploy of them sends (into an empty
account, and over AWS that drifted from them) passes botocore's own parameter validator against
the elbv2 and ec2 service models, which refuses broken copies of the same requests."""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from providers.aws import names
from providers.aws.annotations import parse_annotations
from providers.aws.deploy import Deployer
from providers.aws.desired import (
    desired,
    instance_id,
    keeps_legacy_rules,
    options_for,
    own_group_names,
)
from providers.aws.ingress import resolve
from providers.aws.model import (
    DesiredNlb,
    Discovered,
    Instance,
    Observed,
    ObservedListener,
    ObservedLoadBalancer,
    ObservedSecurityGroup,
    ObservedTargetGroup,
    SecurityGroup,
    SgRule,
    Subnet,
)
from providers.aws.settings import AwsSettings
from providers.errors import PermanentError
from providers.spec import (
    BalancerRef,
    HealthCheck,
    Listener,
    LoadBalancerSpec,
    ServiceRef,
    Target,
)

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden" / "aws"
A = "service.beta.kubernetes.io/aws-load-balancer-"
CLUSTER = "prod-east"
OURS = (f"kubernetes.io/cluster/{CLUSTER}", "shared")

DISCOVERED = Discovered(
    vpc_id="vpc-0a1", vpc_cidrs=("10.0.0.0/16", "100.64.0.0/16"),
    instances=(
        Instance("i-0aaa", "vpc-0a1", "subnet-0p1", "us-east-1a", ("sg-0node",), "10.0.1.10"),
        Instance("i-0bbb", "vpc-0a1", "subnet-0p2", "us-east-1b", ("sg-0node",), "10.0.2.10"),
        Instance("i-0ccc", "vpc-0a1", "subnet-0p2", "us-east-1b", ("sg-0extra", "sg-0node2"),
                 "10.0.2.11"),
    ),
    subnets=(
        Subnet("subnet-0e1", "us-east-1a", "vpc-0a1", "10.0.101.0/24",
               (OURS, ("Name", "public-a"), ("kubernetes.io/role/elb", "1"))),
        Subnet("subnet-0e0", "us-east-1a", "vpc-0a1", "10.0.100.0/24",
               (("kubernetes.io/role/elb", "1"),)),  # untagged for the cluster: second choice
        Subnet("subnet-0e2", "us-east-1b", "vpc-0a1", "10.0.102.0/24",
               (("Name", "public-b"), ("kubernetes.io/role/elb", "1"))),
        Subnet("subnet-0e3", "us-east-1c", "vpc-0a1", "10.0.103.0/24",
               (("kubernetes.io/cluster/other", "owned"), ("kubernetes.io/role/elb", "1"))),
        Subnet("subnet-0c1", "us-east-1a", "vpc-0a1", "10.0.1.0/24",
               (OURS, ("Name", "private-a"), ("kubernetes.io/role/internal-elb", "1"))),
        Subnet("subnet-0c2", "us-east-1b", "vpc-0a1", "10.0.2.0/24",
               (OURS, ("Name", "private-b"), ("kubernetes.io/role/internal-elb", "1"))),
    ),
    security_groups=(SecurityGroup("sg-0node"), SecurityGroup("sg-0extra"),
                     SecurityGroup("sg-0node2", (OURS,))),
    named_groups=(("edge-clients", "sg-0named"),),
)
SETTINGS = AwsSettings(extra_tags=(("team", "edge"),))


def spec(*, ports: tuple[tuple[int, str, int | None], ...] = ((80, "TCP", 30080),),
         local: int | None = None, annotations: dict[str, str] | None = None,
         source_ranges: tuple[str, ...] = ("0.0.0.0/0",),
         provider_ids: tuple[str, ...] = ("aws:///us-east-1a/i-0aaa", "aws:///us-east-1b/i-0bbb",
                                          "aws:///us-east-1b/i-0ccc")) -> LoadBalancerSpec:
    return LoadBalancerSpec(
        ref=BalancerRef("lb-shop-web-abcdefghij", CLUSTER,
                        ServiceRef("shop", "web", "0f6c3b1e-1111-2222-3333-444455556666")),
        listeners=tuple(Listener(f"p{i}", proto, port, np)
                        for i, (port, proto, np) in enumerate(ports)),
        targets=tuple(Target(f"node-{i}", pid, (f"10.0.{1 + (i > 0)}.{10 + i}",))
                      for i, pid in enumerate(provider_ids)),
        health_check=HealthCheck("HTTP", local, "/healthz") if local else HealthCheck("TCP", None),
        source_ranges=source_ranges,
        external_traffic_policy="Local" if local else "Cluster",
        annotations=tuple(sorted((annotations or {}).items())))


CASES: dict[str, LoadBalancerSpec] = {
    "one-tcp-port-cluster": spec(),
    "tcp-udp-mixed": spec(ports=((53, "TCP", 30053), (53, "UDP", 30053), (80, "TCP", 30080),
                                 (5353, "UDP", 30535)),
                          source_ranges=("203.0.113.0/24",)),
    "local-policy": spec(local=31999),
    "internal-subnets-private-ips-hc-overrides": spec(annotations={
        A + "internal": "true",
        A + "subnets": "private-a, subnet-0c2",
        A + "private-ipv4-addresses": "10.0.1.200,10.0.2.200",
        A + "healthcheck-protocol": "HTTP", A + "healthcheck-path": "/ready",
        A + "healthcheck-port": "8081", A + "healthcheck-interval": "15",
        A + "healthcheck-timeout": "5", A + "healthcheck-healthy-threshold": "4",
        A + "healthcheck-unhealthy-threshold": "5",
        A + "proxy-protocol": "*", A + "cross-zone-load-balancing-enabled": "true",
        A + "additional-resource-tags": "cost-center=42"}),
    "public-subnets-eips": spec(annotations={
        A + "subnets": "subnet-0e1,public-b",
        A + "eip-allocations": "eipalloc-0aa,eipalloc-0bb",
        A + "target-group-attributes":
            "preserve_client_ip.enabled=false,deregistration_delay.timeout_seconds=30"}),
    "ip-targets": spec(annotations={A + "nlb-target-type": "ip"}),
    "bad-provider-ids-skipped": spec(provider_ids=(
        "aws:///us-east-1a/i-0aaa", "aws:////i-0bbb", "i-0ccc", "gce://p/z/vm", "",
        "aws:///us-east-1a/i-0ddd")),
    "security-groups-annotation": spec(annotations={
        A + "security-groups": "sg-0abc1, edge-clients"}),
    "security-groups-annotation-managed-backend": spec(local=31999, annotations={
        A + "security-groups": "sg-0abc1",
        A + "manage-backend-security-group-rules": "true"}),
    "dualstack-source-ranges": spec(ports=((443, "TCP", 30443), (53, "UDP", 30053)),
                                    annotations={A + "ip-address-type": "dualstack"}),
    "legacy-no-security-groups": spec(source_ranges=("203.0.113.0/24", "198.51.100.0/24")),
    "legacy-ip-targets": spec(annotations={A + "nlb-target-type": "ip"}),
}
LEGACY = {"legacy-no-security-groups", "legacy-ip-targets"}


def build(s: LoadBalancerSpec, legacy: bool = False) -> dict[str, object]:
    return desired(s, parse_annotations(s), SETTINGS, DISCOVERED, legacy=legacy).to_json()


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    got = build(CASES[case], legacy=case in LEGACY)
    path = GOLDEN / f"{case}.json"
    if os.environ.get("LBCTL_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(path.read_text())


def test_pure_and_deterministic() -> None:
    s = CASES["tcp-udp-mixed"]
    assert build(s) == build(s)
    reordered = DISCOVERED.__class__(
        DISCOVERED.vpc_id, DISCOVERED.vpc_cidrs, tuple(reversed(DISCOVERED.instances)),
        tuple(reversed(DISCOVERED.subnets)), DISCOVERED.security_groups)
    assert desired(s, parse_annotations(s), SETTINGS, reordered).to_json() == build(s)


@pytest.mark.parametrize(("provider_id", "expected"), [
    ("aws:///us-east-1a/i-0123abcd", "i-0123abcd"),
    ("aws:////i-0123abcd", "i-0123abcd"),
    ("i-0123abcd", "i-0123abcd"),
    (" aws:///eu-west-1b/i-0f ", "i-0f"),
    ("aws:///us-east-1a/vm-1", None),
    ("gce://project/zone/i-0123", None),
    ("kind://docker/kind/node", None),
    ("", None),
])
def test_instance_ids(provider_id: str, expected: str | None) -> None:
    assert instance_id(provider_id) == expected


@pytest.mark.parametrize(("s", "field"), [
    (spec(ports=((53, "TCP", 30053), (53, "UDP", 30054))), "spec.ports"),
    (spec(ports=((80, "TCP", None),)), "spec.allocateLoadBalancerNodePorts"),
    (spec(annotations={A + "subnets": "subnet-0nope"}),
     f"metadata.annotations[{A}subnets]"),
    (spec(annotations={A + "subnets": "public-a,subnet-0e0"}),  # two in us-east-1a
     f"metadata.annotations[{A}subnets]"),
    (spec(annotations={A + "subnets": "public-a,public-b", A + "eip-allocations": "eipalloc-0a"}),
     f"metadata.annotations[{A}eip-allocations]"),
])
def test_bad_input_names_the_field(s: LoadBalancerSpec, field: str) -> None:
    with pytest.raises(PermanentError) as caught:
        build(s)
    assert caught.value.field == field


def test_no_role_tagged_subnet() -> None:
    bare = Discovered("vpc-0a1", ("10.0.0.0/16",), DISCOVERED.instances, ())
    s = CASES["one-tcp-port-cluster"]
    with pytest.raises(PermanentError, match=r"kubernetes.io/role/elb"):
        desired(s, parse_annotations(s), SETTINGS, bare)


def test_target_node_labels_select_targets() -> None:
    s = spec(annotations={A + "target-node-labels": "pool=edge"})
    got = desired(s, parse_annotations(s), SETTINGS, DISCOVERED,
                  {"node-0": {"pool": "edge"}, "node-1": {"pool": "batch"}})
    assert got.target_groups[0].targets == ("i-0aaa",)
    assert {r.group_id for r in got.sg_rules if r.description.endswith(":traffic")} == {
        "sg-0node"}


def test_names_fit_aws_limits() -> None:
    assert names.load_balancer_name("lb-shop-web-abcdefghij") == "lb-shop-web-abcdefghij"
    long = names.load_balancer_name("x" * 40)
    assert len(long) <= 32 and long.startswith("lb-")
    assert names.load_balancer_name("internal-thing").startswith("lb-")
    for proto in ("TCP", "UDP", "TCP_UDP"):
        for kind in ("instance", "ip"):
            name = names.target_group_name("lb-" + "y" * 29, proto, 32767, kind)
            assert len(name) <= 32 and not name.startswith("a")
    assert names.rule_description("lb-x", "health") == "lbctl:lb-x:health"
    ref = CASES["one-tcp-port-cluster"].ref
    assert names.ref_from_tags(names.ownership_tags(ref)) == ref


def test_an_interval_annotation_alone_keeps_the_timeout_below_it() -> None:
    from providers.aws.annotations import AwsOptions
    from providers.aws.desired import health_check

    s = spec()
    checked = health_check(s, AwsOptions(hc_interval=5))
    assert (checked.interval, checked.timeout) == (5, 4)
    assert health_check(s, AwsOptions(hc_interval=5, hc_timeout=3)).timeout == 3
    assert health_check(s, AwsOptions()).timeout < health_check(s, AwsOptions()).interval


# -- security groups -------------------------------------------------------------------------
FRONTEND = names.frontend_group_name("lb-shop-web-abcdefghij")
BACKEND = names.backend_group_name(CLUSTER)


def node_rules(got: DesiredNlb, group: str) -> list[tuple[str, int, str, str]]:
    return [(r.protocol, r.port, r.source, r.description.rsplit(":", 1)[1])
            for r in got.sg_rules if r.group_id == group]


def test_one_port_cluster_service_costs_one_rule_per_node_group() -> None:
    s = CASES["one-tcp-port-cluster"]
    got = desired(s, parse_annotations(s), SETTINGS, DISCOVERED)
    assert got.security_group_mode == "managed"
    assert got.load_balancer.security_groups == (FRONTEND, BACKEND)
    assert [(g.name, g.role) for g in got.security_groups] == [(FRONTEND, "frontend"),
                                                               (BACKEND, "backend")]
    for group in ("sg-0node", "sg-0node2"):
        assert node_rules(got, group) == [("tcp", 30080, BACKEND, "traffic")]
    assert node_rules(got, FRONTEND) == [("tcp", 80, "0.0.0.0/0", "frontend")]
    frontend = dict(got.security_groups[0].tags)
    assert frontend[names.TAG_BALANCER] == s.name and frontend["Name"] == FRONTEND
    backend = dict(got.security_groups[1].tags)
    assert names.is_backend(backend, CLUSTER) and names.TAG_BALANCER not in backend
    assert names.ref_from_tags(backend) is None  # shared: no balancer owns it


def test_health_port_rule_only_when_it_differs() -> None:
    s = CASES["local-policy"]
    got = desired(s, parse_annotations(s), SETTINGS, DISCOVERED)
    assert node_rules(got, "sg-0node") == [("tcp", 30080, BACKEND, "traffic"),
                                           ("tcp", 31999, BACKEND, "health")]
    udp = spec(ports=((53, "UDP", 30053),))
    got = desired(udp, parse_annotations(udp), SETTINGS, DISCOVERED)
    assert node_rules(got, "sg-0node") == [("tcp", 30053, BACKEND, "health"),
                                           ("udp", 30053, BACKEND, "traffic")]


def test_ip_targets_need_no_vpc_cidrs_with_security_groups() -> None:
    s = CASES["ip-targets"]
    got = desired(s, parse_annotations(s), SETTINGS, DISCOVERED)
    assert not {r.source for r in got.sg_rules} & set(DISCOVERED.vpc_cidrs)
    legacy = desired(s, parse_annotations(s), SETTINGS, DISCOVERED, legacy=True)
    assert set(DISCOVERED.vpc_cidrs) <= {r.source for r in legacy.sg_rules
                                         if r.description.endswith(":traffic")}


def test_legacy_keeps_per_cidr_rules_and_says_so() -> None:
    s = CASES["legacy-no-security-groups"]
    got = desired(s, parse_annotations(s), SETTINGS, DISCOVERED, legacy=True)
    assert got.security_group_mode == "legacy"
    assert got.load_balancer.security_groups == () and got.security_groups == ()
    assert {r.source for r in got.sg_rules} == {"203.0.113.0/24", "198.51.100.0/24",
                                               *DISCOVERED.vpc_cidrs}
    assert any("without security groups" in n for n in got.notes)


def test_annotation_groups_replace_the_frontend() -> None:
    s = CASES["security-groups-annotation"]
    got = desired(s, parse_annotations(s), SETTINGS, DISCOVERED)
    assert got.security_group_mode == "annotation"
    assert got.load_balancer.security_groups == ("sg-0abc1", "sg-0named")
    assert got.security_groups == () and got.sg_rules == ()  # the user admits them (ALBC)
    s = CASES["security-groups-annotation-managed-backend"]
    got = desired(s, parse_annotations(s), SETTINGS, DISCOVERED)
    assert got.load_balancer.security_groups == ("sg-0abc1", BACKEND)
    assert [g.role for g in got.security_groups] == ["backend"]
    assert node_rules(got, "sg-0node") == [("tcp", 30080, BACKEND, "traffic"),
                                           ("tcp", 31999, BACKEND, "health")]
    missing = spec(annotations={A + "security-groups": "nope"})
    with pytest.raises(PermanentError) as caught:
        desired(missing, parse_annotations(missing), SETTINGS, DISCOVERED)
    assert caught.value.field == f"metadata.annotations[{A}security-groups]"


def test_dualstack_frontend_admits_ipv6_by_default() -> None:
    s = CASES["dualstack-source-ranges"]
    got = desired(s, parse_annotations(s), SETTINGS, DISCOVERED)
    assert sorted(node_rules(got, FRONTEND)) == [
        ("tcp", 443, "0.0.0.0/0", "frontend"), ("tcp", 443, "::/0", "frontend"),
        ("udp", 53, "0.0.0.0/0", "frontend"), ("udp", 53, "::/0", "frontend")]


# -- decisions made from what exists (pure: the provider only observes and passes them in) ---
@pytest.mark.parametrize(("existing", "scheme", "legacy"), [
    (None, "internet-facing", False),  # nothing yet: created with groups
    ({"Scheme": "internet-facing", "Type": "network", "SecurityGroups": ["sg-1"]},
     "internet-facing", False),
    ({"Scheme": "internet-facing", "Type": "network"}, "internet-facing", True),
    ({"Scheme": "internet-facing", "Type": "network", "SecurityGroups": []},
     "internet-facing", True),
    ({"Scheme": "internet-facing"}, "internet-facing", True),  # Type missing: network
    ({"Scheme": "internet-facing", "Type": "network"}, "internal", False),  # replaced anyway
    ({"Scheme": "internal", "Type": "application"}, "internal", False),  # not ours to keep
])
def test_keeps_legacy_rules_only_for_an_nlb_without_groups_that_stays(
        existing: dict[str, object] | None, scheme: str, legacy: bool) -> None:
    assert keeps_legacy_rules(existing, scheme) is legacy


def test_own_group_names() -> None:
    s = spec()
    assert own_group_names(s, legacy=False) == (names.frontend_group_name(s.name),
                                                names.backend_group_name(CLUSTER))
    assert own_group_names(s, legacy=True) == ()


def test_options_for_takes_load_balancer_ip_as_private_addresses_of_an_internal_nlb() -> None:
    internal = replace(spec(annotations={A + "internal": "true"}),
                       requested_ips=("10.0.1.7",))
    assert options_for(internal, parse_annotations(internal)).private_ipv4_addresses == (
        "10.0.1.7",)
    both = replace(spec(annotations={A + "internal": "true",
                                     A + "private-ipv4-addresses": "10.0.1.200"}),
                   requested_ips=("10.0.1.7",))
    assert options_for(both, parse_annotations(both)).private_ipv4_addresses == ("10.0.1.200",)
    public = replace(spec(), requested_ips=("203.0.113.9",))
    with pytest.raises(PermanentError) as caught:
        options_for(public, parse_annotations(public))
    assert caught.value.field == "spec.loadBalancerIP"
    assert "eip-allocations" in str(caught.value)


# -- every request a deploy of the goldens sends, checked against botocore's service models ----
SERVICE_MODELS = {"elbv2": "elbv2", "ec2": "ec2", "tagging": "resourcegroupstaggingapi"}
WRITES = {
    "elbv2": {"CreateLoadBalancer", "SetSubnets", "SetIpAddressType", "SetSecurityGroups",
              "AddTags", "CreateTargetGroup", "ModifyTargetGroup", "RegisterTargets",
              "DeregisterTargets", "CreateListener", "ModifyListener", "DeleteListener",
              "ModifyLoadBalancerAttributes", "ModifyTargetGroupAttributes",
              "DeleteTargetGroup"},
    "ec2": {"CreateSecurityGroup", "CreateTags", "AuthorizeSecurityGroupIngress",
            "RevokeSecurityGroupIngress", "UpdateSecurityGroupRuleDescriptionsIngress"},
}
"""Every write `Deployer` can make: a fresh and a drifted deploy of the cases make them all."""


class Recorder:
    """Stands in for `AwsClient`: keeps every request as (service, operation, params) and
    answers the few whose answers a deploy reads as AWS would."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    def _call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.requests.append((service, operation, copy.deepcopy(params)))
        n = len(self.requests)
        if operation == "CreateLoadBalancer":
            return {"LoadBalancers": [{
                "LoadBalancerArn": f"arn:aws:elasticloadbalancing:us-east-1:111122223333:"
                                   f"loadbalancer/net/{params['Name']}/{n:016x}",
                "DNSName": f"{params['Name']}.elb.us-east-1.amazonaws.com",
                "State": {"Code": "provisioning"}}]}
        if operation == "CreateTargetGroup":
            return {"TargetGroups": [{
                **params, "TargetGroupName": params["Name"],
                "TargetGroupArn": f"arn:aws:elasticloadbalancing:us-east-1:111122223333:"
                                  f"targetgroup/{params['Name']}/{n:016x}"}]}
        if operation == "CreateSecurityGroup":
            return {"GroupId": f"sg-0{n:016x}"}
        return {}

    def elbv2(self, operation: str, **params: Any) -> dict[str, Any]:
        return self._call("elbv2", operation, params)

    def ec2(self, operation: str, **params: Any) -> dict[str, Any]:
        return self._call("ec2", operation, params)

    def tagging(self, operation: str, **params: Any) -> dict[str, Any]:
        return self._call("tagging", operation, params)

    def pages(self, service: str, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
        yield self._call(service, operation, params)


@functools.cache
def _input_shape(service: str, operation: str) -> Any:
    session = botocore.session.get_session()
    return session.get_service_model(SERVICE_MODELS[service]).operation_model(
        operation).input_shape


def problems(service: str, operation: str, params: dict[str, Any]) -> str:
    """What botocore's own validator says of a request ("" when it is valid)."""
    report = ParamValidator().validate(params, _input_shape(service, operation))
    return report.generate_report() if report.has_errors() else ""


def drifted(d: DesiredNlb, balancer: str) -> Observed:
    """What AWS might hold for `d` after hands or an older lbctl changed it: other subnets,
    address type, security groups, health checks, listeners and targets, tags and attributes
    missing, a target group and a listener no longer wanted, rules to revoke and relabel.
    Deploying `d` over it makes every modifying request."""
    lb = d.load_balancer
    arn = f"arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/net/{lb.name}/1"
    groups = tuple(ObservedSecurityGroup(f"sg-0own{i}", g.name, g.vpc_id,
                                         {k: v for k, v in g.tags if k != "team"})
                   for i, g in enumerate(d.security_groups))
    ids = {g.name: g.id for g in groups}
    target_groups = {tg.name: ObservedTargetGroup(
        f"{arn}/tg/{tg.name}", tg.name, tg.protocol, tg.port, tg.target_type, tg.vpc_id,
        replace(tg.health_check, interval=tg.health_check.interval + 5), (arn,), {}, {},
        frozenset({*tg.targets[1:], "i-0gone", "10.0.9.9"})) for tg in d.target_groups}
    first = d.target_groups[0]
    target_groups["k8s-old-group"] = replace(target_groups[first.name], arn=f"{arn}/tg/old",
                                             name="k8s-old-group")
    listeners = tuple(ObservedListener(f"{arn}/li/{li.port}", li.port,
                                       "TCP_UDP" if li.protocol != "TCP_UDP" else "TCP",
                                       f"{arn}/tg/old") for li in d.listeners)
    listeners += (ObservedListener(f"{arn}/li/9999", 9999, "TCP", f"{arn}/tg/old"),)
    rules = [replace(resolve(r, ids), description=r.description + "-v0") for r in d.sg_rules]
    rules += [SgRule(r.group_id, "tcp", 1, "10.99.0.0/16", names.rule_description(balancer,
                                                                                   "traffic"))
              for r in rules[:1]]
    observed_lb = ObservedLoadBalancer(
        arn, lb.name, f"{lb.name}.elb.us-east-1.amazonaws.com", "active", lb.scheme, lb.type,
        "dualstack" if lb.ip_address_type == "ipv4" else "ipv4", "vpc-0a1", ("subnet-0old",),
        {}, {}, ("sg-0old",) if lb.security_groups else ())
    return Observed(observed_lb, target_groups, listeners, tuple(rules), groups)


def deploy_requests(case: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The requests of deploying the case's desired NLB into an empty account, then over
    `drifted` AWS."""
    s = CASES[case]
    d = desired(s, parse_annotations(s), SETTINGS, DISCOVERED, legacy=case in LEGACY)
    client = Recorder()
    for observed in (Observed(None, {}, (), (), ()), drifted(d, s.ref.name)):
        Deployer(client, d, observed, cluster=CLUSTER, balancer=s.ref.name,  # type: ignore[arg-type]
                 sleep=lambda _: None).run()
    return client.requests


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_request_of_a_deploy_is_valid_for_botocore(case: str) -> None:
    requests = deploy_requests(case)
    made = {op for _, op, _ in requests}
    assert {"CreateLoadBalancer", "CreateTargetGroup", "CreateListener", "RegisterTargets",
            "ModifyListener", "DeregisterTargets"} <= made
    bad = [f"{op}: {found}" for service, op, params in requests
           if (found := problems(service, op, params))]
    assert bad == []


def test_the_deploys_make_every_write_and_botocore_refuses_broken_copies() -> None:
    """The cases together make every write `Deployer` can make; and the validator is no
    rubber stamp: a copy of each with a parameter of the wrong type, an unknown parameter
    or a required one missing is refused."""
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for case in sorted(CASES):
        for service, op, params in deploy_requests(case):
            first.setdefault((service, op), params)
    assert {(s, op) for s, ops in WRITES.items() for op in ops} <= set(first)
    for (service, op), params in first.items():
        shape = _input_shape(service, op)
        assert problems(service, op, {**params, "Bogus": 1}), op
        name, member = next(iter(shape.members.items()))
        wrong = {"string": 5, "integer": "5", "boolean": "yes", "list": "x",
                 "structure": "x", "map": "x"}[member.type_name]
        assert problems(service, op, {**params, name: wrong}), (op, name)
        for required in shape.required_members:
            assert problems(service, op, {k: v for k, v in params.items() if k != required}), (
                op, required)
    tg = first[("elbv2", "CreateTargetGroup")]
    assert "Port" in problems("elbv2", "CreateTargetGroup", {**tg, "Port": str(tg["Port"])})
