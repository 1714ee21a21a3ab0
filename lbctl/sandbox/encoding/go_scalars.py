"""Go's own parsers for the scalars that Kubernetes types decode themselves.

`metav1.Time`, `resource.Quantity` and `[]byte` have custom JSON decoding in Go, with their own
error texts; `lbctl.sandbox.openapi.schema` uses these to accept, reject and normalise such values
the way kube-apiserver does. `json_kind` names a decoded value the way encoding/json's type errors
do.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

_RFC3339 = "2006-01-02T15:04:05Z07:00"
_RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"
_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)")
_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_QUANTITY = re.compile(r"[+-]?(\d*)(?:\.(\d*))?([eEinumkKMGTP]*[-+]?\d*)")
_QUANTITY_SUFFIXES = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T",
                      "P", "E"}
QUANTITY_WRONG = ("quantities must match the regular expression "
                  "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def timestamp(text: str, micro: bool) -> str:
    """A `Time`/`MicroTime` as Go stores it (UTC, RFC 3339); ValueError with Go's message."""
    if not micro and _CANONICAL_TIME.fullmatch(text):
        try:
            datetime.fromisoformat(text)
            return text
        except ValueError:
            pass  # out of range: the slow path words the error
    match = _TIME.fullmatch(text)
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if match is None:
        layout = _RFC3339_MICRO if micro else _RFC3339
        raise ValueError(f'parsing time {quoted} as "{layout}": cannot parse {quoted} as "2006"')
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if micro and len(fraction or "") != 6:  # RFC3339Micro's ".000000" wants exactly 6 digits
        frac = fraction or ""
        rest, layout = ((frac[6:] + zone, "Z07:00") if len(frac) > 6
                        else (("." + frac if fraction is not None else "") + zone, ".000000"))
        raise ValueError(f'parsing time {quoted} as "{_RFC3339_MICRO}": cannot parse '
                         f'"{rest}" as "{layout}"')
    if zone in ("Z", "z"):
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        when = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        int((fraction or "0")[:6].ljust(6, "0")), tzinfo=tz).astimezone(UTC)
    except ValueError as err:
        field = str(err).split()[0]  # "day is out of range for month" -> Go's "day out of range"
        raise ValueError(f"parsing time {quoted}: {field} out of range") from None
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def quantity_problem(text: str) -> str | None:
    """resource.ParseQuantity's verdict on a string, or None when it parses."""
    text = text.strip()
    match = _QUANTITY.fullmatch(text)
    if not text or match is None:
        return QUANTITY_WRONG
    whole, fraction, suffix = match.groups()
    exponent = len(suffix) > 1 and suffix[0] in "eE" and re.fullmatch(r"[-+]?\d+", suffix[1:])
    if suffix not in _QUANTITY_SUFFIXES and not exponent:
        return "unable to parse quantity's suffix"
    if not whole and fraction == "":  # a lone "."
        return "unable to parse numeric part of quantity"
    return None


def base64_problem(text: str) -> int | None:
    """Offset Go's base64.StdEncoding reports for a bad string, or None when it decodes."""
    data = text.encode()
    count, offset = 0, None
    for index, byte in enumerate(data):
        if byte in (10, 13):
            continue
        if byte == 61:  # '=': padding only at the end of a quantum, then nothing but '='
            rest = data[index:].replace(b"\n", b"").replace(b"\r", b"")
            if count % 4 < 2 or rest.strip(b"=") or len(rest) != 4 - count % 4:
                return index
            return None
        if byte not in _B64:
            return index
        if count % 4 == 0:
            offset = index
        count += 1
    if count % 4:
        return offset
    return None


def json_kind(value: Any) -> str:
    """The JSON kind of a decoded value as encoding/json's `cannot unmarshal KIND into ...`
    errors name it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
