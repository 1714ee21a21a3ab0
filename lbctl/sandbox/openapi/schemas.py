"""The 1.33 definitions in OpenAPI form, for `/openapi/v2` and `/openapi/v3` documents.

The project reads the Kubernetes 1.33 definitions from kubernetes-validate's JSON-Schema rendering
(`lbctl.sandbox.openapi.spec`). That rendering differs from what kube-apiserver publishes: types are
`["string", "null"]` lists, objects are closed with `additionalProperties: false`, `apiVersion`
and `kind` carry enums, and IntOrString / Quantity became `oneOf`s. `to_openapi` undoes exactly
that, so clients see the schema the real server serves: references to `#/definitions/<name>`
(v2) or `#/components/schemas/<name>` (v3, wrapped in `allOf` when the field has its own
description, as upstream does), and the struct tags as `x-kubernetes-*` extensions.

`closure` picks the definitions a document needs: the kinds it serves and everything they refer to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import spec as openapi

V2_REFS = "#/definitions/"
V3_REFS = "#/components/schemas/"
_OWN_REFS = "#/$defs/"

INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING_DOC = (
    "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
    "marshalling and unmarshalling, it produces or consumes the inner type.  This allows you "
    "to have, for example, a JSON field that can accept a name or number.")
_QUANTITY_DOC = (
    "Quantity is a fixed-point representation of a number. It provides convenient "
    "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() "
    "accessors.")


def _special(name: str, v3: bool) -> dict[str, Any] | None:
    """IntOrString and Quantity as kube-openapi publishes them (v3 adds their oneOf types)."""
    if name == INT_OR_STRING:
        out: dict[str, Any] = {"description": _INT_OR_STRING_DOC, "type": "string",
                               "format": "int-or-string"}
        if v3:
            del out["type"]
            out["oneOf"] = [{"type": "integer"}, {"type": "string"}]
        return out
    if name == QUANTITY:
        return ({"description": _QUANTITY_DOC, "oneOf": [{"type": "string"}, {"type": "number"}]}
                if v3 else {"description": _QUANTITY_DOC, "type": "string"})
    return None


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def _convert(schema: dict[str, Any], prefix: str, v3: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref":
            out[key] = prefix + _ref_name(value)
        elif key == "type":
            kinds = value if isinstance(value, list) else [value]
            chosen = next((k for k in kinds if k != "null"), None)
            if chosen is not None:
                out[key] = chosen
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _convert(value, prefix, v3)
        elif key == "properties":
            out[key] = {name: _property(name, sub, prefix, v3) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = _convert(value, prefix, v3)
        elif key in ("oneOf", "allOf", "anyOf") and isinstance(value, list):
            out[key] = [_convert(v, prefix, v3) for v in value]
        else:
            out[key] = value
    if v3 and "$ref" in out and len(out) > 1:
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


def _property(name: str, schema: dict[str, Any], prefix: str, v3: bool) -> dict[str, Any]:
    converted = _convert(schema, prefix, v3)
    if name in ("apiVersion", "kind"):
        converted.pop("enum", None)  # added by the JSON-Schema rendering, not upstream
    return converted


def to_openapi(name: str, v3: bool) -> dict[str, Any]:
    """Definition `name` as kube-apiserver's OpenAPI v2 (`v3=False`) or v3 document shows it."""
    special = _special(name, v3)
    if special is not None:
        return special
    return _convert(openapi.definition(name), V3_REFS if v3 else V2_REFS, v3)


def _refs(schema: Any) -> Iterable[str]:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_OWN_REFS):
            yield _ref_name(ref)
        for key, value in schema.items():
            if not key.startswith("x-"):
                yield from _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item)


def closure(roots: Iterable[str]) -> list[str]:
    """`roots` and every definition they refer to, directly or not, sorted by name."""
    seen: set[str] = set()
    todo = [r for r in roots if r]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(r for r in _refs(openapi.definition(name)) if r not in seen)
    return sorted(seen)
