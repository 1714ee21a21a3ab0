"""Fixtures for the ARM emulator's tests: one emulator per worker, azure-mgmt-network on it.

Everything goes through `azure.mgmt.network.NetworkManagementClient` built by the emulator's
own recipe (`lbctl.emulators.azure.client.network_client`: a static bearer token, an
authentication policy that allows http, retries off, a 50 ms polling interval), plus the admin
client for what ARM has no API for (faults, the call log, the world). The emulator runs with
operations done at once (`operationDelay` 0); tests that need InProgress operations set a delay
through the admin API, which the per-test reset undoes.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest

from lbctl.emulators.azure.client import network_client
from lbctl.emulators.azure.server import AzureEmulator
from lbctl.emulators.azure.world import World

m: Any = importlib.import_module("azure.mgmt.network.models")
"""The SDK's models, untyped: their generated constructors type only `properties=`, not the
flattened keywords the SDK accepts (and documents) at run time."""
NetworkManagementClient: Any = importlib.import_module("azure.mgmt.network").NetworkManagementClient


@pytest.fixture(scope="session")
def emulator() -> Iterator[AzureEmulator]:
    with AzureEmulator(operation_delay=0.0) as emu:
        yield emu


@pytest.fixture
def emu(emulator: AzureEmulator) -> AzureEmulator:
    """The emulator, reset to a bare resource group with default settings and no faults."""
    emulator.reset(keep_world=False)
    return emulator


@pytest.fixture
def world(emu: AzureEmulator) -> World:
    """`kubernetes-vnet` / `kubernetes-nodes` / `kubernetes-nsg` and three VMs."""
    return emu.seed("kubernetes", 3)


@pytest.fixture
def net(emu: AzureEmulator) -> Any:
    return network_client(NetworkManagementClient, emu.endpoint, emu.subscription)


@pytest.fixture
def cloud(emu: AzureEmulator, world: World, net: Any) -> Cloud:
    return Cloud(emu, world, net)


class Cloud:
    """The SDK's client on the emulator and the building blocks tests repeat."""

    def __init__(self, emu: AzureEmulator, world: World, net: Any) -> None:
        self.emu, self.world, self.net = emu, world, net
        self.group, self.location = world.resource_group, world.location

    def lb_id(self, name: str = "kubernetes") -> str:
        return (f"/subscriptions/{self.world.subscription}/resourceGroups/{self.group}/"
                f"providers/Microsoft.Network/loadBalancers/{name}")

    def part(self, collection: str, name: str, lb: str = "kubernetes") -> Any:
        return m.SubResource(id=f"{self.lb_id(lb)}/{collection}/{name}")

    def pip(self, name: str = "pip", headers: dict[str, str] | None = None,
            **extra: Any) -> Any:
        extra.setdefault("sku", m.PublicIPAddressSku(name="Standard"))
        extra.setdefault("public_ip_allocation_method", "Static")
        return self.net.public_ip_addresses.begin_create_or_update(
            self.group, name, m.PublicIPAddress(location=self.location, **extra),
            headers=headers or {}).result()

    def pool(self, name: str = "kubernetes", nodes: Any = None) -> Any:
        chosen = self.world.nodes if nodes is None else nodes
        return m.BackendAddressPool(name=name, load_balancer_backend_addresses=[
            m.LoadBalancerBackendAddress(name=n.name, ip_address=n.ip,
                                         virtual_network=m.SubResource(id=self.world.vnet_id))
            for n in chosen])

    def service(self, fe: str, port: int = 80, pip: Any = None, internal: bool = False,
                lb: str = "kubernetes", **frontend: Any) -> dict[str, Any]:
        """One Service's parts: a frontend, a probe and a rule on `port`."""
        if internal:
            frontend.setdefault("subnet", m.Subnet(id=self.world.subnet_id))
        elif pip is not None:
            frontend["public_ip_address"] = m.PublicIPAddress(id=pip.id)
        return {
            "frontend": m.FrontendIPConfiguration(name=fe, **frontend),
            "probe": m.Probe(name=f"{fe}-TCP-{port}", protocol="Tcp", port=30000 + port,
                             interval_in_seconds=5, number_of_probes=2),
            "rule": m.LoadBalancingRule(
                name=f"{fe}-TCP-{port}", protocol="Tcp", frontend_port=port, backend_port=port,
                enable_floating_ip=True, idle_timeout_in_minutes=4, enable_tcp_reset=True,
                frontend_ip_configuration=self.part("frontendIPConfigurations", fe, lb),
                backend_address_pool=self.part("backendAddressPools", "kubernetes", lb),
                probe=self.part("probes", f"{fe}-TCP-{port}", lb))}

    def load_balancer(self, services: list[dict[str, Any]], pool: Any = None) -> Any:
        return m.LoadBalancer(
            location=self.location, sku=m.LoadBalancerSku(name="Standard"),
            frontend_ip_configurations=[s["frontend"] for s in services],
            backend_address_pools=[pool if pool is not None else self.pool()],
            probes=[s["probe"] for s in services],
            load_balancing_rules=[s["rule"] for s in services])

    def put_lb(self, lb: Any, name: str = "kubernetes", **kwargs: Any) -> Any:
        return self.net.load_balancers.begin_create_or_update(self.group, name, lb,
                                                              **kwargs).result()

    def public_lb(self, count: int = 1, name: str = "kubernetes") -> Any:
        """A load balancer of `count` public Services `a1..aN` on port 80 (their IPs
        `pip-1..N`)."""
        pips = [self.pip(f"pip-{k}") for k in range(1, count + 1)]
        return self.put_lb(self.load_balancer(
            [self.service(f"a{k}", pip=p, lb=name) for k, p in enumerate(pips, 1)]), name)


def code(exc: BaseException) -> str:
    """ARM's error code, as a provider must read it (`error.code`)."""
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", "") or "")


def message(exc: BaseException) -> str:
    error = getattr(exc, "error", None)
    return str(getattr(error, "message", "") or "")
