"""`kubectl get` across kubectl 1.20-1.35: discovery, the Table columns kube's printers give,
and the other output formats.

Objects are made through the official Python client, so what kubectl prints is compared with
what the API holds (cluster IPs are allocated by the sandbox).
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from typing import Any

import pytest
import yaml
from kubernetes import client

from lbctl.sandbox.app import Sandbox
from tests.conftest import svc
from tests.sandbox.kubectl.runner import Kubectl, rows_by_name, table

pytestmark = pytest.mark.kubectl

AGE = re.compile(r"^\d+s$")
SERVICE_COLUMNS = ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]


def _create(core: client.CoreV1Api, ns: str, body: dict[str, Any]) -> Any:
    return core.create_namespaced_service(ns, body)


def test_discovery_short_names_and_api_resources(kubectl: Kubectl, core: client.CoreV1Api,
                                                 ns: str) -> None:
    _create(core, ns, svc("web"))
    resources = table(kubectl.ok("api-resources"))
    header = resources[0]
    assert header == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert ["services", "svc", "v1", "true", "Service"] in resources
    assert ["deployments", "deploy", "apps/v1", "true", "Deployment"] in resources
    assert ["leases", "coordination.k8s.io/v1", "true", "Lease"] in resources  # no short name
    names = kubectl.ok("get", "svc", "-o", "name")
    assert names.split() == ["service/web"]


def test_get_services_columns(kubectl: Kubectl, core: client.CoreV1Api, ns: str) -> None:
    plain = _create(core, ns, svc("plain"))
    node_port = _create(core, ns, svc("np", type="NodePort"))
    pending = _create(core, ns, svc("lb-pending", type="LoadBalancer", ports=[
        {"name": "https", "port": 443, "protocol": "TCP"},
        {"name": "dns", "port": 53, "protocol": "UDP"}]))
    ready = _create(core, ns, svc("lb-ready", type="LoadBalancer"))
    core.patch_namespaced_service_status("lb-ready", ns, {"status": {"loadBalancer": {
        "ingress": [{"ip": "203.0.113.10"}, {"hostname": "lb.example.com"}]}}})
    _create(core, ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
                       "spec": {"type": "ExternalName", "externalName": "example.com"}})

    header, rows = rows_by_name(kubectl.ok("get", "services"))
    assert header == SERVICE_COLUMNS
    assert rows["plain"][:5] == ["plain", "ClusterIP", plain.spec.cluster_ip, "<none>",
                                 "80/TCP"]
    np_port = node_port.spec.ports[0].node_port
    assert rows["np"][:5] == ["np", "NodePort", node_port.spec.cluster_ip, "<none>",
                              f"80:{np_port}/TCP"]
    ports = pending.spec.ports
    assert rows["lb-pending"][:5] == [
        "lb-pending", "LoadBalancer", pending.spec.cluster_ip, "<pending>",
        f"443:{ports[0].node_port}/TCP,53:{ports[1].node_port}/UDP"]
    assert rows["lb-ready"][3] == "203.0.113.10,lb.example.com"
    assert rows["lb-ready"][2] == ready.spec.cluster_ip
    assert rows["ext"][:5] == ["ext", "ExternalName", "<none>", "example.com", "<none>"]
    assert all(AGE.match(row[5]) for row in rows.values())

    header, rows = rows_by_name(kubectl.ok("get", "services", "-o", "wide"))
    assert header == [*SERVICE_COLUMNS, "SELECTOR"]
    assert rows["plain"][6] == "app=plain"
    assert rows["ext"][6] == "<none>"


def test_output_formats(kubectl: Kubectl, core: client.CoreV1Api, ns: str) -> None:
    created = _create(core, ns, svc("web", ports=[{"port": 80, "targetPort": 8080}]))
    as_json = json.loads(kubectl.ok("get", "svc", "web", "-o", "json"))
    assert (as_json["kind"], as_json["metadata"]["uid"]) == ("Service", created.metadata.uid)
    assert as_json["spec"]["clusterIP"] == created.spec.cluster_ip
    listed = json.loads(kubectl.ok("get", "svc", "-o", "json"))
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == ["web"]
    as_yaml = yaml.safe_load(kubectl.ok("get", "svc", "web", "-o", "yaml"))
    assert as_yaml["spec"]["ports"][0]["targetPort"] == 8080
    assert kubectl.ok("get", "svc", "web", "-o", "name").strip() == "service/web"
    jsonpath = kubectl.ok("get", "svc", "web", "-o", "jsonpath={.spec.ports[0].port}")
    assert jsonpath == "80"
    labels = kubectl.ok("get", "svc", "--show-labels")
    assert table(labels)[0][-1] == "LABELS"  # kubectl adds it from the rows' metadata
    missing = kubectl.fails("get", "svc", "nope")
    assert 'services "nope" not found' in missing


def test_get_nodes(kubectl: Kubectl) -> None:
    header, rows = rows_by_name(kubectl.ok("get", "nodes"))
    assert header == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [r[:3] + r[4:] for r in rows.values()] == [
        [f"sandbox-node-{k}", "Ready", "<none>", "v1.33.0"] for k in (1, 2, 3)]
    header, rows = rows_by_name(kubectl.ok("get", "nodes", "-o", "wide"))
    assert header[5:7] == ["INTERNAL-IP", "EXTERNAL-IP"]
    assert rows["sandbox-node-2"][5:7] == ["127.0.10.2", "<none>"]


def test_get_events(kubectl: Kubectl, core: client.CoreV1Api, ns: str) -> None:
    target = _create(core, ns, svc("web"))
    core.create_namespaced_event(ns, {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1"},
        "involvedObject": {"kind": "Service", "namespace": ns, "name": "web",
                           "uid": target.metadata.uid, "apiVersion": "v1"},
        "reason": "EnsuringLoadBalancer", "message": "Ensuring load balancer", "type": "Normal",
        "source": {"component": "lbctl"}, "count": 2,
        "firstTimestamp": target.metadata.creation_timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastTimestamp": target.metadata.creation_timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")})
    rows = table(kubectl.ok("get", "events"))  # the server's columns, whatever the kubectl
    assert rows[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert rows[1][1:] == ["Normal", "EnsuringLoadBalancer", "service/web",
                           "Ensuring load balancer"]
    assert AGE.match(rows[1][0])
    wide = table(kubectl.ok("get", "events", "-o", "wide"))
    assert wide[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE",
                       "FIRST SEEN", "COUNT", "NAME"]


def _watch_sends_tables(box: Sandbox, ns: str) -> bool:
    req = urllib.request.Request(
        f"{box.url}/api/v1/namespaces/{ns}/services?watch=true&timeoutSeconds=1",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        first = json.loads(resp.readline())
    return bool(first["object"]["kind"] == "Table")


def test_watch_events_are_tables_when_asked(core: client.CoreV1Api, ns: str,
                                           sandbox: Sandbox) -> None:
    """What `kubectl get -w` asks for (was a runtime xfail guard)."""
    _create(core, ns, svc("first"))
    assert _watch_sends_tables(sandbox, ns)


def test_get_watch_prints_full_rows(newest_kubectl: Kubectl, core: client.CoreV1Api, ns: str,
                                    sandbox: Sandbox) -> None:
    _create(core, ns, svc("first"))
    kubectl = newest_kubectl
    argv = [str(kubectl.binary), "--kubeconfig", str(kubectl.kubeconfig), "--cache-dir",
            str(kubectl.cache_dir), "-n", ns, "get", "services", "--watch"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={"HOME": str(kubectl.home), "PATH": "/usr/bin:/bin"}) as proc:
        try:
            assert proc.stdout is not None
            header = proc.stdout.readline().split()
            assert header == SERVICE_COLUMNS
            assert proc.stdout.readline().split()[:2] == ["first", "ClusterIP"]
            added = _create(core, ns, svc("second", type="NodePort"))
            row = proc.stdout.readline().split()
            port = added.spec.ports[0].node_port
            assert row[:5] == ["second", "NodePort", added.spec.cluster_ip, "<none>",
                               f"80:{port}/TCP"]
        finally:
            proc.kill()


def test_get_namespaces_show_labels(kubectl: Kubectl, core: client.CoreV1Api, ns: str) -> None:
    core.patch_namespace(ns, {"metadata": {"labels": {"foo": "bar"}}})
    header, rows = rows_by_name(kubectl.ok("get", "ns", "--show-labels"))
    assert header == ["NAME", "STATUS", "AGE", "LABELS"]
    assert rows[ns][-1] == f"foo=bar,kubernetes.io/metadata.name={ns}"
    assert rows["default"][-1] == "kubernetes.io/metadata.name=default"
    _, selected = rows_by_name(kubectl.ok("get", "ns", "-l", "foo=bar"))
    assert list(selected) == [ns]
