"""Which nodes back a balancer: upstream's predicates, as pure functions.

Readiness is deliberately NOT a filter (KEP-3458: draining on NotReady emptied whole fleets when
the control plane lost contact with its nodes); a node is left out only when it is being
deleted, carries the exclude label, or is tainted for removal by the cluster autoscaler.
"""

from __future__ import annotations

from collections.abc import Iterable

from providers.cluster import NodeView

EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
AUTOSCALER_TAINT = "ToBeDeletedByClusterAutoscaler"
_FALSE = {"false", "False", "FALSE", "f", "F", "0"}


def excluded_by_label(node: NodeView) -> bool:
    """The exclude label is set to anything but a false value (upstream: ParseBool == false
    includes; empty or unparsable excludes)."""
    if EXCLUDE_LABEL not in node.labels:
        return False
    return node.labels[EXCLUDE_LABEL] not in _FALSE


def is_backend(node: NodeView) -> bool:
    if node.deleting or excluded_by_label(node):
        return False
    return all(key != AUTOSCALER_TAINT for key, _ in node.taints)


def select_nodes(nodes: Iterable[NodeView]) -> list[NodeView]:
    """The nodes that back every balancer, sorted by name (stable specs, stable diffs)."""
    return sorted((n for n in nodes if is_backend(n)), key=lambda n: n.name)
