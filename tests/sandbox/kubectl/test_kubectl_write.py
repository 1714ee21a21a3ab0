"""Writing with kubectl 1.20-1.35: `create -f` with default validation (protobuf OpenAPI v2 for
1.20, OpenAPI v3 + server-side field validation for >= 1.27), `apply` twice, `patch`, `delete`,
the `create service` subcommands and `describe service`.

The seed manifest is the blog post's Service: nodePort 30008 without a type, which a real
cluster refuses with exactly the message checked here, and accepts as `type: NodePort`.
"""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from lbctl.sandbox.openapi.proto import int64, message, string
from tests.conftest import Admin
from tests.sandbox.kubectl.runner import Kubectl, rows_by_name

pytestmark = pytest.mark.kubectl

SEED = """\
apiVersion: v1
kind: Service
metadata:
  name: myapp-service
spec:
  selector:
    app: front-end
  ports:
    - protocol: TCP
      port: 80
      nodePort: 30008
      targetPort: 8080
"""
SEED_REFUSED = ('The Service "myapp-service" is invalid: spec.ports[0].nodePort: Forbidden: '
                "may not be used when `type` is 'ClusterIP'")
UNKNOWN_FIELD = """\
apiVersion: v1
kind: Service
metadata:
  name: typo
spec:
  selectr:
    app: web
  ports:
  - port: 80
"""


def test_seed_is_refused_like_a_real_cluster_then_accepted_as_nodeport(kubectl: Kubectl) -> None:
    refused = kubectl.fails("create", "-f", "-", stdin=SEED)
    assert refused.strip() == SEED_REFUSED
    node_port = SEED.replace("spec:\n", "spec:\n  type: NodePort\n")
    try:
        assert kubectl.ok("create", "-f", "-", stdin=node_port).strip() == (
            "service/myapp-service created")
        _, rows = rows_by_name(kubectl.ok("get", "svc"))
        assert rows["myapp-service"][1] == "NodePort"
        assert rows["myapp-service"][4] == "80:30008/TCP"
        again = kubectl.fails("create", "-f", "-", stdin=node_port)
        assert 'services "myapp-service" already exists' in again
    finally:  # nodePort 30008 is one per cluster: free it for the next kubectl version
        kubectl.run("delete", "svc", "myapp-service")


def test_default_validation_refuses_unknown_fields(kubectl: Kubectl) -> None:
    refused = kubectl.fails("create", "-f", "-", stdin=UNKNOWN_FIELD)
    if kubectl.minor < 27:  # client-side, against the protobuf /openapi/v2
        assert ('ValidationError(Service.spec): unknown field "selectr" in '
                "io.k8s.api.core.v1.ServiceSpec") in refused
    else:  # /openapi/v3 says the server validates: fieldValidation=Strict
        assert ('Service in version "v1" cannot be handled as a Service: strict decoding '
                'error: unknown field "spec.selectr"') in refused
    assert "failed to download openapi" not in refused
    skipped = kubectl.ok("create", "-f", "-", "--validate=false", stdin=UNKNOWN_FIELD)
    assert skipped.strip() == "service/typo created"


def test_apply_twice_is_unchanged(kubectl: Kubectl) -> None:
    manifest = SEED.replace("myapp-service", "applied").replace("      nodePort: 30008\n", "")
    assert kubectl.ok("apply", "-f", "-", stdin=manifest).strip() == "service/applied created"
    assert kubectl.ok("apply", "-f", "-", stdin=manifest).strip() == "service/applied unchanged"
    changed = manifest.replace("targetPort: 8080", "targetPort: 9090")
    done = kubectl.run("apply", "-f", "-", stdin=changed)
    assert done.returncode == 0 and done.stdout.strip() == "service/applied configured"
    assert "warning" not in done.stderr.lower()  # the patch was computed from our OpenAPI
    port = kubectl.ok("get", "svc", "applied", "-o", "jsonpath={.spec.ports[0].targetPort}")
    assert port == "9090"
    last = json.loads(kubectl.ok("get", "svc", "applied", "-o", "jsonpath={.metadata."
                                 "annotations.kubectl\\.kubernetes\\.io/last-applied-"
                                 "configuration}"))
    assert last["spec"]["ports"][0]["targetPort"] == 9090


def test_patch_and_delete(kubectl: Kubectl, core: client.CoreV1Api) -> None:
    kubectl.ok("create", "-f", "-", stdin=SEED.replace("myapp-service", "web").replace(
        "      nodePort: 30008\n", ""))
    strategic = kubectl.ok("patch", "svc", "web", "-p",
                           '{"spec":{"ports":[{"port":80,"targetPort":9090}]}}')
    assert strategic.strip() == "service/web patched"
    merge = kubectl.ok("patch", "svc", "web", "--type=merge", "-p",
                       '{"metadata":{"labels":{"tier":"front"}}}')
    assert merge.strip() == "service/web patched"
    json_patch = kubectl.ok("patch", "svc", "web", "--type=json", "-p",
                            '[{"op":"replace","path":"/spec/sessionAffinity","value":"ClientIP"}]')
    assert json_patch.strip() == "service/web patched"
    stored = core.read_namespaced_service("web", kubectl.namespace)
    assert stored.spec.ports[0].target_port == 9090
    assert stored.metadata.labels == {"tier": "front"}
    assert stored.spec.session_affinity == "ClientIP"
    deleted = 'service "web" deleted'
    if kubectl.minor >= 35:  # kubectl 1.35 names the namespace
        deleted += f" from {kubectl.namespace} namespace"
    assert kubectl.ok("delete", "svc", "web").strip() == deleted
    assert 'services "web" not found' in kubectl.fails("get", "svc", "web")


def _protobuf_service(name: str) -> bytes:
    """A minimal Service the way client-go >= 1.32 sends it (k8s protobuf envelope)."""
    port = message(1, int64(3, 80) + message(4, int64(2, 80)))
    service = message(1, string(1, name)) + message(2, port + string(4, "ClusterIP"))
    return b"k8s\x00" + message(1, string(1, "v1") + string(2, "Service")) + message(2, service)


def _reads_protobuf_services(admin: Admin, ns: str) -> bool:
    status, _, _ = admin("POST", f"/api/v1/namespaces/{ns}/services?dryRun=All",
                         raw=_protobuf_service("probe"),
                         headers={"Content-Type": "application/vnd.kubernetes.protobuf"})
    return bool(status == 201)


def test_the_sandbox_reads_a_protobuf_service(kubectl: Kubectl, admin: Admin) -> None:
    """What kubectl >= 1.32 sends for `kubectl create service` (was a runtime xfail guard)."""
    assert _reads_protobuf_services(admin, kubectl.namespace)


def test_create_service_subcommands(kubectl: Kubectl, core: client.CoreV1Api,
                                    admin: Admin) -> None:
    assert kubectl.ok("create", "service", "clusterip", "demo", "--tcp=80:80").strip() == (
        "service/demo created")
    assert kubectl.ok("create", "service", "nodeport", "np", "--tcp=80:8080").strip() == (
        "service/np created")
    assert kubectl.ok("create", "service", "externalname", "ext",
                      "--external-name=example.com").strip() == "service/ext created"
    _, rows = rows_by_name(kubectl.ok("get", "svc"))
    demo = core.read_namespaced_service("demo", kubectl.namespace)
    assert rows["demo"][1:5] == ["ClusterIP", demo.spec.cluster_ip, "<none>", "80/TCP"]
    node_port = core.read_namespaced_service("np", kubectl.namespace).spec.ports[0].node_port
    assert rows["np"][1] == "NodePort" and rows["np"][4] == f"80:{node_port}/TCP"
    assert rows["ext"][1:5] == ["ExternalName", "<none>", "example.com", "<none>"]
    assert demo.spec.selector == {"app": "demo"}
    assert demo.spec.ports[0].name == "80-80"


def test_describe_service(kubectl: Kubectl, core: client.CoreV1Api) -> None:
    ns = kubectl.namespace
    kubectl.ok("create", "-f", "-", stdin=(
        "apiVersion: v1\nkind: Service\nmetadata: {name: manual}\n"
        "spec: {ports: [{name: web, port: 80, targetPort: 8080}]}\n"))
    core.create_namespaced_endpoints(ns, {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "manual"},
        "subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"name": "web",
                                                                   "port": 8080}]}]})
    client.DiscoveryV1Api(core.api_client).create_namespaced_endpoint_slice(ns, {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "manual-1", "labels": {"kubernetes.io/service-name": "manual"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.1.2.3"],
                                              "conditions": {"ready": True}}],
        "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}]})
    target = core.read_namespaced_service("manual", ns)
    core.create_namespaced_event(ns, {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "manual.1"},
        "involvedObject": {"kind": "Service", "namespace": ns, "name": "manual",
                           "uid": target.metadata.uid, "apiVersion": "v1"},
        "reason": "Tested", "message": "described by kubectl", "type": "Normal",
        "source": {"component": "lbctl-tests"}, "count": 1,
        "firstTimestamp": target.metadata.creation_timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastTimestamp": target.metadata.creation_timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")})
    text = kubectl.ok("describe", "service", "manual")
    fields = {line.split(":", 1)[0]: line.split(":", 1)[1].strip()
              for line in text.splitlines() if ":" in line and not line.startswith(" ")}
    assert fields["Name"] == "manual" and fields["Namespace"] == ns
    assert fields["Type"] == "ClusterIP" and fields["IP"] == target.spec.cluster_ip
    assert fields["Port"] == "web  80/TCP"
    assert fields["TargetPort"] == "8080/TCP"
    assert fields["Endpoints"] == "10.1.2.3:8080"
    events = text.split("Events:", 1)[1].split()
    assert events[:5] == ["Type", "Reason", "Age", "From", "Message"]
    assert events[10:12] == ["Normal", "Tested"]
    assert "lbctl-tests" in events and "described" in events
