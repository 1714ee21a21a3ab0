"""`lbctl emulator aws`: a local stand-in for a cloud's API, seeded with a world, until SIGTERM.

One shape for every cloud (the design's contract): `--listen HOST:PORT --nodes N --nodes-file
PATH [--config-out PATH]`, one line with `ready` and the URL once serving. The emulator and its
SDKs are imported only when the command runs (they come with the `lbctl[sandbox]` extra).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

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
    @click.option("--nodes", type=click.IntRange(0, 100), default=3, show_default=True,
                  help="Running instances in the world, spread over its zones.")
    @click.option("--nodes-file", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write `lbctl sandbox --nodes-file` here: nodes carrying the instances' "
                       "providerIDs (aws:///ZONE/INSTANCE-ID).")
    @click.option("--config-out", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write a config for `lbctl run` (provider: aws, endpointURL: here).")
    @click.option("--cluster", default="kubernetes", show_default=True,
                  help="The cluster the world is tagged for (the config's clusterName).")
    @click.option("--region", default=lambda: os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                  show_default="AWS_DEFAULT_REGION or us-east-1")
    def aws(listen: str, nodes: int, nodes_file: Path | None, config_out: Path | None,
            cluster: str, region: str) -> None:
        """EC2, ELBv2 and the tagging API (moto), seeded with a VPC, tagged subnets in two
        zones, a node security group and N instances."""
        options.import_or_explain("emulator aws", _load)
        from ..emulators.aws.server import AwsEmulator, ready_line  # noqa: PLC0415
        host, port = options.listen(listen)
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        emu = AwsEmulator(host=host, port=port, region=region)
        try:
            emu.start()
        except OSError as exc:
            raise click.ClickException(f"--listen {listen}: {exc.strerror or exc}") from exc
        try:
            world = emu.seed(cluster=cluster, nodes=nodes)
            emu.write_files(world, nodes_file, config_out)
            click.echo(ready_line(emu, world, nodes_file, config_out))
            sys.stdout.flush()
            while not stop.wait(0.5):
                pass
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or ''}: {exc.strerror or exc}") from exc
        finally:
            emu.stop()
        click.echo("aws emulator stopped")


def _load() -> None:
    from ..emulators.aws.server import require  # noqa: PLC0415

    require()
