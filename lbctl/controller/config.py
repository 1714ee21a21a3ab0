"""The operator's configuration (the ConfigMap's `config.yaml`): one typed parser for all.

The controller, `lbctl config validate` and any future webhook read config through `load_config`
only, so they can never disagree about what is valid. Errors name the key path and the file
(`config.yaml: meltdown.maxRemovedFraction: must be greater than 0 ...`), every problem at once.
Provider sections (`baremetal`, `aws`, ...) are validated by their provider, which owns them.
Errors, key paths and YAML loading come from `lbctl.parsing`, shared with the balancer's file
and the providers' settings, so every file lbctl reads reports problems alike.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..parsing import (
    Bool,
    ConfigError,
    Float,
    Int,
    YamlError,
    credential_problems,
    load_yaml,
    parse_yaml_model,
)

__all__ = ["Config", "ConfigError", "ControllerSettings", "Meltdown", "load_config",
           "parse_config"]

_MODEL = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class Meltdown(BaseModel):
    """Never remove more than this share of a balancer's targets in one step, never to zero."""

    model_config = _MODEL
    max_removed_fraction: Float = Field(0.5, alias="maxRemovedFraction", gt=0, le=1)


class ControllerSettings(BaseModel):
    """How hard the controller works."""

    model_config = _MODEL
    workers: Int = Field(8, ge=1, le=64)
    """Services reconciled in parallel (one Service is never reconciled twice at once)."""
    resync_seconds: Float = Field(300, alias="resyncSeconds", ge=10, le=86400)
    """Drift repair: every balancer is observed and re-ensured about this often (jittered)."""
    node_sync_debounce_seconds: Float = Field(1.0, alias="nodeSyncDebounceSeconds", ge=0, le=60)
    """Node changes within this window are batched into one pass over the Services."""
    qps: Float = Field(50, gt=0, le=1000)
    """Client-side limit on API server requests per second."""
    burst: Int = Field(100, ge=1, le=2000)


class Config(BaseModel):
    """The whole `config.yaml`."""

    model_config = _MODEL
    cluster_name: str = Field("kubernetes", alias="clusterName", min_length=1, max_length=32)
    """Used in balancer names and ownership tags: changing it orphans existing balancers."""
    provider: str = Field("baremetal", min_length=1)
    load_balancer_classes: tuple[str, ...] = Field((), alias="loadBalancerClasses")
    """Classes lbctl owns; Services of any other class are never touched."""
    handle_classless_services: Bool = Field(True, alias="handleClasslessServices")
    """Also act as the cluster's default LoadBalancer controller."""
    meltdown: Meltdown = Meltdown()
    controller: ControllerSettings = ControllerSettings()
    baremetal: dict[str, Any] = Field(default_factory=dict)
    aws: dict[str, Any] = Field(default_factory=dict)
    gcp: dict[str, Any] = Field(default_factory=dict)
    azure: dict[str, Any] = Field(default_factory=dict)
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Settings for third-party providers, by provider name."""

    @field_validator("cluster_name")
    @classmethod
    def _cluster_name(cls, value: str) -> str:
        if not re.fullmatch(_DNS_LABEL, value):
            raise ValueError(f"{value!r} must be lowercase letters, digits and '-', starting "
                             "and ending with a letter or digit (it is used in cloud names)")
        return value

    @field_validator("load_balancer_classes")
    @classmethod
    def _classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if "/" not in item:
                raise ValueError(f"{item!r} must be a domain-prefixed name such as "
                                 "'lbctl.io/baremetal' (Kubernetes requires the prefix)")
        if len(set(value)) != len(value):
            raise ValueError("lists a class twice")
        return value

    def provider_settings(self) -> dict[str, Any]:
        """The section belonging to the configured provider."""
        builtin = {"baremetal": self.baremetal, "aws": self.aws, "gcp": self.gcp,
                   "azure": self.azure}
        return builtin.get(self.provider, self.plugins.get(self.provider, {}))

    def owns_class(self, load_balancer_class: str | None) -> bool:
        """Whether a Service of this class is lbctl's to reconcile."""
        if load_balancer_class is None:
            return self.handle_classless_services
        return load_balancer_class in self.load_balancer_classes


def parse_config(text: str, source: str = "config.yaml") -> Config:
    """Parse and validate; raise ConfigError naming every bad key, and every credential in
    any provider's section or a plugin's, whichever provider is active."""
    problems: list[tuple[str, str]] = []
    config: Config | None = None
    try:
        config = parse_yaml_model(Config, text, source)
    except ConfigError as exc:
        problems = list(exc.problems)
    try:
        doc = load_yaml(text)
    except YamlError:
        doc = None  # already reported
    if isinstance(doc, dict):
        for section in ("baremetal", "aws", "gcp", "azure", "plugins"):
            problems += [p for p in credential_problems(doc.get(section), section)
                         if p not in problems]
    if problems or config is None:
        raise ConfigError(source, problems)
    return config


def load_config(path: str | Path) -> Config:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(str(path), [("", exc.strerror or str(exc))]) from exc
    return parse_config(text, str(path))
