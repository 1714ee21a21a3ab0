"""A reloaded `baremetal` section reaches the running provider: balancer instances that join the
config are programmed with the Services already served, instances that leave it are emptied of
this cluster's balancers and get nothing new, and a pool added by a reload serves a Service that
asks for an address in it. Wired as `lbctl run` wires it: a `ConfigHolder` over the file,
`config_changed` on every reload."""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from lbctl.balancer.daemon import DaemonThread, ServeOptions
from lbctl.controller.embedded import running_controller
from lbctl.controller.metrics import Metrics
from lbctl.controller.runner import ConfigHolder
from lbctl.sandbox.app import SandboxOptions, SandboxThread
from lbctl.sandbox.nodes import simulated
from tests.conftest import client_for, traffic_lock, wait_for

from .conftest import write_changed

pytestmark = pytest.mark.integration


@dataclass
class Reloading:
    core: client.CoreV1Api
    apps: client.AppsV1Api
    daemons: dict[str, DaemonThread]
    token: str
    token_file: Path
    path: Path
    holder: ConfigHolder

    def write(self, names: list[str], pools: str = "") -> None:
        """A new config file with these instances (and extra pools), then the reload the
        holder's poller would do (`lbctl run` polls; here it happens now)."""
        write_changed(self.path, _config(self.daemons, self.token_file, names, pools))
        assert self.holder.reload()


def _config(daemons: dict[str, DaemonThread], token_file: Path, names: list[str],
            pools: str = "") -> str:
    balancers = ", ".join(f'{{name: {n}, url: "{daemons[n].url}", tokenFile: "{token_file}"}}'
                          for n in names)
    return f"""
clusterName: reload
controller: {{nodeSyncDebounceSeconds: 0.2}}
baremetal:
  pools: [{{name: first, addresses: ["127.0.100.130-127.0.100.134"]}}{pools}]
  balancers: [{balancers}]
  healthCheck: {{intervalSeconds: 0.2, timeoutSeconds: 0.5, healthyThreshold: 1,
                unhealthyThreshold: 2}}
  statusPollSeconds: 0.2
"""



@pytest.fixture
def reloading(tmp_path: Path) -> Iterator[Reloading]:
    token = secrets.token_urlsafe(24)
    token_file = tmp_path / "token"
    token_file.write_text(token)
    with traffic_lock():
        box_thread = SandboxThread(SandboxOptions(nodes=simulated(3), kubeconfig=tmp_path / "kc",
                                                  traffic=True, bookmark_interval=0.5))
        box = box_thread.start()
        daemons = {name: DaemonThread(ServeOptions(api_listen="127.0.0.1:0",
                                                   token_file=token_file,
                                                   state_file=tmp_path / f"{name}.json"))
                   for name in ("lb-a", "lb-b")}
        for d in daemons.values():
            d.start()
        path = tmp_path / "config.yaml"
        path.write_text(_config(daemons, token_file, ["lb-a"]))
        holder = ConfigHolder(path, Metrics())
        api = client_for(box)
        try:
            with running_controller(tmp_path / "kc", holder, qps=500, burst=1000) as embedded:
                holder.on_change = embedded.controller.config_changed  # as `lbctl run` does
                yield Reloading(client.CoreV1Api(api), client.AppsV1Api(api), daemons, token,
                                token_file, path, holder)
        finally:
            api.close()
            for d in daemons.values():
                d.stop()
            box_thread.stop()


def _served(r: Reloading, daemon: str) -> dict[str, Any]:
    """Service name -> what `daemon` reports for its balancer."""
    req = urllib.request.Request(f"{r.daemons[daemon].url}/v1/balancers",
                                 headers={"Authorization": f"Bearer {r.token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return {b["balancer"]["owner"]["name"]: b for b in json.loads(resp.read())["balancers"]}


def _serve(r: Reloading, name: str, **spec: Any) -> str:
    r.apps.create_namespaced_deployment("default", {
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                     {"name": "c", "image": "nginx", "ports": [{"containerPort": 8080}]}]}}}})
    r.core.create_namespaced_service("default", {
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "selector": {"app": name},
                 "ports": [{"port": 8090, "targetPort": 8080}], **spec}})

    def address() -> str | None:
        status = r.core.read_namespaced_service(name, "default").status.load_balancer
        return status.ingress[0].ip if status and status.ingress else None

    ip: str = wait_for(address, 30, f"{name}'s address")
    return ip


def test_instances_joining_and_leaving_the_config_converge(reloading: Reloading) -> None:
    r = reloading
    _serve(r, "one")
    wait_for(lambda: "one" in _served(r, "lb-a"), 15, "lb-a to serve one")
    assert _served(r, "lb-b") == {}
    # lb-b joins: the Service already served is programmed there too, same revision
    r.write(["lb-a", "lb-b"])
    wait_for(lambda: "one" in _served(r, "lb-b"), 15, "lb-b, added by a reload, to serve one")
    assert (_served(r, "lb-b")["one"]["balancer"]["revision"]
            == _served(r, "lb-a")["one"]["balancer"]["revision"])
    # lb-a leaves: what it served is withdrawn (it must not go on serving addresses the pool
    # may hand out again), lb-b keeps serving, and a new Service goes to lb-b only
    r.write(["lb-b"])
    wait_for(lambda: _served(r, "lb-a") == {}, 15, "lb-a, removed by a reload, to be emptied")
    assert "one" in _served(r, "lb-b")
    _serve(r, "two")
    wait_for(lambda: "two" in _served(r, "lb-b"), 15, "lb-b to serve two")
    time.sleep(0.5)  # a few status polls: nothing may reach the instance that left
    assert _served(r, "lb-a") == {}


def test_a_pool_added_by_a_reload_serves_a_service_waiting_for_it(reloading: Reloading
                                                                   ) -> None:
    r = reloading
    r.core.create_namespaced_service("default", {
        "metadata": {"name": "later", "annotations": {"metallb.io/address-pool": "second"}},
        "spec": {"type": "LoadBalancer", "selector": {"app": "later"},
                 "ports": [{"port": 8091, "targetPort": 8080}]}})
    time.sleep(1.0)  # no pool "second" yet: no address
    assert not r.core.read_namespaced_service("later", "default").status.load_balancer.ingress
    r.write(["lb-a"], pools=', {name: second, addresses: ["127.0.100.140-127.0.100.141"]}')

    def address() -> str | None:
        status = r.core.read_namespaced_service("later", "default").status.load_balancer
        return status.ingress[0].ip if status and status.ingress else None

    assert wait_for(address, 30, "an address from the new pool") in ("127.0.100.140",
                                                                      "127.0.100.141")
