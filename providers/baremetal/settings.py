"""The config's `baremetal:` section: parsed once, every problem reported with its key path.

`parse_settings(raw)` never raises: it returns the usable settings and a list of
`(path, message)` problems, e.g. `('baremetal.pools[1] "edge".addresses[0]',
'"10.0.0.300/24" is not a CIDR or range')` (a pool named by position and name). A pool with
any problem is kept *frozen* (its holders keep their addresses, nothing new is handed out)
while the good pools keep working;
MetalLB instead stops applying any configuration while one object is invalid.
`validate_settings(raw)` is the same check for `lbctl config validate` (keys relative to the
section, which its caller prefixes).

Messages match or extend MetalLB's (`duplicate definition of pool "x"`, `invalid IP range ...`,
`CIDR ... overlaps with ...`), and name the entry that is wrong rather than the whole pool.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from lbctl.parsing import Problems, boolean, unknown_keys, within

from .addresses import AddressRange, RangeError, parse_range
from .bgp_settings import BgpSettings, parse_bgp_settings
from .claims import NAMESPACE_NAME_LABEL
from .daemon_options import KEYS as DAEMON_KEYS
from .daemon_options import DaemonOptions, parse_options
from .pools import Pool, PoolSet, ServiceAllocation
from .selectors import LabelSelector, parse_selector

ROOT = "baremetal"
DEFAULT_COOLDOWN_SECONDS = 30.0
MAX_COOLDOWN_SECONDS = 86400.0
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_POOL_KEYS = ("name", "addresses", "autoAssign", "avoidBuggyIPs", "serviceAllocation")
_ALLOCATION_KEYS = ("priority", "namespaces", "namespaceSelectors", "serviceSelectors")
_BALANCER_KEYS = ("name", "url", "tokenFile", "caFile")


@dataclass(frozen=True, slots=True)
class BalancerDaemon:
    """A balancer daemon the provider will program (URL + a mounted token file)."""

    name: str
    url: str
    token_file: str
    ca_file: str | None = None
    """PEM CA bundle verifying an https:// daemon (None: the system's trust store)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The usable part of the `baremetal:` section."""

    pools: PoolSet = field(default_factory=PoolSet)
    balancers: tuple[BalancerDaemon, ...] = ()
    cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS
    """A released address is not handed to another Service before this many seconds."""
    daemon: DaemonOptions = field(default_factory=DaemonOptions)
    """How the balancer daemons are programmed (health checks, data plane, polling)."""
    bgp: BgpSettings = field(default_factory=BgpSettings)
    """`baremetal.bgp`: pushed to the daemons, which announce their VIPs to the peers."""

    @property
    def reads_namespace_labels(self) -> bool:
        """Some pool that allocates selects on a namespace label other than
        `kubernetes.io/metadata.name` (which every namespace carries as its name): only then
        does the provider ask the cluster for Namespaces' labels (and the controller watch
        Namespaces). Frozen pools allocate nothing, so theirs do not count."""
        return any(selector.keys - {NAMESPACE_NAME_LABEL}
                   for pool in self.pools.active if pool.allocation is not None
                   for selector in pool.allocation.namespace_selectors)


def _strings(raw: Any, path: str, problems: Problems) -> list[tuple[int, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append((path, "must be a list of strings"))
        return []
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            out.append((i, item))
        else:
            problems.append((f"{path}[{i}]", f"must be a string, not {item!r}"))
    return out


def _allocation(raw: Any, path: str, problems: Problems) -> ServiceAllocation | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append((path, "must be a mapping (priority, namespaces, namespaceSelectors, "
                               "serviceSelectors)"))
        return None
    unknown_keys(raw, _ALLOCATION_KEYS, path, problems)
    priority = raw.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or priority < 0:
        problems.append((f"{path}.priority", f"must be a non-negative integer, not {priority!r}"))
        priority = 0
    namespaces = set()
    for i, name in _strings(raw.get("namespaces"), f"{path}.namespaces", problems):
        if len(name) > 63 or not _DNS_LABEL.fullmatch(name):
            problems.append((f"{path}.namespaces[{i}]", f'"{name}" is not a valid namespace '
                                                        "name (a DNS-1123 label)"))
        namespaces.add(name)
    selectors: dict[str, list[LabelSelector]] = {}
    for key in ("namespaceSelectors", "serviceSelectors"):
        items = raw.get(key) or []
        if not isinstance(items, list):
            problems.append((f"{path}.{key}", "must be a list of label selectors"))
            items = []
        selectors[key] = []
        for i, item in enumerate(items):
            selector = parse_selector(item, f"{path}.{key}[{i}]", problems)
            if selector is not None:
                selectors[key].append(selector)
    return ServiceAllocation(priority, frozenset(namespaces),
                             tuple(selectors["namespaceSelectors"]),
                             tuple(selectors["serviceSelectors"]))


def _pool(raw: dict[str, Any], index: int, problems: Problems,
          ) -> tuple[Pool, list[tuple[int, AddressRange]]]:
    path = f"{ROOT}.pools[{index}]"
    unknown_keys(raw, _POOL_KEYS, path, problems)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.append((f"{path}.name", "required: a pool needs a name"))
        name = f"pools[{index}]"
    elif len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        problems.append((f"{path}.name", f'"{name}" is not a valid pool name (lowercase '
                                         "alphanumerics, '-' and '.', as Kubernetes names)"))
    ranges: list[tuple[int, AddressRange]] = []
    addresses = raw.get("addresses")
    entries = _strings(addresses, f"{path}.addresses", problems)
    if not addresses:
        problems.append((f"{path}.addresses", "pool has no addresses defined"))
    for i, text in entries:
        try:
            ranges.append((i, parse_range(text)))
        except RangeError as exc:
            problems.append((f"{path}.addresses[{i}]", str(exc)))
    pool = Pool(
        name=name, ranges=tuple(r for _, r in ranges),
        auto_assign=boolean(raw, "autoAssign", True, path, problems),
        avoid_buggy_ips=boolean(raw, "avoidBuggyIPs", False, path, problems),
        allocation=_allocation(raw.get("serviceAllocation"), f"{path}.serviceAllocation",
                               problems),
        path=path)
    return pool, ranges


def _cross_check(pools: list[tuple[Pool, list[tuple[int, AddressRange]]]],
                 problems: Problems) -> None:
    """Duplicate names and overlapping addresses, blamed on the later definition."""
    first_by_name: dict[str, str] = {}
    seen: list[tuple[AddressRange, Pool, int]] = []
    for pool, ranges in pools:
        if pool.name in first_by_name:
            problems.append((f"{pool.path}.name", f'duplicate definition of pool "{pool.name}" '
                                                  f"(first at {first_by_name[pool.name]})"))
        else:
            first_by_name[pool.name] = pool.path
        for i, rng in ranges:
            for other, other_pool, j in seen:
                if rng.overlaps(other):
                    where = ("this pool" if other_pool is pool
                             else f'pool "{other_pool.name}"')
                    problems.append((f"{pool.path}.addresses[{i}]",
                                     f'"{rng.text}" in pool "{pool.name}" overlaps with '
                                     f'already defined "{other.text}" of {where} '
                                     f"({other_pool.path}.addresses[{j}])"))
                    break
            seen.append((rng, pool, i))


def _balancers(raw: Any, problems: Problems) -> tuple[BalancerDaemon, ...]:
    path = f"{ROOT}.balancers"
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append((path, "must be a list of {name, url, tokenFile, caFile}"))
        return ()
    out: list[BalancerDaemon] = []
    for i, item in enumerate(raw):
        here = f"{path}[{i}]"
        before = len(problems)
        if not isinstance(item, dict):
            problems.append((here, "must be a mapping with name, url and tokenFile"))
            continue
        for key in item:
            if key not in _BALANCER_KEYS:
                hint = (": credentials are never read from config, put the token in a mounted "
                        "file and name it in tokenFile" if "token" in key.lower() else "")
                problems.append((f"{here}.{key}", f"unknown key{hint}"))
        name, url, token_file = item.get("name"), item.get("url"), item.get("tokenFile")
        ca_file = item.get("caFile")
        if not isinstance(name, str) or not _DNS_LABEL.fullmatch(name):
            problems.append((f"{here}.name", f"must be a DNS-1123 label, not {name!r}"))
        elif any(b.name == name for b in out):
            problems.append((f"{here}.name", f'duplicate balancer "{name}"'))
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append((f"{here}.url", f"must be an http:// or https:// URL, not {url!r}"))
        elif parts.username is not None or parts.password is not None:
            problems.append((f"{here}.url", "must not carry a user or password (user:pass@): "
                                            "the daemon authenticates with the token in "
                                            "tokenFile"))
        if not isinstance(token_file, str) or not token_file.startswith("/"):
            problems.append((f"{here}.tokenFile", "must be the absolute path of a mounted "
                                                  f"token file, not {token_file!r}"))
        if ca_file is not None and (not isinstance(ca_file, str) or not ca_file.startswith("/")):
            problems.append((f"{here}.caFile", "must be the absolute path of a mounted PEM CA "
                                               f"bundle, not {ca_file!r}"))
        elif ca_file is not None and parts is not None and parts.scheme != "https":
            problems.append((f"{here}.caFile", "verifies an https:// url; this url is "
                                               f"{parts.scheme}://"))
        if len(problems) == before:
            out.append(BalancerDaemon(str(name), str(url), str(token_file),
                                      str(ca_file) if ca_file is not None else None))
    return tuple(out)


def _cooldown(raw: Mapping[str, Any], problems: Problems) -> float:
    value = raw.get("cooldownSeconds", DEFAULT_COOLDOWN_SECONDS)
    if (not isinstance(value, int | float) or isinstance(value, bool)
            or not 0 <= value <= MAX_COOLDOWN_SECONDS):
        problems.append((f"{ROOT}.cooldownSeconds", "must be a number of seconds from 0 to "
                                                    f"{MAX_COOLDOWN_SECONDS:g}, not {value!r}"))
        return DEFAULT_COOLDOWN_SECONDS
    return float(value)


def parse_settings(raw: Any) -> tuple[Settings, list[tuple[str, str]]]:
    """The usable settings (good pools active, bad ones frozen) and every problem found."""
    problems: Problems = []
    if raw is None:
        return Settings(), problems
    if not isinstance(raw, Mapping):
        return Settings(), [(ROOT, "must be a mapping (pools, balancers, cooldownSeconds)")]
    unknown_keys(raw, ("pools", "balancers", "cooldownSeconds", "bgp", *DAEMON_KEYS), ROOT,
                 problems)
    items = raw.get("pools") or []
    if not isinstance(items, list):
        problems.append((f"{ROOT}.pools", "must be a list of pools"))
        items = []
    parsed: list[tuple[Pool, list[tuple[int, AddressRange]]]] = []
    about_pools: Problems = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            about_pools.append((f"{ROOT}.pools[{i}]", "must be a mapping (name, addresses, "
                                                      "...)"))
            continue
        parsed.append(_pool(item, i, about_pools))
    _cross_check(parsed, about_pools)
    blamed = [path for path, _ in about_pools]
    named = {i: item["name"] for i, item in enumerate(items) if isinstance(item, dict)
             and isinstance(item.get("name"), str) and item["name"]}
    problems += [(_with_name(path, named), message)  # document order, stable within a pool
                 for path, message in sorted(about_pools, key=_pool_index)]
    active = tuple(p for p, _ in parsed if not _blames(blamed, p.path))
    frozen = tuple(replace(p, frozen=True) for p, _ in parsed if _blames(blamed, p.path))
    balancers = _balancers(raw.get("balancers"), problems)
    bgp = parse_bgp_settings(raw.get("bgp"), [p for p, _ in parsed],
                             [b.name for b in balancers], problems)
    settings = Settings(PoolSet(active, frozen), balancers, _cooldown(raw, problems),
                        parse_options(raw, problems), bgp)
    return settings, problems


def _with_name(path: str, named: dict[int, str]) -> str:
    """`baremetal.pools[1].addresses[0]` -> `baremetal.pools[1] "edge".addresses[0]`: an
    operator knows pools by name, not by position."""
    index = _pool_index((path, ""))
    name = named.get(index)
    head = f"{ROOT}.pools[{index}]"
    if name is None or not path.startswith(head) or path.startswith(head + ".name"):
        return path
    return f'{head} "{name}"{path[len(head):]}'


def _pool_index(problem: tuple[str, str]) -> int:
    return int(problem[0][len(f"{ROOT}.pools["):].partition("]")[0])


def _blames(paths: list[str], pool_path: str) -> bool:
    """Some problem is about the pool at `pool_path` or one of its keys."""
    return any(p == pool_path or p.startswith(pool_path + ".") for p in paths)


def validate_settings(raw: Any) -> list[tuple[str, str]]:
    """Every problem in the section as (key path within it, message), empty when valid: the
    registry's `SettingsValidator`, whose caller (`lbctl config validate`) prefixes the
    section, e.g. `baremetal.` + `pools[1].addresses[0]`."""
    return [(within(path, ROOT), message) for path, message in parse_settings(raw)[1]]
