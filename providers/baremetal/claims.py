"""Who asks for addresses and what they ask: `Claimant`, `Request`, and MetalLB's sharing rules.

A `Claimant` is a Service as address management sees it (identity, labels, ports, sharing key,
traffic policy, and its namespace's labels when a pool selects on them), built either from a
spec the controller is ensuring or from a `ServiceView` whose status already holds addresses.
A `Request` adds what the Service asks for: families, requested addresses (each with the field
that asked, for error messages) and a pool name.

Sharing follows MetalLB's `metallb.io/allow-shared-ip`: Services may hold one address together
when they carry the same non-empty key, their ports do not collide (same protocol and port), and
their traffic policies are compatible. MetalLB also lets two `Local` Services share when they
select the same pods; the provider does not see selectors, so it requires `Cluster` on both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from providers.cluster import ServiceView
from providers.errors import RetryAfter

from .addresses import IPAddress

SHARING_ANNOTATIONS = ("metallb.io/allow-shared-ip", "metallb.universe.tf/allow-shared-ip",
                       "lbctl.io/allow-shared-ip")
POOL_ANNOTATIONS = ("metallb.io/address-pool", "metallb.universe.tf/address-pool",
                    "lbctl.io/address-pool")
"""Aliases: MetalLB still honours its older `metallb.universe.tf/` prefix; two of them set to
different values is an error naming both."""
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Every Namespace carries it (the API server sets it to the name): known without a lookup."""
NAMESPACE_WAIT_SECONDS = 1.0
"""How soon a Service whose namespace's labels are not known yet is looked at again."""


def annotation_field(key: str) -> str:
    return f"metadata.annotations[{key}]"


@dataclass(frozen=True, slots=True)
class Claimant:
    """A Service that holds or wants addresses."""

    uid: str
    namespace: str
    name: str
    labels: tuple[tuple[str, str], ...] = ()
    ports: tuple[tuple[str, int], ...] = ()
    """(protocol, port) in the Service's port order."""
    sharing_key: str = ""
    """`metallb.io/allow-shared-ip`; empty: never shares."""
    cluster_policy: bool = True
    """externalTrafficPolicy is Cluster."""
    namespace_label_items: tuple[tuple[str, str], ...] | None = ()
    """The labels of the Service's namespace, sorted; () when no pool selects on them (only
    `kubernetes.io/metadata.name` is known); None: a pool does, and they are not known yet."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def namespace_labels(self) -> dict[str, str]:
        """The namespace's labels, `kubernetes.io/metadata.name` always among them. Raises
        RetryAfter while they are unknown (the Namespace not cached yet): a pool selecting on
        them must not decide on a guess, since an address once held never moves."""
        if self.namespace_label_items is None:
            raise RetryAfter(NAMESPACE_WAIT_SECONDS,
                             f"waiting for the labels of namespace {self.namespace} (a pool's "
                             "namespaceSelectors): the Namespace is not in the cache yet")
        return {**dict(self.namespace_label_items), NAMESPACE_NAME_LABEL: self.namespace}


@dataclass(frozen=True, slots=True)
class RequestedIP:
    ip: IPAddress
    field: str
    """Where it was asked for: `spec.loadBalancerIP` or `metadata.annotations[...]`."""


@dataclass(frozen=True, slots=True)
class Request:
    """What one Service asks of the pools."""

    claimant: Claimant
    families: tuple[str, ...] = ("IPv4",)
    """Primary family first."""
    require_all_families: bool = True
    """False for PreferDualStack: one family is enough when the other has no address."""
    requested: tuple[RequestedIP, ...] = ()
    pool: str | None = None
    """The pool the Service names (`metallb.io/address-pool`), if any."""
    pool_annotation: str = POOL_ANNOTATIONS[0]

    @property
    def pool_field(self) -> str:
        return annotation_field(self.pool_annotation)


@dataclass(frozen=True, slots=True)
class Conflict:
    """Why `claimant` may not hold an address together with `other`."""

    kind: str  # "key" | "policy" | "port"
    other: Claimant
    port_index: int = -1
    """With kind "port": the index into the claimant's ports that collides."""

    def describe(self, claimant: Claimant, ip: IPAddress) -> tuple[str, str]:
        """(field of `claimant` to fix, message)."""
        other = self.other
        if self.kind == "port":
            protocol, port = claimant.ports[self.port_index]
            return (f"spec.ports[{self.port_index}]",
                    f"{protocol}/{port} is already used on {ip} by {other.key}")
        if self.kind == "policy":
            return ("spec.externalTrafficPolicy",
                    f"{ip} is shared with {other.key}; Services sharing an address must all "
                    "use externalTrafficPolicy Cluster")
        field = annotation_field(SHARING_ANNOTATIONS[0])
        if not other.sharing_key:
            return field, f"{ip} is held by {other.key}, which does not allow sharing"
        if not claimant.sharing_key:
            return field, (f"{ip} is shared by {other.key} under key "
                           f'"{other.sharing_key}"; this Service allows no sharing')
        return field, (f"{ip} is shared by {other.key} under key \"{other.sharing_key}\", "
                       f'not "{claimant.sharing_key}"')


def conflict(claimant: Claimant, other: Claimant) -> Conflict | None:
    """Whether two Services may hold one address together (None: they may)."""
    if not claimant.sharing_key or claimant.sharing_key != other.sharing_key:
        return Conflict("key", other)
    if not (claimant.cluster_policy and other.cluster_policy):
        return Conflict("policy", other)
    theirs = set(other.ports)
    for index, port in enumerate(claimant.ports):
        if port in theirs:
            return Conflict("port", other, index)
    return None


def first_annotation(annotations: Mapping[str, str],
                     keys: tuple[str, ...]) -> tuple[str, str] | None:
    """(key, trimmed value) of the first of `keys` set to a non-empty value."""
    for key in keys:
        value = annotations.get(key, "").strip()
        if value:
            return key, value
    return None


def claimant_from_view(service: ServiceView) -> Claimant:
    """A Service whose status already holds addresses, as of its current spec."""
    sharing = first_annotation(service.annotations, SHARING_ANNOTATIONS)
    return Claimant(
        uid=service.uid, namespace=service.namespace, name=service.name,
        labels=tuple(sorted(service.labels.items())),
        ports=tuple((p.protocol, p.port) for p in service.ports),
        sharing_key=sharing[1] if sharing else "",
        cluster_policy=service.external_traffic_policy != "Local")
