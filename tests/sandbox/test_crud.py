"""CRUD of every resource the sandbox serves, through the official client's typed APIs."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.integration

_LABELS = {"app": "crud"}
_SELECTOR = {"matchLabels": _LABELS}
_POD_SPEC = {"containers": [{"name": "web", "image": "nginx",
                             "ports": [{"containerPort": 8080}]}]}
_TEMPLATE = {"metadata": {"labels": _LABELS}, "spec": _POD_SPEC}

# (api class, kind suffix used in method names, namespaced, body)
CASES: list[tuple[str, str, bool, dict[str, Any]]] = [
    ("CoreV1Api", "service", True, {"apiVersion": "v1", "kind": "Service",
                                    "spec": {"ports": [{"port": 80}]}}),
    ("CoreV1Api", "endpoints", True, {"apiVersion": "v1", "kind": "Endpoints", "subsets": [
        {"addresses": [{"ip": "127.0.20.1"}], "ports": [{"port": 8080}]}]}),
    ("CoreV1Api", "pod", True, {"apiVersion": "v1", "kind": "Pod", "spec": _POD_SPEC}),
    ("CoreV1Api", "config_map", True, {"apiVersion": "v1", "kind": "ConfigMap",
                                       "data": {"config.yaml": "provider: baremetal\n"}}),
    ("CoreV1Api", "secret", True, {"apiVersion": "v1", "kind": "Secret",
                                   "stringData": {"token": "x"}, "type": "Opaque"}),
    ("CoreV1Api", "service_account", True, {"apiVersion": "v1", "kind": "ServiceAccount"}),
    ("CoreV1Api", "event", True, {"apiVersion": "v1", "kind": "Event", "reason": "Test",
                                  "message": "hello", "type": "Normal",
                                  "involvedObject": {"kind": "Service", "name": "x"}}),
    ("EventsV1Api", "event", True, {"apiVersion": "events.k8s.io/v1", "kind": "Event",
                                    "eventTime": "2026-11-26T07:00:00.123456Z",
                                    "reportingController": "lbctl.io/test",
                                    "reportingInstance": "t1", "action": "Test",
                                    "reason": "Test", "note": "hello", "type": "Normal",
                                    "regarding": {"kind": "Service", "name": "x"}}),
    ("DiscoveryV1Api", "endpoint_slice", True, {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.20.1"], "conditions": {"ready": True}}],
        "ports": [{"port": 8080, "protocol": "TCP"}]}),
    ("CoordinationV1Api", "lease", True, {"apiVersion": "coordination.k8s.io/v1",
                                          "kind": "Lease",
                                          "spec": {"holderIdentity": "a",
                                                   "leaseDurationSeconds": 15}}),
    ("AppsV1Api", "deployment", True, {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {
        "replicas": 2, "selector": _SELECTOR, "template": _TEMPLATE}}),
    ("AppsV1Api", "daemon_set", True, {"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {
        "selector": _SELECTOR, "template": _TEMPLATE}}),
    ("PolicyV1Api", "pod_disruption_budget", True, {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "spec": {"minAvailable": 1, "selector": _SELECTOR}}),
    ("RbacAuthorizationV1Api", "role", True, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["get"]}]}),
    ("RbacAuthorizationV1Api", "role_binding", True, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]}),
    ("RbacAuthorizationV1Api", "cluster_role", False, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]}),
    ("RbacAuthorizationV1Api", "cluster_role_binding", False, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]}),
    ("CoreV1Api", "node", False, {"apiVersion": "v1", "kind": "Node",
                                  "spec": {"providerID": "sandbox://crud-node"}}),
    ("CoreV1Api", "namespace", False, {"apiVersion": "v1", "kind": "Namespace"}),
]


def _call(api: Any, verb: str, kind: str, namespaced: bool, ns: str, *args: Any,
          **kw: Any) -> Any:
    scope = "namespaced_" if namespaced else ""
    method = getattr(api, f"{verb}_{scope}{kind}")
    if namespaced:
        if verb in ("create", "list", "delete_collection"):
            return method(ns, *args, **kw)
        return method(args[0], ns, *args[1:], **kw)
    return method(*args, **kw)


@pytest.mark.parametrize(("api_name", "kind", "namespaced", "body"), CASES,
                         ids=[f"{c[0]}.{c[1]}" for c in CASES])
def test_crud_every_resource(api: client.ApiClient, ns: str, api_name: str, kind: str,
                             namespaced: bool, body: dict[str, Any]) -> None:
    typed = getattr(client, api_name)(api)
    name = f"crud-{kind.replace('_', '-')}-{ns}"
    obj = {**body, "metadata": {"name": name, "labels": {"crud": "yes"}}}

    created = _call(typed, "create", kind, namespaced, ns, obj)
    assert created.metadata.name == name
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    first_rv = int(created.metadata.resource_version)

    got = _call(typed, "read", kind, namespaced, ns, name)
    assert got.metadata.uid == created.metadata.uid

    listed = _call(typed, "list", kind, namespaced, ns, label_selector="crud=yes")
    assert name in [i.metadata.name for i in listed.items]
    assert int(listed.metadata.resource_version) >= first_rv

    for _attempt in range(5):  # controllers may write meanwhile (status): read-modify-write
        got_dict = api.sanitize_for_serialization(got)
        got_dict["metadata"].setdefault("annotations", {})["step"] = "replaced"
        try:
            replaced = _call(typed, "replace", kind, namespaced, ns, name, got_dict)
            break
        except ApiException as exc:
            if exc.status != 409:
                raise
            got = _call(typed, "read", kind, namespaced, ns, name)
    assert replaced.metadata.annotations["step"] == "replaced"
    assert int(replaced.metadata.resource_version) > first_rv

    patched = _call(typed, "patch", kind, namespaced, ns, name,
                    {"metadata": {"labels": {"patched": "yes"}}})
    expected = {"crud": "yes", "patched": "yes"}
    if kind == "namespace":  # kube-apiserver labels every Namespace with its name
        expected["kubernetes.io/metadata.name"] = name
    assert patched.metadata.labels == expected

    deleted = _call(typed, "delete", kind, namespaced, ns, name)
    assert deleted is not None
    if kind == "namespace":
        return  # a namespace goes away once the namespace controller has emptied it
    with pytest.raises(ApiException) as info:
        _call(typed, "read", kind, namespaced, ns, name)
    assert info.value.status == 404


def test_defaults_exist(core: client.CoreV1Api) -> None:
    names = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "kube-system", "kube-public"} <= names
    kubernetes = core.read_namespaced_service("kubernetes", "default")
    assert kubernetes.spec.cluster_ip == "10.96.0.1"


def test_simulated_nodes(core: client.CoreV1Api) -> None:
    nodes = {n.metadata.name: n for n in core.list_node().items}
    for k in (1, 2, 3):
        node = nodes[f"sandbox-node-{k}"]
        assert node.spec.provider_id == f"sandbox://sandbox-node-{k}"
        ips = [a.address for a in node.status.addresses if a.type == "InternalIP"]
        assert ips == [f"127.0.10.{k}"]
        assert node.metadata.labels["topology.kubernetes.io/zone"].startswith("sandbox-zone-")


def test_events_share_one_store(api: client.ApiClient, ns: str) -> None:
    core, events = client.CoreV1Api(api), client.EventsV1Api(api)
    core.create_namespaced_event(ns, {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"}, "reason": "Ensured",
        "message": "made it", "type": "Normal", "eventTime": "2026-11-26T07:00:00.123456Z",
        "reportingComponent": "lbctl.io/test", "reportingInstance": "t1", "action": "Ensure",
        "involvedObject": {"kind": "Service", "name": "web", "namespace": ns}})
    seen = events.read_namespaced_event("e1", ns)
    assert seen.note == "made it"
    assert seen.regarding.name == "web"
    events.patch_namespaced_event("e1", ns, {"note": "changed"})
    assert core.read_namespaced_event("e1", ns).message == "changed"


def test_deployment_scale_subresource(api: client.ApiClient, ns: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": _SELECTOR, "template": _TEMPLATE}})
    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert scale.spec.replicas == 1
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 4
    assert apps.read_namespaced_deployment("web", ns).metadata.generation == 2


def test_stored_objects_are_valid_kubernetes_1_33(api: client.ApiClient, ns: str,
                                                  sandbox: Any) -> None:
    """Everything the sandbox stores, after its defaulting, passes the real 1.33 schemas."""
    from lbctl.sandbox.openapi.schema import validate_full
    from lbctl.sandbox.storage.resources import RESOURCES
    from tests.conftest import admin_call

    for api_name, kind, namespaced, body in CASES:
        if kind in ("namespace", "node"):
            continue
        typed = getattr(client, api_name)(api)
        _call(typed, "create", kind, namespaced, ns,
              {**body, "metadata": {"name": f"valid-{api_name[:-3].lower()}-{kind}".replace(
                  "_", "-")}})
    checked = 0
    for res in RESOURCES:
        if res.store_as or res.virtual:
            continue  # a view of objects validated in their stored (core/v1) form, or virtual
        base = f"/api/{res.version}" if not res.group else f"/apis/{res.group}/{res.version}"
        status, listed, _ = admin_call(sandbox, "GET", f"{base}/{res.plural}")
        assert status == 200
        for listed_item in listed["items"]:
            item = {"apiVersion": res.api_version, "kind": res.kind, **listed_item}
            assert validate_full(item) == [], (res.key, item["metadata"]["name"])
            checked += 1
    assert checked >= len(CASES)
