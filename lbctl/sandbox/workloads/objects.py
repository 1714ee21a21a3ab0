"""Reading and building the API objects the controllers share: owners, conditions, nodes, pods.

Every controller needs the same few judgements (is this pod ready, which object controls it, can
this node run pods) and must build conditions the way upstream does (a transition time that
moves only when the status flips), so they live here once. Stored objects are never mutated:
everything below reads, or returns new dicts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from ..nodes import SIMULATED, STOPPED
from ..storage.resources import Resource, by_key
from ..storage.store import Obj

"""Node annotation: "true" means the sandbox's traffic process has powered the node off."""

PODS, NODES, NAMESPACES, SERVICES = (by_key("pods"), by_key("nodes"), by_key("namespaces"),
                                     by_key("services"))
DEPLOYMENTS, REPLICASETS, DAEMONSETS = (by_key("deployments.apps"), by_key("replicasets.apps"),
                                        by_key("daemonsets.apps"))
ENDPOINTS, SLICES = by_key("endpoints"), by_key("endpointslices.discovery.k8s.io")
SERVICE_ACCOUNTS = by_key("serviceaccounts")

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # utilrand.SafeEncodeString's


def copy(value: Any) -> Any:
    """A deep copy of JSON data (a template becoming a new object's own)."""
    return orjson.loads(orjson.dumps(value))


def ns_name(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


def labels_of(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def annotation(obj: Obj, name: str) -> str | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(name)
    return None if value is None else str(value)


def terminating(obj: Obj) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def replicas_of(obj: Obj) -> int:
    """spec.replicas, defaulted to 1 as the apps/v1 defaulting would."""
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def seconds_since(timestamp: str | None) -> float:
    """Seconds from an RFC 3339 timestamp (as the registry writes them) until now."""
    if not timestamp:
        return 0.0
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (datetime.now(UTC) - then).total_seconds()


# -- ownership ---------------------------------------------------------------------------
def controller_of(obj: Obj) -> Obj | None:
    """The ownerReference with `controller: true`, if any."""
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_reference(res: Resource, owner: Obj) -> Obj:
    """A controlling, deletion-blocking reference to `owner`, as controllers set it."""
    return {"apiVersion": res.api_version, "kind": res.kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """controller.ComputeHash: FNV-32a of the template (+ collision count), safe-encoded.

    Upstream hashes a Go dump of the struct; the canonical JSON here is as stable, so the same
    template always gives the same pod-template-hash within the sandbox.
    """
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += collision_count.to_bytes(8, "little")
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in str(value).encode())


# -- conditions --------------------------------------------------------------------------
def condition(obj: Obj, kind: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return dict(cond)
    return None


def merge_condition(old: Obj | None, new: Obj, now: str) -> Obj:
    """`new` with upstream's timestamps: the old condition itself when nothing changed,
    the old lastTransitionTime when only reason/message changed."""
    stamps = ("lastTransitionTime", "lastUpdateTime", "lastProbeTime", "lastHeartbeatTime")
    if old is not None:
        same = {k: v for k, v in old.items() if k not in stamps}
        if same == {k: v for k, v in new.items() if k not in stamps}:
            return old
    out = dict(new)
    out["lastTransitionTime"] = (old["lastTransitionTime"] if old is not None
                                 and old.get("status") == new.get("status")
                                 and old.get("lastTransitionTime") else now)
    if "lastUpdateTime" in new:
        out["lastUpdateTime"] = now
    return out


def merge_conditions(obj: Obj, wanted: list[Obj], now: str) -> list[Obj]:
    """The conditions of `obj` after setting each of `wanted` (others kept, order upstream's)."""
    current = list((obj.get("status") or {}).get("conditions") or ())
    by_type = {c.get("type"): c for c in current}
    out = [c for c in current if c.get("type") not in {w["type"] for w in wanted}]
    out += [merge_condition(by_type.get(w["type"]), w, now) for w in wanted]
    return out


# -- pods --------------------------------------------------------------------------------
def pod_ready(pod: Obj) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def pod_active(pod: Obj) -> bool:
    """Counts toward a controller's replicas: not terminating, not finished."""
    phase = (pod.get("status") or {}).get("phase")
    return not terminating(pod) and phase not in ("Succeeded", "Failed")


def pod_containers(pod: Obj) -> list[Obj]:
    """Containers that serve: the regular ones and sidecars (restartable init containers)."""
    spec = pod.get("spec") or {}
    return list(spec.get("containers") or []) + [
        c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]


# -- nodes -------------------------------------------------------------------------------
def node_simulated(node: Obj) -> bool:
    return annotation(node, SIMULATED) == "true"


def node_stopped(node: Obj) -> bool:
    return annotation(node, STOPPED) == "true"


def node_ready(node: Obj) -> bool:
    cond = condition(node, "Ready")
    return cond is not None and cond.get("status") == "True"


def node_unschedulable(node: Obj) -> bool:
    return bool((node.get("spec") or {}).get("unschedulable"))


def node_ip(node: Obj) -> str | None:
    for addr in (node.get("status") or {}).get("addresses") or ():
        if addr.get("type") == "InternalIP":
            return str(addr.get("address"))
    return None


def node_zone(node: Obj | None) -> str | None:
    return labels_of(node).get("topology.kubernetes.io/zone") if node is not None else None


# -- pods from templates -----------------------------------------------------------------
def pod_from_template(owner_res: Resource, owner: Obj, template: Obj,
                      extra_labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    """A pod as a workload controller creates it: `<owner>-<5 random>`, owned by `owner`."""
    tmeta = template.get("metadata") or {}
    meta: Obj = {"generateName": f"{owner['metadata']['name']}-",
                 "labels": {**(tmeta.get("labels") or {}), **(extra_labels or {})},
                 "ownerReferences": [owner_reference(owner_res, owner)]}
    for field in ("annotations", "finalizers"):
        if tmeta.get(field):
            meta[field] = copy(tmeta[field])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {**copy(template.get("spec") or {}), **copy(spec)}}


def pod_available(pod: Obj, min_ready_seconds: int) -> tuple[bool, float | None]:
    """Ready for at least minReadySeconds; else how long until it may be (None: not ready)."""
    cond = condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return False, None
    if min_ready_seconds <= 0:
        return True, None
    waited = seconds_since(cond.get("lastTransitionTime"))
    if waited >= min_ready_seconds:
        return True, None
    return False, min_ready_seconds - waited


def without_zeros(status: Obj, keep: tuple[str, ...] = ()) -> Obj:
    """Go's `omitempty` on integer status fields: zeros are not serialized."""
    return {k: v for k, v in status.items() if v not in (0, None, [], {}) or k in keep}
