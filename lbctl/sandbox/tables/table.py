"""Server-side printing: an object or a list as a `meta.k8s.io/v1 Table`.

`kubectl get` asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints whatever columns
the server sends, so the columns and cell texts here are those of kube's printers
(`pkg/printers/internalversion`), generated the way the apiserver does: always with the wide
(priority 1) columns, kubectl hides those unless `-o wide`. Each row carries the object as
`PartialObjectMetadata` (the default), in full, or not at all, per the `includeObject` query
parameter; kubectl reads names, namespaces and labels from it.

Resources without a printer of their own get the apiserver's default table: NAME and CREATED AT.
The column and printer types live in `base` (so the printers can import them without a circle),
the per-resource printers in `core`, `pods` and `workloads`.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import errors
from ..storage.resources import Resource
from ..storage.store import Obj
from . import core, workloads
from .base import DEFAULT, INCLUDE_OBJECT, Printer

_printers: dict[str, Printer] = {}


def register(printers: Mapping[str, Printer]) -> None:
    """Add printers keyed by `Resource.key` ("services", "deployments.apps")."""
    _printers.update(printers)


def printer_for(res: Resource) -> Printer:
    if not _printers:
        register(core.PRINTERS)
        register(workloads.PRINTERS)
    return _printers.get(res.key, DEFAULT)


def include_option(query: Mapping[str, str]) -> str:
    """The `includeObject` query parameter, validated like `ValidateTableOptions`."""
    value = query.get("includeObject", "") or "Metadata"
    if value not in INCLUDE_OBJECT:
        raise errors.bad_request(
            "Unable to convert to Table as requested: " + str(errors.invalid(
                "includeObject", value, "must be 'Metadata', 'Object', 'None', or empty")))
    return value


def _row_object(res: Resource, obj: Obj, include: str, version: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return {"apiVersion": res.api_version, "kind": res.kind, **obj}
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
            "metadata": obj.get("metadata", {})}


def row(res: Resource, obj: Obj, include: str = "Metadata", version: str = "v1") -> Obj:
    """One `TableRow`: the printer's cells, its conditions, and the object as asked."""
    printer = printer_for(res)
    shown = printer.adapt(obj) if printer.adapt else obj
    out: Obj = {"cells": printer.cells(shown)}
    if printer.conditions is not None:
        conditions = printer.conditions(shown)
        if conditions:
            out["conditions"] = conditions
    out["object"] = _row_object(res, obj, include, version)
    return out


def is_list(res: Resource, body: Obj) -> bool:
    return body.get("kind") == res.list_kind and isinstance(body.get("items"), list)


def table(res: Resource, body: Obj, query: Mapping[str, str], version: str = "v1",
          headers: bool = True) -> Obj:
    """`body` (one object or a list) as a Table, keeping the list's resourceVersion/continue."""
    include = include_option(query)
    items = body["items"] if is_list(res, body) else [body]
    meta: Obj = {}
    source = body.get("metadata") or {}
    for key in ("resourceVersion", "continue", "remainingItemCount"):
        if source.get(key) not in (None, ""):
            meta[key] = source[key]
    out: Obj = {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": meta}
    # Go's `columnDefinitions` has no omitempty: a headerless table (a watch's later events)
    # carries null
    out["columnDefinitions"] = ([c.definition() for c in printer_for(res).columns]
                                if headers else None)
    out["rows"] = [row(res, item, include, version) for item in items]
    return out
