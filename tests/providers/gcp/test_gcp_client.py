"""`GceClient` against the GCE emulator, through the real google-cloud-compute clients: reads
and pages, writes waited for on the emulator's operations (never the public endpoint), the two
error shapes (HTTP and failed operation) mapped to one taxonomy, bounded retries that pass the
rate limit and are each counted, and a failed GET that is never taken for "absent"."""

from __future__ import annotations

import pytest

from lbctl.emulators.gcp.server import GceEmulator
from providers.errors import PermanentError, TransientError
from providers.gcp.client import GceClient, GceError, map_error

pytestmark = pytest.mark.integration

HC = {"name": "hc-1", "type": "TCP", "tcpHealthCheck": {"port": 30080},
      "checkIntervalSec": 8, "timeoutSec": 1, "healthyThreshold": 1, "unhealthyThreshold": 3}








def _hc(gce: GceClient, body: dict[str, object]) -> None:
    gce.write("regionHealthChecks", "insert", scope=("region", gce.settings.region),
              project=gce.settings.project, region=gce.settings.region,
              health_check_resource=gce.compute.HealthCheck.from_json(__import__("json").dumps(
                  body)))


def test_write_waits_for_its_operation_then_reads_and_pages(gce: GceClient,
                                                           emulator: GceEmulator) -> None:
    emulator.settings(operationDelay=0.05)  # RUNNING for a moment: the wait is exercised
    for i in range(3):
        _hc(gce, {**HC, "name": f"hc-{i}"})
    calls = gce.reset_calls()
    assert calls["regionHealthChecks.insert"] == 3
    assert calls["regionOperations.wait"] >= 1  # 0.05 s operations: polled on the emulator
    got = gce.get("regionHealthChecks", project=gce.settings.project,
                  region=gce.settings.region, health_check="hc-1")
    assert got is not None and got["tcpHealthCheck"]["port"] == 30080
    assert gce.get("regionHealthChecks", project=gce.settings.project,
                   region=gce.settings.region, health_check="nope") is None
    listed = list(gce.list("regionHealthChecks", project=gce.settings.project,
                           region=gce.settings.region, max_results=2,
                           filter='name eq "hc-.*"'))
    assert sorted(h["name"] for h in listed) == ["hc-0", "hc-1", "hc-2"]
    assert gce.reset_calls()["regionHealthChecks.list"] == 2  # two pages, each counted
    assert emulator.counts().get("compute.regionHealthChecks.insert") == 3


def test_an_http_refusal_and_a_failed_operation_map_alike(gce: GceClient,
                                                         emulator: GceEmulator) -> None:
    _hc(gce, HC)
    with pytest.raises(GceError) as info:
        _hc(gce, HC)
    assert info.value.exists and info.value.status == 409
    assert isinstance(map_error(info.value), PermanentError)
    emulator.set_quotas(REGION_HEALTH_CHECKS=1)
    with pytest.raises(GceError) as info:
        _hc(gce, {**HC, "name": "hc-2"})
    assert (info.value.status, info.value.reason) == (403, "QUOTA_EXCEEDED")
    mapped = map_error(info.value, "spec.ports")
    assert isinstance(mapped, PermanentError) and mapped.field == "spec.ports"
    assert "quota" in str(mapped)


def test_throttling_is_retried_within_bounds_and_every_attempt_counted(
        gce: GceClient, emulator: GceEmulator) -> None:
    emulator.add_fault(api="compute.regionHealthChecks.get", status=429,
                       reason="rateLimitExceeded", count=2)
    assert gce.get("regionHealthChecks", project=gce.settings.project,
                   region=gce.settings.region, health_check="absent") is None
    assert gce.reset_calls()["regionHealthChecks.get"] == 3
    emulator.add_fault(api="compute.regionHealthChecks.get", status=503, count=None)
    with pytest.raises(GceError) as info:
        gce.get("regionHealthChecks", project=gce.settings.project,
                region=gce.settings.region, health_check="absent")
    assert info.value.status == 503  # a failed GET is an error, never "absent"
    assert gce.reset_calls()["regionHealthChecks.get"] == 5  # max_attempts
    assert isinstance(map_error(info.value), TransientError)


def test_a_busy_object_is_transient_and_retried(gce: GceClient, emulator: GceEmulator) -> None:
    emulator.add_fault(api="compute.regionHealthChecks.insert", status=400,
                       reason="resourceNotReady", count=1)
    _hc(gce, HC)
    assert gce.reset_calls()["regionHealthChecks.insert"] == 2
    in_use = GceError("x.delete", 400, "resourceInUseByAnotherResource", "used by y")
    assert isinstance(map_error(in_use), TransientError)
