"""Operations, quotas, throttling, injected faults and the admin API, through the real SDK.

An operation is RUNNING, then DONE (`wait`, `get`, and the SDK's own `.result()` once its
transport has operations clients on the emulator); a quota is a failed operation the SDK
raises as Forbidden; `requestId` makes a retried write answer its first operation; rate
limits answer 429/403 rateLimitExceeded; faults fail calls, fail operations or lose replies;
the call log counts calls; the snapshot finds every object left behind.
"""

from __future__ import annotations

import time

import pytest
import requests

from lbctl.emulators.gcp.server import GceEmulator

from .conftest import Gce, reason

pytestmark = pytest.mark.integration
REQUEST_ID = "2f1c7a4e-9b8d-4c6e-a1f0-3d5b7c9e1a2b"


def test_an_operation_runs_then_is_done(cloud: Gce, gce: GceEmulator) -> None:
    p, r = cloud.project, cloud.region
    gce.settings(operationDelay=0.3)
    op = cloud.addresses.insert_unary(project=p, region=r,
                                      address_resource=cloud.c.Address(name="a"))
    running = cloud.c.Operation.Status.RUNNING
    assert (op.status, op.operation_type, op.progress) == (running, "insert", 0)
    assert op.target_link == cloud.link(f"regions/{r}/addresses/a")
    assert op.self_link == cloud.link(f"regions/{r}/operations/{op.name}")
    assert cloud.region_ops.get(project=p, region=r, operation=op.name).status == running
    with pytest.raises(cloud.errors.NotFound):
        cloud.addresses.get(project=p, region=r, address="a")
    done = cloud.ok(op)
    assert done.progress == 100 and done.end_time
    assert cloud.addresses.get(project=p, region=r, address="a").status == "RESERVED"
    with pytest.raises(cloud.errors.NotFound):
        cloud.region_ops.get(project=p, region="us-east1", operation=op.name)


def test_wait_answers_a_running_operation_after_its_timeout(cloud: Gce,
                                                            gce: GceEmulator) -> None:
    gce.settings(operationDelay=5, waitTimeout=0.2)
    op = cloud.addresses.insert_unary(project=cloud.project, region=cloud.region,
                                      address_resource=cloud.c.Address(name="slow"))
    started = time.monotonic()
    still = cloud.region_ops.wait(project=cloud.project, region=cloud.region,
                                  operation=op.name)
    assert still.status == cloud.c.Operation.Status.RUNNING
    assert time.monotonic() - started < 3


def test_result_polls_the_emulator_through_handed_operations_clients(
        cloud: Gce, gce: GceEmulator) -> None:
    gce.settings(operationDelay=0.2)
    groups = cloud.results(cloud.groups)
    operation = groups.insert(project=cloud.project, zone=cloud.zones[0],
                              instance_group_resource=cloud.c.InstanceGroup(name="ig"))
    assert operation.result(timeout=10) is None
    assert operation.done()
    assert cloud.groups.get(project=cloud.project, zone=cloud.zones[0],
                            instance_group="ig").size == 0


def test_a_quota_is_a_failed_operation(cloud: Gce, gce: GceEmulator) -> None:
    p, r = cloud.project, cloud.region
    gce.set_quotas(STATIC_ADDRESSES=1, FORWARDING_RULES=0)
    cloud.address("first")
    op = cloud.addresses.insert_unary(project=p, region=r,
                                      address_resource=cloud.c.Address(name="second"))
    done = cloud.wait(op)
    assert done.status == cloud.c.Operation.Status.DONE
    assert (done.http_error_status_code, done.http_error_message) == (403, "FORBIDDEN")
    assert done.error.errors[0].code == "QUOTA_EXCEEDED"
    assert "STATIC_ADDRESSES" in done.error.errors[0].message
    assert done.error.errors[0].error_details[0].quota_info.limit == 1
    with pytest.raises(cloud.errors.NotFound):
        cloud.addresses.get(project=p, region=r, address="second")
    cloud.address("internal", address_type="INTERNAL")  # another quota

    operation = cloud.results(cloud.addresses).insert(
        project=p, region=r, address_resource=cloud.c.Address(name="third"))
    with pytest.raises(cloud.errors.Forbidden) as caught:
        operation.result(timeout=10)
    assert reason(caught.value) == "QUOTA_EXCEEDED"

    cloud.health_check()
    cloud.backend_service()
    rule = cloud.wait(cloud.rule())
    assert rule.error.errors[0].code == "QUOTA_EXCEEDED"


def test_a_request_id_answers_the_first_operation(cloud: Gce, gce: GceEmulator) -> None:
    p, r = cloud.project, cloud.region
    request = cloud.c.InsertAddressRequest(project=p, region=r, request_id=REQUEST_ID,
                                           address_resource=cloud.c.Address(name="once"))
    first = cloud.addresses.insert_unary(request=request)
    again = cloud.addresses.insert_unary(request=request)
    assert again.name == first.name
    assert [a.name for a in cloud.addresses.list(project=p, region=r)] == ["once"]
    with pytest.raises(cloud.errors.BadRequest):
        cloud.addresses.delete_unary(request=cloud.c.DeleteAddressRequest(
            project=p, region=r, address="once", request_id="not-a-uuid"))


@pytest.mark.parametrize(("status", "kind"), [(429, "TooManyRequests"), (403, "Forbidden")])
def test_writes_over_the_rate_limit_are_refused(cloud: Gce, gce: GceEmulator, status: int,
                                                kind: str) -> None:
    p, r = cloud.project, cloud.region
    gce.set_rate_limit({"write": {"rate": 0.001, "burst": 2}, "status": status})
    cloud.address("a")
    cloud.address("b")
    with pytest.raises(getattr(cloud.errors, kind)) as caught:
        cloud.addresses.insert_unary(project=p, region=r,
                                     address_resource=cloud.c.Address(name="c"))
    assert reason(caught.value) == "rateLimitExceeded"
    assert len(list(cloud.addresses.list(project=p, region=r))) == 2  # reads still pass
    gce.set_rate_limit({})
    cloud.address("c")


def test_an_injected_error_answers_without_doing_anything(cloud: Gce,
                                                          gce: GceEmulator) -> None:
    p, r = cloud.project, cloud.region
    gce.add_fault(api="compute.addresses.insert", status=503, reason="backendError")
    with pytest.raises(cloud.errors.ServiceUnavailable) as caught:
        cloud.addresses.insert_unary(project=p, region=r,
                                     address_resource=cloud.c.Address(name="a"))
    assert reason(caught.value) == "backendError"
    assert gce.objects() == {}
    cloud.address("a")  # count 1: spent
    gce.add_fault(api="compute.addresses.get", status=500, reason="backendError")
    with pytest.raises(cloud.errors.InternalServerError):
        cloud.addresses.get(project=p, region=r, address="a", retry=None)
    assert gce.faults()[1]["fired"] == 1


def test_an_injected_operation_failure(cloud: Gce, gce: GceEmulator) -> None:
    gce.add_fault(api="compute.*.insert", mode="operation", status=503,
                  reason="backendError", message="Internal error")
    operation = cloud.results(cloud.checks).insert(
        project=cloud.project, region=cloud.region, health_check_resource=cloud.c.HealthCheck(
            name="hc", type_="TCP"))
    with pytest.raises(cloud.errors.ServiceUnavailable):
        operation.result(timeout=10)
    assert gce.objects() == {}


def test_a_lost_reply_after_the_write_was_done(cloud: Gce, gce: GceEmulator) -> None:
    gce.add_fault(api="compute.firewalls.insert", mode="lost")
    with pytest.raises(requests.exceptions.ConnectionError):
        cloud.firewalls.insert_unary(project=cloud.project, firewall_resource=cloud.c.Firewall(
            name="fw", allowed=[cloud.c.Allowed(I_p_protocol="tcp", ports=["80"])]))
    assert cloud.firewalls.get(project=cloud.project, firewall="fw").name == "fw"


def test_probable_faults_follow_the_seed(cloud: Gce, gce: GceEmulator) -> None:
    def pattern() -> list[bool]:
        gce.clear_faults()
        gce.seed_random(7)
        gce.add_fault(api="compute.instances.get", status=500, probability=0.5, count=None)
        hits = []
        for _ in range(20):
            try:
                cloud.instances.get(project=cloud.project, zone=cloud.zones[0],
                                    instance="kubernetes-node-1", retry=None)
                hits.append(False)
            except cloud.errors.InternalServerError:
                hits.append(True)
        return hits

    first = pattern()
    assert 0 < sum(first) < 20
    assert pattern() == first


def test_the_call_log_counts_calls_per_api_method(cloud: Gce, gce: GceEmulator) -> None:
    gce.clear_calls()
    before = time.time()
    cloud.load_balancer("web")
    after = time.time()
    counts = gce.counts()
    assert counts["compute.forwardingRules.insert"] == 1
    assert counts["compute.instanceGroups.insert"] == 2
    assert counts["compute.instanceGroups.addInstances"] == 2
    assert counts["compute.regionBackendServices.insert"] == 1
    assert counts["compute.zoneOperations.wait"] == 4
    assert counts["compute.regionOperations.wait"] == 4
    calls = gce.calls()
    assert calls[0]["method"] == "POST" and calls[0]["status"] == 200
    assert calls[0]["path"].endswith(f"/regions/{cloud.region}/healthChecks")
    stamps = [c["at"] for c in calls]  # arrival times, in order, for rate checks
    assert before <= stamps[0] and stamps == sorted(stamps) and stamps[-1] <= after


def test_the_snapshot_finds_what_is_left(cloud: Gce, gce: GceEmulator) -> None:
    p, r = cloud.project, cloud.region
    built = cloud.load_balancer("web")
    objects = gce.objects()
    assert sorted(objects) == ["addresses", "backendServices", "forwardingRules",
                               "healthChecks", "instanceGroups"]
    snapshot = gce.snapshot()
    assert sorted(snapshot["members"]) == [f"projects/{p}/{g}" for g in built["groups"]]
    assert snapshot["pending"] == []
    assert "instances" in gce.snapshot(seeded=True)["objects"]
    cloud.ok(cloud.rules.delete_unary(project=p, region=r, forwarding_rule="web-fr"))
    cloud.ok(cloud.addresses.delete_unary(project=p, region=r, address="web-ip"))
    cloud.ok(cloud.services.delete_unary(project=p, region=r, backend_service="web-bs"))
    cloud.ok(cloud.checks.delete_unary(project=p, region=r, health_check="web-hc"))
    assert sorted(gce.objects()) == ["instanceGroups"]
    for group in built["groups"]:
        _, zone, _, name = group.split("/")
        cloud.ok(cloud.groups.delete_unary(project=p, zone=zone, instance_group=name))
    assert gce.objects() == {}


def test_reset_forgets_objects_faults_quotas_and_operations(cloud: Gce,
                                                            gce: GceEmulator) -> None:
    gce.settings(operationDelay=5)
    op = cloud.addresses.insert_unary(project=cloud.project, region=cloud.region,
                                      address_resource=cloud.c.Address(name="late"))
    gce.add_fault(api="compute.addresses.get")
    gce.set_quotas(STATIC_ADDRESSES=0)
    gce.reset()
    assert gce.objects() == {} and gce.faults() == []
    assert gce.settings()["operationDelay"] == 0
    assert gce.call("GET", "quotas")["STATIC_ADDRESSES"] == 1000
    with pytest.raises(cloud.errors.NotFound):
        cloud.region_ops.get(project=cloud.project, region=cloud.region, operation=op.name)
    assert len(gce.world()["instances"]) == 3  # the world stays


def test_health_set_for_one_backend_service(cloud: Gce, gce: GceEmulator) -> None:
    p, r = cloud.project, cloud.region
    cloud.load_balancer("web")
    group = f"zones/{cloud.zones[1]}/instanceGroups/web-ig"
    gce.set_health(f"zones/{cloud.zones[1]}/instances/kubernetes-node-2", "UNHEALTHY",
                   backend_service="web-bs")
    health = cloud.services.get_health(
        project=p, region=r, backend_service="web-bs",
        resource_group_reference_resource=cloud.c.ResourceGroupReference(group=group))
    [status] = health.health_status
    assert status.health_state == "UNHEALTHY"
    assert status.forwarding_rule == cloud.link(f"regions/{r}/forwardingRules/web-fr")
    gce.clear_health()
    [status] = cloud.services.get_health(
        project=p, region=r, backend_service="web-bs",
        resource_group_reference_resource=cloud.c.ResourceGroupReference(
            group=group)).health_status
    assert status.health_state == "HEALTHY"
