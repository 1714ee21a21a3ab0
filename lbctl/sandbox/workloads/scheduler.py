"""The scheduler: binds each pending pod to a node that can run it.

As kube-scheduler with its default profile, reduced to what a sandbox needs: the filters in
`placement` (simulated, Ready, not stopped, not cordoned, nodeSelector, required node affinity,
taints), then the node with the fewest pods of the same owner (spreading a Deployment's replicas
as the default topology spread does), then the least loaded, ties taken round-robin. A pod no
node fits gets `PodScheduled=False, Unschedulable` with upstream's "0/N nodes are available"
message and is retried whenever a node changes in a way that matters. Pods naming another
`schedulerName` are left to that scheduler.
"""

from __future__ import annotations

from collections import Counter

from ..storage.registry import Registry
from ..storage.store import Change, Key, Obj
from .cache import Cache
from .controller import Controller
from .objects import (
    NODES,
    PODS,
    controller_of,
    labels_of,
    merge_conditions,
    node_ready,
    node_simulated,
    node_stopped,
    node_unschedulable,
    ns_name,
    pod_active,
)
from .placement import unfit_reason

DEFAULT_SCHEDULER = "default-scheduler"


def _node_view(node: Obj | None) -> object:
    """What about a node decides placement; a change here retries pending pods."""
    if node is None:
        return None
    return (node_simulated(node), node_ready(node), node_stopped(node), node_unschedulable(node),
            labels_of(node), (node.get("spec") or {}).get("taints"))


def _wants_scheduling(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (not spec.get("nodeName") and pod_active(pod)
            and spec.get("schedulerName", DEFAULT_SCHEDULER) in (DEFAULT_SCHEDULER, "", None))


class Scheduler(Controller[Key]):
    name = "scheduler"
    watches = (PODS.key, NODES.key)

    def __init__(self, registry: Registry, cache: Cache) -> None:
        super().__init__(registry, cache)
        self._pending: set[Key] = set()
        self._load: Counter[str] = Counter()
        """Active pods bound to each node."""
        self._turn = 0

    def on_change(self, change: Change) -> None:
        if change.key == NODES.key:
            if change.type == "DELETED" or _node_view(change.old) != _node_view(change.obj):
                for key in self._pending:
                    self.queue.add(key)
            return
        key = ns_name(change.obj)
        if change.old is not None:
            self._count(change.old, -1)
        if change.type == "DELETED":
            self._pending.discard(key)
            return
        self._count(change.obj, 1)
        if not _wants_scheduling(change.obj):
            self._pending.discard(key)
        elif key not in self._pending or change.old is None \
                or change.old.get("spec") != change.obj.get("spec"):
            self._pending.add(key)
            self.queue.add(key)

    def _count(self, pod: Obj, delta: int) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and pod_active(pod):
            self._load[node] += delta

    def resync(self) -> None:
        for pod in self.cache.all(PODS.key):
            self._count(pod, 1)
            if _wants_scheduling(pod):
                self._pending.add(ns_name(pod))
                self.queue.add(ns_name(pod))

    def reconcile(self, key: Key) -> float | None:
        pod = self.cache.get(PODS.key, *key)
        if pod is None or not _wants_scheduling(pod):
            return None
        spec = pod.get("spec") or {}
        nodes = sorted(self.cache.all(NODES.key), key=lambda n: n["metadata"]["name"])
        reasons: Counter[str] = Counter()
        fit: list[str] = []
        for node in nodes:
            reason = unfit_reason(spec, node)
            if reason is None:
                fit.append(node["metadata"]["name"])
            else:
                reasons[reason] += 1
        if not fit:
            self._unschedulable(pod, len(nodes), reasons)
            return None
        owner = controller_of(pod)
        siblings = Counter((p.get("spec") or {}).get("nodeName") for p in self.cache.owned(
            PODS.key, owner["uid"]) if pod_active(p)) if owner else Counter[str]()
        count = len(fit)
        best = min(range(count), key=lambda i: (siblings[fit[i]], self._load[fit[i]],
                                                (i - self._turn) % count))
        self._turn += 1
        self.registry.update_with(PODS, *key, "", lambda o: {
            **o, "spec": {**o["spec"], "nodeName": fit[best]}})
        return None

    def _unschedulable(self, pod: Obj, total: int, reasons: Counter[str]) -> None:
        if total == 0:
            message = "no nodes available to schedule pods"
        else:
            why = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
            message = f"0/{total} nodes are available: {why}."
        wanted = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                  "message": message}
        status = {**(pod.get("status") or {}), "phase": "Pending",
                  "conditions": merge_conditions(pod, [wanted], self.now())}
        if pod.get("status") != status:
            self.registry.update_with(PODS, *ns_name(pod), "status",
                                      lambda o: {**o, "status": status})
