"""Meltdown protection: a balancer never loses too many backends in one step, never all.

When the control plane loses sight of nodes (kubernetes#45126) every Service can be told at once
that its backends are gone; applying that blindly empties every balancer in the fleet. Removals
beyond `maxRemovedFraction` of the current targets are held back and applied on a later sync, and
a step that would leave zero targets keeps the current ones. Additions always go through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from providers.spec import Target


@dataclass(frozen=True)
class Step:
    targets: tuple[Target, ...]
    held_back: tuple[str, ...]
    """Names of nodes kept although the desired state removes them."""


def limit_removals(current: tuple[Target, ...] | None, desired: tuple[Target, ...],
                   max_fraction: float) -> Step:
    """The targets to apply now, given what the balancer has (`None`: unknown, e.g. first sync
    after a restart, when nothing is held back) and what it should have."""
    if not current:
        return Step(desired, ())
    wanted = {t.node for t in desired}
    removed = sorted((t for t in current if t.node not in wanted), key=lambda t: t.node)
    if not desired:
        return Step(current, tuple(t.node for t in removed))
    allowed = math.floor(len(current) * max_fraction)
    if len(removed) <= allowed:
        return Step(desired, ())
    keep = removed[allowed:]  # remove the first `allowed` by name; hold the rest
    merged = sorted((*desired, *keep), key=lambda t: t.node)
    return Step(tuple(merged), tuple(t.node for t in keep))
