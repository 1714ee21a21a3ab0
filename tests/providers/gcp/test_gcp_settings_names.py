"""The `gcp:` section (every problem named by its key, credentials refused) and the names and
ownership records every GCE object of lbctl's gets (valid GCE names for any input, found again
from the description alone)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.gcp import names
from providers.gcp.settings import GcpSettings, parse_settings, validate_settings
from providers.spec import BalancerRef, ServiceRef
from tests.providers.problems import assert_one_problem

GOOD = {"project": "my-project-123", "region": "us-central1", "network": "prod",
        "subnetwork": "nodes", "endpoint": "http://127.0.0.1:8085/", "nodeTags": ["gke-node"],
        "clusterHealthCheck": "nodePort", "rateLimits": {"write": 2}, "labels": {"team": "web"}}


def test_a_good_section_parses_whole() -> None:
    settings, problems = parse_settings(GOOD, env={})
    assert problems == []
    assert settings == GcpSettings(
        project="my-project-123", region="us-central1", network="prod", subnetwork="nodes",
        endpoint="http://127.0.0.1:8085", node_tags=("gke-node",),
        cluster_health_check="nodePort",
        rate_limits={"read": 20.0, "write": 2.0, "operations": 20.0},
        labels=(("team", "web"),))


@pytest.mark.parametrize(("raw", "expected"), [
    ({"project": "My_Project"}, ("gcp.project", "must be a GCP project ID")),
    ({"region": "central"}, ("gcp.region", "must be a GCP region such as 'us-central1'")),
    ({"network": "Prod"}, ("gcp.network", "must be a resource name")),
    ({"endpoint": "ftp://x"}, ("gcp.endpoint", "must be an http:// or https:// URL")),
    ({"endpoint": "http://u:p@x"}, ("gcp.endpoint", "must not carry a user or password")),
    ({"nodeTags": ["ok", "Not_OK"]}, ("gcp.nodeTags[1]", "must be a network tag")),
    ({"clusterHealthCheck": "tcp"}, ("gcp.clusterHealthCheck", "must be kubeProxy or nodePort")),
    ({"rateLimits": {"write": True}}, ("gcp.rateLimits.write", "must be a number")),
    ({"rateLimits": {"delete": 1}}, ("gcp.rateLimits.delete", "unknown key")),
    ({"labels": {"a.b": "x"}}, ("gcp.labels.a.b", 'label key "a.b" must be')),
    ({"labels": {"lbctl-x": "y"}}, ("gcp.labels.lbctl-x", "is reserved")),
    ({"privateKey": "-----BEGIN"}, ("gcp.privateKey", "credentials come from workload")),
    ({"zone": "us-central1-a"}, ("gcp.zone", "unknown key")),
])
def test_each_problem_names_its_key(raw: dict[str, Any], expected: tuple[str, str]) -> None:
    _, problems = parse_settings({**GOOD, **raw}, env={})
    assert_one_problem(problems, *expected)


def test_all_problems_at_once_and_the_region_is_required() -> None:
    problems = validate_settings({"project": "X", "network": 3, "secretKey": "s"})
    assert [p for p, _ in problems] == ["secretKey", "region", "project", "network"]


def test_the_project_may_come_from_the_environment_and_config_wins() -> None:
    raw = {"region": "europe-west4"}
    assert parse_settings(raw, env={"GOOGLE_CLOUD_PROJECT": "env-project"})[0].project == \
        "env-project"
    assert parse_settings({**raw, "project": "cfg-project"},
                          env={"GOOGLE_CLOUD_PROJECT": "env-project"})[0].project == "cfg-project"
    settings, problems = parse_settings(raw, env={"CLOUDSDK_CORE_PROJECT": "Bad!"})
    assert settings.project == "" and problems[0][0] == "gcp.project"
    assert parse_settings(raw, env={}) == (GcpSettings(region="europe-west4"), [])


REF = BalancerRef("lb-default-web-abcdefghij", "prod",
                  ServiceRef("default", "web", "0f9c2f4e-1111-2222-3333-444455556666"))


def test_names_of_one_balancer_and_of_the_cluster() -> None:
    b = REF.name
    assert names.address(b) == b
    assert names.forwarding_rule(b, "TCP") == f"{b}-tcp"
    assert names.backend_service(b, "UDP") == f"{b}-udp"
    assert (names.service_health_check(b), names.firewall(b), names.health_firewall(b)) == (
        f"{b}-hc", f"{b}-fw", f"{b}-hc-fw")
    assert names.instance_group("prod") == "lbctl-prod"
    assert names.node_health_check("prod") == "lbctl-prod-node-hc"
    assert names.node_health_firewall("prod") == "lbctl-prod-node-hc-fw"
    assert names.instance_group("Prod") != names.instance_group("prod")  # no collision


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=40))
def test_every_name_is_a_valid_gce_name(balancer: str, cluster: str) -> None:
    made = [names.address(balancer), names.forwarding_rule(balancer, "TCP"),
            names.backend_service(balancer, "UDP"), names.service_health_check(balancer),
            names.firewall(balancer), names.health_firewall(balancer),
            names.instance_group(cluster), names.node_health_check(cluster),
            names.node_health_firewall(cluster)]
    for name in made:
        assert names.NAME.fullmatch(name), name
    ref = BalancerRef(balancer, cluster, ServiceRef("ns", "svc", "uid"))
    for key, value in names.labels(ref).items():
        assert names.NAME.fullmatch(key) and len(value) <= 63
        assert all(c.islower() or c.isdigit() or c in "_-" for c in value), value


def test_the_description_records_the_owner_and_is_read_back() -> None:
    text = names.description(REF)
    assert names.ref_from_description(text) == REF
    assert names.is_owned(text, "prod", REF.name)
    assert not names.is_owned(text, "other", REF.name)
    assert not names.is_owned(text, "prod", "lb-someone-else")
    shared = names.cluster_description("prod", "instance group")
    assert names.is_shared(shared, "prod") and not names.is_shared(shared, "other")
    assert names.ref_from_description(shared) is None
    for foreign in (None, "", "made by hand", '{"kubernetes.io/service-name": "a/b"}', "[1]",
                    '{"lbctl.io/cluster": 3}'):
        assert names.ref_from_description(foreign) is None
        assert not names.is_owned(foreign, "prod", REF.name)
