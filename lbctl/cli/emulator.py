"""`lbctl emulator aws|gcp|azure`: a local stand-in for a cloud's API, seeded with a world, until
SIGTERM.

One shape for every cloud (the design's contract): `--listen HOST:PORT --nodes N --nodes-file
PATH [--config-out PATH]`, one line with `ready` and the URL once serving. The emulator and its
SDKs are imported only when the command runs (they come with the `lbctl[sandbox]` extra).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click

from . import options


def register(main: click.Group) -> None:
    @main.group()
    def emulator() -> None:
        """Local stand-ins for the clouds' APIs (for tests, demos and trying lbctl out)."""

    @emulator.command()
    @click.option("--listen", default="127.0.0.1:4566", show_default=True,
                  help="HOST:PORT to serve on (LocalStack's port by default); port 0 picks a "
                       "free port.")
    @_world_options(nodes="Running instances in the world, spread over its zones.",
                    provider_ids="instances' providerIDs (aws:///ZONE/INSTANCE-ID)",
                    config="provider: aws, endpointURL: here",
                    cluster="The cluster the world is tagged for (the config's clusterName).")
    @click.option("--region", default=lambda: os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                  show_default="AWS_DEFAULT_REGION or us-east-1")
    def aws(listen: str, nodes: int, nodes_file: Path | None, config_out: Path | None,
            cluster: str, region: str) -> None:
        """EC2, ELBv2 and the tagging API (moto), seeded with a VPC, tagged subnets in two
        zones, a node security group and N instances."""
        options.import_or_explain("emulator aws", _load)
        from ..emulators.aws.server import AwsEmulator, ready_line  # noqa: PLC0415
        host, port = options.listen(listen)
        emu = AwsEmulator(host=host, port=port, region=region)
        _serve("aws", listen, emu, lambda: emu.seed(cluster=cluster, nodes=nodes), nodes_file,
               config_out, lambda world: ready_line(emu, world, nodes_file, config_out))

    @emulator.command()
    @click.option("--listen", default="127.0.0.1:8780", show_default=True,
                  help="HOST:PORT to serve Compute on; port 0 picks a free port.")
    @click.option("--project", default="emulated-project", show_default=True)
    @click.option("--region", default="us-central1", show_default=True,
                  help="The main region (two more exist, to refuse cross-region references).")
    @click.option("--zones", default="a,b", show_default=True,
                  help="The main region's zones: suffixes or full names, comma-separated.")
    @_world_options(nodes="Running instances `<cluster>-node-K`, spread over the zones and "
                          "tagged `<cluster>-node`.",
                    provider_ids="instances' providerIDs (gce://PROJECT/ZONE/NAME)",
                    config="provider: gcp, gcp.endpoint: here",
                    cluster="The cluster the instances are named and tagged for (clusterName).")
    @_operation_delay("Seconds each write's operation stays RUNNING before it is DONE.")
    def gcp(listen: str, project: str, region: str, zones: str, nodes: int,
            nodes_file: Path | None, config_out: Path | None, cluster: str,
            operation_delay: float) -> None:
        """Compute Engine (lbctl's own emulator, driven by google-cloud-compute): regional
        addresses, forwarding rules, backend services and health checks, firewalls, instance
        groups; seeded with the `default` network and N instances. Admin API: /_emulator/."""
        server = options.import_or_explain("emulator gcp", _load_gcp)
        host, port = options.listen(listen)
        try:
            emu = server.GceEmulator(host=host, port=port, project=project, region=region,
                                     zones=[z.strip() for z in zones.split(",") if z.strip()],
                                     operation_delay=operation_delay)
            specs = server.world_module.instance_specs(cluster, nodes, emu.zones)
        except (ValueError, server.GceError) as exc:
            raise click.ClickException(str(exc)) from exc
        def seed() -> Any:
            emu.add_instances(specs)
            return emu.read_world(cluster)

        _serve("gcp", listen, emu, seed, nodes_file, config_out,
               lambda world: server.ready_line(emu, world, nodes_file, config_out))


    @emulator.command()
    @click.option("--listen", default="127.0.0.1:8790", show_default=True,
                  help="HOST:PORT to serve ARM on; port 0 picks a free port.")
    @click.option("--subscription", default="00000000-0000-0000-0000-00000000a2e0",
                  show_default=True)
    @click.option("--resource-group", default="lbctl-rg", show_default=True,
                  help="The resource group of the world (and of what the provider makes).")
    @click.option("--location", default="eastus", show_default=True)
    @_world_options(nodes="VMs `<cluster>-node-K` in the node subnet.",
                    provider_ids="VMs' providerIDs (azure:///subscriptions/S/resourceGroups/G/"
                                 "providers/Microsoft.Compute/virtualMachines/NAME)",
                    config="provider: azure, azure.endpoint: here",
                    cluster="The cluster the network, subnet, NSG and VMs are named for "
                            "(clusterName).")
    @_operation_delay("Seconds each PUT/DELETE stays InProgress before it Succeeded.")
    def azure(listen: str, subscription: str, resource_group: str, location: str, nodes: int,
              nodes_file: Path | None, config_out: Path | None, cluster: str,
              operation_delay: float) -> None:
        """Azure Resource Manager's Microsoft.Network (lbctl's own emulator, driven by
        azure-mgmt-network): Standard load balancers, public IPs, NSGs and security rules,
        virtual networks and subnets, long-running operations and etags; seeded with the
        cluster's vnet, node subnet, NSG and N VMs. Admin API: /_emulator/."""
        server = options.import_or_explain("emulator azure", _load_azure)
        host, port = options.listen(listen)
        try:
            emu = server.AzureEmulator(host=host, port=port, subscription=subscription,
                                       resource_group=resource_group, location=location,
                                       operation_delay=operation_delay)
            server.world_module.check_name(f"{cluster}-vnet", "--cluster")
        except (ValueError, server.ArmError) as exc:
            raise click.ClickException(str(exc)) from exc

        _serve("azure", listen, emu, lambda: emu.seed(cluster=cluster, nodes=nodes), nodes_file,
               config_out, lambda world: server.ready_line(emu, world, nodes_file, config_out))


def _world_options(nodes: str, provider_ids: str, config: str,
                   cluster: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--nodes`, `--nodes-file`, `--config-out`, `--cluster`: every emulator's world options
    (the design's one shape), each cloud's help naming what its world and files hold."""
    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed([
            click.option("--nodes", type=click.IntRange(0, 100), default=3, show_default=True,
                         help=nodes),
            click.option("--nodes-file", type=click.Path(dir_okay=False, path_type=Path),
                         help=f"Write `lbctl sandbox --nodes-file` here: nodes carrying the "
                              f"{provider_ids}."),
            click.option("--config-out", type=click.Path(dir_okay=False, path_type=Path),
                         help=f"Write a config for `lbctl run` ({config})."),
            click.option("--cluster", default="kubernetes", show_default=True, help=cluster),
        ]):
            command = option(command)
        return command

    return apply


def _operation_delay(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--operation-delay`: how long the emulator's writes stay in progress."""
    return click.option("--operation-delay", type=click.FloatRange(0, 60), default=0.2,
                        show_default=True, help=help)


def _serve(name: str, listen: str, emu: Any, seed: Callable[[], Any], nodes_file: Path | None,
           config_out: Path | None, ready: Callable[[Any], str]) -> None:
    """Start `emu`, seed its world, write its files, say ready, and serve until SIGTERM or
    SIGINT; a taken port or an unwritable file is a clear error (exit 1)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        emu.start()
    except OSError as exc:
        raise click.ClickException(f"--listen {listen}: {exc.strerror or exc}") from exc
    try:
        world = seed()
        emu.write_files(world, nodes_file, config_out)
        click.echo(ready(world))
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or ''}: {exc.strerror or exc}") from exc
    finally:
        emu.stop()
    click.echo(f"{name} emulator stopped")


def _load() -> None:
    from ..emulators.aws.server import require  # noqa: PLC0415

    require()


def _load_gcp() -> Any:
    """The GCE emulator's server module (aiohttp; no Google library)."""
    from ..emulators.gcp import server  # noqa: PLC0415

    return server


def _load_azure() -> Any:
    """The ARM emulator's server module (aiohttp; no Azure library)."""
    from ..emulators.azure import server  # noqa: PLC0415

    return server
