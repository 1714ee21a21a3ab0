"""`lbctl demo --provider azure`: the controller and the `azure` provider against the ARM emulator.

`lbctl emulator azure` in-process (lbctl's own ARM emulator on a free port of 127.0.0.1, each
write's operation InProgress for a moment so the provider waits for it as for ARM), seeded with
its world (subscription `...a2e0`, resource group `lbctl-rg` in `eastus`, the cluster's virtual
network, node subnet and NSG, three VMs); the sandbox's nodes are those VMs
(`azure:///subscriptions/.../virtualMachines/NAME`, not simulated: nothing answers on their
addresses); the controller runs with `provider: azure`. The story (`azure_story`) exposes a
Deployment, shows what ARM holds as the az CLI would list it (`azure_view`, read through
azure-mgmt-network), creates 20 more Services at once to show the shared LB's writes batched,
changes a port, adds a node, deletes everything and counts what is left: by ownership through
the SDK, and every object made through ARM by the emulator's own inventory. The emulator carries
no traffic, so none is sent.

The emulator needs aiohttp (the `lbctl[sandbox]` extra), the provider azure-mgmt-network and
azure-identity (`lbctl[azure]`), imported only when this demo runs; lbctl's own modules never
import a cloud SDK: the view reads through the provider's client class (`ArmClient`), taken
from the running controller's provider.

Exit status: 0 only when every Service got its address, the 20 took at most half as many LB
writes as Services, the port change reached the rule on the same IP, the new node cost one LB
write, and nothing of the cluster is left in ARM after the delete.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from providers.azure import names

from ..sandbox.nodes import from_file, node_object
from .azure_story import AzureStory
from .azure_view import ArmView, Reader
from .cloud import cluster, demo_config, emulator_missing, play, plural, require_sdk

if TYPE_CHECKING:
    from ..emulators.azure.server import AzureEmulator
    from ..emulators.azure.world import World

NODES = 3
CLUSTER = "demo"
OPERATION_DELAY = 0.2
"""Seconds each write's operation stays InProgress: the provider's poller waits for it."""
WORKERS = 24
"""Enough workers that the wave's Services reach the coalescer together (the default is 8)."""


def azure_config(world: World, endpoint: str) -> str:
    """`lbctl emulator azure --config-out`'s config, with generous rate limits (the emulator
    is local), node changes synced at once and a worker per Service of the wave."""
    from ..emulators.azure.world import config_text  # noqa: PLC0415 (the sandbox extra)

    return demo_config(config_text(world, endpoint), "azure",
                       {"nodeSyncDebounceSeconds": 0.2, "workers": WORKERS})


def _emulator() -> AzureEmulator:
    try:
        from ..emulators.azure.server import AzureEmulator  # noqa: PLC0415
    except ImportError as exc:
        raise emulator_missing("azure", exc) from exc
    require_sdk("azure", {m: m for m in ("azure.mgmt.network", "azure.identity")})
    return AzureEmulator(host="127.0.0.1", port=0, operation_delay=OPERATION_DELAY)


def node_joiner(emulator: AzureEmulator, root: Path,
                ) -> Callable[[], tuple[str, str, dict[str, Any]]]:
    """`join()`: one more VM `<cluster>-node-<N+1>`, made through the emulator's admin API (as
    the world's were), answered as (name, its IP, the Node its kubelet would register)."""
    from ..emulators.azure.world import nodes_file  # noqa: PLC0415

    def join() -> tuple[str, str, dict[str, Any]]:
        before = {n.name for n in emulator.read_world().nodes}
        grown = emulator.add_nodes(1)
        [vm] = [n for n in grown.nodes if n.name not in before]
        path = root / f"{vm.name}.yaml"
        path.write_text(nodes_file(dataclasses.replace(grown, nodes=(vm,))))
        [spec] = from_file(path)
        return vm.name, vm.ip, node_object(spec)

    return join


def _reader(provider: Any) -> Reader:
    """An ArmClient of its own, of the provider's class and settings (the demo's reads are
    neither counted with the provider's calls nor take its tokens)."""
    arm = provider.arm  # AzureProvider: builds its client (imports the SDK) on first use
    reader: Reader = type(arm)(arm.settings, polling_interval=0.05)
    return reader


def run_azure_demo(keep: bool = False) -> None:
    with tempfile.TemporaryDirectory(prefix="lbctl-demo-azure-") as tmp, \
            _emulator() as emulator:
        root = Path(tmp)
        endpoint = emulator.endpoint
        world = emulator.seed(cluster=CLUSTER, nodes=NODES)
        click.echo(f"ARM endpoint {endpoint} (an `lbctl emulator azure` of its own, "
                   f"subscription {world.subscription}, resource group {world.resource_group}, "
                   f"{world.location}; no traffic is sent: the emulator forwards no packets)")
        click.echo(f"world {world.cluster}: vnet {world.vnet}, subnet {world.subnet}, nsg "
                   f"{world.nsg}, VMs "
                   f"{', '.join(f'{n.name} ({n.zone}, {n.ip})' for n in world.nodes)}")
        with cluster(root, lambda path: emulator.write_files(world, path, None),
                     (n.name for n in world.nodes),
                     "the VMs, providerID azure:///subscriptions/<s>/resourceGroups/<g>/"
                     "providers/Microsoft.Compute/virtualMachines/<name>",
                     azure_config(world, endpoint)) as (embedded, kubeconfig):
            provider: Any = embedded.controller.inner_provider  # an AzureProvider
            click.echo(f"lbctl controller running: provider azure, cluster "
                       f"{world.cluster}, resource group {world.resource_group}, shared "
                       f"load balancer {names.load_balancer(world.cluster, False)}, batch "
                       f"window {provider.settings.batch_window_seconds:g} s, {WORKERS} "
                       f"workers, endpoint {endpoint}")
            reader = _reader(provider)
            view = ArmView(reader, world.cluster, world.resource_group, world.nsg)
            story = AzureStory(embedded.kube, view, provider.arm, node_joiner(emulator, root))
            play(story, keep, _hints(kubeconfig, endpoint, world),
                 lambda: story.cleanup(emulator.objects, endpoint), reader)
            click.secho(f"\ndemo passed: the Service got {story.ip} and kept it through "
                        f"the port change, {len(story.wave_ips)} more Services took "
                        f"{plural(story.wave_lb_writes, 'LB write')}, the new node one, "
                        "and nothing of the cluster is left in ARM", fg="green")


def _hints(kubeconfig: Path, endpoint: str, world: World) -> str:
    group = (f"{endpoint}/subscriptions/{world.subscription}/resourceGroups/"
             f"{world.resource_group}/providers/Microsoft.Network")
    return (f"\nStill running (--keep). In another terminal:\n"
            f"  export KUBECONFIG={kubeconfig}\n"
            "  kubectl get services,nodes -o wide\n"
            "  kubectl describe service frontend\n"
            "  curl -s -H 'Authorization: Bearer any' "
            f"'{group}/loadBalancers/{names.load_balancer(world.cluster, False)}"
            "?api-version=2024-05-01'"
            "   # ARM's REST API\n"
            f"  curl -s {endpoint}/_emulator/calls   # every ARM call (the demo's reads too)\n"
            "Press Ctrl-C to finish (the Services are then deleted and everything stops).")
