"""What a request asks to do, in the authorizer's terms (kube's RequestInfo + Attributes).

kube-apiserver authorizes before it routes: the URL alone gives the verb (`list`, `watch`,
`deletecollection`... or the lowercase HTTP method for non-resource paths), API group,
namespace, resource, subresource and name. This module derives them exactly the way
`k8s.io/apiserver/pkg/endpoints/request.RequestInfoFactory` does, so an RBAC rule matches here
precisely when it would match on a real cluster (e.g. `GET /api/v1/namespaces/x` is `get
namespaces x` in namespace `x`, and a list with `fieldSelector=metadata.name=a` names `a`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .authn import UserInfo

_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update",
                 "PATCH": "patch", "DELETE": "delete"}
_SPECIAL_VERBS = frozenset({"proxy", "watch"})
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass(frozen=True)
class Attributes:
    """authorizer.Attributes: one request (or one review's question) to authorize."""

    user: UserInfo
    verb: str
    resource_request: bool
    path: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


def _valid_path_segment(name: str) -> bool:
    return name not in (".", "..") and "/" not in name and "%" not in name


def _name_from_field_selector(selector: str) -> str:
    """fields.Selector.RequiresExactMatch("metadata.name") for a simple selector string."""
    found = ""
    for term in selector.split(","):
        for op in ("==", "="):
            key, sep, value = term.partition(op)
            if sep and key.strip() == "metadata.name":
                found = value.strip()
                break
    return found if found and _valid_path_segment(found) else ""


def request_attributes(user: UserInfo, method: str, path: str,
                       query: Mapping[str, str]) -> Attributes:
    """The attributes of an HTTP request, as RequestInfoFactory.NewRequestInfo builds them."""
    non_resource = Attributes(user, method.lower(), False, path)
    parts = path.strip("/").split("/") if path.strip("/") else []
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if len(parts) < 3:
            return non_resource
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]
    if parts[0] in _SPECIAL_VERBS:
        if len(parts) < 2:
            return non_resource
        verb, parts = parts[0], parts[1:]
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0]
    name = parts[1] if len(parts) >= 2 else ""
    subresource = parts[2] if len(parts) >= 3 and verb != "proxy" else ""
    if not name and verb == "get":
        watch = query.get("watch")
        verb = "watch" if watch is not None and watch.lower() not in ("false", "0") else "list"
        name = _name_from_field_selector(query.get("fieldSelector", ""))
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(user, verb, True, path, group, version, namespace, resource,
                      subresource, name)
