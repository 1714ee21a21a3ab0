"""The port and IP formats Service validation checks, with apimachinery's exact messages.

kube-apiserver's answers quote `k8s.io/apimachinery/pkg/util/validation` word for word: "must be
between 1 and 65535, inclusive", the IANA port-name rules, the IP and CIDR examples, the
special-address refusals for externalIPs. Clients and users match on these, so they are pure
functions returning the list of problems (empty when the value is fine), like their Go originals.
Names, labels and DNS formats are `lbctl.sandbox.name_formats`, shared with metadata validation.

`GoRendered` covers the few errors whose bad value Go prints with `%#v` (a struct or a typed
slice), which the generic `FieldError` rendering cannot produce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lbctl.sandbox.allocators import parse_cidr, parse_ip
from lbctl.sandbox.errors import ERROR_TYPES, FieldError, invalid
from lbctl.sandbox.name_formats import CIDR_ERROR, max_len_error

_PORT_NAME_CHARSET = re.compile("[-a-z0-9]+")
_PORT_NAME_LETTER = re.compile("[a-z]")

IP_EXAMPLE_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def inclusive_range_error(low: int, high: int) -> str:
    return f"must be between {low} and {high}, inclusive"


def is_valid_port_num(port: Any) -> list[str]:
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return []
    return [inclusive_range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    """IANA_SVC_NAME: at most 15 of [-a-z0-9], a letter, no '--', no hyphen at either end."""
    errs: list[str] = []
    if len(port.encode()) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARSET.fullmatch(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def ip_family(value: str) -> str | None:
    """"IPv4" or "IPv6" for a (sloppily) valid IP, like `netutils.IsIPv6String`; else None."""
    addr = parse_ip(value)
    if addr is None:
        return None
    return "IPv4" if addr.version == 4 else "IPv6"


def is_valid_ip(path: str, value: Any) -> list[FieldError]:
    if isinstance(value, str) and parse_ip(value) is not None:
        return []
    return [invalid(path, value, IP_EXAMPLE_MSG)]


def is_valid_cidr(path: str, value: Any) -> list[FieldError]:
    if isinstance(value, str) and parse_cidr(value) is not None:
        return []
    return [invalid(path, value, CIDR_ERROR)]


def validate_non_special_ip(value: str, path: str) -> list[FieldError]:
    """`ValidateNonSpecialIP`: no unspecified, loopback or link-local addresses."""
    addr = parse_ip(value)
    if addr is None:
        return [invalid(path, value, "must be a valid IP address")]
    errs: list[FieldError] = []
    if addr.is_unspecified:
        errs.append(invalid(path, value, f"may not be unspecified ({value})"))
    if addr.is_loopback:
        errs.append(invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if addr.version == 4:
        link_local, link_multicast = addr.is_link_local, addr.packed[:3] == b"\xe0\x00\x00"
    else:
        packed = addr.packed
        link_local = packed[0] == 0xFE and packed[1] & 0xC0 == 0x80
        link_multicast = packed[0] == 0xFF and packed[1] & 0x0F == 0x02
    if link_local:
        errs.append(invalid(path, value,
                            "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if link_multicast:
        errs.append(invalid(path, value, "may not be in the link-local multicast range "
                                         "(224.0.0.0/24, ff02::/10)"))
    return errs


@dataclass(frozen=True)
class GoRendered(FieldError):
    """A field error whose bad value is already rendered as Go's `%#v` shows it."""

    rendered: str = ""

    def body(self) -> str:
        text = f"{ERROR_TYPES[self.type]}: {self.rendered}"
        return f"{text}: {self.detail}" if self.detail else text


def go_quote(value: Any) -> str:
    """Go's `%q` / `%#v` of a string-typed value (other JSON types shown as they are)."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def go_slice(type_name: str, values: list[Any] | None) -> str:
    """`%#v` of a Go slice such as `[]core.IPFamily{"IPv4"}` (nil prints as `(nil)`)."""
    if values is None:
        return f"[]{type_name}(nil)"
    return f"[]{type_name}{{" + ", ".join(go_quote(v) for v in values) + "}"


def go_service_port_key(protocol: Any, port: Any) -> str:
    """`%#v` of the `core.ServicePort{Protocol, Port}` key upstream reports duplicates with."""
    return (f"core.ServicePort{{Name:\"\", Protocol:{go_quote(protocol)}, "
            f"AppProtocol:(*string)(nil), Port:{port}, "
            "TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}")
