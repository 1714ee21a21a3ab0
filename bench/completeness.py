"""The benches' one rule: a run that did not complete what it measures says so and prints no
ratio and no verdict (PASS/FAIL/MISS), for either side of a comparison.

A figure's completeness is a `Tally` (done of wanted: "480/500 Services got an address") or a
`Judged` (complete or not, and why). `ratio`/`ratio_text` and `verdict` take any of those (or a
plain bool) and refuse a ratio or a verdict unless every one of them is complete; `shortfalls`
names what fell short, as "INCOMPLETE: 480/500 Services got an address".

No import from lbctl: the data-plane benches import it next to nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, Self

NO_RATIO = "-"
"""What a refused ratio prints as."""


class Completes(Protocol):
    @property
    def complete(self) -> bool: ...

    @property
    def why(self) -> str: ...


Part = Completes | bool


@dataclass
class Judged:
    """Figures that may not have completed: `failed` marks them and says why."""

    complete: bool = True
    why: str = ""

    def failed(self, why: str) -> Self:
        self.complete, self.why = False, why
        return self


@dataclass
class Tally:
    """`done` of `wanted` `what` completed (e.g. what="requests answered"); complete only when
    every one did and at least one was wanted. `detail` adds why the others did not."""

    what: str
    wanted: int
    done: int = 0
    detail: str = ""

    @property
    def complete(self) -> bool:
        return self.wanted > 0 and self.done >= self.wanted

    @property
    def why(self) -> str:
        return f"{self.done}/{self.wanted} {self.what}" + (f" ({self.detail})" if self.detail
                                                          else "")

    def add(self, ok: bool, detail: str = "") -> bool:
        """Count one attempt (wanted += 1, done += ok); the first failure's `detail` kept."""
        self.wanted += 1
        self.done += bool(ok)
        if not ok and detail and not self.detail:
            self.detail = detail
        return ok

    def __str__(self) -> str:
        return self.why if self.complete else f"INCOMPLETE: {self.why}"


def _complete(part: Part) -> bool:
    return part if isinstance(part, bool) else part.complete


def complete(*parts: Part) -> bool:
    """Every part complete (no parts: complete)."""
    return all(_complete(p) for p in parts)


def shortfalls(parts: Iterable[Part]) -> list[str]:
    """"INCOMPLETE: ..." for each part that did not complete (a bare False: "INCOMPLETE")."""
    out = []
    for p in parts:
        if _complete(p):
            continue
        why = "" if isinstance(p, bool) else p.why
        out.append(f"INCOMPLETE: {why}" if why else "INCOMPLETE")
    return out


def ratio(mine: float | None, theirs: float | None, *parts: Part) -> float | None:
    """mine / theirs, or None when either is missing, theirs is 0, or any part (the runs of
    both sides) did not complete."""
    if mine is None or not theirs or not complete(*parts):
        return None
    return mine / theirs


def ratio_text(mine: float | None, theirs: float | None, *parts: Part, spec: str = ".2f",
               suffix: str = "x") -> str:
    """`ratio` formatted, or NO_RATIO."""
    r = ratio(mine, theirs, *parts)
    return NO_RATIO if r is None else f"{format(r, spec)}{suffix}"


def verdict(ok: bool, complete: bool | Part = True, *more: Part, yes: str = "PASS",
            no: str = "FAIL") -> str:
    """PASS/FAIL (or `yes`/`no`) of a complete run; a run that did not complete is not judged."""
    if not all(_complete(p) for p in (complete, *more)):
        return "NOT JUDGED (the run did not complete)"
    return yes if ok else no


def wrk_errors(out: str) -> str:
    """What wrk's output says went unanswered: its socket errors (connect, read, write,
    timeout) and non-2xx/3xx answers; "" when every request it sent was answered."""
    found = []
    sock = re.search(r"Socket errors: (.*)$", out, re.M)
    if sock:
        found.append(f"socket errors {sock.group(1).strip()}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        found.append(f"{non2xx.group(1)} non-2xx")
    return "; ".join(found)
