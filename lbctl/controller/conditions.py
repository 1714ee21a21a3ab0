"""The Service conditions lbctl maintains, so `<pending>` is never a mystery.

`LoadBalancerProvisioning`, `LoadBalancerServing` and `LoadBalancerDegraded` (after the KEP-4631
draft) say what the controller is doing and why, with a reason and message; they are computed
purely from the previous conditions and the sync's outcome, and lastTransitionTime only moves
when a condition's status flips.

Target health rides on `LoadBalancerServing`'s message: when the provider reported counts
(`LoadBalancerStatus.targets`), the message ends with `(targets healthy: H/T)`, one fixed form
that `targets_of` reads back (`lbctl status`'s TARGETS). A condition, not an annotation: the
status subresource is the controller's only write channel besides the finalizer, and `merge`
already patches only what changed, so a steady balancer costs no write while a change of
health costs one status patch. Unknown counts add nothing to the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from providers.cluster import Condition
from providers.spec import TargetHealth

PROVISIONING = "LoadBalancerProvisioning"
SERVING = "LoadBalancerServing"
DEGRADED = "LoadBalancerDegraded"
OURS = (PROVISIONING, SERVING, DEGRADED)
_TARGETS = re.compile(r"\(targets healthy: (\d+)/(\d+)\)$")


@dataclass(frozen=True)
class Want:
    """One condition as the sync wants it."""

    type: str
    status: bool
    reason: str
    message: str = ""


def ensured(degraded: str | None, serving: bool = True,
            targets: TargetHealth | None = None) -> list[Want]:
    return [Want(PROVISIONING, False, "Ensured", "the load balancer is provisioned"),
            Want(SERVING, True, "Ensured", with_targets(
                "the load balancer serves the Service's ports", targets))
            if serving else
            Want(SERVING, False, "NoHealthyTargets", with_targets(
                degraded or "no target passes its health checks", targets)),
            Want(DEGRADED, degraded is not None, "Degraded" if degraded else "Healthy",
                 degraded or "")]


def with_targets(message: str, targets: TargetHealth | None) -> str:
    """`message`, and the target counts in the one form `targets_of` reads, when known."""
    if targets is None:
        return message
    return f"{message} (targets healthy: {targets.healthy}/{targets.total})"


def targets_of(message: str) -> TargetHealth | None:
    """The counts `with_targets` put at the end of a message, or None."""
    found = _TARGETS.search(message)
    return TargetHealth(int(found[1]), int(found[2])) if found else None


def current_targets(current: tuple[Condition, ...]) -> TargetHealth | None:
    """The counts the Service's serving condition carries now (a sync that asks the provider
    nothing keeps them rather than blanking them)."""
    return next((targets_of(c.message) for c in current if c.type == SERVING), None)


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
