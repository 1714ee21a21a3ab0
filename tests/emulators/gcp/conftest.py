"""Fixtures for the GCE emulator's tests: one emulator per worker, the real SDK's clients on it.

Everything goes through `google.cloud.compute_v1` built the way a provider must build it:
`ClientOptions(api_endpoint=URL)`, `AnonymousCredentials()`, `transport="rest"`; writes through
the `*_unary` calls and the operations clients' `wait`, or through `.result()` after handing
the transport operations clients on the same endpoint (`Gce.results`). The SDK costs seconds
to import: the `sdk` fixture imports it once per module (Python keeps it for the process) and
hands it out untyped, so mypy never reads its 100,000-line types module.

The emulator runs with operations DONE at once (`operationDelay` 0); tests that need RUNNING
operations set a delay through the admin API, which the per-test reset undoes.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pytest

from lbctl.emulators.gcp.server import GceEmulator
from lbctl.emulators.gcp.world import World

API = "https://www.googleapis.com/compute/v1/"


@dataclass(frozen=True)
class Sdk:
    compute: Any
    """google.cloud.compute_v1"""
    errors: Any
    """google.api_core.exceptions"""
    options: Any
    """google.api_core.client_options.ClientOptions"""
    credentials: Any
    """an AnonymousCredentials"""


@pytest.fixture(scope="module")
def sdk() -> Sdk:
    return Sdk(importlib.import_module("google.cloud.compute_v1"),
               importlib.import_module("google.api_core.exceptions"),
               importlib.import_module("google.api_core.client_options").ClientOptions,
               importlib.import_module("google.auth.credentials").AnonymousCredentials())


@pytest.fixture(scope="session")
def emulator() -> Iterator[GceEmulator]:
    with GceEmulator(operation_delay=0.0) as emu:  # started, and stopped after
        yield emu


@pytest.fixture
def gce(emulator: GceEmulator) -> GceEmulator:
    """The emulator, reset: the bare project, no faults, default quotas and settings."""
    emulator.reset(keep_world=False)
    return emulator


@pytest.fixture
def world(gce: GceEmulator) -> World:
    """Three instances `kubernetes-node-1..3` over `us-central1-a` and `-b`."""
    return gce.seed("kubernetes", 3)


@pytest.fixture
def cloud(sdk: Sdk, gce: GceEmulator, world: World) -> Gce:
    return Gce(sdk, gce.endpoint, world)


class Gce:
    """The SDK's clients on the emulator, and the steps tests repeat (waiting, building)."""

    def __init__(self, sdk: Sdk, endpoint: str, world: World) -> None:
        self.sdk, self.c, self.errors = sdk, sdk.compute, sdk.errors
        self.endpoint = endpoint
        self.world = world
        self.project, self.region = world.project, world.region
        self.zones = list(world.zones)

    def client(self, name: str) -> Any:
        return getattr(self.c, name)(client_options=self.sdk.options(api_endpoint=self.endpoint),
                                     credentials=self.sdk.credentials, transport="rest")

    @cached_property
    def addresses(self) -> Any:
        return self.client("AddressesClient")

    @cached_property
    def rules(self) -> Any:
        return self.client("ForwardingRulesClient")

    @cached_property
    def services(self) -> Any:
        return self.client("RegionBackendServicesClient")

    @cached_property
    def checks(self) -> Any:
        return self.client("RegionHealthChecksClient")

    @cached_property
    def global_checks(self) -> Any:
        return self.client("HealthChecksClient")

    @cached_property
    def firewalls(self) -> Any:
        return self.client("FirewallsClient")

    @cached_property
    def groups(self) -> Any:
        return self.client("InstanceGroupsClient")

    @cached_property
    def instances(self) -> Any:
        return self.client("InstancesClient")

    @cached_property
    def region_ops(self) -> Any:
        return self.client("RegionOperationsClient")

    @cached_property
    def zone_ops(self) -> Any:
        return self.client("ZoneOperationsClient")

    @cached_property
    def global_ops(self) -> Any:
        return self.client("GlobalOperationsClient")

    def results(self, client: Any) -> Any:
        """`client` with its transport's operations clients on the emulator, so the SDK's own
        `.result()` polls here (it builds them for the public endpoint otherwise)."""
        client._transport._extended_operations_services.update(
            region_operations=self.region_ops, zone_operations=self.zone_ops,
            global_operations=self.global_ops)
        return client

    # -- operations ---------------------------------------------------------------------------
    def wait(self, op: Any, timeout: float = 30.0) -> Any:
        """The operation once DONE (through the operations clients' `wait`)."""
        deadline = time.monotonic() + timeout
        while True:
            if op.zone:
                op = self.zone_ops.wait(project=self.project, zone=op.zone.rsplit("/", 1)[1],
                                        operation=op.name)
            elif op.region:
                op = self.region_ops.wait(project=self.project,
                                          region=op.region.rsplit("/", 1)[1], operation=op.name)
            else:
                op = self.global_ops.wait(project=self.project, operation=op.name)
            if op.status == self.c.Operation.Status.DONE or time.monotonic() > deadline:
                return op

    def ok(self, op: Any) -> Any:
        """Wait and insist the write succeeded."""
        done = self.wait(op)
        assert done.status == self.c.Operation.Status.DONE
        assert not done.error.errors, done.error
        assert not done.http_error_status_code
        return done

    # -- building blocks ----------------------------------------------------------------------
    def link(self, path: str) -> str:
        return f"{API}projects/{self.project}/{path}"

    def here(self, collection: str, name: str) -> str:
        return f"regions/{self.region}/{collection}/{name}"

    def health_check(self, name: str = "hc", port: int = 10256) -> Any:
        return self.ok(self.checks.insert_unary(
            project=self.project, region=self.region, health_check_resource=self.c.HealthCheck(
                name=name, type_="HTTP", http_health_check=self.c.HTTPHealthCheck(
                    port=port, request_path="/healthz"))))

    def group(self, zone: str, name: str = "ig", members: list[str] | None = None) -> str:
        """An instance group of `zone` holding `members` (default: the world's nodes there)."""
        self.ok(self.groups.insert_unary(project=self.project, zone=zone,
                                         instance_group_resource=self.c.InstanceGroup(name=name)))
        names = members if members is not None else [
            n.name for n in self.world.nodes if n.zone == zone]
        if names:
            self.ok(self.groups.add_instances_unary(
                project=self.project, zone=zone, instance_group=name,
                instance_groups_add_instances_request_resource=self.instance_refs(zone, names)))
        return f"zones/{zone}/instanceGroups/{name}"

    def instance_refs(self, zone: str, names: list[str]) -> Any:
        return self.c.InstanceGroupsAddInstancesRequest(instances=[
            self.c.InstanceReference(instance=f"projects/{self.project}/zones/{zone}/instances/{n}")
            for n in names])

    def backend_service(self, name: str = "bs", groups: list[str] | None = None,
                        check: str = "hc", protocol: str = "TCP", scheme: str = "EXTERNAL",
                        **extra: Any) -> Any:
        backends = [self.c.Backend(group=g, balancing_mode="CONNECTION") for g in groups or []]
        return self.ok(self.services.insert_unary(
            project=self.project, region=self.region,
            backend_service_resource=self.c.BackendService(
                name=name, load_balancing_scheme=scheme, protocol=protocol,
                health_checks=[self.here("healthChecks", check)], backends=backends, **extra)))

    def address(self, name: str = "ip", **extra: Any) -> Any:
        self.ok(self.addresses.insert_unary(project=self.project, region=self.region,
                                            address_resource=self.c.Address(name=name, **extra)))
        return self.addresses.get(project=self.project, region=self.region, address=name)

    def rule(self, name: str = "fr", service: str = "bs", **fields: Any) -> Any:
        fields.setdefault("ports", ["80"])
        return self.rules.insert_unary(
            project=self.project, region=self.region,
            forwarding_rule_resource=self.c.ForwardingRule(
                name=name, backend_service=self.here("backendServices", service), **fields))

    def load_balancer(self, name: str = "lb") -> dict[str, Any]:
        """A whole external passthrough NLB: check, one group per zone, backend service,
        reserved address, forwarding rule on ports 80 and 443."""
        self.health_check(f"{name}-hc")
        groups = [self.group(zone, f"{name}-ig") for zone in self.zones]
        self.backend_service(f"{name}-bs", groups, check=f"{name}-hc")
        address = self.address(f"{name}-ip")
        self.ok(self.rule(f"{name}-fr", f"{name}-bs", I_p_address=address.address,
                          ports=["80", "443"]))
        return {"groups": groups, "address": address.address}


def reason(exc: BaseException) -> str:
    """The reason GCE gave, as a provider must read it over REST (`errors[0]["reason"]`)."""
    errors = getattr(exc, "errors", None) or [{}]
    first = errors[0]
    return str(first.get("reason", "") if isinstance(first, dict) else getattr(first, "code", ""))
