"""The demo's story: the seed's commands, traffic through the VIP, a node stopped under load.

Kept apart from `demo` (which starts and stops the pieces) so the steps read like the session a
user would type. Every step prints the command and what kubectl would show; the traffic steps
count answers by pod and keep every failed request with its time, so the verdict ("no request
failed after the stopped node was detected") is checked, not claimed.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from typing import Any

import click

from ..kube import ApiError, Kube
from ..sandbox.tables.core import external_ip, port_string  # kubectl's own printers

NS = "/api/v1/namespaces/default"
SEED_SERVICE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "myapp-service"},
    "spec": {"selector": {"app": "front-end"},
             "ports": [{"protocol": "TCP", "port": 80, "nodePort": 30008, "targetPort": 8080}]},
}
STOPPED = "sandbox.lbctl.io/stopped"


def deployment(name: str, port: int = 8080) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                         {"name": "nginx", "image": "nginx",
                          "ports": [{"containerPort": port}]}]}}}}


def say(cmd: str) -> None:
    click.secho(f"\n$ {cmd}", bold=True)


def wait_for(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise click.ClickException(f"the demo timed out waiting for {what}")


def _get(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback only)
        text: str = resp.read().decode().strip()
        return text


def print_table(rows: Sequence[Sequence[str]], indent: str = "") -> None:
    """Columns padded to their widest cell, three spaces apart, as kubectl prints them."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(indent + "   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                   .rstrip())


def print_services(kube: Kube) -> list[dict[str, Any]]:
    """`kubectl get services` in the default namespace; returns the Services."""
    items: list[dict[str, Any]] = kube.request("GET", f"{NS}/services")["items"]
    rows = [("NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)")]
    rows += [(s["metadata"]["name"], s["spec"]["type"],
              s["spec"].get("clusterIP") or "<none>", external_ip(s),
              port_string(s["spec"].get("ports")) or "<none>") for s in items]
    print_table(rows)
    return items


class Story:
    def __init__(self, kube: Kube, balancer_url: str, balancer_token: str) -> None:
        self.kube = kube
        self.balancer_url = balancer_url
        self.balancer_token = balancer_token
        self.pods_seen: Counter[str] = Counter()
        self.failures_after_detection: list[str] = []
        self.vip = ""

    def run(self) -> None:
        self._seed()
        self._deploy()
        svc = wait_for(self._provisioned, "the balancer to serve the frontend's VIP")
        say("kubectl get services")
        self._services()
        self.vip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        ip_mode = svc["status"]["loadBalancer"]["ingress"][0].get("ipMode")
        click.echo(f"\nEXTERNAL-IP {self.vip} came from the pool (ipMode {ip_mode}: the "
                   "balancer proxies) and the balancer daemon answers on it.")
        say(f"for i in $(seq 30); do curl -s http://{self.vip}:8080/; done | sort | uniq -c")
        for _ in range(30):
            self.pods_seen[_get(f"http://{self.vip}:8080/")] += 1
        for answer, count in sorted(self.pods_seen.items()):
            click.echo(f"  {count:2d} {answer}")
        self._stop_node()

    # -- steps ------------------------------------------------------------------------------
    def _seed(self) -> None:
        say("kubectl create -f service-definition.yaml      # the seed's file: no type")
        try:
            self.kube.request("POST", f"{NS}/services", body=SEED_SERVICE)
        except ApiError as exc:
            click.echo(f"The {exc.body.get('message', exc)}")
        say("kubectl create -f service-definition.yaml      # with type: NodePort")
        self.kube.request("POST", f"{NS}/services", body={
            **SEED_SERVICE, "spec": {**SEED_SERVICE["spec"], "type": "NodePort"}})
        click.echo("service/myapp-service created")

    def _deploy(self) -> None:
        for name in ("backend", "frontend"):
            say(f"kubectl create deployment {name} --image=nginx --replicas=3 --port=8080")
            self.kube.request("POST", "/apis/apps/v1/namespaces/default/deployments",
                              body=deployment(name))
            click.echo(f"deployment.apps/{name} created")
        say("kubectl expose deployment backend --port 8080")
        self._expose("backend", "ClusterIP")
        say("kubectl expose deployment frontend --port 8080 --type LoadBalancer")
        self._expose("frontend", "LoadBalancer")

    def _expose(self, name: str, kind: str) -> None:
        self.kube.request("POST", f"{NS}/services", body={
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"type": kind, "selector": {"app": name},
                     "ports": [{"port": 8080, "targetPort": 8080, "protocol": "TCP"}]}})
        click.echo(f"service/{name} exposed")

    def _provisioned(self) -> dict[str, Any] | None:
        svc = self.kube.request("GET", f"{NS}/services/frontend")
        ingress = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress")
        if not ingress or not self._ready_endpoints("frontend"):
            return None
        status = self._balancer_status()
        return svc if status and status.get("healthyTargets") == 3 else None

    def _ready_endpoints(self, service: str) -> list[dict[str, Any]]:
        slices = self.kube.request(
            "GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            query={"labelSelector": f"kubernetes.io/service-name={service}"})
        ready = [e for s in slices["items"] for e in s.get("endpoints") or []
                 if (e.get("conditions") or {}).get("ready")]
        return ready if len(ready) == 3 else []

    def _balancer_status(self) -> dict[str, Any] | None:
        req = urllib.request.Request(  # noqa: S310 (our own daemon on loopback)
            f"{self.balancer_url}/v1/balancers?cluster=demo",
            headers={"Authorization": f"Bearer {self.balancer_token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            items = json.loads(resp.read())["balancers"]
        return items[0]["status"] if items else None

    def _services(self) -> None:
        print_services(self.kube)

    def _stop_node(self) -> None:
        """Traffic runs while sandbox-node-1 stops; detection = the balancer marks it down."""
        results: list[tuple[float, str, bool]] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():  # each request on a new connection, by start time
                started = time.monotonic()
                try:
                    results.append((started, _get(f"http://{self.vip}:8080/"), True))
                except OSError as exc:
                    results.append((started, f"error: {exc}", False))
                time.sleep(0.01)

        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        time.sleep(0.5)
        say(f"kubectl annotate node sandbox-node-1 {STOPPED}=true   # pull node 1's plug")
        self.kube.request("PATCH", "/api/v1/nodes/sandbox-node-1",
                          content_type="application/merge-patch+json",
                          body={"metadata": {"annotations": {STOPPED: "true"}}})
        stopped_at = time.monotonic()

        def detected() -> bool:
            status = self._balancer_status() or {}
            return any(t["name"] == "sandbox-node-1" and not t["up"]
                       for li in status.get("listeners", []) for t in li["targets"])

        wait_for(detected, "the balancer to detect the stopped node", timeout=20)
        ejected_at = time.monotonic()

        def endpoints_moved() -> bool:
            # The other nodes forward to every ready pod (Cluster policy) until EndpointSlices
            # drop node 1's pods: kube-proxy's lag, which no balancer can hide.
            slices = self.kube.request(
                "GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                query={"labelSelector": "kubernetes.io/service-name=frontend"})
            return not any(e.get("nodeName") == "sandbox-node-1"
                           and (e.get("conditions") or {}).get("ready")
                           for sl in slices["items"] for e in sl.get("endpoints") or [])

        wait_for(endpoints_moved, "the endpoints to drop the stopped node's pods", timeout=20)
        detected_at = time.monotonic()
        time.sleep(3.0)
        stop.set()
        worker.join(10)
        before = [r for r in results if r[0] < detected_at and not r[2]]
        self.failures_after_detection = [r[1] for r in results
                                         if r[0] >= detected_at and not r[2]]
        after = Counter(r[1] for r in results if r[0] >= detected_at and r[2])
        click.echo(f"  balancer marked sandbox-node-1 down {ejected_at - stopped_at:.2f} s "
                   f"after the stop, endpoints dropped its pods after "
                   f"{detected_at - stopped_at:.2f} s ({len(before)} request(s) sent before "
                   "both failed)")
        click.echo(f"  {len(results)} requests in all; of those sent after detection "
                   f"{sum(after.values())} answered, {len(self.failures_after_detection)} "
                   "failed:")
        for answer, count in sorted(after.items()):
            click.echo(f"  {count:4d} {answer}")
        for failure in self.failures_after_detection[:5]:
            click.echo(f"  FAILED: {failure}")
        say("kubectl get service frontend -o jsonpath='{.status.conditions}'   # abridged")
        degraded = wait_for(self._degraded, "the Service to report LoadBalancerDegraded")
        click.echo(f"  LoadBalancerDegraded=True ({degraded['reason']}): {degraded['message']}")

    def _degraded(self) -> dict[str, Any] | None:
        svc = self.kube.request("GET", f"{NS}/services/frontend")
        for cond in (svc.get("status") or {}).get("conditions") or []:
            if cond["type"] == "LoadBalancerDegraded" and cond["status"] == "True":
                return dict(cond)
        return None

    def cleanup(self) -> None:
        say("kubectl delete service frontend")
        self.kube.request("DELETE", f"{NS}/services/frontend")
        wait_for(lambda: not any(s["metadata"]["name"] == "frontend" for s in self.kube.request(
            "GET", f"{NS}/services")["items"]), "the Service to go")
        left = self._balancer_status()
        click.echo('service "frontend" deleted (finalizer released after the balancer was '
                   f"removed from the daemon{'' if left is None else ': NOT removed'} and the "
                   "address went back to the pool)")

    def verdict(self) -> str | None:
        pods = {answer for answer in self.pods_seen if answer.startswith("pod ")}
        if len(pods) < 2:
            return f"only {len(pods)} pod(s) answered through the VIP"
        if self.failures_after_detection:
            return (f"{len(self.failures_after_detection)} request(s) failed after the "
                    "balancer detected the stopped node")
        return None


def wait_for_ctrl_c(hints: str) -> None:
    """--keep: print `hints` and wait for SIGINT or SIGTERM."""
    click.echo(hints)
    done = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    finally:
        signal.signal(signal.SIGINT, previous)
