"""Label selectors, parsed and matched the way apimachinery's `pkg/labels` does.

`?labelSelector=` on every list and watch, kubectl's `-l`, and the selectors inside
Deployments, ReplicaSets and PodDisruptionBudgets all come through here. A client sees a bad
selector's parse error verbatim in a 400 BadRequest, so the lexer and parser follow upstream
token by token, messages and quirks included (`x in (a,,b)` holds the empty value, `!x=y` fails
after the `!x`, ...).

Field selectors live in `field_selectors` and are re-exported here, so callers import both
kinds from one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lbctl.sandbox.errors import (
    FieldError,
    aggregate,
    bad_request,
    go_value,
    invalid,
    not_supported,
)
from lbctl.sandbox.name_formats import is_label_value, is_qualified_name
from lbctl.sandbox.storage.field_selectors import (
    FieldSelector,
    field_labels,
    field_set,
    parse_field_selector,
    supported_fields,
)

__all__ = [
    "FieldSelector", "LabelSelector", "Requirement", "field_labels", "field_set",
    "label_selector_from_spec", "parse_field_selector", "parse_label_selector",
    "supported_fields",
]

# selection.Operator values.
IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN = "exists", "!", "gt", "lt"
_BINARY = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_ALL_OPERATORS = [*_BINARY, EXISTS, DOES_NOT_EXIST]
_SPEC_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}

_INT64_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parse_int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64), or None where Go would fail."""
    if not _INT64_RE.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


@dataclass(frozen=True)
class Requirement:
    """One `key op values` term; build it with `new_requirement`, which validates."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op, present = self.operator, self.key in labels
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return not present or labels[self.key] not in self.values
        if op == EXISTS:
            return present
        if op == DOES_NOT_EXIST:
            return not present
        if op in (GREATER_THAN, LESS_THAN) and present and len(self.values) == 1:
            have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        op = self.operator
        if op in (EXISTS, DOES_NOT_EXIST):
            return ("!" if op == DOES_NOT_EXIST else "") + self.key
        values = ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({values})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{values}"


@dataclass(frozen=True)
class LabelSelector:
    """AND of requirements. No requirements matches everything; `nothing` matches nothing."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    @property
    def empty(self) -> bool:
        """Selects everything (labels.Selector.Empty)."""
        return not self.nothing and not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _requirement_errors(key: str, op: str, values: Sequence[str]) -> list[FieldError]:
    """labels.NewRequirement's checks, with its root-less field paths (`values[0][key]`)."""
    errs = [invalid("key", key, "; ".join(m)) for m in [is_qualified_name(key)] if m]
    if op in (IN, NOT_IN):
        if not values:
            errs.append(invalid("values", None,
                                "for 'in', 'notin' operators, values set can't be empty"))
    elif op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(values) != 1:
            errs.append(invalid("values", list(values),
                                "exact-match compatibility requires one single value"))
    elif op in (EXISTS, DOES_NOT_EXIST):
        if values:
            errs.append(invalid("values", list(values),
                                "values set must be empty for exists and does not exist"))
    elif op in (GREATER_THAN, LESS_THAN):
        if len(values) != 1:
            errs.append(invalid("values", list(values),
                                "for 'Gt', 'Lt' operators, exactly one value is required"))
        errs.extend(invalid(f"values[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an "
                            "integer") for i, v in enumerate(values) if _parse_int64(v) is None)
    else:
        errs.append(not_supported("operator", op, _ALL_OPERATORS))
    for i, v in enumerate(values):
        if msgs := is_label_value(v):
            errs.append(invalid(f"values[{i}][{key}]", v, "; ".join(msgs)))
    return errs


def new_requirement(key: str, op: str, values: Sequence[str]) -> Requirement:
    """labels.NewRequirement: a validated requirement, or 400 with the aggregated problems."""
    if errs := _requirement_errors(key, op, values):
        raise bad_request(aggregate(errs))
    return Requirement(key, op, tuple(values))


class _SyntaxError(Exception):
    """A parse failure; its text is what the client sees."""


def _parsed_requirement(key: str, op: str, values: Sequence[str]) -> Requirement:
    if errs := _requirement_errors(key, op, values):
        raise _SyntaxError(aggregate(errs))
    return Requirement(key, op, tuple(values))


# Lexer tokens (labels.Token); IDENT carries the literal, END is the end of the input.
END, CLOSE, COMMA, NOT, DOUBLE_EQ, EQ, GT, IDENT, IN_TOK, LT, NEQ, NOTIN_TOK, OPEN = range(13)
_TOKENS = {")": CLOSE, ",": COMMA, "!": NOT, "==": DOUBLE_EQ, "=": EQ, ">": GT, "in": IN_TOK,
           "<": LT, "!=": NEQ, "notin": NOTIN_TOK, "(": OPEN}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_OPERATOR_OF = {IN_TOK: IN, EQ: EQUALS, DOUBLE_EQ: DOUBLE_EQUALS, GT: GREATER_THAN,
                LT: LESS_THAN, NOTIN_TOK: NOT_IN, NEQ: NOT_EQUALS}


def _scan(text: str) -> list[tuple[int, str]]:
    """labels.Lexer over the whole input (a NUL byte ends it, as in Go)."""
    text = text.split("\0", 1)[0]
    items: list[tuple[int, str]] = []
    pos, size = 0, len(text)
    while True:
        while pos < size and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= size:
            items.append((END, ""))
            return items
        start = pos
        if text[pos] in _SPECIAL:
            # Longest run of special characters that still spells a token ("!=", "==").
            pos += 1
            while pos < size and text[pos] in _SPECIAL and text[start:pos + 1] in _TOKENS:
                pos += 1
            items.append((_TOKENS[text[start:pos]], text[start:pos]))
        else:
            while pos < size and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
                pos += 1
            word = text[start:pos]
            items.append((_TOKENS[word] if word in ("in", "notin") else IDENT, word))


class _Parser:
    """labels.Parser: recursive descent over the scanned tokens."""

    def __init__(self, text: str) -> None:
        self.items = _scan(text)
        self.pos = 0

    def peek(self, values: bool = True) -> tuple[int, str]:
        tok, lit = self.items[self.pos]
        # In a value context `in` and `notin` are plain words: `x in (in, notin)`.
        return (IDENT, lit) if values and tok in (IN_TOK, NOTIN_TOK) else (tok, lit)

    def take(self, values: bool = True) -> tuple[int, str]:
        item = self.peek(values)
        self.pos += 1
        return item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self.peek()
            if tok == END:
                return requirements
            if tok not in (IDENT, NOT):
                raise _SyntaxError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            requirements.append(self.requirement())
            tok, lit = self.take()
            if tok == END:
                return requirements
            if tok != COMMA:
                raise _SyntaxError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self.peek()
            if tok not in (IDENT, NOT):
                raise _SyntaxError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        """parseRequirement; its syntax errors get the "unable to parse requirement" prefix."""
        try:
            return self._requirement()
        except _SyntaxError as err:
            raise _SyntaxError(f"unable to parse requirement: {err}") from None

    def _requirement(self) -> Requirement:
        tok, key = self.take()
        negated = tok == NOT
        if negated:
            tok, key = self.take()
        if tok != IDENT:
            raise _SyntaxError(f"found '{key}', expected: identifier")
        if msgs := is_qualified_name(key):
            # validateLabelKey with the parser's nil path, which Go prints as "<nil>".
            raise _SyntaxError(f"<nil>: {invalid('', key, '; '.join(msgs)).body()}")
        if negated or self.peek()[0] in (END, COMMA):
            return _parsed_requirement(key, DOES_NOT_EXIST if negated else EXISTS, ())
        tok, lit = self.take(values=False)
        if tok not in _OPERATOR_OF:
            raise _SyntaxError(f"found '{lit}', expected: {', '.join(_BINARY)}")
        op = _OPERATOR_OF[tok]
        found = self.value_set() if op in (IN, NOT_IN) else self.exact_value()
        return _parsed_requirement(key, op, sorted(found))

    def value_set(self) -> set[str]:
        tok, lit = self.take()
        if tok != OPEN:
            raise _SyntaxError(f"found '{lit}' expected: '('")
        tok, lit = self.peek()
        if tok == CLOSE:  # "()" holds the empty value
            self.take()
            return {""}
        if tok not in (IDENT, COMMA):
            raise _SyntaxError(f"found '{lit}', expected: ',', ')' or identifier")
        found: set[str] = set()
        while True:  # parseIdentifiersList; the loop only ends before a ')'
            tok, lit = self.take()
            if tok == IDENT:
                found.add(lit)
                nxt, nxt_lit = self.peek()
                if nxt == CLOSE:
                    break
                if nxt != COMMA:
                    raise _SyntaxError(f"found '{nxt_lit}', expected: ',' or ')'")
            elif tok == COMMA:  # empty values: "(,a", "a,,b", "a,)"
                if not found or self.peek()[0] in (CLOSE, COMMA):
                    found.add("")
                if self.peek()[0] == CLOSE:
                    break
                if self.peek()[0] == COMMA:
                    self.take()
            else:
                raise _SyntaxError(f"found '{lit}', expected: ',', or identifier")
        self.take()
        return found

    def exact_value(self) -> set[str]:
        if self.peek()[0] in (END, COMMA):
            return {""}
        tok, lit = self.take()
        if tok != IDENT:
            raise _SyntaxError(f"found '{lit}', expected: identifier")
        return {lit}


def parse_label_selector(text: str) -> LabelSelector:
    """labels.Parse: "" selects everything; bad syntax or keys/values -> 400 BadRequest."""
    try:
        requirements = _Parser(text).parse()
    except _SyntaxError as err:
        raise bad_request(str(err)) from None
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


def label_selector_from_spec(selector: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, {} everything.

    An invalid selector raises a 400 BadRequest; specs are meant to be checked beforehand with
    `admission.meta.validate_label_selector`, which reports every problem as a field error.
    """
    if selector is None:
        return LabelSelector(nothing=True)
    match_labels: Mapping[str, str] = selector.get("matchLabels") or {}
    expressions: Sequence[Mapping[str, Any]] = selector.get("matchExpressions") or []
    requirements = [new_requirement(k, EQUALS, [match_labels[k]]) for k in sorted(match_labels)]
    for expr in expressions:
        op = _SPEC_OPERATORS.get(expr.get("operator", ""))
        if op is None:
            raise bad_request(
                f"{go_value(str(expr.get('operator', '')))} is not a valid label selector operator")
        requirements.append(new_requirement(expr.get("key", ""), op, expr.get("values") or []))
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))
