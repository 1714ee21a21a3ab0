"""`lbctl sandbox`: serve the embedded Kubernetes API (see `lbctl.sandbox`) until SIGTERM.

Prints one line with `ready` and the URL once serving (the design's contract); the sandbox is
imported only when the command runs. Plain HTTP makes credential-less callers admin, so a
non-loopback `--listen` without `--tls` is refused unless `--allow-anonymous-remote-admin` is
given, and then a warning goes to stderr before anything is served.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import options

if TYPE_CHECKING:
    from ..sandbox.app import SandboxOptions


def register(main: click.Group) -> None:
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
                  help="Serve HTTPS with a fresh CA (written into the kubeconfig); callers "
                       "without a token are then system:anonymous instead of admin.")
    @click.option("--workloads/--no-workloads", default=True, show_default=True,
                  help="Run the in-process controllers (Deployments, scheduler, kubelet, "
                       "EndpointSlices, ServiceAccounts).")
    @click.option("--traffic/--no-traffic", default=True,
                  help="Serve simulated pods on their podIPs (every containerPort) and each "
                       "simulated node's NodePorts and health check node ports, like "
                       "kube-proxy. [default: on]")  # with --tls it trusts the sandbox's own CA
    @click.option("--allow-anonymous-remote-admin", "allow_remote", is_flag=True, default=False,
                  help="Serve plain HTTP on a non-loopback --listen address although callers "
                       "without a token are admin there (refused otherwise; --tls makes them "
                       "system:anonymous instead). Only for a throwaway sandbox on a trusted "
                       "network.")
    def sandbox(listen: str, node_count: int, nodes_file: Path | None, kubeconfig: Path | None,
                token: str, bookmark_interval: float, tls: bool, workloads: bool,
                traffic: bool, allow_remote: bool) -> None:
        """Serve an embedded Kubernetes API (no cluster needed)."""
        options.import_or_explain("sandbox", _load)
        from ..sandbox.app import (  # noqa: PLC0415 (keeps `lbctl --help` fast)
            SandboxOptions,
            anonymous_admin_exposed,
            refusal,
        )
        from ..sandbox.nodes import NodesFileError, from_file, simulated  # noqa: PLC0415

        host, port = options.listen(listen)
        try:
            nodes = from_file(nodes_file) if nodes_file else simulated(node_count)
        except NodesFileError as exc:
            raise click.UsageError(str(exc)) from exc
        opts = SandboxOptions(host=host, port=port, nodes=nodes, kubeconfig=kubeconfig,
                              token=token, bookmark_interval=bookmark_interval, tls=tls,
                              traffic=traffic, workloads=workloads,
                              allow_anonymous_remote_admin=allow_remote)
        if anonymous_admin_exposed(opts):
            if not allow_remote:
                raise click.UsageError(refusal(host))
            _warn_exposed(listen)
        try:
            asyncio.run(_serve(opts))
        except OSError as exc:
            raise click.ClickException(f"--listen {listen}: {exc.strerror or exc}") from exc


def _warn_exposed(listen: str) -> None:
    rule = "!" * 78
    click.secho("\n".join([
        rule,
        f"!! WARNING: --allow-anonymous-remote-admin: serving plain HTTP on {listen}",
        "!! Every caller that sends no token is ADMIN (system:masters): anyone who can reach",
        "!! this address can read and change everything in this sandbox. Use --tls (anonymous",
        "!! callers become system:anonymous) or listen on 127.0.0.1 unless you mean it.",
        rule]), err=True, fg="red", bold=True)


def _load() -> None:
    import lbctl.sandbox.app  # noqa: PLC0415, F401 (imports every dependency of the sandbox)


async def _serve(options: SandboxOptions) -> None:
    from ..sandbox.app import Sandbox  # noqa: PLC0415

    box = Sandbox(options)
    url = await box.start()
    stop = asyncio.Event()  # before the ready line: a SIGTERM right after it stops cleanly
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    where = f" kubeconfig={options.kubeconfig}" if options.kubeconfig else ""
    click.echo(f"sandbox ready at {url} (Kubernetes v1.33, {len(options.nodes)} nodes){where}")
    sys.stdout.flush()
    await stop.wait()
    await box.stop()
    click.echo("sandbox stopped")
