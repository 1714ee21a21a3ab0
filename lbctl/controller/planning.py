"""`lbctl config validate` and `lbctl plan`: the controller's own logic, run as a dry run.

Both reuse exactly what the controller runs (one config parser, the provider's own settings
validator, `build_spec`, the provider's `plan`), so what they accept or print is what the
controller would do; nothing here writes to a cluster or a cloud.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from providers.cluster import NodeView
from providers.errors import ProviderError
from providers.interface import Provider, check_capabilities
from providers.registry import UnknownProviderError, available, settings_validator

from ..parsing import YamlError, load_yaml, load_yaml_all
from .config import Config, ConfigError, load_config
from .records import service_view
from .spec_builder import build_spec


def validate_config(path: str | Path) -> tuple[Config | None, list[str]]:
    """Every problem of a config file, core keys and the provider's section, as lines; the
    provider's section is checked even when core keys have problems, so fixing one round
    never reveals another."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        seen = {key for key, _ in exc.problems}
        raw = _raw(path)
        provider = raw.get("provider") if isinstance(raw, dict) else None
        if not isinstance(provider, str) or not provider:
            provider = "baremetal"
        settings = _section(raw, provider) if isinstance(raw, dict) else {}
        more = _provider_problems(path, provider, settings, seen)
        return None, [*str(exc).splitlines(), *more]
    return config, _provider_problems(path, config.provider, config.provider_settings(), set())


BUILTIN_SECTIONS = ("baremetal", "aws", "gcp", "azure")


def _raw(path: str | Path) -> Any:
    try:
        return load_yaml(Path(path).read_text())
    except (OSError, YamlError):
        return None


def _section(raw: dict[str, Any], provider: str) -> Any:
    if provider in BUILTIN_SECTIONS:
        return raw.get(provider) or {}
    plugins = raw.get("plugins")
    return (plugins.get(provider) if isinstance(plugins, dict) else None) or {}


def _provider_problems(path: str | Path, provider: str, settings: Any,
                       seen: set[str]) -> list[str]:
    """The provider's own checks of its section, as lines; keys in `seen` already reported."""
    try:
        validator = settings_validator(provider)
    except ImportError as exc:
        return [f"{path}: provider: {provider!r} cannot be loaded: {exc}"]
    if validator is None and provider not in available():
        return [f"{path}: provider: unknown provider {provider!r}; available: "
                f"{', '.join(available())}"]
    if validator is None:
        return []
    section = provider if provider in BUILTIN_SECTIONS else f"plugins.{provider}"
    lines = []
    for key, message in validator(settings if isinstance(settings, dict) else {}):
        full = f"{section}.{key}" if key else section
        if full not in seen:
            lines.append(f"{path}: {full}: {message}")
    return lines


def load_service(path: str | Path) -> dict[str, Any]:
    """The Service in a YAML file (the first document of kind Service)."""
    try:
        docs = load_yaml_all(Path(path).read_text())
    except (OSError, YamlError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "Service":
            doc.setdefault("metadata", {}).setdefault("namespace", "default")
            doc["metadata"].setdefault("uid", "00000000-0000-0000-0000-000000000000")
            return doc
    raise ValueError(f"{path}: no Service in the file")


def plan(service: dict[str, Any], nodes: Iterable[NodeView], config: Config,
         provider: Provider) -> str:
    """The spec as JSON, then the provider's planned changes."""
    view = service_view(service)
    # without a cluster there are no EndpointSlices: the endpoints mode plans with none
    spec = build_spec(view, nodes, config,
                      default_target_mode=provider.capabilities.default_target_mode)
    lines = [json.dumps(spec.to_json(), indent=2, sort_keys=True)]
    try:
        check_capabilities(provider.capabilities, spec)
        provider.validate(spec)
        changes = provider.plan(spec)
    except ProviderError as exc:
        lines.append(f"error: {exc}")
        return "\n".join(lines)
    lines.append("planned changes:" if changes else "planned changes: none")
    lines += [f"  - {change}" for change in changes]
    return "\n".join(lines)


__all__ = ["UnknownProviderError", "load_service", "plan", "validate_config"]
