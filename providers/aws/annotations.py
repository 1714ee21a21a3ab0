"""The Service annotations lbctl's AWS provider honours, parsed into `AwsOptions`.

Services written for the in-tree AWS controller (kubernetes/cloud-provider-aws) or for the AWS
Load Balancer Controller (ALBC, `aws-load-balancer-type: external`) should keep meaning what
they meant, or be refused with a message that says why: lbctl builds Network Load Balancers
only, so a Classic ELB or a TLS listener is a `PermanentError` naming the annotation, never a
silently different balancer. Values are checked where AWS would refuse them later (ranges, ID
shapes, tag rules) so the user hears about a typo from `lbctl plan` or an event on the Service,
not from a half-built balancer. Unknown `aws-load-balancer-*` annotations are ignored, as both
upstream controllers do.

Where the two upstreams differ, the Service's type decides: with `external` (ALBC) the scheme
defaults to `internal`, as ALBC's does since v2.2; otherwise (`nlb`, or no type) to
`internet-facing`, as the in-tree controller's does. Contradictions between annotations
(`-internal` vs `-scheme`, `-proxy-protocol` vs `proxy_protocol_v2.enabled`) are errors naming
both, rather than one silently winning.

`problems(annotations)` returns every problem (for `lbctl plan` and events);
`parse_annotations(spec)` raises the first of them, or returns the options.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from providers.errors import PermanentError
from providers.spec import LoadBalancerSpec

from .settings import tag_problem

PREFIX = "service.beta.kubernetes.io/"
ANNOTATION_PREFIXES = ("service.beta.kubernetes.io/aws-load-balancer-",)

TYPE = PREFIX + "aws-load-balancer-type"
INTERNAL = PREFIX + "aws-load-balancer-internal"
SCHEME = PREFIX + "aws-load-balancer-scheme"
TARGET_TYPE = PREFIX + "aws-load-balancer-nlb-target-type"
SUBNETS = PREFIX + "aws-load-balancer-subnets"
EIP_ALLOCATIONS = PREFIX + "aws-load-balancer-eip-allocations"
PRIVATE_IPV4_ADDRESSES = PREFIX + "aws-load-balancer-private-ipv4-addresses"
HC_PROTOCOL = PREFIX + "aws-load-balancer-healthcheck-protocol"
HC_PORT = PREFIX + "aws-load-balancer-healthcheck-port"
HC_PATH = PREFIX + "aws-load-balancer-healthcheck-path"
HC_INTERVAL = PREFIX + "aws-load-balancer-healthcheck-interval"
HC_TIMEOUT = PREFIX + "aws-load-balancer-healthcheck-timeout"
HC_HEALTHY_THRESHOLD = PREFIX + "aws-load-balancer-healthcheck-healthy-threshold"
HC_UNHEALTHY_THRESHOLD = PREFIX + "aws-load-balancer-healthcheck-unhealthy-threshold"
PROXY_PROTOCOL = PREFIX + "aws-load-balancer-proxy-protocol"
CROSS_ZONE = PREFIX + "aws-load-balancer-cross-zone-load-balancing-enabled"
TARGET_GROUP_ATTRIBUTES = PREFIX + "aws-load-balancer-target-group-attributes"
ADDITIONAL_TAGS = PREFIX + "aws-load-balancer-additional-resource-tags"
TARGET_NODE_LABELS = PREFIX + "aws-load-balancer-target-node-labels"
IP_ADDRESS_TYPE = PREFIX + "aws-load-balancer-ip-address-type"
SSL_CERT = PREFIX + "aws-load-balancer-ssl-cert"
SSL_PORTS = PREFIX + "aws-load-balancer-ssl-ports"
BACKEND_PROTOCOL = PREFIX + "aws-load-balancer-backend-protocol"
SECURITY_GROUPS = PREFIX + "aws-load-balancer-security-groups"
MANAGE_BACKEND_RULES = PREFIX + "aws-load-balancer-manage-backend-security-group-rules"
TLS_ANNOTATIONS = (SSL_CERT, SSL_PORTS, BACKEND_PROTOCOL)

LOAD_BALANCER_TYPES = ("nlb", "external")
SCHEMES = ("internet-facing", "internal")
TARGET_TYPES = ("instance", "ip")
HC_PROTOCOLS = ("TCP", "HTTP", "HTTPS")
IP_ADDRESS_TYPES = ("ipv4", "dualstack")
TRAFFIC_PORT = "traffic-port"
PRESERVE_CLIENT_IP = "preserve_client_ip.enabled"
DEREGISTRATION_DELAY = "deregistration_delay.timeout_seconds"
PROXY_PROTOCOL_V2 = "proxy_protocol_v2.enabled"
TARGET_GROUP_ATTRIBUTE_KEYS = (PRESERVE_CLIENT_IP, DEREGISTRATION_DELAY, PROXY_PROTOCOL_V2)
MAX_HC_PATH = 1024
MAX_SUBNET_NAME = 256
MAX_LB_SECURITY_GROUPS = 5
"""AWS's limit of security groups on one load balancer."""
LEGACY_INTERNAL = "0.0.0.0/0"
"""The in-tree controller's old spelling of `aws-load-balancer-internal: "true"`."""

# What Go's strconv.ParseBool accepts (both upstreams parse booleans with it).
_TRUE = ("true", "True", "TRUE", "t", "T", "1")
_FALSE = ("false", "False", "FALSE", "f", "F", "0")
_INT = re.compile(r"^[0-9]+$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]+$")
_EIP_ALLOCATION = re.compile(r"^eipalloc-[0-9a-f]+$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]+$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HC_RANGES = {HC_INTERVAL: (5, 300, "seconds"), HC_TIMEOUT: (2, 120, "seconds"),
              HC_HEALTHY_THRESHOLD: (2, 10, "checks"), HC_UNHEALTHY_THRESHOLD: (2, 10, "checks")}
_MAX_DEREGISTRATION_DELAY = 3600

Problems = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class AwsOptions:
    """What a Service's annotations ask of its NLB; every field unset means lbctl's default."""

    scheme: str = "internet-facing"
    """internet-facing | internal (`-scheme`, or `-internal`; `internal` by default with
    `aws-load-balancer-type: external`, as ALBC does)."""
    target_type: str = "instance"
    """instance | ip (`-nlb-target-type`)."""
    subnets: tuple[str, ...] = ()
    """Subnet IDs (see `is_subnet_id`) or Name tags, in annotation order; empty means discover
    them by role tags (`kubernetes.io/role/elb`, `.../internal-elb`)."""
    eip_allocations: tuple[str, ...] = ()
    """`eipalloc-...` IDs, internet-facing only; paired with `subnets` by position."""
    private_ipv4_addresses: tuple[str, ...] = ()
    """Internal only; paired with `subnets` by position."""
    hc_protocol: str | None = None
    """TCP | HTTP | HTTPS (upper-cased)."""
    hc_port: str | None = None
    """"traffic-port" or a port number (1-65535) as text."""
    hc_path: str | None = None
    """Starts with "/"; refused with protocol TCP. Given without `-healthcheck-protocol`, it
    only matters when the effective protocol is HTTP(S) (e.g. policy Local)."""
    hc_interval: int | None = None
    """Seconds, 5 to 300."""
    hc_timeout: int | None = None
    """Seconds, 2 to 120; below the interval when both are given."""
    hc_healthy_threshold: int | None = None
    """Consecutive successes, 2 to 10."""
    hc_unhealthy_threshold: int | None = None
    """Consecutive failures, 2 to 10."""
    proxy_protocol: bool = False
    """PROXY protocol v2 to the targets (`-proxy-protocol: "*"`, or
    `proxy_protocol_v2.enabled=true` in `-target-group-attributes`)."""
    cross_zone: bool | None = None
    """`-cross-zone-load-balancing-enabled`; None leaves AWS's setting (off for NLBs)."""
    preserve_client_ip: bool | None = None
    """`preserve_client_ip.enabled` in `-target-group-attributes`; None leaves AWS's default."""
    deregistration_delay: int | None = None
    """`deregistration_delay.timeout_seconds` in `-target-group-attributes`, 0 to 3600."""
    additional_tags: tuple[tuple[str, str], ...] = ()
    """`-additional-resource-tags` ("k=v,k2=v2"; a bare "k" is an empty value), sorted."""
    target_node_labels: tuple[tuple[str, str], ...] = ()
    """`-target-node-labels` ("k=v,k2=v2"): only nodes with all these labels are targets;
    sorted."""
    ip_address_type: str = "ipv4"
    """ipv4 | dualstack (`-ip-address-type`)."""
    security_groups: tuple[str, ...] = ()
    """`-security-groups`: group IDs (`sg-...`) or Name tags, attached instead of the managed
    frontend group (as the ALBC does); empty means lbctl's frontend group."""
    manage_backend_rules: bool = False
    """`-manage-backend-security-group-rules` (only with `-security-groups`, as in the ALBC):
    also attach the shared backend group and write the node rules; without it the user's
    groups must be admitted on the nodes by the user."""


def is_security_group_id(text: str) -> bool:
    """An entry of `AwsOptions.security_groups` that is an ID; any other is a Name tag."""
    return bool(_SECURITY_GROUP_ID.match(text))


def is_subnet_id(text: str) -> bool:
    """An entry of `AwsOptions.subnets` that is an ID (`subnet-` and hex digits); any other
    entry is the value of a subnet's Name tag."""
    return bool(_SUBNET_ID.match(text))


def annotation_field(key: str) -> str:
    return f"metadata.annotations[{key}]"


def short(key: str) -> str:
    """`aws-load-balancer-type` for `service.beta.kubernetes.io/aws-load-balancer-type`."""
    return key.removeprefix(PREFIX)


class _Reader:
    """The annotations' values (stripped; blank counts as absent) and the problems found."""

    def __init__(self, annotations: Mapping[str, str]) -> None:
        self._values = {k: v.strip() for k, v in annotations.items()
                        if k.startswith(PREFIX) and v.strip()}
        self.problems: Problems = []

    def get(self, key: str) -> str | None:
        return self._values.get(key)

    def fail(self, key: str, message: str) -> None:
        self.problems.append((annotation_field(key), message))

    def choice(self, key: str, allowed: tuple[str, ...], what: str) -> str | None:
        value = self.get(key)
        if value is None or value in allowed:
            return value
        self.fail(key, f'"{value}" is not {what}: use {_either(allowed)}')
        return None

    def boolean(self, key: str) -> bool | None:
        value = self.get(key)
        return None if value is None else _bool(value, lambda m: self.fail(key, m))

    def integer(self, key: str) -> int | None:
        value = self.get(key)
        if value is None:
            return None
        low, high, unit = _HC_RANGES[key]
        if not _INT.match(value) or not low <= int(value) <= high:
            self.fail(key, f'"{value}" is out of range: use a whole number of {unit} from '
                           f"{low} to {high}")
            return None
        return int(value)

    def items(self, key: str, what: str) -> list[str]:
        """A comma-separated list (blank entries dropped, as upstream does); a repeated entry
        is a problem."""
        value = self.get(key)
        if value is None:
            return []
        out: list[str] = []
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            if item in out:
                self.fail(key, f'"{item}" is listed twice')
                continue
            out.append(item)
        if not out:
            self.fail(key, f'"{value}" lists no {what}: give a comma-separated list, or remove '
                           "the annotation")
        return out

    def pairs(self, key: str, *, bare_key: bool,
              check: Callable[[str, str], str | None]) -> list[tuple[str, str]]:
        """"k=v,k2=v2" (blank entries dropped); `bare_key` accepts "k" as "k=". A repeated key
        is a problem, and so is every pair `check` has a message for (kept in order)."""
        value = self.get(key)
        if value is None:
            return []
        out: list[tuple[str, str]] = []
        seen: set[str] = set()
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            name, sep, text = item.partition("=")
            name, text = name.strip(), text.strip()
            if not sep and not bare_key:
                self.fail(key, f'"{item}" is not key=value: use "k1=v1,k2=v2"')
                continue
            if not name:
                self.fail(key, f'"{item}" has no key before "=": use "k1=v1,k2=v2"')
                continue
            if name in seen:
                self.fail(key, f'"{name}" is given twice')
                continue
            seen.add(name)
            problem = check(name, text)
            if problem is not None:
                self.fail(key, problem)
                continue
            out.append((name, text))
        return out


def _either(allowed: tuple[str, ...]) -> str:
    quoted = [f'"{a}"' for a in allowed]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _bool(value: str, fail: Callable[[str], None]) -> bool | None:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    fail(f'"{value}" is not a boolean: use "true" or "false"')
    return None


def _label_problem(key: str, value: str) -> str | None:
    """Why Kubernetes would refuse the node label `key=value` (so no node can carry it)."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return (f'label key "{key}" has an invalid prefix "{prefix}": it must be a DNS '
                "subdomain (lowercase alphanumerics, '-' and '.') of at most 253 characters")
    if len(name) > 63 or not _LABEL_NAME.match(name):
        return (f'label key "{key}" is not a valid label name: at most 63 characters, '
                "alphanumerics, '-', '_' and '.', starting and ending with an alphanumeric")
    if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
        return (f'label value "{value}" of "{key}" is not a valid label value: at most 63 '
                "characters, alphanumerics, '-', '_' and '.', starting and ending with an "
                "alphanumeric")
    return None


def _parse(annotations: Mapping[str, str]) -> tuple[AwsOptions, Problems]:
    """The options and every problem, in a fixed order (the type first)."""
    note = _Reader(annotations)

    lb_type = note.get(TYPE)
    if lb_type is not None and lb_type not in LOAD_BALANCER_TYPES:
        note.fail(TYPE, f'"{lb_type}" is not supported: lbctl builds Network Load Balancers '
                        f'only; use "nlb" or "external", or leave the annotation out')

    for key in TLS_ANNOTATIONS:
        value = note.get(key)
        if value is None or (key == BACKEND_PROTOCOL and value.lower() == "tcp"):
            continue
        note.fail(key, f'TLS listeners are not supported by lbctl\'s NLBs yet: {short(key)} is '
                       f'"{value}"; remove it to pass TCP through to the targets')

    scheme = _scheme(note, lb_type)
    target_type = note.choice(TARGET_TYPE, TARGET_TYPES, "a target type") or "instance"
    subnets = _subnets(note)
    eips = _eips(note, scheme, subnets)
    private = _private_addresses(note, scheme, subnets)
    hc = _health_check(note)
    proxy_protocol = _proxy_protocol(note)
    cross_zone = note.boolean(CROSS_ZONE)
    attributes = _target_group_attributes(note, proxy_protocol)
    tags = _tags(note)
    labels = _node_labels(note)
    ip_address_type = (note.choice(IP_ADDRESS_TYPE, IP_ADDRESS_TYPES, "an IP address type")
                       or "ipv4")
    groups, manage_backend = _security_groups(note)

    options = AwsOptions(
        scheme=scheme[0], target_type=target_type, subnets=tuple(subnets),
        eip_allocations=tuple(eips), private_ipv4_addresses=tuple(private),
        hc_protocol=hc[0], hc_port=hc[1], hc_path=hc[2], hc_interval=hc[3],
        hc_timeout=hc[4], hc_healthy_threshold=hc[5], hc_unhealthy_threshold=hc[6],
        proxy_protocol=bool(proxy_protocol or attributes.get(PROXY_PROTOCOL_V2)),
        cross_zone=cross_zone,
        preserve_client_ip=_opt_bool(attributes.get(PRESERVE_CLIENT_IP)),
        deregistration_delay=_opt_int(attributes.get(DEREGISTRATION_DELAY)),
        additional_tags=tuple(sorted(tags)), target_node_labels=tuple(sorted(labels)),
        ip_address_type=ip_address_type, security_groups=tuple(groups),
        manage_backend_rules=manage_backend,
    )
    return options, note.problems


def _opt_bool(value: bool | int | None) -> bool | None:
    return None if value is None else bool(value)


def _opt_int(value: bool | int | None) -> int | None:
    return None if value is None else int(value)


def _scheme(note: _Reader, lb_type: str | None) -> tuple[str, str]:
    """(scheme, where it came from, for messages)."""
    internal_text = note.get(INTERNAL)
    internal: bool | None = None
    if internal_text == LEGACY_INTERNAL:
        internal = True
    elif internal_text in _TRUE or internal_text in _FALSE:
        internal = internal_text in _TRUE
    elif internal_text is not None:
        note.fail(INTERNAL, f'"{internal_text}" is not a boolean: use "true" or "false" (or the '
                            f'legacy "{LEGACY_INTERNAL}", meaning true)')
    scheme = note.choice(SCHEME, SCHEMES, "a scheme")
    from_internal = "internal" if internal else "internet-facing"
    if scheme is not None and internal is not None and scheme != from_internal:
        note.fail(SCHEME, f'"{scheme}" contradicts {short(INTERNAL)} ("{internal_text}", '
                          f'meaning {from_internal}): remove one of the two annotations')
    if scheme is not None:
        return scheme, f"{short(SCHEME)} is \"{scheme}\""
    if internal is not None:
        return from_internal, f'{short(INTERNAL)} is "{internal_text}"'
    if lb_type == "external":
        return "internal", f'"internal" is the default with {short(TYPE)} "external"'
    return "internet-facing", '"internet-facing" is the default'


def _subnets(note: _Reader) -> list[str]:
    out = []
    for item in note.items(SUBNETS, "subnets"):
        if len(item) > MAX_SUBNET_NAME:
            note.fail(SUBNETS, f'"{item[:40]}..." is neither a subnet ID nor a Name tag: Name '
                               f"tags have at most {MAX_SUBNET_NAME} characters")
            continue
        out.append(item)
    return out


def _eips(note: _Reader, scheme: tuple[str, str], subnets: list[str]) -> list[str]:
    out = []
    for item in note.items(EIP_ALLOCATIONS, "EIP allocations"):
        if not _EIP_ALLOCATION.match(item):
            note.fail(EIP_ALLOCATIONS, f'"{item}" is not an Elastic IP allocation ID: use '
                                       '"eipalloc-" and hexadecimal digits, e.g. '
                                       '"eipalloc-0123456789abcdef0"')
            continue
        out.append(item)
    if out and scheme[0] != "internet-facing":
        note.fail(EIP_ALLOCATIONS, "Elastic IPs need an internet-facing balancer, but the "
                                   f"scheme is internal ({scheme[1]})")
    elif out and subnets:
        _one_per_subnet(note, EIP_ALLOCATIONS, "EIP allocations", out, subnets)
    return out


def _private_addresses(note: _Reader, scheme: tuple[str, str], subnets: list[str]) -> list[str]:
    out = []
    for item in note.items(PRIVATE_IPV4_ADDRESSES, "addresses"):
        try:
            out.append(str(ipaddress.IPv4Address(item)))
        except ValueError:
            note.fail(PRIVATE_IPV4_ADDRESSES, f'"{item}" is not an IPv4 address')
    if out and scheme[0] != "internal":
        note.fail(PRIVATE_IPV4_ADDRESSES, "private IPv4 addresses need an internal balancer, "
                                          f"but the scheme is internet-facing ({scheme[1]})")
    elif out and subnets:
        _one_per_subnet(note, PRIVATE_IPV4_ADDRESSES, "private IPv4 addresses", out, subnets)
    return out


def _one_per_subnet(note: _Reader, key: str, what: str, out: list[str],
                    subnets: list[str]) -> None:
    if len(out) != len(subnets):
        note.fail(key, f"{len(out)} {what} for {len(subnets)} subnets ({short(SUBNETS)}): "
                       "give exactly one per subnet, in the same order")


_HealthCheck = tuple[str | None, str | None, str | None, int | None, int | None, int | None,
                     int | None]


def _health_check(note: _Reader) -> _HealthCheck:
    protocol_text = note.get(HC_PROTOCOL)
    protocol = None
    if protocol_text is not None:
        if protocol_text.upper() in HC_PROTOCOLS:
            protocol = protocol_text.upper()
        else:
            note.fail(HC_PROTOCOL, f'"{protocol_text}" is not a health-check protocol: use '
                                   f"{_either(HC_PROTOCOLS)}")
    port = note.get(HC_PORT)
    if port is not None and port != TRAFFIC_PORT:
        if _INT.match(port) and 1 <= int(port) <= 65535:
            port = str(int(port))
        else:
            note.fail(HC_PORT, f'"{port}" is not a port: use "{TRAFFIC_PORT}" or a number from '
                               "1 to 65535")
            port = None
    path = note.get(HC_PATH)
    if path is not None:
        if not path.startswith("/") or len(path) > MAX_HC_PATH or any(c.isspace() for c in path):
            note.fail(HC_PATH, f'"{path}" is not a health-check path: it must start with "/", '
                               f"have no spaces and at most {MAX_HC_PATH} characters")
            path = None
        elif protocol == "TCP":
            note.fail(HC_PATH, f'a path ("{path}") needs protocol HTTP or HTTPS, but '
                               f'{short(HC_PROTOCOL)} is "{protocol_text}"')
            path = None
    interval = note.integer(HC_INTERVAL)
    timeout = note.integer(HC_TIMEOUT)
    if interval is not None and timeout is not None and timeout >= interval:
        note.fail(HC_TIMEOUT, f'"{timeout}" must be less than the interval '
                              f'({short(HC_INTERVAL)} is "{interval}")')
        timeout = None
    healthy = note.integer(HC_HEALTHY_THRESHOLD)
    unhealthy = note.integer(HC_UNHEALTHY_THRESHOLD)
    return protocol, port, path, interval, timeout, healthy, unhealthy


def _security_groups(note: _Reader) -> tuple[list[str], bool]:
    """The user's groups (IDs or Name tags) and whether lbctl still manages the node rules."""
    out = []
    for item in note.items(SECURITY_GROUPS, "security groups"):
        if item.startswith("sg-") and not is_security_group_id(item):
            note.fail(SECURITY_GROUPS, f'"{item}" is not a security group ID: use "sg-" and '
                                       'hexadecimal digits, e.g. "sg-0123456789abcdef0", or '
                                       "the group's Name tag")
            continue
        if len(item) > MAX_SUBNET_NAME:
            note.fail(SECURITY_GROUPS, f'"{item[:40]}..." is neither a security group ID nor a '
                                       f"Name tag: Name tags have at most {MAX_SUBNET_NAME} "
                                       "characters")
            continue
        out.append(item)
    manage = bool(note.boolean(MANAGE_BACKEND_RULES))
    limit = MAX_LB_SECURITY_GROUPS - (1 if manage else 0)
    if len(out) > limit:
        why = " (one place is the shared backend group)" if manage else ""
        note.fail(SECURITY_GROUPS, f"{len(out)} security groups: an NLB takes at most {limit}"
                                   f"{why}")
    return out, manage and bool(out)


def _proxy_protocol(note: _Reader) -> bool | None:
    value = note.get(PROXY_PROTOCOL)
    if value is None:
        return None
    if value != "*":
        note.fail(PROXY_PROTOCOL, f'"{value}" is not supported: the only value is "*" (PROXY '
                                  "protocol v2 on every listener); remove the annotation to "
                                  "turn it off")
        return None
    return True


def _target_group_attributes(note: _Reader, proxy_protocol: bool | None,
                             ) -> dict[str, bool | int]:
    def check(key: str, text: str) -> str | None:
        if key not in TARGET_GROUP_ATTRIBUTE_KEYS:
            return (f'"{key}" is not an attribute lbctl supports: use '
                    f"{', '.join(TARGET_GROUP_ATTRIBUTE_KEYS)}")
        if key == DEREGISTRATION_DELAY:
            if not _INT.match(text) or int(text) > _MAX_DEREGISTRATION_DELAY:
                return (f'{key} "{text}" is out of range: use a whole number of seconds from 0 '
                        f"to {_MAX_DEREGISTRATION_DELAY}")
            return None
        if text not in _TRUE and text not in _FALSE:
            return f'{key} "{text}" is not a boolean: use "true" or "false"'
        if key == PROXY_PROTOCOL_V2 and proxy_protocol and text in _FALSE:
            return (f'{key} "{text}" contradicts {short(PROXY_PROTOCOL)} ("*"): remove one of '
                    "the two")
        return None

    pairs = note.pairs(TARGET_GROUP_ATTRIBUTES, bare_key=False, check=check)
    return {key: int(text) if key == DEREGISTRATION_DELAY else text in _TRUE
            for key, text in pairs}


def _tags(note: _Reader) -> list[tuple[str, str]]:
    return note.pairs(ADDITIONAL_TAGS, bare_key=True, check=tag_problem)


def _node_labels(note: _Reader) -> list[tuple[str, str]]:
    return note.pairs(TARGET_NODE_LABELS, bare_key=False, check=_label_problem)


def problems(annotations: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every problem with the AWS annotations as (field, message), in a fixed order; empty when
    lbctl can build what they ask for. For `lbctl plan` and Warning events."""
    return _parse(annotations)[1]


def parse_annotations(spec: LoadBalancerSpec) -> AwsOptions:
    """The options `spec`'s annotations ask for; PermanentError (field
    `metadata.annotations[<key>]`) for the first problem `problems()` would report."""
    options, found = _parse(dict(spec.annotations))
    if found:
        field, message = found[0]
        raise PermanentError(field, message)
    return options
