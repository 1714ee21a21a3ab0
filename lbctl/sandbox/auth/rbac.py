"""Authorization: kube's privileged-group authorizer followed by RBAC, over the live store.

A controller's ClusterRole is only proven by an API server that refuses what the role does not
grant, so this is a port of kube's evaluation, not an approximation of it:

- `system:masters` may do anything (kube-apiserver's privileged-group authorizer, which runs
  before RBAC and gives no reason).
- RBAC visits every ClusterRoleBinding, then the RoleBindings of the request's namespace; a
  binding applies when a subject names the user, one of its groups, or its ServiceAccount (a
  ServiceAccount subject without a namespace means the binding's own); the role it refers to
  (Role in the binding's namespace, or ClusterRole) is read at that moment, so a binding or rule
  change takes effect on the next request. A rule allows when verb, API group, resource (with
  `resource/subresource` and `*/subresource`), resourceNames or nonResourceURLs (`*` and
  `prefix*`) all match (`rbacv1helpers`). Missing roles are errors that end up in the reason.
- Aggregated ClusterRoles (`aggregationRule`) hold the union of the ClusterRoles their selectors
  match, computed when read, as kube's aggregation controller would have written it.

`forbidden()` builds the 403 Status exactly as `responsewriters.Forbidden` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import errors
from ..storage.selectors import label_selector_from_spec
from ..storage.store import Obj, ObjectStore
from .attributes import Attributes
from .authn import SYSTEM_MASTERS, UserInfo, sa_username

RBAC_GROUP = "rbac.authorization.k8s.io"
ROLES = f"roles.{RBAC_GROUP}"
CLUSTER_ROLES = f"clusterroles.{RBAC_GROUP}"
ROLE_BINDINGS = f"rolebindings.{RBAC_GROUP}"
CLUSTER_ROLE_BINDINGS = f"clusterrolebindings.{RBAC_GROUP}"


@dataclass(frozen=True)
class Decision:
    """An authorizer's answer: allowed or no opinion (RBAC never denies), and why."""

    allowed: bool
    reason: str = ""


@dataclass
class Rules:
    """Every rule that applies to a user in a namespace (SelfSubjectRulesReview's answer)."""

    resource: list[Obj] = field(default_factory=list)
    non_resource: list[Obj] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# -- rule matching (pkg/apis/rbac/v1/evaluation_helpers.go) ----------------------------------
def _strings(rule: Obj, key: str) -> list[str]:
    value = rule.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _verb_matches(rule: Obj, verb: str) -> bool:
    return any(v in ("*", verb) for v in _strings(rule, "verbs"))


def _group_matches(rule: Obj, group: str) -> bool:
    return any(g in ("*", group) for g in _strings(rule, "apiGroups"))


def _resource_matches(rule: Obj, combined: str, subresource: str) -> bool:
    for resource in _strings(rule, "resources"):
        if resource in ("*", combined):
            return True
        if subresource and resource == f"*/{subresource}":
            return True
    return False


def _name_matches(rule: Obj, name: str) -> bool:
    names = _strings(rule, "resourceNames")
    return not names or name in names


def _url_matches(rule: Obj, path: str) -> bool:
    for url in _strings(rule, "nonResourceURLs"):
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Obj) -> bool:
    """RuleAllows: does this one PolicyRule allow the request?"""
    if not _verb_matches(rule, attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule, attrs.path)
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    return (_group_matches(rule, attrs.api_group)
            and _resource_matches(rule, combined, attrs.subresource)
            and _name_matches(rule, attrs.name))


# -- rule resolution (pkg/registry/rbac/validation/rule.go) ----------------------------------
def _applies(user: UserInfo, subject: Any, namespace: str) -> bool:
    if not isinstance(subject, dict):
        return False
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return bool(user.name == name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_ns = subject.get("namespace") or namespace
        return bool(sa_ns) and user.name == sa_username(sa_ns, name)
    return False


def _describe_subject(subject: Obj, namespace: str) -> str:
    if subject.get("kind") == "ServiceAccount":
        ns = subject.get("namespace") or namespace
        return f'ServiceAccount "{subject.get("name", "")}/{ns}"'
    return f'{subject.get("kind", "")} "{subject.get("name", "")}"'


def _not_found(resource: str, name: str) -> str:
    return f'{resource}.{RBAC_GROUP} "{name}" not found'


class RBACAuthorizer:
    """Resolves bindings and roles from the store on every call (nothing cached)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def _cluster_role_rules(self, role: Obj, seen: frozenset[str] = frozenset()) -> list[Obj]:
        """A ClusterRole's rules; for an aggregated one, those of the roles it selects."""
        aggregation = role.get("aggregationRule")
        if not isinstance(aggregation, dict):
            return [r for r in role.get("rules") or [] if isinstance(r, dict)]
        seen = seen | {role["metadata"]["name"]}
        selectors = []
        for spec in aggregation.get("clusterRoleSelectors") or []:
            try:
                selectors.append(label_selector_from_spec(spec))
            except errors.ApiError:
                continue
        rules: list[Obj] = []
        for (_, name), other in self.store.items(CLUSTER_ROLES):
            if name in seen or not any(s.matches(other["metadata"].get("labels"))
                                       for s in selectors):
                continue
            for rule in self._cluster_role_rules(other, seen):
                if rule not in rules:
                    rules.append(rule)
        return rules

    def role_rules(self, ref: Any, namespace: str) -> tuple[list[Obj], str]:
        """GetRoleReferenceRules: (rules, error) of a binding's roleRef."""
        ref = ref if isinstance(ref, dict) else {}
        kind, name = ref.get("kind"), ref.get("name", "")
        if kind == "Role":
            role = self.store.get(ROLES, namespace, name)
            if role is None:
                return [], _not_found("role", name)
            return [r for r in role.get("rules") or [] if isinstance(r, dict)], ""
        if kind == "ClusterRole":
            cluster_role = self.store.get(CLUSTER_ROLES, "", name)
            if cluster_role is None:
                return [], _not_found("clusterrole", name)
            return self._cluster_role_rules(cluster_role), ""
        return [], f'unsupported role reference kind: "{kind or ""}"'

    def visit(self, user: UserInfo, namespace: str) -> Iterator[tuple[str, Obj | None, str]]:
        """VisitRulesFor: (source description, rule, error) for every applicable rule."""
        scopes = [(CLUSTER_ROLE_BINDINGS, "", "ClusterRoleBinding")]
        if namespace:
            scopes.append((ROLE_BINDINGS, namespace, "RoleBinding"))
        for key, ns, label in scopes:
            for (_, name), binding in self.store.items(key, ns if ns else None):
                subjects = binding.get("subjects") or []
                subject = next((s for s in subjects if _applies(user, s, ns)), None)
                if subject is None:
                    continue
                ref = binding.get("roleRef") or {}
                rules, error = self.role_rules(ref, ns)
                if error:
                    yield "", None, error
                    continue
                shown = f"{name}/{ns}" if ns else name
                source = (f'{label} "{shown}" of {ref.get("kind", "")} "{ref.get("name", "")}" '
                          f"to {_describe_subject(subject, ns)}")
                for rule in rules:
                    yield source, rule, ""

    def authorize(self, attrs: Attributes) -> Decision:
        problems: list[str] = []
        for source, rule, error in self.visit(attrs.user, attrs.namespace):
            if rule is not None and rule_allows(attrs, rule):
                return Decision(True, f"RBAC: allowed by {source}")
            if error:
                problems.append(error)
        return Decision(False, f"RBAC: {aggregate(problems)}" if problems else "")

    def rules_for(self, user: UserInfo, namespace: str) -> Rules:
        found = Rules()
        for _, rule, error in self.visit(user, namespace):
            if error:
                found.errors.append(error)
            if rule is None:
                continue
            if _strings(rule, "resources"):
                found.resource.append(rule)
            if _strings(rule, "nonResourceURLs"):
                found.non_resource.append(rule)
        return found


def aggregate(messages: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error()."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


class Authorizer:
    """kube-apiserver's chain: the privileged group first, then RBAC."""

    def __init__(self, store: ObjectStore) -> None:
        self.rbac = RBACAuthorizer(store)

    def authorize(self, attrs: Attributes) -> Decision:
        if SYSTEM_MASTERS in attrs.user.groups:
            return Decision(True)
        return self.rbac.authorize(attrs)

    def rules_for(self, user: UserInfo, namespace: str) -> Rules:
        """The rules RBAC grants (the privileged group is not a rule resolver upstream either:
        `system:masters` sees what its `cluster-admin` binding gives)."""
        return self.rbac.rules_for(user, namespace)


_SANITIZE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def forbidden_message(attrs: Attributes) -> str:
    """responsewriters.forbiddenMessage."""
    who = f'User "{attrs.user.name}"'
    if not attrs.resource_request:
        return f'{who} cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    scope = (f'in the namespace "{attrs.namespace}"' if attrs.namespace
             else "at the cluster scope")
    return (f'{who} cannot {attrs.verb} resource "{resource}" in API group '
            f'"{attrs.api_group}" {scope}')


def forbidden(attrs: Attributes, reason: str = "") -> errors.ApiError:
    """responsewriters.Forbidden: a 403 `Status` naming the user, verb and resource."""
    text = forbidden_message(attrs).translate(_SANITIZE)
    if reason:
        text = f"{text}: {reason}"
    details: dict[str, Any] = {}
    if attrs.resource or attrs.api_group:
        qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
        what = f'{qualified} "{attrs.name}"' if attrs.name else qualified
        message = f"{what} is forbidden: {text}"
        if attrs.name:
            details["name"] = attrs.name
        if attrs.api_group:
            details["group"] = attrs.api_group
        details["kind"] = attrs.resource
    else:
        message = f"forbidden: {text}"
    return errors.ApiError(403, "Forbidden", message, details)
