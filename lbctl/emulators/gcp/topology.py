"""The world a project starts with: the `default` network, and instances, read-only through the API.

Like a new GCE project, the world has the auto-mode network `default` with a subnetwork
`default` in every region (10.128.0.0/20 in the main region, 10.132.0.0/20 in the
next, ...) and its firewall rules `default-allow-internal` and `default-allow-ssh`. Instances
(the cluster's nodes) are seeded through the emulator's admin API, never created through
Compute's: the SDK's instances client reads them (get, list, aggregated list) and its writes
answer 501. Deleting an instance (admin API) takes it out of its instance groups, as GCE does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from .errors import GceError, invalid
from .fields import ipv4
from .ips import allocate_internal, internal_in_use, usable
from .kinds import Kind
from .links import Key, check_name, valid_name
from .networks import auto_subnetworks
from .store import Store, fingerprint, now

MACHINE_TYPE = "e2-standard-2"
DEFAULT_NETWORK = "default"


class Instances(Kind):
    collection = "instances"
    kind = "compute#instance"
    api: ClassVar[dict[str, str]] = {"zones": "instances"}
    label = "instance"
    writable = False
    fields = frozenset({
        "canIpForward", "cpuPlatform", "creationTimestamp", "deletionProtection",
        "description", "fingerprint", "hostname", "id", "kind", "labelFingerprint", "labels",
        "machineType", "name", "networkInterfaces", "selfLink", "status", "tags", "zone"})


def _base(store: Store, key: Key, kind: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": kind, "id": store.new_id(), "name": key.name,
                           "creationTimestamp": now(), "selfLink": key.url}
    if key.scope != "global":
        obj["region" if key.scope.startswith("regions/") else "zone"] = key.scope_url
    return obj


def seed_network(store: Store, name: str = DEFAULT_NETWORK) -> Key:
    """An auto-mode network with a subnetwork named like it in every region, and its two
    default firewall rules: a new project's `default` network."""
    network = Key(store.project, "global", "networks", name)
    store.objects[network] = {**_base(store, network, "compute#network"),
                              "autoCreateSubnetworks": True, "mtu": 1460,
                              "routingConfig": {"routingMode": "REGIONAL"}}
    auto_subnetworks(store, network)
    store.seeded.update(k for k, o in store.objects.items() if k == network or (
        k.collection == "subnetworks" and o["network"] == network.url))
    rules = {f"{name}-allow-internal": ({"sourceRanges": ["10.128.0.0/9"]}, [
                 {"IPProtocol": "tcp", "ports": ["0-65535"]},
                 {"IPProtocol": "udp", "ports": ["0-65535"]}, {"IPProtocol": "icmp"}], 65534),
             f"{name}-allow-ssh": ({"sourceRanges": ["0.0.0.0/0"]},
                                   [{"IPProtocol": "tcp", "ports": ["22"]}], 65534)}
    for rule, (sources, allowed, priority) in rules.items():
        key = Key(store.project, "global", "firewalls", rule)
        store.objects[key] = {**_base(store, key, "compute#firewall"), "network": network.url,
                              "direction": "INGRESS", "priority": priority, "allowed": allowed,
                              **sources, "disabled": False, "logConfig": {"enable": False}}
        store.seeded.add(key)
    return network


def add_instance(store: Store, name: str, zone: str, *, network: str = DEFAULT_NETWORK,
                 subnetwork: str | None = None, ip: str | None = None,
                 tags: Iterable[str] = (), labels: dict[str, str] | None = None) -> Key:
    """Seed a running instance in `zone` on a subnetwork of the zone's region (by default the
    one named like `network`)."""
    check_name(name, "name")
    store.check_scope(f"zones/{zone}")
    key = Key(store.project, f"zones/{zone}", "instances", name)
    if key in store.objects:
        raise GceError(409, "alreadyExists", f"The resource '{key.path}' already exists")
    subnet_key = Key(store.project, f"regions/{key.region}", "subnetworks",
                     subnetwork or network)
    subnet = store.get(subnet_key)
    if subnet is None or not subnet["network"].endswith(f"/global/networks/{network}"):
        raise invalid("subnetwork", subnet_key.path,
                      f"No such subnetwork of network {network} in region {key.region}.")
    if ip is None:
        ip = allocate_internal(store, subnet_key, subnet)
    elif not usable(subnet, str(ipv4(ip, "networkIP"))) or ip in internal_in_use(
            store, subnet_key.url):
        raise invalid("networkIP", ip, f"Not a free address of {subnet['ipCidrRange']}.")
    items = sorted(set(tags))
    for tag in items:
        if not valid_name(tag):
            raise invalid("tags", tag, "Must be a valid tag name.")
    obj = {**_base(store, key, "compute#instance"), "status": "RUNNING",
           "machineType": f"{key.scope_url}/machineTypes/{MACHINE_TYPE}",
           "hostname": f"{name}.{zone}.c.{store.project}.internal",
           "networkInterfaces": [{
               "kind": "compute#networkInterface", "name": "nic0", "networkIP": ip,
               "network": subnet["network"], "subnetwork": subnet_key.url,
               "stackType": "IPV4_ONLY", "fingerprint": fingerprint([name, ip])}],
           "tags": {"items": items, "fingerprint": fingerprint(items)},
           "labels": dict(labels or {}), "labelFingerprint": fingerprint(labels or {})}
    if not obj["labels"]:
        del obj["labels"]
    store.objects[key] = obj
    store.seeded.add(key)
    return key


def remove_instance(store: Store, key: Key) -> None:
    """Delete a seeded instance (a node gone), dropping it from its instance groups."""
    if store.objects.pop(key, None) is None:
        raise GceError(404, "notFound", f"The resource '{key.path}' was not found")
    store.seeded.discard(key)
    for group in store.groups_of(key):
        store.members[group].remove(key)
