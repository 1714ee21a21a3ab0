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

import yaml

from providers.cluster import NodeView
from providers.errors import ProviderError
from providers.interface import Provider, check_capabilities
from providers.registry import UnknownProviderError, available, settings_validator

from .config import Config, ConfigError, load_config
from .records import service_view
from .spec_builder import build_spec


def validate_config(path: str | Path) -> tuple[Config | None, list[str]]:
    """Every problem of a config file, core keys and the provider's section, as lines."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, str(exc).splitlines()
    problems: list[str] = []
    try:
        validator = settings_validator(config.provider)
    except ImportError as exc:
        return config, [f"{path}: provider: {config.provider!r} cannot be loaded: {exc}"]
    if validator is None and config.provider not in available():
        return config, [f"{path}: provider: unknown provider {config.provider!r}; available: "
                        f"{', '.join(available())}"]
    if validator is not None:
        section = config.provider if config.provider in (
            "baremetal", "aws", "gcp", "azure") else f"plugins.{config.provider}"
        for key, message in validator(config.provider_settings()):
            problems.append(f"{path}: {section}.{key}: {message}" if key
                            else f"{path}: {section}: {message}")
    return config, problems


def load_service(path: str | Path) -> dict[str, Any]:
    """The Service in a YAML file (the first document of kind Service)."""
    try:
        docs = list(yaml.safe_load_all(Path(path).read_text()))
    except (OSError, yaml.YAMLError) as exc:
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
    spec = build_spec(view, nodes, config)
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
