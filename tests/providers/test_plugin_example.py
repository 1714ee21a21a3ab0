"""The README's plugin example, run as a plugin author would ship it.

The README's `## Writing a provider` code block is written into a package of its own with an
entry point in `lbctl.providers` (a dist-info on sys.path, as `pip install` would leave), found
by the registry, and driven by the controller against a sandbox: a Service gets the first
address, a bad annotation becomes a Warning event naming it, and a delete gives the address back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from lbctl.controller.config import parse_config
from lbctl.controller.embedded import running_controller
from lbctl.sandbox.app import Sandbox
from providers import registry
from tests.conftest import client_for, wait_for

pytestmark = pytest.mark.integration
README = Path(__file__).resolve().parents[2] / "README.md"
CONFIG = """provider: static-ips
controller: {nodeSyncDebounceSeconds: 0.1}
plugins: {static-ips: {addresses: ["192.0.2.10", "192.0.2.11"]}}
"""


def example() -> str:
    text = README.read_text()
    section = text[text.index("## Writing a provider"):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's provider example is gone"
    return match.group(1)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    package = tmp_path / "my_package"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "static_ips.py").write_text(example())
    info = tmp_path / "my_package-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-package\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[lbctl.providers]\nstatic-ips = my_package.static_ips:create\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield


def service(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"type": "LoadBalancer", "selector": {"app": name},
                     "ports": [{"port": 80, "targetPort": 8080}]}}


def test_the_readme_example_runs_as_a_plugin(plugin: None, own_sandbox: Sandbox) -> None:
    assert "static-ips" in registry.available()
    assert own_sandbox.options.kubeconfig is not None
    api = client_for(own_sandbox)
    core = client.CoreV1Api(api)
    try:
        with running_controller(own_sandbox.options.kubeconfig, parse_config(CONFIG)):
            core.create_namespaced_service("default", service("web"))
            assert wait_for(lambda: address_of(core, "web"), 30, "web's address") == (
                "192.0.2.10")
            core.create_namespaced_service("default", service("bad", {"example.com/zone": ""}))

            def warning() -> list[str]:
                return [e.message for e in core.list_namespaced_event("default").items
                        if e.involved_object.name == "bad" and e.type == "Warning"]

            assert "metadata.annotations[example.com/zone]" in wait_for(warning, 30,
                                                                         "a Warning")[0]
            core.delete_namespaced_service("web", "default")
            wait_for(lambda: "web" not in {s.metadata.name for s in
                                           core.list_namespaced_service("default").items},
                     30, "web deleted (finalizer removed after the provider's delete)")
            core.create_namespaced_service("default", service("next"))
            assert wait_for(lambda: address_of(core, "next"), 30, "next's address") == (
                "192.0.2.11")
            # the provider's delete gave .10 back: the third Service gets it
            core.create_namespaced_service("default", service("third"))
            assert wait_for(lambda: address_of(core, "third"), 30, "third's address") == (
                "192.0.2.10")
    finally:
        api.close()


def address_of(core: client.CoreV1Api, name: str) -> str | None:
    svc = core.read_namespaced_service(name, "default")
    ingress = (svc.status.load_balancer and svc.status.load_balancer.ingress) or []
    return ingress[0].ip if ingress else None
