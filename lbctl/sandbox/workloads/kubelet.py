"""The kubelets of the simulated nodes: pods bound there run, with the status a kubelet reports.

Only nodes annotated `sandbox.lbctl.io/simulated: "true"` have a kubelet here; pods bound
elsewhere are left as they are, Pending, as on a node whose kubelet never came up. A pod that
runs gets phase Running, an IP from `podips` (the node's address with hostNetwork), hostIP, the
five conditions, container statuses and startTime. It is Ready while its node is Ready and not
stopped (the traffic process's power switch); otherwise Ready and ContainersReady turn False,
which EndpointSlices then show. As the pod GC controller does, pods bound to a node that no
longer exists are deleted after upstream's 40 s quarantine.
"""

from __future__ import annotations

import hashlib
import logging
import time

from ..storage.registry import Registry
from ..storage.store import Change, Key, Obj
from .cache import Cache
from .controller import Controller
from .objects import (
    NODES,
    PODS,
    merge_conditions,
    node_ip,
    node_ready,
    node_simulated,
    node_stopped,
    ns_name,
    terminating,
)
from .podips import PodIPs

log = logging.getLogger(__name__)
ORPHAN_QUARANTINE = 40.0
"""Seconds a pod's node must stay missing before the pod is deleted (podgc's quarantineTime)."""
FULL_RETRY = 5.0


def _node_view(node: Obj | None) -> object:
    if node is None:
        return None
    return (node_simulated(node), node_ready(node), node_stopped(node), node_ip(node))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def qos_class(spec: Obj) -> str:
    """The pod's QoS class, as the API server computes it on create."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                return "Burstable"
    return "Guaranteed"


class Kubelet(Controller[Key]):
    name = "kubelet"
    watches = (PODS.key, NODES.key)

    def __init__(self, registry: Registry, cache: Cache, ips: PodIPs | None = None) -> None:
        super().__init__(registry, cache)
        self.ips = ips or PodIPs()
        self._on_node: dict[str, set[Key]] = {}
        self._orphaned: dict[Key, float] = {}

    # -- events ----------------------------------------------------------------------------
    def on_change(self, change: Change) -> None:
        if change.key == NODES.key:
            if change.type == "DELETED" or _node_view(change.old) != _node_view(change.obj):
                for key in self._on_node.get(change.obj["metadata"]["name"], ()):
                    self.queue.add(key)
            return
        key = ns_name(change.obj)
        if change.old is not None:
            self._place(key, change.old, -1)
        if change.type == "DELETED":
            self.ips.release(key)
            self._orphaned.pop(key, None)
            return
        self._observe(key, change.obj)

    def _observe(self, key: Key, pod: Obj) -> None:
        self._place(key, pod, 1)
        if not (pod.get("spec") or {}).get("hostNetwork"):
            self.ips.observe(key, (pod.get("status") or {}).get("podIP"))
        if (pod.get("spec") or {}).get("nodeName"):
            self.queue.add(key)

    def _place(self, key: Key, pod: Obj, delta: int) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            return
        if delta > 0:
            self._on_node.setdefault(node, set()).add(key)
        elif node in self._on_node:
            self._on_node[node].discard(key)
            if not self._on_node[node]:
                del self._on_node[node]

    def resync(self) -> None:
        for pod in self.cache.all(PODS.key):
            self._observe(ns_name(pod), pod)

    # -- reconcile -------------------------------------------------------------------------
    def reconcile(self, key: Key) -> float | None:
        pod = self.cache.get(PODS.key, *key)
        if pod is None or not (pod.get("spec") or {}).get("nodeName"):
            return None
        node = self.cache.get(NODES.key, "", pod["spec"]["nodeName"])
        if node is None:
            return self._orphan(key, pod)
        self._orphaned.pop(key, None)
        phase = (pod.get("status") or {}).get("phase")
        if not node_simulated(node) or terminating(pod) or phase in ("Succeeded", "Failed"):
            return None
        host_ip = node_ip(node)
        had = (pod.get("status") or {}).get("podIP")
        ip = host_ip if pod["spec"].get("hostNetwork") else had or self.ips.allocate(key)
        if ip is None:
            log.warning("pod %s/%s: no pod IP left (%d in use)", *key, len(self.ips))
            return FULL_RETRY
        status = self._status(pod, node, ip, host_ip)
        if status != pod.get("status"):
            try:
                self.registry.update_with(PODS, *key, "status", lambda o: {**o, "status": status})
            except Exception:
                if not had:
                    self.ips.release(key)
                raise
        return None

    def _orphan(self, key: Key, pod: Obj) -> float | None:
        since = self._orphaned.setdefault(key, time.monotonic())
        left = ORPHAN_QUARANTINE - (time.monotonic() - since)
        if left > 0:
            return left
        self._orphaned.pop(key, None)
        if not terminating(pod):
            self.registry.delete(PODS, *key)
        return None

    def _status(self, pod: Obj, node: Obj, ip: str, host_ip: str | None) -> Obj:
        now = self.now()
        old = pod.get("status") or {}
        start = old.get("startTime") or now
        spec = pod["spec"]
        ready = node_ready(node) and not node_stopped(node)
        containers = spec.get("containers") or []
        unready = "" if ready else "containers with unready status: [" + " ".join(
            c.get("name", "") for c in containers) + "]"
        wanted = [{"type": "PodReadyToStartContainers", "status": "True"},
                  {"type": "Initialized", "status": "True"},
                  *({"type": kind, "status": "True"} if ready else
                    {"type": kind, "status": "False", "reason": "ContainersNotReady",
                     "message": unready} for kind in ("Ready", "ContainersReady")),
                  {"type": "PodScheduled", "status": "True"}]
        uid = pod["metadata"]["uid"]
        status: Obj = {
            "phase": "Running",
            "conditions": merge_conditions(pod, wanted, now),
            "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": start,
            "containerStatuses": [self._container(c, uid, start, ready) for c in containers],
            "qosClass": old.get("qosClass") or qos_class(spec),
        }
        if host_ip:
            status.update(hostIP=host_ip, hostIPs=[{"ip": host_ip}])
        inits = spec.get("initContainers") or []
        if inits:
            status["initContainerStatuses"] = [
                self._container(c, uid, start, ready, done=c.get("restartPolicy") != "Always")
                for c in inits]
        return status

    @staticmethod
    def _container(c: Obj, uid: str, start: str, ready: bool, done: bool = False) -> Obj:
        image = str(c.get("image") or "")
        container_id = f"containerd://{_sha(uid + '/' + str(c.get('name')))}"
        state = ({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": start,
                                 "finishedAt": start, "containerID": container_id}}
                 if done else {"running": {"startedAt": start}})
        return {"name": c.get("name", ""), "image": image,
                "imageID": f"{image}@sha256:{_sha(image)}", "containerID": container_id,
                "ready": True if done else ready, "started": not done, "restartCount": 0,
                "state": state, "lastState": {}}
