"""`/openapi/v2` and `/openapi/v3`: the documents kubectl downloads before it writes.

- `/openapi/v3` is an index: `paths` maps each group-version (`api/v1`, `apis/apps/v1`) to a
  `serverRelativeURL` whose `hash` query parameter changes whenever the document does, so
  clients may cache by URL.
- `/openapi/v3/<group-version>` is that group-version's OpenAPI 3.0 document: its paths (with
  the PATCH operations kubectl inspects) and, under `components/schemas`, every definition
  they refer to.
- `/openapi/v2` is the swagger 2.0 document for all group-versions, as JSON or, when asked for
  `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, as gnostic protobuf.

The documents are big (the v2 one is ~1 MB) and never change while the process runs, so each
is built on first request and kept.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import orjson

from ..storage.resources import RESOURCES, Resource, group_versions
from . import proto as openapi_proto
from .paths import path_items, referenced, render_v2, render_v3
from .schemas import closure, to_openapi

PROTO_V2 = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
"""What kube-openapi answers with. Clients still ask for the older `...spec.v2@v1.0+protobuf`
too, which Go's mime parser cannot read back as a Content-Type."""
_PROTO_V2_ALIASES = (PROTO_V2, "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
INFO = {"title": "Kubernetes", "version": "v1.33.0"}
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_META_ROOTS = ("APIResourceList", "DeleteOptions", "Patch", "Status", "WatchEvent")
BEARER = {"type": "apiKey", "description": "Bearer Token authentication",
          "name": "authorization", "in": "header"}


def gv_path(group: str, version: str) -> str:
    """The index key of a group-version: `api/v1`, `apis/apps/v1`."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _roots(resources: list[Resource]) -> list[str]:
    """The definitions a document about `resources` must carry (before their references)."""
    names = {META + m for m in _META_ROOTS}
    for res in resources:
        names |= referenced(path_items(res))
    return sorted(names)


def _served(group: str, version: str) -> list[Resource]:
    return [r for r in RESOURCES if r.group == group and r.version == version]


@functools.cache
def v3_document(path: str) -> bytes | None:
    """The OpenAPI v3 document of one group-version (`api/v1`), JSON-encoded; None if unknown."""
    served = next((_served(g, v) for g, v in group_versions() if gv_path(g, v) == path), None)
    if not served:
        return None
    paths: dict[str, Any] = {}
    for res in served:
        for item in path_items(res):
            paths[item.path] = render_v3(item)
    schemas = {name: to_openapi(name, v3=True) for name in closure(_roots(served))}
    return orjson.dumps({"openapi": "3.0.0", "info": INFO, "paths": paths,
                         "components": {"schemas": schemas,
                                        "securitySchemes": {"BearerToken": BEARER}}})


@functools.cache
def v3_index() -> bytes:
    paths = {}
    for group, version in group_versions():
        path = gv_path(group, version)
        body = v3_document(path) or b""
        digest = hashlib.sha512(body).hexdigest().upper()
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return orjson.dumps({"paths": paths})


@functools.cache
def v2_spec() -> dict[str, Any]:
    """The swagger 2.0 document of everything served."""
    paths: dict[str, Any] = {}
    for res in RESOURCES:
        for item in path_items(res):
            paths[item.path] = render_v2(item)
    definitions = {name: to_openapi(name, v3=False) for name in closure(_roots(list(RESOURCES)))}
    return {"swagger": "2.0", "info": INFO, "paths": paths, "definitions": definitions,
            "securityDefinitions": {"BearerToken": BEARER},
            "security": [{"BearerToken": []}]}


@functools.cache
def v2_json() -> bytes:
    return orjson.dumps(v2_spec())


@functools.cache
def v2_protobuf() -> bytes:
    return openapi_proto.document(v2_spec())


def wants_protobuf(accept: str) -> bool:
    """Whether the first Accept range the sandbox can answer is gnostic's protobuf."""
    for clause in accept.split(","):
        mime = clause.split(";", 1)[0].strip().lower()
        if mime in _PROTO_V2_ALIASES:
            return True
        if mime in ("application/json", "application/*", "*/*"):
            return False
    return False
