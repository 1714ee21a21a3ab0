"""The create-only review APIs: ask the server who you are and what you (or others) may do.

`kubectl auth can-i` posts a SelfSubjectAccessReview, `kubectl auth can-i --list` a
SelfSubjectRulesReview, `kubectl auth whoami` a SelfSubjectReview; controllers and webhooks use
SubjectAccessReview and TokenReview. Nothing is stored: each POST is answered from the same
authenticator and authorizer that guard every request, with kube's validation messages
(`pkg/apis/authorization/validation`) and response shapes (201, the request echoed with a
`status`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import errors
from ..storage.registry import now
from ..storage.resources import Resource
from ..storage.store import Obj
from .attributes import Attributes
from .authn import API_AUDIENCES, Authenticator, UserInfo
from .rbac import Authorizer, Decision

Handler = Callable[[Resource, str, UserInfo, Obj], Obj]


def _empty(meta: Any, allowed: tuple[str, ...] = ()) -> bool:
    """Semantic equality with an empty ObjectMeta (nulls, "" and {} count as unset)."""
    if not isinstance(meta, dict):
        return meta is None
    return all(not v for k, v in meta.items() if k not in ("managedFields", *allowed))


def _access_spec_errors(spec: Obj, subject: bool) -> list[errors.FieldError]:
    found: list[errors.FieldError] = []
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        found.append(errors.invalid("spec.nonResourceAttributes", non_resource,
                                    "cannot be specified in combination with resourceAttributes"))
    if resource is None and non_resource is None:
        found.append(errors.invalid("spec.resourceAttributes", "null", "exactly one of "
                                    "nonResourceAttributes or resourceAttributes must be "
                                    "specified"))
    if subject and not spec.get("user") and not spec.get("groups"):
        found.append(errors.invalid("spec.user", spec.get("user", ""),
                                    "at least one of user or group must be specified"))
    return found


def _attributes(user: UserInfo, spec: Obj) -> Attributes:
    """authorizationutil.ResourceAttributesFrom / NonResourceAttributesFrom."""
    res = spec.get("resourceAttributes")
    if isinstance(res, dict):
        return Attributes(user, res.get("verb", ""), True, api_group=res.get("group", ""),
                          api_version=res.get("version") or "*",
                          namespace=res.get("namespace", ""), resource=res.get("resource", ""),
                          subresource=res.get("subresource", ""), name=res.get("name", ""))
    non = spec.get("nonResourceAttributes") or {}
    return Attributes(user, non.get("verb", ""), False, non.get("path", ""))


def _access_status(decision: Decision) -> Obj:
    status: Obj = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return status


def _answer(res: Resource, body: Obj, **fields: Any) -> Obj:
    meta = dict(body.get("metadata") or {})
    meta.setdefault("creationTimestamp", None)
    return {**body, "kind": res.kind, "apiVersion": res.api_version, "metadata": meta, **fields}


class Reviews:
    """Answers POSTs to the review resources (see `Resource.virtual`)."""

    def __init__(self, authenticator: Authenticator, authorizer: Authorizer) -> None:
        self.authenticator = authenticator
        self.authorizer = authorizer
        self._handlers: dict[str, Handler] = {
            "selfsubjectaccessreviews": self._self_access,
            "subjectaccessreviews": self._subject_access,
            "localsubjectaccessreviews": self._local_access,
            "selfsubjectrulesreviews": self._self_rules,
            "selfsubjectreviews": self._self_subject,
            "tokenreviews": self._token_review,
        }

    def create(self, res: Resource, namespace: str, user: UserInfo, body: Obj) -> Obj:
        handler = self._handlers.get(res.plural)
        if handler is None:
            raise errors.no_such_resource()
        return handler(res, namespace, user, body)

    def _refuse(self, res: Resource, body: Obj, problems: list[errors.FieldError]) -> None:
        if problems:
            name = (body.get("metadata") or {}).get("name", "")
            raise errors.invalid_object(res.kind, res.group, name, problems)

    def _self_access(self, res: Resource, _ns: str, user: UserInfo, body: Obj) -> Obj:
        return self._cluster_access(res, body, user)

    def _subject(self, spec: Obj) -> UserInfo:
        extra = {k: tuple(v) for k, v in (spec.get("extra") or {}).items()}
        return UserInfo(spec.get("user", ""), tuple(spec.get("groups") or ()),
                        spec.get("uid", ""), extra)

    def _subject_access(self, res: Resource, _ns: str, _user: UserInfo, body: Obj) -> Obj:
        return self._cluster_access(res, body, None)

    def _cluster_access(self, res: Resource, body: Obj, user: UserInfo | None) -> Obj:
        """A SelfSubjectAccessReview for `user`, or (None) a SubjectAccessReview for the
        subject its spec names."""
        spec = body.get("spec") or {}
        problems = _access_spec_errors(spec, subject=user is None)
        if not _empty(body.get("metadata")):
            problems.append(errors.invalid("metadata", body.get("metadata"), "must be empty"))
        self._refuse(res, body, problems)
        subject = self._subject(spec) if user is None else user
        decision = self.authorizer.authorize(_attributes(subject, spec))
        return _answer(res, body, status=_access_status(decision))

    def _local_access(self, res: Resource, namespace: str, _user: UserInfo, body: Obj) -> Obj:
        spec = body.get("spec") or {}
        meta = body.get("metadata") or {}
        body_ns = meta.get("namespace") or namespace
        if body_ns != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
        problems = _access_spec_errors(spec, subject=True)
        if not _empty(meta, ("namespace",)):
            problems.append(errors.invalid("metadata", meta, "must be empty except for "
                                           "namespace"))
        res_attrs = spec.get("resourceAttributes")
        if isinstance(res_attrs, dict) and res_attrs.get("namespace", "") != namespace:
            problems.append(errors.invalid("spec.resourceAttributes.namespace",
                                           res_attrs.get("namespace", ""),
                                           "must match metadata.namespace"))
        if spec.get("nonResourceAttributes") is not None:
            problems.append(errors.invalid("spec.nonResourceAttributes",
                                           spec["nonResourceAttributes"],
                                           "disallowed on this kind of request"))
        self._refuse(res, body, problems)
        decision = self.authorizer.authorize(_attributes(self._subject(spec), spec))
        body = {**body, "metadata": {**meta, "namespace": namespace}}
        return _answer(res, body, status=_access_status(decision))

    def _self_rules(self, res: Resource, _ns: str, user: UserInfo, body: Obj) -> Obj:
        namespace = (body.get("spec") or {}).get("namespace", "")
        if not namespace:
            raise errors.bad_request("no namespace on request")
        rules = self.authorizer.rules_for(user, namespace)
        resource_rules = [{k: list(r[k]) for k in ("verbs", "apiGroups", "resources",
                                                     "resourceNames") if r.get(k) or k == "verbs"}
                          for r in rules.resource]
        non_resource_rules = [{k: list(r[k]) for k in ("verbs", "nonResourceURLs")
                               if r.get(k) or k == "verbs"} for r in rules.non_resource]
        status: Obj = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                       "incomplete": False}
        if rules.errors:
            status["evaluationError"] = ", ".join(rules.errors)
        return {"kind": res.kind, "apiVersion": res.api_version,
                "metadata": {"creationTimestamp": None}, "spec": {}, "status": status}

    def _self_subject(self, res: Resource, _ns: str, user: UserInfo, _body: Obj) -> Obj:
        return {"kind": res.kind, "apiVersion": res.api_version,
                "metadata": {"creationTimestamp": now()},
                "status": {"userInfo": user.to_json()}}

    def _token_review(self, res: Resource, _ns: str, _user: UserInfo, body: Obj) -> Obj:
        spec = body.get("spec") or {}
        token = spec.get("token", "")
        if not token:
            raise errors.bad_request("token is required for TokenReview in authentication")
        found, audiences = self.authenticator.review(
            token, tuple(spec.get("audiences") or API_AUDIENCES))
        status: Obj = {"user": {}}
        if found is None:
            status["error"] = "invalid bearer token"
        else:
            status.update(authenticated=True, user=found.to_json(), audiences=audiences)
        return _answer(res, body, status=status)
