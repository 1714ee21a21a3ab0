"""EndpointSlices, cached only once some Service uses the `endpoints` target mode.

A cluster has an EndpointSlice for every Service (ClusterIP ones included) and they change
with every pod start, stop and readiness flip: watching them costs memory and CPU that a
controller whose balancers target nodePorts never needs, and the memory goal (P4: <= 120 MiB
for 10,000 Services and 2,000 Nodes) is measured without them. So the informer is created and
started by the first `want()` (the controller calls it when it sees a Service in the mode),
and until then nothing about EndpointSlices is held, listed or watched.

Once started it stays: a Service switching modes back and forth would otherwise cost a full
relist of every slice in the cluster each time, and the memory a stopped informer frees goes
back to Python's allocator, not to the system (RSS would not drop). A restart of the
controller starts without it again.

Slices are indexed by their Service (`namespace/name` from the label
`kubernetes.io/service-name`; slices without the label are not listed at all), so an ensure
reads its Service's slices without scanning the cache, and each change tells `on_change`
which Service it concerns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..kube import ENDPOINTSLICES, Handlers, Informer, Kube
from .lazy_informer import LazyInformer
from .records import SERVICE_NAME_LABEL, EndpointSliceView, endpoint_slice_view

log = logging.getLogger("lbctl.controller.slice_cache")
PATIENCE_SECONDS = 30.0
"""How long a sync waits quietly for the first list of EndpointSlices; after that it fails
loudly (a Warning on the Service), since a list this slow is a refusal (RBAC) or an outage."""


class SliceCache(LazyInformer[EndpointSliceView]):
    """The lazily started EndpointSlice informer and its index by Service. Thread-safe."""

    def __init__(self, kube: Kube, on_change: Callable[[str], None]) -> None:
        super().__init__(kube, on_change, log)
        self._by_service: dict[str, dict[str, EndpointSliceView]] = {}

    def _new_informer(self) -> Informer[EndpointSliceView]:
        informer = Informer(self._kube, ENDPOINTSLICES, endpoint_slice_view,
                            name="endpointslices", label_selector=SERVICE_NAME_LABEL)
        informer.add_handlers(Handlers(self._added, self._updated, self._deleted))
        return informer

    def want(self) -> None:
        """Start watching EndpointSlices, once; later calls cost a lock."""
        self._start("a Service uses the endpoints target mode: watching EndpointSlices")

    def for_service(self, namespace: str, name: str) -> list[EndpointSliceView] | None:
        """The Service's slices, or None until the informer has listed them all (starting
        it when it was not running: whoever asks needs it); TransientError once that has
        taken longer than `PATIENCE_SECONDS`."""
        informer = self._informer
        if informer is None:
            self.want()
            return None
        if not self._listed(informer, first_wait=0.0, patience=PATIENCE_SECONDS,
                            kind="EndpointSlices",
                            needs="the endpoints target mode needs list and watch on "
                                  "endpointslices.discovery.k8s.io"):
            return None
        with self._lock:
            return list(self._by_service.get(f"{namespace}/{name}", {}).values())

    # -- the informer's handlers (its thread) -------------------------------------------------
    def _added(self, piece: EndpointSliceView) -> None:
        with self._lock:
            self._by_service.setdefault(piece.service_key, {})[piece.name] = piece
        self._on_change(piece.service_key)

    def _updated(self, old: EndpointSliceView, new: EndpointSliceView) -> None:
        if old.service_key != new.service_key:  # relabelled: it left one Service for another
            self._deleted(old)
            self._added(new)
            return
        self._added(new)

    def _deleted(self, piece: EndpointSliceView) -> None:
        with self._lock:
            mine = self._by_service.get(piece.service_key)
            if mine is not None:
                mine.pop(piece.name, None)
                if not mine:
                    del self._by_service[piece.service_key]
        self._on_change(piece.service_key)
