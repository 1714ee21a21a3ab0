"""The two views of Events: core/v1 and events.k8s.io/v1 share one store.

kube-apiserver stores every Event once and serves it under both groups, converting field names
(`involvedObject` <-> `regarding`, `message` <-> `note`, `source` <-> `deprecatedSource`, ...).
The sandbox stores the core form and converts at the boundary of the events.k8s.io endpoints.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

# (core field, events.k8s.io field); both sides are top-level.
_RENAMES: tuple[tuple[str, str], ...] = (
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
    ("related", "related"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("eventTime", "eventTime"),
    ("reportingInstance", "reportingInstance"),
)


def to_events_v1(core: Obj) -> Obj:
    """A stored core/v1 Event as events.k8s.io/v1 shows it."""
    out: Obj = {"kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": core["metadata"]}
    for old, new in _RENAMES:
        if old in core:
            out[new] = core[old]
    out.setdefault("eventTime", None)  # no omitempty in events.k8s.io/v1: null, as upstream
    series = core.get("series")
    if series:
        out["series"] = {"count": series.get("count", 0),
                         "lastObservedTime": series.get("lastObservedTime")}
    return out


def to_core(event: Obj) -> Obj:
    """An events.k8s.io/v1 Event as the store keeps it (core/v1)."""
    out: Obj = {"kind": "Event", "apiVersion": "v1", "metadata": event.get("metadata", {})}
    for old, new in _RENAMES:
        if new in event:
            out[old] = event[new]
    if "series" in event:
        out["series"] = event["series"]
    # core Events name their involved object's namespace; events.k8s.io leaves it implied.
    return out
