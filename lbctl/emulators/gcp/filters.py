"""The `filter` of GCE's list calls: the part of its grammar a provider needs, and 400 for the rest.

Supported (GCE's documented list-filter syntax):
- a comparison `FIELD OP VALUE`: FIELD a top-level field of the resource or a dotted path into
  it (`labels.owner`, `httpHealthCheck.port`); OP one of
  - `=` and `!=`: exact equality of the value's text (`allPorts = true`, `name != "x"`);
  - `eq` and `ne`: VALUE is an RE2-style regular expression that must match the WHOLE field
    (`name eq "k8s2-.*"`, `name ne .*-old`);
  - `:` with `*`: the field is present and not empty (`labels.owner:*`); on a list field,
    `FIELD:VALUE` tests membership (`ports:"80"`);
  VALUE quoted ("..." or '...') or bare; a single unparenthesised `eq`/`ne` comparison takes the
  rest of the filter as its literal, as GCE does;
- several comparisons in parentheses, joined by spaces or `AND` (all must hold) or by `OR`
  (one must hold), nested with parentheses: `(name eq "a-.*") (labels.env = "prod")`,
  `((name = "a") OR (name = "b")) AND (region eq ".*/us-central1")`.

Refused with 400 invalid, naming the problem: fields the resource does not have, `NOT` and `-`,
`<`/`>` comparisons, `*` wildcards in `=`/`!=` (not emulated: use `eq` and a pattern), `AND`
and `OR` mixed at one level without parentheses (GCE gives them a precedence; say what you
mean), regular-expression and plain comparisons in one filter (GCE refuses the mix), and
unbalanced parentheses or quotes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from .errors import GceError

Predicate = Callable[[dict[str, Any]], bool]
_SINGLE_REGEX = re.compile(r"\s*([A-Za-z_][\w.]*)\s+(eq|ne)\s+(.*?)\s*", re.S)
_TOKEN = re.compile(r"""\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(!=|=|:|<=|>=|<|>)
                        |([^\s()=!:<>"']+))""", re.X)


def parse(text: str, fields: Collection[str]) -> Predicate:
    """A predicate over rendered resources for the filter `text` (empty: everything)."""
    if not text.strip():
        return lambda _: True
    return _Parser(text, fields).predicate()


class _Parser:
    def __init__(self, text: str, fields: Collection[str]) -> None:
        self.text = text
        self.fields = fields
        self.kinds: set[str] = set()

    def fail(self, why: str) -> GceError:
        return GceError(400, "invalid", f"Invalid value for field 'filter': '{self.text}'. "
                                        f"Invalid list filter expression: {why}")

    def predicate(self) -> Predicate:
        single = _SINGLE_REGEX.fullmatch(self.text)
        if single and not self.text.lstrip().startswith("("):
            field, op, literal = single.groups()
            return self.comparison(field, op, _unquote(literal))
        tokens = self.tokenize()
        predicate, rest = self.sequence(tokens, 0)
        if rest != len(tokens):
            raise self.fail("unexpected ')'")
        return predicate

    def tokenize(self) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(self.text):
            if not self.text[position:].strip():
                break
            match = _TOKEN.match(self.text, position)
            if match is None or match.end() == position:
                raise self.fail(f"cannot read from {self.text[position:]!r}")
            group = match.lastindex or 5
            tokens.append((("(", ")", "str", "op", "word")[group - 1], match.group(group)))
            position = match.end()
        return tokens

    def sequence(self, tokens: list[tuple[str, str]], at: int) -> tuple[Predicate, int]:
        terms: list[Predicate] = []
        joins: set[str] = set()
        while at < len(tokens) and tokens[at][0] != ")":
            if terms:
                word = tokens[at][1].upper() if tokens[at][0] == "word" else ""
                if word in ("AND", "OR"):
                    joins.add(word)
                    at += 1
                else:
                    joins.add("AND")
            if at < len(tokens) and tokens[at][0] == "word" and tokens[at][1].upper() == "NOT":
                raise self.fail("NOT is not supported")
            term, at = self.term(tokens, at)
            terms.append(term)
        if not terms:
            raise self.fail("empty expression")
        if len(joins) > 1:
            raise self.fail("AND and OR mixed at one level: add parentheses")
        if joins == {"OR"}:
            return (lambda item: any(t(item) for t in terms)), at
        return (lambda item: all(t(item) for t in terms)), at

    def term(self, tokens: list[tuple[str, str]], at: int) -> tuple[Predicate, int]:
        if at >= len(tokens):
            raise self.fail("a comparison is missing")
        if tokens[at][0] == "(":
            inner, at = self.sequence(tokens, at + 1)
            if at >= len(tokens) or tokens[at][0] != ")":
                raise self.fail("unbalanced parentheses")
            return inner, at + 1
        field_token, op_token, value_token = (tokens[at + k] if at + k < len(tokens)
                                              else ("", "") for k in range(3))
        op = op_token[1]
        if field_token[0] != "word" or not (op_token[0] == "op" or op in ("eq", "ne")):
            raise self.fail("a comparison needs FIELD OP VALUE")
        if value_token[0] not in ("str", "word"):
            raise self.fail(f"{field_token[1]} {op} has no value")
        value = _unquote(value_token[1]) if value_token[0] == "str" else value_token[1]
        return self.comparison(field_token[1], op, value), at + 3

    def comparison(self, field: str, op: str, value: str) -> Predicate:
        top = field.split(".", 1)[0]
        if top not in self.fields:
            raise self.fail(f"unknown field '{field}'")
        if op in ("<", ">", "<=", ">="):
            raise self.fail(f"'{op}' is not supported")
        self.kinds.add("regex" if op in ("eq", "ne") else "plain")
        if len(self.kinds) > 1:
            raise self.fail("regular-expression (eq, ne) and plain (=, !=, :) comparisons "
                            "cannot be mixed")
        path = field.split(".")
        if op in ("eq", "ne"):
            try:
                pattern = re.compile(value)
            except re.error as exc:
                raise self.fail(f"bad regular expression {value!r}: {exc}") from None
            hit = op == "eq"
            return lambda item: _regex(_get(item, path), pattern) == hit
        if op == ":":
            if value == "*":
                return lambda item: _get(item, path) not in (None, "", [], {})
            return lambda item: _has(_get(item, path), value)
        if "*" in value:
            raise self.fail(f"'*' in '{field} {op} {value}': wildcards are not emulated, "
                            f"use eq with a regular expression")
        hit = op == "="
        return lambda item: _equal(_get(item, path), value) == hit


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _get(item: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(item, dict):
            return None
        item = item.get(part)
    return item


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _equal(value: Any, literal: str) -> bool:
    if value is None or isinstance(value, dict):
        return False
    if isinstance(value, list):
        return any(_text(v) == literal for v in value)
    return _text(value) == literal


def _regex(value: Any, pattern: re.Pattern[str]) -> bool:
    if value is None or isinstance(value, (dict, list)):
        return False
    return pattern.fullmatch(_text(value)) is not None


def _has(value: Any, literal: str) -> bool:
    return isinstance(value, list) and any(_text(v) == literal for v in value)
