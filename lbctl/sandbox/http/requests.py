"""Reading a request: which resource a URL names, which verb it is, and what its body says.

Kube URLs are regular (`/api/v1/namespaces/{ns}/services/{name}/status`,
`/apis/apps/v1/deployments`), so one parser turns any of them into a `Target`; bodies arrive as
JSON (or YAML, from some clients) with or without a Content-Type, and every malformed one is a
400 Status naming the problem, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from lbctl.parsing import YamlError, load_yaml

from .. import errors
from ..storage.resources import Resource, lookup

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's default --max-request-body-bytes

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}


@dataclass(frozen=True)
class Target:
    """What a URL addresses: a collection (name "") or one object, maybe a subresource."""

    resource: Resource
    namespace: str | None  # None: all namespaces, or a cluster-scoped resource
    name: str = ""
    subresource: str = ""


def parse_path(parts: list[str]) -> Target | None:
    """`["api","v1","namespaces","default","services","x"]` -> Target, or None if not a resource."""
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        res = lookup(group, version, rest[2])
        if res is not None and res.namespaced:
            namespace, rest = rest[1], rest[2:]
        elif group == "" and rest[2] in ("status", "finalize") and len(rest) == 3:
            ns_res = lookup("", version, "namespaces")
            if ns_res is None:
                return None
            return Target(ns_res, None, rest[1], "status")
        else:
            return None
    res = lookup(group, version, rest[0])
    if res is None or len(rest) > 3:
        return None
    name = rest[1] if len(rest) >= 2 else ""
    sub = rest[2] if len(rest) == 3 else ""
    if sub and sub not in res.subresources:
        return None
    if res.namespaced and namespace is None and name:
        return None  # a namespaced object needs its namespace in the URL
    return Target(res, namespace, name, sub)


def verb_of(method: str, target: Target, watch: bool) -> str:
    if method == "GET":
        if watch:
            return "watch"
        return "get" if target.name else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if target.name else "deletecollection"}.get(method, method.lower())


def decode_body(raw: bytes, content_type: str) -> Any:
    """Parse a request body as JSON (default) or YAML; 400 on anything malformed."""
    if not raw.strip():
        raise errors.bad_request("the request body is empty")
    base = content_type.split(";", maxsplit=1)[0].strip().lower()
    if base in ("application/yaml", "application/apply-patch+yaml"):
        try:
            return load_yaml(raw)
        except YamlError as exc:
            raise errors.bad_request(f"error converting YAML to JSON: {exc}") from exc
    if base == "application/vnd.kubernetes.protobuf":
        raise errors.unsupported_media_type(base)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc


def object_body(raw: bytes, content_type: str, res: Resource) -> dict[str, Any]:
    """A create/update body: a JSON object whose apiVersion/kind fit the endpoint."""
    body = decode_body(raw, content_type)
    if not isinstance(body, dict):
        raise errors.bad_request("couldn't get version/kind; json parse error: the body must "
                                 f"be a JSON object, got {type(body).__name__}")
    api_version = body.get("apiVersion", res.api_version)
    kind = body.get("kind", res.kind)
    if api_version != res.api_version:
        raise errors.bad_request(f"the API version in the data ({api_version}) does not match "
                                 f"the expected API version ({res.api_version})")
    if kind != res.kind:
        raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected "
                                 f"kind ({res.kind})")
    meta = body.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise errors.bad_request(f"{res.kind} in version \"{res.version}\" cannot be handled as "
                                 f"a {res.kind}: metadata must be an object")
    return body


def patch_type(content_type: str, body: Any) -> str:
    """Which patch a PATCH is. The Python client may omit the header: then guess by shape."""
    base = content_type.split(";", maxsplit=1)[0].strip().lower()
    if base in PATCH_TYPES:
        return PATCH_TYPES[base]
    if base in ("", "application/json", "application/octet-stream"):
        return "json" if isinstance(body, list) else "strategic"
    raise errors.unsupported_media_type(base)
