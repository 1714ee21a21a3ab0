"""The Service conditions lbctl maintains, so `<pending>` is never a mystery.

`LoadBalancerProvisioning`, `LoadBalancerServing` and `LoadBalancerDegraded` (after the KEP-4631
draft) say what the controller is doing and why, with a reason and message; they are computed
purely from the previous conditions and the sync's outcome, and lastTransitionTime only moves
when a condition's status flips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from providers.cluster import Condition

PROVISIONING = "LoadBalancerProvisioning"
SERVING = "LoadBalancerServing"
DEGRADED = "LoadBalancerDegraded"
OURS = (PROVISIONING, SERVING, DEGRADED)


@dataclass(frozen=True)
class Want:
    """One condition as the sync wants it."""

    type: str
    status: bool
    reason: str
    message: str = ""


def ensured(degraded: str | None, serving: bool = True) -> list[Want]:
    return [Want(PROVISIONING, False, "Ensured", "the load balancer is provisioned"),
            Want(SERVING, True, "Ensured", "the load balancer serves the Service's ports")
            if serving else
            Want(SERVING, False, "NoHealthyTargets", degraded or "no target passes its "
                                                                "health checks"),
            Want(DEGRADED, degraded is not None, "Degraded" if degraded else "Healthy",
                 degraded or "")]


def provisioning(message: str, serving: bool) -> list[Want]:
    return [Want(PROVISIONING, True, "Provisioning", message),
            Want(SERVING, serving, "Ensured" if serving else "Provisioning",
                 "" if serving else "waiting for the provider")]


def failed(reason: str, message: str, serving: bool, retrying: bool) -> list[Want]:
    return [Want(PROVISIONING, retrying, reason, message),
            Want(SERVING, serving, "Ensured" if serving else reason, "" if serving else message)]


def merge(current: tuple[Condition, ...], wants: list[Want], generation: int,
          now: str) -> list[dict[str, Any]] | None:
    """The full conditions list to write, or None when nothing of ours changed."""
    by_type = {c.type: c for c in current}
    changed = False
    out: list[dict[str, Any]] = []
    wanted = {w.type: w for w in wants}
    for cond in current:
        if cond.type not in wanted:
            out.append(_json(cond))
    for want in wants:
        status = "True" if want.status else "False"
        old = by_type.get(want.type)
        same_status = old is not None and old.status == status
        if not (same_status and old is not None and old.reason == want.reason
                and old.message == want.message and old.observed_generation == generation):
            changed = True
        stamp = old.last_transition_time if (same_status and old is not None) else now
        out.append({"type": want.type, "status": status, "reason": want.reason,
                    "message": want.message, "observedGeneration": generation,
                    "lastTransitionTime": stamp})
    return out if changed else None


def _json(cond: Condition) -> dict[str, Any]:
    return {"type": cond.type, "status": cond.status, "reason": cond.reason,
            "message": cond.message, "observedGeneration": cond.observed_generation,
            "lastTransitionTime": cond.last_transition_time}
