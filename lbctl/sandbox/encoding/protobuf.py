"""Request bodies in kube's protobuf encoding (`application/vnd.kubernetes.protobuf`).

Since 1.32, client-go's typed clients send built-in objects as protobuf, so kubectl 1.32+ does
for every typed command (`create serviceaccount`, `create token`, `create rolebinding`,
`auth can-i`...), as do controllers built on client-go. kube-apiserver decodes the envelope
(`k8s\\0` + runtime.Unknown{typeMeta, raw}) and then the object by its generated.proto field
numbers. This module does the same for the kinds listed in `protobuf_types`, turning the body
into the JSON the rest of the sandbox reads; a kind it does not know is a 415 naming it.
Responses stay JSON, which every client-go accepts.

Decoded like Go fills a struct and re-encodes it as JSON: unset and empty values are dropped
(Go's `omitempty`), except for fields that are pointers upstream, where zero (and an empty
message, e.g. `securityContext: {}`) is meaningful. Embedded (`json:",inline"`) messages join
their parent; `resource.Quantity` and `intstr.IntOrString` become their JSON scalars; repeated
integers are read packed or not, as protobuf parsers must.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from .. import errors
from .protobuf_types import KINDS, MESSAGES, Field

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"


class _Malformed(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Malformed("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, raw value) for each field of a message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise _Malformed("truncated length-delimited field")
            value, pos = data[pos:pos + size], pos + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = int.from_bytes(data[pos:pos + width], "little"), pos + width
        else:
            raise _Malformed(f"unsupported wire type {wire}")
        yield number, wire, value


def _scalar(kind: str, wire: int, raw: Any) -> Any:
    if kind == "string":
        if wire != 2:
            raise _Malformed("a string field is not length-delimited")
        return bytes(raw).decode()
    if kind == "bytes":
        return base64.b64encode(bytes(raw)).decode()
    if kind == "bool":
        return bool(raw)
    if kind == "int":
        return raw - (1 << 64) if raw >= 1 << 63 else raw
    raise _Malformed(f"unknown scalar kind {kind}")


def _time(data: bytes) -> str | None:
    seconds = 0
    for number, _, raw in _fields(data):
        if number == 1:
            seconds = raw - (1 << 64) if raw >= 1 << 63 else raw
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _packed(raw: bytes) -> list[int]:
    """The integers of a packed repeated varint field."""
    out: list[int] = []
    pos = 0
    while pos < len(raw):
        value, pos = _varint(raw, pos)
        out.append(_scalar("int", 0, value))
    return out


def _value(spec: Field, wire: int, raw: Any) -> Any:
    kind = spec.kind
    if kind == "time":
        return _time(bytes(raw))
    if kind.startswith("map:"):
        key, value = "", None
        for number, inner_wire, inner in _fields(bytes(raw)):
            if number == 1:
                key = bytes(inner).decode()
            elif number == 2:
                value = _value(Field("", kind[4:]), inner_wire, inner)
        return key, value
    if kind in MESSAGES:
        return _message(kind, bytes(raw))
    return _scalar(kind, wire, raw)


def _empty(value: Any) -> bool:
    return value is None or value in ("", 0, {}, [])


def _message(name: str, data: bytes) -> Any:
    table = MESSAGES[name]
    out: dict[str, Any] = {}
    inlined: set[str] = set()  # already filtered by the embedded message's own table
    for number, wire, raw in _fields(data):
        spec = table.get(number)
        if spec is None:
            continue  # a field newer than our table: Go would keep it, we cannot name it
        if spec.repeated and spec.kind == "int" and wire == 2:
            out.setdefault(spec.json, []).extend(_packed(bytes(raw)))
            continue
        value = _value(spec, wire, raw)
        if not spec.json:  # embedded upstream: its fields are the parent's
            out.update(value)
            inlined.update(value)
        elif spec.kind.startswith("map:"):
            key, item = value
            out.setdefault(spec.json, {})[key] = item
        elif spec.repeated:
            out.setdefault(spec.json, []).append(value)
        else:
            out[spec.json] = value
    if name == "ExtraValue":
        return out.get("items", [])
    if name == "IntOrString":  # type 1 is a string, 0 an int
        return out.get("strVal", "") if out.get("type") == 1 else out.get("intVal", 0)
    if name == "Quantity":  # its canonical string; the zero Quantity prints as "0"
        return out.get("string") or "0"
    kept = inlined | {f.json for f in table.values() if f.pointer}
    return {k: v for k, v in out.items() if not _empty(v) or (k in kept and v is not None)}


def decode(raw: bytes) -> dict[str, Any]:
    """A protobuf request body as the JSON object it stands for (400/415 when it cannot be)."""
    if not raw.startswith(MAGIC):
        raise errors.bad_request("provided object is not protobuf: the body does not start "
                                 "with the 'k8s\\x00' prefix")
    try:
        api_version, kind, inner = "", "", b""
        for number, _, value in _fields(raw[len(MAGIC):]):
            if number == 1:  # runtime.TypeMeta
                for field, _, text in _fields(bytes(value)):
                    if field == 1:
                        api_version = bytes(text).decode()
                    elif field == 2:
                        kind = bytes(text).decode()
            elif number == 2:
                inner = bytes(value)
        message = KINDS.get((api_version, kind))
        if message is None:
            raise errors.ApiError(415, "UnsupportedMediaType",
                                  f"the sandbox cannot decode {kind} ({api_version}) from "
                                  f"{CONTENT_TYPE} yet; send it as application/json")
        body = _message(message, inner)
    except (_Malformed, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"unable to decode the {CONTENT_TYPE} body: {exc}") from exc
    body.setdefault("metadata", {})
    return {"apiVersion": api_version, "kind": kind, **body}
