"""Networks and subnetworks made through the SDK: the world an internal load balancer needs.

A custom-mode network with its own subnetworks (ranges that must not overlap), internal
addresses and forwarding rules taking IPs from the subnetwork named, instances seeded on it,
and deletes refused while anything uses the network or the subnetwork.
"""

from __future__ import annotations

import ipaddress

import pytest

from lbctl.emulators.gcp.server import GceEmulator

from .conftest import Gce, reason

pytestmark = pytest.mark.integration


def test_a_custom_network_for_an_internal_load_balancer(cloud: Gce, gce: GceEmulator) -> None:
    c, p, r = cloud.c, cloud.project, cloud.region
    networks, subnets = cloud.client("NetworksClient"), cloud.client("SubnetworksClient")
    cloud.ok(networks.insert_unary(project=p, network_resource=c.Network(
        name="vpc", auto_create_subnetworks=False)))
    assert not networks.get(project=p, network="vpc").subnetworks
    cloud.ok(subnets.insert_unary(project=p, region=r, subnetwork_resource=c.Subnetwork(
        name="ilb", network="global/networks/vpc", ip_cidr_range="10.10.0.0/24")))
    subnet = subnets.get(project=p, region=r, subnetwork="ilb")
    assert (subnet.gateway_address, subnet.network) == ("10.10.0.1", cloud.link(
        "global/networks/vpc"))
    assert list(networks.get(project=p, network="vpc").subnetworks) == [subnet.self_link]

    for cidr in ("10.10.0.128/25", "10.10.0.0/30", "10.10.1.1/24", "not-a-range"):
        with pytest.raises(cloud.errors.BadRequest) as caught:
            subnets.insert_unary(project=p, region=r, subnetwork_resource=c.Subnetwork(
                name="other", network="global/networks/vpc", ip_cidr_range=cidr))
        assert reason(caught.value) == "invalid", cidr
    cloud.ok(subnets.insert_unary(project=p, region=r, subnetwork_resource=c.Subnetwork(
        name="same-range-elsewhere", network="global/networks/default",
        ip_cidr_range="10.10.0.0/24")))  # another network may reuse the range
    with pytest.raises(cloud.errors.MethodNotImplemented):
        networks.insert_unary(project=p, network_resource=c.Network(name="legacy"))

    gce.add_instances([{"name": "vpc-node", "zone": cloud.zones[0], "network": "vpc",
                        "subnetwork": "ilb", "tags": ["vpc-node"]}])
    node = cloud.instances.get(project=p, zone=cloud.zones[0], instance="vpc-node")
    assert ipaddress.IPv4Address(node.network_interfaces[0].network_i_p) in (
        ipaddress.IPv4Network("10.10.0.0/24"))

    cloud.ok(cloud.global_checks.insert_unary(project=p, health_check_resource=c.HealthCheck(
        name="ghc", type_="TCP", tcp_health_check=c.TCPHealthCheck(port=80))))
    cloud.ok(cloud.services.insert_unary(project=p, region=r, backend_service_resource=c.
                                         BackendService(name="ilb", protocol="TCP",
                                                        load_balancing_scheme="INTERNAL",
                                                        health_checks=["global/healthChecks/ghc"])))
    cloud.ok(cloud.rule("ilb", "ilb", load_balancing_scheme="INTERNAL",
                        subnetwork=f"regions/{r}/subnetworks/ilb", allow_global_access=True))
    rule = cloud.rules.get(project=p, region=r, forwarding_rule="ilb")
    assert rule.network == cloud.link("global/networks/vpc")
    assert ipaddress.IPv4Address(rule.I_p_address) in ipaddress.IPv4Network("10.10.0.0/24")
    assert rule.I_p_address != node.network_interfaces[0].network_i_p
    assert rule.allow_global_access
    cloud.ok(cloud.rules.patch_unary(project=p, region=r, forwarding_rule="ilb",
                                     forwarding_rule_resource=c.ForwardingRule(
                                         fingerprint=rule.fingerprint,
                                         allow_global_access=False)))
    assert not cloud.rules.get(project=p, region=r, forwarding_rule="ilb").allow_global_access

    for call, kwargs in ((subnets.delete_unary, {"region": r, "subnetwork": "ilb"}),
                         (networks.delete_unary, {"network": "vpc"})):
        with pytest.raises(cloud.errors.BadRequest) as caught:
            call(project=p, **kwargs)
        assert reason(caught.value) == "resourceInUseByAnotherResource"
    cloud.ok(cloud.rules.delete_unary(project=p, region=r, forwarding_rule="ilb"))
    gce.remove_instance(cloud.zones[0], "vpc-node")
    cloud.ok(subnets.delete_unary(project=p, region=r, subnetwork="ilb"))
    cloud.ok(networks.delete_unary(project=p, network="vpc"))


def test_an_auto_mode_network_has_a_subnetwork_per_region(cloud: Gce) -> None:
    c, p = cloud.c, cloud.project
    networks, subnets = cloud.client("NetworksClient"), cloud.client("SubnetworksClient")
    cloud.ok(networks.insert_unary(project=p, network_resource=c.Network(
        name="auto", auto_create_subnetworks=True)))
    scopes = dict(subnets.aggregated_list(request=c.AggregatedListSubnetworksRequest(
        project=p, filter='network eq ".*/networks/auto"')))
    assert sorted(s for s, found in scopes.items() if found.subnetworks) == [
        "regions/europe-west1", "regions/us-central1", "regions/us-east1"]
    assert subnets.get(project=p, region=cloud.region,
                       subnetwork="auto").ip_cidr_range == "10.128.0.0/20"
    cloud.ok(networks.delete_unary(project=p, network="auto"))  # its subnetworks go with it
    assert [s.name for s in subnets.list(project=p, region=cloud.region)] == ["default"]
    with pytest.raises(cloud.errors.BadRequest) as caught:
        networks.delete_unary(project=p, network="default")  # instances and firewalls use it
    assert reason(caught.value) == "resourceInUseByAnotherResource"
