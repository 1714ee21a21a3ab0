"""The Service annotations lbctl's Azure provider honours, parsed into `AzureOptions`.

Services written for AKS keep meaning what they meant under cloud-provider-azure, or are
refused with a message naming the annotation (`metadata.annotations[KEY]`). Values are checked
where ARM would refuse them later (names, ranges, the probe's 120 s budget), so a typo shows in
`lbctl plan` and in an event, not in a failed write of the load balancer every Service shares.

Semantics (upstream's, with lbctl's differences noted):
- `azure-load-balancer-internal: true` -> the cluster's internal LB, private IP from
  `-internal-subnet` (else `azure.subnetName`); the subnet annotation alone is an error.
- `azure-pip-name` -> the user's public IP by name (never created or deleted);
  `azure-load-balancer-ipv4` (or `spec.loadBalancerIP`; both and different is an error) -> the
  user's public IP holding that address (external) or the static private IP (internal);
  `azure-load-balancer-resource-group` -> the public IPs' resource group (ours go there too).
- `azure-dns-label-name` -> the DNS label of the public IP lbctl creates ("" = none).
- probes: `-health-probe-protocol` (Tcp, Http, Https), `-request-path` (Http(s); lbctl has no
  appProtocol, so a path alone means Http, as AKS does for appProtocol http), `-interval`
  (>= 5 s), `-num-of-probe` (>= 1), interval x count <= 120 s. Local policy always probes
  kube-proxy's healthCheckNodePort `/healthz` over Http; only interval and count apply.
- `azure-load-balancer-tcp-idle-timeout` (4-100 minutes), `azure-disable-load-balancer-
  floating-ip`, `azure-pip-tags` (`a=b,c=d`), `azure-allowed-ip-ranges` (CIDRs),
  `azure-allowed-service-tags` (e.g. `AzureCloud`, `Storage.WestEurope`).
Annotations asking for what lbctl does not build (IPv6, public IP prefixes, Private Link,
deny-all NSG rules) are refused rather than silently ignored; other unknown ones are ignored,
as upstream does.

`problems(annotations)` returns every problem; `parse_annotations(spec)` raises the first.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from lbctl.parsing import Problems
from providers.errors import PermanentError
from providers.spec import LoadBalancerSpec

from .settings import tag_problem

PREFIX = "service.beta.kubernetes.io/"
INTERNAL = PREFIX + "azure-load-balancer-internal"
INTERNAL_SUBNET = PREFIX + "azure-load-balancer-internal-subnet"
PIP_NAME = PREFIX + "azure-pip-name"
IPV4 = PREFIX + "azure-load-balancer-ipv4"
RESOURCE_GROUP = PREFIX + "azure-load-balancer-resource-group"
DNS_LABEL = PREFIX + "azure-dns-label-name"
PROBE_PROTOCOL = PREFIX + "azure-load-balancer-health-probe-protocol"
PROBE_PATH = PREFIX + "azure-load-balancer-health-probe-request-path"
PROBE_INTERVAL = PREFIX + "azure-load-balancer-health-probe-interval"
PROBE_COUNT = PREFIX + "azure-load-balancer-health-probe-num-of-probe"
IDLE_TIMEOUT = PREFIX + "azure-load-balancer-tcp-idle-timeout"
DISABLE_FLOATING_IP = PREFIX + "azure-disable-load-balancer-floating-ip"
PIP_TAGS = PREFIX + "azure-pip-tags"
ALLOWED_IP_RANGES = PREFIX + "azure-allowed-ip-ranges"
ALLOWED_SERVICE_TAGS = PREFIX + "azure-allowed-service-tags"
UNSUPPORTED = {
    PREFIX + "azure-load-balancer-ipv6": "IPv6 is not supported by lbctl's Azure provider",
    PREFIX + "azure-pip-name-ipv6": "IPv6 is not supported by lbctl's Azure provider",
    PREFIX + "azure-pip-prefix-id": "public IP prefixes are not supported: name a public IP "
                                    "(azure-pip-name) instead",
    PREFIX + "azure-pls-create": "Private Link services are not supported by lbctl",
    PREFIX + "azure-deny-all-except-load-balancer-source-ranges":
        "deny-all NSG rules are not supported by lbctl: it would leave the Service open",
}
"""Refused when set to anything but "false"/"" (ignoring them would change what is served)."""

PROBE_PROTOCOLS = {"tcp": "Tcp", "http": "Http", "https": "Https"}
MIN_PROBE_INTERVAL = 5
MAX_PROBE_BUDGET = 120
IDLE_RANGE = (4, 100)
_NAME = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9._-]{0,78}[a-zA-Z0-9_])?")
_GROUP = re.compile(r"[-\w._()]{0,89}[-\w_()]")
_DNS_LABEL = re.compile(r"[a-z][a-z0-9-]{1,61}[a-z0-9]")
_SERVICE_TAG = re.compile(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)?")
_TRUE = ("true", "True", "TRUE")
_FALSE = ("false", "False", "FALSE", "")


@dataclass(frozen=True, slots=True)
class AzureOptions:
    internal: bool = False
    subnet: str | None = None
    """Internal only: the subnet of the frontend's private IP (else `azure.subnetName`)."""
    pip_name: str | None = None
    """External only: the user's public IP, by name."""
    ipv4: str | None = None
    """`azure-load-balancer-ipv4` (spec.loadBalancerIP is read from the spec)."""
    resource_group: str | None = None
    """The public IPs' resource group; None = `azure.resourceGroup`."""
    dns_label: str | None = None
    probe_protocol: str | None = None
    """Tcp | Http | Https; None = Tcp (Cluster) / Http (Local)."""
    probe_path: str | None = None
    probe_interval: int = 5
    probe_count: int = 2
    idle_timeout: int | None = None
    """None = `azure.idleTimeoutMinutes`."""
    floating_ip: bool = True
    pip_tags: tuple[tuple[str, str], ...] = ()
    allowed_ranges: tuple[str, ...] = ()
    service_tags: tuple[str, ...] = ()


def field(key: str) -> str:
    return f"metadata.annotations[{key}]"


def _bool(annotations: Mapping[str, str], key: str, problems: Problems) -> bool:
    value = annotations.get(key)
    if value is None or value.strip() in _FALSE:
        return False
    if value.strip() in _TRUE:
        return True
    problems.append((field(key), f"must be true or false, not {value!r}"))
    return False


def _int(annotations: Mapping[str, str], key: str, low: int, high: int | None, default: int,
         problems: Problems) -> int:
    value = annotations.get(key)
    if value is None:
        return default
    text = value.strip()
    if text.isdigit() and low <= int(text) and (high is None or int(text) <= high):
        return int(text)
    bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
    problems.append((field(key), f"must be an integer {bound}, not {value!r}"))
    return default


def _name(annotations: Mapping[str, str], key: str, pattern: re.Pattern[str], what: str,
          problems: Problems) -> str | None:
    value = annotations.get(key)
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if pattern.fullmatch(text) and not text.endswith("."):
        return text
    problems.append((field(key), f"must be {what}, not {value!r}"))
    return None


def _list(annotations: Mapping[str, str], key: str) -> list[str]:
    return [part.strip() for part in annotations.get(key, "").split(",") if part.strip()]


def _ipv4(annotations: Mapping[str, str], problems: Problems) -> str | None:
    value = annotations.get(IPV4, "").strip()
    if not value:
        return None
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        problems.append((field(IPV4), f"must be an IPv4 address, not {value!r}"))
        return None


def _probe(annotations: Mapping[str, str], problems: Problems
           ) -> tuple[str | None, str | None, int, int]:
    protocol = None
    text = annotations.get(PROBE_PROTOCOL)
    if text is not None and text.strip():
        protocol = PROBE_PROTOCOLS.get(text.strip().lower())
        if protocol is None:
            problems.append((field(PROBE_PROTOCOL), f"must be Tcp, Http or Https, not {text!r}"))
    path = annotations.get(PROBE_PATH)
    if path is not None:
        path = path.strip() or None
    if path is not None:
        if not path.startswith("/") or any(c.isspace() for c in path):
            problems.append((field(PROBE_PATH), f"must be a URL path starting with '/', not "
                                                f"{path!r}"))
            path = None
        elif protocol == "Tcp":
            problems.append((field(PROBE_PATH), f"applies to Http and Https probes only "
                                                f"({PROBE_PROTOCOL} says Tcp)"))
            path = None
    interval = _int(annotations, PROBE_INTERVAL, MIN_PROBE_INTERVAL, MAX_PROBE_BUDGET, 5,
                    problems)
    count = _int(annotations, PROBE_COUNT, 1, MAX_PROBE_BUDGET, 2, problems)
    if interval * count > MAX_PROBE_BUDGET:
        problems.append((field(PROBE_COUNT), f"times {PROBE_INTERVAL} must be at most "
                                             f"{MAX_PROBE_BUDGET} seconds, not {count} x "
                                             f"{interval}"))
        interval, count = 5, 2
    return protocol, path, interval, count


def _pip_tags(annotations: Mapping[str, str], problems: Problems) -> tuple[tuple[str, str], ...]:
    out: dict[str, str] = {}
    for i, part in enumerate(_list(annotations, PIP_TAGS)):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        problem = "must be name=value" if not sep else tag_problem(key, value)
        if problem is not None:
            problems.append((field(PIP_TAGS), f"entry {i} ({part!r}): {problem}"))
        else:
            out[key] = value
    return tuple(sorted(out.items()))


def _ranges(annotations: Mapping[str, str], problems: Problems) -> tuple[str, ...]:
    out: list[str] = []
    for i, part in enumerate(_list(annotations, ALLOWED_IP_RANGES)):
        try:
            out.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            problems.append((field(ALLOWED_IP_RANGES), f"entry {i} must be a CIDR such as "
                                                       f"'203.0.113.0/24', not {part!r}"))
    return tuple(dict.fromkeys(out))


def _service_tags(annotations: Mapping[str, str], problems: Problems) -> tuple[str, ...]:
    out: list[str] = []
    for i, part in enumerate(_list(annotations, ALLOWED_SERVICE_TAGS)):
        if _SERVICE_TAG.fullmatch(part) and len(part) <= 80:
            out.append(part)
        else:
            problems.append((field(ALLOWED_SERVICE_TAGS), f"entry {i} must be an Azure service "
                                                          f"tag such as 'AzureCloud' or "
                                                          f"'Storage.WestEurope', not {part!r}"))
    return tuple(dict.fromkeys(out))


def options_from(annotations: Mapping[str, str], found: Problems) -> AzureOptions:
    """The options, appending every problem to `found`."""
    for key, why in UNSUPPORTED.items():
        value = annotations.get(key)
        if value is not None and value.strip() not in _FALSE:
            found.append((field(key), why))
    internal = _bool(annotations, INTERNAL, found)
    name = "an Azure resource name (1-80 letters, digits, '.', '_' or '-')"
    subnet = _name(annotations, INTERNAL_SUBNET, _NAME, name, found)
    if subnet is not None and not internal:
        found.append((field(INTERNAL_SUBNET), f"applies to internal balancers only ({INTERNAL}: "
                                              "true)"))
    pip_name = _name(annotations, PIP_NAME, _NAME, name, found)
    if pip_name is not None and internal:
        found.append((field(PIP_NAME), "applies to external balancers only (an internal one "
                                       "has no public IP)"))
    group = _name(annotations, RESOURCE_GROUP, _GROUP, "a resource group name", found)
    dns_label = _name(annotations, DNS_LABEL, _DNS_LABEL, "a DNS label (3-63 lower-case "
                      "letters, digits and '-', a letter first)", found)
    if dns_label is not None and (internal or pip_name is not None):
        found.append((field(DNS_LABEL), "applies to the public IP lbctl creates only (not to "
                                        "an internal balancer or a named public IP)"))
    protocol, path, interval, count = _probe(annotations, found)
    tags = _pip_tags(annotations, found)
    if tags and internal:
        found.append((field(PIP_TAGS), "applies to external balancers only"))
    idle = annotations.get(IDLE_TIMEOUT)
    return AzureOptions(
        internal=internal, subnet=subnet if internal else None,
        pip_name=None if internal else pip_name, ipv4=_ipv4(annotations, found),
        resource_group=group, dns_label=None if internal else dns_label,
        probe_protocol=protocol, probe_path=path, probe_interval=interval, probe_count=count,
        idle_timeout=None if idle is None else _int(annotations, IDLE_TIMEOUT, *IDLE_RANGE, 4,
                                                    found),
        floating_ip=not _bool(annotations, DISABLE_FLOATING_IP, found),
        pip_tags=tags if not internal else (), allowed_ranges=_ranges(annotations, found),
        service_tags=_service_tags(annotations, found))


def problems(annotations: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every problem with the Azure annotations, as (field, message)."""
    found: Problems = []
    options_from(annotations, found)
    return found


def parse_annotations(spec: LoadBalancerSpec) -> AzureOptions:
    """The options, or PermanentError naming the first bad annotation (or the conflict of
    `azure-load-balancer-ipv4` with spec.loadBalancerIP)."""
    found: Problems = []
    options = options_from(dict(spec.annotations), found)
    if found:
        raise PermanentError(*found[0])
    requested = [ip for ip in spec.requested_ips if ":" not in ip]
    if options.ipv4 is not None and requested and options.ipv4 not in requested:
        raise PermanentError(field(IPV4), f"says {options.ipv4} but the Service also asks for "
                                          f"{', '.join(requested)}: keep one")
    return options
