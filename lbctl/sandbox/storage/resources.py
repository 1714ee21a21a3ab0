"""The resource types the sandbox serves, as one table.

Everything that differs per resource (group, version, plural, kind, scope, subresources, which
name format it accepts, whether its main endpoint ignores status) lives here, so the store, the
HTTP layer and discovery read one source and never special-case a resource by name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """One served resource type (a REST collection)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str
    short_names: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    name_rule: str = "subdomain"
    """Name format: "dns1035" (services), "dns1123label" (namespaces), "subdomain", "path"."""
    reset_status_on_create: bool = False
    """Strategies that clear status on create (services, deployments...)."""
    store_as: str = ""
    """Another resource's key whose store this one shares (events.k8s.io events)."""
    categories: tuple[str, ...] = ()
    actions: frozenset[str] = frozenset()
    """Create-only subresources answered by a handler of their own, never stored
    (`serviceaccounts/token`: the TokenRequest API)."""
    virtual: bool = False
    """Create-only and never stored: each POST is answered on the spot (the review APIs)."""

    @property
    def verbs(self) -> tuple[str, ...]:
        """The verbs discovery should list for the main resource."""
        return ("create",) if self.virtual else VERBS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Unique key of this type: `plural` for core, `plural.group` otherwise."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_key(self) -> str:
        return self.store_as or self.key

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
ACTION_KINDS = {"token": ("authentication.k8s.io", "v1", "TokenRequest")}
"""The kind each action (create-only subresource) takes and returns, for discovery."""

_STATUS = frozenset({"status"})
_ALL = ("all",)

RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace", False, "namespace", ("ns",), _STATUS,
             "dns1123label"),
    Resource("", "v1", "services", "Service", True, "service", ("svc",), _STATUS, "dns1035",
             reset_status_on_create=True, categories=_ALL),
    Resource("", "v1", "nodes", "Node", False, "node", ("no",), _STATUS),
    Resource("", "v1", "endpoints", "Endpoints", True, "endpoints", ("ep",)),
    Resource("", "v1", "pods", "Pod", True, "pod", ("po",), _STATUS, categories=_ALL),
    Resource("", "v1", "configmaps", "ConfigMap", True, "configmap", ("cm",)),
    Resource("", "v1", "secrets", "Secret", True, "secret"),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, "serviceaccount", ("sa",),
             actions=frozenset({"token"})),
    Resource("", "v1", "events", "Event", True, "event", ("ev",)),
    Resource("events.k8s.io", "v1", "events", "Event", True, "event", ("ev",),
             store_as="events"),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True, "endpointslice"),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True, "lease"),
    Resource("apps", "v1", "deployments", "Deployment", True, "deployment", ("deploy",),
             frozenset({"status", "scale"}), reset_status_on_create=True, categories=_ALL),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, "replicaset", ("rs",),
             frozenset({"status", "scale"}), reset_status_on_create=True, categories=_ALL),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, "daemonset", ("ds",), _STATUS,
             reset_status_on_create=True, categories=_ALL),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True,
             "poddisruptionbudget", ("pdb",), _STATUS, reset_status_on_create=True),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True, "role", (), frozenset(),
             "path"),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True,
             "rolebinding", (), frozenset(), "path"),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False,
             "clusterrole", (), frozenset(), "path"),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
             False, "clusterrolebinding", (), frozenset(), "path"),
    Resource("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False,
             "selfsubjectreview", virtual=True),
    Resource("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False, "tokenreview",
             virtual=True),
    Resource("authorization.k8s.io", "v1", "localsubjectaccessreviews", "LocalSubjectAccessReview",
             True, "localsubjectaccessreview", virtual=True),
    Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview",
             False, "selfsubjectaccessreview", virtual=True),
    Resource("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview",
             False, "selfsubjectrulesreview", virtual=True),
    Resource("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False,
             "subjectaccessreview", virtual=True),
)

_BY_PATH: dict[tuple[str, str, str], Resource] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
_BY_KEY: dict[str, Resource] = {r.key: r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> Resource | None:
    """The resource served at `/api[s]/<group>/<version>/<plural>`, if any."""
    return _BY_PATH.get((group, version, plural))


def by_key(key: str) -> Resource:
    return _BY_KEY[key]


def group_versions() -> list[tuple[str, str]]:
    """Every (group, version) served, core first, in a stable order."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen
