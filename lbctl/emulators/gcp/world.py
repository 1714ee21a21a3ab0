"""The GCE world lbctl's GCP tests and demo run in, and the files other processes need from it.

A project (`emulated-project`) whose main region (`us-central1`) has the zones asked for (two
by default, `-a` and `-b`), two more regions to refuse cross-region references with
(`europe-west1`, `us-east1`), the `default` network with a subnetwork per region, and N
running instances `<cluster>-node-K` spread over the main region's zones, tagged
`<cluster>-node` (the tag a provider's firewall rules target). `nodes_file` turns it into a
`lbctl sandbox --nodes-file` whose nodes carry the instances' providerIDs
(`gce://<project>/<zone>/<name>`); `config_text` is a config for `lbctl run` pointing the `gcp`
provider at the emulator.

This module imports nothing but PyYAML: the emulator is a plain HTTP server, no cloud SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import nodes_file as nodes_file_module
from .links import check_name

DEFAULT_PROJECT = "emulated-project"
DEFAULT_REGION = "us-central1"
OTHER_REGIONS = ("europe-west1", "us-east1")
NETWORK = "default"
SUBNETWORK = "default"
MACHINE_TYPE = "e2-standard-2"


@dataclass(frozen=True)
class Node:
    name: str
    zone: str
    ip: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class World:
    project: str
    region: str
    zones: tuple[str, ...]
    cluster: str = "kubernetes"
    nodes: tuple[Node, ...] = ()
    network: str = NETWORK
    subnetwork: str = SUBNETWORK

    @property
    def node_tag(self) -> str:
        return f"{self.cluster}-node"

    @property
    def provider_ids(self) -> list[str]:
        return [provider_id(self.project, n) for n in self.nodes]


def provider_id(project: str, node: Node) -> str:
    return f"gce://{project}/{node.zone}/{node.name}"


def zone_names(region: str, zones: list[str] | tuple[str, ...]) -> list[str]:
    """`["a", "b"]` -> `["us-central1-a", "us-central1-b"]`; full names must be the region's."""
    out = []
    for zone in zones:
        name = zone if zone.startswith(f"{region}-") else f"{region}-{zone}"
        if name.rpartition("-")[0] != region or not name.rpartition("-")[2]:
            raise ValueError(f"zone {zone!r} is not a zone of {region}")
        check_name(name, "zone")
        out.append(name)
    if not out or len(set(out)) != len(out):
        raise ValueError("zones: one or more distinct zones")
    return out


def regions(region: str, zones: list[str]) -> dict[str, list[str]]:
    """Every region of the emulated project and its zones."""
    check_name(region, "region")
    found = {region: zones}
    for other in OTHER_REGIONS:
        if other != region:
            found[other] = [f"{other}-b", f"{other}-c"]
    return found


def instance_specs(cluster: str, count: int, zones: list[str]) -> list[dict[str, Any]]:
    """What `POST /_emulator/instances` takes for N nodes spread over `zones`."""
    return [{"name": check_name(f"{cluster}-node-{k + 1}", "name"), "zone": zones[k % len(zones)],
             "tags": [f"{cluster}-node"]} for k in range(count)]


def nodes(world: World) -> list[dict[str, Any]]:
    """The nodes-file entries: one per instance, not simulated (their addresses are the
    subnetwork's, not this machine's)."""
    return [nodes_file_module.entry(n.name, provider_id(world.project, n), n.ip, n.zone,
                                    world.region, MACHINE_TYPE)
            for n in world.nodes]


def nodes_file(world: World) -> str:
    """YAML for `lbctl sandbox --nodes-file` (the format of `lbctl.sandbox.nodes.from_file`)."""
    return nodes_file_module.text(
        f"cluster {world.cluster}, project {world.project}, {world.region} "
        f"({', '.join(world.zones)})", nodes(world))


def config_text(world: World, endpoint: str) -> str:
    """A config for `lbctl run` whose `gcp` provider talks to `endpoint`.

    Keys of the `gcp:` section (the design's contract): `project`, `region`, `network` and
    `subnetwork` (names in the project; the subnetwork is the region's, for internal load
    balancers), `endpoint` (the Compute API root the SDK clients get as
    `ClientOptions(api_endpoint=...)`; empty means the real API)."""
    return (f"clusterName: {world.cluster}\nprovider: gcp\n"
            f"gcp: {{project: {world.project}, region: {world.region}, "
            f"network: {world.network}, subnetwork: {world.subnetwork}, "
            f'endpoint: "{endpoint}"}}\n')
