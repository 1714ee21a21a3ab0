"""cloud-provider-azure's Service annotations as lbctl's Azure provider reads them: each bad
one refused naming its key, every problem at once, what lbctl cannot build refused rather than
ignored, and the address annotation checked against spec.loadBalancerIP."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

import providers.azure.annotations as a
from providers.azure.annotations import AzureOptions, options_from, parse_annotations, problems
from providers.errors import PermanentError
from providers.spec import BalancerRef, HealthCheck, LoadBalancerSpec, ServiceRef
from tests.providers.problems import assert_one_problem


def _spec(requested: tuple[str, ...] = (), annotations: Mapping[str, str] | None = None,
          ) -> LoadBalancerSpec:
    return LoadBalancerSpec(ref=BalancerRef("lb-x", "c", ServiceRef("ns", "x", "u")),
                            listeners=(), targets=(), health_check=HealthCheck("TCP", None),
                            requested_ips=requested,
                            annotations=tuple(sorted((annotations or {}).items())))


def test_none_is_an_external_floating_ip_default() -> None:
    assert parse_annotations(_spec()) == AzureOptions()
    assert AzureOptions().floating_ip and AzureOptions().probe_interval == 5


def test_every_annotation_read() -> None:
    found: list[tuple[str, str]] = []
    external = options_from({
        a.PIP_NAME: "web-ip", a.IPV4: "20.1.2.3", a.RESOURCE_GROUP: "ips-rg",
        a.PROBE_PROTOCOL: "https", a.PROBE_PATH: "/ready", a.PROBE_INTERVAL: "10",
        a.PROBE_COUNT: "3", a.IDLE_TIMEOUT: "30", a.DISABLE_FLOATING_IP: "true",
        a.PIP_TAGS: "team=web, cost = 42", a.ALLOWED_IP_RANGES: "203.0.113.0/24,10.1.2.3",
        a.ALLOWED_SERVICE_TAGS: "AzureCloud, Storage.WestEurope"}, found)
    assert found == []
    assert external == AzureOptions(
        pip_name="web-ip", ipv4="20.1.2.3", resource_group="ips-rg", probe_protocol="Https",
        probe_path="/ready", probe_interval=10, probe_count=3, idle_timeout=30,
        floating_ip=False, pip_tags=(("cost", "42"), ("team", "web")),
        allowed_ranges=("203.0.113.0/24", "10.1.2.3/32"),
        service_tags=("AzureCloud", "Storage.WestEurope"))
    internal = options_from({a.INTERNAL: "true", a.INTERNAL_SUBNET: "ilb-subnet",
                             a.IPV4: "10.0.2.9", a.DISABLE_FLOATING_IP: "false"}, found)
    assert found == []
    assert internal == AzureOptions(internal=True, subnet="ilb-subnet", ipv4="10.0.2.9")
    label = options_from({a.DNS_LABEL: "my-web", a.INTERNAL: "false"}, found)
    assert found == [] and label == AzureOptions(dns_label="my-web")


@pytest.mark.parametrize(("annotations", "key", "words"), [
    ({a.INTERNAL: "yes"}, a.INTERNAL, "must be true or false, not 'yes'"),
    ({a.INTERNAL_SUBNET: "s"}, a.INTERNAL_SUBNET, "applies to internal balancers only"),
    ({a.INTERNAL: "true", a.INTERNAL_SUBNET: "bad/subnet"}, a.INTERNAL_SUBNET,
     "must be an Azure resource name"),
    ({a.PIP_NAME: "ip-"}, a.PIP_NAME, "must be an Azure resource name"),
    ({a.INTERNAL: "true", a.PIP_NAME: "ip"}, a.PIP_NAME, "applies to external balancers"),
    ({a.IPV4: "2001:db8::1"}, a.IPV4, "must be an IPv4 address"),
    ({a.IPV4: "10.0.0.300"}, a.IPV4, "must be an IPv4 address"),
    ({a.RESOURCE_GROUP: "rg."}, a.RESOURCE_GROUP, "must be a resource group name"),
    ({a.DNS_LABEL: "My_Web"}, a.DNS_LABEL, "must be a DNS label"),
    ({a.DNS_LABEL: "web", a.PIP_NAME: "ip"}, a.DNS_LABEL, "the public IP lbctl creates"),
    ({a.DNS_LABEL: "web", a.INTERNAL: "true"}, a.DNS_LABEL, "the public IP lbctl creates"),
    ({a.PROBE_PROTOCOL: "grpc"}, a.PROBE_PROTOCOL, "must be Tcp, Http or Https"),
    ({a.PROBE_PATH: "healthz"}, a.PROBE_PATH, "starting with '/'"),
    ({a.PROBE_PROTOCOL: "Tcp", a.PROBE_PATH: "/h"}, a.PROBE_PATH, "Http and Https probes only"),
    ({a.PROBE_INTERVAL: "4"}, a.PROBE_INTERVAL, "an integer from 5 to 120"),
    ({a.PROBE_INTERVAL: "5s"}, a.PROBE_INTERVAL, "not '5s'"),
    ({a.PROBE_COUNT: "0"}, a.PROBE_COUNT, "an integer from 1 to 120"),
    ({a.PROBE_INTERVAL: "30", a.PROBE_COUNT: "5"}, a.PROBE_COUNT, "at most 120 seconds"),
    ({a.IDLE_TIMEOUT: "3"}, a.IDLE_TIMEOUT, "an integer from 4 to 100"),
    ({a.IDLE_TIMEOUT: "101"}, a.IDLE_TIMEOUT, "an integer from 4 to 100"),
    ({a.DISABLE_FLOATING_IP: "1"}, a.DISABLE_FLOATING_IP, "must be true or false"),
    ({a.PIP_TAGS: "a=b,c"}, a.PIP_TAGS, "entry 1 ('c'): must be name=value"),
    ({a.PIP_TAGS: "a/b=c"}, a.PIP_TAGS, "without < > % & \\ ? or /"),
    ({a.PIP_TAGS: "lbctl-cluster=evil"}, a.PIP_TAGS, "is reserved"),
    ({a.INTERNAL: "true", a.PIP_TAGS: "a=b"}, a.PIP_TAGS, "external balancers only"),
    ({a.ALLOWED_IP_RANGES: "10.0.0.0/8,nope"}, a.ALLOWED_IP_RANGES, "entry 1 must be a CIDR"),
    ({a.ALLOWED_SERVICE_TAGS: "AzureCloud,Bad Tag"}, a.ALLOWED_SERVICE_TAGS,
     "entry 1 must be an Azure service tag"),
    ({a.PREFIX + "azure-load-balancer-ipv6": "2001:db8::1"}, a.PREFIX +
     "azure-load-balancer-ipv6", "IPv6 is not supported"),
    ({a.PREFIX + "azure-pip-prefix-id": "/subscriptions/x"}, a.PREFIX + "azure-pip-prefix-id",
     "prefixes are not supported"),
    ({a.PREFIX + "azure-deny-all-except-load-balancer-source-ranges": "true"},
     a.PREFIX + "azure-deny-all-except-load-balancer-source-ranges", "not supported"),
])
def test_each_problem_names_its_annotation(annotations: dict[str, str], key: str,
                                           words: str) -> None:
    found = problems(annotations)
    assert_one_problem(found, f"metadata.annotations[{key}]", words)
    with pytest.raises(PermanentError) as info:
        parse_annotations(_spec(annotations=annotations))
    assert info.value.field == found[0][0]


def test_every_problem_at_once_and_unknown_keys_ignored() -> None:
    found = problems({a.INTERNAL: "x", a.IDLE_TIMEOUT: "1", a.ALLOWED_IP_RANGES: "z",
                      a.PREFIX + "azure-load-balancer-mode": "__auto__",
                      a.PREFIX + "azure-pip-prefix-id": "false",  # off: nothing asked
                      "service.beta.kubernetes.io/aws-load-balancer-type": "nlb"})
    assert [f for f, _ in found] == [f"metadata.annotations[{k}]"
                                     for k in (a.INTERNAL, a.IDLE_TIMEOUT, a.ALLOWED_IP_RANGES)]


def test_a_path_alone_means_an_http_probe_and_blank_values_mean_unset() -> None:
    assert options_from({a.PROBE_PATH: "/healthz"}, []).probe_path == "/healthz"
    assert options_from({a.PIP_NAME: " ", a.DNS_LABEL: "", a.INTERNAL: ""}, []) == \
        AzureOptions()


def test_the_ipv4_annotation_and_load_balancer_ip_must_agree() -> None:
    same = parse_annotations(_spec(("20.1.2.3",), {a.IPV4: "20.1.2.3"}))
    assert same.ipv4 == "20.1.2.3"
    with pytest.raises(PermanentError) as info:
        parse_annotations(_spec(("20.9.9.9",), {a.IPV4: "20.1.2.3"}))
    assert info.value.field == f"metadata.annotations[{a.IPV4}]"
    assert "20.9.9.9" in info.value.detail
