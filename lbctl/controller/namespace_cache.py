"""Namespaces' labels, cached only once a provider asks for them.

Pools may serve only Services whose namespace's labels match (the baremetal provider's
`serviceAllocation.namespaceSelectors`, as MetalLB's `IPAddressPool`). Most configurations
select on no namespace label, and the memory goal (P4: <= 120 MiB for 10,000 Services and
2,000 Nodes) is measured without Namespaces, so, as with EndpointSlices (`slice_cache`), the
informer is created and started by the first question (`labels`), which a provider asks only
when some pool selects on namespace labels; until then nothing about Namespaces is held,
listed or watched. Once started it stays (a config that drops and re-adds the selector would
otherwise relist every Namespace each time); a restart of the controller starts without it.

The first question waits a moment for the first list (a cluster's Namespaces are few, and a
right answer on the first ensure beats a retry); until the list is in, `labels` answers None
(unknown), and once that has taken longer than `PATIENCE_SECONDS` it fails loudly, since a list
this slow is a refusal (RBAC: list and watch on namespaces) or an outage.

A Namespace whose labels change (or one that appears after the cache was listed) is reported to
`on_change` by name: the controller re-ensures the LoadBalancer Services in it, and only those.
Records are frozen and their label maps read-only: whoever asks cannot change the cache.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from ..kube import NAMESPACES, Handlers, Informer, Kube
from .lazy_informer import LazyInformer
from .records import NamespaceView, namespace_view

log = logging.getLogger("lbctl.controller.namespace_cache")
FIRST_LIST_WAIT_SECONDS = 2.0
"""How long the question that starts the informer (and any asked meanwhile) waits for the first
list before answering None (unknown)."""
PATIENCE_SECONDS = 30.0
"""After this long without a first list, a question fails (TransientError) instead."""


class NamespaceCache(LazyInformer[NamespaceView]):
    """The lazily started Namespace informer. Thread-safe."""

    def __init__(self, kube: Kube, on_change: Callable[[str], None]) -> None:
        super().__init__(kube, on_change, log)

    def _new_informer(self) -> Informer[NamespaceView]:
        informer = Informer(self._kube, NAMESPACES, namespace_view, name="namespaces")
        informer.add_handlers(Handlers(self._added, self._updated, None))
        return informer

    def want(self) -> Informer[NamespaceView]:
        """Start watching Namespaces, once; later calls cost a lock. Answers the informer."""
        return self._start("a provider reads namespace labels: watching Namespaces")

    def labels(self, name: str) -> Mapping[str, str] | None:
        """The labels of Namespace `name` (read-only), or None when unknown: not listed yet
        (starting the informer when it was not running: whoever asks needs it) or no such
        Namespace in the cache. TransientError once the first list took `PATIENCE_SECONDS`."""
        informer = self._informer or self.want()
        if not self._listed(informer, first_wait=FIRST_LIST_WAIT_SECONDS,
                            patience=PATIENCE_SECONDS, kind="Namespaces",
                            needs="namespaceSelectors need list and watch on namespaces"):
            return None
        record = informer.get(name)
        return record.labels if record is not None else None

    # -- the informer's handlers (its thread) -------------------------------------------------
    def _added(self, namespace: NamespaceView) -> None:
        informer = self._informer
        if informer is not None and informer.has_synced():  # not the first list's adds
            self._on_change(namespace.name)

    def _updated(self, old: NamespaceView, new: NamespaceView) -> None:
        if old.labels != new.labels:
            self._on_change(new.name)
