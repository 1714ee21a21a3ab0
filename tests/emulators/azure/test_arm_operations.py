"""Long-running operations, faults and throttling as azure-mgmt-network meets them: InProgress
writes (Updating, then Succeeded; 409 AnotherOperationInProgress meanwhile), failed operations
classified by `error.code`, HTTP faults with Retry-After, 429s from the rate limit, lost replies
and the call log."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
)

from .conftest import Cloud, code, m

pytestmark = pytest.mark.integration


def retry_after(exc: HttpResponseError) -> str:
    response: Any = exc.response
    return str(response.headers["Retry-After"])


def test_a_write_is_updating_until_its_operation_succeeds(cloud: Cloud) -> None:
    cloud.emu.settings(operationDelay=0.4)
    poller = cloud.net.public_ip_addresses.begin_create_or_update(
        cloud.group, "slow", m.PublicIPAddress(location=cloud.location,
                                               sku=m.PublicIPAddressSku(name="Standard"),
                                               public_ip_allocation_method="Static"))
    seen = cloud.net.public_ip_addresses.get(cloud.group, "slow")
    assert seen.provisioning_state == "Updating" and seen.ip_address
    with pytest.raises(ResourceExistsError) as busy:
        cloud.pip("slow")
    assert busy.value.status_code == 409 and code(busy.value) == "AnotherOperationInProgress"
    with pytest.raises(HttpResponseError) as referenced:
        cloud.put_lb(cloud.load_balancer([cloud.service("a1", pip=seen)]))
    assert code(referenced.value) == "ReferencedResourceNotProvisioned"
    done = poller.result()
    assert done.provisioning_state == "Succeeded" and done.ip_address == seen.ip_address
    deleting = cloud.net.public_ip_addresses.begin_delete(cloud.group, "slow")
    assert cloud.net.public_ip_addresses.get(cloud.group, "slow").provisioning_state == \
        "Deleting"
    deleting.result()
    assert cloud.emu.objects() == {}
    counts = cloud.emu.counts()
    assert counts["operations.get"] >= 4 and counts["publicIPAddresses.put"] == 2


def test_a_failed_operation_rolls_back_and_raises_its_code(cloud: Cloud) -> None:
    cloud.emu.add_fault(api="loadBalancers.put", mode="operation", code="QuotaExceeded",
                        message="Operation could not be completed as it results in exceeding "
                                "approved LoadBalancers quota.")
    with pytest.raises(HttpResponseError) as failed:
        cloud.public_lb(1)
    assert code(failed.value) == "QuotaExceeded" and failed.value.status_code == 200
    assert "loadBalancers" not in cloud.emu.objects()
    lb = cloud.public_lb(1)  # the fault fired once
    cloud.emu.add_fault(api="loadBalancers.put", mode="operation", code="InternalServerError")
    lb.tags = {"changed": "yes"}
    with pytest.raises(HttpResponseError):
        cloud.put_lb(lb)
    after = cloud.net.load_balancers.get(cloud.group, "kubernetes")
    assert after.tags in ({}, None) and after.provisioning_state == "Succeeded"
    cloud.emu.add_fault(api="loadBalancers.delete", mode="operation", code="Canceled")
    with pytest.raises(HttpResponseError) as cancelled:
        cloud.net.load_balancers.begin_delete(cloud.group, "kubernetes").result()
    assert code(cancelled.value) == "Canceled"
    assert cloud.net.load_balancers.get(cloud.group, "kubernetes").name == "kubernetes"


def test_http_faults_carry_their_status_code_and_retry_after(cloud: Cloud) -> None:
    cloud.emu.add_fault(api="publicIPAddresses.get", status=503, code="ServiceUnavailable",
                        retry_after=7, count=2)
    for _ in range(2):
        with pytest.raises(HttpResponseError) as unavailable:
            cloud.net.public_ip_addresses.get(cloud.group, "x")
        assert unavailable.value.status_code == 503
        assert retry_after(unavailable.value) == "7"
        assert code(unavailable.value) == "ServiceUnavailable"
    with pytest.raises(HttpResponseError) as missing:
        cloud.net.public_ip_addresses.get(cloud.group, "x")
    assert missing.value.status_code == 404
    statuses = [(c["api"], c["status"]) for c in cloud.emu.calls()]
    assert statuses == [("publicIPAddresses.get", 503)] * 2 + [("publicIPAddresses.get", 404)]
    cloud.emu.add_fault(api="*.put", probability=0.0)
    assert cloud.pip("fine").name == "fine"
    assert cloud.emu.faults()[-1]["fired"] == 0


def test_the_rate_limit_answers_429_with_retry_after(cloud: Cloud) -> None:
    cloud.emu.set_rate_limit({"write": {"rate": 0.2, "burst": 2}, "retryAfter": 3})
    cloud.pip("one")
    cloud.pip("two")
    with pytest.raises(HttpResponseError) as throttled:
        cloud.pip("three")
    assert throttled.value.status_code == 429
    assert code(throttled.value) == "SubscriptionRequestsThrottled"
    assert retry_after(throttled.value) == "3"
    assert len(list(cloud.net.public_ip_addresses.list(cloud.group))) == 2  # reads still pass
    cloud.emu.set_rate_limit({})
    assert cloud.pip("three").name == "three"


def test_a_lost_reply_leaves_the_write_done(cloud: Cloud) -> None:
    cloud.emu.add_fault(api="publicIPAddresses.put", mode="lost")
    with pytest.raises((ServiceResponseError, ServiceRequestError)):
        cloud.pip("lost")
    assert cloud.net.public_ip_addresses.get(cloud.group, "lost").provisioning_state == \
        "Succeeded"
    first = cloud.emu.calls()[0]
    assert (first["api"], first["status"]) == ("publicIPAddresses.put", 201)


def test_reset_keeps_or_drops_the_world_and_nodes_come_and_go(cloud: Cloud) -> None:
    cloud.public_lb(1)
    cloud.emu.settings(operationDelay=1.5)
    world = cloud.emu.add_nodes(2)
    assert [n.name for n in world.nodes][-2:] == ["kubernetes-node-4", "kubernetes-node-5"]
    assert [n.ip for n in world.nodes][-2:] == ["10.224.0.7", "10.224.0.8"]
    world = cloud.emu.remove_node("kubernetes-node-2")
    assert "kubernetes-node-2" not in [n.name for n in world.nodes]
    start = time.monotonic()
    cloud.emu.reset(keep_world=True)
    assert time.monotonic() - start < 5
    assert cloud.emu.objects() == {} and cloud.emu.settings()["operationDelay"] == 0.0
    kept = cloud.emu.read_world()
    assert kept.vnet == "kubernetes-vnet" and len(kept.nodes) == 4
    assert cloud.net.network_security_groups.get(cloud.group, kept.nsg).name == kept.nsg
    cloud.emu.reset(keep_world=False)
    assert cloud.emu.read_world().nodes == ()
    assert cloud.emu.counts() == {}


def test_two_writers_with_one_etag_one_wins(cloud: Cloud) -> None:
    lb = cloud.public_lb(1)
    cloud.emu.settings(operationDelay=0.3)
    first = cloud.net.load_balancers.begin_create_or_update(cloud.group, "kubernetes", lb,
                                                            headers={"If-Match": lb.etag})
    with pytest.raises(HttpResponseError) as stale:
        cloud.put_lb(lb, headers={"If-Match": lb.etag})
    assert stale.value.status_code == 412
    with pytest.raises(ResourceExistsError) as busy:
        cloud.put_lb(lb)  # no etag: meets the operation still running
    assert code(busy.value) == "AnotherOperationInProgress"
    assert first.result().provisioning_state == "Succeeded"
