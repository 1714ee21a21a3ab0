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
from collections.abc import Mapping
from dataclasses import dataclass

from lbctl.parsing import Problems
from providers.errors import PermanentError
from providers.spec import LoadBalancerSpec

from .annotation_keys import (
    ADDITIONAL_TAGS,
    BACKEND_PROTOCOL,
    CROSS_ZONE,
    DEREGISTRATION_DELAY,
    EIP_ALLOCATIONS,
    HC_HEALTHY_THRESHOLD,
    HC_INTERVAL,
    HC_PATH,
    HC_PORT,
    HC_PROTOCOL,
    HC_PROTOCOLS,
    HC_TIMEOUT,
    HC_UNHEALTHY_THRESHOLD,
    INTERNAL,
    IP_ADDRESS_TYPE,
    IP_ADDRESS_TYPES,
    LEGACY_INTERNAL,
    LOAD_BALANCER_TYPES,
    MANAGE_BACKEND_RULES,
    MAX_HC_PATH,
    MAX_LB_SECURITY_GROUPS,
    MAX_SUBNET_NAME,
    PRESERVE_CLIENT_IP,
    PRIVATE_IPV4_ADDRESSES,
    PROXY_PROTOCOL,
    PROXY_PROTOCOL_V2,
    SCHEME,
    SCHEMES,
    SECURITY_GROUPS,
    SUBNETS,
    TARGET_GROUP_ATTRIBUTE_KEYS,
    TARGET_GROUP_ATTRIBUTES,
    TARGET_NODE_LABELS,
    TARGET_TYPE,
    TARGET_TYPES,
    TLS_ANNOTATIONS,
    TRAFFIC_PORT,
    TYPE,
)
from .annotation_reader import (
    EIP_ALLOCATION_ID,
    GO_FALSE,
    GO_TRUE,
    INT,
    Reader,
    either,
    is_security_group_id,
    label_problem,
    short,
)
from .settings import tag_problem

_MAX_DEREGISTRATION_DELAY = 3600



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


def _parse(annotations: Mapping[str, str]) -> tuple[AwsOptions, Problems]:
    """The options and every problem, in a fixed order (the type first)."""
    note = Reader(annotations)

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


def _scheme(note: Reader, lb_type: str | None) -> tuple[str, str]:
    """(scheme, where it came from, for messages)."""
    internal_text = note.get(INTERNAL)
    internal: bool | None = None
    if internal_text == LEGACY_INTERNAL:
        internal = True
    elif internal_text in GO_TRUE or internal_text in GO_FALSE:
        internal = internal_text in GO_TRUE
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


def _subnets(note: Reader) -> list[str]:
    out = []
    for item in note.items(SUBNETS, "subnets"):
        if len(item) > MAX_SUBNET_NAME:
            note.fail(SUBNETS, f'"{item[:40]}..." is neither a subnet ID nor a Name tag: Name '
                               f"tags have at most {MAX_SUBNET_NAME} characters")
            continue
        out.append(item)
    return out


def _eips(note: Reader, scheme: tuple[str, str], subnets: list[str]) -> list[str]:
    out = []
    for item in note.items(EIP_ALLOCATIONS, "EIP allocations"):
        if not EIP_ALLOCATION_ID.fullmatch(item):
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


def _private_addresses(note: Reader, scheme: tuple[str, str], subnets: list[str]) -> list[str]:
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


def _one_per_subnet(note: Reader, key: str, what: str, out: list[str],
                    subnets: list[str]) -> None:
    if len(out) != len(subnets):
        note.fail(key, f"{len(out)} {what} for {len(subnets)} subnets ({short(SUBNETS)}): "
                       "give exactly one per subnet, in the same order")


_HealthCheck = tuple[str | None, str | None, str | None, int | None, int | None, int | None,
                     int | None]


def _health_check(note: Reader) -> _HealthCheck:
    protocol_text = note.get(HC_PROTOCOL)
    protocol = None
    if protocol_text is not None:
        if protocol_text.upper() in HC_PROTOCOLS:
            protocol = protocol_text.upper()
        else:
            note.fail(HC_PROTOCOL, f'"{protocol_text}" is not a health-check protocol: use '
                                   f"{either(HC_PROTOCOLS)}")
    port = note.get(HC_PORT)
    if port is not None and port != TRAFFIC_PORT:
        if INT.fullmatch(port) and 1 <= int(port) <= 65535:
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


def _security_groups(note: Reader) -> tuple[list[str], bool]:
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


def _proxy_protocol(note: Reader) -> bool | None:
    value = note.get(PROXY_PROTOCOL)
    if value is None:
        return None
    if value != "*":
        note.fail(PROXY_PROTOCOL, f'"{value}" is not supported: the only value is "*" (PROXY '
                                  "protocol v2 on every listener); remove the annotation to "
                                  "turn it off")
        return None
    return True


def _target_group_attributes(note: Reader, proxy_protocol: bool | None,
                             ) -> dict[str, bool | int]:
    def check(key: str, text: str) -> str | None:
        if key not in TARGET_GROUP_ATTRIBUTE_KEYS:
            return (f'"{key}" is not an attribute lbctl supports: use '
                    f"{', '.join(TARGET_GROUP_ATTRIBUTE_KEYS)}")
        if key == DEREGISTRATION_DELAY:
            if not INT.fullmatch(text) or int(text) > _MAX_DEREGISTRATION_DELAY:
                return (f'{key} "{text}" is out of range: use a whole number of seconds from 0 '
                        f"to {_MAX_DEREGISTRATION_DELAY}")
            return None
        if text not in GO_TRUE and text not in GO_FALSE:
            return f'{key} "{text}" is not a boolean: use "true" or "false"'
        if key == PROXY_PROTOCOL_V2 and proxy_protocol and text in GO_FALSE:
            return (f'{key} "{text}" contradicts {short(PROXY_PROTOCOL)} ("*"): remove one of '
                    "the two")
        return None

    pairs = note.pairs(TARGET_GROUP_ATTRIBUTES, bare_key=False, check=check)
    return {key: int(text) if key == DEREGISTRATION_DELAY else text in GO_TRUE
            for key, text in pairs}


def _tags(note: Reader) -> list[tuple[str, str]]:
    return note.pairs(ADDITIONAL_TAGS, bare_key=True, check=tag_problem)


def _node_labels(note: Reader) -> list[tuple[str, str]]:
    return note.pairs(TARGET_NODE_LABELS, bare_key=False, check=label_problem)


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
