"""What the cloud demos (`lbctl demo --provider aws|gcp|azure`) share: the sandbox whose Nodes
are the emulator's seeded instances with the controller on it, the run of a story to its
verdict, and the story steps alike in every cloud (a Service's condition, plurals, what is left
after the delete). What each cloud starts, shows and checks stays in its own module.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import click
import yaml

from ..controller.config import parse_config
from ..controller.embedded import Embedded, running_controller
from ..kube import Kube
from ..sandbox.app import SandboxOptions, SandboxThread
from ..sandbox.nodes import from_file
from .story import NS, deployment, say, wait_for, wait_for_ctrl_c


def demo_config(config_text: str, provider: str, controller: dict[str, Any]) -> str:
    """`lbctl emulator PROVIDER --config-out`'s `config_text` with generous rate limits (the
    emulator is local) and `controller`'s settings (node changes synced at once, ...)."""
    doc = yaml.safe_load(config_text)
    doc[provider]["rateLimits"] = {"read": 200, "write": 100, "operations": 200}
    doc["controller"] = controller
    return yaml.safe_dump(doc, sort_keys=False)


def require_sdk(provider: str, modules: dict[str, str]) -> None:
    """The provider's SDK `modules` (each with what to say it is) importable, or the demo's
    error."""
    for module, what in modules.items():
        if importlib.util.find_spec(module) is None:
            raise click.ClickException(f"lbctl demo --provider {provider} needs {what} "
                                       f"(install lbctl[{provider}])")


def emulator_missing(provider: str, exc: ImportError) -> click.ClickException:
    """The demo's error when the emulator's server (aiohttp) cannot be imported."""
    return click.ClickException(f"lbctl demo --provider {provider} needs aiohttp (install "
                                f"lbctl[sandbox]): {exc}")


@contextlib.contextmanager
def cluster(root: Path, write_nodes: Callable[[Path], None], node_names: Iterable[str],
            nodes_are: str, config_text: str) -> Iterator[tuple[Embedded, Path]]:
    """A sandbox of the Nodes `write_nodes` puts in `root`/nodes.yaml (`nodes_are` says what
    they are), and the controller with `config_text` on it: (the controller, its kubeconfig).
    Both stop on exit."""
    nodes_file = root / "nodes.yaml"
    write_nodes(nodes_file)
    kubeconfig = root / "kubeconfig"
    sandbox = SandboxThread(SandboxOptions(nodes=from_file(nodes_file), kubeconfig=kubeconfig))
    box = sandbox.start()
    try:
        click.echo(f"sandbox ready at {box.url}: Kubernetes v1.33, nodes "
                   f"{', '.join(node_names)} ({nodes_are})")
        config = parse_config(config_text)
        with running_controller(kubeconfig, config) as embedded:
            yield embedded, kubeconfig
    finally:
        sandbox.stop()


class CloudStory(Protocol):
    def run(self) -> None: ...

    def verdict(self) -> str | None: ...


def play(story: CloudStory, keep: bool, hints: str, cleanup: Callable[[], None],
         reader: Any = None) -> None:
    """Run `story`; with `keep`, wait for Ctrl-C (`hints` printed); then `cleanup` (the story's
    delete and count), `reader`'s close (the demo's own client, if any) and the verdict: a
    problem is the demo's error."""
    try:
        story.run()
        if keep:
            wait_for_ctrl_c(hints)
        cleanup()
    finally:
        if reader is not None:
            getattr(reader, "close", lambda: None)()
    problem = story.verdict()
    if problem:
        raise click.ClickException(problem)


# -- story steps alike in every cloud ----------------------------------------------------------
def frontend_service(port: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """`kubectl expose deployment frontend --port PORT --type LoadBalancer`'s Service."""
    return {"metadata": {"name": "frontend", "labels": {"app": "frontend", **(labels or {})}},
            "spec": {"type": "LoadBalancer", "selector": {"app": "frontend"},
                     "ports": [{"port": port, "targetPort": port, "protocol": "TCP"}]}}


def expose_frontend(kube: Kube, port: int, service: dict[str, Any],
                    before_expose: Callable[[], object] = lambda: None) -> dict[str, Any]:
    """Create the `frontend` Deployment and expose it as `service` (`before_expose` runs
    between the two): the Service as created."""
    say(f"kubectl create deployment frontend --image=nginx --replicas=3 --port={port}")
    kube.request("POST", "/apis/apps/v1/namespaces/default/deployments",
                 body=deployment("frontend", port=port))
    click.echo("deployment.apps/frontend created")
    before_expose()
    say(f"kubectl expose deployment frontend --port {port} --type LoadBalancer")
    created: dict[str, Any] = kube.request("POST", f"{NS}/services", body=service)
    click.echo("service/frontend exposed")
    return created


def delete_frontend(kube: Kube) -> None:
    """`kubectl delete service frontend`, waiting until it is gone (its finalizer released)."""
    say("kubectl delete service frontend")
    kube.request("DELETE", f"{NS}/services/frontend")
    wait_for(lambda: not any(s["metadata"]["name"] == "frontend" for s in kube.request(
        "GET", f"{NS}/services")["items"]), "the Service to go", 60)


def condition(svc: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The Service's status condition of type `kind`."""
    for cond in (svc.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return None


def plural(count: int, what: str) -> str:
    """`1 write`, `2 writes`, `0 addresses`."""
    return f"{count} {what if count == 1 else what + ('es' if what.endswith('s') else 's')}"


def show_leftovers(left: dict[str, int], owned: str, inventory: dict[str, list[str]],
                   endpoint: str, api: str, seeded: str,
                   label: Callable[[str], str] = str) -> None:
    """Print what is left after the delete: `left` (by kind, the cloud's listings of what the
    cluster owns: `owned` says how they tell), then the emulator's `inventory` at `endpoint` of
    everything made through `api` (`seeded`: the world it leaves out), each as `label` has
    it."""
    say(owned)
    click.echo("  " + ", ".join(plural(n, kind) for kind, n in left.items()))
    say(f"curl -s {endpoint}/_emulator/snapshot   # the emulator's inventory: every "
        f"object made through {api}, whoever owns it")
    if not inventory:
        click.echo(f"  nothing besides the seeded world ({seeded})")
    for kind, links in sorted(inventory.items()):
        for link in links:
            click.echo(f"  {kind}: {label(link)}")


def leftovers_problem(cloud: str, left: dict[str, int],
                      inventory: dict[str, list[str]]) -> str | None:
    """The verdict's last check: nothing of the cluster left in `cloud` after the delete."""
    kept = {kind: n for kind, n in left.items() if n}
    if kept:
        return f"left in {cloud} after the delete: " + ", ".join(
            plural(n, kind) for kind, n in kept.items())
    if inventory:
        return f"left in {cloud} after the delete: " + ", ".join(
            f"{len(links)} {kind}" for kind, links in sorted(inventory.items()))
    return None
