"""The config's `gcp:` section: parsed once, every problem reported with its key path.

`parse_settings(raw, env)` never raises: it answers the usable settings (a bad key falls back
to its default) and every problem as `(path, message)`; `validate_settings(raw)` is what
`lbctl config validate` shows. Credentials are never read from config (workload identity,
`GOOGLE_APPLICATION_CREDENTIALS` or the metadata server provide them); a key that looks like
one is refused with a hint. The project may come from the environment as Google's libraries
take it (`GOOGLE_CLOUD_PROJECT`, `CLOUDSDK_CORE_PROJECT`), but the config always wins.

`endpoint` points the provider at another Compute API (the GCE emulator, `lbctl emulator gcp`):
empty means Google's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lbctl.parsing import Problems, matching, rates, section_keys, string_map, within

ROOT = "gcp"
KEYS = ("project", "region", "network", "subnetwork", "endpoint", "nodeTags",
        "clusterHealthCheck", "rateLimits", "labels")
PROJECT_ENVS = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")
RATE_FAMILIES = ("read", "write", "operations")
DEFAULT_RATE_LIMITS: Mapping[str, float] = {"read": 20.0, "write": 5.0, "operations": 20.0}
"""Compute's limits are per project per minute and per API method group (1,500 reads a minute
is a common default); writes are the scarce ones. Operation polls have a bucket of their own
so waiting never starves the reads that decide what to write."""
MAX_RATE = 1000.0
CLUSTER_CHECKS = ("kubeProxy", "nodePort")
RESERVED_LABEL_PREFIX = "lbctl"

_PROJECT = re.compile(r"[a-z][-a-z0-9]{4,28}[a-z0-9]")
_REGION = re.compile(r"[a-z]+-[a-z]+\d{1,2}")
_RESOURCE = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
_CREDENTIALS_HINT = ("unknown key: credentials come from workload identity, "
                     "GOOGLE_APPLICATION_CREDENTIALS or the metadata server, never from config")


def _default_rate_limits() -> dict[str, float]:
    return dict(DEFAULT_RATE_LIMITS)


@dataclass(frozen=True, slots=True)
class GcpSettings:
    """The usable part of the `gcp:` section (plus the environment's project)."""

    project: str = ""
    """Config `gcp.project`; else env GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT; "" = ask the
    metadata server (on GCE), else the provider refuses to start naming `gcp.project`."""
    region: str = ""
    """Config `gcp.region`; required (one regional balancer per Service, in the nodes' region)."""
    network: str = "default"
    subnetwork: str = ""
    """For internal balancers (`networking.gke.io/load-balancer-type: Internal`); "" = the
    Service must name one (`networking.gke.io/internal-load-balancer-subnet`)."""
    endpoint: str | None = None
    """Another Compute API (the emulator); None = Google's."""
    node_tags: tuple[str, ...] = ()
    """Network tags of the nodes, the firewall rules' targets; () = read from the instances."""
    cluster_health_check: str = "kubeProxy"
    """Cluster policy: kube-proxy's `:10256/healthz` per node (GKE's choice since KEP-3836, one
    check shared by every Service) or `nodePort` (a TCP check per Service on its nodePort)."""
    rate_limits: Mapping[str, float] = field(default_factory=_default_rate_limits)
    labels: tuple[tuple[str, str], ...] = ()
    """Config `gcp.labels`: added to addresses and forwarding rules (the objects with labels)."""


def _str(raw: Mapping[str, Any], key: str, pattern: re.Pattern[str], example: str,
         problems: Problems, default: str = "") -> str:
    return matching(raw, key, pattern, example, ROOT, problems, default)


def _project(raw: Mapping[str, Any], env: Mapping[str, str], problems: Problems) -> str:
    example = "a GCP project ID such as 'my-project-123' (6-30 lower-case letters, digits, -)"
    value = _str(raw, "project", _PROJECT, example, problems)
    if value or raw.get("project") not in (None, ""):
        return value
    for name in PROJECT_ENVS:
        text = env.get(name, "").strip()
        if not text:
            continue
        if _PROJECT.fullmatch(text):
            return text
        problems.append((f"{ROOT}.project", f"not set, and the environment variable {name} "
                                            f"({text!r}) is not {example}"))
        return ""
    return ""  # the provider asks the metadata server, or says it needs gcp.project


def _endpoint(raw: Mapping[str, Any], problems: Problems) -> str | None:
    value = raw.get("endpoint")
    if value is None or value == "":
        return None
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        ok = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
        if parts is not None:
            parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        ok = False
    if not ok:
        problems.append((f"{ROOT}.endpoint", "must be an http:// or https:// URL such as "
                                             f"'http://127.0.0.1:8085', not {value!r}"))
        return None
    if parts is not None and (parts.username or parts.password):
        problems.append((f"{ROOT}.endpoint", "must not carry a user or password (user:pass@)"))
        return None
    return str(value).rstrip("/")


def _node_tags(raw: Mapping[str, Any], problems: Problems) -> tuple[str, ...]:
    value = raw.get("nodeTags")
    if value is None:
        return ()
    path = f"{ROOT}.nodeTags"
    if not isinstance(value, list):
        problems.append((path, f"must be a list of network tags, not {value!r}"))
        return ()
    out: list[str] = []
    for i, tag in enumerate(value):
        if isinstance(tag, str) and _RESOURCE.fullmatch(tag):
            out.append(tag)
        else:
            problems.append((f"{path}[{i}]", "must be a network tag (lower-case letters, "
                                             f"digits and -, 1-63, a letter first), not {tag!r}"))
    return tuple(dict.fromkeys(out))


def _rate_limits(raw: Mapping[str, Any], problems: Problems) -> dict[str, float]:
    return rates(raw.get("rateLimits"), f"{ROOT}.rateLimits", DEFAULT_RATE_LIMITS, MAX_RATE,
                 problems)


def label_problem(key: str, value: str) -> str | None:
    """Why GCE (or lbctl) would refuse the label `key=value`, or None."""
    if not _LABEL_KEY.fullmatch(key):
        return (f'label key "{key}" must be 1-63 lower-case letters, digits, _ or -, starting '
                "with a letter (GCE labels allow no '.' or '/')")
    if key.startswith(RESERVED_LABEL_PREFIX):
        return f'label key "{key}" is reserved: lbctl writes its ownership labels under "lbctl"'
    if not _LABEL_VALUE.fullmatch(value):
        return f'the value of label "{key}" must be 0-63 lower-case letters, digits, _ or -'
    return None


def _labels(raw: Mapping[str, Any], problems: Problems) -> tuple[tuple[str, str], ...]:
    return string_map(raw.get("labels"), f"{ROOT}.labels", "label keys", label_problem,
                      problems)


def parse_settings(raw: Any, env: Mapping[str, str] | None = None,
                   ) -> tuple[GcpSettings, list[tuple[str, str]]]:
    """The usable settings and every problem found; never raises. `env` defaults to the
    process environment (pass `{}` to read the config alone)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    problems: Problems = []
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return GcpSettings(), [(ROOT, f"must be a mapping ({', '.join(KEYS)}), not {raw!r}")]
    section_keys(raw, KEYS, ROOT, _CREDENTIALS_HINT, problems)
    region = _str(raw, "region", _REGION, "a GCP region such as 'us-central1'", problems)
    if not region and raw.get("region") in (None, ""):
        problems.append((f"{ROOT}.region", "required: the region of the cluster's nodes, "
                                           "such as 'us-central1'"))
    check = raw.get("clusterHealthCheck", "kubeProxy")
    if check not in CLUSTER_CHECKS:
        problems.append((f"{ROOT}.clusterHealthCheck", f"must be {' or '.join(CLUSTER_CHECKS)}, "
                                                       f"not {check!r}"))
        check = "kubeProxy"
    name = "a resource name (lower-case letters, digits and -, 1-63, a letter first)"
    settings = GcpSettings(
        project=_project(raw, environ, problems),
        region=region,
        network=_str(raw, "network", _RESOURCE, name, problems, "default"),
        subnetwork=_str(raw, "subnetwork", _RESOURCE, name, problems),
        endpoint=_endpoint(raw, problems),
        node_tags=_node_tags(raw, problems),
        cluster_health_check=str(check),
        rate_limits=_rate_limits(raw, problems),
        labels=_labels(raw, problems),
    )
    return settings, problems


def validate_settings(raw: Any) -> list[tuple[str, str]]:
    """Every problem in the section as (key path within it, message); the config alone is
    checked (not the environment)."""
    _, problems = parse_settings(raw, env={})
    return [(within(path, ROOT), message) for path, message in problems]
