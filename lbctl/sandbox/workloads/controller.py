"""What every in-process controller is: a work queue, the changes it listens to, a reconcile.

kube-controller-manager's controllers share one shape (informer handlers map events to keys, a
worker reconciles a key at a time from current state), and so do the sandbox's: `on_change` runs
inside the store's write and may only queue keys; `reconcile` runs later on the queue's task and
does the writes, through the Registry, so admission and resourceVersion rules apply to them too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import ClassVar, Generic, TypeVar

from ..storage.registry import Registry, now
from ..storage.store import Change
from .cache import Cache
from .workqueue import WorkQueue

K = TypeVar("K", bound=Hashable)


class Controller(ABC, Generic[K]):
    """One controller; the manager feeds it the changes of the storage keys in `watches`."""

    name: ClassVar[str]
    watches: ClassVar[tuple[str, ...]]

    def __init__(self, registry: Registry, cache: Cache) -> None:
        self.registry = registry
        self.cache = cache
        self.queue: WorkQueue[K] = WorkQueue(self.name, self.reconcile)

    @staticmethod
    def now() -> str:
        return now()

    @abstractmethod
    def on_change(self, change: Change) -> None:
        """Queue the keys `change` affects. Runs inside a write: never write from here."""

    @abstractmethod
    def resync(self) -> None:
        """Queue every key (start-up: objects that existed before the controller)."""

    @abstractmethod
    def reconcile(self, key: K) -> float | None:
        """Bring `key` in step; return seconds after which to look again, or None."""
