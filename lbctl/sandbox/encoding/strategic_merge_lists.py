"""How strategic merge patch matches, orders and reports on list items.

The list half of the port of k8s.io/apimachinery/pkg/util/strategicpatch used by
`lbctl.sandbox.encoding.strategic_merge`: Go interface equality for merge keys, the order rules of
`normalizeElementOrder` (and `$setElementOrder`), and errors worded as the Go code words them.
"""

from __future__ import annotations

from typing import Any

from lbctl.sandbox.errors import ApiError

DIRECTIVE = "$patch"
GENERIC_422 = "the server rejected our request due to an error in our request"


def unprocessable() -> ApiError:
    """errors.NewGenericServerResponse(422, ...): the Go error text is not passed on."""
    return ApiError(422, "Invalid", GENERIC_422)


def raw_error(message: str) -> ApiError:
    """A plain Go error, which ErrorToAPIStatus turns into 500 with an empty reason."""
    return ApiError(500, "", message)


def normalize_order(patch_items: list[Any], server_only: list[Any], patch_order: list[Any],
                    server_order: list[Any], merge_key: str, element: type) -> list[Any]:
    """normalizeElementOrder: patch items in patch order, server items in server order, merged.

    Without `$setElementOrder`, a patch item that is new to the list lands before the server's
    items, as upstream does.
    """
    left = _sort_by(server_only, server_order, merge_key, element)
    right = _sort_by(patch_items, patch_order, merge_key, element)
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i < len(left) and j < len(right):
            li = _index(server_order, left[i], merge_key, element)
            ri = _index(server_order, right[j], merge_key, element)
            take_left = li >= 0 and ri >= 0 and li < ri
        else:
            take_left = j >= len(right)
        if take_left:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    return out


def _sort_by(items: list[Any], order: list[Any], merge_key: str, element: type) -> list[Any]:
    """normalizeSliceOrder: stable sort by position in `order`, `$patch: delete` items last."""
    doomed: list[Any] = []
    if element is dict:
        for item in items + order:
            if not isinstance(item, dict):
                raise raw_error(bad_arg_type({}, item))
            if merge_key not in item:
                raise no_merge_key(item, merge_key)
        doomed = [item for item in items if item.get(DIRECTIVE) == "delete"]
        items = [item for item in items if item.get(DIRECTIVE) != "delete"]
    places = [_index(order, item, merge_key, element) for item in items]
    ranked = sorted(range(len(items)), key=lambda n: places[n] if places[n] >= 0 else len(order))
    return [items[n] for n in ranked] + doomed


def partition(items: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """partition{Primitives,Maps}ByPresentInList: (items found in `by`, the others)."""
    inside: list[Any] = []
    outside: list[Any] = []
    if not merge_key:
        present = {hashable(item) for item in by}
        for item in items:
            (inside if hashable(item) in present else outside).append(item)
        return inside, outside
    for item in items:
        if not isinstance(item, dict):
            raise raw_error(bad_arg_type({}, item))
        if merge_key not in item:
            raise no_merge_key(item, merge_key)
        found = find(by, merge_key, item[merge_key]) is not None
        (inside if found else outside).append(item)
    return inside, outside


def find(items: list[Any], merge_key: str, value: Any) -> int | None:
    """findMapInSliceBasedOnKeyValue: index of the map whose merge key equals `value`."""
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise raw_error(f"value for key {index} is not a map")
        if merge_key in item and same(item[merge_key], value):
            return index
    return None


def _index(items: list[Any], value: Any, merge_key: str, element: type) -> int:
    if element is dict:
        wanted = value.get(merge_key) if isinstance(value, dict) else None
        for index, item in enumerate(items):
            if same(item.get(merge_key) if isinstance(item, dict) else None, wanted):
                return index
        return -1
    return next((n for n, item in enumerate(items) if same(item, value)), -1)


def key_equal(left: Any, right: Any, merge_key: str) -> bool:
    """mergeKeyValueEqual: the items themselves (primitives) or their merge keys are equal."""
    if not merge_key:
        return same(left, right)
    for side in (left, right):
        if not isinstance(side, dict):
            raise raw_error(bad_arg_type({}, side))
        if merge_key not in side:
            raise no_merge_key(side, merge_key)
    return same(left[merge_key], right[merge_key])


def element_type(*lists: list[Any]) -> type:
    """sliceElementType: the one Go type of all items; lists of lists are refused (422)."""
    found: type | None = None
    for items in lists:
        for item in items:
            if found is None:
                found = type(item)
                if found is list:
                    raise unprocessable()
            elif type(item) is not found:
                raise raw_error(f"list element types are not identical: {go_format(list(lists))}")
    if found is None:
        raise raw_error("no elements in any of the given slices")
    return found


def same(left: Any, right: Any) -> bool:
    """Go interface equality: same dynamic type and same value."""
    return type(left) is type(right) and bool(left == right)


def hashable(value: Any) -> Any:
    """A set/dict key with Go map-key equality for primitives (maps and lists by identity)."""
    return (type(value), value) if not isinstance(value, dict | list) else (type(value), id(value))


def no_merge_key(item: dict[str, Any], merge_key: str) -> ApiError:
    return raw_error(f"map: {go_format(item)} does not contain declared merge key: {merge_key}")


_GO_TYPES = {dict: "map[string]interface {}", list: "[]interface {}", str: "string",
             int: "int64", float: "float64", bool: "bool"}


def bad_arg_type(expected: Any, actual: Any) -> str:
    return (f"expected a {_GO_TYPES[type(expected)]}, "
            f"but received a {_GO_TYPES.get(type(actual), '%!s(<nil>)')}")


def go_format(value: Any) -> str:
    """Go's %v for a decoded JSON value (maps print sorted by key)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(item) for item in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)
