"""Reading Service annotations the way the upstream AWS controllers do, collecting problems.

`Reader` wraps a Service's annotations and appends (field, message) problems instead of raising,
so `annotations.problems` can report every bad annotation at once; booleans are Go's
`strconv.ParseBool`, lists and key=value pairs are comma-separated as upstream splits them, IDs
are checked for the shapes AWS accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from lbctl.parsing import Problems

from .annotation_keys import (
    HC_HEALTHY_THRESHOLD,
    HC_INTERVAL,
    HC_TIMEOUT,
    HC_UNHEALTHY_THRESHOLD,
    PREFIX,
)

# What Go's strconv.ParseBool accepts (both upstreams parse booleans with it).
GO_TRUE = ("true", "True", "TRUE", "t", "T", "1")
GO_FALSE = ("false", "False", "FALSE", "f", "F", "0")
INT = re.compile(r"^[0-9]+$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]+$")
EIP_ALLOCATION_ID = re.compile(r"^eipalloc-[0-9a-f]+$")
SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]+$")
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
HC_RANGES = {HC_INTERVAL: (5, 300, "seconds"), HC_TIMEOUT: (2, 120, "seconds"),
             HC_HEALTHY_THRESHOLD: (2, 10, "checks"), HC_UNHEALTHY_THRESHOLD: (2, 10, "checks")}
"""The integer annotations and their ranges (AWS's limits for target group health checks)."""


def is_security_group_id(text: str) -> bool:
    """An entry of `AwsOptions.security_groups` that is an ID; any other is a Name tag."""
    return bool(SECURITY_GROUP_ID.fullmatch(text))


def is_subnet_id(text: str) -> bool:
    """An entry of `AwsOptions.subnets` that is an ID (`subnet-` and hex digits); any other
    entry is the value of a subnet's Name tag."""
    return bool(SUBNET_ID.fullmatch(text))


def annotation_field(key: str) -> str:
    return f"metadata.annotations[{key}]"


def short(key: str) -> str:
    """`aws-load-balancer-type` for `service.beta.kubernetes.io/aws-load-balancer-type`."""
    return key.removeprefix(PREFIX)


class Reader:
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
        self.fail(key, f'"{value}" is not {what}: use {either(allowed)}')
        return None

    def boolean(self, key: str) -> bool | None:
        value = self.get(key)
        return None if value is None else go_bool(value, lambda m: self.fail(key, m))

    def integer(self, key: str) -> int | None:
        value = self.get(key)
        if value is None:
            return None
        low, high, unit = HC_RANGES[key]
        if not INT.fullmatch(value) or not low <= int(value) <= high:
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


def either(allowed: tuple[str, ...]) -> str:
    quoted = [f'"{a}"' for a in allowed]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def go_bool(value: str, fail: Callable[[str], None]) -> bool | None:
    if value in GO_TRUE:
        return True
    if value in GO_FALSE:
        return False
    fail(f'"{value}" is not a boolean: use "true" or "false"')
    return None


def label_problem(key: str, value: str) -> str | None:
    """Why Kubernetes would refuse the node label `key=value` (so no node can carry it)."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not DNS_SUBDOMAIN.fullmatch(prefix)):
        return (f'label key "{key}" has an invalid prefix "{prefix}": it must be a DNS '
                "subdomain (lowercase alphanumerics, '-' and '.') of at most 253 characters")
    if len(name) > 63 or not LABEL_NAME.fullmatch(name):
        return (f'label key "{key}" is not a valid label name: at most 63 characters, '
                "alphanumerics, '-', '_' and '.', starting and ending with an alphanumeric")
    if value and (len(value) > 63 or not LABEL_NAME.fullmatch(value)):
        return (f'label value "{value}" of "{key}" is not a valid label value: at most 63 '
                "characters, alphanumerics, '-', '_' and '.', starting and ending with an "
                "alphanumeric")
    return None
