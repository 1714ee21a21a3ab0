"""`lbctl demo --provider gcp`: the controller and the `gcp` provider against the GCE emulator.

`lbctl emulator gcp` in-process (lbctl's own Compute emulator on a free port of 127.0.0.1),
seeded with its world (project `emulated-project`, `us-central1` with two zones, the `default`
network, three instances tagged `demo-node` spread over the zones); the sandbox's nodes are
those instances (`gce://PROJECT/ZONE/NAME`, not simulated: nothing answers on their
addresses); the controller runs with `provider: gcp`. The story exposes a Deployment as a
LoadBalancer Service, shows the Service's IP and then what GCE holds as gcloud would list it
(`gcp_view`, read through google-cloud-compute), changes the Service's port (a forwarding rule
cannot change in place: it is replaced on the same reserved address), deletes the Service and
counts what is left of the cluster: by ownership through the SDK, and every object made
through the API by the emulator's own inventory. The emulator carries no traffic, so none is
sent.

The emulator needs aiohttp (the `lbctl[sandbox]` extra), the provider google-cloud-compute
(`lbctl[gcp]`), imported only when this demo runs (it takes seconds); lbctl's own modules never
import a cloud SDK: the view reads through the provider's client class, taken from the running
controller's provider.

Exit status: 0 only when the Service got the address, the port change reached the forwarding
rule on the same IP, and nothing of the cluster is left in GCE after the delete.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..sandbox.nodes import from_file, node_object
from .cloud import cluster, demo_config, emulator_missing, play, require_sdk
from .gcp_story import GcpStory
from .gcp_view import GceView, Reader

if TYPE_CHECKING:
    from ..emulators.gcp.server import GceEmulator
    from ..emulators.gcp.world import World

NODES = 3
CLUSTER = "demo"
OPERATION_DELAY = 0.05
"""Seconds each write's operation stays RUNNING: the provider waits for every one."""


def gcp_config(world: World, endpoint: str) -> str:
    """`lbctl emulator gcp --config-out`'s config, with generous rate limits (the emulator
    is local) and node changes synced at once."""
    from ..emulators.gcp.world import config_text  # noqa: PLC0415 (the sandbox extra)

    return demo_config(config_text(world, endpoint), "gcp", {"nodeSyncDebounceSeconds": 0.2})


def _emulator() -> GceEmulator:
    try:
        from ..emulators.gcp.server import GceEmulator  # noqa: PLC0415
    except ImportError as exc:
        raise emulator_missing("gcp", exc) from exc
    require_sdk("gcp", {"google.cloud.compute_v1": "google-cloud-compute"})
    return GceEmulator(host="127.0.0.1", port=0, operation_delay=OPERATION_DELAY)


def node_joiner(emulator: GceEmulator, world: World, root: Path,
                ) -> Callable[[], tuple[str, str, dict[str, Any]]]:
    """`join()`: one more tagged instance, `<cluster>-node-<N+1>` in the zone with the fewest,
    made in GCE through the emulator's admin API (as the world's were), answered as (name,
    zone, the Node its kubelet would register)."""
    from ..emulators.gcp.world import nodes_file  # noqa: PLC0415

    def join() -> tuple[str, str, dict[str, Any]]:
        name = f"{world.cluster}-node-{len(world.nodes) + 1}"
        zone = min(world.zones, key=lambda z: sum(n.zone == z for n in world.nodes))
        emulator.add_instances([{"name": name, "zone": zone, "tags": [world.node_tag]}])
        grown = emulator.read_world(world.cluster)
        path = root / f"{name}.yaml"
        path.write_text(nodes_file(dataclasses.replace(
            grown, nodes=tuple(n for n in grown.nodes if n.name == name))))
        [spec] = from_file(path)
        return name, zone, node_object(spec)

    return join


def _reader(provider: Any) -> Reader:
    """A GceClient of its own, of the provider's class and settings (the demo's reads are
    neither counted with the provider's calls nor take its tokens)."""
    gce = provider.gce  # GcpProvider: builds its client (imports the SDK) on first use
    reader: Reader = type(gce)(gce.settings)
    return reader


def run_gcp_demo(keep: bool = False) -> None:
    with tempfile.TemporaryDirectory(prefix="lbctl-demo-gcp-") as tmp, _emulator() as emulator:
        root = Path(tmp)
        endpoint = emulator.endpoint
        world = emulator.seed(cluster=CLUSTER, nodes=NODES)
        click.echo(f"GCE endpoint {endpoint} (an `lbctl emulator gcp` of its own, project "
                   f"{world.project}, {world.region}; no traffic is sent: the emulator "
                   "forwards no packets)")
        click.echo(f"world {world.cluster}: network {world.network}, subnetwork "
                   f"{world.subnetwork}, instances "
                   f"{', '.join(f'{n.name} ({n.zone}, {n.ip})' for n in world.nodes)}, "
                   f"tagged {world.node_tag}")
        with cluster(root, lambda path: emulator.write_files(world, path, None),
                     (n.name for n in world.nodes),
                     "the instances, providerID gce://<project>/<zone>/<name>",
                     gcp_config(world, endpoint)) as (embedded, kubeconfig):
            provider: Any = embedded.controller.inner_provider  # a GcpProvider
            click.echo(f"lbctl controller running: provider gcp, cluster {world.cluster}, "
                       f"project {world.project}, region {world.region}, endpoint {endpoint}")
            reader = _reader(provider)
            view = GceView(reader, world.cluster, world.project, world.region, world.zones)
            story = GcpStory(embedded.kube, view, provider.gce,
                             node_joiner(emulator, world, root))
            play(story, keep, _hints(kubeconfig, endpoint, world),
                 lambda: story.cleanup(emulator.objects, endpoint), reader)
            click.secho(f"\ndemo passed: the Service got {story.ip}, kept it through the "
                        "port change, the new node joined its zone's instance group, and "
                        "nothing of the cluster is left in GCE", fg="green")


def _hints(kubeconfig: Path, endpoint: str, world: World) -> str:
    api = f"{endpoint}/compute/v1/projects/{world.project}"
    return (f"\nStill running (--keep). In another terminal:\n"
            f"  export KUBECONFIG={kubeconfig}\n"
            "  kubectl get services,nodes -o wide\n"
            "  kubectl describe service frontend\n"
            f"  curl -s {api}/regions/{world.region}/forwardingRules   # Compute's REST API\n"
            f"  curl -s {endpoint}/_emulator/calls   # every Compute call (the demo's reads too)\n"
            "Press Ctrl-C to finish (the Service is then deleted and everything stops).")
