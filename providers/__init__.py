"""The provider interface, for lbctl's own providers and for plugins; one package per provider.

Everything a provider (built-in or third-party) needs is importable from here:

- what to build and what to report: `LoadBalancerSpec` (with `Listener`, `Target`,
  `HealthCheck`, `ServiceRef`), `BalancerRef`, `LoadBalancerStatus` (with `IngressPoint`,
  `PortStatus`);
- the contract: `Provider` (eight calls: validate, ensure, plan, observe, delete, release,
  list_owned, close), `Capabilities` and `check_capabilities`, the optional `ChangeNotifier`
  and `Reconfigurable`, and `ProviderFactory` (what a package exports);
- the error tree that drives the controller's retries: `ProviderError` > `RetryAfter`,
  `TransientError`, `PermanentError` (names the field), `NotOwnedError`;
- the cluster as providers see it: `ClusterView` (Services and Nodes, read-only), `ServiceView`,
  `NodeView`, and `StaticView` for tests and `lbctl plan`.

A plugin registers a factory under the entry-point group `lbctl.providers` (see the README);
`providers.registry` finds it. Implementations (`providers.aws`, `.baremetal`, `.fake`) import
only these modules, `lbctl.parsing` and their own SDK, lazily.
"""

from .cluster import ClusterView, NodeView, ServiceView, StaticView
from .errors import NotOwnedError, PermanentError, ProviderError, RetryAfter, TransientError
from .interface import (
    Capabilities,
    ChangeNotifier,
    Provider,
    ProviderFactory,
    Reconfigurable,
    check_capabilities,
)
from .spec import (
    BalancerRef,
    HealthCheck,
    IngressPoint,
    Listener,
    LoadBalancerSpec,
    LoadBalancerStatus,
    PortStatus,
    ServiceRef,
    Target,
)

__all__ = [
    "BalancerRef",
    "Capabilities",
    "ChangeNotifier",
    "ClusterView",
    "HealthCheck",
    "IngressPoint",
    "Listener",
    "LoadBalancerSpec",
    "LoadBalancerStatus",
    "NodeView",
    "NotOwnedError",
    "PermanentError",
    "PortStatus",
    "Provider",
    "ProviderError",
    "ProviderFactory",
    "Reconfigurable",
    "RetryAfter",
    "ServiceRef",
    "ServiceView",
    "StaticView",
    "Target",
    "TransientError",
    "check_capabilities",
]
