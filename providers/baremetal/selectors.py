"""Kubernetes label selectors (`matchLabels` / `matchExpressions`) for pool `serviceAllocation`.

A pool may be limited to Services whose labels (`serviceSelectors`) or whose namespace's labels
(`namespaceSelectors`) match, as MetalLB's `IPAddressPool` allows. Parsing reports every problem
with its key path, in the wording of the API server's own validation, so a selector that the
cluster would refuse is refused here too instead of silently matching nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lbctl.parsing import Problems

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One `key operator values` term; `matchLabels` entries become `In` with one value."""

    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        return not present  # DoesNotExist


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """All requirements must hold; the empty selector matches everything (as in Kubernetes)."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(r.key for r in self.requirements)


def label_key_problem(key: Any) -> str | None:
    """Why `key` is not a valid label key (qualified name), or None."""
    if not isinstance(key, str) or not key:
        return "a label key must be a non-empty string"
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return (f'"{key}" is not a valid label key: the prefix must be a DNS subdomain '
                "(lowercase alphanumerics, '-' and '.')")
    if len(name) > 63 or not _NAME.fullmatch(name):
        return (f'"{key}" is not a valid label key: the name must be 63 characters or less, '
                "consist of alphanumerics, '-', '_' or '.', and start and end with an "
                "alphanumeric")
    return None


def label_value_problem(value: Any) -> str | None:
    """Why `value` is not a valid label value, or None."""
    if not isinstance(value, str):
        return "a label value must be a string"
    if value and (len(value) > 63 or not _NAME.fullmatch(value)):
        return (f'"{value}" is not a valid label value: it must be 63 characters or less, '
                "consist of alphanumerics, '-', '_' or '.', and start and end with an "
                "alphanumeric")
    return None


def _expression(raw: Any, path: str, problems: Problems) -> Requirement | None:
    if not isinstance(raw, dict):
        problems.append((path, "must be a mapping with key, operator and values"))
        return None
    before = len(problems)
    for extra in sorted(set(raw) - {"key", "operator", "values"}):
        problems.append((f"{path}.{extra}", "unknown key"))
    key = raw.get("key")
    if (why := label_key_problem(key)) is not None:
        problems.append((f"{path}.key", why))
    operator = raw.get("operator")
    if operator not in OPERATORS:
        problems.append((f"{path}.operator", f"must be one of {', '.join(OPERATORS)}, "
                                             f"not {operator!r}"))
    values = raw.get("values") or []
    if not isinstance(values, list):
        problems.append((f"{path}.values", "must be a list of strings"))
        values = []
    for j, value in enumerate(values):
        if (why := label_value_problem(value)) is not None:
            problems.append((f"{path}.values[{j}]", why))
    if operator in ("In", "NotIn") and not values:
        problems.append((f"{path}.values", f"must be specified when operator is {operator}"))
    if operator in ("Exists", "DoesNotExist") and values:
        problems.append((f"{path}.values", f"may not be specified when operator is "
                                           f"{operator}"))
    if len(problems) > before:
        return None
    return Requirement(str(key), str(operator), frozenset(str(v) for v in values))


def parse_selector(raw: Any, path: str, problems: Problems) -> LabelSelector | None:
    """A selector from its API form; None (with problems appended) when it is invalid."""
    if not isinstance(raw, dict):
        problems.append((path, "must be a label selector (matchLabels / matchExpressions)"))
        return None
    before = len(problems)
    for extra in sorted(set(raw) - {"matchLabels", "matchExpressions"}):
        problems.append((f"{path}.{extra}", "unknown key"))
    requirements: list[Requirement] = []
    labels = raw.get("matchLabels") or {}
    if not isinstance(labels, dict):
        problems.append((f"{path}.matchLabels", "must be a mapping of label keys to values"))
        labels = {}
    for key, value in labels.items():
        why = label_key_problem(key) or label_value_problem(value)
        if why is not None:
            problems.append((f"{path}.matchLabels[{key}]", why))
        else:
            requirements.append(Requirement(key, "In", frozenset({value})))
    expressions = raw.get("matchExpressions") or []
    if not isinstance(expressions, list):
        problems.append((f"{path}.matchExpressions", "must be a list"))
        expressions = []
    for i, item in enumerate(expressions):
        requirement = _expression(item, f"{path}.matchExpressions[{i}]", problems)
        if requirement is not None:
            requirements.append(requirement)
    if len(problems) > before:
        return None
    return LabelSelector(tuple(requirements))
