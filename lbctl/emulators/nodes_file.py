"""The sandbox's nodes file, as every emulator writes it for the instances it seeded.

`lbctl sandbox --nodes-file` (the format of `lbctl.sandbox.nodes.from_file`) takes one entry
per node: its name, the cloud's providerID for the instance, its addresses, the well-known
zone, region and instance-type labels, and `simulate: false` (the sandbox serves no traffic for
them: their addresses are the cloud network's, not this machine's). Only the providerID, the
instance type and the header differ per cloud; the shape is the sandbox's, so it is written
once here.
"""

from __future__ import annotations

from typing import Any

import yaml


def entry(name: str, provider_id: str, ip: str, zone: str, region: str, instance_type: str,
          dns: bool = False) -> dict[str, Any]:
    """One node; `dns` adds an InternalDNS address (the node's name), as EC2's nodes have."""
    addresses = [{"type": "InternalIP", "address": ip}]
    if dns:
        addresses.append({"type": "InternalDNS", "address": name})
    addresses.append({"type": "Hostname", "address": name})
    return {
        "name": name,
        "providerID": provider_id,
        "addresses": addresses,
        "labels": {"topology.kubernetes.io/zone": zone,
                   "topology.kubernetes.io/region": region,
                   "node.kubernetes.io/instance-type": instance_type},
        "simulate": False,
    }


def text(about: str, entries: list[dict[str, Any]]) -> str:
    """The YAML file: a comment naming the world (`about`), then the nodes."""
    header = f"# lbctl sandbox --nodes-file: {about}\n"
    return header + yaml.safe_dump({"nodes": entries}, sort_keys=False)
