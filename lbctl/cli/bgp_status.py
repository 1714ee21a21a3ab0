"""`lbctl balancer bgp`: every balancer host's BGP sessions, and which hosts announce each VIP.

Why a command of its own: each daemon knows only its own sessions and announcements
(`GET /v1/bgp`); with ECMP what an operator asks is across hosts: "is 10.0.0.5 announced, by
whom, and why not by that one?". This asks every daemon the controller's config lists
(`baremetal.balancers`: name, url, tokenFile, caFile), or those given with `--daemon`, and puts
the answers side by side. A daemon that cannot be asked is a row saying why, never a crash.
"""

from __future__ import annotations

import json
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click


@dataclass(frozen=True)
class Daemon:
    name: str
    url: str
    token_file: str
    ca_file: str | None = None


def from_config(path: Path) -> list[Daemon]:
    """The daemons of the controller's config file (`baremetal.balancers`); ConfigError."""
    from ..parsing import ConfigError, load_yaml  # noqa: PLC0415 - yaml only when asked

    try:
        doc = load_yaml(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), [("", str(exc))]) from exc
    items = ((doc or {}).get("baremetal") or {}).get("balancers") if isinstance(doc, dict) \
        else None
    if not isinstance(items, list) or not items:
        raise ConfigError(str(path), [("baremetal.balancers", "lists no balancer daemons")])
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str)
                                                 for k in ("name", "url", "tokenFile")):
            raise ConfigError(str(path), [(f"baremetal.balancers[{i}]",
                                           "needs name, url and tokenFile")])
        out.append(Daemon(item["name"], item["url"], item["tokenFile"], item.get("caFile")))
    return out


def ask(daemon: Daemon, timeout: float = 5.0) -> dict[str, Any]:
    """The daemon's `GET /v1/bgp`, or {"error": why}."""
    try:
        token = Path(daemon.token_file).read_text().strip()
    except OSError as exc:
        return {"error": f"token file {daemon.token_file}: {exc.strerror or exc}"}
    if not daemon.url.startswith(("http://", "https://")):
        return {"error": f"url {daemon.url!r} is not http:// or https://"}
    req = urllib.request.Request(daemon.url.rstrip("/") + "/v1/bgp",  # noqa: S310 - checked
                                 headers={"Authorization": f"Bearer {token}"})
    context = ssl.create_default_context(cafile=daemon.ca_file) if daemon.ca_file else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:  # noqa: S310
            answer: dict[str, Any] = json.loads(resp.read())
            return answer
    except urllib.error.HTTPError as exc:
        return {"error": f"HTTP {exc.code}"}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return {"error": f"unreachable: {getattr(exc, 'reason', exc)}"}


def gather(daemons: list[Daemon]) -> dict[str, Any]:
    """{"hosts": name -> answer, "vips": vip -> {"announcedBy": [...], "notBy": {name: why}}}."""
    hosts = {d.name: ask(d) for d in daemons}
    vips: dict[str, dict[str, Any]] = {}
    for name, answer in hosts.items():
        for vip, view in ((answer.get("status") or {}).get("vips") or {}).items():
            entry = vips.setdefault(vip, {"announcedBy": [], "notBy": {}})
            if view.get("announced") and view.get("peers"):
                entry["announcedBy"].append(name)
            else:
                entry["notBy"][name] = view.get("reason", "")
    return {"hosts": hosts, "vips": dict(sorted(vips.items()))}


def render(report: dict[str, Any]) -> str:
    rows = [("HOST", "PEER", "STATE", "PREFIXES", "LAST ERROR")]
    for name, answer in report["hosts"].items():
        if "error" in answer:
            rows.append((name, "-", "unknown", "-", answer["error"]))
            continue
        status = answer.get("status")
        if not status:
            rows.append((name, "-", "no bgp", "-", f"source: {answer.get('source')}"))
            continue
        for peer in status.get("peers", []):
            rows.append((name, f"{peer['name']} ({peer['address']})", peer["state"],
                         str(peer["prefixes"]), peer.get("lastError") or ""))
    vip_rows = [("VIP", "ANNOUNCED BY", "NOT BY")]
    for vip, entry in report["vips"].items():
        not_by = "; ".join(f"{n}: {why}" for n, why in sorted(entry["notBy"].items()))
        vip_rows.append((vip, ",".join(entry["announcedBy"]) or "<none>", not_by))
    return _table(rows) + "\n\n" + _table(vip_rows)


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def register(balancer: click.Group) -> None:
    @balancer.command("bgp")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                  help="The controller's config file: ask every daemon in "
                       "baremetal.balancers.")
    @click.option("--daemon", "named", multiple=True, metavar="NAME=URL",
                  help="A daemon to ask (repeatable), with --token-file.")
    @click.option("--token-file", type=click.Path(dir_okay=False), default=None,
                  help="The API token for --daemon.")
    @click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
    def bgp(config_path: Path | None, named: tuple[str, ...], token_file: str | None,
            output: str) -> None:
        """BGP sessions of every balancer host, and which hosts announce each VIP."""
        from ..parsing import ConfigError  # noqa: PLC0415

        daemons: list[Daemon] = []
        try:
            if config_path is not None:
                daemons += from_config(config_path)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        for item in named:
            name, sep, url = item.partition("=")
            if not sep or not name or not url or token_file is None:
                click.echo(f"error: --daemon {item!r}: give NAME=URL and --token-file",
                           err=True)
                sys.exit(2)
            daemons.append(Daemon(name, url, token_file))
        if not daemons:
            click.echo("error: give --config or --daemon", err=True)
            sys.exit(2)
        report = gather(daemons)
        click.echo(json.dumps(report, indent=2) if output == "json" else render(report))
