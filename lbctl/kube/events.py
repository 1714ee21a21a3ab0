"""Events, aggregated like upstream's recorder, under names that survive restarts.

A controller that retries a failing Service every few seconds must not write an Event per try:
upstream's EventCorrelator turns repeats of one (object, type, reason, message) into a single
Event whose `count` and `lastTimestamp` grow. lbctl does the same, and names each Event
`<object>.<hash of what it says>` instead of `<object>.<timestamp>`, so a restarted controller
(or the other replica after a takeover) keeps counting on the same Event rather than starting a
new one: a create that meets 409 reads the Event and bumps it. A bump that meets 404 (Events
expire after the API server's TTL) creates it again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .client import EVENTS, MERGE, ApiError, Kube

MAX_MESSAGE = 1024
REMEMBERED = 4096


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """The object an Event is about (`involvedObject`)."""

    kind: str
    namespace: str
    name: str
    uid: str
    api_version: str = "v1"
    resource_version: str = ""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_name(involved: ObjectRef, type_: str, reason: str, message: str,
               component: str) -> str:
    """Deterministic: the same object saying the same thing always hits the same Event."""
    digest = hashlib.sha256("\x00".join((involved.uid, involved.kind, involved.name, type_,
                                         reason, message, component)).encode())
    return f"{involved.name}.{digest.hexdigest()[:16]}"


class EventRecorder:
    """Writes core/v1 Events through a Kube; thread-safe, one per controller process."""

    def __init__(self, kube: Kube, component: str = "lbctl", instance: str = "") -> None:
        self.kube = kube
        self.component = component
        self.instance = instance or os.environ.get("HOSTNAME", "")
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def create_or_update_event(self, involved: ObjectRef, type_: str, reason: str,
                               message: str) -> dict[str, Any]:
        """Record an Event (type "Normal" or "Warning"); answer it as JSON.

        Raises ApiError when the API server refuses; callers treat Events as best effort.
        """
        message = message[:MAX_MESSAGE]
        name = event_name(involved, type_, reason, message, self.component)
        namespace = involved.namespace or "default"
        now = _now()
        with self._lock:
            known = self._counts.get(name)
        if known is not None:
            try:
                return self._bump(namespace, name, known + 1, message, now)
            except ApiError as err:
                if not err.not_found:
                    raise
        body = {"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {"kind": involved.kind, "namespace": involved.namespace,
                                   "name": involved.name, "uid": involved.uid,
                                   "apiVersion": involved.api_version,
                                   "resourceVersion": involved.resource_version},
                "type": type_, "reason": reason, "message": message,
                "source": {"component": self.component}, "count": 1,
                "firstTimestamp": now, "lastTimestamp": now,
                "reportingComponent": self.component, "reportingInstance": self.instance}
        try:
            created = self.kube.request("POST", EVENTS.path(namespace), body=body)
        except ApiError as err:
            if not err.conflict:
                raise
            current = self.kube.request("GET", EVENTS.path(namespace, name))
            return self._bump(namespace, name, int(current.get("count") or 1) + 1, message, now)
        self._remember(name, 1)
        return created

    def _bump(self, namespace: str, name: str, count: int, message: str,
              now: str) -> dict[str, Any]:
        event = self.kube.request("PATCH", EVENTS.path(namespace, name), content_type=MERGE,
                                  body={"count": count, "lastTimestamp": now,
                                        "message": message})
        self._remember(name, count)
        return event

    def _remember(self, name: str, count: int) -> None:
        with self._lock:
            self._counts[name] = count
            self._counts.move_to_end(name)
            while len(self._counts) > REMEMBERED:
                self._counts.popitem(last=False)
