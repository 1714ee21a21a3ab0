"""Non-resource documents: `/version`, health, discovery (`/api`, `/apis`, per group-version
resource lists, plain or aggregated) and OpenAPI (`/openapi/v2`, `/openapi/v3[/...]`).

Clients find out what a server serves before they call it: kubectl maps `svc` to `services`
and knows a Service is namespaced from these documents, and validates `create -f` input with the
OpenAPI ones. All are derived from the resource table, so a resource added there is discoverable
without more code. `document` is the one entry the HTTP layer calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ..storage.resources import RESOURCES, Resource, group_versions
from . import discovery_aggregated as aggregated
from . import docs as openapi_docs

KUBE_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0",
                "gitCommit": "lbctl-sandbox", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0",
                "compiler": "gc", "platform": "linux/amd64"}
JSON = "application/json"


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
                            "namespaced": res.namespaced, "kind": res.kind,
                            "verbs": list(res.verbs)}
    if res.short_names:
        main["shortNames"] = list(res.short_names)
    if res.categories:
        main["categories"] = list(res.categories)
    out = [main]
    for sub, verbs, (g, v, kind) in aggregated.subresources(res):
        entry: dict[str, Any] = {"name": f"{res.plural}/{sub}", "singularName": "",
                                 "namespaced": res.namespaced, "kind": kind, "verbs": verbs}
        if (g, v) != (res.group, res.version):
            entry.update(group=g, version=v)
        out.append(entry)
    return out


def resource_list(group_name: str, version_name: str) -> dict[str, Any] | None:
    found = sorted((r for r in RESOURCES if r.group == group_name and r.version == version_name),
                   key=lambda r: r.plural)
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


NOT_FOUND = Document(404, JSON, orjson.dumps(
    {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
     "message": "the server could not find the requested resource",
     "reason": "NotFound", "details": {}, "code": 404}))


def _json_doc(doc: dict[str, Any] | None) -> Document:
    return NOT_FOUND if doc is None else Document(200, JSON, orjson.dumps(doc))


def _discovery_root(legacy: bool, accept: str, host: str) -> Document:
    wanted = aggregated.negotiate(accept)
    if wanted is not None:
        return Document(200, aggregated.content_type(wanted),
                        orjson.dumps(aggregated.discovery_list(legacy, wanted)))
    return _json_doc(core_versions(host) if legacy else group_list())


def _openapi(parts: list[str], accept: str) -> Document | None:
    if parts == ["openapi", "v2"]:
        if openapi_docs.wants_protobuf(accept):
            return Document(200, openapi_docs.PROTO_V2, openapi_docs.v2_protobuf())
        return Document(200, JSON, openapi_docs.v2_json())
    if parts == ["openapi", "v3"]:
        return Document(200, JSON, openapi_docs.v3_index())
    if parts[:2] == ["openapi", "v3"]:
        body = openapi_docs.v3_document("/".join(parts[2:]))
        return NOT_FOUND if body is None else Document(200, JSON, body)
    return NOT_FOUND if parts and parts[0] == "openapi" else None


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
    if path in ("/api", "/apis"):
        return _discovery_root(path == "/api", accept, host)
    if parts and parts[0] == "openapi":
        return _openapi(parts, accept)
    if len(parts) == 2 and parts[0] == "apis":
        return _json_doc(group(parts[1]))
    if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
        group_name, version_name = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        return _json_doc(resource_list(group_name, version_name))
    return None
