"""The three PATCH content types kube-apiserver accepts, applied to a stored object.

`application/merge-patch+json` (RFC 7386, as evanphx/json-patch implements it),
`application/json-patch+json` (RFC 6902, applied by the `jsonpatch` library) and
`application/strategic-merge-patch+json` (`lbctl.sandbox.encoding.strategic_merge`). Each function
is pure: it returns a new object and never mutates its inputs. Failures raise `ApiError` with the
code and text kube-apiserver's patch handler (apiserver/pkg/endpoints/handlers/patch.go) answers
with; the patched object still has to go through `lbctl.sandbox.openapi.schema.decode` like any
other write.
"""

from __future__ import annotations

from typing import Any

import jsonpatch

from lbctl.sandbox.encoding.go_scalars import json_kind
from lbctl.sandbox.encoding.strategic_merge import copy_json, strategic_merge
from lbctl.sandbox.encoding.strategic_merge_lists import unprocessable
from lbctl.sandbox.errors import ApiError, bad_request
from lbctl.sandbox.openapi import spec as openapi

MAX_JSON_PATCH_OPERATIONS = 10000
JSON_PATCH_OPERATIONS = frozenset({"add", "remove", "replace", "move", "copy", "test"})


def merge_patch(target: Any, patch: Any) -> Any:
    """JSON merge patch: maps merge recursively, `null` deletes, anything else replaces.

    The patch must be an object, as with kube-apiserver's default field validation.
    """
    if patch is None:
        raise bad_request("Invalid JSON Patch")
    if not isinstance(patch, dict):
        raise bad_request("error decoding patch: " + _not_a_map(patch))
    if not isinstance(target, dict):
        return _pruned(patch)
    return _merge_docs(copy_json(target), patch)


def _merge_docs(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            doc.pop(key, None)
        elif not isinstance(doc.get(key), dict):
            doc[key] = _pruned(value)
        elif isinstance(value, dict):
            _merge_docs(doc[key], value)
        else:
            doc[key] = copy_json(value)
    return doc


def _pruned(value: Any) -> Any:
    """A copy without `null` object members (list items stay, even when null)."""
    if isinstance(value, dict):
        return {key: _pruned(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value


def strategic_merge_patch(original: dict[str, Any], patch: Any, api_version: str,
                          kind: str) -> dict[str, Any]:
    """Strategic merge patch driven by the 1.33 schema of `kind`.

    Kinds without a 1.33 schema (custom resources) get merge-patch semantics, lists replaced.
    """
    if patch is None:
        return dict(copy_json(original))  # `null` decodes into an empty patch
    if not isinstance(patch, dict):
        raise bad_request(_not_a_map(patch))
    schema = openapi.root(api_version, kind)
    if schema is None:
        return dict(merge_patch(original, patch))
    merged = strategic_merge(original, patch, schema)
    if not isinstance(merged, dict):
        raise bad_request(_not_a_map(merged))
    return merged


def json_patch(original: Any, ops: Any) -> Any:
    """JSON patch: 400 for a malformed document, 413 past 10000 operations, 422 when an
    operation does not apply (a failed `test` included)."""
    if not isinstance(ops, list):
        raise bad_request("error decoding patch: json: cannot unmarshal "
                          f"{json_kind(ops)} into Go value of type []handlers.jsonPatchOp")
    for op in ops:
        if op is not None and not isinstance(op, dict):
            raise bad_request("error decoding patch: json: cannot unmarshal "
                              f"{json_kind(op)} into Go value of type handlers.jsonPatchOp")
        for field in ("op", "path", "from"):
            value = op.get(field) if op else None
            if value is not None and not isinstance(value, str):
                raise bad_request(
                    f"error decoding patch: json: cannot unmarshal {json_kind(value)} into Go "
                    f"struct field jsonPatchOp.{field} of type string")
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise ApiError(413, "RequestEntityTooLarge",
                       "Request entity too large: The allowed maximum operations in a JSON patch "
                       f"is {MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}")
    if any(not op or op.get("op") not in JSON_PATCH_OPERATIONS for op in ops):
        raise unprocessable()  # evanphx: "Unexpected kind: ..."
    try:
        return jsonpatch.JsonPatch(ops).apply(original)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException,
            KeyError, IndexError, TypeError, ValueError):
        raise unprocessable() from None


def _not_a_map(value: Any) -> str:
    return (f"json: cannot unmarshal {json_kind(value)} into Go value of type "
            "map[string]interface {}")
