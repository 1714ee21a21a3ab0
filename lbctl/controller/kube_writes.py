"""The reconciler's writes and events over `lbctl.kube`.

The reconciler speaks in ServiceViews; this adapter turns its three kinds of write into API
calls: finalizers (guarded so a stale list is never written), the status subresource (strategic
merge, as upstream), and Events (aggregated by `lbctl.kube.EventRecorder`).
"""

from __future__ import annotations

from typing import Any

from providers.cluster import ServiceView

from ..kube import EventRecorder, Kube, ObjectRef


class KubeServiceWrites:
    """`ServiceWrites` for the reconciler, over a Kube client."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def set_finalizer(self, svc: ServiceView, finalizer: str, present: bool) -> None:
        current = list(svc.finalizers)
        wanted = [f for f in current if f != finalizer] + ([finalizer] if present else [])
        if wanted == current:
            return
        self.kube.patch_service_metadata(svc.namespace, svc.name, finalizers=wanted,
                                         expected_finalizers=current,
                                         resource_version=svc.resource_version)

    def patch_status(self, svc: ServiceView, status: dict[str, Any]) -> None:
        self.kube.patch_service_status(svc.namespace, svc.name, {"status": status})


class KubeEventWriter:
    """Writes one Service event now (called from the background event thread)."""

    def __init__(self, kube: Kube, component: str = "lbctl") -> None:
        self.recorder = EventRecorder(kube, component=component)

    def __call__(self, svc: ServiceView, type_: str, reason: str, message: str) -> None:
        self.recorder.create_or_update_event(
            ObjectRef("Service", svc.namespace, svc.name, svc.uid,
                      resource_version=svc.resource_version), type_, reason, message)
