"""The Deployment controller: a ReplicaSet per pod template, rollouts, and the Deployment's status.

As kube-controller-manager's deployment-controller: the ReplicaSet for the current template is
`<deployment>-<pod-template-hash>`, its selector and pods carry the `pod-template-hash` label, and
revisions are numbered in `deployment.kubernetes.io/revision`. Rollouts always follow the
Recreate strategy, whatever `spec.strategy` says: old ReplicaSets are scaled to 0 and the new one
is created (or scaled up) only once their pods are gone, which in the sandbox takes milliseconds.
Old ReplicaSets are kept as history up to `revisionHistoryLimit`. Status follows upstream's
`calculateStatus` and its Available/Progressing conditions, so `kubectl rollout status` works.
"""

from __future__ import annotations

import logging
import math

from ..storage.store import Change, Key, Obj
from .controller import Controller
from .objects import (
    DEPLOYMENTS,
    PODS,
    REPLICASETS,
    annotation,
    controller_of,
    copy,
    merge_conditions,
    ns_name,
    owner_reference,
    pod_active,
    replicas_of,
    template_hash,
    terminating,
    without_zeros,
)
from .replicasets import workload_selector

log = logging.getLogger(__name__)
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX = "deployment.kubernetes.io/max-replicas"
_NOT_COPIED = frozenset({"kubectl.kubernetes.io/last-applied-configuration", REVISION, DESIRED,
                         MAX, "deployment.kubernetes.io/revision-history",
                         "deprecated.deployment.rollback.to"})


def _revision(rs: Obj) -> int:
    try:
        return int(annotation(rs, REVISION) or 0)
    except ValueError:
        return 0


def _same_template(rs: Obj, template: Obj) -> bool:
    """EqualIgnoreHash: the ReplicaSet's template is the Deployment's plus the hash label."""
    rs_template = rs["spec"]["template"]
    meta = dict(rs_template.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != HASH_LABEL}
    return {**rs_template, "metadata": {**meta, "labels": labels}} == {
        **template, "metadata": {**(template.get("metadata") or {}),
                                 "labels": (template.get("metadata") or {}).get("labels") or {}}}


def _resolve(value: object, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%") and text[:-1].isdigit():
        scaled = int(text[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return 0


def surge_and_unavailable(d: Obj, desired: int) -> tuple[int, int]:
    strategy = (d.get("spec") or {}).get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = _resolve(rolling.get("maxSurge", "25%"), desired, True)
    unavailable = _resolve(rolling.get("maxUnavailable", "25%"), desired, False)
    return surge, (1 if surge == 0 and unavailable == 0 else unavailable)


class DeploymentController(Controller[Key]):
    name = "deployments"
    watches = (DEPLOYMENTS.key, REPLICASETS.key)

    def on_change(self, change: Change) -> None:
        if change.key == DEPLOYMENTS.key:
            self.queue.add(ns_name(change.obj))
            return
        for rs in (change.old, change.obj):
            ref = controller_of(rs) if rs is not None else None
            if rs is not None and ref is not None and ref.get("kind") == "Deployment":
                self.queue.add((rs["metadata"]["namespace"], ref["name"]))

    def resync(self) -> None:
        for d in self.cache.all(DEPLOYMENTS.key):
            self.queue.add(ns_name(d))

    def reconcile(self, key: Key) -> float | None:
        ns, name = key
        d = self.cache.get(DEPLOYMENTS.key, ns, name)
        if d is None or terminating(d):
            return None
        if workload_selector(d) is None:
            log.warning("deployment %s/%s: selector missing or not matching its template", ns,
                        name)
            return None
        spec = d["spec"]
        desired = replicas_of(d)
        owned = [rs for rs in self.cache.owned(REPLICASETS.key, d["metadata"]["uid"])
                 if not terminating(rs)]
        new = next((rs for rs in sorted(owned, key=lambda r: r["metadata"]["creationTimestamp"])
                    if _same_template(rs, spec["template"])), None)
        old = [rs for rs in owned if rs is not new]
        created = False
        if spec.get("paused"):
            if new is not None:  # a paused Deployment still scales, it just does not roll out
                self._scale(d, new, desired, None)
        else:
            for rs in old:
                self._scale(d, rs, 0, None)
            # Recreate: the new ReplicaSet grows only once every old pod is gone.
            if not any(pod_active(p) for rs in old
                       for p in self.cache.owned(PODS.key, rs["metadata"]["uid"])):
                top = max((_revision(rs) for rs in owned), default=0)
                if new is None:
                    new = self._create(d, desired, top + 1)
                    created = new is not None
                else:
                    self._scale(d, new, desired, top + 1 if _revision(new) < top else None)
        if new is not None:
            d = self._note_revision(d, new)
        self._clean_history(d, [fresh for rs in old if (fresh := self.cache.get(
            REPLICASETS.key, *ns_name(rs))) is not None])
        self._update_status(d, new, created)
        return None

    # -- replica sets ----------------------------------------------------------------------
    def _create(self, d: Obj, desired: int, revision: int) -> Obj | None:
        ns, name = ns_name(d)
        template = d["spec"]["template"]
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        pod_hash = template_hash(template, collisions)
        rs_name = f"{name}-{pod_hash}"
        if self.cache.get(REPLICASETS.key, ns, rs_name) is not None:
            # Someone else's ReplicaSet (or a hash collision): a new name on the next try.
            self.registry.update_with(DEPLOYMENTS, ns, name, "status", lambda o: {
                **o, "status": {**(o.get("status") or {}), "collisionCount": collisions + 1}})
            return None
        tmeta = template.get("metadata") or {}
        labels = {**(tmeta.get("labels") or {}), HASH_LABEL: pod_hash}
        selector = copy(d["spec"]["selector"])
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
        return self.registry.create(REPLICASETS, ns, {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": rs_name, "labels": labels,
                         "annotations": self._annotations(d, desired, revision),
                         "ownerReferences": [owner_reference(DEPLOYMENTS, d)]},
            "spec": {"replicas": desired,
                     "minReadySeconds": int(d["spec"].get("minReadySeconds") or 0),
                     "selector": selector,
                     "template": {**copy(template), "metadata": {**copy(tmeta),
                                                                 "labels": labels}}}})

    def _annotations(self, d: Obj, desired: int, revision: int) -> dict[str, str]:
        surge, _ = surge_and_unavailable(d, desired)
        copied = {k: v for k, v in (d["metadata"].get("annotations") or {}).items()
                  if k not in _NOT_COPIED}
        return {**copied, REVISION: str(revision), DESIRED: str(desired),
                MAX: str(desired + surge)}

    def _scale(self, d: Obj, rs: Obj, replicas: int, revision: int | None) -> None:
        """Set a ReplicaSet's replicas, revision annotations and minReadySeconds, if not so."""
        notes = dict(rs["metadata"].get("annotations") or {})
        if replicas:
            surge, _ = surge_and_unavailable(d, replicas)
            notes.update({DESIRED: str(replicas), MAX: str(replicas + surge)})
        if revision is not None:
            notes[REVISION] = str(revision)
        min_ready = int(d["spec"].get("minReadySeconds") or 0)
        if replicas_of(rs) == replicas and notes == (rs["metadata"].get("annotations") or {}) \
                and int(rs["spec"].get("minReadySeconds") or 0) == min_ready:
            return
        self.registry.update_with(REPLICASETS, *ns_name(rs), "", lambda o: {
            **o, "metadata": {**o["metadata"], "annotations": notes},
            "spec": {**o["spec"], "replicas": replicas, "minReadySeconds": min_ready}})

    def _note_revision(self, d: Obj, new: Obj) -> Obj:
        revision = annotation(self.cache.get(REPLICASETS.key, *ns_name(new)) or new, REVISION)
        if revision is None or annotation(d, REVISION) == revision:
            return d
        return self.registry.update_with(DEPLOYMENTS, *ns_name(d), "", lambda o: {
            **o, "metadata": {**o["metadata"], "annotations": {
                **(o["metadata"].get("annotations") or {}), REVISION: revision}}})

    def _clean_history(self, d: Obj, old: list[Obj]) -> None:
        limit = d["spec"].get("revisionHistoryLimit", 10)
        idle = sorted((rs for rs in old if replicas_of(rs) == 0
                       and not (rs.get("status") or {}).get("replicas")), key=_revision)
        for rs in idle[:max(len(idle) - int(limit), 0)]:
            self.registry.delete(REPLICASETS, *ns_name(rs))

    # -- status ----------------------------------------------------------------------------
    def _update_status(self, d: Obj, new: Obj | None, created: bool) -> None:
        ns, name = ns_name(d)
        d = self.cache.get(DEPLOYMENTS.key, ns, name) or d
        owned = [rs for rs in self.cache.owned(REPLICASETS.key, d["metadata"]["uid"])
                 if not terminating(rs)]
        new = self.cache.get(REPLICASETS.key, *ns_name(new)) if new is not None else None
        spec = d["spec"]
        desired = replicas_of(d)

        def total(field: str) -> int:
            return sum(int((rs.get("status") or {}).get(field) or 0) for rs in owned)

        available = total("availableReplicas")
        replicas = total("replicas")
        updated = int(((new or {}).get("status") or {}).get("replicas") or 0)
        spec_total = sum(replicas_of(rs) for rs in owned)
        _, max_unavailable = surge_and_unavailable(d, desired)
        wanted = [self._available(available >= desired - max_unavailable)]
        if spec.get("paused"):
            wanted.append({"type": "Progressing", "status": "Unknown",
                           "reason": "DeploymentPaused", "message": "Deployment is paused"})
        elif new is not None:
            rs_name = new["metadata"]["name"]
            complete = updated == desired and replicas == desired and available == desired
            reason, message = (
                ("NewReplicaSetCreated", f'Created new replica set "{rs_name}"') if created
                else ("NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully '
                      "progressed.") if complete
                else ("ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.'))
            wanted.append({"type": "Progressing", "status": "True", "reason": reason,
                           "message": message, "lastUpdateTime": ""})
        status = without_zeros({
            "observedGeneration": d["metadata"].get("generation", 0),
            "replicas": replicas, "updatedReplicas": updated,
            "readyReplicas": total("readyReplicas"), "availableReplicas": available,
            "unavailableReplicas": max(spec_total - available, 0),
            "conditions": merge_conditions(d, wanted, self.now()),
            "collisionCount": (d.get("status") or {}).get("collisionCount"),
        })
        if d.get("status") != status:
            self.registry.update_with(DEPLOYMENTS, ns, name, "status",
                                      lambda o: {**o, "status": status})

    @staticmethod
    def _available(ok: bool) -> Obj:
        return {"type": "Available", "status": "True" if ok else "False", "lastUpdateTime": "",
                "reason": "MinimumReplicasAvailable" if ok else "MinimumReplicasUnavailable",
                "message": "Deployment has minimum availability." if ok
                else "Deployment does not have minimum availability."}
