"""`lbctl demo`: the whole story on one machine, no cluster and no cloud.

An embedded Kubernetes API (the sandbox) with three simulated nodes on 127.0.10.1-3 whose pods
really serve and whose NodePorts really forward; the lbctl controller with the bare-metal
provider handing out addresses from a pool (127.0.100.0/24); then the seed's commands as a user
types them, and real HTTP through the nodes. Each step prints what `kubectl` would show.
"""

from __future__ import annotations

import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import click

from .config import parse_config
from .controller import Cache, Controller
from .events import BackgroundEvents
from .kube import ApiError, Kube
from .kube_writes import KubeEventWriter, KubeServiceWrites
from .metrics import Metrics
from .sandbox.app import SandboxOptions, SandboxThread
from .sandbox.nodes import simulated
from .sandbox.tables_core import external_ip, port_string  # kubectl's own printers

DEMO_CONFIG = """
clusterName: demo
provider: baremetal
controller: {nodeSyncDebounceSeconds: 0.2}
baremetal:
  pools:
  - name: demo
    addresses: ["127.0.100.10-127.0.100.50"]
"""
SEED_SERVICE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "myapp-service"},
    "spec": {"selector": {"app": "front-end"},
             "ports": [{"protocol": "TCP", "port": 80, "nodePort": 30008, "targetPort": 8080}]},
}
DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "k8s-demo", "labels": {"app": "k8s-demo"}},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "k8s-demo"}},
             "template": {"metadata": {"labels": {"app": "k8s-demo"}}, "spec": {"containers": [
                 {"name": "nginx", "image": "nginx", "ports": [{"containerPort": 8080}]}]}}},
}


def _say(cmd: str) -> None:
    click.secho(f"\n$ {cmd}", bold=True)


def _wait(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise click.ClickException("the demo timed out waiting; see the messages above")


def _services(kube: Kube) -> None:
    items = kube.request("GET", "/api/v1/namespaces/default/services")["items"]
    rows = [("NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)")]
    rows += [(s["metadata"]["name"], s["spec"]["type"], s["spec"].get("clusterIP") or "<none>",
              external_ip(s), port_string(s["spec"].get("ports")) or "<none>") for s in items]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        click.echo("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _curl(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310  (loopback only)
            text: str = resp.read().decode().strip()
            return text
    except OSError as exc:
        return f"error: {exc}"


def run_demo() -> None:
    with tempfile.TemporaryDirectory(prefix="lbctl-demo-") as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        thread = SandboxThread(SandboxOptions(nodes=simulated(3), kubeconfig=kubeconfig,
                                              traffic=True, traffic_log_level="WARNING"))
        box = thread.start()
        kube = Kube.connect(str(kubeconfig), qps=200, burst=400)
        config = parse_config(DEMO_CONFIG)
        events = BackgroundEvents(KubeEventWriter(kube))
        from providers.registry import load  # noqa: PLC0415

        def make(cache: Cache) -> Any:
            return load("baremetal")(config.provider_settings(), config.cluster_name, cache)

        controller = Controller(kube, lambda: config, make, KubeServiceWrites(kube), events,
                                Metrics())
        try:
            click.echo(f"sandbox ready at {box.url}: Kubernetes v1.33, nodes sandbox-node-1..3 "
                       "on 127.0.10.1-3")
            controller.start()
            controller.start_leading()
            click.echo("lbctl controller running: provider baremetal, pool 127.0.100.10-50")
            _story(kube)
        finally:
            controller.stop()
            events.close()
            kube.close()
            thread.stop()


def _story(kube: Kube) -> None:
    ns = "/api/v1/namespaces/default"
    _say("kubectl create -f service-definition.yaml      # the seed's file: no type")
    try:
        kube.request("POST", f"{ns}/services", body=SEED_SERVICE)
    except ApiError as exc:
        click.echo(f"The {exc.body.get('message', exc)}")
    _say("kubectl create -f service-definition.yaml      # with type: NodePort")
    kube.request("POST", f"{ns}/services", body={
        **SEED_SERVICE, "spec": {**SEED_SERVICE["spec"], "type": "NodePort"}})
    click.echo("service/myapp-service created")
    _say("kubectl create deployment k8s-demo --image=nginx --replicas=3 --port=8080")
    kube.request("POST", "/apis/apps/v1/namespaces/default/deployments", body=DEPLOYMENT)
    click.echo("deployment.apps/k8s-demo created")
    _say("kubectl expose deployments k8s-demo --port 8080 --type LoadBalancer")
    kube.request("POST", f"{ns}/services", body={
        "metadata": {"name": "k8s-demo", "labels": {"app": "k8s-demo"}},
        "spec": {"type": "LoadBalancer", "selector": {"app": "k8s-demo"},
                 "ports": [{"port": 8080, "targetPort": 8080, "protocol": "TCP"}]}})
    click.echo("service/k8s-demo exposed")

    def ready() -> dict[str, Any] | None:
        svc = kube.request("GET", f"{ns}/services/k8s-demo")
        ingress = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress")
        slices = kube.request("GET", "/apis/discovery.k8s.io/v1/namespaces/default/"
                              "endpointslices", query={
                                  "labelSelector": "kubernetes.io/service-name=k8s-demo"})
        ready_eps = [e for s in slices["items"] for e in s.get("endpoints") or []
                     if (e.get("conditions") or {}).get("ready")]
        return svc if ingress and len(ready_eps) == 3 else None

    svc = _wait(ready)
    _say("kubectl get services")
    _services(kube)
    node_port = svc["spec"]["ports"][0]["nodePort"]
    ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
    click.echo(f"\nEXTERNAL-IP {ip} came from the bare-metal pool; the software balancer that "
               "answers on it arrives with the next release. Meanwhile, real traffic through "
               "each node's NodePort:")
    seen: Counter[str] = Counter()
    for i in range(12):
        node = f"127.0.10.{i % 3 + 1}"
        seen[_curl(f"http://{node}:{node_port}/")] += 1
    for answer, count in sorted(seen.items()):
        click.echo(f"  {count:2d} x {answer}")
    _say("kubectl annotate node sandbox-node-1 sandbox.lbctl.io/stopped=true   # kill a node")
    kube.request("PATCH", "/api/v1/nodes/sandbox-node-1", content_type=(
        "application/merge-patch+json"), body={"metadata": {"annotations": {
            "sandbox.lbctl.io/stopped": "true"}}})
    time.sleep(1.0)
    click.echo(f"  127.0.10.1:{node_port} -> {_curl(f'http://127.0.10.1:{node_port}/')}")
    click.echo(f"  127.0.10.2:{node_port} -> {_curl(f'http://127.0.10.2:{node_port}/')}")
    _say("kubectl delete service k8s-demo")
    kube.request("DELETE", f"{ns}/services/k8s-demo")
    _wait(lambda: not any(s["metadata"]["name"] == "k8s-demo" for s in kube.request(
        "GET", f"{ns}/services")["items"]))
    click.echo("service \"k8s-demo\" deleted (finalizer released after the address went back "
               "to the pool)")
