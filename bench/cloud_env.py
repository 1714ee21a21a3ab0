"""The in-process environment the cloud benches (bench/aws.py, gcp.py, azure.py) share: a
sandbox whose Nodes are the emulator's seeded instances, a Controller on it with the bench's
provider config, and the small helpers around it (waits, Service creates, ingress reads, the
rate option, quiet logs; the judged figures and verdicts are bench/completeness.py's). What
each cloud counts, and how it seeds its emulator, stays in its bench.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: `lbctl` and `providers` importable
    sys.path.insert(0, str(ROOT))

from lbctl.controller.config import parse_config  # noqa: E402
from lbctl.controller.controller import Controller  # noqa: E402
from lbctl.controller.embedded import running_controller  # noqa: E402
from lbctl.controller.events import BackgroundEvents  # noqa: E402
from lbctl.kube import SERVICES, Kube  # noqa: E402
from lbctl.sandbox.app import SandboxOptions, SandboxThread  # noqa: E402
from lbctl.sandbox.nodes import from_file  # noqa: E402

CLUSTER = "bench"
NAMESPACE = "bench"


@dataclass
class CloudEnv:
    """A sandbox with the world's nodes and the controller on it; `close` ends both."""

    box: SandboxThread
    kube: Kube
    events: BackgroundEvents
    controller: Controller
    tmp: tempfile.TemporaryDirectory[str]
    stack: contextlib.ExitStack

    def quiet(self) -> bool:
        queue = self.controller.queue
        return queue is not None and not (queue.depth() or queue.in_flight() or queue.delayed())

    def close(self) -> None:
        self.stack.close()  # controller, provider, events, client
        self.box.stop()
        self.tmp.cleanup()


def parts(env: CloudEnv) -> dict[str, Any]:
    """`env`'s fields by name: a bench's own Env (a CloudEnv with its emulator and world) is
    `Env(**parts(start_cloud(...)), emulator=..., world=...)`."""
    return {f.name: getattr(env, f.name) for f in fields(CloudEnv)}


def start_cloud(nodes_yaml: str, provider: str, workers: int, qps: int, burst: int,
                section: str) -> CloudEnv:
    """A sandbox of `nodes_yaml`'s Nodes and a controller with `provider` and its config
    `section` (YAML, the provider's key included), the bench namespace made; the controller's
    kube client at `qps`/`burst`."""
    tmp = tempfile.TemporaryDirectory()
    nodes_file = Path(tmp.name) / "nodes.yaml"
    nodes_file.write_text(nodes_yaml)
    box = SandboxThread(SandboxOptions(nodes=from_file(nodes_file), workloads=False,
                                       kubeconfig=Path(tmp.name) / "kubeconfig",
                                       bookmark_interval=1.0))
    box.start()
    config = parse_config(f"""
clusterName: {CLUSTER}
provider: {provider}
controller: {{workers: {workers}, nodeSyncDebounceSeconds: 1, resyncSeconds: 86400,
              qps: {qps}, burst: {burst}}}
{section}""")
    stack = contextlib.ExitStack()
    try:
        embedded = stack.enter_context(running_controller(Path(tmp.name) / "kubeconfig",
                                                          config, qps=qps, burst=burst))
        embedded.kube.request("POST", "/api/v1/namespaces",
                              body={"metadata": {"name": NAMESPACE}})
    except BaseException:
        stack.close()
        box.stop()
        tmp.cleanup()
        raise
    return CloudEnv(box, embedded.kube, embedded.events, embedded.controller, tmp, stack)


# -- helpers --------------------------------------------------------------------------------------
def wait(check: Callable[[], bool], timeout: float, step: float = 0.02) -> float | None:
    """Poll until `check()`: time.monotonic() when it first held, None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(step)
    return None


def service(name: str, ports: Iterable[int] = (80,), port_name: str = "p{port}",
            ) -> dict[str, Any]:
    """A LoadBalancer Service of TCP `ports` (target 8080), each named `port_name`."""
    return {"metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": [
                {"name": port_name.format(port=p), "port": p, "targetPort": 8080,
                 "protocol": "TCP"}
                for p in ports]}}


def create(env: CloudEnv, name: str, port_name: str = "http") -> None:
    """POST a 1-port (80) Service `name` in the bench namespace."""
    env.kube.request("POST", SERVICES.path(NAMESPACE), body=service(name, port_name=port_name))


def ingress(env: CloudEnv, name: str, field: str = "ip") -> str | None:
    """`field` (ip, hostname) of the Service's first ingress entry in the controller's cache."""
    svc = env.controller.cache.service(NAMESPACE, name)
    if svc is None or not svc.ingress:
        return None
    value: str | None = getattr(svc.ingress[0], field) or None
    return value


def rates3(text: str) -> tuple[float, float, float]:
    """`--rates read,write,operations` (gcp.rateLimits, azure.rateLimits)."""
    values = [float(x) for x in text.split(",")]
    if len(values) != 3:
        raise SystemExit("--rates: read,write,operations")
    return values[0], values[1], values[2]


def quiet_logs(provider_logger: str) -> None:
    """Only errors from the controller's events and the provider's logger in the figures."""
    logging.getLogger("lbctl.controller.events").setLevel(logging.ERROR)
    logging.getLogger(provider_logger).setLevel(logging.ERROR)
