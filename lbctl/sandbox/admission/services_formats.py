"""What Service validation reports that no other resource does, with upstream's exact texts.

Most formats a Service is checked against (port numbers, IANA port names, IPs, CIDRs, DNS names)
are apimachinery's shared ones in `lbctl.sandbox.name_formats`. What remains here is the
Service's own: the special-address refusals for externalIPs (`ValidateNonSpecialIP`), the errors
whose bad value Go prints with `%#v` (a struct or a typed slice, which the generic `FieldError`
rendering cannot produce: `GoRendered` and the `go_*` renderers), and `rejected`, the 422 that
carries a Service's field errors. Clients and users match on these texts, so they are upstream's
word for word.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lbctl.sandbox.admission.services_fields import service_name, text
from lbctl.sandbox.errors import ERROR_TYPES, ApiError, FieldError, invalid, invalid_object
from lbctl.sandbox.name_formats import parse_ip


def rejected(svc: Mapping[str, Any], errors: list[FieldError]) -> ApiError:
    """The 422 kube-apiserver answers with when a Service has `errors`."""
    return invalid_object("Service", "", service_name(svc), errors)


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


def invalid_rendered(path: str, rendered: str, detail: str) -> GoRendered:
    """An "Invalid value" error whose value is shown as `rendered` (a `go_slice`, say)."""
    return GoRendered("FieldValueInvalid", path, rendered=rendered, detail=detail)


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


def go_field_slice(spec: Mapping[str, Any], key: str, type_name: str) -> str:
    """`go_slice` of the []string field `key` as the request sent it (absent: nil)."""
    value = spec.get(key)
    return go_slice(type_name, [text(v) for v in value] if isinstance(value, list) else None)


def go_service_port_key(protocol: Any, port: Any) -> str:
    """`%#v` of the `core.ServicePort{Protocol, Port}` key upstream reports duplicates with."""
    return (f"core.ServicePort{{Name:\"\", Protocol:{go_quote(protocol)}, "
            f"AppProtocol:(*string)(nil), Port:{port}, "
            "TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}")
