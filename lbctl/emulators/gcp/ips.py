"""IP addresses: the external pool of each region and the internal ranges of the subnetworks.

External addresses come from a made-up /16 per region (`35.200.0.0/16` for the main region,
`35.201.0.0/16` for the next, ...): enough to tell regions apart, none of them routable
from here. Internal ones come from the subnetwork's range, skipping what GCE reserves (the
network and gateway addresses at the start, two at the end) and what instances, reserved
addresses and forwarding rules hold. Pending writes count: two creates in flight never get the
same address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from .errors import GceError
from .links import Key
from .store import Store


def external_pool(store: Store, region: str) -> ipaddress.IPv4Network:
    index = list(store.regions).index(region)
    return ipaddress.IPv4Network(f"35.{200 + index}.0.0/16")


def external_in_use(store: Store, region: str) -> set[str]:
    scope = f"regions/{region}"
    used = {o["address"] for k, o in store.view("addresses")
            if k.scope == scope and o.get("addressType") == "EXTERNAL"}
    used |= {o["IPAddress"] for k, o in store.view("forwardingRules")
             if k.scope == scope and o.get("loadBalancingScheme") == "EXTERNAL"}
    return used


def allocate_external(store: Store, region: str) -> str:
    used = external_in_use(store, region)
    for host in _hosts(external_pool(store, region), skip_start=10):
        if str(host) not in used:
            return str(host)
    raise GceError(503, "resourceExhausted", f"The emulated external pool of {region} is full")


def internal_in_use(store: Store, subnetwork: str) -> set[str]:
    used = {nic["networkIP"] for _, o in store.view("instances")
            for nic in o.get("networkInterfaces", []) if nic.get("subnetwork") == subnetwork}
    used |= {o["address"] for _, o in store.view("addresses")
             if o.get("addressType") == "INTERNAL" and o.get("subnetwork") == subnetwork}
    used |= {o["IPAddress"] for _, o in store.view("forwardingRules")
             if o.get("loadBalancingScheme") == "INTERNAL" and o.get("subnetwork") == subnetwork}
    return used


def subnet_range(subnet: dict[str, Any]) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(subnet["ipCidrRange"])


def usable(subnet: dict[str, Any], ip: str) -> bool:
    """Whether `ip` lies in the subnetwork's range outside what GCE reserves."""
    network = subnet_range(subnet)
    address = ipaddress.IPv4Address(ip)
    return (address in network and address >= network.network_address + 2
            and address <= network.broadcast_address - 2)


def allocate_internal(store: Store, subnet_key: Key, subnet: dict[str, Any],
                      also_used: set[str] | None = None) -> str:
    used = internal_in_use(store, subnet_key.url) | (also_used or set())
    for host in _hosts(subnet_range(subnet), skip_start=2):
        if str(host) not in used:
            return str(host)
    raise GceError(400, "ipSpaceExhausted",
                   f"The subnetwork '{subnet_key.path}' has no free IP address")


def _hosts(network: ipaddress.IPv4Network, skip_start: int) -> Iterator[ipaddress.IPv4Address]:
    first = int(network.network_address) + skip_start
    last = int(network.broadcast_address) - 2
    for value in range(first, last + 1):
        yield ipaddress.IPv4Address(value)
