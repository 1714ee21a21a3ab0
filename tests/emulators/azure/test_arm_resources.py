"""Each emulated kind through azure-mgmt-network: long-running create and delete, reads, lists
with nextLink paging, updateTags, children written through their parent, and ARM's 404, 401
and api-version answers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from lbctl.emulators.azure.server import AzureEmulator

from .conftest import Cloud, code, m, message

pytestmark = pytest.mark.integration


def test_a_public_ip_is_created_allocated_tagged_and_deleted(cloud: Cloud) -> None:
    pip = cloud.pip("svc-ip", tags={"k8s-azure-service": "default/web"},
                    dns_settings=m.PublicIPAddressDnsSettings(domain_name_label="web-demo"))
    assert pip.provisioning_state == "Succeeded" and pip.etag.startswith('W/"')
    assert pip.ip_address.startswith("20.62.") and pip.sku.name == "Standard"
    assert pip.dns_settings.fqdn == "web-demo.eastus.cloudapp.azure.com"
    second = cloud.pip("other", ip_address="20.62.7.7")
    assert second.ip_address == "20.62.7.7"
    tagged = cloud.net.public_ip_addresses.update_tags(cloud.group, "svc-ip",
                                                       m.TagsObject(tags={"a": "b"}))
    assert tagged.tags == {"a": "b"} and tagged.etag != pip.etag
    cloud.net.public_ip_addresses.begin_delete(cloud.group, "svc-ip").result()
    with pytest.raises(ResourceNotFoundError) as missing:
        cloud.net.public_ip_addresses.get(cloud.group, "svc-ip")
    assert code(missing.value) == "ResourceNotFound"
    assert "publicIPAddresses/svc-ip" in message(missing.value)
    # a delete of what is gone is a 204: success
    cloud.net.public_ip_addresses.begin_delete(cloud.group, "svc-ip").result()
    counts = cloud.emu.counts()
    assert counts["publicIPAddresses.put"] == 2 and counts["publicIPAddresses.delete"] == 2
    assert counts["operations.get"] >= 3 and counts["publicIPAddresses.patch"] == 1


def test_a_load_balancer_is_written_whole_read_back_and_deleted(cloud: Cloud) -> None:
    lb = cloud.public_lb(2)
    assert lb.provisioning_state == "Succeeded" and lb.sku.name == "Standard"
    assert [f.name for f in lb.frontend_ip_configurations] == ["a1", "a2"]
    front = lb.frontend_ip_configurations[0]
    assert front.etag == lb.etag and front.load_balancing_rules[0].id.endswith("/a1-TCP-80")
    pool = cloud.net.load_balancer_backend_address_pools.get(cloud.group, "kubernetes",
                                                             "kubernetes")
    assert [a.ip_address for a in pool.load_balancer_backend_addresses] == [
        n.ip for n in cloud.world.nodes]
    pip = cloud.net.public_ip_addresses.get(cloud.group, "pip-1")
    assert pip.ip_configuration.id == front.id
    probes = list(cloud.net.load_balancer_probes.list(cloud.group, "kubernetes"))
    assert [p.name for p in probes] == ["a1-TCP-80", "a2-TCP-80"]
    assert cloud.emu.objects().keys() == {"loadBalancers", "publicIPAddresses"}
    cloud.net.load_balancers.begin_delete(cloud.group, "kubernetes").result()
    for k in (1, 2):
        cloud.net.public_ip_addresses.begin_delete(cloud.group, f"pip-{k}").result()
    assert cloud.emu.objects() == {}


def test_a_backend_pool_is_written_as_a_child(cloud: Cloud) -> None:
    lb = cloud.public_lb(1)
    smaller = cloud.pool(nodes=cloud.world.nodes[:2])
    pool = cloud.net.load_balancer_backend_address_pools.begin_create_or_update(
        cloud.group, "kubernetes", "kubernetes", smaller).result()
    assert len(pool.load_balancer_backend_addresses) == 2
    after = cloud.net.load_balancers.get(cloud.group, "kubernetes")
    assert after.etag != lb.etag and pool.etag == after.etag
    extra = cloud.net.load_balancer_backend_address_pools.begin_create_or_update(
        cloud.group, "kubernetes", "spare", cloud.pool("spare")).result()
    assert extra.name == "spare"
    cloud.net.load_balancer_backend_address_pools.begin_delete(
        cloud.group, "kubernetes", "spare").result()
    names = [p.name for p in cloud.net.load_balancers.get(cloud.group,
                                                          "kubernetes").backend_address_pools]
    assert names == ["kubernetes"]
    counts = cloud.emu.counts()
    assert counts["backendAddressPools.put"] == 2 and counts["backendAddressPools.delete"] == 1


def test_security_rules_inline_and_as_children(cloud: Cloud) -> None:
    nsg_name = cloud.world.nsg
    rule = cloud.net.security_rules.begin_create_or_update(
        cloud.group, nsg_name, "allow-80", m.SecurityRule(
            priority=500, direction="Inbound", access="Allow", protocol="Tcp",
            source_address_prefixes=["203.0.113.0/24", "Internet"], source_port_range="*",
            destination_address_prefix="20.62.0.4", destination_port_ranges=["80", "8000-8080"]
        )).result()
    assert rule.provisioning_state == "Succeeded" and rule.priority == 500
    nsg = cloud.net.network_security_groups.get(cloud.group, nsg_name)
    assert [r.name for r in nsg.security_rules] == ["allow-80"]
    assert len(nsg.default_security_rules) == 6
    assert cloud.emu.objects() == {"securityRules": [rule.id]}
    own = cloud.net.network_security_groups.begin_create_or_update(
        cloud.group, "extra-nsg", m.NetworkSecurityGroup(location=cloud.location, security_rules=[
            m.SecurityRule(name="deny", priority=4096, direction="Inbound", access="Deny",
                           protocol="*", source_address_prefix="*", source_port_range="*",
                           destination_address_prefix="*", destination_port_range="*")])).result()
    assert own.security_rules[0].name == "deny"
    cloud.net.security_rules.begin_delete(cloud.group, nsg_name, "allow-80").result()
    cloud.net.network_security_groups.begin_delete(cloud.group, "extra-nsg").result()
    assert cloud.emu.objects() == {}


def test_virtual_networks_and_subnets(cloud: Cloud) -> None:
    vnet = cloud.net.virtual_networks.begin_create_or_update(
        cloud.group, "other", m.VirtualNetwork(
            location=cloud.location,
            address_space=m.AddressSpace(address_prefixes=["172.16.0.0/16"]),
            subnets=[m.Subnet(name="a", address_prefix="172.16.1.0/24")])).result()
    assert [s.name for s in vnet.subnets] == ["a"]
    sub = cloud.net.subnets.begin_create_or_update(
        cloud.group, "other", "b", m.Subnet(address_prefix="172.16.2.0/24")).result()
    assert sub.address_prefix == "172.16.2.0/24"
    assert sorted(s.name for s in cloud.net.subnets.list(cloud.group, "other")) == ["a", "b"]
    seeded = cloud.net.subnets.get(cloud.group, cloud.world.vnet, cloud.world.subnet)
    assert seeded.address_prefix == "10.224.0.0/16"
    cloud.net.virtual_networks.begin_delete(cloud.group, "other").result()
    assert cloud.emu.objects() == {}


def test_lists_page_with_next_link(cloud: Cloud) -> None:
    cloud.emu.settings(pageSize=2)
    for k in range(5):
        cloud.pip(f"ip-{k}")
    cloud.emu.clear_calls()
    names = [p.name for p in cloud.net.public_ip_addresses.list(cloud.group)]
    assert names == [f"ip-{k}" for k in range(5)]
    assert cloud.emu.counts() == {"publicIPAddresses.list": 3}
    assert len(list(cloud.net.public_ip_addresses.list_all())) == 5
    cloud.public_lb(3)
    cloud.emu.clear_calls()
    assert [r.name for r in cloud.net.load_balancer_load_balancing_rules.list(
        cloud.group, "kubernetes")] == ["a1-TCP-80", "a2-TCP-80", "a3-TCP-80"]
    assert cloud.emu.counts() == {"loadBalancingRules.list": 2}
    assert [lb.name for lb in cloud.net.load_balancers.list_all()] == ["kubernetes"]


def _raw(emu: AzureEmulator, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(f"{emu.endpoint}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_no_token_is_401_and_no_api_version_is_400(cloud: Cloud) -> None:
    path = (f"/subscriptions/{cloud.world.subscription}/resourceGroups/{cloud.group}/providers/"
            "Microsoft.Network/loadBalancers")
    status, body = _raw(cloud.emu, f"{path}?api-version=2026-03-01", {})
    assert (status, body["error"]["code"]) == (401, "AuthenticationFailed")
    status, body = _raw(cloud.emu, path, {"Authorization": "Bearer x"})
    assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")
    status, body = _raw(cloud.emu, f"{path}?api-version=1", {"Authorization": "Bearer x"})
    assert (status, body) == (200, {"value": []})
    status, body = _raw(cloud.emu, path.replace(cloud.group, "nope") + "?api-version=1",
                        {"Authorization": "Bearer x"})
    assert (status, body["error"]["code"]) == (404, "ResourceGroupNotFound")


def test_public_ips_of_another_resource_group_and_tags_of_every_kind(cloud: Cloud) -> None:
    cloud.emu.add_resource_group("ips-rg")
    pip = cloud.net.public_ip_addresses.begin_create_or_update(
        "ips-rg", "shared", m.PublicIPAddress(location=cloud.location)).result()
    assert "/resourceGroups/ips-rg/" in pip.id and pip.sku.name == "Standard"
    lb = cloud.put_lb(cloud.load_balancer([cloud.service("a1", pip=pip)]))
    assert lb.frontend_ip_configurations[0].public_ip_address.id == pip.id
    assert cloud.emu.objects()["publicIPAddresses"] == [pip.id]
    nsg = cloud.net.network_security_groups.update_tags(cloud.group, cloud.world.nsg,
                                                        m.TagsObject(tags={"owner": "x"}))
    assert nsg.tags == {"owner": "x"}
    assert cloud.world.nodes[0].provider_id == cloud.world.provider_ids[0]
    assert cloud.world.provider_ids[0].endswith(
        f"/resourceGroups/{cloud.group}/providers/Microsoft.Compute/virtualMachines/"
        "kubernetes-node-1")
