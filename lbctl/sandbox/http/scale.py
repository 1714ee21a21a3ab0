"""The `scale` subresource (autoscaling/v1 Scale) of deployments and replicasets.

`kubectl scale` and autoscalers read and write a workload's replica count through a `Scale`
object rather than the workload itself; this module maps one onto the other, with kube's
validation message for a bad `spec.replicas`.
"""

from __future__ import annotations

from typing import Any

from .. import errors
from ..encoding.patch import merge_patch
from ..storage.registry import Registry
from ..storage.store import Obj
from .requests import Target


def scale_of(obj: Obj) -> Obj:
    """The Scale view of a workload."""
    meta = obj["metadata"]
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace", ""),
                         "uid": meta["uid"], "resourceVersion": meta["resourceVersion"],
                         "creationTimestamp": meta.get("creationTimestamp")},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))}}


def serve_scale(reg: Registry, t: Target, verb: str, body: Any) -> Obj:
    """GET, PUT or PATCH (merge) `.../<name>/scale`: the Scale after the change."""
    res, ns = t.resource, t.namespace or ""
    if verb in ("update", "patch"):
        current = scale_of(reg.get(res, ns, t.name))
        if verb == "patch":
            body = merge_patch(current, body)
        replicas = (body.get("spec") or {}).get("replicas") if isinstance(body, dict) else None
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid_object("Scale", "autoscaling", t.name, [errors.invalid(
                "spec.replicas", replicas, "must be greater than or equal to 0")])
        reg.update_with(res, ns, t.name, "", lambda obj: {
            **obj, "spec": {**obj.get("spec", {}), "replicas": replicas}})
    return scale_of(reg.get(res, ns, t.name))
