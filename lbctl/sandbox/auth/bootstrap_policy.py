"""The ClusterRoles and ClusterRoleBindings a fresh kube-apiserver creates (bootstrap policy).

RBAC only behaves like a real cluster's if the same defaults exist: `system:masters` bound to
`cluster-admin`, every authenticated user allowed discovery and the self-reviews kubectl uses
(`kubectl auth can-i`, `auth whoami`), anonymous callers only `/version` and health, and the
user-facing `admin` / `edit` / `view` roles that people bind to ServiceAccounts. The rules are
those of upstream's `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go` (1.33), limited
to the roles that matter without kube's own components; `admin`/`edit`/`view` are aggregated, as
upstream, and their rules are also written out the way the aggregation controller would.
"""

from __future__ import annotations

from typing import Any

from .authn import ALL_SERVICE_ACCOUNTS, AUTHENTICATED, SYSTEM_MASTERS, UNAUTHENTICATED

Rule = dict[str, list[str]]

READ = ["get", "list", "watch"]
WRITE = ["create", "update", "patch", "delete", "deletecollection"]
READ_WRITE = READ + WRITE
LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def _rule(verbs: list[str], groups: list[str], resources: list[str]) -> Rule:
    return {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources)}


def _urls(verbs: list[str], urls: list[str]) -> Rule:
    return {"verbs": list(verbs), "nonResourceURLs": list(urls)}


_VIEW = [
    _rule(READ, [""], ["pods", "replicationcontrollers", "replicationcontrollers/scale",
                       "serviceaccounts", "services", "services/status", "endpoints",
                       "persistentvolumeclaims", "persistentvolumeclaims/status", "configmaps"]),
    _rule(READ, [""], ["limitranges", "resourcequotas", "bindings", "events", "pods/status",
                       "resourcequotas/status", "namespaces/status",
                       "replicationcontrollers/status", "pods/log"]),
    _rule(READ, [""], ["namespaces"]),
    _rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
    _rule(READ, ["apps"], ["controllerrevisions", "statefulsets", "statefulsets/status",
                           "statefulsets/scale", "daemonsets", "daemonsets/status", "deployments",
                           "deployments/status", "deployments/scale", "replicasets",
                           "replicasets/status", "replicasets/scale"]),
    _rule(READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
    _rule(READ, ["batch"], ["jobs", "cronjobs", "cronjobs/status", "jobs/status"]),
    _rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
    _rule(READ, ["networking.k8s.io"], ["networkpolicies", "ingresses", "ingresses/status"]),
]

_EDIT = [
    _rule(READ, [""], ["pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets",
                       "services/proxy"]),
    _rule(["impersonate"], [""], ["serviceaccounts"]),
    _rule(WRITE, [""], ["pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"]),
    _rule(["create"], [""], ["pods/eviction"]),
    _rule(WRITE, [""], ["replicationcontrollers", "replicationcontrollers/scale",
                        "serviceaccounts", "services", "services/proxy", "persistentvolumeclaims",
                        "configmaps", "secrets", "events"]),
    _rule(["create"], [""], ["serviceaccounts/token"]),
    _rule(WRITE, ["apps"], ["statefulsets", "statefulsets/scale", "daemonsets", "deployments",
                            "deployments/scale", "deployments/rollback", "replicasets",
                            "replicasets/scale"]),
    _rule(WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
    _rule(WRITE, ["batch"], ["jobs", "cronjobs"]),
    _rule(WRITE, ["policy"], ["poddisruptionbudgets"]),
    _rule(WRITE, ["networking.k8s.io"], ["networkpolicies", "ingresses"]),
    _rule(READ_WRITE, ["coordination.k8s.io"], ["leases"]),
]

_ADMIN = [
    _rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
    _rule(READ_WRITE, ["rbac.authorization.k8s.io"], ["roles", "rolebindings"]),
]

_DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                   "/openapi/*", "/readyz", "/version", "/version/"]
_PUBLIC_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]


def _meta(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "labels": {**LABELS, **(labels or {})},
            "annotations": dict(ANNOTATIONS)}


def _role(name: str, rules: list[Rule], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": _meta(name, labels), "rules": rules}


def _aggregated(name: str, rules: list[Rule], labels: dict[str, str] | None = None
                ) -> dict[str, Any]:
    selector = {"matchLabels": {f"{AGGREGATE}{name}": "true"}}
    return {"metadata": _meta(name, labels), "rules": rules,
            "aggregationRule": {"clusterRoleSelectors": [selector]}}


def cluster_roles() -> list[dict[str, Any]]:
    return [
        _role("cluster-admin", [_rule(["*"], ["*"], ["*"]), _urls(["*"], ["*"])]),
        _role("system:discovery", [_urls(["get"], _DISCOVERY_URLS)]),
        _role("system:public-info-viewer", [_urls(["get"], _PUBLIC_URLS)]),
        _role("system:basic-user", [
            _rule(["create"], ["authorization.k8s.io"],
                  ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
            _rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"])]),
        _role("system:auth-delegator", [
            _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
            _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"])]),
        _role("system:service-account-issuer-discovery", [_urls(["get"], [
            "/.well-known/openid-configuration", "/.well-known/openid-configuration/",
            "/openid/v1/jwks", "/openid/v1/jwks/"])]),
        _aggregated("admin", _ADMIN + _EDIT + _VIEW),
        _aggregated("edit", _EDIT + _VIEW, {f"{AGGREGATE}admin": "true"}),
        _aggregated("view", list(_VIEW), {f"{AGGREGATE}edit": "true"}),
        _role("system:aggregate-to-admin", _ADMIN, {f"{AGGREGATE}admin": "true"}),
        _role("system:aggregate-to-edit", _EDIT, {f"{AGGREGATE}edit": "true"}),
        _role("system:aggregate-to-view", _VIEW, {f"{AGGREGATE}view": "true"}),
    ]


def _binding(name: str, *groups: str) -> dict[str, Any]:
    return {"metadata": _meta(name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}
                         for g in groups]}


def cluster_role_bindings() -> list[dict[str, Any]]:
    return [
        _binding("cluster-admin", SYSTEM_MASTERS),
        _binding("system:discovery", AUTHENTICATED),
        _binding("system:basic-user", AUTHENTICATED),
        _binding("system:public-info-viewer", AUTHENTICATED, UNAUTHENTICATED),
        _binding("system:service-account-issuer-discovery", ALL_SERVICE_ACCOUNTS),
    ]
