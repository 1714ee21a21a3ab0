"""`Cache`: what the provider sees of the cluster (the `ClusterView` of `providers.cluster`).

Why a class of its own beside the controller: it is the one seam between the informers and
every provider, read from the workers' threads, and it hands out the informers' records
as they are (slim, never mutated) instead of copies. Services and Nodes come from informers
that always run; EndpointSlices and Namespace labels from caches that exist only once some
Service or pool needs them (`slice_cache`, `namespace_cache`), so a cluster that uses neither
never lists them.
"""

from __future__ import annotations

from collections.abc import Mapping

from providers.cluster import NodeView, ServiceView

from ..kube import Informer
from .namespace_cache import NamespaceCache
from .records import EndpointSliceView
from .slice_cache import SliceCache


class Cache:
    """The `ClusterView` providers and the reconciler read: the informers' records."""

    def __init__(self, services: Informer[ServiceView], nodes: Informer[NodeView],
                 slices: SliceCache | None = None,
                 namespaces: NamespaceCache | None = None) -> None:
        self._services = services
        self._nodes = nodes
        self._slices = slices
        self._namespaces = namespaces

    def services(self) -> list[ServiceView]:
        return self._services.items()

    def service(self, namespace: str, name: str) -> ServiceView | None:
        return self._services.get(f"{namespace}/{name}")

    def nodes(self) -> list[NodeView]:
        return self._nodes.items()

    def endpoint_slices(self, namespace: str, name: str) -> list[EndpointSliceView] | None:
        """The Service's EndpointSlices; None until they are cached (asking starts that).
        A cache built without slices knows none."""
        if self._slices is None:
            return []
        return self._slices.for_service(namespace, name)

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        """The Namespace's labels (read-only); None while unknown (asking starts the cache,
        see `namespace_cache`). A cache built without Namespaces knows none."""
        if self._namespaces is None:
            return None
        return self._namespaces.labels(name)
