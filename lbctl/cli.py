"""The `lbctl` command line: one entry point for the sandbox, the demo and (later) the controller.

Commands print plain lines meant for people and exit non-zero with a message naming the bad
flag or file on bad input; long-running ones stop cleanly on SIGTERM and SIGINT.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import click

from .balancer.cli import register as register_balancer_commands
from .cli_controller import register as register_controller_commands
from .sandbox.app import Sandbox, SandboxOptions
from .sandbox.nodes import NodesFileError, from_file, simulated


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (port 0 picks a free one)",
                                 param_hint="--listen")
    return host.strip("[]") or "127.0.0.1", int(port)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """lbctl: LoadBalancer Services made real on AWS, GCP, Azure and bare metal."""


@main.command()
@click.option("--listen", default="127.0.0.1:0", show_default=True,
              help="HOST:PORT to serve on; port 0 picks a free port.")
@click.option("--nodes", "node_count", type=int, default=3, show_default=True,
              help="How many simulated nodes (sandbox-node-1..N on 127.0.10.1..N).")
@click.option("--nodes-file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML list of nodes (name, providerID, addresses, labels, simulate).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a kubeconfig (admin token) for this sandbox here.")
@click.option("--token", default="", help="Admin bearer token (default: random).")
@click.option("--bookmark-interval", type=float, default=10.0, show_default=True,
              help="Seconds between watch bookmarks.")
@click.option("--tls", is_flag=True, default=False,
              help="Serve HTTPS with a fresh CA (written into the kubeconfig); callers without "
                   "a token are then system:anonymous instead of admin.")
@click.option("--workloads/--no-workloads", default=True, show_default=True,
              help="Run the in-process controllers (Deployments, scheduler, kubelet, "
                   "EndpointSlices, ServiceAccounts).")
@click.option("--traffic/--no-traffic", default=True,
              help="Serve simulated pods on their podIPs (every containerPort) and each "
                   "simulated node's NodePorts and health check node ports, like kube-proxy. "
                   "[default: on]")  # with --tls it trusts the sandbox's own CA
def sandbox(listen: str, node_count: int, nodes_file: Path | None, kubeconfig: Path | None,
            token: str, bookmark_interval: float, tls: bool, workloads: bool,
            traffic: bool) -> None:
    """Serve an embedded Kubernetes API (no cluster needed)."""
    host, port = _listen(listen)
    try:
        nodes = from_file(nodes_file) if nodes_file else simulated(node_count)
    except NodesFileError as exc:
        raise click.UsageError(str(exc)) from exc
    options = SandboxOptions(host=host, port=port, nodes=nodes, kubeconfig=kubeconfig,
                             token=token, bookmark_interval=bookmark_interval, tls=tls,
                             traffic=traffic,
                             workloads=workloads)
    try:
        asyncio.run(_serve(options))
    except OSError as exc:
        raise click.ClickException(f"--listen {listen}: {exc.strerror or exc}") from exc


async def _serve(options: SandboxOptions) -> None:
    box = Sandbox(options)
    url = await box.start()
    where = f" kubeconfig={options.kubeconfig}" if options.kubeconfig else ""
    click.echo(f"sandbox ready at {url} (Kubernetes v1.33, {len(options.nodes)} nodes){where}")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await box.stop()
    click.echo("sandbox stopped")


@main.command()
@click.option("--provider", type=click.Choice(["baremetal", "aws"]), default="baremetal",
              show_default=True,
              help="baremetal: a balancer daemon and real traffic; aws: an NLB built against a "
                   "moto server (or AWS_ENDPOINT_URL), shown as the AWS CLI would, no traffic.")
@click.option("--keep", is_flag=True,
              help="Leave everything running at the end and print how to use it.")
def demo(provider: str, keep: bool) -> None:
    """Run the story on this machine: sandbox, controller, balancer (real traffic; or an NLB
    against moto with --provider aws)."""
    from .demo import run_demo  # noqa: PLC0415  (keeps `lbctl --help` fast)

    run_demo(keep=keep, provider=provider)


register_controller_commands(main)
register_balancer_commands(main)

if __name__ == "__main__":
    main()
