"""The AWS Service annotations: every annotation good and bad, with the exact field and message."""

from __future__ import annotations

from dataclasses import replace

import pytest

from providers.aws.annotation_keys import ANNOTATION_PREFIXES, PREFIX
from providers.aws.annotation_reader import is_subnet_id
from providers.aws.annotations import AwsOptions, parse_annotations, problems
from providers.errors import PermanentError
from providers.spec import BalancerRef, HealthCheck, LoadBalancerSpec, ServiceRef

pytestmark = pytest.mark.unit

DEFAULT = AwsOptions()


def k(suffix: str) -> str:
    """The full annotation key for `aws-load-balancer-<suffix>`."""
    return f"{PREFIX}aws-load-balancer-{suffix}"


def f(suffix: str) -> str:
    """The PermanentError field for `aws-load-balancer-<suffix>`."""
    return f"metadata.annotations[{k(suffix)}]"


def spec_with(annotations: dict[str, str]) -> LoadBalancerSpec:
    return LoadBalancerSpec(
        ref=BalancerRef("lb-ns-name-abc", "c1", ServiceRef("ns", "name", "uid-1")),
        listeners=(), targets=(), health_check=HealthCheck("TCP", None),
        annotations=tuple(sorted(annotations.items())))


GOOD: list[tuple[dict[str, str], AwsOptions]] = [
    ({}, DEFAULT),
    ({"other.io/x": "y", k("name"): "whatever"}, DEFAULT),
    ({k("security-groups"): "sg-1"}, replace(DEFAULT, security_groups=("sg-1",))),
    ({k("security-groups"): "sg-0a1, web clients,,sg-0b2"},
     replace(DEFAULT, security_groups=("sg-0a1", "web clients", "sg-0b2"))),
    ({k("security-groups"): "sg-0a1", k("manage-backend-security-group-rules"): "true"},
     replace(DEFAULT, security_groups=("sg-0a1",), manage_backend_rules=True)),
    ({k("security-groups"): "sg-0a1", k("manage-backend-security-group-rules"): "false"},
     replace(DEFAULT, security_groups=("sg-0a1",))),
    # only meaningful with security-groups (as in the ALBC): lbctl manages the rules anyway
    ({k("manage-backend-security-group-rules"): "false"}, DEFAULT),
    ({k("security-groups"): "sg-1,sg-2,sg-3,sg-4,sg-5"},
     replace(DEFAULT, security_groups=("sg-1", "sg-2", "sg-3", "sg-4", "sg-5"))),
    ({k("type"): "nlb"}, DEFAULT),
    ({k("type"): " nlb "}, DEFAULT),
    ({k("type"): ""}, DEFAULT),
    ({k("type"): "external"}, replace(DEFAULT, scheme="internal")),
    ({k("type"): "external", k("scheme"): "internet-facing"}, DEFAULT),
    ({k("internal"): "true"}, replace(DEFAULT, scheme="internal")),
    ({k("internal"): "True"}, replace(DEFAULT, scheme="internal")),
    ({k("internal"): "1"}, replace(DEFAULT, scheme="internal")),
    ({k("internal"): "0.0.0.0/0"}, replace(DEFAULT, scheme="internal")),
    ({k("internal"): "false"}, DEFAULT),
    ({k("internal"): "false", k("type"): "external"}, DEFAULT),
    ({k("internal"): "  "}, DEFAULT),
    ({k("scheme"): "internal"}, replace(DEFAULT, scheme="internal")),
    ({k("scheme"): "internet-facing"}, DEFAULT),
    ({k("scheme"): "internal", k("internal"): "true"}, replace(DEFAULT, scheme="internal")),
    ({k("scheme"): "internet-facing", k("internal"): "false"}, DEFAULT),
    ({k("nlb-target-type"): "ip"}, replace(DEFAULT, target_type="ip")),
    ({k("nlb-target-type"): "instance"}, DEFAULT),
    ({k("subnets"): "subnet-0a1b2c3d, public-a,,subnet-0123456789abcdef0"},
     replace(DEFAULT, subnets=("subnet-0a1b2c3d", "public-a", "subnet-0123456789abcdef0"))),
    ({k("eip-allocations"): "eipalloc-0a1, eipalloc-0b2"},
     replace(DEFAULT, eip_allocations=("eipalloc-0a1", "eipalloc-0b2"))),
    ({k("eip-allocations"): "eipalloc-0a1,eipalloc-0b2", k("subnets"): "subnet-1,subnet-2"},
     replace(DEFAULT, eip_allocations=("eipalloc-0a1", "eipalloc-0b2"),
             subnets=("subnet-1", "subnet-2"))),
    ({k("private-ipv4-addresses"): "10.0.1.10,10.0.2.10", k("scheme"): "internal"},
     replace(DEFAULT, scheme="internal", private_ipv4_addresses=("10.0.1.10", "10.0.2.10"))),
    ({k("private-ipv4-addresses"): "10.0.1.10", k("internal"): "true", k("subnets"): "a"},
     replace(DEFAULT, scheme="internal", private_ipv4_addresses=("10.0.1.10",),
             subnets=("a",))),
    ({k("healthcheck-protocol"): "http"}, replace(DEFAULT, hc_protocol="HTTP")),
    ({k("healthcheck-protocol"): "HTTPS"}, replace(DEFAULT, hc_protocol="HTTPS")),
    ({k("healthcheck-protocol"): "TCP"}, replace(DEFAULT, hc_protocol="TCP")),
    ({k("healthcheck-port"): "traffic-port"}, replace(DEFAULT, hc_port="traffic-port")),
    ({k("healthcheck-port"): "10256"}, replace(DEFAULT, hc_port="10256")),
    ({k("healthcheck-port"): "080"}, replace(DEFAULT, hc_port="80")),
    ({k("healthcheck-path"): "/healthz"}, replace(DEFAULT, hc_path="/healthz")),
    ({k("healthcheck-path"): "/ready", k("healthcheck-protocol"): "HTTPS"},
     replace(DEFAULT, hc_path="/ready", hc_protocol="HTTPS")),
    ({k("healthcheck-interval"): "5", k("healthcheck-timeout"): "2"},
     replace(DEFAULT, hc_interval=5, hc_timeout=2)),
    ({k("healthcheck-interval"): "300", k("healthcheck-timeout"): "120"},
     replace(DEFAULT, hc_interval=300, hc_timeout=120)),
    ({k("healthcheck-timeout"): "60"}, replace(DEFAULT, hc_timeout=60)),
    ({k("healthcheck-healthy-threshold"): "2", k("healthcheck-unhealthy-threshold"): "10"},
     replace(DEFAULT, hc_healthy_threshold=2, hc_unhealthy_threshold=10)),
    ({k("proxy-protocol"): "*"}, replace(DEFAULT, proxy_protocol=True)),
    ({k("cross-zone-load-balancing-enabled"): "true"}, replace(DEFAULT, cross_zone=True)),
    ({k("cross-zone-load-balancing-enabled"): "false"}, replace(DEFAULT, cross_zone=False)),
    ({k("target-group-attributes"): "preserve_client_ip.enabled=false"},
     replace(DEFAULT, preserve_client_ip=False)),
    ({k("target-group-attributes"): " deregistration_delay.timeout_seconds = 0 ,"
                                    "preserve_client_ip.enabled=true"},
     replace(DEFAULT, deregistration_delay=0, preserve_client_ip=True)),
    ({k("target-group-attributes"): "deregistration_delay.timeout_seconds=3600"},
     replace(DEFAULT, deregistration_delay=3600)),
    ({k("target-group-attributes"): "proxy_protocol_v2.enabled=true"},
     replace(DEFAULT, proxy_protocol=True)),
    ({k("target-group-attributes"): "proxy_protocol_v2.enabled=false"}, DEFAULT),
    ({k("target-group-attributes"): "proxy_protocol_v2.enabled=true", k("proxy-protocol"): "*"},
     replace(DEFAULT, proxy_protocol=True)),
    ({k("additional-resource-tags"): "team=web, cost-center=42,empty=,bare,x=a=b"},
     replace(DEFAULT, additional_tags=(("bare", ""), ("cost-center", "42"), ("empty", ""),
                                       ("team", "web"), ("x", "a=b")))),
    ({k("additional-resource-tags"): "kubernetes.io/service-name=x,Name=my lb"},
     replace(DEFAULT, additional_tags=(("Name", "my lb"),
                                       ("kubernetes.io/service-name", "x")))),
    ({k("target-node-labels"): "node.kubernetes.io/lb=yes,pool=,zone=a"},
     replace(DEFAULT, target_node_labels=(("node.kubernetes.io/lb", "yes"), ("pool", ""),
                                          ("zone", "a")))),
    ({k("ip-address-type"): "dualstack"}, replace(DEFAULT, ip_address_type="dualstack")),
    ({k("ip-address-type"): "ipv4"}, DEFAULT),
    ({k("backend-protocol"): "tcp"}, DEFAULT),
    ({k("backend-protocol"): "TCP"}, DEFAULT),
]


@pytest.mark.parametrize(("annotations", "expected"), GOOD)
def test_good_annotations(annotations: dict[str, str], expected: AwsOptions) -> None:
    assert problems(annotations) == []
    assert parse_annotations(spec_with(annotations)) == expected


DELAY = "deregistration_delay.timeout_seconds"
BAD: list[tuple[dict[str, str], list[tuple[str, str]]]] = [
    ({k("type"): "classic"},
     [("type", '"classic" is not supported: lbctl builds Network Load Balancers only; use '
               '"nlb" or "external", or leave the annotation out')]),
    ({k("type"): "NLB"},
     [("type", '"NLB" is not supported: lbctl builds Network Load Balancers only; use '
               '"nlb" or "external", or leave the annotation out')]),
    ({k("type"): "nlb-ip"},
     [("type", '"nlb-ip" is not supported: lbctl builds Network Load Balancers only; use '
               '"nlb" or "external", or leave the annotation out')]),
    ({k("ssl-cert"): "arn:aws:acm:us-east-1:123:certificate/abc"},
     [("ssl-cert", "TLS listeners are not supported by lbctl's NLBs yet: "
                   'aws-load-balancer-ssl-cert is "arn:aws:acm:us-east-1:123:certificate/abc"; '
                   "remove it to pass TCP through to the targets")]),
    ({k("ssl-ports"): "443"},
     [("ssl-ports", "TLS listeners are not supported by lbctl's NLBs yet: "
                    'aws-load-balancer-ssl-ports is "443"; remove it to pass TCP through to '
                    "the targets")]),
    ({k("backend-protocol"): "ssl"},
     [("backend-protocol", "TLS listeners are not supported by lbctl's NLBs yet: "
                           'aws-load-balancer-backend-protocol is "ssl"; remove it to pass TCP '
                           "through to the targets")]),
    ({k("internal"): "yes"},
     [("internal", '"yes" is not a boolean: use "true" or "false" (or the legacy '
                   '"0.0.0.0/0", meaning true)')]),
    ({k("scheme"): "public"},
     [("scheme", '"public" is not a scheme: use "internet-facing" or "internal"')]),
    ({k("scheme"): "internet-facing", k("internal"): "true"},
     [("scheme", '"internet-facing" contradicts aws-load-balancer-internal ("true", meaning '
                 'internal): remove one of the two annotations')]),
    ({k("scheme"): "internal", k("internal"): "false"},
     [("scheme", '"internal" contradicts aws-load-balancer-internal ("false", meaning '
                 'internet-facing): remove one of the two annotations')]),
    ({k("nlb-target-type"): "pod"},
     [("nlb-target-type", '"pod" is not a target type: use "instance" or "ip"')]),
    ({k("subnets"): "subnet-1,subnet-1"}, [("subnets", '"subnet-1" is listed twice')]),
    ({k("subnets"): " , "},
     [("subnets", '"," lists no subnets: give a comma-separated list, or remove the '
                  "annotation")]),
    ({k("subnets"): "x" * 257},
     [("subnets", f'"{"x" * 40}..." is neither a subnet ID nor a Name tag: Name tags have at '
                  "most 256 characters")]),
    ({k("eip-allocations"): "eipalloc-0a1,10.0.0.1"},
     [("eip-allocations", '"10.0.0.1" is not an Elastic IP allocation ID: use "eipalloc-" '
                          'and hexadecimal digits, e.g. "eipalloc-0123456789abcdef0"')]),
    ({k("eip-allocations"): "eipalloc-0a1,eipalloc-0a1"},
     [("eip-allocations", '"eipalloc-0a1" is listed twice')]),
    ({k("eip-allocations"): "eipalloc-0a1", k("scheme"): "internal"},
     [("eip-allocations", "Elastic IPs need an internet-facing balancer, but the scheme is "
                          'internal (aws-load-balancer-scheme is "internal")')]),
    ({k("eip-allocations"): "eipalloc-0a1", k("internal"): "0.0.0.0/0"},
     [("eip-allocations", "Elastic IPs need an internet-facing balancer, but the scheme is "
                          'internal (aws-load-balancer-internal is "0.0.0.0/0")')]),
    ({k("eip-allocations"): "eipalloc-0a1", k("type"): "external"},
     [("eip-allocations", "Elastic IPs need an internet-facing balancer, but the scheme is "
                          'internal ("internal" is the default with aws-load-balancer-type '
                          '"external")')]),
    ({k("eip-allocations"): "eipalloc-0a1", k("subnets"): "subnet-1,subnet-2"},
     [("eip-allocations", "1 EIP allocations for 2 subnets (aws-load-balancer-subnets): give "
                          "exactly one per subnet, in the same order")]),
    ({k("private-ipv4-addresses"): "10.0.0.1", k("internal"): "true", k("subnets"): "a,b"},
     [("private-ipv4-addresses", "1 private IPv4 addresses for 2 subnets "
                                 "(aws-load-balancer-subnets): give exactly one per subnet, in "
                                 "the same order")]),
    ({k("private-ipv4-addresses"): "10.0.0.1"},
     [("private-ipv4-addresses", "private IPv4 addresses need an internal balancer, but the "
                                 'scheme is internet-facing ("internet-facing" is the '
                                 "default)")]),
    ({k("private-ipv4-addresses"): "10.0.0.1", k("scheme"): "internet-facing"},
     [("private-ipv4-addresses", "private IPv4 addresses need an internal balancer, but the "
                                 "scheme is internet-facing (aws-load-balancer-scheme is "
                                 '"internet-facing")')]),
    ({k("private-ipv4-addresses"): "fd00::1,10.0.0.300", k("scheme"): "internal"},
     [("private-ipv4-addresses", '"fd00::1" is not an IPv4 address'),
      ("private-ipv4-addresses", '"10.0.0.300" is not an IPv4 address')]),
    ({k("healthcheck-protocol"): "UDP"},
     [("healthcheck-protocol", '"UDP" is not a health-check protocol: use "TCP", "HTTP" or '
                               '"HTTPS"')]),
    ({k("healthcheck-port"): "0"},
     [("healthcheck-port", '"0" is not a port: use "traffic-port" or a number from 1 to '
                           "65535")]),
    ({k("healthcheck-port"): "http"},
     [("healthcheck-port", '"http" is not a port: use "traffic-port" or a number from 1 to '
                           "65535")]),
    ({k("healthcheck-port"): "65536"},
     [("healthcheck-port", '"65536" is not a port: use "traffic-port" or a number from 1 to '
                           "65535")]),
    ({k("healthcheck-path"): "healthz"},
     [("healthcheck-path", '"healthz" is not a health-check path: it must start with "/", '
                           "have no spaces and at most 1024 characters")]),
    ({k("healthcheck-path"): "/a b"},
     [("healthcheck-path", '"/a b" is not a health-check path: it must start with "/", '
                           "have no spaces and at most 1024 characters")]),
    ({k("healthcheck-path"): "/" + "a" * 1024},
     [("healthcheck-path", f'"/{"a" * 1024}" is not a health-check path: it must start with '
                           '"/", have no spaces and at most 1024 characters')]),
    ({k("healthcheck-path"): "/healthz", k("healthcheck-protocol"): "tcp"},
     [("healthcheck-path", 'a path ("/healthz") needs protocol HTTP or HTTPS, but '
                           'aws-load-balancer-healthcheck-protocol is "tcp"')]),
    ({k("healthcheck-interval"): "4"},
     [("healthcheck-interval", '"4" is out of range: use a whole number of seconds from 5 to '
                               "300")]),
    ({k("healthcheck-interval"): "301"},
     [("healthcheck-interval", '"301" is out of range: use a whole number of seconds from 5 '
                               "to 300")]),
    ({k("healthcheck-interval"): "10s"},
     [("healthcheck-interval", '"10s" is out of range: use a whole number of seconds from 5 '
                               "to 300")]),
    ({k("healthcheck-timeout"): "1"},
     [("healthcheck-timeout", '"1" is out of range: use a whole number of seconds from 2 to '
                              "120")]),
    ({k("healthcheck-timeout"): "121"},
     [("healthcheck-timeout", '"121" is out of range: use a whole number of seconds from 2 to '
                              "120")]),
    ({k("healthcheck-interval"): "10", k("healthcheck-timeout"): "10"},
     [("healthcheck-timeout", '"10" must be less than the interval '
                              '(aws-load-balancer-healthcheck-interval is "10")')]),
    ({k("healthcheck-healthy-threshold"): "1"},
     [("healthcheck-healthy-threshold", '"1" is out of range: use a whole number of checks '
                                        "from 2 to 10")]),
    ({k("healthcheck-unhealthy-threshold"): "11"},
     [("healthcheck-unhealthy-threshold", '"11" is out of range: use a whole number of checks '
                                          "from 2 to 10")]),
    ({k("healthcheck-unhealthy-threshold"): "-3"},
     [("healthcheck-unhealthy-threshold", '"-3" is out of range: use a whole number of checks '
                                          "from 2 to 10")]),
    ({k("proxy-protocol"): "true"},
     [("proxy-protocol", '"true" is not supported: the only value is "*" (PROXY protocol v2 '
                         "on every listener); remove the annotation to turn it off")]),
    ({k("cross-zone-load-balancing-enabled"): "yes"},
     [("cross-zone-load-balancing-enabled", '"yes" is not a boolean: use "true" or "false"')]),
    ({k("target-group-attributes"): "stickiness.enabled=true"},
     [("target-group-attributes", '"stickiness.enabled" is not an attribute lbctl supports: '
                                  "use preserve_client_ip.enabled, "
                                  "deregistration_delay.timeout_seconds, "
                                  "proxy_protocol_v2.enabled")]),
    ({k("target-group-attributes"): "preserve_client_ip.enabled"},
     [("target-group-attributes", '"preserve_client_ip.enabled" is not key=value: use '
                                  '"k1=v1,k2=v2"')]),
    ({k("target-group-attributes"): "=true"},
     [("target-group-attributes", '"=true" has no key before "=": use "k1=v1,k2=v2"')]),
    ({k("target-group-attributes"): "preserve_client_ip.enabled=yes"},
     [("target-group-attributes", 'preserve_client_ip.enabled "yes" is not a boolean: use '
                                  '"true" or "false"')]),
    ({k("target-group-attributes"): f"{DELAY}=3601,{DELAY}=5"},
     [("target-group-attributes", f'{DELAY} "3601" is out of range: use a whole number of '
                                  "seconds from 0 to 3600"),
      ("target-group-attributes", f'"{DELAY}" is given twice')]),
    ({k("target-group-attributes"): f"{DELAY}=-1"},
     [("target-group-attributes", f'{DELAY} "-1" is out of range: use a whole number of '
                                  "seconds from 0 to 3600")]),
    ({k("target-group-attributes"): "proxy_protocol_v2.enabled=false", k("proxy-protocol"): "*"},
     [("target-group-attributes", 'proxy_protocol_v2.enabled "false" contradicts '
                                  'aws-load-balancer-proxy-protocol ("*"): remove one of the '
                                  "two")]),
    ({k("additional-resource-tags"): "lbctl.io/owner=me"},
     [("additional-resource-tags", 'tag key "lbctl.io/owner" is reserved: lbctl writes its '
                                   "ownership tags under lbctl.io/ and kubernetes.io/cluster/")]),
    ({k("additional-resource-tags"): "kubernetes.io/cluster/c1=owned"},
     [("additional-resource-tags", 'tag key "kubernetes.io/cluster/c1" is reserved: lbctl '
                                   "writes its ownership tags under lbctl.io/ and "
                                   "kubernetes.io/cluster/")]),
    ({k("additional-resource-tags"): "AWS:x=1"},
     [("additional-resource-tags", 'tag key "AWS:x" is reserved: AWS keeps the "aws:" prefix '
                                   "for its own tags")]),
    ({k("additional-resource-tags"): f"{'k' * 129}=v"},
     [("additional-resource-tags", f'tag key "{"k" * 129}" must be 1 to 128 characters long '
                                   "(it has 129)")]),
    ({k("additional-resource-tags"): f"k={'v' * 257}"},
     [("additional-resource-tags", 'the value of tag "k" must be at most 256 characters long '
                                   "(it has 257)")]),
    ({k("additional-resource-tags"): "a=b,a=c"},
     [("additional-resource-tags", '"a" is given twice')]),
    ({k("additional-resource-tags"): "team=web;ops"},
     [("additional-resource-tags", 'tag value "web;ops" has characters AWS refuses in tags: '
                                   "';' (allowed: letters, digits, spaces and _ . : / = + - "
                                   "@)")]),
    ({k("target-node-labels"): "pool"},
     [("target-node-labels", '"pool" is not key=value: use "k1=v1,k2=v2"')]),
    ({k("target-node-labels"): "Example.com/x=y"},
     [("target-node-labels", 'label key "Example.com/x" has an invalid prefix "Example.com": '
                             "it must be a DNS subdomain (lowercase alphanumerics, '-' and "
                             "'.') of at most 253 characters")]),
    ({k("target-node-labels"): "-x=y"},
     [("target-node-labels", 'label key "-x" is not a valid label name: at most 63 '
                             "characters, alphanumerics, '-', '_' and '.', starting and ending "
                             "with an alphanumeric")]),
    ({k("target-node-labels"): "x=y z"},
     [("target-node-labels", 'label value "y z" of "x" is not a valid label value: at most 63 '
                             "characters, alphanumerics, '-', '_' and '.', starting and ending "
                             "with an alphanumeric")]),
    ({k("ip-address-type"): "ipv6"},
     [("ip-address-type", '"ipv6" is not an IP address type: use "ipv4" or "dualstack"')]),
    ({k("security-groups"): "sg-xyz"},
     [("security-groups", '"sg-xyz" is not a security group ID: use "sg-" and hexadecimal '
                          'digits, e.g. "sg-0123456789abcdef0", or the group\'s Name tag')]),
    ({k("security-groups"): "sg-1,sg-1"}, [("security-groups", '"sg-1" is listed twice')]),
    ({k("security-groups"): " , "},
     [("security-groups", '"," lists no security groups: give a comma-separated list, or '
                          "remove the annotation")]),
    ({k("security-groups"): "sg-1,sg-2,sg-3,sg-4,sg-5,sg-6"},
     [("security-groups", "6 security groups: an NLB takes at most 5")]),
    ({k("security-groups"): "sg-1,sg-2,sg-3,sg-4,sg-5",
      k("manage-backend-security-group-rules"): "true"},
     [("security-groups", "5 security groups: an NLB takes at most 4 (one place is the shared "
                          "backend group)")]),
    ({k("security-groups"): "sg-1", k("manage-backend-security-group-rules"): "yes"},
     [("manage-backend-security-group-rules", '"yes" is not a boolean: use "true" or '
                                              '"false"')]),
]


@pytest.mark.parametrize(("annotations", "expected"), BAD)
def test_bad_annotations(annotations: dict[str, str],
                         expected: list[tuple[str, str]]) -> None:
    want = [(f(suffix), message) for suffix, message in expected]
    assert problems(annotations) == want
    with pytest.raises(PermanentError) as caught:
        parse_annotations(spec_with(annotations))
    assert (caught.value.field, caught.value.detail) == want[0]
    assert str(caught.value) == f"{want[0][0]}: {want[0][1]}"


def test_problems_reports_everything_in_a_fixed_order() -> None:
    annotations = {
        k("ip-address-type"): "ipv6",
        k("healthcheck-interval"): "1",
        k("ssl-cert"): "arn:x",
        k("scheme"): "public",
        k("type"): "classic",
    }
    assert [field for field, _ in problems(annotations)] == [
        f("type"), f("ssl-cert"), f("scheme"), f("healthcheck-interval"), f("ip-address-type")]
    with pytest.raises(PermanentError) as caught:
        parse_annotations(spec_with(annotations))
    assert caught.value.field == f("type")


def test_only_the_first_bad_scheme_source_decides() -> None:
    # A bad -internal is reported once; a valid -scheme alone then decides the scheme.
    assert problems({k("internal"): "maybe", k("scheme"): "internal"}) == [
        (f("internal"), '"maybe" is not a boolean: use "true" or "false" (or the legacy '
                        '"0.0.0.0/0", meaning true)')]


def test_timeout_and_interval_each_checked_alone_first() -> None:
    assert problems({k("healthcheck-interval"): "400", k("healthcheck-timeout"): "100"}) == [
        (f("healthcheck-interval"), '"400" is out of range: use a whole number of seconds from '
                                    "5 to 300")]


def test_is_subnet_id() -> None:
    assert is_subnet_id("subnet-0a1b2c3d")
    assert is_subnet_id("subnet-0123456789abcdef0")
    assert not is_subnet_id("public-a")
    assert not is_subnet_id("subnet-public")


def test_annotations_reach_the_spec_through_build_spec() -> None:
    """`build_spec` keeps only annotations under the well-known or the provider's prefixes."""
    from lbctl.controller.config import parse_config
    from lbctl.controller.records import service_view
    from lbctl.controller.spec_builder import build_spec

    notes = {k("scheme"): "internal", k("subnets"): "subnet-0a1", k("future-thing"): "x",
             "unrelated.io/x": "y"}
    raw = {"metadata": {"namespace": "shop", "name": "web", "uid": "u-1",
                        "resourceVersion": "1", "annotations": notes},
           "spec": {"type": "LoadBalancer", "ipFamilies": ["IPv4"],
                    "ports": [{"name": "tcp", "protocol": "TCP", "port": 80,
                               "nodePort": 30080}]}}
    spec = build_spec(service_view(raw), [], parse_config("clusterName: c1\n"),
                      annotation_prefixes=ANNOTATION_PREFIXES)
    assert "unrelated.io/x" not in dict(spec.annotations)
    assert parse_annotations(spec) == replace(DEFAULT, scheme="internal",
                                              subnets=("subnet-0a1",))
