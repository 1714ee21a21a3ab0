"""Strategic merge patch, the server-side half of k8s.io/apimachinery/pkg/util/strategicpatch.

kubectl (apply, patch, edit) and the official clients send `application/strategic-merge-patch+json`
by default, and what they get back depends on the details of this algorithm: which lists merge by
key and which are replaced, where new list items land, what `$patch`, `$retainKeys`,
`$deleteFromPrimitiveList/<list>` and `$setElementOrder/<list>` do. This is a function-by-function
port of `StrategicMergeMapPatch` (mergeMap, mergeSlice, mergePatchIntoOriginal, ...) with the Go
struct tags read from the compiled 1.33 schema (`lbctl.sandbox.openapi.spec`).

Errors carry the codes kube-apiserver's `interpretStrategicMergePatchError` gives them: the
mergepatch format errors are 400, lists of lists 422, anything else (a missing merge key, an
unknown `$patch` value, ...) reaches the client as a bare 500 with the Go error text.
"""

from __future__ import annotations

from typing import Any

from lbctl.sandbox.encoding.strategic_merge_lists import (
    DIRECTIVE,
    bad_arg_type,
    element_type,
    find,
    go_format,
    hashable,
    key_equal,
    no_merge_key,
    normalize_order,
    partition,
    raw_error,
)
from lbctl.sandbox.errors import ApiError
from lbctl.sandbox.openapi.spec import ARRAY, MAP, NO_PATCH, STRUCT, FieldPatch, Node

RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
SET_ELEMENT_ORDER = "$setElementOrder"

BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
BAD_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def copy_json(value: Any) -> Any:
    """Deep copy of a JSON value (much faster than copy.deepcopy)."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def strategic_merge(original: dict[str, Any], patch: dict[str, Any], schema: Node) -> Any:
    """StrategicMergeMapPatch(original, patch, schema) on copies: the inputs are not touched."""
    return _merge_map(copy_json(original), copy_json(patch), schema)


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: Node | None) -> Any:
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == "replace":
            del patch[DIRECTIVE]
            return patch
        if directive == "delete":
            return {}
        raise raw_error(f"unknown patch type: {go_format(directive)} in map: {go_format(patch)}")
    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, schema)
    for name, value in list(patch.items()):
        delete_list = name.startswith(DELETE_FROM_PRIMITIVE_LIST)
        key = _list_key(name, DELETE_FROM_PRIMITIVE_LIST) if delete_list else name
        if value is None:
            original.pop(key, None)
            continue
        if key not in original or type(original[key]) is not type(value):
            if not delete_list:
                kept, keep = _remove_directives(_discard_nulls(value))
                if keep:
                    original[key] = kept
                else:
                    original.pop(key, None)
            continue
        current = original[key]
        child, tags = schema.child(key) if schema is not None else (None, NO_PATCH)
        strategy = _strategy(tags)
        if isinstance(current, dict):
            original[key] = value if strategy == "replace" else _merge_map(current, value, child)
        elif isinstance(current, list):
            if strategy == "merge" or delete_list:
                item = child.elem if child is not None and child.kind == ARRAY else None
                original[key] = _merge_list(current, value, item, tags.merge_key, delete_list)
            else:
                original[key] = value
        else:
            original[key] = value
    return original


def _merge_list(original: list[Any], patch: list[Any], schema: Node | None, merge_key: str,
                delete_list: bool) -> list[Any]:
    """mergeSlice: merge by key (maps) or set union (primitives), then restore the order."""
    if not original and not patch:
        return original
    element = element_type(original, patch)
    if element is not dict:
        if delete_list:
            doomed = {hashable(item) for item in patch}
            return [item for item in original if hashable(item) not in doomed]
        merged = list({hashable(item): item for item in original + patch}.values())
    else:
        if not merge_key:
            what = {STRUCT: "struct", MAP: "map"}.get(schema.kind if schema else STRUCT, "ptr")
            raise raw_error(f"cannot merge lists without merge key for {what}")
        original, patch = _special_elements(original, patch, merge_key)
        merged = list(original)
        for item in patch:
            if merge_key not in item:
                raise no_merge_key(item, merge_key)
            found = find(merged, merge_key, item[merge_key])
            if found is None:
                merged.append(item)
            else:
                merged[found] = _merge_map(merged[found], item, schema)
    patch_items, server_only = partition(merged, patch, merge_key)
    return normalize_order(patch_items, server_only, patch, original, merge_key, element)


def _special_elements(original: list[Any], patch: list[Any],
                      merge_key: str) -> tuple[list[Any], list[Any]]:
    """mergeSliceWithSpecialElements: apply `$patch: delete|replace` items of a merging list."""
    rest: list[Any] = []
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            rest.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise no_merge_key(item, merge_key)
            while (found := find(original, merge_key, item[merge_key])) is not None:
                original = original[:found] + original[found + 1:]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise raw_error("merging lists cannot yet be specified in the patch")
        else:
            raise raw_error(f"unknown patch type: {go_format(directive)} in map: {go_format(item)}")
    return (rest, []) if replace else (original, rest)


def _merge_ordered_lists(original: dict[str, Any], patch: dict[str, Any],
                         schema: Node | None) -> None:
    """mergePatchIntoOriginal: merge each list that has a `$setElementOrder/<list>`, in order."""
    for directive, order in list(patch.items()):
        if not directive.startswith(SET_ELEMENT_ORDER):
            continue
        del patch[directive]
        if not isinstance(order, list):
            raise raw_error(bad_arg_type([], order))
        key = _list_key(directive, SET_ELEMENT_ORDER)
        current, patched = original.get(key), patch.get(key)
        for side, found in ((original, current), (patch, patched)):
            if key in side and not isinstance(found, list):
                raise raw_error(bad_arg_type([], found))
        child, tags = schema.child(key) if schema is not None else (None, NO_PATCH)
        merge_key = tags.merge_key
        _check_order(patched or [], order, merge_key)
        if key in original and key in patch:
            item = child.elem if child is not None and child.kind == ARRAY else None
            merged = (_merge_list(current or [], patched or [], item, merge_key, False)
                      if _strategy(tags) == "merge" else patched or [])
        elif key in patch:
            merged = _remove_directives(patched)[0]
        elif key in original:
            merged = current or []
        else:
            continue
        element = element_type(current or [], patched or [])
        patch_items, server_only = partition(merged, order, merge_key)
        original[key] = normalize_order(patch_items, server_only, order, current or [],
                                         merge_key, element)
        patch.pop(key, None)


def _check_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """validatePatchWithSetOrderList: patch items must appear in `order`, in the same order."""
    if not order or not patch_list:
        return
    items = [i for i in patch_list if _directive(i) != "delete"] if merge_key else patch_list
    at = seen = 0
    while at < len(items) and seen < len(order):
        if isinstance(items[at], dict) and DIRECTIVE in items[at]:
            at += 1
            continue
        if key_equal(items[at], order[seen], merge_key):
            at += 1
        seen += 1
    if at < len(items) and seen >= len(order):
        raise raw_error(f"the order in patch list:\n{go_format(patch_list)}\n doesn't match "
                   f"{SET_ELEMENT_ORDER} list:\n{go_format(order)}")


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """applyRetainKeysDirective: drop the keys of `original` that `$retainKeys` leaves out."""
    if RETAIN_KEYS not in patch:
        return
    keys = patch.pop(RETAIN_KEYS)
    if not isinstance(keys, list):
        raise _bad_request(BAD_RETAIN_KEYS)
    retained = {key for key in keys if isinstance(key, str)}
    for key, value in patch.items():
        skip = key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)) or value is None
        if not skip and key not in retained:
            raise _bad_request(BAD_RETAIN_KEYS)
    for key in [key for key in original if key not in retained]:
        del original[key]


def _remove_directives(value: Any) -> tuple[Any, bool]:
    """removeDirectives: drop maps carrying `$patch` from a value taken from the patch as is."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        return {k: v for k, (v, keep) in
                ((k, _remove_directives(v)) for k, v in value.items()) if keep}, True
    if isinstance(value, list):
        return [v for v, keep in map(_remove_directives, value) if keep], True
    return value, True


def _discard_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _discard_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_discard_nulls(item) for item in value]
    return value


def _strategy(tags: FieldPatch) -> str:
    """extractRetainKeysPatchStrategy: the strategy besides retainKeys ("" when none)."""
    return next((s for s in tags.strategy.split(",") if s and s != "retainKeys"), "")


def _list_key(key: str, prefix: str) -> str:
    """The list a `$deleteFromPrimitiveList/<list>` or `$setElementOrder/<list>` key names."""
    head, slash, rest = key.partition("/")
    if not slash or head != prefix:
        bad = BAD_PRIMITIVE_LIST if prefix == DELETE_FROM_PRIMITIVE_LIST else BAD_SET_ELEMENT_ORDER
        raise _bad_request(bad)
    return rest


def _directive(item: Any) -> Any:
    return item.get(DIRECTIVE) if isinstance(item, dict) else None


