"""Discovery documents (`/version`, `/api`, `/apis`, per group-version resource lists).

Clients find out what a server serves before they call it: kubectl maps `svc` to `services`
and knows a Service is namespaced from these documents. They are derived from the resource table,
so a resource added there is discoverable without more code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .resources import RESOURCES, Resource, group_versions

KUBE_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0",
                "gitCommit": "lbctl-sandbox", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0",
                "compiler": "gc", "platform": "linux/amd64"}

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_SUB_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"]}
_SUB_KIND = {"scale": ("autoscaling", "v1", "Scale")}


def version() -> dict[str, Any]:
    return dict(KUBE_VERSION)


def core_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": server_address}]}


def _group_doc(group: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{g}/{v}", "version": v} for g, v in group_versions()
                if g == group]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions,
            "preferredVersion": versions[0]}


def group_list() -> dict[str, Any]:
    groups: list[dict[str, Any]] = []
    for g, _ in group_versions():
        if g and all(doc["name"] != g for doc in groups):
            groups.append(_group_doc(g))
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(name: str) -> dict[str, Any] | None:
    return _group_doc(name) if any(g == name for g, _ in group_versions() if g) else None


def _entries(res: Resource) -> list[dict[str, Any]]:
    main: dict[str, Any] = {"name": res.plural, "singularName": res.singular,
                            "namespaced": res.namespaced, "kind": res.kind, "verbs": _VERBS}
    if res.short_names:
        main["shortNames"] = list(res.short_names)
    if res.categories:
        main["categories"] = list(res.categories)
    out = [main]
    for sub in sorted(res.subresources):
        entry: dict[str, Any] = {"name": f"{res.plural}/{sub}", "singularName": "",
                                 "namespaced": res.namespaced, "kind": res.kind,
                                 "verbs": _SUB_VERBS[sub]}
        if sub in _SUB_KIND:
            g, v, kind = _SUB_KIND[sub]
            entry.update(group=g, version=v, kind=kind)
        out.append(entry)
    return out


def resource_list(group_name: str, version_name: str) -> dict[str, Any] | None:
    found = [r for r in RESOURCES if r.group == group_name and r.version == version_name]
    if not found:
        return None
    gv = f"{group_name}/{version_name}" if group_name else version_name
    entries = [e for r in found for e in _entries(r)]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": entries}


@dataclass(frozen=True)
class Document:
    """A non-resource answer: status, content type and the encoded body."""

    status: int
    content_type: str
    body: bytes


def _json_doc(doc: dict[str, Any] | None) -> Document:
    if doc is None:
        return Document(404, "application/json", orjson.dumps(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": "the server could not find the requested resource",
             "reason": "NotFound", "details": {}, "code": 404}))
    return Document(200, "application/json", orjson.dumps(doc))


def document(parts: list[str], accept: str, host: str) -> Document | None:
    """The document at a non-resource path, or None when the path names a resource.

    `accept` is the request's Accept header (clients ask for aggregated discovery or protobuf
    OpenAPI through it).
    """
    path = "/" + "/".join(parts)
    if path == "/version":
        return _json_doc(version())
    if path in ("/healthz", "/readyz", "/livez"):
        return Document(200, "text/plain", b"ok")
    if path == "/api":
        return _json_doc(core_versions(host))
    if path == "/apis":
        return _json_doc(group_list())
    if len(parts) == 2 and parts[0] == "apis":
        return _json_doc(group(parts[1]))
    if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
        group_name, version_name = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        return _json_doc(resource_list(group_name, version_name))
    return None
