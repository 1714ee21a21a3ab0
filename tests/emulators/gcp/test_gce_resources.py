"""Each emulated resource through its real SDK client: create, read, list, change, delete.

What a provider does with them: regional and global health checks (PATCH merges, PUT
replaces), firewalls, instance groups and their members, backend services (fingerprinted
updates, getHealth), addresses and forwarding rules (labels with their fingerprint), list
pages and filters, aggregated lists, and the read-only world (instances, networks,
subnetworks).
"""

from __future__ import annotations

from typing import Any

import pytest

from lbctl.emulators.gcp.server import GceEmulator

from .conftest import Gce, reason

pytestmark = pytest.mark.integration


def names(items: Any) -> list[str]:
    return [item.name for item in items]


def test_regional_health_check_create_patch_update_delete(cloud: Gce) -> None:
    p, r = cloud.project, cloud.region
    cloud.health_check("hc", port=10256)
    check = cloud.checks.get(project=p, region=r, health_check="hc")
    assert (check.type_, check.http_health_check.port, check.http_health_check.request_path) == (
        "HTTP", 10256, "/healthz")
    assert (check.check_interval_sec, check.timeout_sec, check.healthy_threshold,
            check.unhealthy_threshold) == (5, 5, 2, 2)
    assert check.self_link == cloud.link(f"regions/{r}/healthChecks/hc")
    assert check.region == cloud.link(f"regions/{r}")

    cloud.ok(cloud.checks.patch_unary(project=p, region=r, health_check="hc",
                                      health_check_resource=cloud.c.HealthCheck(
                                          check_interval_sec=8, unhealthy_threshold=3)))
    check = cloud.checks.get(project=p, region=r, health_check="hc")
    assert (check.check_interval_sec, check.unhealthy_threshold) == (8, 3)
    assert check.http_health_check.port == 10256  # a PATCH merges

    cloud.ok(cloud.checks.update_unary(project=p, region=r, health_check="hc",
                                       health_check_resource=cloud.c.HealthCheck(
                                           name="hc", type_="TCP",
                                           tcp_health_check=cloud.c.TCPHealthCheck(port=30080))))
    check = cloud.checks.get(project=p, region=r, health_check="hc")
    assert (check.type_, check.tcp_health_check.port, check.check_interval_sec) == (
        "TCP", 30080, 5)  # a PUT replaces: defaults again
    assert "http_health_check" not in check

    cloud.ok(cloud.checks.delete_unary(project=p, region=r, health_check="hc"))
    with pytest.raises(cloud.errors.NotFound) as caught:
        cloud.checks.get(project=p, region=r, health_check="hc")
    assert reason(caught.value) == "notFound"


def test_global_health_check_uses_global_operations(cloud: Gce) -> None:
    p = cloud.project
    op = cloud.global_checks.insert_unary(project=p, health_check_resource=cloud.c.HealthCheck(
        name="ghc", type_="TCP", tcp_health_check=cloud.c.TCPHealthCheck(port=10256)))
    assert not op.region and not op.zone
    assert op.self_link == cloud.link(f"global/operations/{op.name}")
    cloud.ok(op)
    assert names(cloud.global_checks.list(project=p)) == ["ghc"]
    assert names(cloud.checks.list(project=p, region=cloud.region)) == []
    cloud.ok(cloud.global_checks.delete_unary(project=p, health_check="ghc"))


def test_firewall_create_patch_update_delete(cloud: Gce) -> None:
    p = cloud.project
    seeded = names(cloud.firewalls.list(project=p))
    assert seeded == ["default-allow-internal", "default-allow-ssh"]
    cloud.ok(cloud.firewalls.insert_unary(project=p, firewall_resource=cloud.c.Firewall(
        name="fw", description='{"service":"ns/web"}',
        allowed=[cloud.c.Allowed(I_p_protocol="tcp", ports=["80", "8000-8080"])],
        source_ranges=["10.0.0.0/8"], target_tags=[cloud.world.node_tag])))
    rule = cloud.firewalls.get(project=p, firewall="fw")
    assert rule.network == cloud.link("global/networks/default")
    assert (rule.direction, rule.priority, list(rule.target_tags)) == (
        "INGRESS", 1000, ["kubernetes-node"])
    assert [(a.I_p_protocol, list(a.ports)) for a in rule.allowed] == [
        ("tcp", ["80", "8000-8080"])]

    cloud.ok(cloud.firewalls.patch_unary(project=p, firewall="fw", firewall_resource=cloud.c.
                                         Firewall(source_ranges=["192.0.2.0/24"])))
    rule = cloud.firewalls.get(project=p, firewall="fw")
    assert list(rule.source_ranges) == ["192.0.2.0/24"]
    assert rule.description == '{"service":"ns/web"}'

    cloud.ok(cloud.firewalls.update_unary(project=p, firewall="fw", firewall_resource=cloud.c.
                                          Firewall(name="fw", allowed=[cloud.c.Allowed(
                                              I_p_protocol="udp", ports=["53"])])))
    rule = cloud.firewalls.get(project=p, firewall="fw")
    assert [a.I_p_protocol for a in rule.allowed] == ["udp"]
    assert not rule.description and not rule.target_tags
    cloud.ok(cloud.firewalls.delete_unary(project=p, firewall="fw"))
    assert names(cloud.firewalls.list(project=p)) == seeded


def test_instance_group_members_named_ports_and_delete(cloud: Gce) -> None:
    p, zone = cloud.project, cloud.zones[0]
    path = cloud.group(zone, "ig")
    group = cloud.groups.get(project=p, zone=zone, instance_group="ig")
    assert group.size == 2 and group.zone == cloud.link(f"zones/{zone}")
    assert group.network == cloud.link("global/networks/default")
    assert path == f"zones/{zone}/instanceGroups/ig"

    members = list(cloud.groups.list_instances(
        request=cloud.c.ListInstancesInstanceGroupsRequest(
            project=p, zone=zone, instance_group="ig", max_results=1,
            instance_groups_list_instances_request_resource=cloud.c.
            InstanceGroupsListInstancesRequest(instance_state="ALL"))))
    assert [m.instance.rsplit("/", 1)[1] for m in members] == [
        "kubernetes-node-1", "kubernetes-node-3"]
    assert {m.status for m in members} == {"RUNNING"}

    cloud.ok(cloud.groups.remove_instances_unary(
        project=p, zone=zone, instance_group="ig",
        instance_groups_remove_instances_request_resource=cloud.c.
        InstanceGroupsRemoveInstancesRequest(instances=cloud.instance_refs(
            zone, ["kubernetes-node-1"]).instances)))
    assert cloud.groups.get(project=p, zone=zone, instance_group="ig").size == 1

    fingerprint = cloud.groups.get(project=p, zone=zone, instance_group="ig").fingerprint
    cloud.ok(cloud.groups.set_named_ports_unary(
        project=p, zone=zone, instance_group="ig",
        instance_groups_set_named_ports_request_resource=cloud.c.
        InstanceGroupsSetNamedPortsRequest(fingerprint=fingerprint, named_ports=[
            cloud.c.NamedPort(name="http", port=30080)])))
    group = cloud.groups.get(project=p, zone=zone, instance_group="ig")
    assert [(n.name, n.port) for n in group.named_ports] == [("http", 30080)]
    assert group.fingerprint != fingerprint

    cloud.ok(cloud.groups.delete_unary(project=p, zone=zone, instance_group="ig"))
    assert names(cloud.groups.list(project=p, zone=zone)) == []


def test_backend_service_fingerprinted_patch_update_and_get_health(
        cloud: Gce, gce: GceEmulator) -> None:
    p, r = cloud.project, cloud.region
    cloud.health_check("hc")
    groups = [cloud.group(zone) for zone in cloud.zones]
    cloud.backend_service("bs", groups[:1])
    service = cloud.services.get(project=p, region=r, backend_service="bs")
    assert (service.load_balancing_scheme, service.protocol, service.session_affinity) == (
        "EXTERNAL", "TCP", "NONE")
    assert list(service.health_checks) == [cloud.link(f"regions/{r}/healthChecks/hc")]
    assert [b.group for b in service.backends] == [cloud.link(groups[0])]

    cloud.ok(cloud.services.patch_unary(
        project=p, region=r, backend_service="bs", backend_service_resource=cloud.c.
        BackendService(fingerprint=service.fingerprint, session_affinity="CLIENT_IP",
                       backends=[cloud.c.Backend(group=g, balancing_mode="CONNECTION")
                                 for g in groups])))
    patched = cloud.services.get(project=p, region=r, backend_service="bs")
    assert patched.session_affinity == "CLIENT_IP" and len(patched.backends) == 2
    assert patched.fingerprint != service.fingerprint

    patched.protocol = "UDP"
    cloud.ok(cloud.services.update_unary(project=p, region=r, backend_service="bs",
                                         backend_service_resource=patched))
    assert cloud.services.get(project=p, region=r, backend_service="bs").protocol == "UDP"

    gce.set_health(f"zones/{cloud.zones[0]}/instances/kubernetes-node-3", "UNHEALTHY")
    health = cloud.services.get_health(
        project=p, region=r, backend_service="bs",
        resource_group_reference_resource=cloud.c.ResourceGroupReference(group=groups[0]))
    states = {s.instance.rsplit("/", 1)[1]: (s.health_state, s.ip_address, s.port)
              for s in health.health_status}
    ips = {n.name: n.ip for n in cloud.world.nodes}
    assert states == {"kubernetes-node-1": ("HEALTHY", ips["kubernetes-node-1"], 10256),
                      "kubernetes-node-3": ("UNHEALTHY", ips["kubernetes-node-3"], 10256)}

    cloud.ok(cloud.services.delete_unary(project=p, region=r, backend_service="bs"))
    with pytest.raises(cloud.errors.NotFound):
        cloud.services.get(project=p, region=r, backend_service="bs")


def test_addresses_external_internal_and_labels(cloud: Gce) -> None:
    p, r = cloud.project, cloud.region
    external = cloud.address("ext", labels={"lbctl-cluster": "kubernetes"})
    assert external.address.startswith("35.200.")
    assert (external.address_type, external.network_tier, external.status) == (
        "EXTERNAL", "PREMIUM", "RESERVED")
    assert dict(external.labels) == {"lbctl-cluster": "kubernetes"}

    internal = cloud.address("int", address_type="INTERNAL", address="10.128.0.50",
                             subnetwork=f"regions/{r}/subnetworks/default")
    assert (internal.address, internal.purpose) == ("10.128.0.50", "GCE_ENDPOINT")
    assert internal.subnetwork == cloud.link(f"regions/{r}/subnetworks/default")
    chosen = cloud.address("int2", address_type="INTERNAL")
    assert chosen.address.startswith("10.128.0.") and chosen.address not in {
        n.ip for n in cloud.world.nodes}

    cloud.ok(cloud.addresses.set_labels_unary(
        project=p, region=r, resource="ext", region_set_labels_request_resource=cloud.c.
        RegionSetLabelsRequest(label_fingerprint=external.label_fingerprint,
                               labels={"lbctl-cluster": "kubernetes", "owner": "lbctl"})))
    relabelled = cloud.addresses.get(project=p, region=r, address="ext")
    assert dict(relabelled.labels) == {"lbctl-cluster": "kubernetes", "owner": "lbctl"}
    with pytest.raises(cloud.errors.PreconditionFailed) as caught:
        cloud.addresses.set_labels_unary(
            project=p, region=r, resource="ext", region_set_labels_request_resource=cloud.c.
            RegionSetLabelsRequest(label_fingerprint=external.label_fingerprint, labels={}))
    assert reason(caught.value) == "conditionNotMet"
    cloud.ok(cloud.addresses.set_labels_unary(
        project=p, region=r, resource="ext", region_set_labels_request_resource=cloud.c.
        RegionSetLabelsRequest(label_fingerprint=relabelled.label_fingerprint)))
    cleared = cloud.addresses.get(project=p, region=r, address="ext")
    assert not cleared.labels and cleared.label_fingerprint == "42WmSpB8rSM="

    for name in ("ext", "int", "int2"):
        cloud.ok(cloud.addresses.delete_unary(project=p, region=r, address=name))
    assert names(cloud.addresses.list(project=p, region=r)) == []


def test_forwarding_rule_in_use_address_patch_and_labels(cloud: Gce) -> None:
    p, r = cloud.project, cloud.region
    built = cloud.load_balancer("web")
    rule = cloud.rules.get(project=p, region=r, forwarding_rule="web-fr")
    assert (rule.I_p_address, rule.I_p_protocol, list(rule.ports)) == (
        built["address"], "TCP", ["80", "443"])
    assert rule.backend_service == cloud.link(f"regions/{r}/backendServices/web-bs")
    address = cloud.addresses.get(project=p, region=r, address="web-ip")
    assert address.status == "IN_USE" and list(address.users) == [rule.self_link]

    cloud.ok(cloud.rules.patch_unary(project=p, region=r, forwarding_rule="web-fr",
                                     forwarding_rule_resource=cloud.c.ForwardingRule(
                                         fingerprint=rule.fingerprint, network_tier="PREMIUM")))
    cloud.ok(cloud.rules.set_labels_unary(
        project=p, region=r, resource="web-fr", region_set_labels_request_resource=cloud.c.
        RegionSetLabelsRequest(label_fingerprint=rule.label_fingerprint,
                               labels={"lbctl-service": "web"})))
    assert dict(cloud.rules.get(project=p, region=r, forwarding_rule="web-fr").labels) == {
        "lbctl-service": "web"}

    cloud.ok(cloud.rules.delete_unary(project=p, region=r, forwarding_rule="web-fr"))
    assert cloud.addresses.get(project=p, region=r, address="web-ip").status == "RESERVED"


def test_ephemeral_ips_and_a_range(cloud: Gce) -> None:
    p, r = cloud.project, cloud.region
    cloud.health_check()
    cloud.backend_service("bs", [cloud.group(cloud.zones[0])])
    cloud.ok(cloud.rule("wide", ports=None, port_range="30000"))
    wide = cloud.rules.get(project=p, region=r, forwarding_rule="wide")
    assert wide.port_range == "30000-30000" and wide.I_p_address.startswith("35.200.")
    cloud.ok(cloud.rule("all", all_ports=True, ports=None, I_p_protocol="TCP"))
    every = cloud.rules.get(project=p, region=r, forwarding_rule="all")
    assert every.all_ports and every.I_p_address != wide.I_p_address


def test_list_pages_follow_next_page_token(cloud: Gce, gce: GceEmulator) -> None:
    p, r = cloud.project, cloud.region
    for k in range(7):
        cloud.ok(cloud.addresses.insert_unary(project=p, region=r, address_resource=cloud.c.
                                              Address(name=f"a{k}")))
    gce.clear_calls()
    found = cloud.addresses.list(request=cloud.c.ListAddressesRequest(
        project=p, region=r, max_results=3))
    assert names(found) == [f"a{k}" for k in range(7)]
    assert gce.counts() == {"compute.addresses.list": 3}
    newest = cloud.addresses.list(request=cloud.c.ListAddressesRequest(
        project=p, region=r, order_by="creationTimestamp desc"))
    assert names(newest) == [f"a{k}" for k in reversed(range(7))]


@pytest.mark.parametrize(("expression", "expected"), [
    ('name = "web-a"', ["web-a"]),
    ("name != web-a", ["db", "web-b"]),
    ('name eq "web-.*"', ["web-a", "web-b"]),
    ("name ne web-.*", ["db"]),
    ("labels.tier = front", ["web-a"]),
    ("labels.tier:*", ["db", "web-a"]),
    ('(name eq "web-.*") (labels.tier eq front)', ["web-a"]),
    ('(name = "db") OR (name = "web-b")', ["db", "web-b"]),
    ('((name = "db") OR (name = "web-a")) AND (labels.tier = front)', ["web-a"]),
    ('addressType = "EXTERNAL"', ["db", "web-a", "web-b"]),
])
def test_list_filters(cloud: Gce, expression: str, expected: list[str]) -> None:
    p, r = cloud.project, cloud.region
    for name, labels in (("web-a", {"tier": "front"}), ("web-b", {}), ("db", {"tier": "back"})):
        cloud.address(name, labels=labels)
    found = cloud.addresses.list(request=cloud.c.ListAddressesRequest(
        project=p, region=r, filter=expression))
    assert names(found) == expected


@pytest.mark.parametrize("expression", [
    "nosuchfield = x", "NOT name = a", "(name = a) AND (name = b) OR (name = c)",
    "name = web-*", "(name eq a) (labels.tier = b)", "(name = a", "name < b"])
def test_filters_outside_the_grammar_are_refused(cloud: Gce, expression: str) -> None:
    with pytest.raises(cloud.errors.BadRequest) as caught:
        list(cloud.addresses.list(request=cloud.c.ListAddressesRequest(
            project=cloud.project, region=cloud.region, filter=expression)))
    assert reason(caught.value) == "invalid"
    assert "Invalid list filter expression" in str(caught.value)


def test_bad_page_size_and_token_are_refused(cloud: Gce) -> None:
    p, r = cloud.project, cloud.region
    for request in (cloud.c.ListAddressesRequest(project=p, region=r, max_results=501),
                    cloud.c.ListAddressesRequest(project=p, region=r, page_token="bogus"),
                    cloud.c.ListAddressesRequest(project=p, region=r, order_by="address")):
        with pytest.raises(cloud.errors.BadRequest):
            list(cloud.addresses.list(request=request))


def test_aggregated_lists_by_scope(cloud: Gce) -> None:
    cloud.load_balancer("web")
    scopes = dict(cloud.rules.aggregated_list(
        request=cloud.c.AggregatedListForwardingRulesRequest(project=cloud.project)))
    assert sorted(scopes) == [f"regions/{r}" for r in ("europe-west1", "us-central1",
                                                       "us-east1")]
    assert names(scopes[f"regions/{cloud.region}"].forwarding_rules) == ["web-fr"]
    assert scopes["regions/us-east1"].warning.code == "NO_RESULTS_ON_PAGE"
    found = dict(cloud.addresses.aggregated_list(
        request=cloud.c.AggregatedListAddressesRequest(project=cloud.project,
                                                       filter='name eq "web-.*"')))
    assert names(found[f"regions/{cloud.region}"].addresses) == ["web-ip"]
    groups = dict(cloud.groups.aggregated_list(
        request=cloud.c.AggregatedListInstanceGroupsRequest(project=cloud.project)))
    assert [z for z, s in sorted(groups.items()) if s.instance_groups] == [
        f"zones/{z}" for z in cloud.zones]


def test_the_world_is_read_only(cloud: Gce) -> None:
    p = cloud.project
    instances = {i.name: i for zone in cloud.zones
                 for i in cloud.instances.list(project=p, zone=zone)}
    assert sorted(instances) == ["kubernetes-node-1", "kubernetes-node-2", "kubernetes-node-3"]
    node = instances["kubernetes-node-2"]
    assert node.zone == cloud.link(f"zones/{cloud.zones[1]}")
    assert list(node.tags.items) == ["kubernetes-node"]
    assert node.network_interfaces[0].network_i_p == cloud.world.nodes[1].ip
    assert node.self_link == cloud.link(f"zones/{cloud.zones[1]}/instances/kubernetes-node-2")
    network = cloud.client("NetworksClient").get(project=p, network="default")
    assert network.auto_create_subnetworks
    subnet = cloud.client("SubnetworksClient").get(project=p, region=cloud.region,
                                                   subnetwork="default")
    assert subnet.ip_cidr_range == "10.128.0.0/20" and subnet.network == network.self_link
    with pytest.raises(cloud.errors.MethodNotImplemented):
        cloud.instances.insert_unary(project=p, zone=cloud.zones[0],
                                     instance_resource=cloud.c.Instance(name="extra"))
