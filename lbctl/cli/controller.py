"""`lbctl run`, `lbctl config validate` and `lbctl plan`: the controller's commands.

Kept apart from the sandbox's command so `lbctl --help` stays fast and each command imports
only what it runs. Bad flags and files end in a message naming them and exit code 1 or 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise click.BadParameter(f"{value!r} is not true or false", param_hint="--leader-elect")


def register(main: click.Group) -> None:
    @main.command()
    @click.option("--kubeconfig", default=None, help="Kubeconfig path (default: in-cluster).")
    @click.option("--config", "config_path", required=True,
                  type=click.Path(dir_okay=False, path_type=Path),
                  help="The config file (the mounted ConfigMap's config.yaml).")
    @click.option("--metrics-bind", default="0.0.0.0:8080", show_default=True,
                  help="HOST:PORT for /metrics, /healthz and /readyz.")
    @click.option("--leader-elect", default="true", show_default=True,
                  help="Elect a leader on a Lease (false for a single replica).")
    @click.option("--log-format", type=click.Choice(["json", "text"]), default="json",
                  show_default=True)
    def run(kubeconfig: str | None, config_path: Path, metrics_bind: str, leader_elect: str,
            log_format: str) -> None:
        """Run the controller."""
        from providers.registry import UnknownProviderError  # noqa: PLC0415

        from ..controller.runner import run as run_controller  # noqa: PLC0415
        from ..logs import setup as setup_logging  # noqa: PLC0415
        from ..parsing import ConfigError  # noqa: PLC0415

        setup_logging(log_format)
        try:
            code = run_controller(kubeconfig, config_path, metrics_bind, _bool(leader_elect))
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        except UnknownProviderError as exc:
            raise click.ClickException(f"{config_path}: provider: {exc}") from exc
        sys.exit(code)

    @main.group()
    def config() -> None:
        """Work with config files."""

    @config.command("validate")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    def validate(file: Path) -> None:
        """Check a config file the way the controller will; print every problem."""
        from ..controller.planning import validate_config  # noqa: PLC0415

        _, problems = validate_config(file)
        if problems:
            for line in problems:
                click.echo(line, err=True)
            sys.exit(1)
        click.echo(f"{file}: valid")

    @main.command()
    @click.option("-f", "service_file", required=True,
                  type=click.Path(dir_okay=False, path_type=Path), help="A Service YAML.")
    @click.option("--config", "config_path", required=True,
                  type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--kubeconfig", default=None,
                  help="Read the cluster's nodes and namespace labels from here (default: no "
                       "nodes, a namespace with no labels but its name).")
    def plan(service_file: Path, config_path: Path, kubeconfig: str | None) -> None:
        """Print the balancer spec for a Service and the provider's planned changes."""
        from providers.cluster import StaticView  # noqa: PLC0415
        from providers.errors import ProviderError  # noqa: PLC0415
        from providers.registry import load  # noqa: PLC0415

        from ..controller.planning import load_service, validate_config  # noqa: PLC0415
        from ..controller.planning import plan as make_plan  # noqa: PLC0415
        from ..controller.records import node_view  # noqa: PLC0415

        cfg, problems = validate_config(config_path)
        if cfg is None or problems:
            for line in problems:
                click.echo(line, err=True)
            sys.exit(1)
        try:
            service = load_service(service_file)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        nodes = []
        namespace = service["metadata"]["namespace"]
        labels: dict[str, dict[str, str]] = {namespace: {}}  # pools may select on them
        if kubeconfig:
            from ..kube import NAMESPACES, NODES, Kube  # noqa: PLC0415

            kube = Kube.connect(kubeconfig)
            nodes = [node_view(n) for n in kube.list_page(NODES).get("items", [])]
            labels.update({str(ns["metadata"]["name"]): dict(ns["metadata"].get("labels") or {})
                           for ns in kube.list_page(NAMESPACES).get("items", [])})
            kube.close()
        try:
            view = StaticView(namespaces=labels)
            provider = load(cfg.provider)(cfg.provider_settings(), cfg.cluster_name, view)
            click.echo(make_plan(service, nodes, cfg, provider))
        except (ProviderError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
