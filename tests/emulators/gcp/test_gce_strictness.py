"""GCE's refusals, each as the SDK raises it: the exception type and the reason a provider reads.

Names, duplicates, references (missing, wrong region, wrong scheme or protocol), what a
passthrough backend service and forwarding rule accept, deleting what is in use, writing to
what is not ready, fingerprints, the instance-group rules, IP sharing, fields not emulated.
"""

from __future__ import annotations

import pytest

from lbctl.emulators.gcp.server import GceEmulator

from .conftest import Gce, reason

pytestmark = pytest.mark.integration


def refused(cloud: Gce, kind: str, why: str, call: object, *args: object,
            **kwargs: object) -> str:
    """Run `call`, insist it raises `cloud.errors.<kind>` with reason `why`; its message."""
    assert callable(call)
    with pytest.raises(getattr(cloud.errors, kind)) as caught:
        call(*args, **kwargs)
    assert reason(caught.value) == why, caught.value
    return str(caught.value)


@pytest.mark.parametrize("name", ["Web", "web_1", "1web", "web-", "w" * 64, "web.a"])
def test_names_follow_gce_rules(cloud: Gce, name: str) -> None:
    message = refused(cloud, "BadRequest", "invalid", cloud.addresses.insert_unary,
                      project=cloud.project, region=cloud.region,
                      address_resource=cloud.c.Address(name=name))
    assert "resource.name" in message


def test_a_name_taken_is_a_conflict(cloud: Gce) -> None:
    cloud.health_check("hc")
    refused(cloud, "Conflict", "alreadyExists", cloud.checks.insert_unary,
            project=cloud.project, region=cloud.region, health_check_resource=cloud.c.
            HealthCheck(name="hc", type_="TCP"))


def test_other_projects_and_unknown_regions(cloud: Gce) -> None:
    refused(cloud, "NotFound", "notFound", cloud.addresses.get, project="someone-else",
            region=cloud.region, address="a")
    refused(cloud, "BadRequest", "invalid", cloud.addresses.get, project=cloud.project,
            region="mars-north1", address="a")


def test_backend_service_references_and_passthrough_rules(cloud: Gce) -> None:
    c, p, r = cloud.c, cloud.project, cloud.region
    cloud.health_check("hc")
    group = cloud.group(cloud.zones[0])
    cloud.ok(cloud.global_checks.insert_unary(project=p, health_check_resource=c.HealthCheck(
        name="ghc", type_="TCP", tcp_health_check=c.TCPHealthCheck(port=80))))

    def insert(**fields: object) -> object:
        base: dict[str, object] = {"name": "bs", "load_balancing_scheme": "EXTERNAL",
                                   "protocol": "TCP",
                                   "health_checks": [cloud.here("healthChecks", "hc")]}
        base.update(fields)
        return cloud.services.insert_unary(project=p, region=r,
                                           backend_service_resource=c.BackendService(**base))

    refused(cloud, "NotFound", "notFound", insert, health_checks=[cloud.here("healthChecks",
                                                                             "nope")])
    refused(cloud, "BadRequest", "invalid", insert, health_checks=["global/healthChecks/ghc"])
    refused(cloud, "BadRequest", "invalid", insert, health_checks=[])
    refused(cloud, "BadRequest", "invalid", insert, protocol=None)  # GCE's default: HTTP
    refused(cloud, "BadRequest", "invalid", insert, backends=[c.Backend(group=group)])
    refused(cloud, "BadRequest", "invalid", insert, backends=[
        c.Backend(group=group, balancing_mode="CONNECTION")] * 2)
    refused(cloud, "BadRequest", "invalid", insert, backends=[
        c.Backend(group="zones/us-east1-b/instanceGroups/ig", balancing_mode="CONNECTION")])
    refused(cloud, "NotFound", "notFound", insert, backends=[
        c.Backend(group=f"zones/{cloud.zones[1]}/instanceGroups/nope",
                  balancing_mode="CONNECTION")])
    refused(cloud, "BadRequest", "invalid", insert, session_affinity="GENERATED_COOKIE")
    refused(cloud, "MethodNotImplemented", "notImplemented", insert,
            load_balancing_scheme="EXTERNAL_MANAGED")
    cloud.ok(insert(load_balancing_scheme="INTERNAL", health_checks=["global/healthChecks/ghc"],
                    backends=[c.Backend(group=group, balancing_mode="CONNECTION")]))


def test_forwarding_rule_references_ports_and_protocols(cloud: Gce) -> None:
    c, p, r = cloud.c, cloud.project, cloud.region
    cloud.health_check("hc")
    cloud.backend_service("tcp", [cloud.group(cloud.zones[0])])
    cloud.backend_service("mixed", protocol="UNSPECIFIED")
    other = cloud.address("other")
    cloud.ok(cloud.addresses.insert_unary(project=p, region="us-east1",
                                          address_resource=c.Address(name="far")))

    refused(cloud, "NotFound", "notFound", cloud.rule, "fr", "nope")
    refused(cloud, "BadRequest", "invalid", cloud.rules.insert_unary, project=p, region=r,
            forwarding_rule_resource=c.ForwardingRule(
                name="fr", ports=["80"], backend_service="regions/us-east1/backendServices/x"))
    refused(cloud, "BadRequest", "invalid", cloud.rule, "fr", "tcp", I_p_protocol="UDP")
    refused(cloud, "BadRequest", "invalid", cloud.rule, "fr", "tcp",
            load_balancing_scheme="INTERNAL")
    message = refused(cloud, "BadRequest", "invalid", cloud.rule, "fr", "tcp",
                      ports=[str(80 + k) for k in range(6)])
    assert "Maximum is 5" in message
    refused(cloud, "BadRequest", "invalid", cloud.rule, "fr", "tcp", port_range="80-90")
    refused(cloud, "BadRequest", "invalid", cloud.rule, "fr", "tcp", ports=[])
    refused(cloud, "BadRequest", "invalid", cloud.rule, "fr", "tcp", ports=["0"])
    refused(cloud, "BadRequest", "invalid", cloud.rule, "fr", "mixed", ports=None,
            I_p_protocol="L3_DEFAULT")
    refused(cloud, "BadRequest", "invalid", cloud.rule, "fr", "tcp", allow_global_access=True)
    refused(cloud, "BadRequest", "invalid", cloud.rule, "fr", "tcp", I_p_address="35.200.9.9")
    refused(cloud, "BadRequest", "invalid", cloud.rule, "fr", "tcp",
            I_p_address="regions/us-east1/addresses/far")
    refused(cloud, "BadRequest", "invalid", cloud.rule, "fr", "tcp", network_tier="STANDARD",
            I_p_address=other.address)
    refused(cloud, "MethodNotImplemented", "notImplemented", cloud.rules.insert_unary,
            project=p, region=r, forwarding_rule_resource=c.ForwardingRule(
                name="fr", target=f"regions/{r}/targetPools/tp"))
    cloud.ok(cloud.rule("l3", "mixed", ports=None, I_p_protocol="L3_DEFAULT", all_ports=True))


def test_rules_sharing_an_address(cloud: Gce) -> None:
    cloud.health_check("hc")
    cloud.backend_service("tcp")
    cloud.backend_service("udp", protocol="UDP")
    shared = cloud.address("shared").address
    cloud.ok(cloud.rule("tcp-80", "tcp", I_p_address=shared, ports=["80", "443"]))
    cloud.ok(cloud.rule("udp-80", "udp", I_p_address=shared, I_p_protocol="UDP", ports=["80"]))
    message = refused(cloud, "BadRequest", "ipInUseByAnotherResource", cloud.rule, "tcp-443",
                      "tcp", I_p_address=shared, ports=["443"])
    assert "in-use and would result in a conflict" in message
    cloud.ok(cloud.rule("tcp-8080", "tcp", I_p_address=shared, ports=["8080"]))

    cloud.ok(cloud.rule("eph", "tcp"))  # an ephemeral IP is the rule's alone
    ephemeral = cloud.rules.get(project=cloud.project, region=cloud.region,
                                forwarding_rule="eph").I_p_address
    refused(cloud, "BadRequest", "invalid", cloud.rule, "eph-udp", "udp",
            I_p_address=ephemeral, I_p_protocol="UDP")
    promoted = cloud.address("promoted", address=ephemeral)  # until it is promoted
    assert promoted.status == "IN_USE"
    cloud.ok(cloud.rule("eph-udp", "udp", I_p_address=ephemeral, I_p_protocol="UDP"))


def test_internal_rules_share_only_a_shared_vip(cloud: Gce) -> None:
    cloud.ok(cloud.global_checks.insert_unary(
        project=cloud.project, health_check_resource=cloud.c.HealthCheck(
            name="ghc", type_="TCP", tcp_health_check=cloud.c.TCPHealthCheck(port=80))))
    cloud.ok(cloud.services.insert_unary(
        project=cloud.project, region=cloud.region, backend_service_resource=cloud.c.
        BackendService(name="ilb", load_balancing_scheme="INTERNAL", protocol="TCP",
                       health_checks=["global/healthChecks/ghc"])))
    plain = cloud.address("plain", address_type="INTERNAL").address
    vip = cloud.address("vip", address_type="INTERNAL", purpose="SHARED_LOADBALANCER_VIP")
    internal = {"load_balancing_scheme": "INTERNAL"}
    cloud.ok(cloud.rule("a", "ilb", I_p_address=plain, **internal))
    message = refused(cloud, "Conflict", "ipInUseByAnotherResource", cloud.rule, "b", "ilb",
                      I_p_address=plain, ports=["81"], **internal)
    assert "IP_IN_USE_BY_ANOTHER_RESOURCE" in message
    cloud.ok(cloud.rule("c", "ilb", I_p_address=vip.address, **internal))
    cloud.ok(cloud.rule("d", "ilb", I_p_address=vip.address, ports=["81"], **internal))
    refused(cloud, "Conflict", "ipInUseByAnotherResource", cloud.rule, "e", "ilb",
            I_p_address=cloud.world.nodes[0].ip, **internal)
    refused(cloud, "BadRequest", "invalid", cloud.rule, "f", "ilb", port_range="80-81",
            ports=None, **internal)


def test_forwarding_rule_patch_is_limited_and_fingerprinted(cloud: Gce) -> None:
    c, p, r = cloud.c, cloud.project, cloud.region
    cloud.load_balancer("web")
    rule = cloud.rules.get(project=p, region=r, forwarding_rule="web-fr")
    refused(cloud, "PreconditionFailed", "conditionNotMet", cloud.rules.patch_unary,
            project=p, region=r, forwarding_rule="web-fr",
            forwarding_rule_resource=c.ForwardingRule(network_tier="PREMIUM"))
    refused(cloud, "PreconditionFailed", "conditionNotMet", cloud.rules.patch_unary,
            project=p, region=r, forwarding_rule="web-fr",
            forwarding_rule_resource=c.ForwardingRule(fingerprint="c3RhbGU=",
                                                      network_tier="PREMIUM"))
    message = refused(cloud, "BadRequest", "invalid", cloud.rules.patch_unary, project=p,
                      region=r, forwarding_rule="web-fr", forwarding_rule_resource=c.
                      ForwardingRule(fingerprint=rule.fingerprint, ports=["80"]))
    assert "resource.ports" in message
    refused(cloud, "BadRequest", "invalid", cloud.rules.patch_unary, project=p, region=r,
            forwarding_rule="web-fr", forwarding_rule_resource=c.ForwardingRule(
                fingerprint=rule.fingerprint, network_tier="STANDARD"))  # the address's tier


def test_backend_service_updates_need_the_current_fingerprint(cloud: Gce) -> None:
    c, p, r = cloud.c, cloud.project, cloud.region
    cloud.health_check("hc")
    cloud.backend_service("bs")
    current = cloud.services.get(project=p, region=r, backend_service="bs")
    for fingerprint in (None, "c3RhbGU="):
        refused(cloud, "PreconditionFailed", "conditionNotMet", cloud.services.patch_unary,
                project=p, region=r, backend_service="bs", backend_service_resource=c.
                BackendService(fingerprint=fingerprint, session_affinity="CLIENT_IP"))
    cloud.ok(cloud.services.patch_unary(project=p, region=r, backend_service="bs",
                                        backend_service_resource=c.BackendService(
                                            fingerprint=current.fingerprint, timeout_sec=60)))
    refused(cloud, "PreconditionFailed", "conditionNotMet", cloud.services.update_unary,
            project=p, region=r, backend_service="bs", backend_service_resource=current)
    fresh = cloud.services.get(project=p, region=r, backend_service="bs")
    fresh.load_balancing_scheme = "INTERNAL"
    refused(cloud, "BadRequest", "invalid", cloud.services.update_unary, project=p, region=r,
            backend_service="bs", backend_service_resource=fresh)


def test_nothing_in_use_can_be_deleted(cloud: Gce) -> None:
    p, r = cloud.project, cloud.region
    built = cloud.load_balancer("web")
    zone = cloud.zones[0]
    for call, kwargs in ((cloud.checks.delete_unary, {"health_check": "web-hc"}),
                         (cloud.services.delete_unary, {"backend_service": "web-bs"}),
                         (cloud.addresses.delete_unary, {"address": "web-ip"})):
        message = refused(cloud, "BadRequest", "resourceInUseByAnotherResource", call,
                          project=p, region=r, **kwargs)
        assert "is already being used by" in message
    refused(cloud, "BadRequest", "resourceInUseByAnotherResource", cloud.groups.delete_unary,
            project=p, zone=zone, instance_group="web-ig")
    cloud.ok(cloud.rules.delete_unary(project=p, region=r, forwarding_rule="web-fr"))
    cloud.ok(cloud.addresses.delete_unary(project=p, region=r, address="web-ip"))
    cloud.ok(cloud.services.delete_unary(project=p, region=r, backend_service="web-bs"))
    cloud.ok(cloud.checks.delete_unary(project=p, region=r, health_check="web-hc"))
    for group in built["groups"]:
        _, zone, _, name = group.split("/")
        cloud.ok(cloud.groups.delete_unary(project=p, zone=zone, instance_group=name))


def test_writes_in_flight_are_not_ready(cloud: Gce, gce: GceEmulator) -> None:
    p, r = cloud.project, cloud.region
    cloud.load_balancer("web")
    gce.settings(operationDelay=0.5)
    pending = cloud.checks.insert_unary(project=p, region=r, health_check_resource=cloud.c.
                                        HealthCheck(name="new-hc", type_="TCP"))
    assert pending.status == cloud.c.Operation.Status.RUNNING
    refused(cloud, "NotFound", "notFound", cloud.checks.get, project=p, region=r,
            health_check="new-hc")
    refused(cloud, "Conflict", "alreadyExists", cloud.checks.insert_unary, project=p, region=r,
            health_check_resource=cloud.c.HealthCheck(name="new-hc", type_="TCP"))
    refused(cloud, "BadRequest", "resourceNotReady", cloud.services.insert_unary, project=p,
            region=r, backend_service_resource=cloud.c.BackendService(
                name="new-bs", protocol="TCP", health_checks=[cloud.here("healthChecks",
                                                                         "new-hc")]))
    cloud.ok(pending)

    deleting = cloud.rules.delete_unary(project=p, region=r, forwarding_rule="web-fr")
    refused(cloud, "BadRequest", "resourceInUseByAnotherResource", cloud.services.delete_unary,
            project=p, region=r, backend_service="web-bs")  # the rule is not gone yet
    refused(cloud, "BadRequest", "resourceNotReady", cloud.rules.delete_unary, project=p,
            region=r, forwarding_rule="web-fr")
    cloud.ok(deleting)
    cloud.ok(cloud.services.delete_unary(project=p, region=r, backend_service="web-bs"))


def test_instance_group_membership_rules(cloud: Gce, gce: GceEmulator) -> None:
    p = cloud.project
    zone_a, zone_b = cloud.zones
    node1 = "kubernetes-node-1"  # in zone a
    cloud.group(zone_a, "ig-a", members=[node1])

    def add(zone: str, group: str, zone_of_node: str, node: str) -> object:
        return cloud.groups.add_instances_unary(
            project=p, zone=zone, instance_group=group,
            instance_groups_add_instances_request_resource=cloud.instance_refs(
                zone_of_node, [node]))

    refused(cloud, "BadRequest", "memberAlreadyExists", add, zone_a, "ig-a", zone_a, node1)
    refused(cloud, "NotFound", "notFound", add, zone_a, "ig-a", zone_a, "nobody")
    cloud.group(zone_b, "ig-b", members=[])
    refused(cloud, "BadRequest", "invalid", add, zone_b, "ig-b", zone_a, node1)
    refused(cloud, "BadRequest", "memberNotFound", cloud.groups.remove_instances_unary,
            project=p, zone=zone_b, instance_group="ig-b",
            instance_groups_remove_instances_request_resource=cloud.c.
            InstanceGroupsRemoveInstancesRequest(instances=cloud.instance_refs(
                zone_b, ["kubernetes-node-2"]).instances))

    cloud.health_check("hc")
    cloud.backend_service("bs-a", [f"zones/{zone_a}/instanceGroups/ig-a"])
    cloud.group(zone_a, "ig-other", members=[node1])  # not load-balanced: allowed
    message = refused(cloud, "BadRequest", "instanceInMultipleLoadBalancedIgs",
                      cloud.backend_service, "bs-other",
                      [f"zones/{zone_a}/instanceGroups/ig-other"])
    assert "at most one load-balanced instance group" in message
    cloud.group(zone_a, "ig-c", members=[])
    cloud.backend_service("bs-c", [f"zones/{zone_a}/instanceGroups/ig-c"])
    refused(cloud, "BadRequest", "instanceInMultipleLoadBalancedIgs", add, zone_a, "ig-c",
            zone_a, node1)

    gce.settings(maxGroupSize=1)
    refused(cloud, "BadRequest", "invalid", add, zone_a, "ig-a", zone_a, "kubernetes-node-3")


def test_a_node_gone_leaves_its_groups(cloud: Gce, gce: GceEmulator) -> None:
    zone = cloud.zones[0]
    cloud.group(zone, "ig")
    gce.remove_instance(zone, "kubernetes-node-3")
    group = cloud.groups.get(project=cloud.project, zone=zone, instance_group="ig")
    assert group.size == 1


def test_health_check_and_firewall_rules(cloud: Gce) -> None:
    c, p, r = cloud.c, cloud.project, cloud.region

    def check(**fields: object) -> object:
        return cloud.checks.insert_unary(project=p, region=r, health_check_resource=c.
                                         HealthCheck(name="hc", **fields))

    refused(cloud, "BadRequest", "required", check)
    refused(cloud, "BadRequest", "invalid", check, type_="HTTP",
            tcp_health_check=c.TCPHealthCheck(port=80))
    refused(cloud, "BadRequest", "invalid", check, type_="TCP", check_interval_sec=5,
            timeout_sec=6)
    refused(cloud, "BadRequest", "invalid", check, type_="HTTP",
            http_health_check=c.HTTPHealthCheck(request_path="healthz"))
    refused(cloud, "BadRequest", "invalid", check, type_="TCP", unhealthy_threshold=11)

    def firewall(**fields: object) -> object:
        fields.setdefault("allowed", [c.Allowed(I_p_protocol="tcp", ports=["80"])])
        return cloud.firewalls.insert_unary(project=p, firewall_resource=c.Firewall(
            name="fw", **fields))

    refused(cloud, "BadRequest", "invalid", firewall, allowed=[])
    refused(cloud, "BadRequest", "invalid", firewall, denied=[c.Denied(I_p_protocol="tcp")])
    refused(cloud, "BadRequest", "invalid", firewall, source_ranges=["10.0.0.0/33"])
    refused(cloud, "BadRequest", "invalid", firewall, target_tags=["Node"])
    refused(cloud, "BadRequest", "invalid", firewall, allowed=[
        c.Allowed(I_p_protocol="icmp", ports=["80"])])
    refused(cloud, "NotFound", "notFound", firewall, network="global/networks/nope")
    cloud.ok(firewall(source_ranges=["0.0.0.0/0"]))
    refused(cloud, "BadRequest", "invalid", cloud.firewalls.patch_unary, project=p,
            firewall="fw", firewall_resource=c.Firewall(direction="EGRESS"))


def test_labels_and_fields_not_emulated(cloud: Gce) -> None:
    refused(cloud, "BadRequest", "invalid", cloud.address, "a", labels={"Bad.Key": "x"})
    refused(cloud, "BadRequest", "invalid", cloud.address, "a", labels={"k": "UPPER"})
    cloud.address("a")
    refused(cloud, "BadRequest", "required", cloud.addresses.set_labels_unary,
            project=cloud.project, region=cloud.region, resource="a",
            region_set_labels_request_resource=cloud.c.RegionSetLabelsRequest(
                labels={"k": "v"}))
    cloud.health_check("hc")
    message = refused(cloud, "MethodNotImplemented", "notImplemented", cloud.backend_service,
                      "bs", log_config=cloud.c.BackendServiceLogConfig(enable=True))
    assert "resource.logConfig" in message
    refused(cloud, "BadRequest", "invalid", cloud.address, "b", address="35.200.77.77")
