"""The ServiceAccount controller: every active namespace has a `default` ServiceAccount.

Pods name `default` implicitly and clients (Helm charts, kubectl run) expect it to exist as soon
as the namespace does; kube-controller-manager's serviceaccounts-controller creates it and
re-creates it when deleted, and so does this one, including in the bootstrap namespaces.
"""

from __future__ import annotations

from ..storage.store import Change
from .controller import Controller
from .objects import NAMESPACES, SERVICE_ACCOUNTS, terminating

DEFAULT = "default"


class ServiceAccountController(Controller[str]):
    name = "serviceaccounts"
    watches = (NAMESPACES.key, SERVICE_ACCOUNTS.key)

    def on_change(self, change: Change) -> None:
        meta = change.obj["metadata"]
        if change.key == NAMESPACES.key and change.type != "DELETED":
            self.queue.add(meta["name"])
        elif change.key == SERVICE_ACCOUNTS.key and change.type == "DELETED" \
                and meta["name"] == DEFAULT:
            self.queue.add(meta["namespace"])

    def resync(self) -> None:
        for ns in self.cache.all(NAMESPACES.key):
            self.queue.add(ns["metadata"]["name"])

    def reconcile(self, key: str) -> float | None:
        ns = self.cache.get(NAMESPACES.key, "", key)
        if ns is None or terminating(ns):
            return None
        if self.cache.get(SERVICE_ACCOUNTS.key, key, DEFAULT) is None:
            self.registry.create(SERVICE_ACCOUNTS, key, {
                "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT}})
        return None
