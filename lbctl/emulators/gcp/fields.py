"""Reading a request body field by field, refusing what GCE refuses, naming the field.

GCE answers a bad field with 400 `invalid` ("Invalid value for field 'resource.ports': ...") and
ignores output-only fields sent back (a client may PUT what it read). A field this emulator
does not model is refused with 501 naming it, rather than accepted and silently dropped: a
provider relying on it would otherwise pass here and fail in the cloud.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from typing import Any

from .errors import GceError, invalid, not_implemented, required

LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
PORT_RANGE = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")
OUTPUT_ONLY = frozenset({"kind", "id", "creationTimestamp", "selfLink", "selfLinkWithId",
                         "region", "zone", "status", "users", "size", "usedBy",
                         "labelFingerprint"})
"""Fields a client may send back from a read; ignored (the region and zone are checked)."""


class Body:
    """A JSON object from a request; `where` prefixes the field names in errors."""

    def __init__(self, data: object, where: str = "resource",
                 supported: Collection[str] = (), ignored: Collection[str] = OUTPUT_ONLY
                 ) -> None:
        if not isinstance(data, dict):
            raise invalid(where, data, "Expected an object.")
        self.data: dict[str, Any] = data
        self.where = where
        if supported:
            for name in data:
                if name not in supported and name not in ignored:
                    raise not_implemented(f"Field '{self.field(name)}'")

    def field(self, name: str) -> str:
        return f"{self.where}.{name}"

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str) -> Any:
        return self.data.get(name)

    def text(self, name: str, default: str | None = None, *, need: bool = False,
             max_len: int = 0) -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            if need and default is None:
                raise required(self.field(name))
            return default
        if not isinstance(value, str):
            raise invalid(self.field(name), value, "Expected a string.")
        if max_len and len(value) > max_len:
            raise invalid(self.field(name), value[:40] + "...",
                          f"Must be at most {max_len} characters long.")
        return value

    def choice(self, name: str, allowed: Collection[str], default: str | None = None,
               *, need: bool = False) -> str | None:
        value = self.text(name, default, need=need)
        if value is not None and value not in allowed:
            raise invalid(self.field(name), value,
                          f"Must be one of [{', '.join(sorted(allowed))}].")
        return value

    def option(self, name: str, allowed: Collection[str], default: str) -> str:
        """`choice` with a default: never None."""
        value = self.choice(name, allowed, default)
        return default if value is None else value

    def integer(self, name: str, low: int, high: int, default: int | None = None) -> int | None:
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(self.field(name), value, "Expected an integer.")
        if not low <= value <= high:
            raise invalid(self.field(name), value, f"Must be between {low} and {high}.")
        return value

    def boolean(self, name: str, default: bool | None = None) -> bool | None:
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise invalid(self.field(name), value, "Expected a boolean.")
        return value

    def strings(self, name: str) -> list[str]:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid(self.field(name), value, "Expected a list of strings.")
        return list(value)

    def child(self, name: str, supported: Collection[str] = ()) -> Body | None:
        value = self.data.get(name)
        return None if value is None else Body(value, self.field(name), supported, ())

    def children(self, name: str, supported: Collection[str] = ()) -> list[Body]:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise invalid(self.field(name), value, "Expected a list.")
        return [Body(v, f"{self.field(name)}[{i}]", supported, ()) for i, v in enumerate(value)]

    def labels(self, name: str = "labels") -> dict[str, str]:
        value = self.data.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise invalid(self.field(name), value, "Expected a map of strings.")
        if len(value) > 64:
            raise invalid(self.field(name), len(value), "At most 64 labels are allowed.")
        for key, item in value.items():
            if not LABEL_KEY.fullmatch(key):
                raise invalid(f"{self.field(name)}.key", key,
                              "Label keys must start with a lowercase letter and contain only "
                              "lowercase letters, digits, '_' and '-' (at most 63).")
            if not isinstance(item, str) or not LABEL_VALUE.fullmatch(item):
                raise invalid(f"{self.field(name)}.value", item,
                              "Label values may contain only lowercase letters, digits, '_' "
                              "and '-' (at most 63).")
        return dict(value)


def port_range(value: str, field: str) -> tuple[int, int]:
    """`"80"` or `"8000-8080"` -> (low, high), 1..65535."""
    match = PORT_RANGE.fullmatch(value)
    if match is None:
        raise invalid(field, value, "Must be a port or a range of ports ('80', '80-90').")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not 1 <= low <= high <= 65535:
        raise invalid(field, value, "Ports must be between 1 and 65535, low to high.")
    return low, high


def cidr(value: str, field: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise invalid(field, value, "Must be an IP range in CIDR notation.") from None


def ipv4(value: str, field: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise invalid(field, value, "Must be an IPv4 address.") from None


def check_region(body: Body, region: str) -> None:
    """A `region` sent back must be the request's own (any link form)."""
    value = body.raw("region")
    if isinstance(value, str) and value and value.rstrip("/").rsplit("/", 1)[-1] != region:
        raise GceError(400, "invalid", f"Invalid value for field 'resource.region': "
                                       f"'{value}'. Does not match the request's region.")
