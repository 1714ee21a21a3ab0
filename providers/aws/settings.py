"""The config's `aws:` section: parsed once, every problem reported with its key path.

`parse_settings(raw, env)` never raises: it returns the usable settings (a bad key falls back to
its default, a bad tag is dropped, the good ones stay) and every problem as `(path, message)`,
e.g. `("aws.region", "must be an AWS region such as 'us-east-1', not 'mars-1'")`. The provider
decides whether a problem is fatal; `lbctl config validate` shows them all through
`validate_settings(raw)` (paths relative to the section, which its caller prefixes).

Credentials are never read from config: a key that looks like one is refused with a hint, so a
secret pasted into a ConfigMap is reported rather than silently used (or silently ignored).
The endpoint and region may come from the environment as the AWS SDKs do
(`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_DEFAULT_REGION`), but the config always wins, so what
`lbctl plan` shows from the config is what the controller does.

`tag_problem` is shared with the Service annotations (`aws-load-balancer-additional-resource-
tags`): the same AWS tag rules, and the same keys kept for lbctl's own ownership tags.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lbctl.parsing import Problems, rates, section_keys, string_map, within

ROOT = "aws"
KEYS = ("region", "endpointURL", "vpcID", "rateLimits", "tags")
DEFAULT_REGION = "us-east-1"
RATE_FAMILIES = ("describe", "modify", "register", "tagging", "ec2Modify")
DEFAULT_RATE_LIMITS: Mapping[str, float] = {"describe": 20.0, "modify": 5.0, "register": 4.0,
                                            "tagging": 10.0, "ec2Modify": 5.0}
"""`modify` is ELBv2's writes; `ec2Modify` EC2's (security groups, their rules, tags), which
AWS throttles apart from ELB (EC2's mutating-action bucket refills at 5/s per account);
`tagging` is the Resource Groups Tagging API (GetResources), which has limits of its own."""
MAX_RATE = 1000.0
RESERVED_TAG_PREFIXES = ("lbctl.io/", "kubernetes.io/cluster/")
"""Tag keys lbctl writes itself to recognise its objects: a user tag there could forge or
break ownership, so both the config and the annotation refuse them."""
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
ENDPOINT_ENV = "AWS_ENDPOINT_URL"
REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")

# us-east-1, eu-central-2, us-gov-west-1, cn-north-1, us-iso-east-1, us-isob-east-1.
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]+$")
_TAG_PUNCTUATION = "_.:/=+-@"
_CREDENTIALS_HINT = ("unknown key: credentials come from the environment, a mounted Secret or "
                     "workload identity, never from config")



def _default_rate_limits() -> dict[str, float]:
    return dict(DEFAULT_RATE_LIMITS)


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """The usable part of the `aws:` section (plus the environment's endpoint and region)."""

    region: str = DEFAULT_REGION
    """Config `aws.region`; else env AWS_REGION, then AWS_DEFAULT_REGION; else us-east-1."""
    endpoint_url: str | None = None
    """Config `aws.endpointURL`; else env AWS_ENDPOINT_URL; else None (the real AWS)."""
    vpc_id: str | None = None
    """Config `aws.vpcID`; None means discover it (from the nodes' instances)."""
    rate_limits: Mapping[str, float] = field(default_factory=_default_rate_limits)
    """Tokens per second per API family (describe, modify, register, tagging, ec2Modify); config
    `aws.rateLimits`, each family absent from it keeps its default."""
    extra_tags: tuple[tuple[str, str], ...] = ()
    """Config `aws.tags`, sorted by key: added to every object lbctl creates."""




def tag_problem(key: str, value: str) -> str | None:
    """Why AWS (or lbctl) would refuse the tag `key=value`, or None when it is fine."""
    if not 1 <= len(key) <= MAX_TAG_KEY:
        return (f'tag key "{key}" must be 1 to {MAX_TAG_KEY} characters long '
                f"(it has {len(key)})")
    if key.lower().startswith("aws:"):
        return f'tag key "{key}" is reserved: AWS keeps the "aws:" prefix for its own tags'
    for prefix in RESERVED_TAG_PREFIXES:
        if key.startswith(prefix):
            return (f'tag key "{key}" is reserved: lbctl writes its ownership tags under '
                    f"{' and '.join(RESERVED_TAG_PREFIXES)}")
    if len(value) > MAX_TAG_VALUE:
        return (f'the value of tag "{key}" must be at most {MAX_TAG_VALUE} characters long '
                f"(it has {len(value)})")
    for what, text in (("key", key), ("value", value)):
        bad = sorted({ch for ch in text if not _tag_char(ch)})
        if bad:
            return (f'tag {what} "{text}" has characters AWS refuses in tags: '
                    f"{' '.join(repr(ch) for ch in bad)} (allowed: letters, digits, spaces and "
                    f"{' '.join(_TAG_PUNCTUATION)})")
    return None


def _tag_char(ch: str) -> bool:
    """AWS's tag pattern `[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]`."""
    return ch in _TAG_PUNCTUATION or unicodedata.category(ch)[0] in "LZN"


def _region(raw: Mapping[str, Any], env: Mapping[str, str], problems: Problems) -> str:
    value = raw.get("region")
    if value is not None:
        if isinstance(value, str) and _REGION.fullmatch(value):
            return value
        problems.append((f"{ROOT}.region", "must be an AWS region such as 'us-east-1' or "
                                           f"'us-gov-west-1', not {value!r}"))
        return DEFAULT_REGION
    for name in REGION_ENVS:
        text = env.get(name, "").strip()
        if not text:
            continue
        if _REGION.fullmatch(text):
            return text
        problems.append((f"{ROOT}.region", f"not set, and the environment variable {name} "
                                           f"({text!r}) is not an AWS region such as "
                                           "'us-east-1': set aws.region"))
        return DEFAULT_REGION
    return DEFAULT_REGION


def _is_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _endpoint(raw: Mapping[str, Any], env: Mapping[str, str], problems: Problems) -> str | None:
    value = raw.get("endpointURL")
    if value == "":  # the design contract's default: unset (env, then the real AWS)
        value = None
    if value is not None:
        if isinstance(value, str) and _is_url(value):
            return value
        problems.append((f"{ROOT}.endpointURL", "must be an http:// or https:// URL such as "
                                                f"'http://localstack:4566', not {value!r}"))
        return None
    text = env.get(ENDPOINT_ENV, "").strip()
    if not text:
        return None
    if _is_url(text):
        return text
    problems.append((f"{ROOT}.endpointURL", f"not set, and the environment variable "
                                            f"{ENDPOINT_ENV} ({text!r}) is not an http:// or "
                                            "https:// URL: set aws.endpointURL or fix it"))
    return None


def _vpc(raw: Mapping[str, Any], problems: Problems) -> str | None:
    value = raw.get("vpcID")
    if value is None:
        return None
    if isinstance(value, str) and _VPC_ID.fullmatch(value):
        return value
    problems.append((f"{ROOT}.vpcID", "must be a VPC ID such as 'vpc-0a1b2c3d' ('vpc-' and "
                                      f"hexadecimal digits), not {value!r}"))
    return None


def _rate_limits(raw: Mapping[str, Any], problems: Problems) -> dict[str, float]:
    return rates(raw.get("rateLimits"), f"{ROOT}.rateLimits", DEFAULT_RATE_LIMITS, MAX_RATE,
                 problems)


def _tags(raw: Mapping[str, Any], problems: Problems) -> tuple[tuple[str, str], ...]:
    return string_map(raw.get("tags"), f"{ROOT}.tags", "tag keys", tag_problem, problems)


def parse_settings(raw: Any, env: Mapping[str, str] | None = None,
                   ) -> tuple[AwsSettings, list[tuple[str, str]]]:
    """The usable settings and every problem found; never raises. `env` defaults to the
    process environment (pass `{}` to read the config alone)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    problems: Problems = []
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return (AwsSettings(region=_region({}, environ, problems),
                            endpoint_url=_endpoint({}, environ, problems)),
                [(ROOT, f"must be a mapping ({', '.join(KEYS)}), not {raw!r}"), *problems])
    section_keys(raw, KEYS, ROOT, _CREDENTIALS_HINT, problems)
    settings = AwsSettings(
        region=_region(raw, environ, problems),
        endpoint_url=_endpoint(raw, environ, problems),
        vpc_id=_vpc(raw, problems),
        rate_limits=_rate_limits(raw, problems),
        extra_tags=_tags(raw, problems),
    )
    return settings, problems


def validate_settings(raw: Any) -> list[tuple[str, str]]:
    """Every problem in the section as (key path within it, message), empty when valid; the
    config alone is checked (not the environment). The registry's `SettingsValidator`, whose
    caller (`lbctl config validate`) prefixes the section, e.g. `aws.` + `rateLimits.modify`."""
    return [(within(path, ROOT), message) for path, message in parse_settings(raw, env={})[1]]
