"""Providers by name, loaded only when asked for.

Built-in providers are named here and imported lazily (so the controller never imports a cloud
SDK it does not use); third parties register a factory under the entry-point group
`lbctl.providers`, e.g. in their pyproject:

    [project.entry-points."lbctl.providers"]
    mycloud = "mycloud_lbctl:create"
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import cast

from .interface import ProviderFactory, SettingsValidator

ENTRY_POINT_GROUP = "lbctl.providers"

BUILTIN: dict[str, str] = {
    "aws": "providers.aws:create",
    "gcp": "providers.gcp:create",
    "azure": "providers.azure:create",
    "baremetal": "providers.baremetal:create",
    "fake": "providers.fake:create",
}


class UnknownProviderError(LookupError):
    """No built-in or installed provider has this name."""


def available() -> list[str]:
    """Every provider name that can be loaded (built-ins first, then plugins)."""
    names = list(BUILTIN)
    names += sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)
                    if ep.name not in BUILTIN)
    return names


def load(name: str) -> ProviderFactory:
    """The factory for `name`; imports its module (and so its SDK) only now."""
    target = BUILTIN.get(name)
    if target is None:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            raise UnknownProviderError(
                f"unknown provider {name!r}; available: {', '.join(available())}")
        return cast(ProviderFactory, found[0].load())
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return cast(ProviderFactory, getattr(module, attr))


def settings_validator(name: str) -> SettingsValidator | None:
    """The provider module's `validate_settings`, when it has one (built-ins only)."""
    target = BUILTIN.get(name)
    if target is None:
        return None
    module = importlib.import_module(target.partition(":")[0])
    return cast(SettingsValidator | None, getattr(module, "validate_settings", None))
