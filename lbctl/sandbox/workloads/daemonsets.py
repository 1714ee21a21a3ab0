"""The DaemonSet controller: one pod per simulated node that the DaemonSet's pods may run on.

As kube-controller-manager's daemonset-controller: each pod is pinned to its node with required
node affinity on `metadata.name` and given the DaemonSet tolerations (so it also runs on cordoned
nodes, as upstream), then placed by the scheduler; pods on nodes that no longer qualify, extra
pods on one node and failed pods are deleted; pods of an older template (label
`controller-revision-hash`) are replaced all at once under RollingUpdate and left alone under
OnDelete. Only simulated nodes qualify: no kubelet would ever run a pod anywhere else. A node
that is NotReady or stopped keeps its pod, which the scheduler holds Pending or the kubelet
reports NotReady.
"""

from __future__ import annotations

from ..storage.store import Change, Key, Obj
from .controller import Controller
from .objects import (
    DAEMONSETS,
    NODES,
    PODS,
    controller_of,
    labels_of,
    node_simulated,
    ns_name,
    pod_available,
    pod_from_template,
    pod_ready,
    template_hash,
    terminating,
)
from .placement import matches_node, tolerates_node
from .replicasets import workload_selector

REVISION_LABEL = "controller-revision-hash"
_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
_HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable",
                            "operator": "Exists", "effect": "NoSchedule"}


def daemon_pod_spec(template_spec: Obj, node: str) -> Obj:
    """The template's pod spec pinned to `node`, with the tolerations DaemonSet pods get."""
    tolerations = list(template_spec.get("tolerations") or [])
    extra = _TOLERATIONS + ([_HOST_NETWORK_TOLERATION] if template_spec.get("hostNetwork")
                            else [])
    tolerations += [t for t in extra if t not in tolerations]
    affinity = dict(template_spec.get("affinity") or {})
    affinity["nodeAffinity"] = {**(affinity.get("nodeAffinity") or {}),
                                "requiredDuringSchedulingIgnoredDuringExecution": {
                                    "nodeSelectorTerms": [{"matchFields": [{
                                        "key": "metadata.name", "operator": "In",
                                        "values": [node]}]}]}}
    return {**template_spec, "affinity": affinity, "tolerations": tolerations}


def target_node(pod: Obj) -> str | None:
    """util.GetTargetNodeName: the bound node, else the one its affinity pins it to."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and len(field.get("values") or []) == 1:
                return str(field["values"][0])
    return None


def _node_view(node: Obj | None) -> object:
    if node is None:
        return None
    return (node_simulated(node), labels_of(node), (node.get("spec") or {}).get("taints"))


class DaemonSetController(Controller[Key]):
    name = "daemonsets"
    watches = (DAEMONSETS.key, PODS.key, NODES.key)

    def on_change(self, change: Change) -> None:
        if change.key == DAEMONSETS.key:
            self.queue.add(ns_name(change.obj))
        elif change.key == NODES.key:
            if change.type == "DELETED" or _node_view(change.old) != _node_view(change.obj):
                self.resync()
        else:
            for pod in (change.old, change.obj):
                ref = controller_of(pod) if pod is not None else None
                if pod is not None and ref is not None and ref.get("kind") == "DaemonSet":
                    self.queue.add((pod["metadata"]["namespace"], ref["name"]))

    def resync(self) -> None:
        for ds in self.cache.all(DAEMONSETS.key):
            self.queue.add(ns_name(ds))

    def reconcile(self, key: Key) -> float | None:
        ds = self.cache.get(DAEMONSETS.key, *key)
        if ds is None or terminating(ds) or workload_selector(ds) is None:
            return None
        template = ds["spec"]["template"]
        revision = template_hash(template)
        spec = template.get("spec") or {}
        wanted = {n["metadata"]["name"] for n in self.cache.all(NODES.key)
                  if node_simulated(n) and matches_node(spec, n)
                  and tolerates_node(daemon_pod_spec(spec, n["metadata"]["name"]), n)}
        by_node: dict[str, list[Obj]] = {}
        for pod in self.cache.owned(PODS.key, ds["metadata"]["uid"]):
            if terminating(pod):
                continue
            if (pod.get("status") or {}).get("phase") == "Failed":
                self.registry.delete(PODS, *ns_name(pod))
                continue
            by_node.setdefault(target_node(pod) or "", []).append(pod)
        rolling = (ds["spec"].get("updateStrategy") or {}).get("type") != "OnDelete"
        for node, pods in by_node.items():
            pods.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""),
                                     p["metadata"]["name"]))
            stale = pods if node not in wanted else pods[1:] + [
                p for p in pods[:1] if rolling and labels_of(p).get(REVISION_LABEL) != revision]
            for pod in stale:
                self.registry.delete(PODS, *ns_name(pod))
        for node in sorted(wanted - {n for n, pods in by_node.items() if pods}):
            self.registry.create(PODS, key[0], pod_from_template(
                DAEMONSETS, ds, template, {REVISION_LABEL: revision},
                **daemon_pod_spec(spec, node)))
        return self._update_status(ds, wanted, revision)

    def _update_status(self, ds: Obj, wanted: set[str], revision: str) -> float | None:
        by_node: dict[str, Obj] = {}
        for pod in sorted(self.cache.owned(PODS.key, ds["metadata"]["uid"]),
                          key=lambda p: p["metadata"].get("creationTimestamp", "")):
            if not terminating(pod):
                by_node.setdefault(target_node(pod) or "", pod)
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        on_wanted = [pod for node, pod in by_node.items() if node in wanted]
        available, wait = 0, None
        for pod in on_wanted:
            ok, left = pod_available(pod, min_ready)
            available += ok
            if left is not None:
                wait = left if wait is None else min(wait, left)
        status: Obj = {
            "currentNumberScheduled": len(on_wanted),
            "numberMisscheduled": sum(1 for node in by_node if node not in wanted),
            "desiredNumberScheduled": len(wanted),
            "numberReady": sum(pod_ready(p) for p in on_wanted),
            "observedGeneration": ds["metadata"].get("generation", 0),
            "updatedNumberScheduled": sum(labels_of(p).get(REVISION_LABEL) == revision
                                          for p in on_wanted),
            "numberAvailable": available,
            "numberUnavailable": len(wanted) - available,
        }
        status = {k: v for k, v in status.items() if v or k in (
            "currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
            "numberReady")}
        if ds.get("status") != status:
            self.registry.update_with(DAEMONSETS, *ns_name(ds), "status",
                                      lambda o: {**o, "status": status})
        return wait
