"""The provider boundary: what a provider declares up front and the five calls it answers.

Capabilities are declared, not discovered by calling and catching NotImplementedError: the
controller checks a spec against them before any cloud call and tells the user which field the
provider cannot honour. Calls are synchronous (cloud SDKs are) and run in the controller's worker
threads; a provider must serialise its own writes to objects shared by several Services.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .cluster import ClusterView
from .errors import PermanentError
from .spec import BalancerRef, LoadBalancerSpec, LoadBalancerStatus

TARGET_MODE_ANNOTATION = "lbctl.io/target-mode"
"""`endpoints` or `nodePort`: where the Service's balancer sends traffic (see
`providers.spec.TARGET_MODES`); unset: the provider's default, or `endpoints` for a Service
without nodePorts."""
NODE_PORTS_FIELD = "spec.allocateLoadBalancerNodePorts"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can build; checked against every spec before `ensure`."""

    protocols: frozenset[str] = frozenset({"TCP", "UDP"})
    mixed_protocols: bool = True
    """TCP and UDP listeners on one balancer."""
    static_ips: bool = True
    """Honours requested addresses (`spec.loadBalancerIP` and annotations)."""
    source_ranges: bool = True
    health_check_protocols: frozenset[str] = frozenset({"TCP", "HTTP"})
    ip_families: frozenset[str] = frozenset({"IPv4"})
    shared_objects: bool = False
    """Several Services share cloud objects (one LB, one IP): writes are serialised."""
    ingress: str = "ip"
    """What the status carries: "ip" or "hostname"."""
    annotation_prefixes: tuple[str, ...] = ()
    """Annotation prefixes the provider reads beyond the well-known ones (third parties:
    "mycloud.example.com/"); only annotations under known prefixes reach the spec, so an
    unrelated annotation change never costs a provider call."""
    target_modes: frozenset[str] = frozenset({"nodePort"})
    """Where the provider can send traffic (`providers.spec.TARGET_MODES`): a cloud's
    balancer targets nodePorts only, so a Service without nodePorts is refused up front,
    naming `spec.allocateLoadBalancerNodePorts`, before any cloud call."""
    default_target_mode: str = "nodePort"
    """The mode of a Service that has nodePorts and names none (a provider may take it from
    its settings, e.g. `baremetal.targetMode`)."""


def check_capabilities(caps: Capabilities, spec: LoadBalancerSpec) -> None:
    """Raise PermanentError naming the first field of `spec` the provider cannot honour."""
    check_target_mode(caps, spec)
    for i, listener in enumerate(spec.listeners):
        if listener.protocol not in caps.protocols:
            raise PermanentError(f"spec.ports[{i}].protocol",
                                 f"{listener.protocol} is not supported by this provider "
                                 f"(supported: {', '.join(sorted(caps.protocols))})")
    if not caps.mixed_protocols and len({li.protocol for li in spec.listeners}) > 1:
        raise PermanentError("spec.ports", "this provider cannot mix protocols on one balancer")
    if spec.requested_ips and not caps.static_ips:
        raise PermanentError("spec.loadBalancerIP", "this provider cannot honour requested IPs")
    if spec.health_check.protocol not in caps.health_check_protocols:
        raise PermanentError("spec.externalTrafficPolicy",
                             f"{spec.health_check.protocol} health checks are not supported")
    for family in spec.ip_families:
        if family not in caps.ip_families:
            raise PermanentError("spec.ipFamilies", f"{family} is not supported by this provider")
    if not caps.source_ranges and spec.source_ranges not in ((), ("0.0.0.0/0",)):
        raise PermanentError("spec.loadBalancerSourceRanges",
                             "this provider cannot restrict source ranges")


def check_target_mode(caps: Capabilities, spec: LoadBalancerSpec) -> None:
    """The spec's target mode is one the provider has, and nodePort mode has its nodePorts:
    the error names what the user wrote (the annotation), or else the field that took the
    nodePorts away, never whatever a provider would stumble on later (an empty target list,
    a balancer daemon's 422)."""
    asked = spec.annotation(TARGET_MODE_ANNOTATION)
    missing = [i for i, li in enumerate(spec.listeners) if li.node_port is None]
    if spec.target_mode not in caps.target_modes:
        if asked is not None:
            raise PermanentError(f"metadata.annotations[{TARGET_MODE_ANNOTATION}]",
                                 f"{asked!r}: this provider sends traffic to "
                                 f"{' or '.join(sorted(caps.target_modes))} targets only")
        raise PermanentError(NODE_PORTS_FIELD, _no_node_ports(
            missing, "this provider's balancers send traffic to each node's nodePort; set "
                     f"{NODE_PORTS_FIELD} to true (or remove it)"))
    if spec.target_mode == "nodePort" and missing:
        via = (f"{TARGET_MODE_ANNOTATION} is nodePort" if asked is not None
               else "the provider's target mode is nodePort")
        fix = (f"set {NODE_PORTS_FIELD} to true, or {TARGET_MODE_ANNOTATION}: endpoints"
               if "endpoints" in caps.target_modes else f"set {NODE_PORTS_FIELD} to true")
        raise PermanentError(NODE_PORTS_FIELD, _no_node_ports(missing, f"{via}; {fix}"))


def _no_node_ports(missing: list[int], advice: str) -> str:
    ports = ", ".join(f"spec.ports[{i}]" for i in missing)
    return f"{ports} {'has' if len(missing) == 1 else 'have'} no nodePort: {advice}"


class Provider(Protocol):
    """One cloud (or bare metal). All calls are idempotent and safe to repeat after a crash."""

    @property
    def capabilities(self) -> Capabilities:
        """Declared up front; read before every ensure (a class attribute will do; a
        reconfigured provider may answer a new default target mode)."""

    def validate(self, spec: LoadBalancerSpec) -> None:
        """Pure: raise PermanentError naming the field (often an annotation) that is wrong."""

    def ensure(self, spec: LoadBalancerSpec) -> LoadBalancerStatus:
        """Observe what exists by ownership, diff against `spec`, write only the differences."""

    def plan(self, spec: LoadBalancerSpec) -> list[str]:
        """The writes `ensure(spec)` would make now, in words, without making them."""

    def observe(self, ref: BalancerRef) -> LoadBalancerStatus | None:
        """What exists for `ref` now, or None. Never writes."""

    def delete(self, ref: BalancerRef) -> None:
        """Remove every object owned by `ref`; not-found is success."""

    def release(self, ref: BalancerRef) -> None:
        """Stop owning `ref`'s objects without deleting them: drop our ownership marks so
        `list_owned` no longer returns them (the `lbctl.io/release` annotation)."""

    def list_owned(self) -> Iterable[BalancerRef]:
        """Every balancer this cluster's lbctl owns (for orphan collection)."""

    def close(self) -> None:
        """Release clients and threads."""


@runtime_checkable
class ChangeNotifier(Protocol):
    """Optional: a provider that learns of changes on its own (target health reported by
    balancer daemons, a daemon that restarted empty) tells the controller which balancer to
    look at again, instead of waiting for the periodic resync."""

    def subscribe(self, notify: Callable[[BalancerRef], None]) -> None:
        """Call `notify(ref)` (from any thread) whenever `ref` should be re-ensured."""


@runtime_checkable
class Reconfigurable(Protocol):
    """Optional: a provider that takes a reloaded provider section without a restart (new
    pools, balancer instances joining or leaving). Without it, a changed section is logged as
    needing a restart and the provider keeps the settings it was built with."""

    def apply_settings(self, settings: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Switch to `settings`; answer its problems as (key path, message). A part with
        problems is handled as at start-up (e.g. a bad pool frozen), never by failing the
        whole reload."""


SettingsValidator = Callable[[Mapping[str, Any]], list[tuple[str, str]]]
"""A provider module's `validate_settings(raw)`: (key path, message) for each problem."""


class ProviderFactory(Protocol):
    """What a provider package exports (built-in or via the `lbctl.providers` entry points)."""

    def __call__(self, settings: Mapping[str, Any], cluster_name: str,
                 cluster: ClusterView) -> Provider: ...
