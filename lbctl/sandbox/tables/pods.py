"""Printers for pods and events: the two whose cells take real logic.

`printPod` folds phase, init containers (sidecars included), container states and deletion into
one STATUS word and counts restarts with the age of the last one; `printEvent` picks the right
timestamps and counts between the old (`firstTimestamp`/`count`) and new (`eventTime`/`series`)
event fields. Both ported from kube's `pkg/printers/internalversion/printers.go`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..encoding.events import to_core
from ..storage.store import Obj
from .base import AGE, NAME, Column, Printer
from .durations import parse_time, since
from .format import NONE

CORE = "io.k8s.api.core.v1."
_TERMINAL = ("Succeeded", "Failed")


def _restartable(container: Obj | None) -> bool:
    return bool(container) and (container or {}).get("restartPolicy") == "Always"


def _later(current: datetime | None, state: Obj) -> datetime | None:
    finished = parse_time(((state.get("lastState") or {}).get("terminated") or {})
                          .get("finishedAt"))
    if finished is not None and (current is None or finished > current):
        return finished
    return current


def _init_failure(status: Obj, index: int, total: int) -> str:
    """STATUS while init container `index` (not done, not a started sidecar) holds the pod."""
    state = status.get("state") or {}
    terminated, waiting = state.get("terminated"), state.get("waiting")
    if terminated is not None:
        if terminated.get("reason"):
            return "Init:" + str(terminated["reason"])
        if terminated.get("signal"):
            return f"Init:Signal:{terminated['signal']}"
        return f"Init:ExitCode:{terminated.get('exitCode', 0)}"
    if waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
        return "Init:" + str(waiting["reason"])
    return f"Init:{index}/{total}"


def pod_cells(pod: Obj) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    meta = pod.get("metadata") or {}
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total = len(spec.get("containers") or []) + sum(
        1 for c in init_specs.values() if _restartable(c))
    reason = status.get("reason") or status.get("phase", "")
    conditions = status.get("conditions") or []
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
           for c in conditions):
        reason = "SchedulingGated"
    ready = restarts = sidecar_restarts = 0
    last: datetime | None = None
    last_sidecar: datetime | None = None
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount", 0)
        last = _later(last, cs)
        sidecar = _restartable(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += cs.get("restartCount", 0)
            last_sidecar = _later(last_sidecar, cs)
        terminated = (cs.get("state") or {}).get("terminated")
        if terminated is not None and terminated.get("exitCode", 0) == 0:
            continue
        if sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        reason, initializing = _init_failure(cs, i, len(init_specs)), True
        break
    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True"
                      for c in conditions)
    if not initializing or initialized:
        restarts, last, running = sidecar_restarts, last_sidecar, False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            last = _later(last, cs)
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                reason = (f"Signal:{terminated['signal']}" if terminated.get("signal")
                          else f"ExitCode:{terminated.get('exitCode', 0)}")
            elif cs.get("ready") and state.get("running") is not None:
                running = True
                ready += 1
        if reason == "Completed" and running:
            pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in conditions)
            reason = "Running" if pod_ready else "NotReady"
    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and status.get("phase") not in _TERMINAL:
        reason = "Terminating"
    shown_restarts = str(restarts)
    if restarts and last is not None:
        shown_restarts = f"{restarts} ({since(last)} ago)"
    ips = status.get("podIPs") or []
    gates = spec.get("readinessGates") or []
    gates_text = NONE
    if gates:
        by_type = {c.get("type"): c.get("status") for c in conditions}
        passed = sum(1 for g in gates if by_type.get(g.get("conditionType")) == "True")
        gates_text = f"{passed}/{len(gates)}"
    return [meta.get("name", ""), f"{ready}/{total}", reason, shown_restarts,
            since(meta.get("creationTimestamp")), (ips[0].get("ip") if ips else "") or NONE,
            spec.get("nodeName") or NONE, status.get("nominatedNodeName") or NONE, gates_text]


def pod_conditions(pod: Obj) -> list[dict[str, str]]:
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed",
                 "message": "The pod failed."}]
    return []


POD = Printer((
    NAME,
    Column("Ready", doc="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", doc="The aggregate status of the containers in this pod."),
    Column("Restarts", doc="The number of times the containers in this pod have been restarted "
           "and when the last container in this pod has restarted."),
    AGE,
    Column("IP", doc=(CORE + "PodStatus", "podIP"), priority=1),
    Column("Node", doc=(CORE + "PodSpec", "nodeName"), priority=1),
    Column("Nominated Node", doc=(CORE + "PodStatus", "nominatedNodeName"), priority=1),
    Column("Readiness Gates", doc=(CORE + "PodSpec", "readinessGates"), priority=1)),
    pod_cells, pod_conditions)


# -- events ---------------------------------------------------------------------------------
def event_source(event: Obj) -> str:
    """`formatEventSource`: component (or reportingController), then host (or instance)."""
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    instance = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else component


def event_cells(event: Obj) -> list[Any]:
    stamp = "firstTimestamp" if parse_time(event.get("firstTimestamp")) else "eventTime"
    first = since(event.get(stamp))
    last = since(event["lastTimestamp"]) if parse_time(event.get("lastTimestamp")) else first
    count = event.get("count") or 0
    series = event.get("series")
    if series is not None:
        last = since(series.get("lastObservedTime"))
        count = series.get("count", 0)
    elif count == 0:
        count = 1  # singleton events have no count in the new API
    about = event.get("involvedObject") or {}
    kind = str(about.get("kind", "")).lower()
    target = f"{kind}/{about['name']}" if about.get("name") else kind
    return [last, event.get("type", ""), event.get("reason", ""), target,
            about.get("fieldPath", ""), event_source(event),
            str(event.get("message", "")).strip(), first, count,
            event.get("metadata", {}).get("name", "")]


_EVENT = CORE + "Event"
EVENT = Printer((
    Column("Last Seen", doc=(_EVENT, "lastTimestamp")), Column("Type", doc=(_EVENT, "type")),
    Column("Reason", doc=(_EVENT, "reason")), Column("Object", doc=(_EVENT, "involvedObject")),
    Column("Subobject", doc=(CORE + "ObjectReference", "fieldPath"), priority=1),
    Column("Source", doc=(_EVENT, "source"), priority=1),
    Column("Message", doc=(_EVENT, "message")),
    Column("First Seen", doc=(_EVENT, "firstTimestamp"), priority=1),
    Column("Count", doc=(_EVENT, "count"), priority=1),
    Column("Name", format="name", doc=NAME.doc, priority=1)),
    event_cells, adapt=lambda e: to_core(e) if e.get("apiVersion") == "events.k8s.io/v1" else e)
