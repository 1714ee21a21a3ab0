"""The Azure world lbctl's Azure tests and demo run in, and the files other processes need from it.

A subscription (`00000000-0000-0000-0000-00000000a2e0` by default) with one resource group
(`lbctl-rg`) in one location (`eastus`) holding, for cluster C: the virtual network `C-vnet`
(10.224.0.0/12, AKS's default) with the node subnet `C-nodes` (10.224.0.0/16, associated with
the NSG), the cluster's network security group `C-nsg` (no rules of its own), and N VMs
`C-node-K` at 10.224.0.4, .5, ... over three zones. The VMs are not Microsoft.Network objects:
they live only here, for the nodes file (`azure:///subscriptions/S/resourceGroups/G/providers/
Microsoft.Compute/virtualMachines/NAME`) and so that their addresses are never handed to a
frontend. `seed` writes the network objects straight into the store (marked seeded, so leak
checks ignore them); `nodes_file` and `config_text` are what `lbctl sandbox --nodes-file` and
`lbctl run` read. No cloud SDK here: only PyYAML.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import yaml

from .. import nodes_file as nodes_file_module
from .ids import Rid, check_name
from .store import Node, Store
from .writes import stamp

DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-00000000a2e0"
DEFAULT_GROUP = "lbctl-rg"
DEFAULT_LOCATION = "eastus"
VNET_SPACE = "10.224.0.0/12"
NODE_SUBNET = "10.224.0.0/16"
VM_SIZE = "Standard_D2s_v5"


@dataclass(frozen=True)
class World:
    subscription: str
    resource_group: str
    location: str
    cluster: str
    nodes: tuple[Node, ...]
    vnet: str
    subnet: str
    nsg: str

    def _id(self, kind: str, name: str) -> str:
        return Rid(self.subscription, self.resource_group, kind, name).path

    @property
    def vnet_id(self) -> str:
        return self._id("virtualNetworks", self.vnet)

    @property
    def subnet_id(self) -> str:
        return f"{self.vnet_id}/subnets/{self.subnet}"

    @property
    def nsg_id(self) -> str:
        return self._id("networkSecurityGroups", self.nsg)

    @property
    def provider_ids(self) -> list[str]:
        return [provider_id(self.subscription, self.resource_group, n.name) for n in self.nodes]


def provider_id(subscription: str, group: str, name: str) -> str:
    return (f"azure:///subscriptions/{subscription}/resourceGroups/{group}/providers/"
            f"Microsoft.Compute/virtualMachines/{name}")


def seed(store: Store, cluster: str, count: int) -> None:
    """The cluster's network, subnet and NSG (when missing) and `count` more VMs."""
    check_name(f"{cluster}-vnet", "cluster")
    store.cluster = cluster
    store.vnet, store.subnet, store.nsg = f"{cluster}-vnet", f"{cluster}-nodes", f"{cluster}-nsg"
    sub, group, where = store.subscription, store.group, store.location
    nsg = Rid(sub, group, "networkSecurityGroups", store.nsg)
    vnet = Rid(sub, group, "virtualNetworks", store.vnet)
    if nsg.key not in store.objects:
        _put(store, nsg, {"securityRules": []}, where)
    if vnet.key not in store.objects:
        subnet = vnet.child("subnets", store.subnet)
        _put(store, vnet, {
            "addressSpace": {"addressPrefixes": [VNET_SPACE]},
            "subnets": [{"name": subnet.child_name, "id": subnet.path,
                         "type": subnet.arm_type,
                         "properties": {"addressPrefix": NODE_SUBNET,
                                        "networkSecurityGroup": {"id": nsg.path}}}]}, where)
    add_nodes(store, count)


def _put(store: Store, rid: Rid, props: dict[str, Any], location: str) -> None:
    obj = {"name": rid.name, "id": rid.path, "type": rid.arm_type, "location": location,
           "tags": {}, "properties": props}
    stamp(obj, "Succeeded", store.new_etag())
    store.objects[rid.key] = obj
    store.seeded[rid.key] = {c["id"].lower() for items in props.values() if isinstance(items, list)
                             for c in items}


def add_nodes(store: Store, count: int = 0, names: list[str] | None = None) -> list[Node]:
    """`count` VMs `<cluster>-node-K` after the last (or the `names` given), next free IPs."""
    taken_names = {n.name for n in store.nodes}
    wanted = list(names or [])
    k = len(store.nodes)
    while len(wanted) < count + len(names or []):
        k += 1
        if f"{store.cluster}-node-{k}" not in taken_names:
            wanted.append(f"{store.cluster}-node-{k}")
    added = []
    block = ipaddress.IPv4Network(NODE_SUBNET)
    from .networks import held_private_ips  # noqa: PLC0415 - networks imports kinds

    for name in wanted:
        check_name(name, "node")
        if name in taken_names:
            raise ValueError(f"node {name} exists")
        held = held_private_ips(store)
        ip = next(str(h) for h in block.hosts()
                  if int(h) - int(block.network_address) >= 4 and str(h) not in held)
        node = Node(name, ip, f"{store.location}-{len(store.nodes) % 3 + 1}",
                    provider_id(store.subscription, store.group, name))
        store.nodes.append(node)
        taken_names.add(name)
        added.append(node)
    return added


def nodes(world: World) -> list[dict[str, Any]]:
    """The nodes-file entries: one per VM, not simulated (their addresses are the subnet's)."""
    return [nodes_file_module.entry(n.name, provider_id(world.subscription, world.resource_group,
                                                        n.name),
                                    n.ip, n.zone, world.location, VM_SIZE)
            for n in world.nodes]


def nodes_file(world: World) -> str:
    """YAML for `lbctl sandbox --nodes-file` (the format of `lbctl.sandbox.nodes.from_file`)."""
    return nodes_file_module.text(
        f"cluster {world.cluster}, subscription {world.subscription}, resource group "
        f"{world.resource_group} ({world.location})", nodes(world))


def config_text(world: World, endpoint: str) -> str:
    """A config for `lbctl run` whose `azure` provider talks to `endpoint`.

    Keys of the `azure:` section (the design's contract): `subscriptionId`, `resourceGroup`,
    `location`, `vnetName`, `subnetName` (the node subnet, for internal load balancers),
    `securityGroupName` (the cluster's NSG), `endpoint` (the ARM root the SDK gets as
    `base_url`; empty means the real ARM)."""
    section = {"subscriptionId": world.subscription, "resourceGroup": world.resource_group,
               "location": world.location, "vnetName": world.vnet, "subnetName": world.subnet,
               "securityGroupName": world.nsg, "endpoint": endpoint}
    return yaml.safe_dump({"clusterName": world.cluster, "provider": "azure", "azure": section},
                          sort_keys=False)
