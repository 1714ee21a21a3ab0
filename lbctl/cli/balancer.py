"""`lbctl balancer ...`: serve balancers, and check a static file before deploying it.

Imports the balancer only inside the commands, so the controller never loads the data plane.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

import click

from . import bgp_status, options


def _hostport(value: str, flag: str) -> tuple[str, int]:
    return options.listen(value, flag, default_host="0.0.0.0", free_port=False)


def _peer(value: str) -> tuple[str, str, int]:
    name, sep, where = value.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{value!r} is not NAME=IP:PORT", param_hint="--peer")
    host, port = _hostport(where, "--peer")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise click.BadParameter(f"{host!r} is not an IP address (heartbeats do not resolve "
                                 "names)", param_hint="--peer") from None
    return name, host, port


def _workers(value: str) -> int:
    """`auto` (one per CPU this process may run on) or a count of 1..64."""
    if value == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise click.BadParameter(f"{value!r} is not 'auto' or a number 1..64",
                                 param_hint="--workers")
    return int(value)


def register(main: click.Group) -> None:
    @main.group()
    def balancer() -> None:
        """The software balancer daemon (userspace data plane, health checks)."""

    @balancer.command()
    @click.option("--config", "config_path", default=None,
                  type=click.Path(dir_okay=False, path_type=Path),
                  help="Static file of balancers (re-read on change and on SIGHUP).")
    @click.option("--api-listen", default=None,
                  help="HOST:PORT of the HTTP API the baremetal provider programs "
                       "(port 0 picks one); also /healthz, /readyz, /metrics.")
    @click.option("--token-file", default=None, type=click.Path(dir_okay=False, path_type=Path),
                  help="File holding the API's bearer token (a mounted Secret).")
    @click.option("--tls-cert", default=None, type=click.Path(dir_okay=False, path_type=Path),
                  help="PEM certificate (chain) of the API: with --tls-key, the API, /healthz, "
                       "/readyz and /metrics are HTTPS only; re-read when it changes.")
    @click.option("--tls-key", default=None, type=click.Path(dir_okay=False, path_type=Path),
                  help="PEM private key of --tls-cert.")
    @click.option("--heartbeat-key-file", default=None,
                  type=click.Path(dir_okay=False, path_type=Path),
                  help="HMAC key of the L2 heartbeats (>= 16 bytes, the same on every "
                       "instance; never the API token). Required with --interface.")
    @click.option("--api-max-connections", default=256, show_default=True,
                  type=click.IntRange(8, 65536),
                  help="Connections the API holds at once; one more is answered 503.")
    @click.option("--state-file", default=None, type=click.Path(dir_okay=False, path_type=Path),
                  help="Where programmed balancers persist across restarts.")
    @click.option("--kernel-dataplane", type=click.Choice(["auto", "off"]), default="auto",
                  show_default=True,
                  help="auto: `dataplane: nftables` balancers go to the kernel when this "
                       "process has CAP_NET_ADMIN; off: everything in userspace.")
    @click.option("--interface", default=None,
                  help="Announce owned VIPs on this interface (ARP/NDP, gratuitous ARP on "
                       "takeover); unset: no L2 announcements.")
    @click.option("--instance-name", default=socket.gethostname(), show_default=True,
                  help="This instance's name among its peers.")
    @click.option("--heartbeat-listen", default="0.0.0.0:9451", show_default=True,
                  help="HOST:PORT for peer heartbeats (UDP, HMAC with --heartbeat-key-file).")
    @click.option("--peer", "peers", multiple=True, metavar="NAME=IP:PORT",
                  help="Another instance on the segment (repeat for each).")
    @click.option("--workers", "workers_text", default="1", show_default=True,
                  metavar="N|auto",
                  help="Processes serving the userspace data plane (this one included); they "
                       "share each VIP:port with SO_REUSEPORT. auto: one per usable CPU.")
    @click.option("--log-format", type=click.Choice(["json", "text"]), default="text",
                  show_default=True)
    def serve(config_path: Path | None, api_listen: str | None, token_file: Path | None,
              tls_cert: Path | None, tls_key: Path | None, heartbeat_key_file: Path | None,
              api_max_connections: int, state_file: Path | None, kernel_dataplane: str,
              interface: str | None, instance_name: str, heartbeat_listen: str,
              peers: tuple[str, ...], workers_text: str, log_format: str) -> None:
        """Serve balancers from a static file and/or the HTTP API."""
        from ..balancer.announce import L2Options  # noqa: PLC0415 (keeps `lbctl --help` fast)
        from ..balancer.api_server import ApiLimits  # noqa: PLC0415
        from ..balancer.daemon import ServeOptions, run  # noqa: PLC0415
        from ..logs import setup as setup_logging  # noqa: PLC0415
        from ..parsing import ConfigError  # noqa: PLC0415

        if config_path is None and api_listen is None:
            raise click.UsageError("give --config FILE, --api-listen HOST:PORT, or both")
        if api_listen is not None:
            options.listen(api_listen, "--api-listen")
        if (tls_cert is None) != (tls_key is None):
            raise click.UsageError("give --tls-cert and --tls-key together")
        if interface is not None and heartbeat_key_file is None:
            raise click.UsageError("--interface needs --heartbeat-key-file (the heartbeats' "
                                   "HMAC key, the same on every instance)")
        l2 = None
        if interface is not None:
            l2 = L2Options(interface, instance_name, _hostport(heartbeat_listen,
                                                                "--heartbeat-listen"),
                           tuple(_peer(p) for p in peers))
        workers = _workers(workers_text)
        setup_logging(log_format)
        try:
            run(ServeOptions(config=config_path, api_listen=api_listen, token_file=token_file,
                             tls_cert=tls_cert, tls_key=tls_key,
                             heartbeat_key_file=heartbeat_key_file,
                             api_limits=ApiLimits(max_connections=api_max_connections),
                             state_file=state_file, kernel=kernel_dataplane, l2=l2,
                             workers=workers, log_format=log_format))
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except OSError as exc:  # an interface that does not exist, a port in use, no CAP_NET_RAW
            where = f" ({exc.filename})" if exc.filename else ""
            click.echo(f"error: {exc.strerror or exc}{where}; check --interface, "
                       "--api-listen, --heartbeat-listen and the capabilities (NET_RAW for "
                       "--interface, NET_ADMIN for nftables)", err=True)
            sys.exit(1)

    @balancer.command()
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
    def validate(path: Path) -> None:
        """Check a static balancers file; every problem is named by its key."""
        from ..balancer.model import parse_file  # noqa: PLC0415
        from ..parsing import ConfigError  # noqa: PLC0415

        try:
            parsed = parse_file(path.read_text(), str(path))
        except OSError as exc:
            click.echo(f"error: {path}: {exc.strerror or exc}", err=True)
            sys.exit(2)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        click.echo(f"{path}: ok ({len(parsed.balancers)} balancers"
                   f"{', bgp' if parsed.bgp else ''})")

    bgp_status.register(balancer)
