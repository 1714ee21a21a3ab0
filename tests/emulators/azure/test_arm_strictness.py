"""ARM's refusals, as a provider meets them in Azure: etags, references, in-use objects, names,
priorities, private addresses and Standard load balancer limits."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from .conftest import Cloud, code, m, message

pytestmark = pytest.mark.integration


def refused(call: Callable[[], Any], status: int, error_code: str) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as caught:
        call()
    assert (caught.value.status_code, code(caught.value)) == (status, error_code), (
        caught.value.status_code, code(caught.value), message(caught.value))
    return caught.value


def test_etags_change_on_every_write_and_guard_writes(cloud: Cloud) -> None:
    lb = cloud.public_lb(1)
    again = cloud.put_lb(lb, headers={"If-Match": lb.etag})
    assert again.etag != lb.etag
    refused(lambda: cloud.put_lb(lb, headers={"If-Match": lb.etag}), 412, "PreconditionFailed")
    # a concurrent writer (another controller, the portal) changes it under us
    bumped = cloud.emu.bump_etag(type="loadBalancers", name="kubernetes", tags={"by": "other"})
    refused(lambda: cloud.put_lb(again, headers={"If-Match": again.etag}), 412,
            "PreconditionFailed")
    fresh = cloud.net.load_balancers.get(cloud.group, "kubernetes")
    assert fresh.etag == bumped and fresh.tags == {"by": "other"}
    cloud.put_lb(fresh, headers={"If-Match": fresh.etag})
    # create-only, and If-Match on what does not exist
    refused(lambda: cloud.put_lb(fresh, headers={"If-None-Match": "*"}), 412,
            "PreconditionFailed")
    refused(lambda: cloud.pip("new", headers={"If-Match": lb.etag}), 412, "PreconditionFailed")
    assert cloud.pip("new", headers={"If-None-Match": "*"}).name == "new"
    # children carry the parent's etag and are guarded by it
    pool = cloud.net.load_balancer_backend_address_pools.get(cloud.group, "kubernetes",
                                                             "kubernetes")
    cloud.emu.bump_etag(id=cloud.lb_id())
    refused(lambda: cloud.net.load_balancer_backend_address_pools.begin_create_or_update(
        cloud.group, "kubernetes", "kubernetes", pool, headers={"If-Match": pool.etag}).result(),
        412, "PreconditionFailed")
    pools = cloud.net.load_balancer_backend_address_pools
    refused(lambda: pools.begin_create_or_update(cloud.group, "kubernetes", "kubernetes", pool,
                                                 headers={"If-None-Match": "*"}).result(),
            412, "PreconditionFailed")
    spare = pools.begin_create_or_update(cloud.group, "kubernetes", "spare", cloud.pool("spare"),
                                         headers={"If-None-Match": "*"}).result()
    assert spare.name == "spare"


def test_in_use_objects_cannot_be_deleted(cloud: Cloud) -> None:
    cloud.public_lb(1)
    refused(lambda: cloud.net.public_ip_addresses.begin_delete(cloud.group, "pip-1").result(),
            400, "PublicIPAddressInUse")
    internal = cloud.put_lb(cloud.load_balancer([cloud.service("i1", internal=True,
                                                               lb="internal")]), "internal")
    assert internal.frontend_ip_configurations[0].private_ip_address == "10.224.0.7"
    refused(lambda: cloud.net.subnets.begin_delete(cloud.group, cloud.world.vnet,
                                                   cloud.world.subnet).result(),
            400, "InUseSubnetCannotBeDeleted")
    refused(lambda: cloud.net.virtual_networks.begin_delete(cloud.group,
                                                            cloud.world.vnet).result(),
            400, "InUseSubnetCannotBeDeleted")
    assert cloud.net.public_ip_addresses.get(cloud.group, "pip-1").provisioning_state == \
        "Succeeded"
    refused(lambda: cloud.net.network_security_groups.begin_delete(cloud.group,
                                                                   cloud.world.nsg).result(),
            400, "InUseNetworkSecurityGroupCannotBeDeleted")
    other = cloud.net.virtual_networks.begin_create_or_update(
        cloud.group, "pods", m.VirtualNetwork(
            location=cloud.location,
            address_space=m.AddressSpace(address_prefixes=["172.16.0.0/16"]))).result()
    pool = m.BackendAddressPool(name="pods", load_balancer_backend_addresses=[
        m.LoadBalancerBackendAddress(name="pod", ip_address="172.16.0.9",
                                     virtual_network=m.SubResource(id=other.id))])
    cloud.net.load_balancer_backend_address_pools.begin_create_or_update(
        cloud.group, "kubernetes", "pods", pool).result()
    refused(lambda: cloud.net.virtual_networks.begin_delete(cloud.group, "pods").result(),
            400, "InUseVirtualNetworkCannotBeDeleted")
    pool.load_balancer_backend_addresses[0].ip_address = "10.0.0.9"
    refused(lambda: cloud.net.load_balancer_backend_address_pools.begin_create_or_update(
        cloud.group, "kubernetes", "pods", pool).result(), 400,
        "InvalidIPAddressInBackendAddressPool")


def test_rules_reference_parts_of_the_same_load_balancer(cloud: Cloud) -> None:
    cloud.public_lb(1)
    pip = cloud.pip("second-ip")
    other = cloud.load_balancer([cloud.service("b1", pip=pip, lb="other")])
    other.load_balancing_rules[0].frontend_ip_configuration = cloud.part(
        "frontendIPConfigurations", "a1", "kubernetes")
    refused(lambda: cloud.put_lb(other, "other"), 400, "InvalidResourceReference")
    lb = cloud.net.load_balancers.get(cloud.group, "kubernetes")
    lb.probes = []  # the probe a rule still uses cannot go alone
    refused(lambda: cloud.put_lb(lb), 400, "InvalidResourceReference")
    lb = cloud.net.load_balancers.get(cloud.group, "kubernetes")
    refused(lambda: cloud.net.load_balancer_backend_address_pools.begin_delete(
        cloud.group, "kubernetes", "kubernetes").result(), 400, "InvalidResourceReference")
    lb.load_balancing_rules[0].probe = cloud.part("probes", "nope")
    refused(lambda: cloud.put_lb(lb), 400, "InvalidResourceReference")


def test_frontends_need_a_standard_unshared_public_ip_or_a_real_subnet(cloud: Cloud) -> None:
    ghost = m.PublicIPAddress(id=cloud.lb_id().replace("loadBalancers/kubernetes",
                                                       "publicIPAddresses/ghost"))
    refused(lambda: cloud.put_lb(cloud.load_balancer([cloud.service("a1", pip=ghost)])), 400,
            "InvalidResourceReference")
    basic = cloud.pip("basic", sku=m.PublicIPAddressSku(name="Basic"),
                      public_ip_allocation_method="Dynamic")
    refused(lambda: cloud.put_lb(cloud.load_balancer([cloud.service("a1", pip=basic)])), 400,
            "PublicIPAndLBSkuDoNotMatch")
    refused(lambda: cloud.pip("dyn", public_ip_allocation_method="Dynamic"), 400,
            "StandardSkuPublicIPAddressMustBeStatic")
    pip = cloud.pip("shared")
    refused(lambda: cloud.put_lb(cloud.load_balancer([cloud.service("a1", pip=pip),
                                                      cloud.service("a2", 443, pip=pip)])),
            400, "PublicIPReferencedByMultipleIPConfigs")
    cloud.put_lb(cloud.load_balancer([cloud.service("a1", pip=pip)]))
    refused(lambda: cloud.put_lb(cloud.load_balancer([cloud.service("b1", pip=pip, lb="lb2")]),
                                 "lb2"), 400, "PublicIPReferencedByMultipleIPConfigs")
    taken = cloud.net.public_ip_addresses.get(cloud.group, "shared").ip_address
    refused(lambda: cloud.pip("copy", ip_address=taken), 400, "PublicIPAddressNotAvailable")
    missing_subnet = m.Subnet(id=f"{cloud.world.vnet_id}/subnets/nope")
    refused(lambda: cloud.put_lb(cloud.load_balancer(
        [cloud.service("i1", lb="int", subnet=missing_subnet)]), "int"),
        400, "InvalidResourceReference")
    refused(lambda: cloud.put_lb(cloud.load_balancer([cloud.service("a9", pip=cloud.pip("p9")),
                                                      cloud.service("i9", internal=True)])),
            400, "LoadBalancerWithPublicAndPrivateFrontends")


def test_static_private_addresses_must_be_free_and_in_the_subnet(cloud: Cloud) -> None:
    def internal(address: str) -> Callable[[], Any]:
        return lambda: cloud.put_lb(cloud.load_balancer([cloud.service(
            "i1", internal=True, lb="int", private_ip_address=address,
            private_ip_allocation_method="Static")]), "int")

    refused(internal("10.225.0.10"), 400, "PrivateIPAddressNotInSubnet")
    refused(internal("10.224.0.2"), 400, "PrivateIPAddressNotInSubnet")
    refused(internal(cloud.world.nodes[0].ip), 400, "PrivateIPAddressInUse")
    lb = internal("10.224.1.10")()
    assert lb.frontend_ip_configurations[0].private_ip_address == "10.224.1.10"
    refused(lambda: cloud.put_lb(cloud.load_balancer([cloud.service(
        "j1", internal=True, lb="int2", private_ip_address="10.224.1.10",
        private_ip_allocation_method="Static")]), "int2"), 400, "PrivateIPAddressInUse")
    # a dynamic address is kept across writes, unless a static one takes it first
    dynamic = cloud.put_lb(cloud.load_balancer([cloud.service("d1", internal=True, lb="dyn")]),
                           "dyn")
    taken = dynamic.frontend_ip_configurations[0].private_ip_address
    again = cloud.put_lb(cloud.load_balancer([cloud.service("d1", internal=True, lb="dyn")]),
                         "dyn")
    assert again.frontend_ip_configurations[0].private_ip_address == taken
    both = cloud.put_lb(cloud.load_balancer([
        cloud.service("s0", internal=True, lb="dyn", private_ip_address=taken,
                      private_ip_allocation_method="Static"),
        cloud.service("d1", 81, internal=True, lb="dyn")]), "dyn")
    addresses = [f.private_ip_address for f in both.frontend_ip_configurations]
    assert addresses[0] == taken and addresses[1] not in (taken, "10.224.1.10")


def test_names_priorities_and_ports_are_validated(cloud: Cloud) -> None:
    for bad in ("-starts-with-dash", "ends-with-dot.", "x" * 81, "spa ce"):
        refused(functools.partial(cloud.pip, bad), 400, "InvalidResourceName")
    nsg = cloud.world.nsg

    def rule(name: str, priority: int, direction: str = "Inbound") -> Callable[[], Any]:
        return lambda: cloud.net.security_rules.begin_create_or_update(
            cloud.group, nsg, name, m.SecurityRule(
                priority=priority, direction=direction, access="Allow", protocol="Tcp",
                source_address_prefix="*", source_port_range="*",
                destination_address_prefix="*", destination_port_range="80")).result()

    rule("r1", 500)()
    refused(rule("r2", 500), 400, "SecurityRuleConflict")
    rule("r2", 500, "Outbound")()
    refused(rule("r3", 99), 400, "SecurityRuleInvalidPriority")
    refused(rule("r3", 4097), 400, "SecurityRuleInvalidPriority")
    service = cloud.service("a1", pip=cloud.pip())
    service["rule"].frontend_port = 70000
    refused(lambda: cloud.put_lb(cloud.load_balancer([service])), 400, "InvalidRequestFormat")


def test_rules_without_floating_ip_cannot_share_a_backend_port(cloud: Cloud) -> None:
    one, two = cloud.service("a1", pip=cloud.pip("p1")), cloud.service("a2", pip=cloud.pip("p2"))
    for service in (one, two):
        service["rule"].enable_floating_ip = False
        service["rule"].backend_port = 30080
    refused(lambda: cloud.put_lb(cloud.load_balancer([one, two])), 400,
            "RulesUseSameBackendPortProtocolAndPool")
    two["rule"].backend_port = 30081
    cloud.put_lb(cloud.load_balancer([one, two]))
    same_port = cloud.service("a1", 80, pip=cloud.pip("p1"))
    same_port["rule"].name = "a1-again"
    lb = cloud.load_balancer([one, two])
    lb.load_balancing_rules.append(same_port["rule"])
    refused(lambda: cloud.put_lb(lb), 400, "LoadBalancingRuleFrontendPortConflict")
    both = cloud.service("a3", pip=cloud.pip("p3"), subnet=m.Subnet(id=cloud.world.subnet_id))
    refused(lambda: cloud.put_lb(cloud.load_balancer([both]), "lb3"), 400,
            "FrontendIPConfigHasBothSubnetAndPublicIP")


def test_standard_limits_are_enforced(cloud: Cloud) -> None:
    cloud.emu.settings(maxFrontends=2, maxRules=3)
    services = [cloud.service(f"i{k}", internal=True) for k in range(3)]
    refused(lambda: cloud.put_lb(cloud.load_balancer(services)), 400,
            "LoadBalancerFrontendIPConfigurationsLimitReached")
    two = cloud.load_balancer(services[:2])
    for port in (81, 82):
        extra = cloud.service("i0", port, internal=True)
        two.probes.append(extra["probe"])
        two.load_balancing_rules.append(extra["rule"])
    refused(lambda: cloud.put_lb(two), 400, "LoadBalancerLoadBalancingRulesLimitReached")
    assert cloud.emu.settings()["maxProbes"] == 1000


def test_reads_of_what_is_not_there(cloud: Cloud) -> None:
    with pytest.raises(ResourceNotFoundError) as top:
        cloud.net.load_balancers.get(cloud.group, "nope")
    assert code(top.value) == "ResourceNotFound"
    cloud.public_lb(1)
    with pytest.raises(ResourceNotFoundError):
        cloud.net.load_balancer_backend_address_pools.get(cloud.group, "kubernetes", "nope")
    with pytest.raises(ResourceNotFoundError) as group:
        cloud.net.load_balancers.get("no-such-group", "kubernetes")
    assert code(group.value) == "ResourceGroupNotFound"
