"""Authentication and RBAC through the official Python client against a TLS sandbox: tokens
from the TokenRequest API, ServiceAccounts refused and then allowed as bindings appear, scoping,
resourceNames, subresources, the reviews, impersonation, anonymous access and kube's exact 403."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from lbctl.sandbox.app import Sandbox
from tests.conftest import namespace, open_client, running_sandbox
from tests.helpers import SandboxProcess, node_names

pytestmark = pytest.mark.integration

RBAC = "rbac.authorization.k8s.io"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox serving HTTPS: the setting in which credentials and RBAC matter."""
    yield from running_sandbox(tmp_path_factory.mktemp("tls"), nodes=1, tls=True)


@pytest.fixture(scope="module")
def admin(box: Sandbox) -> Iterator[client.ApiClient]:
    yield from open_client(box)


@pytest.fixture
def ns(admin: client.ApiClient) -> Iterator[str]:
    yield from namespace(client.CoreV1Api(admin), f"auth-{uuid.uuid4().hex[:8]}")


def _token(admin: client.ApiClient, ns: str, name: str, **spec: Any) -> Any:
    return client.CoreV1Api(admin).create_namespaced_service_account_token(
        name, ns, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": spec})


SaClient = Callable[[str], client.ApiClient]


@pytest.fixture
def as_sa(box: Sandbox, admin: client.ApiClient, ns: str, tmp_path: Path) -> Iterator[SaClient]:
    """Make a ServiceAccount in `ns` and return a client that authenticates as it."""
    made: list[client.ApiClient] = []

    def make(name: str) -> client.ApiClient:
        client.CoreV1Api(admin).create_namespaced_service_account(ns, {"metadata": {"name": name}})
        token = _token(admin, ns, name).status.token
        api = config.new_client_from_config(config_file=str(
            box.write_kubeconfig(tmp_path / f"{name}.kubeconfig", token, user=name)))
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


def _refused(call: Callable[..., Any], *args: Any, status: int = 403, **kw: Any) -> Any:
    with pytest.raises(ApiException) as info:
        call(*args, **kw)
    assert info.value.status == status, info.value.body
    return json.loads(info.value.body)


def _bind(admin: client.ApiClient, ns: str, sa: str, rules: list[dict[str, Any]],
          name: str = "r") -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(ns, {"metadata": {"name": name}, "rules": rules})
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]})


def test_token_request_issues_a_token_that_authenticates_as_the_sa(
        admin: client.ApiClient, as_sa: SaClient, ns: str) -> None:
    api = as_sa("robot")
    sa = client.CoreV1Api(admin).read_namespaced_service_account("robot", ns)
    issued = _token(admin, ns, "robot", expirationSeconds=600)
    assert issued.spec.audiences == ["https://kubernetes.default.svc.cluster.local"]
    assert issued.spec.expiration_seconds == 600
    assert (issued.status.expiration_timestamp - issued.metadata.creation_timestamp
            ).total_seconds() == 600
    who = client.AuthenticationV1Api(api).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert who.status.user_info.username == f"system:serviceaccount:{ns}:robot"
    assert who.status.user_info.uid == sa.metadata.uid
    assert who.status.user_info.groups == [
        "system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]


def test_token_request_bad_input_names_the_field(admin: client.ApiClient, as_sa: SaClient,
                                                 ns: str) -> None:
    as_sa("robot")
    body = _refused(_token, admin, ns, "robot", status=422, expirationSeconds=60)
    assert body["message"] == ('TokenRequest.authentication.k8s.io "" is invalid: '
                               "spec.expirationSeconds: Invalid value: 60: may not specify a "
                               "duration less than 10 minutes")
    assert body["details"]["causes"][0]["field"] == "spec.expirationSeconds"
    body = _refused(_token, admin, ns, "nobody", status=404)
    assert body["message"] == 'serviceaccounts "nobody" not found'


def test_forbidden_is_kubes_status_then_a_rolebinding_allows(
        admin: client.ApiClient, as_sa: SaClient, ns: str) -> None:
    core = client.CoreV1Api(as_sa("x"))
    body = _refused(core.list_namespaced_service, ns)
    assert body == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'services is forbidden: User "system:serviceaccount:{ns}:x" cannot list '
                   f'resource "services" in API group "" in the namespace "{ns}"',
        "reason": "Forbidden", "details": {"kind": "services"}, "code": 403}
    _bind(admin, ns, "x", [{"apiGroups": [""], "resources": ["services"],
                            "verbs": ["get", "list"]}])
    assert [s.metadata.name for s in core.list_namespaced_service(ns).items] == []
    body = _refused(client.AppsV1Api(core.api_client).read_namespaced_deployment, "web", ns)
    assert body["message"] == (f'deployments.apps "web" is forbidden: User '
                               f'"system:serviceaccount:{ns}:x" cannot get resource '
                               f'"deployments" in API group "apps" in the namespace "{ns}"')
    assert body["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
    client.RbacAuthorizationV1Api(admin).delete_namespaced_role_binding("r", ns)
    _refused(core.list_namespaced_service, ns)  # rules are read live: revoked at once


def test_cluster_role_through_a_rolebinding_is_scoped_to_its_namespace(
        admin: client.ApiClient, as_sa: SaClient, ns: str) -> None:
    core = client.CoreV1Api(as_sa("x"))
    rbac = client.RbacAuthorizationV1Api(admin)
    role = f"cm-reader-{ns}"
    rbac.create_cluster_role({"metadata": {"name": role}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]})
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": "b"}, "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole",
                                               "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "x"}]})  # namespace: the binding's
    try:
        core.list_namespaced_config_map(ns)
        _refused(core.list_namespaced_config_map, "default")
        body = _refused(core.list_config_map_for_all_namespaces)
        assert body["message"].endswith('cannot list resource "configmaps" in API group "" at '
                                        "the cluster scope")
    finally:
        rbac.delete_cluster_role(role)


def test_resource_names_limit_a_rule_to_those_objects(admin: client.ApiClient,
                                                      as_sa: SaClient, ns: str) -> None:
    admin_core = client.CoreV1Api(admin)
    for name in ("allowed", "other"):
        admin_core.create_namespaced_config_map(ns, {"metadata": {"name": name}})
    core = client.CoreV1Api(as_sa("x"))
    _bind(admin, ns, "x", [{"apiGroups": [""], "resources": ["configmaps"],
                            "resourceNames": ["allowed"], "verbs": ["get", "list"]}])
    assert core.read_namespaced_config_map("allowed", ns).metadata.name == "allowed"
    body = _refused(core.read_namespaced_config_map, "other", ns)
    assert body["message"].startswith('configmaps "other" is forbidden')
    _refused(core.list_namespaced_config_map, ns)  # a list names no object
    # ...unless it selects exactly the named one, as RequestInfo reads metadata.name
    listed = core.list_namespaced_config_map(ns, field_selector="metadata.name=allowed")
    assert [c.metadata.name for c in listed.items] == ["allowed"]


def test_status_subresource_needs_its_own_rule(admin: client.ApiClient, as_sa: SaClient,
                                               ns: str) -> None:
    client.CoreV1Api(admin).create_namespaced_service(ns, {
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "selector": {"a": "b"}}})
    core = client.CoreV1Api(as_sa("ctl"))
    _bind(admin, ns, "ctl", [{"apiGroups": [""], "resources": ["services"],
                              "verbs": ["get", "patch"]}])
    patch = {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}}
    body = _refused(core.patch_namespaced_service_status, "lb", ns, patch)
    assert body["message"] == (f'services "lb" is forbidden: User "system:serviceaccount:{ns}:ctl"'
                               f' cannot patch resource "services/status" in API group "" in the '
                               f'namespace "{ns}"')
    _bind(admin, ns, "ctl", [{"apiGroups": [""], "resources": ["services/status"],
                              "verbs": ["patch"]}], name="status")
    patched = core.patch_namespaced_service_status("lb", ns, patch)
    assert patched.status.load_balancer.ingress[0].ip == "192.0.2.10"


def test_deleted_or_recreated_service_account_token_is_refused(
        admin: client.ApiClient, as_sa: SaClient, ns: str) -> None:
    core = client.CoreV1Api(as_sa("gone"))
    client.AuthenticationV1Api(core.api_client).create_self_subject_review({})
    admin_core = client.CoreV1Api(admin)
    admin_core.delete_namespaced_service_account("gone", ns)
    body = _refused(core.list_namespaced_service, ns, status=401)
    assert (body["reason"], body["message"]) == ("Unauthorized", "Unauthorized")
    admin_core.create_namespaced_service_account(ns, {"metadata": {"name": "gone"}})
    _refused(core.list_namespaced_service, ns, status=401)  # same name, another uid


def test_bad_and_foreign_tokens_are_401(box: Sandbox, admin: client.ApiClient, ns: str,
                                        tmp_path: Path) -> None:
    client.CoreV1Api(admin).create_namespaced_service_account(ns, {"metadata": {"name": "v"}})
    vault = _token(admin, ns, "v", audiences=["vault"]).status.token
    for token in ("garbage", vault, vault[:-2] + "xx"):
        api = config.new_client_from_config(config_file=str(
            box.write_kubeconfig(tmp_path / "bad", token, user="bad")))
        _refused(client.VersionApi(api).get_code, status=401)
        api.close()


def _anonymous(box: Sandbox, path: str) -> tuple[int, Any]:
    assert box.ca_pem is not None
    context = ssl.create_default_context(cadata=box.ca_pem.decode())
    try:
        with urllib.request.urlopen(box.url + path, timeout=10, context=context) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_anonymous_under_tls_sees_only_version_and_health(box: Sandbox) -> None:
    assert box.url.startswith("https://127.0.0.1:")
    for path in ("/version", "/healthz", "/livez", "/readyz"):
        assert _anonymous(box, path)[0] == 200
    code, body = _anonymous(box, "/api")
    assert (code, body["message"]) == (403, 'forbidden: User "system:anonymous" cannot get '
                                            'path "/api"')
    code, body = _anonymous(box, "/api/v1/namespaces")
    assert (code, body["message"]) == (403, 'namespaces is forbidden: User "system:anonymous" '
                                            'cannot list resource "namespaces" in API group "" '
                                            "at the cluster scope")
    assert _anonymous(box, "/sandbox/audit")[0] == 403


def test_access_reviews_answer_for_self_and_others(admin: client.ApiClient, as_sa: SaClient,
                                                   ns: str) -> None:
    authz = client.AuthorizationV1Api(as_sa("x"))
    _bind(admin, ns, "x", [{"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}])

    def can(verb: str, resource: str) -> bool:
        review = authz.create_self_subject_access_review({"spec": {"resourceAttributes": {
            "namespace": ns, "verb": verb, "resource": resource}}})
        return bool(review.status.allowed)

    assert can("list", "services") and not can("delete", "services")
    rules = authz.create_self_subject_rules_review({"spec": {"namespace": ns}})
    assert (["list"], [""], ["services"]) in [
        (r.verbs, r.api_groups, r.resources) for r in rules.status.resource_rules]
    sar = client.AuthorizationV1Api(admin).create_subject_access_review({"spec": {
        "user": f"system:serviceaccount:{ns}:x",
        "resourceAttributes": {"namespace": ns, "verb": "list", "resource": "services"}}})
    assert sar.status.allowed
    assert sar.status.reason == (f'RBAC: allowed by RoleBinding "r/{ns}" of Role "r" to '
                                 f'ServiceAccount "x/{ns}"')
    body = _refused(client.AuthorizationV1Api(admin).create_subject_access_review,
                    {"spec": {"resourceAttributes": {"verb": "get"}}}, status=422)
    assert body["message"] == ('SubjectAccessReview.authorization.k8s.io "" is invalid: '
                               'spec.user: Invalid value: "": at least one of user or group '
                               "must be specified")
    _refused(authz.create_subject_access_review, {"spec": {"user": "u", "resourceAttributes": {
        "verb": "get"}}})  # reviewing others needs its own grant


def test_view_cluster_role_is_aggregated_and_reads_no_secrets(
        admin: client.ApiClient, as_sa: SaClient, ns: str) -> None:
    core = client.CoreV1Api(as_sa("viewer"))
    client.RbacAuthorizationV1Api(admin).create_namespaced_role_binding(ns, {
        "metadata": {"name": "view"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": ns}]})
    core.list_namespaced_service(ns)
    core.list_namespaced_pod(ns)
    _refused(core.list_namespaced_secret, ns)
    _refused(core.create_namespaced_config_map, ns, {"metadata": {"name": "c"}})


def _raw(box: Sandbox, token: str, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    assert box.ca_pem is not None
    context = ssl.create_default_context(cadata=box.ca_pem.decode())
    req = urllib.request.Request(box.url + path, headers={
        "Authorization": f"Bearer {token}", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_impersonation_needs_the_impersonate_verb(box: Sandbox, admin: client.ApiClient,
                                                  ns: str) -> None:
    client.CoreV1Api(admin).create_namespaced_service_account(ns, {"metadata": {"name": "x"}})
    sa_user = f"system:serviceaccount:{ns}:x"
    path = f"/api/v1/namespaces/{ns}/services"
    code, body = _raw(box, box.token, path, {"Impersonate-User": sa_user})
    assert code == 403 and body["message"].startswith(f'services is forbidden: User "{sa_user}"')
    assert _raw(box, box.token, path, {"Impersonate-User": "bob",
                                       "Impersonate-Group": "system:masters"})[0] == 200
    token = _token(admin, ns, "x").status.token
    code, body = _raw(box, token, path, {"Impersonate-User": "bob"})
    assert (code, body["message"]) == (403, f'users "bob" is forbidden: User "{sa_user}" cannot '
                                             'impersonate resource "users" in API group "" at '
                                             "the cluster scope")
    code, body = _raw(box, box.token, path, {"Impersonate-Group": "g"})
    assert code == 500 and "Impersonate-User" in body["message"]


def test_audit_log_names_the_user_and_the_refusals(box: Sandbox, as_sa: SaClient,
                                                   ns: str) -> None:
    core = client.CoreV1Api(as_sa("audited"))
    _refused(core.list_namespaced_service, ns)
    entries = [e for e in box.faults.audit if e["user"] == f"system:serviceaccount:{ns}:audited"]
    assert [(e["verb"], e["resource"], e["code"]) for e in entries] == [
        ("list", "services", 403)]


def test_cli_tls_flag_serves_https_with_the_ca_in_the_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    with SandboxProcess("--tls", "--nodes", "1", "--kubeconfig", str(kubeconfig)) as sandbox:
        assert "ready" in sandbox.line and "https://127.0.0.1:" in sandbox.line
        cluster = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
        assert cluster["server"].startswith("https://")
        assert "certificate-authority-data" in cluster
        assert node_names(kubeconfig) == ["sandbox-node-1"]
    assert sandbox.proc.returncode == 0


def test_issue_token_and_write_kubeconfig_run_a_client_as_an_sa(
        box: Sandbox, admin: client.ApiClient, ns: str, tmp_path: Path) -> None:
    """The hooks a controller test uses to run the controller under its own RBAC."""
    client.CoreV1Api(admin).create_namespaced_service_account(ns, {"metadata": {"name": "ctl"}})
    path = box.write_kubeconfig(tmp_path / "ctl", box.issue_token(ns, "ctl"), user="ctl")
    api = config.new_client_from_config(config_file=str(path))
    who = client.AuthenticationV1Api(api).create_self_subject_review({})
    assert who.status.user_info.username == f"system:serviceaccount:{ns}:ctl"
    api.close()
