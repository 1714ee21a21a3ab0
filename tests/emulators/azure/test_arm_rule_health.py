"""A load-balancing rule's health action (`load_balancer_load_balancing_rules.begin_health`) as
azure-mgmt-network meets it: 202 with Azure-AsyncOperation and Location, then the result at
Location (`LoadBalancerHealthPerRule`: up, down, each backend address's state); Up unless the
admin API set an address Down (for every rule or one rule); 404 for an unknown rule or load
balancer; the load balancer stays writable meanwhile; faults, throttling and the call log as
for any write (ARM bills a POST against the write budget)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from lbctl.emulators.azure.client import network_client

from .conftest import Cloud, NetworkManagementClient, code

pytestmark = pytest.mark.integration
RULE = "a1-TCP-80"


def health(cloud: Cloud, rule: str = RULE, lb: str = "kubernetes", **kw: Any) -> Any:
    return cloud.net.load_balancer_load_balancing_rules.begin_health(
        cloud.group, lb, rule, **kw).result()


def test_every_backend_is_up_until_one_is_marked_down(cloud: Cloud) -> None:
    cloud.public_lb(1)
    cloud.emu.clear_calls()
    answer = health(cloud)
    assert (answer.up, answer.down) == (3, 0)
    assert {(a.ip_address, a.state, a.reason) for a in answer.load_balancer_backend_addresses} \
        == {(n.ip, "Up", "Up_Probe_Success") for n in cloud.world.nodes}
    calls = [c for c in cloud.emu.calls() if c["api"] != "operations.get"]
    assert [(c["method"], c["api"], c["family"], c["status"]) for c in calls] == [
        ("POST", "loadBalancingRules.health", "write", 202),
        ("GET", "operationResults.get", "operation", 200)]
    cloud.emu.set_health(node=cloud.world.nodes[1].name)
    answer = health(cloud)
    assert (answer.up, answer.down) == (2, 1)
    down = [a for a in answer.load_balancer_backend_addresses if a.state == "Down"]
    assert [a.ip_address for a in down] == [cloud.world.nodes[1].ip]
    cloud.emu.set_health(cloud.world.nodes[1].ip, "Up")
    assert health(cloud).up == 3
    cloud.emu.set_health(cloud.world.nodes[0].ip)
    cloud.emu.clear_health()
    assert health(cloud).down == 0


def test_one_rule_alone_can_be_down(cloud: Cloud) -> None:
    pips = [cloud.pip(f"pip-{k}") for k in (1, 2)]
    cloud.put_lb(cloud.load_balancer([cloud.service("a1", pip=pips[0]),
                                      cloud.service("a2", port=81, pip=pips[1])]))
    cloud.emu.set_health(cloud.world.nodes[0].ip, load_balancer="kubernetes", rule="a2-TCP-81")
    assert (health(cloud).up, health(cloud, "a2-TCP-81").up) == (3, 2)


def test_the_action_answers_202_then_its_result_at_location(cloud: Cloud) -> None:
    cloud.public_lb(1)
    cloud.emu.settings(operationDelay=0.3)
    poller = cloud.net.load_balancer_load_balancing_rules.begin_health(
        cloud.group, "kubernetes", RULE)
    first = poller.polling_method()._initial_response.http_response
    assert first.status_code == 202
    assert "/operations/" in first.headers["Azure-AsyncOperation"]
    assert "/operationResults/" in first.headers["Location"]
    # the load balancer is not busy: the action writes nothing
    cloud.public_lb(1)
    assert poller.result().up == 3
    assert cloud.emu.snapshot()["busy"] == {}


def test_unknown_rules_and_load_balancers_are_404(cloud: Cloud) -> None:
    cloud.public_lb(1)
    with pytest.raises(ResourceNotFoundError) as rule:
        health(cloud, "nope")
    assert code(rule.value) == "NotFound"
    with pytest.raises(ResourceNotFoundError) as lb:
        health(cloud, lb="other")
    assert code(lb.value) == "ResourceNotFound"


def test_faults_and_throttling_reach_the_action(cloud: Cloud) -> None:
    cloud.public_lb(1)
    cloud.emu.add_fault(api="loadBalancingRules.health", status=500, count=1)
    with pytest.raises(HttpResponseError) as failed:
        health(cloud)
    assert failed.value.status_code == 500
    cloud.emu.add_fault(api="loadBalancingRules.health", mode="operation",
                        code="InternalServerError", count=1)
    with pytest.raises(HttpResponseError) as operation:
        health(cloud)
    assert code(operation.value) == "InternalServerError"
    assert health(cloud).up == 3  # the faults are spent
    cloud.emu.set_rate_limit({"write": {"rate": 0.001, "burst": 1}, "retryAfter": 7})
    net = network_client(NetworkManagementClient, cloud.emu.endpoint, cloud.emu.subscription)
    assert net.load_balancer_load_balancing_rules.begin_health(
        cloud.group, "kubernetes", RULE).result().up == 3  # the bucket's one token
    started = time.monotonic()
    with pytest.raises(HttpResponseError) as throttled:
        health(cloud)
    assert throttled.value.status_code == 429 and time.monotonic() - started < 5
    assert code(throttled.value) == "SubscriptionRequestsThrottled"
