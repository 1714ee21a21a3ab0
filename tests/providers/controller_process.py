"""The crash tests' harness, shared by the providers: `lbctl run` as a subprocess (started armed
with a provider's crash variable, its returncode, stop, log tail, finished syncs), and the
Service the scenarios drive through their phases (create, update, nodes, delete)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from lbctl.sandbox.app import Sandbox
from tests.providers.convergence import NAMESPACE, read_service

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def lbctl_command() -> list[str]:
    script = ROOT / ".venv" / "bin" / "lbctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lbctl"]


class ControllerProcess:
    """`lbctl run` with leader election off; its log goes to a file per start. `crash_env` is
    the provider's crash variable: a start armed with a call sets it to that call."""

    def __init__(self, box: Sandbox, config: Path, logs: Path, crash_env: str) -> None:
        self.box, self.config, self.logs = box, config, logs
        self.crash_env = crash_env
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0
        self.crash: str | None = None

    def start(self, crash: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != self.crash_env}
        if crash:
            env[self.crash_env] = crash
        self.crash = crash
        self.starts += 1
        self.port = free_port()
        log = (self.logs / f"controller-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [*lbctl_command(), "run", "--kubeconfig", str(self.box.options.kubeconfig),
             "--config", str(self.config), "--leader-elect=false",
             "--metrics-bind", f"127.0.0.1:{self.port}", "--log-format", "text"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        log.close()

    def returncode(self) -> int | None:
        assert self.proc is not None
        return self.proc.poll()

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def done_syncs(self) -> float:
        """lbctl_syncs_total{outcome="done"} of the running process (0 until it serves)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                        timeout=2) as resp:
                text = resp.read().decode()
        except OSError:
            return 0.0
        for line in text.splitlines():
            if line.startswith('lbctl_syncs_total{outcome="done"}'):
                return float(line.split()[-1])
        return 0.0

    def wait_for_sync(self, timeout: float = 30.0) -> None:
        """Until the running process has finished a sync (fails after `timeout`)."""
        deadline = time.monotonic() + timeout
        while self.done_syncs() < 1:
            assert time.monotonic() < deadline, f"no sync after the restart:\n{self.log_tail()}"
            time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        path = self.logs / f"controller-{self.starts}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(30) == 0, self.log_tail()
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise


# -- the Service a scenario drives -----------------------------------------------------------
def apply_phase(core: client.CoreV1Api, name: str, namespace: str, phase: str, *,
                new_ranges: list[str], affinity: bool = True, node: str = "",
                exclude_label: str = "") -> str:
    """Makes the phase's change: `create` the Service (answers its uid), `update` it (a nodePort
    change, a second port, `new_ranges`, ClientIP affinity when `affinity`), `nodes` (`node`
    labelled with `exclude_label`), `delete` it. Answers "" but for the create."""
    if phase == "create":
        core.create_namespaced_service(namespace, {
            "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "selector": {"app": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
        svc = read_service(core, name, namespace)
        assert svc is not None
        uid: str = svc.metadata.uid
        return uid
    if phase == "update":
        svc = read_service(core, name, namespace)
        assert svc is not None
        used = {p.node_port for s in core.list_service_for_all_namespaces().items
                for p in (s.spec.ports or []) if p.node_port}
        new_port = next(p for p in range(32100, 32768) if p not in used)
        svc.spec.ports = [
            client.V1ServicePort(name="http", port=80, target_port=8080, node_port=new_port),
            client.V1ServicePort(name="https", port=443, target_port=8443)]
        svc.spec.load_balancer_source_ranges = new_ranges
        if affinity:
            svc.spec.session_affinity = "ClientIP"
        core.replace_namespaced_service(name, namespace, svc)
    elif phase == "nodes":
        core.patch_node(node, {"metadata": {"labels": {exclude_label: "true"}}})
    else:
        core.delete_namespaced_service(name, namespace)
    return ""


EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
CRASH_RANGES = ["203.0.113.0/24"]
"""The source ranges a crash scenario's update sets."""


class PhasedService:
    """What the gcp and azure crash scenarios' Service does the same way (a mixin for their
    dataclasses, which hold `core`, `world`, `name` and `uid`): read it, make a phase's change
    (the `nodes` phase excludes the world's first node), and say whether a delete is done."""

    core: client.CoreV1Api
    world: Any
    name: str
    uid: str

    def read(self) -> client.V1Service | None:
        return read_service(self.core, self.name, NAMESPACE)

    def apply(self, phase: str) -> None:
        self.uid = apply_phase(self.core, self.name, NAMESPACE, phase, new_ranges=CRASH_RANGES,
                               node=self.world.nodes[0].name,
                               exclude_label=EXCLUDE_LABEL) or self.uid

    def excluded(self, phase: str) -> tuple[str, ...]:
        """The nodes left out from the `nodes` phase on."""
        return (self.world.nodes[0].name,) if phase in ("nodes", "delete") else ()

    def still_there(self) -> list[str]:
        """The delete's problem while the Service is not gone yet."""
        svc = self.read()
        return [] if svc is None else [f"Service still there (finalizers "
                                       f"{svc.metadata.finalizers})"]
