"""`lbctl emulator aws`: moto's server on HOST:PORT, seeded with lbctl's AWS world.

moto (`ThreadedMotoServer`) serves EC2, ELBv2, the Resource Groups Tagging API and STS (and the
rest of moto) from memory; `AwsEmulator` starts it, seeds the world of `world.py` through boto3
(a VPC tagged for the cluster, subnets per zone with the role tags, a node security group, N
running instances) and can write what the other processes need: the sandbox's nodes file (the
instances' providerIDs `aws:///<az>/<instance-id>`) and a config for `lbctl run` pointing the
`aws` provider at it. The AWS tests, `lbctl demo --provider aws` and the CLI all start moto here.

moto takes any credentials: when none are configured, fake ones are set in this process only.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..serving import Served, files_note, write_files
from . import world as world_module
from .world import World

DEFAULT_REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def config_text(cluster: str, region: str, endpoint: str) -> str:
    """A config for `lbctl run` whose `aws` provider talks to `endpoint`."""
    return (f"clusterName: {cluster}\nprovider: aws\n"
            f'aws: {{region: {region}, endpointURL: "{endpoint}"}}\n')


def set_fake_credentials() -> None:
    """Fake credentials for moto, unless some are configured (env or profile)."""
    if not any(os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE")):
        os.environ.update(FAKE_CREDENTIALS)


def require() -> None:
    """Import what the emulator needs now (moto, boto3): ImportError names what is missing."""
    import boto3  # noqa: PLC0415, F401
    import moto.server  # noqa: PLC0415, F401


def _server_class() -> Any:
    """moto's ThreadedMotoServer, made to report a failed bind: upstream's `start` waits for
    an event only a successful bind sets, so a taken port would hang it for ever."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 (the sandbox extra)

    class Server(ThreadedMotoServer):
        error: OSError | None = None

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except OSError as exc:
                self.error = exc
                self._server_ready_event.set()
            except SystemExit:  # werkzeug prints "Address already in use" and exits
                self.error = OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
                self._server_ready_event.set()

    return Server


@dataclass
class AwsEmulator(Served):
    """A moto server on (`host`, `port`; 0 picks a free port); `start` answers its URL."""

    host: str = "127.0.0.1"
    port: int = 0
    region: str = DEFAULT_REGION
    endpoint: str = ""
    _server: Any = None

    def start(self) -> str:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        server = _server_class()(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        if server.error is not None:  # the port is taken, the address not ours, ...
            raise server.error
        self._server = server
        host, port = server.get_host_and_port()
        shown = f"[{host}]" if ":" in host else host
        self.endpoint = f"http://{shown}:{port}"
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def clients(self) -> tuple[Any, Any]:
        """(ec2, elbv2) boto3 clients on this server."""
        return world_module.clients(self.endpoint, self.region)

    def seed(self, cluster: str = "kubernetes", nodes: int = 3) -> World:
        """Seed the world for `cluster` with `nodes` instances through EC2's API."""
        set_fake_credentials()
        ec2, _ = self.clients()
        return world_module.seed(ec2, cluster=cluster, nodes=nodes, region=self.region)

    def reset(self) -> None:
        """Forget everything (moto's own reset endpoint): a clean account for the next test."""
        import urllib.request  # noqa: PLC0415

        url = f"{self.endpoint}/moto-api/reset"
        request = urllib.request.Request(url, method="POST")  # noqa: S310 (our own http URL)
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            if response.status != 200:
                raise RuntimeError(f"moto reset answered {response.status}")

    def write_files(self, world: World, nodes_file: Path | None,
                    config_out: Path | None) -> None:
        write_files(nodes_file, world_module.nodes_file(world), config_out,
                    config_text(world.cluster, self.region, self.endpoint))


def ready_line(emulator: AwsEmulator, world: World, nodes_file: Path | None,
               config_out: Path | None) -> str:
    """The one line `lbctl emulator aws` prints once serving."""
    extra = files_note(nodes_file, config_out)
    return (f"aws emulator ready at {emulator.endpoint} (moto, {emulator.region}; world "
            f"{world.cluster}: {len(world.instances)} nodes in {', '.join(world.subnets)}, "
            f"VPC {world.vpc_id}){extra}")
