"""Name, label, port, IP and CIDR formats, checked as apimachinery's `pkg/util/validation` does.

Object names, namespaces, label keys and values, annotation keys, finalizers, taint keys and
label selectors are all held to a handful of formats; Services and Nodes add port numbers, IANA
port names, IP addresses and CIDRs. kube-apiserver's error strings for them are part of its
behaviour (kubectl prints them, scripts grep them), so every message here is the exact string of
kube-apiserver 1.33. Each `is_*` check returns its list of problems, empty when the value is
valid, like the Go `IsXxx` helpers; callers wrap them into field errors, except for
`is_valid_ip` and `is_valid_cidr`, which return field errors as their Go originals do.

IPs and CIDRs are parsed here once, the way Go's "sloppy" `netutils` parsers do, for these
checks and for the Service IP allocators alike.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from lbctl.sandbox.errors import FieldError, invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL_MAX = 63
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
CIDR_ERROR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
"""validation.IsValidCIDR's detail."""
IP_EXAMPLE_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
"""validation.IsValidIP's detail."""

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                      "characters or '-', and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + r"(\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                          "characters, '-' or '.', and must start and end with an alphanumeric "
                          "character")
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or "
                      "'-', start with an alphabetic character, and end with an alphanumeric "
                      "character")
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start "
                       "and end with an alphanumeric character")
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric "
                    "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                    "character")

# Go's `^...$` anchors match the whole text only; Python's `$` also matches before a final
# newline, so every check uses fullmatch.
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_PORT_NAME_CHARSET_RE = re.compile("[-a-z0-9]+")
_PORT_NAME_LETTER_RE = re.compile("[a-z]")
_SLOPPY_IPV4_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def empty_error() -> str:
    return "must be non-empty"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError, including its double space before each ` or `."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _size(value: str) -> int:
    """Go measures string length in bytes."""
    return len(value.encode())


def is_dns1123_label(value: str) -> list[str]:
    errs: list[str] = []
    if _size(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if _size(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs: list[str] = []
    if _size(value) > DNS1035_LABEL_MAX:
        errs.append(max_len_error(DNS1035_LABEL_MAX))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """`[prefix/]name`: label keys, annotation keys, finalizers, taint keys."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [("a qualified name "
                 + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT,
                               "MyName", "my.name", "123-abc")
                 + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")]
    if not name:
        errs.append("name part " + empty_error())
    elif _size(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append("name part " + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT,
                                               "MyName", "my.name", "123-abc"))
    return errs


def is_label_value(value: str) -> list[str]:
    errs: list[str] = []
    if _size(value) > LABEL_VALUE_MAX:
        errs.append(max_len_error(LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_path_segment_name(value: str) -> list[str]:
    """path.IsValidPathSegmentName: names that only have to survive as one URL path segment."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return is_path_segment_prefix(value)


def is_path_segment_prefix(value: str) -> list[str]:
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in value]


def _mask_trailing_dash(name: str) -> str:
    """apimachinery's maskTrailingDash, which (faithfully) drops two characters, not one."""
    return name[:max(len(name) - 2, 0)] + "a" if name.endswith("-") else name


def _dns_rule(check: Callable[[str], list[str]]) -> Callable[[str, bool], list[str]]:
    def name_fn(name: str, prefix: bool) -> list[str]:
        return check(_mask_trailing_dash(name) if prefix else name)
    return name_fn


def _path_rule(name: str, prefix: bool) -> list[str]:
    return is_path_segment_prefix(name) if prefix else is_path_segment_name(name)


NAME_RULES: dict[str, Callable[[str, bool], list[str]]] = {
    "subdomain": _dns_rule(is_dns1123_subdomain),  # NameIsDNSSubdomain: most resources, nodes
    "dns1123label": _dns_rule(is_dns1123_label),   # NameIsDNSLabel: namespaces
    "dns1035": _dns_rule(is_dns1035_label),         # NameIsDNS1035Label: services
    "path": _path_rule,                             # ValidatePathSegmentName: RBAC objects
}
"""ValidateNameFunc per rule name: (name, is_generate_name_prefix) -> problems."""


# --- ports ---------------------------------------------------------------------------------


def inclusive_range_error(low: int, high: int) -> str:
    return f"must be between {low} and {high}, inclusive"


def is_valid_port_num(port: Any) -> list[str]:
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return []
    return [inclusive_range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    """IANA_SVC_NAME: at most 15 of [-a-z0-9], a letter, no '--', no hyphen at either end."""
    errs: list[str] = []
    if _size(port) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARSET_RE.fullmatch(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER_RE.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


# --- IPs and CIDRs --------------------------------------------------------------------------


def _parse_address(text: str, *, unmap: bool) -> IPAddress | None:
    if "%" in text:
        return None
    if _SLOPPY_IPV4_RE.fullmatch(text):
        octets = [int(part) for part in text.split(".")]
        if any(octet > 255 for octet in octets):
            return None
        return ipaddress.IPv4Address(bytes(octets))
    if ":" not in text:
        return None
    try:
        v6 = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return (v6.ipv4_mapped or v6) if unmap else v6


def parse_ip(text: str) -> IPAddress | None:
    """Parse an IP like Go's `netutils.ParseIPSloppy`: IPv4 octets may have leading zeros.

    IPv4-mapped IPv6 addresses come back as IPv4, as Go's `To4()` treats them; zones are refused.
    """
    return _parse_address(text, unmap=True)


def parse_cidr(text: str) -> IPNetwork | None:
    """Parse a CIDR like Go's `netutils.ParseCIDRSloppy` (host bits may be set)."""
    addr_text, slash, bits_text = text.partition("/")
    if not slash or not (bits_text.isascii() and bits_text.isdigit()):
        return None
    addr = _parse_address(addr_text, unmap=False)
    if addr is None or int(bits_text) > addr.max_prefixlen:
        return None
    return ipaddress.ip_network(f"{addr}/{int(bits_text)}", strict=False)


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
