"""`lbctl status`: each LoadBalancer Service as the cluster shows it, kubectl-style.

An operator's question ("why is this one `<pending>`, and is its balancer healthy?") answered
from what the controller wrote back (ingress, the `LoadBalancer*` conditions, Warning Events),
read through lbctl's own client: no controller, provider or cloud credentials needed, so it
works from a laptop with a kubeconfig as well as from inside the cluster. The rows are built by
`lbctl.controller.status_view` (pure); this module only finds the cluster, lists and prints.
It imports click alone at load time (`lbctl --help` stays fast) and never the sandbox.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..kube import Kube, Resource


def kubeconfig_path(flag: str | None) -> str | None:
    """kubectl's order: `--kubeconfig`, the first existing file of `$KUBECONFIG`,
    `~/.kube/config`; None means in-cluster config."""
    if flag:
        return flag
    for entry in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if entry and Path(entry).expanduser().is_file():
            return str(Path(entry).expanduser())
    default = Path.home() / ".kube" / "config"
    return str(default) if default.is_file() else None


def connect(path: str | None, context: str | None) -> Kube:
    """A Kube, or a ClickException saying which config failed and why (never a traceback:
    the client raises its own types, which only `lbctl.kube` may import)."""
    from ..kube import Kube, new_api_client  # noqa: PLC0415

    try:
        return Kube(new_api_client(path, context=context), timeout=(5.0, 30.0))
    except Exception as exc:  # the client's ConfigException, OSError, yaml errors alike
        where = f"kubeconfig {path}" if path else (
            "in-cluster config (no --kubeconfig, $KUBECONFIG or ~/.kube/config)")
        raise click.ClickException(f"cannot load {where}: {exc}") from exc


def list_all(kube: Kube, resource: Resource, namespace: str | None, *,
             label_selector: str = "", field_selector: str = "") -> list[dict[str, Any]]:
    """Every page of a list (the client's default limit is 500 per page)."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        page = kube.list_page(resource, namespace=namespace, continue_token=token,
                              label_selector=label_selector, field_selector=field_selector)
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return items


def register(main: click.Group) -> None:
    @main.command()
    @click.option("--kubeconfig", default=None,
                  help="Kubeconfig path (default: $KUBECONFIG, ~/.kube/config, in-cluster).")
    @click.option("--context", default=None, help="The kubeconfig context to use.")
    @click.option("--config", "config_path", default=None,
                  type=click.Path(dir_okay=False, path_type=Path),
                  help="The controller's config file: PROVIDER from it for the classes it owns.")
    @click.option("-n", "--namespace", default=None, help="Only this namespace.")
    @click.option("-A", "--all-namespaces", is_flag=True,
                  help="Every namespace (the default; wins over -n, as in kubectl).")
    @click.option("-l", "--selector", default="", help="Label selector, e.g. app=web.")
    @click.option("-o", "--output", type=click.Choice(["wide", "json", "yaml"]), default=None,
                  help="wide: conditions and their messages; json/yaml: everything.")
    def status(kubeconfig: str | None, context: str | None, config_path: Path | None,
               namespace: str | None, all_namespaces: bool, selector: str,
               output: str | None) -> None:
        """Each LoadBalancer Service: address, provider, readiness, target health."""
        from datetime import UTC, datetime  # noqa: PLC0415

        from ..controller.config import ConfigError, load_config  # noqa: PLC0415
        from ..controller.status_view import build_rows, document, table  # noqa: PLC0415
        from ..kube import EVENTS, SERVICES, ApiError  # noqa: PLC0415

        if all_namespaces:  # as kubectl: -A wins over -n
            namespace = None
        try:
            config = load_config(config_path) if config_path else None
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        kube = connect(kubeconfig_path(kubeconfig), context)
        try:
            try:
                services = list_all(kube, SERVICES, namespace, label_selector=selector)
            except ApiError as exc:
                raise click.ClickException(f"cannot list Services from "
                                           f"{kube.api_client.configuration.host}: {exc}") from exc
            try:
                events = list_all(kube, EVENTS, namespace,
                                  field_selector="involvedObject.kind=Service,type=Warning")
            except ApiError as exc:  # e.g. no RBAC for Events: the rest is still worth seeing
                click.echo(f"warning: cannot list Events ({exc}): WARNING left empty", err=True)
                events = []
        finally:
            kube.close()
        rows = build_rows(services, events, config)
        if output == "json":
            click.echo(json.dumps(document(rows), indent=2))
        elif output == "yaml":
            import yaml  # noqa: PLC0415

            click.echo(yaml.safe_dump(document(rows), sort_keys=False), nl=False)
        elif not rows:
            where = f"namespace {namespace}" if namespace else "any namespace"
            click.echo(f"No LoadBalancer Services found in {where}.", err=True)
        else:
            for line in table(rows, datetime.now(UTC), wide=output == "wide",
                              namespace_column=not namespace):
                click.echo(line)
