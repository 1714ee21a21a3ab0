"""`lbctl demo`: the story on one machine, no cluster and no cloud.

Today it starts the sandbox API with simulated nodes and walks through the seed's Service
examples with the official client, printing what `kubectl get services` shows. The controller and
the software balancer join this story as they land; the demo grows with them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from .sandbox.app import SandboxOptions, SandboxThread
from .sandbox.nodes import simulated

SEED_SERVICE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "myapp-service"},
    "spec": {"selector": {"app": "front-end"},
             "ports": [{"protocol": "TCP", "port": 80, "nodePort": 30008, "targetPort": 8080}]},
}


def _ports(svc: client.V1Service) -> str:
    parts = []
    for p in svc.spec.ports or []:
        text = f"{p.port}:{p.node_port}" if p.node_port else f"{p.port}"
        parts.append(f"{text}/{p.protocol}")
    return ",".join(parts) or "<none>"


def _external(svc: client.V1Service) -> str:
    if svc.spec.type == "ExternalName":
        return str(svc.spec.external_name)
    ingress = (svc.status.load_balancer.ingress if svc.status and svc.status.load_balancer
               else None) or []
    if ingress:
        return ",".join(i.ip or i.hostname for i in ingress)
    return "<pending>" if svc.spec.type == "LoadBalancer" else "<none>"


def print_services(core: client.CoreV1Api, namespace: str) -> None:
    rows = [("NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)")]
    for svc in core.list_namespaced_service(namespace).items:
        rows.append((svc.metadata.name, svc.spec.type, svc.spec.cluster_ip or "<none>",
                     _external(svc), _ports(svc)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def run_demo() -> None:
    with tempfile.TemporaryDirectory(prefix="lbctl-demo-") as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        thread = SandboxThread(SandboxOptions(nodes=simulated(3), kubeconfig=kubeconfig))
        box = thread.start()
        try:
            click.echo(f"sandbox ready at {box.url} with 3 simulated nodes "
                       "(127.0.10.1-3)")
            api = config.new_client_from_config(config_file=str(kubeconfig))
            core = client.CoreV1Api(api)
            _story(core)
            api.close()
        finally:
            thread.stop()


def _story(core: client.CoreV1Api) -> None:
    click.echo("\n$ kubectl create -f service-definition.yaml   # the seed's file, no type")
    try:
        core.create_namespaced_service("default", SEED_SERVICE)
    except ApiException as exc:
        click.echo("Error from server (Invalid): " + json.loads(exc.body)["message"])
    click.echo("\n# with `type: NodePort` it is accepted, nodePort 30008 honoured:")
    node_port = json.loads(json.dumps(SEED_SERVICE))
    node_port["spec"]["type"] = "NodePort"
    core.create_namespaced_service("default", node_port)
    click.echo("service/myapp-service created")
    click.echo("\n$ kubectl create service clusterip demo --tcp=80:80")
    core.create_namespaced_service("default", {
        "metadata": {"name": "demo", "labels": {"app": "demo"}},
        "spec": {"type": "ClusterIP", "selector": {"app": "demo"},
                 "ports": [{"name": "80-80", "port": 80, "targetPort": 80,
                            "protocol": "TCP"}]}})
    click.echo("service/demo created")
    click.echo("\n$ kubectl expose deployments k8s-demo --port 8080 --type LoadBalancer")
    core.create_namespaced_service("default", {
        "metadata": {"name": "k8s-demo", "labels": {"app": "k8s-demo"}},
        "spec": {"type": "LoadBalancer", "selector": {"app": "k8s-demo"},
                 "ports": [{"port": 8080, "targetPort": 8080}]}})
    click.echo("service/k8s-demo exposed")
    click.echo("\n$ kubectl get services")
    print_services(core, "default")
    click.echo("\n(k8s-demo stays <pending> until the lbctl controller runs; it arrives with "
               "the next releases)")
