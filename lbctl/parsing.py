"""Reading what people write: YAML files, API bodies and config sections, with errors that
name the key.

One module for every parser in lbctl (the controller's config, the balancer daemon's static file
and API bodies, each provider's settings section), so they all report problems the same way:
`source: key.path[1].sub: message`, every problem at once, never a traceback. It imports nothing
of lbctl or of the providers (an import-linter contract says so), so the balancer daemon and
third-party providers can use it without loading the controller.

- `ConfigError`: a file or body that cannot be used; `problems` holds (key path, message) pairs.
- `Problems`: the list hand-written section parsers append (key path, message) pairs to.
- `load_yaml`: safe YAML with nesting and alias expansion bounded (`YamlError`).
- `parse_yaml_model` / `parse_model`: YAML text or a decoded object -> a validated pydantic
  model, pydantic's errors turned into key paths in the document's own terms.
- `unknown_keys`, `boolean`, `within`: the small checks hand-written section parsers share.
- `Int`, `Float`, `Bool`: strict field types for pydantic models, so a port, a count or a
  switch never silently turns a string or a boolean into something else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, Strict, ValidationError

Int = Annotated[int, Strict()]
"""An integer field that takes only integers: never `true` (1), `"18081"` or `18081.0`."""
Float = Annotated[float, Strict()]
"""A number field that takes numbers (integers too), never strings or booleans."""
Bool = Annotated[bool, Strict()]
"""A boolean field that takes only `true`/`false`, never `"yes"`, `1` or `"on"`."""

Problem = tuple[str, str]
"""(key path, message): `pools[1].addresses[0]`, `must be an address range, not 'x'`."""
Problems = list[Problem]


class ConfigError(ValueError):
    """A config that cannot be used; `problems` lists (key path, message) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {path}: {msg}" if path else f"{source}: {msg}"
                 for path, msg in problems]
        super().__init__("\n".join(lines))


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _path(loc: tuple[int | str, ...], doc: Any) -> str:
    """`controller.workers`, `pools[1]`, `plugins["x.y"]`: a key that is empty or holds
    '.', '[' or ']' is quoted; a mapping's non-string key (YAML `false:`) is shown in YAML form."""
    out = ""
    node = doc
    for part in loc:
        if isinstance(part, int) and not isinstance(node, dict):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        key: Any = part
        if isinstance(node, dict) and part not in node:
            key = next((k for k in node if not isinstance(k, str) and str(k) == str(part)),
                       part)
            if isinstance(part, int) and key is part:
                key = next((k for k in node if not isinstance(k, str)), part)
        if not isinstance(key, str):
            text = yaml.safe_dump(key).splitlines()[0].removesuffix("...").strip()
        elif _PLAIN_KEY.fullmatch(key):
            text = key
        else:
            text = json.dumps(key)
        quoted = text.startswith('"')
        out += (f"[{text}]" if quoted and out else text) if quoted else (
            f".{text}" if out else text)
        node = node.get(key) if isinstance(node, dict) else None
    return out


MAX_YAML_NODES = 1_000_000
"""Nodes a YAML document may hold once its aliases are expanded: a megabyte of `&a [*b, *b,
...]` lines otherwise expands into gigabytes as soon as anything serialises it."""


class YamlError(ValueError):
    """Text that is not YAML lbctl will read: malformed, too deep, or too big once expanded."""


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader that counts what aliases expand to and refuses past MAX_YAML_NODES."""

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        node = super().compose_node(parent, index)
        if node is None or id(node) in self._sizes:
            return node  # an alias: its size was counted where it was anchored
        children: list[Any] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        size = 1 + sum(self._sizes.get(id(child), 1) for child in children)
        if size > MAX_YAML_NODES:
            raise YamlError(f"more than {MAX_YAML_NODES:,} values once its aliases are "
                            "expanded")
        self._sizes[id(node)] = size
        return node


def load_yaml(text: str | bytes) -> Any:
    """YAML text -> Python values, safely and bounded: malformed YAML, nesting too deep for
    the parser and alias bombs all end in YamlError with a message, never in a crash."""
    return _bounded(lambda: yaml.load(text, Loader=_BoundedLoader))  # noqa: S506 (safe)


def load_yaml_all(text: str | bytes) -> list[Any]:
    """Every document of a multi-document YAML text, bounded like `load_yaml`."""
    docs: list[Any] = _bounded(
        lambda: list(yaml.load_all(text, Loader=_BoundedLoader)))
    return docs


def _bounded(load: Callable[[], Any]) -> Any:
    try:
        return load()
    except YamlError:
        raise
    except RecursionError:
        raise YamlError("nested too deeply") from None
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        # Tag constructors (`!!int x`) raise ValueError.
        raise YamlError(f"{type(exc).__name__}: {exc}") from exc


M = TypeVar("M", bound=BaseModel)


def parse_yaml_model(model: type[M], text: str, source: str,
                     not_a_mapping: str = "must be a mapping of keys to values") -> M:
    """YAML text -> validated `model`; ConfigError naming every bad key (an empty file is
    an empty mapping). Shared by every file lbctl reads, so all report problems alike."""
    try:
        doc = load_yaml(text)
    except YamlError as exc:
        raise ConfigError(source, [("", f"not valid YAML: {exc}")]) from exc
    return parse_model(model, {} if doc is None else doc, source, not_a_mapping)


def validation_problems(exc: ValidationError, doc: Any) -> list[tuple[str, str]]:
    """pydantic's errors as (key path in `doc`, message) pairs, in the document's own terms."""
    problems = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "invalid_key":  # pydantic shows a non-string key by position
            loc, msg = (*loc[:-1], err["input"]), "keys must be strings"
        problems.append((_path(loc, doc), msg))
    return problems


def parse_model(model: type[M], doc: Any, source: str,
                not_a_mapping: str = "must be a mapping of keys to values") -> M:
    """A decoded JSON/YAML object -> validated `model`; ConfigError naming every bad key."""
    if not isinstance(doc, dict):
        raise ConfigError(source, [("", not_a_mapping)])
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(source, validation_problems(exc, doc)) from exc


_CREDENTIAL_WORDS = ("accesskey", "secret", "token", "credential", "password", "apikey",
                     "privatekey", "clientsecret")
CREDENTIALS_HINT = ("credentials come from the environment, a mounted Secret (a ...File key "
                    "naming the file) or workload identity, never from the config")


def is_credential_key(key: object) -> bool:
    """`secretAccessKey`, `apiToken`, `password`, `aws_secret_access_key`, ...; a key naming
    a file (`tokenFile`, `passwordFile`) is how a Secret is referred to, and is fine."""
    if not isinstance(key, str):
        return False
    folded = re.sub(r"[^a-z0-9]", "", key.lower())
    return not folded.endswith("file") and any(w in folded for w in _CREDENTIAL_WORDS)


def credential_problems(doc: Any, path: str) -> Problems:
    """Every credential-like key anywhere under `doc` (a section at `path`)."""
    found: Problems = []
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            here = f"{path}.{key}" if path else str(key)
            if is_credential_key(key):
                found.append((here, CREDENTIALS_HINT))
            else:
                found += credential_problems(value, here)
    elif isinstance(doc, list):
        for i, item in enumerate(doc):
            found += credential_problems(item, f"{path}[{i}]")
    return found


def unknown_keys(raw: Mapping[Any, Any], allowed: Iterable[str], path: str,
                 problems: Problems) -> None:
    """Append `unknown key` for every key of `raw` (a section at `path`) not in `allowed`."""
    known = set(allowed)
    for key in raw:
        if key not in known:
            problems.append((f"{path}.{key}" if path else str(key), "unknown key"))


def section_keys(raw: Mapping[Any, Any], allowed: Iterable[str], path: str,
                 credentials_hint: str, problems: Problems) -> None:
    """A provider section's keys: a credential-like key gets `credentials_hint` (credentials
    are never read from config), any other unknown key `unknown key`."""
    known = set(allowed)
    for key in raw:
        if key in known:
            continue
        hint = credentials_hint if isinstance(key, str) and is_credential_key(key) else \
            "unknown key"
        problems.append((f"{path}.{key}", hint))


def boolean(raw: Mapping[str, Any], key: str, default: bool, path: str,
            problems: Problems) -> bool:
    """`raw[key]` when it is a YAML boolean, else `default` and a problem naming the key."""
    value = raw.get(key, default)
    if not isinstance(value, bool):
        problems.append((f"{path}.{key}", f"must be true or false, not {value!r}"))
        return default
    return value


def rates(value: Any, path: str, defaults: Mapping[str, float], maximum: float,
          problems: Problems) -> dict[str, float]:
    """A `rateLimits:` mapping of API families to requests per second: each family absent
    keeps its default; an unknown family or a rate that is not a number in (0, maximum] is a
    problem naming its key (and keeps the default)."""
    limits = dict(defaults)
    if value is None:
        return limits
    if not isinstance(value, Mapping):
        problems.append((path, f"must be a mapping of {', '.join(defaults)} to requests per "
                               f"second, not {value!r}"))
        return limits
    for key, rate in value.items():
        if key not in defaults:
            problems.append((f"{path}.{key}", f"unknown key (allowed: {', '.join(defaults)})"))
        elif (not isinstance(rate, int | float) or isinstance(rate, bool)
              or not 0 < rate <= maximum):
            problems.append((f"{path}.{key}", "must be a number of requests per second above 0 "
                                              f"and at most {maximum:g}, not {rate!r}"))
        else:
            limits[key] = float(rate)
    return limits


def string_map(value: Any, path: str, what: str, check: Callable[[str, str], str | None],
               problems: Problems) -> tuple[tuple[str, str], ...]:
    """A mapping of strings to strings (tags, labels: `what` names its keys, e.g. "tag
    names"), sorted; a key or value that is not a string, or that `check(key, value)` finds a
    problem with (its message), is a problem naming its key, and is left out."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        problems.append((path, f"must be a mapping of {what} to values, not {value!r}"))
        return ()
    out: list[tuple[str, str]] = []
    for key, text in value.items():
        if not isinstance(key, str):
            problems.append((f"{path}.{key}", f"{what} must be strings, not {key!r} "
                                              "(quote it in YAML)"))
            continue
        if not isinstance(text, str):
            problems.append((f"{path}.{key}", f"must be a string, not {text!r} "
                                              "(quote it in YAML)"))
            continue
        problem = check(key, text)
        if problem is not None:
            problems.append((f"{path}.{key}", problem))
        else:
            out.append((key, text))
    return tuple(sorted(out))


def matching(raw: Mapping[str, Any], key: str, pattern: re.Pattern[str], example: str,
             path: str, problems: Problems, default: str = "") -> str:
    """`raw[key]` when it is a string `pattern` matches whole; absent or empty: `default`;
    else `default` and a problem naming the key with `example` of what it must be."""
    value = raw.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, str) and pattern.fullmatch(value):
        return value
    problems.append((f"{path}.{key}", f"must be {example}, not {value!r}"))
    return default


def within(path: str, root: str) -> str:
    """`path` relative to the section `root` (`aws.rateLimits.x` -> `rateLimits.x`), as a
    provider's validator reports it to `lbctl config validate`, which prefixes the section."""
    return path[len(root):].lstrip(".") if path.startswith(root) else path
