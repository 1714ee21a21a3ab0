"""Response content negotiation for reads: the plain object, a Table, or just its metadata.

kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints the Table's columns;
metadata-only clients ask for `as=PartialObjectMetadata[List]`; the official Python client and
controllers ask for plain JSON. The first media range of the Accept header the sandbox can serve
wins, as in kube-apiserver; JSON is the answer when none fits (the sandbox speaks no protobuf).
This module decides which one a request gets, so the registry never knows about presentation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..storage.resources import Resource
from ..storage.store import Obj
from ..tables import table as tables

META_GROUP = "meta.k8s.io"
META_VERSIONS = ("v1", "v1beta1")
_JSON_RANGES = ("application/json", "application/*", "*/*")


@dataclass(frozen=True)
class Target:
    """What to send: `kind` "" (the object itself), "Table" or "PartialObjectMetadata"."""

    kind: str = ""
    version: str = "v1"


PLAIN = Target()


def _parse(clause: str) -> tuple[str, dict[str, str]]:
    mime, *raw = (p.strip() for p in clause.split(";"))
    params = {}
    for item in raw:
        key, _, value = item.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return mime.lower(), params


def target(accept: str, listing: bool) -> Target:
    """The first Accept media range the sandbox can serve for a get (or list)."""
    for clause in accept.split(","):
        if not clause.strip():
            continue
        mime, params = _parse(clause)
        if mime not in _JSON_RANGES:
            continue
        conversion = params.get("as", "")
        if not conversion:
            return PLAIN
        if params.get("g") != META_GROUP or params.get("v") not in META_VERSIONS:
            continue
        wanted = "PartialObjectMetadataList" if listing else "PartialObjectMetadata"
        if conversion in ("Table", wanted):
            return Target(conversion.removesuffix("List"), params["v"])
    return PLAIN


def _partial(meta: Obj, version: str) -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": f"{META_GROUP}/{version}",
            "metadata": meta}


def render(accept: str, res: Resource, body: Obj, query: Mapping[str, Any]) -> Obj:
    """`body` (an object or a list) as the client asked for it."""
    listing = tables.is_list(res, body)
    chosen = target(accept, listing)
    if chosen.kind == "Table":
        return tables.table(res, body, query, chosen.version)
    if chosen.kind == "PartialObjectMetadata":
        if listing:
            return {"kind": "PartialObjectMetadataList",
                    "apiVersion": f"{META_GROUP}/{chosen.version}",
                    "metadata": body.get("metadata", {}),
                    "items": [_partial(o.get("metadata", {}), chosen.version)
                              for o in body["items"]]}
        return _partial(body.get("metadata", {}), chosen.version)
    return body


def render_watched(accept: str, res: Resource, obj: Obj, query: Mapping[str, Any],
                   first: bool) -> Obj:
    """One watch event's object as the client asked for it.

    A Table watch carries the column definitions on its first event only, like
    kube-apiserver (`NoHeaders` is set once the first object is written).
    """
    chosen = target(accept, listing=False)
    if chosen.kind == "Table":
        return tables.table(res, obj, query, chosen.version, headers=first)
    if chosen.kind == "PartialObjectMetadata":
        return _partial(obj.get("metadata", {}), chosen.version)
    return obj
