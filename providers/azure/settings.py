"""The config's `azure:` section: parsed once, every problem reported with its key path.

`parse_settings(raw, env)` never raises: it answers the usable settings (a bad key falls back
to its default) and every problem as `(path, message)`; `validate_settings(raw)` is what
`lbctl config validate` shows. Credentials are never read from config (workload identity,
a managed identity or the environment, through `DefaultAzureCredential`); a key that looks like
one is refused with a hint. The subscription may come from `AZURE_SUBSCRIPTION_ID` (as Azure's
tools take it), but the config always wins.

Why the keys: the cluster's objects live in one resource group (`resourceGroup`) of one
subscription and region (`location`); the backend pool's node addresses belong to the virtual
network `vnetName` (in `vnetResourceGroup`, default the same group), internal frontends take
their private IP from `subnetName` unless a Service names another subnet; NSG rules go into the
cluster's `securityGroupName`. The shared load balancers are named after `loadBalancerName`
("" = derived from the cluster name, see `names.load_balancer`) in `loadBalancerResourceGroup`.
`batchWindowSeconds` is how long the load balancer's writer waits for more Services' changes
before its one PUT (ARM replaces the LB whole and runs one operation on it at a time).

`endpoint` points the provider at an ARM emulator (`lbctl emulator azure`) and only on the
loopback interface: the client then sends a static token over plain HTTP, which must never
leave the machine. Empty means Azure's own Resource Manager.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lbctl.parsing import (
    Problems,
    boolean,
    matching,
    rates,
    section_keys,
    string_map,
    within,
)

ROOT = "azure"
KEYS = ("subscriptionId", "resourceGroup", "location", "vnetName", "vnetResourceGroup",
        "subnetName", "securityGroupName", "loadBalancerName", "loadBalancerResourceGroup",
        "endpoint", "rateLimits", "tags", "batchWindowSeconds", "idleTimeoutMinutes",
        "targetHealth")
SUBSCRIPTION_ENV = "AZURE_SUBSCRIPTION_ID"
RATE_FAMILIES = ("read", "write", "operations", "health")
DEFAULT_RATE_LIMITS: Mapping[str, float] = {"read": 12.0, "write": 8.0, "operations": 10.0,
                                            "health": 20.0}
"""ARM throttles per region, subscription and principal with token buckets refilled at 25 reads
and 10 writes (and 10 deletes) a second (Azure's "request limits and throttling", since 2024):
lbctl stays under them with its reads and operation polls together (polls are reads to ARM)
at 22/s and its writes at 8/s. Polls have a bucket of their own so waiting never starves the
reads that decide what to write. `health`: the requests of the target-health reads, made on a
resync only (a rule's health POST, which ARM bills as a write, and its Location poll, a read):
20/s is 10 reads a second, ARM's write refill, spent when lbctl writes nothing (a resync that
finds no change); should writes coincide, ARM's bucket (200 writes) absorbs them, and a
throttled health read leaves its counts unknown rather than retrying. A resync of N Services
spends about N/10 seconds on them."""
MAX_RATE = 1000.0
DEFAULT_BATCH_WINDOW = 0.5
MAX_BATCH_WINDOW = 30.0
DEFAULT_IDLE_TIMEOUT = 4
IDLE_TIMEOUT_RANGE = (4, 100)
"""Azure's limits for a load-balancing rule's TCP idle timeout, in minutes."""
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_USER_TAGS = 40
"""Azure allows 50 tags per resource; lbctl writes up to 7 of its own."""
RESERVED_TAG_PREFIXES = ("lbctl", "k8s-azure-")

_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_GROUP = re.compile(r"[-\w._()]{0,89}[-\w_()]")
_LOCATION = re.compile(r"[a-z][a-z0-9]{1,39}")
_NAME = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9._-]{0,78}[a-zA-Z0-9_])?")
_LB_NAME = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9._-]{0,68}[a-zA-Z0-9_])?")
"""A load balancer name that stays an ARM name with `-internal` appended."""
_TAG_NAME_FORBIDDEN = re.compile(r"[<>%&\\?/]")
_CREDENTIALS_HINT = ("unknown key: credentials come from workload identity, a managed identity "
                     "or AZURE_* environment variables (DefaultAzureCredential), never from "
                     "config")
_ARM_NAME = ("an Azure resource name (1-80 letters, digits, '.', '_' or '-', starting with a "
             "letter or digit, not ending in '.' or '-')")


def _default_rate_limits() -> dict[str, float]:
    return dict(DEFAULT_RATE_LIMITS)


@dataclass(frozen=True, slots=True)
class AzureSettings:
    """The usable part of the `azure:` section (plus the environment's subscription)."""

    subscription_id: str = ""
    """Config `azure.subscriptionId`, else env AZURE_SUBSCRIPTION_ID; required to start."""
    resource_group: str = ""
    """Where the cluster's load balancers, public IPs and security group live (required)."""
    location: str = ""
    """The region of the cluster, such as `westeurope` (required: new objects need it)."""
    vnet_name: str = ""
    """The nodes' virtual network: every backend-pool address names it (required)."""
    vnet_resource_group: str = ""
    """"" = `resource_group`."""
    subnet_name: str = ""
    """Internal frontends' subnet; "" = a Service must name one (`-internal-subnet`)."""
    security_group_name: str = ""
    """The cluster's network security group, where lbctl writes its allow rules (required)."""
    load_balancer_name: str = ""
    """"" = derived from the cluster name (`names.load_balancer`)."""
    load_balancer_resource_group: str = ""
    """"" = `resource_group`."""
    endpoint: str | None = None
    """An ARM emulator on loopback (`http://127.0.0.1:PORT`); None = Azure's."""
    rate_limits: Mapping[str, float] = field(default_factory=_default_rate_limits)
    tags: tuple[tuple[str, str], ...] = ()
    """Config `azure.tags`: added to the load balancers and public IPs lbctl creates."""
    batch_window_seconds: float = DEFAULT_BATCH_WINDOW
    idle_timeout_minutes: int = DEFAULT_IDLE_TIMEOUT
    """Rules' TCP idle timeout unless a Service's annotation says otherwise."""
    target_health: bool = True
    """Read one rule's health per Service on the resync (`lbctl status`'s TARGETS); false:
    no health actions at all (ARM bills each as a write; a resync of N Services costs N)."""

    @property
    def vnet_group(self) -> str:
        return self.vnet_resource_group or self.resource_group

    @property
    def lb_group(self) -> str:
        return self.load_balancer_resource_group or self.resource_group


def _str(raw: Mapping[str, Any], key: str, pattern: re.Pattern[str], example: str,
         problems: Problems) -> str:
    value = raw.get(key)
    if isinstance(value, str) and value.endswith("."):  # ARM names never end in "."
        problems.append((f"{ROOT}.{key}", f"must be {example}, not {value!r}"))
        return ""
    return matching(raw, key, pattern, example, ROOT, problems)


def _required(raw: Mapping[str, Any], key: str, value: str, what: str,
              problems: Problems) -> None:
    if not value and raw.get(key) in (None, ""):
        problems.append((f"{ROOT}.{key}", f"required: {what}"))


def _subscription(raw: Mapping[str, Any], env: Mapping[str, str], problems: Problems,
                  required: bool) -> str:
    example = "a subscription ID (a GUID such as '00000000-0000-0000-0000-000000000000')"
    value = _str(raw, "subscriptionId", _GUID, example, problems)
    if value or raw.get("subscriptionId") not in (None, ""):
        return value.lower()
    text = env.get(SUBSCRIPTION_ENV, "").strip()
    if text and _GUID.fullmatch(text):
        return text.lower()
    if text:
        problems.append((f"{ROOT}.subscriptionId", f"not set, and the environment variable "
                                                   f"{SUBSCRIPTION_ENV} ({text!r}) is not "
                                                   f"{example}"))
    elif required:
        problems.append((f"{ROOT}.subscriptionId", f"required: set it or {SUBSCRIPTION_ENV}"))
    return ""


def _endpoint(raw: Mapping[str, Any], problems: Problems) -> str | None:
    value = raw.get("endpoint")
    if value is None or value == "":
        return None
    path = f"{ROOT}.endpoint"
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        ok = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
        if parts is not None:
            parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        ok = False
    if not ok or parts is None:
        problems.append((path, "must be an http:// URL such as 'http://127.0.0.1:8086', not "
                               f"{value!r}"))
        return None
    if parts.username or parts.password:
        problems.append((path, "must not carry a user or password (user:pass@)"))
        return None
    if parts.hostname not in LOOPBACK_HOSTS:
        problems.append((path, "must be an emulator on this machine (127.0.0.1, localhost or "
                               "[::1]): lbctl sends it a static token, which must never leave "
                               f"the machine; not {parts.hostname!r}"))
        return None
    return str(value).rstrip("/")


def tag_problem(key: str, value: str) -> str | None:
    """Why Azure (or lbctl) would refuse the tag `key=value`, or None."""
    if not key or len(key) > 512 or _TAG_NAME_FORBIDDEN.search(key):
        return (f'tag name "{key}" must be 1-512 characters without < > % & \\ ? or / '
                "(Azure's rule)")
    if key.lower().startswith(RESERVED_TAG_PREFIXES):
        return (f'tag name "{key}" is reserved: lbctl writes its ownership tags under "lbctl" '
                'and the cloud provider\'s under "k8s-azure-"')
    if len(value) > 256:
        return f'the value of tag "{key}" must be at most 256 characters'
    return None


def _tags(raw: Mapping[str, Any], problems: Problems) -> tuple[tuple[str, str], ...]:
    path = f"{ROOT}.tags"
    out = string_map(raw.get("tags"), path, "tag names", tag_problem, problems)
    if len(out) > MAX_USER_TAGS:
        problems.append((path, f"at most {MAX_USER_TAGS} tags (Azure allows 50 per resource and "
                               "lbctl writes its own)"))
        out = out[:MAX_USER_TAGS]
    return out


def _number(raw: Mapping[str, Any], key: str, low: float, high: float, default: float,
            integer: bool, problems: Problems) -> float:
    value = raw.get(key)
    if value is None:
        return default
    kind = "an integer" if integer else "a number"
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or (integer and not isinstance(value, int)) or not low <= value <= high):
        problems.append((f"{ROOT}.{key}", f"must be {kind} from {low:g} to {high:g}, not "
                                          f"{value!r}"))
        return default
    return value


def parse_settings(raw: Any, env: Mapping[str, str] | None = None, *,
                   require_subscription: bool = True,
                   ) -> tuple[AzureSettings, list[tuple[str, str]]]:
    """The usable settings and every problem found; never raises. `env` defaults to the
    process environment (pass `{}` to read the config alone)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    problems: Problems = []
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return AzureSettings(), [(ROOT, f"must be a mapping ({', '.join(KEYS)}), not {raw!r}")]
    section_keys(raw, KEYS, ROOT, _CREDENTIALS_HINT, problems)
    group = ("a resource group name (1-90 letters, digits, '_', '-', '.', '(' or ')', not "
             "ending in '.')")
    subscription = _subscription(raw, environ, problems, require_subscription)
    resource_group = _str(raw, "resourceGroup", _GROUP, group, problems)
    _required(raw, "resourceGroup", resource_group, "the resource group of the cluster's "
              "network objects", problems)
    location = _str(raw, "location", _LOCATION, "an Azure region such as 'westeurope'",
                    problems)
    _required(raw, "location", location, "the cluster's region, such as 'westeurope'",
              problems)
    vnet = _str(raw, "vnetName", _NAME, _ARM_NAME, problems)
    _required(raw, "vnetName", vnet, "the nodes' virtual network (backend-pool addresses "
              "name it)", problems)
    nsg = _str(raw, "securityGroupName", _NAME, _ARM_NAME, problems)
    _required(raw, "securityGroupName", nsg, "the cluster's network security group (where the "
              "Services' allow rules go)", problems)
    settings = AzureSettings(
        subscription_id=subscription, resource_group=resource_group, location=location,
        vnet_name=vnet,
        vnet_resource_group=_str(raw, "vnetResourceGroup", _GROUP, group, problems),
        subnet_name=_str(raw, "subnetName", _NAME, _ARM_NAME, problems),
        security_group_name=nsg,
        load_balancer_name=_str(raw, "loadBalancerName", _LB_NAME, "an Azure resource name "
                                "of at most 70 characters (lbctl appends '-internal')",
                                problems),
        load_balancer_resource_group=_str(raw, "loadBalancerResourceGroup", _GROUP, group,
                                          problems),
        endpoint=_endpoint(raw, problems),
        rate_limits=rates(raw.get("rateLimits"), f"{ROOT}.rateLimits", DEFAULT_RATE_LIMITS,
                          MAX_RATE, problems),
        tags=_tags(raw, problems),
        batch_window_seconds=float(_number(raw, "batchWindowSeconds", 0, MAX_BATCH_WINDOW,
                                           DEFAULT_BATCH_WINDOW, False, problems)),
        idle_timeout_minutes=int(_number(raw, "idleTimeoutMinutes", *IDLE_TIMEOUT_RANGE,
                                         DEFAULT_IDLE_TIMEOUT, True, problems)),
        target_health=boolean(raw, "targetHealth", True, ROOT, problems),
    )
    return settings, problems


def validate_settings(raw: Any) -> list[tuple[str, str]]:
    """Every problem in the section as (key path within it, message); the config alone is
    checked (a missing subscriptionId is not one: the environment may supply it)."""
    _, problems = parse_settings(raw, env={}, require_subscription=False)
    return [(within(path, ROOT), message) for path, message in problems]
