"""Node changes cost one ensure per affected Service; errors map to the right retry policy;
meltdown protection; orphans; a restart converges without duplicates."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from providers.errors import PermanentError, RetryAfter, TransientError
from providers.fake import FakeProvider
from providers.spec import (
    BalancerRef,
    IngressPoint,
    LoadBalancerSpec,
    LoadBalancerStatus,
    ServiceRef,
)
from tests.conftest import svc, wait_for
from tests.controller.conftest import (
    CONFIG,
    Running,
    sample,
    settle,
    start_controller,
    stop_controller,
)

pytestmark = pytest.mark.integration


def _ready(core: client.CoreV1Api, *names: str) -> None:
    def all_have_ingress() -> bool:
        for name in names:
            got = core.read_namespaced_service(name, "default")
            if not (got.status.load_balancer and got.status.load_balancer.ingress):
                return False
        return True

    wait_for(all_have_ingress, what=f"ingress on {names}")


def _retry_in(run: Running, key: str) -> float | None:
    """Seconds until the work queue takes `key` again on its own; None: never."""
    queue = run.controller.queue
    assert queue is not None
    return queue.due_in(key)


def _node(name: str, ip: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"providerID": f"sandbox://{name}"},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}


def test_node_add_costs_one_ensure_per_service(running: Running,
                                               core_api: client.CoreV1Api) -> None:
    names = [f"s{i}" for i in range(5)]
    for name in names:
        core_api.create_namespaced_service("default", svc(name, type="LoadBalancer"))
    _ready(core_api, *names)
    settle(running, core_api)
    before = len(running.fake.ops("ensure"))
    passes = sample(running, "lbctl_node_syncs_total")
    queued = sample(running, "lbctl_node_sync_queued_total")
    for k in (4, 5):  # two node events inside one debounce window
        core_api.create_node(_node(f"extra-{k}", f"127.0.10.{k}"))
    settle(running, core_api)  # both events delivered, the pass ran, its syncs finished
    assert sample(running, "lbctl_node_syncs_total") > passes
    assert sample(running, "lbctl_node_sync_queued_total") == queued + 5
    after = running.fake.ops("ensure")[before:]
    assert sorted(c.service for c in after) == sorted(f"default/{n}" for n in names)
    assert all("extra-4" in c.targets and "extra-5" in c.targets for c in after)
    # A change that does not alter targets (a label) costs nothing: the controller saw it
    # (its cache has the label, the informer delivered it) and started no pass.
    passes = sample(running, "lbctl_node_syncs_total")
    core_api.patch_node("extra-4", {"metadata": {"labels": {"team": "x"}}})
    settle(running, core_api)
    seen = running.controller.nodes.get("extra-4")
    assert seen is not None and seen.labels.get("team") == "x"
    assert sample(running, "lbctl_node_syncs_total") == passes
    assert len(running.fake.ops("ensure")) == before + 5
    # Excluding a node removes it from every balancer.
    core_api.patch_node("extra-5", {"metadata": {"labels": {
        "node.kubernetes.io/exclude-from-external-load-balancers": "true"}}})
    wait_for(lambda: len(running.fake.ops("ensure")) >= before + 10, what="exclusion")
    assert all("extra-5" not in c.targets for c in running.fake.ops("ensure")[before + 5:])


def test_meltdown_protection_holds_back_removals(running: Running,
                                                core_api: client.CoreV1Api) -> None:
    core_api.create_namespaced_service("default", svc("m", type="LoadBalancer"))
    _ready(core_api, "m")
    exclude = {"metadata": {"labels": {
        "node.kubernetes.io/exclude-from-external-load-balancers": "true"}}}
    # 2 of 3 nodes leave at once; maxRemovedFraction 0.5 lets one go now, holds the other.
    for k in (1, 2):
        core_api.patch_node(f"sandbox-node-{k}", exclude)
    wait_for(lambda: len(running.fake.ops("ensure")) >= 2, what="node sync")
    assert running.fake.ops("ensure")[1].targets == ("sandbox-node-2", "sandbox-node-3")

    def degraded() -> str:
        got = core_api.read_namespaced_service("m", "default")
        cond = {c.type: c for c in got.status.conditions}["LoadBalancerDegraded"]
        return cond.message if cond.status == "True" else ""

    assert "sandbox-node-2" in wait_for(degraded, what="degraded condition")
    # All nodes gone: never down to zero; nothing is written to the provider. The pass ran
    # and queued m, and m's sync finished, before that is asserted.
    settle(running, core_api)
    passes = sample(running, "lbctl_node_syncs_total")
    queued = sample(running, "lbctl_node_sync_queued_total")
    syncs = sample(running, "lbctl_syncs_total")
    core_api.patch_node("sandbox-node-3", exclude)
    settle(running, core_api)
    assert sample(running, "lbctl_node_syncs_total") > passes
    assert sample(running, "lbctl_node_sync_queued_total") == queued + 1
    assert sample(running, "lbctl_syncs_total") > syncs
    assert all(c.targets for c in running.fake.ops("ensure"))


def test_permanent_error_names_the_field_and_is_not_retried_hot(
        running: Running, core_api: client.CoreV1Api) -> None:
    body = svc("bad", type="LoadBalancer")
    body["metadata"]["annotations"] = {"fake.lbctl.io/fail": "please"}
    core_api.create_namespaced_service("default", body)

    def warned() -> list[str]:
        running.events.flush()
        return [e.message for e in core_api.list_namespaced_event(
            "default", field_selector="involvedObject.name=bad").items
            if e.type == "Warning"]

    messages = wait_for(warned, what="warning event")
    assert "metadata.annotations[fake.lbctl.io/fail]" in messages[0]
    got = core_api.read_namespaced_service("bad", "default")
    cond = {c.type: c for c in got.status.conditions}
    assert cond["LoadBalancerServing"].status == "False"
    assert "fake.lbctl.io/fail" in cond["LoadBalancerServing"].message
    # Its own writes (finalizer, status) came back as watch events: once they were delivered
    # and acted on, one sync in all and no retry waiting means it is not retried at all.
    settle(running, core_api)
    assert sample(running, "lbctl_syncs_total") == 1
    assert _retry_in(running, "default/bad") is None
    assert running.fake.ops("ensure") == []
    # Fixing the annotation brings it back without waiting for a backoff.
    core_api.patch_namespaced_service("bad", "default", {"metadata": {"annotations": {
        "fake.lbctl.io/fail": None}}})
    _ready(core_api, "bad")


def test_transient_and_retry_after(running: Running, core_api: client.CoreV1Api) -> None:
    running.fake.fail_next("ensure", RetryAfter(0.3, "still provisioning"))
    running.fake.fail_next("ensure", TransientError("throttled", retry_after=0.3))
    core_api.create_namespaced_service("default", svc("slow", type="LoadBalancer"))
    _ready(core_api, "slow")
    assert len(running.fake.ops("ensure")) == 3


def test_retry_after_with_a_partial_status_writes_the_hostname_while_provisioning(
        running: Running, core_api: client.CoreV1Api) -> None:
    partial = LoadBalancerStatus(ingress=(IngressPoint(hostname="lb-1.elb.example"),))
    running.fake.fail_next("ensure", RetryAfter(5.0, "AWS says provisioning", status=partial))
    core_api.create_namespaced_service("default", svc("nlb", type="LoadBalancer"))

    def provisioning() -> Any:
        got = core_api.read_namespaced_service("nlb", "default")
        ingress = got.status.load_balancer.ingress if got.status.load_balancer else None
        return got if ingress else None

    got = wait_for(provisioning, what="the hostname while provisioning")
    assert [i.hostname for i in got.status.load_balancer.ingress] == ["lb-1.elb.example"]
    cond = {c.type: c for c in got.status.conditions}
    assert (cond["LoadBalancerProvisioning"].status,
            cond["LoadBalancerProvisioning"].message) == ("True", "AWS says provisioning")
    assert cond["LoadBalancerServing"].status == "True"
    assert len(running.fake.ops("ensure")) == 1  # polled after 5 s, not hot


def test_orphans_are_collected(running: Running, core_api: client.CoreV1Api) -> None:
    core_api.create_namespaced_service("default", svc("live", type="LoadBalancer"))
    _ready(core_api, "live")
    orphan = BalancerRef("lb-gone-1", "kubernetes", ServiceRef("default", "gone", "uid-gone"))
    foreign = BalancerRef("lb-other-1", "other-cluster", ServiceRef("default", "x", "uid-x"))
    live = next(iter(running.fake.balancers.values()))
    for ref in (orphan, foreign):
        running.fake.balancers[ref.name] = LoadBalancerSpec(
            ref=ref, listeners=live.listeners, targets=live.targets,
            health_check=live.health_check)
    assert running.controller.collect_orphans() == 1
    assert set(running.fake.balancers) == {live.name, foreign.name}


def test_restart_mid_life_converges(ctl_sandbox: object, core_api: client.CoreV1Api) -> None:
    first = start_controller(ctl_sandbox, CONFIG)  # type: ignore[arg-type]
    core_api.create_namespaced_service("default", svc("r", type="LoadBalancer"))
    _ready(core_api, "r")
    stop_controller(first)
    # While lbctl is down: the port changes and another Service is deleted-to-ClusterIP.
    core_api.patch_namespaced_service("r", "default", {"spec": {"ports": [
        {"port": 80, "$patch": "delete"}, {"name": "h", "port": 81, "targetPort": 8080}]}})
    cloud = FakeProvider(balancers=dict(first.fake.balancers),  # the same cloud
                         addresses=dict(first.fake.addresses))
    second = start_controller(ctl_sandbox, CONFIG, cloud)  # type: ignore[arg-type]
    try:
        wait_for(lambda: second.fake.ops("ensure"), what="ensure after restart")
        assert len(second.fake.balancers) == 1
        spec = next(iter(second.fake.balancers.values()))
        assert [li.port for li in spec.listeners] == [81]
    finally:
        stop_controller(second)


def test_permanent_error_from_provider_on_ensure(running: Running,
                                                 core_api: client.CoreV1Api) -> None:
    running.fake.fail_next("ensure", PermanentError("spec.ports[0].protocol", "SCTP? no"))
    core_api.create_namespaced_service("default", svc("perm", type="LoadBalancer"))
    wait_for(lambda: running.fake.ops("ensure"), what="first ensure")
    settle(running, core_api)  # the failed sync and the watch events of its writes handled
    assert sample(running, "lbctl_syncs_total") == 1
    assert sample(running, "lbctl_sync_errors_total", reason="PermanentError") == 1
    assert _retry_in(running, "default/perm") is None
    assert len(running.fake.ops("ensure")) == 1


def test_an_allocation_failure_is_reported_as_allocation_failed(
        running: Running, core_api: client.CoreV1Api) -> None:
    """MetalLB's users look for `AllocationFailed`: an error the provider marks as an
    allocation problem keeps its condition and is recorded under that reason."""
    from providers.errors import allocation_failed

    running.fake.fail_next("ensure", allocation_failed(TransientError(
        'no available IPs in pool(s) "main" for IPv4')))
    core_api.create_namespaced_service("default", svc("full", type="LoadBalancer"))

    def warnings() -> list[tuple[str, str]]:
        running.events.flush()
        return [(e.reason, e.message) for e in core_api.list_namespaced_event(
            "default", field_selector="involvedObject.name=full").items
            if e.type == "Warning"]

    (reason, message), *_ = wait_for(warnings, what="warning event")
    assert reason == "AllocationFailed" and 'pool(s) "main"' in message
    _ready(core_api, "full")  # retried, and served once the pool had room
    assert len(running.fake.ops("ensure")) == 2


def test_a_working_service_broken_then_fixed_is_ensured_again(
        running: Running, core_api: client.CoreV1Api) -> None:
    """The fixed Service's spec equals the last one ensured: the sync after a failure must
    still reach the provider, or the failure stays in its status until a resync."""
    core_api.create_namespaced_service("default", svc("ok", type="LoadBalancer"))
    _ready(core_api, "ok")
    ensures = len(running.fake.ops("ensure"))
    core_api.patch_namespaced_service("ok", "default", {"metadata": {"annotations": {
        "fake.lbctl.io/fail": "please"}}})

    def condition(reason: str) -> bool:
        got = core_api.read_namespaced_service("ok", "default")
        return any(c.type == "LoadBalancerProvisioning" and c.reason == reason
                   for c in got.status.conditions or [])

    wait_for(lambda: condition("InvalidConfiguration"), what="the failure in the status")
    core_api.patch_namespaced_service("ok", "default", {"metadata": {"annotations": {
        "fake.lbctl.io/fail": None}}})
    wait_for(lambda: not condition("InvalidConfiguration"), what="the failure cleared")
    assert len(running.fake.ops("ensure")) == ensures + 1  # the provider was asked again
