"""Whether a pod may run on a node: the scheduler's filters, shared with the DaemonSet controller.

The scheduler and the DaemonSet controller must agree (a DaemonSet that creates a pod the
scheduler will not place leaves it Pending forever), so both ask here. The filters are the ones
a LoadBalancer controller's tests meet: the sandbox's own (simulated, stopped), cordoned and
NotReady nodes, `nodeSelector`, required node affinity (matchExpressions on labels, matchFields
on `metadata.name`) and NoSchedule/NoExecute taints against tolerations. Each failure is named in
the words the real scheduler's FailedScheduling message uses where there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..storage.store import Obj
from .objects import labels_of, node_ready, node_simulated, node_stopped, node_unschedulable

NOT_SIMULATED = "node(s) are not simulated by the sandbox"
STOPPED = "node(s) were stopped"
UNSCHEDULABLE = "node(s) were unschedulable"
NOT_READY = "node(s) were not ready"
AFFINITY = "node(s) didn't match Pod's node affinity/selector"
TAINTS = "node(s) had untolerated taint(s)"
_CORDONED = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def _expression(expr: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key, op = expr.get("key", ""), expr.get("operator", "")
    wanted = [str(v) for v in expr.get("values") or []]
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, limit = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return have > limit if op == "Gt" else have < limit
    return False


def _term(term: Mapping[str, Any], node: Obj) -> bool:
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches no objects
    labels = labels_of(node)
    node_fields = {"metadata.name": node["metadata"]["name"]}
    return all(_expression(e, labels) for e in exprs) and all(
        _expression(f, node_fields) for f in fields)


def matches_node(spec: Mapping[str, Any], node: Obj) -> bool:
    """nodeSelector and requiredDuringSchedulingIgnoredDuringExecution node affinity."""
    labels = labels_of(node)
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return True
    return any(_term(t, node) for t in required.get("nodeSelectorTerms") or [])


def _tolerates(tolerations: list[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists":
            if not tol.get("key") or tol["key"] == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and (tol.get("value") or "") == (
                taint.get("value") or ""):
            return True
    return False


def tolerates_node(spec: Mapping[str, Any], node: Obj) -> bool:
    tolerations = spec.get("tolerations") or []
    return all(_tolerates(tolerations, t) for t in (node.get("spec") or {}).get("taints") or []
               if t.get("effect") in ("NoSchedule", "NoExecute"))


def unfit_reason(spec: Mapping[str, Any], node: Obj) -> str | None:
    """Why a pod with `spec` cannot be placed on `node` now, or None when it can."""
    if not node_simulated(node):
        return NOT_SIMULATED
    if node_unschedulable(node) and not _tolerates(spec.get("tolerations") or [], _CORDONED):
        return UNSCHEDULABLE
    if not node_ready(node):
        return NOT_READY
    if node_stopped(node):
        return STOPPED
    if not matches_node(spec, node):
        return AFFINITY
    if not tolerates_node(spec, node):
        return TAINTS
    return None
