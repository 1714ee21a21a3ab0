"""The ReplicaSet controller: keep `spec.replicas` pods of the template, and report on them.

As kube-controller-manager's replicaset-controller: pods are created from the template as
`<rs>-<5 random>` with a controlling ownerReference, deleted least-valuable first (unscheduled,
then pending, then not ready, then newest), adopted when an orphan matches the selector and
released when relabelled out of it (the classic "take a pod out of rotation" move, which gets a
replacement). Creation goes in bursts so one large scale-up never holds the event loop.
"""

from __future__ import annotations

import logging

from .. import errors
from ..storage.selectors import LabelSelector, label_selector_from_spec
from ..storage.store import Change, Key, Obj
from .controller import Controller
from .objects import (
    PODS,
    REPLICASETS,
    controller_of,
    labels_of,
    ns_name,
    owner_reference,
    pod_active,
    pod_available,
    pod_from_template,
    pod_ready,
    replicas_of,
    terminating,
    without_zeros,
)

log = logging.getLogger(__name__)
BURST = 50
"""Pods created or deleted per reconcile; their own events bring the ReplicaSet back."""
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def workload_selector(obj: Obj) -> LabelSelector | None:
    """The selector of a Deployment/ReplicaSet/DaemonSet, or None when it cannot be used.

    Upstream validation refuses a missing or empty selector and a template it does not select;
    the sandbox serves apps objects without that validation, so the controllers refuse to act
    on them instead of creating pods forever.
    """
    spec = obj.get("spec") or {}
    raw = spec.get("selector")
    if not raw or not (raw.get("matchLabels") or raw.get("matchExpressions")):
        return None
    try:
        selector = label_selector_from_spec(raw)
    except errors.ApiError:
        return None
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    return selector if selector.matches(template_labels) else None


def _pod_fingerprint(pod: Obj | None) -> object:
    if pod is None:
        return None
    return (pod_active(pod), pod_ready(pod), labels_of(pod), controller_of(pod),
            pod["metadata"].get("deletionTimestamp"))


def deletion_order(pods: list[Obj]) -> list[Obj]:
    """controller.ActivePods ordering: the pods to delete first come first."""
    newest_first = sorted(pods, key=lambda p: (p["metadata"].get("creationTimestamp", ""),
                                               p["metadata"]["name"]), reverse=True)
    return sorted(newest_first, key=lambda p: (
        bool((p.get("spec") or {}).get("nodeName")),
        _PHASE_RANK.get((p.get("status") or {}).get("phase", "Pending"), 0),
        pod_ready(p)))


class ReplicaSetController(Controller[Key]):
    name = "replicasets"
    watches = (REPLICASETS.key, PODS.key)

    def on_change(self, change: Change) -> None:
        if change.key == REPLICASETS.key:
            self.queue.add(ns_name(change.obj))
            return
        new = None if change.type == "DELETED" else change.obj
        if change.type == "MODIFIED" and _pod_fingerprint(change.old) == _pod_fingerprint(new):
            return
        for pod in (change.old, new):
            ref = controller_of(pod) if pod is not None else None
            if pod is not None and ref is not None and ref.get("kind") == "ReplicaSet":
                self.queue.add((pod["metadata"]["namespace"], ref["name"]))
        if change.type == "ADDED" and controller_of(change.obj) is None:
            self._queue_selecting(change.obj)

    def _queue_selecting(self, pod: Obj) -> None:
        """An orphan pod: queue the ReplicaSets that might adopt it."""
        ns = pod["metadata"]["namespace"]
        for rs in self.cache.in_namespace(REPLICASETS.key, ns):
            selector = workload_selector(rs)
            if selector is not None and selector.matches(labels_of(pod)):
                self.queue.add(ns_name(rs))

    def resync(self) -> None:
        for rs in self.cache.all(REPLICASETS.key):
            self.queue.add(ns_name(rs))

    def reconcile(self, key: Key) -> float | None:
        ns, name = key
        rs = self.cache.get(REPLICASETS.key, ns, name)
        if rs is None or terminating(rs):
            return None
        selector = workload_selector(rs)
        if selector is None:
            log.warning("replicaset %s/%s: selector missing or not matching its template", ns,
                        name)
            return None
        pods = self._claim(rs, selector)
        want = replicas_of(rs)
        if len(pods) < want:
            for _ in range(min(want - len(pods), BURST)):
                self.registry.create(PODS, ns, pod_from_template(
                    REPLICASETS, rs, rs["spec"]["template"]))
        elif len(pods) > want:
            for pod in deletion_order(pods)[:min(len(pods) - want, BURST)]:
                self.registry.delete(PODS, ns, pod["metadata"]["name"])
        return self._update_status(rs, selector)

    def _claim(self, rs: Obj, selector: LabelSelector) -> list[Obj]:
        """The active pods this ReplicaSet controls, after adoption and release."""
        ns, uid = rs["metadata"]["namespace"], rs["metadata"]["uid"]
        for pod in self.cache.owned(PODS.key, uid):
            if not terminating(pod) and not selector.matches(labels_of(pod)):
                self.registry.update_with(PODS, ns, pod["metadata"]["name"], "", lambda p: {
                    **p, "metadata": {**p["metadata"], "ownerReferences": [
                        r for r in p["metadata"].get("ownerReferences") or ()
                        if r.get("uid") != uid]}})
        for pod in self.cache.in_namespace(PODS.key, ns):
            if controller_of(pod) is None and pod_active(pod) \
                    and selector.matches(labels_of(pod)):
                self.registry.update_with(PODS, ns, pod["metadata"]["name"], "", lambda p: {
                    **p, "metadata": {**p["metadata"], "ownerReferences": [
                        *(p["metadata"].get("ownerReferences") or ()),
                        owner_reference(REPLICASETS, rs)]}})
        return [p for p in self.cache.owned(PODS.key, uid) if pod_active(p)]

    def _update_status(self, rs: Obj, selector: LabelSelector) -> float | None:
        ns, name = ns_name(rs)
        spec = rs.get("spec") or {}
        pods = [p for p in self.cache.owned(PODS.key, rs["metadata"]["uid"]) if pod_active(p)]
        template_labels = (spec["template"].get("metadata") or {}).get("labels") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        available, wait = 0, None
        for pod in pods:
            ok, left = pod_available(pod, min_ready)
            available += ok
            if left is not None:
                wait = left if wait is None else min(wait, left)
        status = without_zeros({
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(
                all(labels_of(p).get(k) == v for k, v in template_labels.items()) for p in pods),
            "readyReplicas": sum(pod_ready(p) for p in pods),
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation", 0),
            "conditions": (rs.get("status") or {}).get("conditions"),
        }, keep=("replicas",))
        if rs.get("status") != status:
            self.registry.update_with(REPLICASETS, ns, name, "status",
                                      lambda o: {**o, "status": status})
        return wait
