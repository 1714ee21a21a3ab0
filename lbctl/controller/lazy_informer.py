"""An informer started only by the first question that needs it: the base of `slice_cache` and
`namespace_cache`.

Both watch something most configurations never need (EndpointSlices, Namespaces), so neither
creates its informer until asked; once started it stays (a stopped informer would cost a full
relist when asked again, and its memory would not go back to the system), and a restart of the
controller starts without it. Until the first list is in, a question either waits a moment for
it or answers "unknown"; once that has taken longer than the caller's patience it fails loudly
(TransientError), since a list this slow is a refusal (RBAC) or an outage.

A subclass says how to build its informer (`_new_informer`, handlers included) and keeps its
own questions, index and module-level timings (read at each call, so tests can shorten them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from providers.errors import TransientError

from ..kube import Informer, Kube

R = TypeVar("R")


class LazyInformer(Generic[R]):
    """A lazily started informer of records `R`. Thread-safe."""

    def __init__(self, kube: Kube, on_change: Callable[[str], None],
                 log: logging.Logger) -> None:
        self._kube = kube
        self._on_change = on_change
        self._log = log
        self._lock = threading.Lock()
        self._informer: Informer[R] | None = None
        self.started_at: float | None = None
        """Monotonic time of the start (None: never started)."""

    @property
    def informer(self) -> Informer[R] | None:
        return self._informer

    def _new_informer(self) -> Informer[R]:
        """The informer to start, its handlers added (called once, under the lock)."""
        raise NotImplementedError

    def _start(self, why: str) -> Informer[R]:
        """Start the informer, once (logging `why` the first time); later calls cost a lock."""
        with self._lock:
            if self._informer is not None:
                return self._informer
            informer = self._new_informer()
            self._informer = informer
            self.started_at = time.monotonic()
        self._log.info(why)
        informer.start()
        return informer

    def _listed(self, informer: Informer[R], *, first_wait: float, patience: float,
                kind: str, needs: str) -> bool:
        """Whether the first list is in: waiting for it until `first_wait` seconds after the
        start; once `patience` seconds have passed without it, TransientError (`kind` still
        not listed: `needs` says what the question takes)."""
        if informer.has_synced():
            return True
        waited = time.monotonic() - (self.started_at or time.monotonic())
        if waited < first_wait:
            informer.wait_for_sync(first_wait - waited)
        elif waited > patience:
            raise TransientError(f"{kind} still not listed after {waited:.0f} s: {needs} "
                                 "(see the controller's log)")
        return informer.has_synced()

    def synced(self) -> bool:
        """Not started, or started and listed (for readiness)."""
        informer = self._informer
        return informer is None or informer.has_synced()

    def __len__(self) -> int:
        informer = self._informer
        return 0 if informer is None else len(informer)

    def stop(self) -> None:
        informer = self._informer
        if informer is not None:
            informer.stop()
