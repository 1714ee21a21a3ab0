"""The outside reference for ARM bodies: azure-mgmt-network's own models.

azure-mgmt-network 33 generates its models from ARM's TypeSpec: each is a mapping over the
REST JSON with typed fields (`rest_field`), but constructing one from a dict accepts anything.
`problems(Model, body)` walks the body against the model's field declarations instead: an
unknown key, a read-only field sent, a missing required field, a wrong JSON type or a value
outside a fixed enum is a problem, so a golden cannot drift from what ARM takes. `round_trip`
builds the model from the body and serialises it with the SDK's own encoder (what the client
sends): it must come back unchanged.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from typing import Any

from azure.mgmt.network import models
from azure.mgmt.network._utils import model_base
from azure.mgmt.network.models import _enums, _models

_NS = {**vars(_models), "_models": models, "_enums": _enums}


def _fields(cls: type) -> dict[str, tuple[Any, bool, bool]]:
    """rest name -> (type, required, read-only)."""
    cls()  # the generated class computes its field table on first construction
    hints = typing.get_type_hints(cls, globalns=_NS)
    out = {}
    for attr, rf in getattr(cls, "_attr_to_rest_field").items():  # noqa: B009
        hint = hints[attr]
        args = typing.get_args(hint)
        required = not (typing.get_origin(hint) in (typing.Union, types.UnionType)
                        and type(None) in args)
        out[rf._rest_name] = (hint, required, getattr(rf, "_visibility", None) == ["read"])
    return out


def _check(hint: Any, value: Any, path: str, found: list[str]) -> None:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        enums = [a for a in options if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums and isinstance(value, str):
            allowed = {m.value for e in enums for m in e}
            if value not in allowed:
                found.append(f"{path}: {value!r} is not one of {sorted(allowed)}")
            return
        if len(options) == 1:
            _check(options[0], value, path, found)
            return
        if not any(_fits(o, value) for o in options):
            found.append(f"{path}: {value!r} fits none of {options}")
        return
    if origin is list:
        if not isinstance(value, list):
            found.append(f"{path}: must be a list, not {value!r}")
            return
        (item,) = typing.get_args(hint)
        for i, v in enumerate(value):
            _check(item, v, f"{path}[{i}]", found)
        return
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            found.append(f"{path}: must be a mapping of strings, not {value!r}")
        return
    if isinstance(hint, type) and getattr(hint, "_is_model", False):
        found += problems(hint, value, path)
        return
    if not _fits(hint, value):
        found.append(f"{path}: must be {getattr(hint, '__name__', hint)}, not {value!r}")


def _fits(hint: Any, value: Any) -> bool:
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (str, float):
        return isinstance(value, hint)
    return True


def problems(cls: type, body: Any, path: str = "") -> list[str]:
    """Every way `body` is not a `cls` as ARM takes it (empty: it is)."""
    if not isinstance(body, dict):
        return [f"{path or cls.__name__}: must be an object, not {body!r}"]
    fields = _fields(cls)
    found: list[str] = []
    for key, value in body.items():
        here = f"{path}.{key}" if path else key
        if key not in fields:
            found.append(f"{here}: unknown to {cls.__name__}")
            continue
        hint, _, readonly = fields[key]
        if readonly:
            found.append(f"{here}: read-only in {cls.__name__} (ARM ignores it)")
        _check(hint, value, here, found)
    for key, (_, required, readonly) in fields.items():
        if required and not readonly and key not in body:
            found.append(f"{path}.{key}: required by {cls.__name__}")
    return found


def round_trip(cls: type, body: dict[str, Any]) -> dict[str, Any]:
    """`body` through the model and the SDK's JSON encoder, as the client would send it."""
    model = cls(body)
    out: dict[str, Any] = json.loads(json.dumps(model, cls=model_base.SdkJSONEncoder,
                                                exclude_readonly=True))
    return out
