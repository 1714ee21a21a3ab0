"""What the providers' end-to-end tests share: waiting until nothing stands between the cloud and
the Service (`wait_until`), the controller's report (`not_ensured`), a sandbox whose nodes are a
world's, and the Services a test drives (`ServiceEnv`, which each provider's `Env` extends with
its cloud's view)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from lbctl.sandbox.app import Sandbox, SandboxOptions, SandboxThread
from lbctl.sandbox.nodes import from_file
from tests.conftest import client_for

NAMESPACE = "default"


def wait_until(check: Callable[[], list[str]], timeout: float, what: str,
               interval: float = 0.2) -> float:
    """Poll `check()` (the problems left) until it returns none; answers the seconds waited,
    or fails with the last problems."""
    started = time.monotonic()
    deadline = started + timeout
    last: list[str] = []
    while True:
        last = check()
        if not last:
            return time.monotonic() - started
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}:\n  "
                                 + "\n  ".join(last))
        time.sleep(interval)


def not_ensured(svc: client.V1Service) -> list[str]:
    """Empty once the controller reports the Service's current generation ensured
    (LoadBalancerProvisioning False/Ensured for metadata.generation)."""
    conditions = {c.type: c for c in (svc.status.conditions or [])} if svc.status else {}
    cond = conditions.get("LoadBalancerProvisioning")
    if cond is None or (cond.status, cond.reason) != ("False", "Ensured"):
        return [f"not ensured yet: {cond.status if cond else None} "
                f"{cond.reason if cond else ''} {cond.message if cond else ''}"]
    if cond.observed_generation != svc.metadata.generation:
        return [f"ensured generation {cond.observed_generation}, "
                f"the Service is at {svc.metadata.generation}"]
    return []


def read_service(core: client.CoreV1Api, name: str,
                 namespace: str = NAMESPACE) -> client.V1Service | None:
    """The Service, None once it is gone."""
    try:
        return core.read_namespaced_service(name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


# -- the sandbox -----------------------------------------------------------------------------
def world_sandbox(nodes_file: Path, tmp: Path, **kw: Any) -> Iterator[Sandbox]:
    """A fixture's body: a sandbox whose nodes come from `nodes_file` (kubeconfig in `tmp`)."""
    thread = SandboxThread(SandboxOptions(nodes=from_file(nodes_file),
                                          kubeconfig=tmp / "kubeconfig", **kw))
    thread.start()
    assert thread.sandbox is not None
    try:
        yield thread.sandbox
    finally:
        thread.stop()


def nodes_sandbox(nodes_text: str, tmp: Path) -> Iterator[Sandbox]:
    """A fixture's body: a sandbox whose nodes are a world's (`nodes_text`, the world's nodes
    file), not simulated."""
    nodes = tmp / "nodes.yaml"
    nodes.write_text(nodes_text)
    yield from world_sandbox(nodes, tmp, bookmark_interval=0.5)


def core_api_of(box: Sandbox) -> Iterator[client.CoreV1Api]:
    """A fixture's body: a CoreV1Api on the sandbox, closed after."""
    api = client_for(box)
    yield client.CoreV1Api(api)
    api.close()


# -- the Services ----------------------------------------------------------------------------
@dataclass
class ServiceEnv:
    """The Services of a test's cluster, in the namespace `NAMESPACE`."""

    core: client.CoreV1Api

    def read(self, name: str) -> client.V1Service:
        return self.core.read_namespaced_service(name, NAMESPACE)

    def exists(self, name: str) -> bool:
        return read_service(self.core, name) is not None

    def create(self, name: str, ports: list[dict[str, Any]] | None = None,
               annotations: dict[str, str] | None = None, **spec: Any) -> client.V1Service:
        self.core.create_namespaced_service(NAMESPACE, {
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"type": "LoadBalancer", "selector": {"app": name},
                     "ports": ports or [{"name": "http", "port": 80, "targetPort": 8080}],
                     **spec}})
        return self.read(name)

    def delete(self, name: str) -> None:
        self.core.delete_namespaced_service(name, NAMESPACE)

    def ingress(self, name: str) -> client.V1LoadBalancerIngress | None:
        """The Service's first status ingress, None before it has one."""
        svc = self.read(name)
        lb = svc.status.load_balancer if svc.status else None
        return lb.ingress[0] if lb and lb.ingress else None

    def ip(self, name: str) -> str:
        ingress = self.ingress(name)
        return str(ingress.ip or "") if ingress else ""

    def hostname(self, name: str) -> str:
        ingress = self.ingress(name)
        return str(ingress.hostname or "") if ingress else ""

    def warnings(self, name: str) -> list[client.CoreV1Event]:
        return [e for e in self.core.list_namespaced_event(
            NAMESPACE, field_selector=f"involvedObject.name={name}").items
            if e.type == "Warning"]
