"""An OpenAPI v2 document encoded as gnostic's `openapi.v2.Document` protobuf.

kubectl before 1.27 validates `create -f` input on the client against the protobuf
`/openapi/v2` (`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) and fails
without it. The sandbox must not depend on a protobuf runtime (the `google` namespace is off
limits for lbctl's core, see pyproject's import contracts), and only a small part of the message
set is needed, so this module writes the wire format directly: field numbers are those of
gnostic's `openapiv2/OpenAPIv2.proto`. Vendor extensions travel as `Any.yaml` text; JSON is YAML,
so each value is its JSON encoding, which kube-openapi parses back with a YAML decoder.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

import orjson

JSON_OBJ = dict[str, Any]


# -- wire format ----------------------------------------------------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1  # negative int64s are ten-byte two's complement
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def message(number: int, body: bytes) -> bytes:
    """A length-delimited field: an embedded message, string or bytes."""
    return _tag(number, 2) + _varint(len(body)) + body


def string(number: int, value: str) -> bytes:
    return message(number, value.encode()) if value else b""


def strings(number: int, values: Iterable[str]) -> bytes:
    return b"".join(message(number, v.encode()) for v in values)


def boolean(number: int, value: bool) -> bytes:
    return _tag(number, 0) + b"\x01" if value else b""


def int64(number: int, value: int) -> bytes:
    return _tag(number, 0) + _varint(value) if value else b""


def double(number: int, value: float) -> bytes:
    return _tag(number, 1) + struct.pack("<d", value) if value else b""


# -- gnostic messages -----------------------------------------------------------------------
def any_yaml(value: Any) -> bytes:
    """`Any{yaml: ...}`."""
    return string(2, orjson.dumps(value).decode())


def named(number: int, name: str, value: bytes) -> bytes:
    """A `Named*` pair (name = 1, value = 2) as field `number` of the enclosing message."""
    return message(number, string(1, name) + message(2, value))


def extensions(number: int, obj: JSON_OBJ) -> bytes:
    return b"".join(named(number, k, any_yaml(v)) for k, v in obj.items() if k.startswith("x-"))


_SCHEMA_SCALARS: dict[str, Callable[[Any], bytes]] = {
    "$ref": lambda v: string(1, v), "format": lambda v: string(2, v),
    "title": lambda v: string(3, v), "description": lambda v: string(4, v),
    "default": lambda v: message(5, any_yaml(v)), "multipleOf": lambda v: double(6, v),
    "maximum": lambda v: double(7, v), "exclusiveMaximum": lambda v: boolean(8, v),
    "minimum": lambda v: double(9, v), "exclusiveMinimum": lambda v: boolean(10, v),
    "maxLength": lambda v: int64(11, v), "minLength": lambda v: int64(12, v),
    "pattern": lambda v: string(13, v), "maxItems": lambda v: int64(14, v),
    "minItems": lambda v: int64(15, v), "uniqueItems": lambda v: boolean(16, v),
    "maxProperties": lambda v: int64(17, v), "minProperties": lambda v: int64(18, v),
    "required": lambda v: strings(19, v),
    "enum": lambda v: b"".join(message(20, any_yaml(i)) for i in v),
    "readOnly": lambda v: boolean(27, v),
}


def schema(obj: JSON_OBJ) -> bytes:
    """`Schema` (field numbers 1..31); unknown keys other than extensions are ignored."""
    parts: list[bytes] = []
    for key, value in obj.items():
        if key in _SCHEMA_SCALARS:
            parts.append(_SCHEMA_SCALARS[key](value))
        elif key == "additionalProperties":
            inner = message(1, schema(value)) if isinstance(value, dict) else boolean(2, value)
            parts.append(message(21, inner))
        elif key == "type":
            parts.append(message(22, strings(1, value if isinstance(value, list) else [value])))
        elif key == "items":
            items = value if isinstance(value, list) else [value]
            parts.append(message(23, b"".join(message(1, schema(i)) for i in items)))
        elif key == "allOf":
            parts.extend(message(24, schema(i)) for i in value)
        elif key == "properties":
            parts.append(message(25, b"".join(named(1, k, schema(v)) for k, v in value.items())))
    parts.append(extensions(31, obj))
    return b"".join(parts)


def _parameter(param: JSON_OBJ) -> bytes:
    """`ParametersItem{parameter: Parameter{body_parameter | non_body_parameter}}`."""
    where = param["in"]
    if where == "body":  # BodyParameter
        body = (string(1, param.get("description", "")) + string(2, param["name"])
                + string(3, where) + boolean(4, param.get("required", False))
                + message(5, schema(param["schema"])))
        return message(1, message(1, body))
    common = (boolean(1, param.get("required", False)) + string(2, where)
              + string(3, param.get("description", "")) + string(4, param["name"]))
    kind = param.get("type", "")
    unique = param.get("uniqueItems", False)
    if where == "query":  # NonBodyParameter.query_parameter_sub_schema (type 6, unique 20)
        return message(1, message(2, message(3, common + string(6, kind) + boolean(20, unique))))
    # NonBodyParameter.path_parameter_sub_schema (type 5, unique 19)
    return message(1, message(2, message(4, common + string(5, kind) + boolean(19, unique))))


def _operation(op: JSON_OBJ) -> bytes:
    responses = b"".join(named(1, code, message(1, string(1, r.get("description", "")) + (
        message(2, message(1, schema(r["schema"]))) if "schema" in r else b"")))
        for code, r in op.get("responses", {}).items())
    return (strings(1, op.get("tags", [])) + string(3, op.get("description", ""))
            + string(5, op.get("operationId", "")) + strings(6, op.get("produces", []))
            + strings(7, op.get("consumes", []))
            + b"".join(message(8, _parameter(p)) for p in op.get("parameters", []))
            + message(9, responses) + strings(10, op.get("schemes", []))
            + extensions(13, op))


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(item: JSON_OBJ) -> bytes:
    ops = b"".join(message(n, _operation(item[m])) for m, n in _METHODS.items() if m in item)
    return ops + b"".join(message(9, _parameter(p)) for p in item.get("parameters", []))


def document(doc: JSON_OBJ) -> bytes:
    """The swagger 2.0 JSON document `doc` as `openapi.v2.Document` bytes."""
    info = doc.get("info", {})
    paths = b"".join(named(2, p, _path_item(i)) for p, i in doc.get("paths", {}).items())
    definitions = b"".join(named(1, n, schema(s)) for n, s in doc.get("definitions", {}).items())
    return (string(1, doc.get("swagger", "2.0"))
            + message(2, string(1, info.get("title", "")) + string(2, info.get("version", "")))
            + message(8, paths) + message(9, definitions) + extensions(16, doc))
