"""What kube-apiserver's JSON decoder does to a request body, checked against the 1.33 schema.

kube-apiserver decodes every write into a Go struct (sigs.k8s.io/json, case-sensitive), so: unknown
fields are dropped and, per `fieldValidation`, warned about (Warn, the default), rejected (Strict)
or ignored (Ignore); a value of the wrong JSON type fails the whole request with 400; and what gets
stored is the struct encoded again. `decode` reproduces that for every kind the 1.33 OpenAPI schema
defines, with the upstream error texts, by walking the compiled nodes of
`lbctl.sandbox.openapi.spec` (no JSON-schema validator: it runs on every write). Kinds the schema
does not know (custom resources) pass through untouched.

Stored form, as the Go round trip leaves it: `null` struct fields are dropped; `null` map values and
list items become their zero value ("" for strings); timestamps are normalised to UTC seconds
(`v1.Time`) or microseconds (`v1.MicroTime`); numeric quantities become strings.

`decode_patched` is the same for the result of a PATCH, whose failures upstream words differently.
`validate_full` is the slow, complete check (jsonschema via kubernetes-validate), for tests.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate

from lbctl.sandbox.encoding.go_scalars import (
    QUANTITY_WRONG,
    base64_problem,
    json_kind,
    quantity_problem,
    timestamp,
)
from lbctl.sandbox.errors import bad_request, invalid, invalid_object
from lbctl.sandbox.openapi import spec as openapi
from lbctl.sandbox.openapi.spec import (
    ANY,
    ARRAY,
    BOOL,
    BYTES,
    FLOAT,
    INT,
    INT_OR_STRING,
    MAP,
    MICRO_TIME,
    QUANTITY,
    STRING,
    STRUCT,
    TIME,
    FieldPatch,
    Node,
    definition,
    definition_name,
    patch_info,
    resolve,
)

__all__ = ["FieldPatch", "Node", "decode", "decode_patched", "definition", "definition_name",
           "patch_info", "resolve", "validate_full"]

FIELD_VALIDATIONS = ("Strict", "Warn", "Ignore")
MAX_STRICT_ERRORS = 100  # sigs.k8s.io/json stops collecting there
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


class _Failure(Exception):
    """The decoder's error text, before the handler wraps it into a Status."""


class _Abort(_Failure):
    """An error returned by a Go `UnmarshalJSON` method: decoding stops right there."""


class _MapKey(str):
    """A map key on the path stack: part of strict-error paths, not of Go type-error fields."""

    __slots__ = ()


class _State:
    __slots__ = ("first_error", "path", "root", "unknown")

    def __init__(self, root: Node) -> None:
        self.root = root
        self.path: list[str | int] = []
        self.unknown: list[str] = []
        self.first_error: str | None = None  # Go saves the first type error and goes on

    def type_error(self, value: Any, go_type: str, what: str = "") -> str:
        """Go's UnmarshalTypeError, naming the innermost struct and the field path from the root."""
        owner, fields = self.root.name, []
        current: Node | None = self.root
        for seg in self.path:
            if type(seg) is str and current is not None:
                owner = current.name
                fields.append(seg)
                current = current.fields.get(seg)
            elif current is not None:
                current = current.elem
        where = f"Go struct field {owner}.{'.'.join(fields)}" if fields else "Go value"
        return f"json: cannot unmarshal {what or json_kind(value)} into {where} of type {go_type}"

    def save(self, message: str) -> None:
        if self.first_error is None:
            self.first_error = message


def decode(obj: dict[str, Any], api_version: str, kind: str,
           field_validation: str = "Warn") -> tuple[dict[str, Any], list[str]]:
    """Decode a create/update body as kube-apiserver does: (stored form, warnings), or 400.

    `field_validation` is the `fieldValidation` query parameter ("" means the default, Warn).
    Warnings are the texts the server sends as `Warning: 299 - "<text>"` headers.
    """
    try:
        return _decode(obj, api_version, kind, field_validation)
    except _Failure as failure:
        version = api_version.rpartition("/")[2]
        raise bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: '
                          f"{failure}") from None


def decode_patched(obj: dict[str, Any], api_version: str, kind: str, field_validation: str,
                   patch_value: str) -> tuple[dict[str, Any], list[str]]:
    """`decode` for the result of a PATCH, whose failures kube-apiserver reports as 422 Invalid
    on the field "patch": ` "" is invalid: patch: Invalid value: "<patch_value>": <error>`.

    `patch_value` is what upstream prints there: the patched object's JSON for JSON and merge
    patches, Go's `%+v` of the patch map for strategic merge patches
    (`strategic_merge_lists.go_format(patch)`).
    """
    try:
        return _decode(obj, api_version, kind, field_validation)
    except _Failure as failure:
        raise invalid_object("", "", "", [invalid("patch", patch_value, str(failure))]) from None


def _decode(obj: dict[str, Any], api_version: str, kind: str,
            field_validation: str) -> tuple[dict[str, Any], list[str]]:
    mode = field_validation or "Warn"
    if mode not in FIELD_VALIDATIONS:
        raise ValueError(f"fieldValidation must be one of {FIELD_VALIDATIONS}, not {mode!r}")
    root = openapi.root(api_version, kind)
    if root is None:
        return obj, []
    state = _State(root)
    out = _struct(obj, root, state)  # an _Abort stops it, and is a _Failure
    if state.first_error is not None:
        raise _Failure(state.first_error)
    if not state.unknown or mode == "Ignore":
        return out, []
    found = [f'unknown field "{path}"' for path in dict.fromkeys(state.unknown)]
    found = found[:MAX_STRICT_ERRORS]
    if mode == "Strict":
        raise _Failure("strict decoding error: " + ", ".join(found))
    return out, found


def _struct(obj: dict[str, Any], node: Node, state: _State) -> dict[str, Any]:
    fields = node.fields
    path = state.path
    out: dict[str, Any] = {}
    for key, value in obj.items():
        child = fields.get(key)
        if child is None:
            state.unknown.append(_json_path(path, key))
        elif value is None:
            continue  # Go: null leaves the field unset, and unset fields are not encoded
        elif child.kind == STRING and type(value) is str:
            out[key] = value
        else:
            path.append(key)
            out[key] = _value(value, child, state)
            path.pop()
    return out


def _value(value: Any, node: Node, state: _State) -> Any:
    kind = node.kind
    vtype = type(value)
    if kind == STRUCT:
        if vtype is dict:
            return _struct(value, node, state)
    elif kind == STRING:
        if vtype is str:
            return value
    elif kind == INT:
        if vtype is int:
            low, high = _INT_RANGE[node.go_type]
            if low <= value <= high:
                return value
            state.save(state.type_error(value, node.go_type, f"number {value!r}"))
            return value
        if vtype is float:
            state.save(state.type_error(value, node.go_type, f"number {value!r}"))
            return value
    elif kind == ARRAY:
        if vtype is list:
            return _array(value, node, state)
    elif kind == MAP:
        if vtype is dict:
            return _map(value, node, state)
    elif kind == BOOL:
        if vtype is bool:
            return value
    elif kind == FLOAT:
        if vtype is int or vtype is float:
            return value
    elif kind == ANY:
        return value
    else:
        return _special(value, node, state)
    state.save(state.type_error(value, node.go_type))
    return value


def _array(items: list[Any], node: Node, state: _State) -> list[Any]:
    elem = node.elem
    assert elem is not None
    if elem.kind == STRING and all(type(item) is str for item in items):
        return list(items)
    path = state.path
    out: list[Any] = []
    path.append(0)
    for index, item in enumerate(items):
        path[-1] = index
        out.append(_zero(elem) if item is None else _value(item, elem, state))
    path.pop()
    return out


def _map(obj: dict[str, Any], node: Node, state: _State) -> dict[str, Any]:
    elem = node.elem
    assert elem is not None
    if elem.kind == STRING and all(type(value) is str for value in obj.values()):
        return dict(obj)
    path = state.path
    out: dict[str, Any] = {}
    for key, value in obj.items():
        path.append(_MapKey(key))
        out[key] = _zero(elem) if value is None else _value(value, elem, state)
        path.pop()
    return out


def _special(value: Any, node: Node, state: _State) -> Any:
    """Types with their own Go UnmarshalJSON (errors abort), and base64 `[]byte`."""
    kind = node.kind
    vtype = type(value)
    if kind == INT_OR_STRING:
        if vtype is str:
            return value
        if vtype is int and _INT_RANGE["int32"][0] <= value <= _INT_RANGE["int32"][1]:
            return value
        number = vtype is int or vtype is float
        raise _Abort(state.type_error(value, "int32", f"number {value!r}" if number else ""))
    if kind == QUANTITY:
        if vtype is str:
            problem = quantity_problem(value)
            if problem:
                raise _Abort(problem)
            return value.strip()
        if vtype is int or vtype is float:
            return str(int(value)) if value == int(value) else repr(value)
        raise _Abort(QUANTITY_WRONG)
    if kind in (TIME, MICRO_TIME):
        if vtype is not str:
            raise _Abort(state.type_error(value, "string"))
        try:
            return timestamp(value, micro=kind == MICRO_TIME)
        except ValueError as err:
            raise _Abort(str(err)) from None
    if kind == BYTES:
        if vtype is not str:
            state.save(state.type_error(value, "[]uint8"))
        elif (offset := base64_problem(value)) is not None:
            state.save(f"illegal base64 data at input byte {offset}")
        return value
    return value


_ZEROS: dict[int, Any] = {STRING: "", BYTES: "", INT: 0, FLOAT: 0, BOOL: False,
                          INT_OR_STRING: 0, QUANTITY: "0"}


def _zero(node: Node) -> Any:
    """What Go leaves in a map value or list item decoded from `null` (None: stays null)."""
    return {} if node.kind == STRUCT else _ZEROS.get(node.kind)


def _json_path(path: list[str | int], key: str) -> str:
    out = ""
    for seg in path:
        if type(seg) is int:
            out += f"[{seg}]"
        else:
            out = f"{out}.{seg}" if out else str(seg)
    return f"{out}.{key}" if out else key


def validate_full(obj: dict[str, Any]) -> list[str]:
    """Full JSON-schema validation against the strict 1.33 schema; [] when the object is valid.

    Uses kubernetes-validate's own `validate`, which stops at the first error. An object whose
    kind has no 1.33 schema is reported as such rather than passed.
    """
    try:
        kubernetes_validate.validate(obj, "1.33.0", strict=True)
    except kubernetes_validate.ValidationError as err:
        where = ".".join(str(part) for part in err.absolute_path) or "<root>"
        return [f"{where}: {err.message}"]
    except kubernetes_validate.SchemaNotFoundError as err:
        return [str(err.message)]
    except KeyError as err:
        return [f"missing {err.args[0]}"]
    return []

