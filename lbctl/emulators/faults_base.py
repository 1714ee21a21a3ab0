"""The cloud-neutral half of the emulators' call log, fault injection and rate limits.

Both the GCE and the ARM emulator log every call (`CallLog.record`, `counts`), pick the fault
a call meets (a shell-style pattern on the API id, an HTTP method, a path regex; seeded
probability; a count or for ever: `matches`, `CallLog.pick`) and throttle with a token bucket
per call family (`Bucket`, `buckets_from`). What a fault or a refusal looks like on the wire
(GCE's `reason` vs ARM's `code`, 403/429 vs 429 with Retry-After) is each cloud's own and stays
in its `faults.py`.
"""

from __future__ import annotations

import fnmatch
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, Protocol, Self, TypeVar

FAMILIES = ("read", "write", "operation")
MODES = ("http", "operation", "lost")
MAX_LOG = 200_000


class CallLike(Protocol):
    method: str
    path: str
    api: str
    family: str


class FaultLike(Protocol):
    count: int | None
    fired: int
    probability: float

    def matches(self, call: Any) -> bool: ...


C = TypeVar("C", bound=CallLike)
F = TypeVar("F", bound=FaultLike)


@dataclass
class Call:
    """One call as the log keeps it: its method, path, API id, family and answered status."""

    method: str
    path: str
    api: str
    family: str
    status: int = 0

    def json(self) -> dict[str, Any]:
        return asdict(self)


def matches(api: str, method: str, path: str, call: CallLike) -> bool:
    """A fault's filters (empty: any) against a call: API id pattern, HTTP method, path regex."""
    return ((not api or fnmatch.fnmatchcase(call.api, api))
            and (not method or method.upper() == call.method)
            and (not path or re.search(path, call.path) is not None))


def check_fault(mode: str, status: int, probability: float, path: str,
                invalid: Callable[[str], Exception]) -> None:
    """A fault's mode, status (100-599), probability (0-1) and path regex, or `invalid(message)`
    raised (a bad path regex raises re.error)."""
    if mode not in MODES:
        raise invalid(f"mode must be one of {MODES}")
    if not 100 <= int(status) <= 599 or not 0 <= float(probability) <= 1:
        raise invalid("status 100-599 and probability 0-1")
    if path:
        re.compile(path)


@dataclass(kw_only=True)
class FaultRule:
    """What every cloud's fault holds: where it fires (API id pattern, HTTP method, path regex),
    how often (`count`, None: for ever; `probability`; `fired` so far), how (`mode`), and the
    HTTP status it answers; the cloud's subclass adds its error's fields and their defaults."""

    status: int
    message: str
    mode: str = "http"
    api: str = ""
    method: str = ""
    path: str = ""
    count: int | None = 1
    probability: float = 1.0
    fired: int = 0

    @classmethod
    def parse(cls, data: dict[str, Any], own: set[str], renames: dict[str, str],
              invalid: Callable[[str], Exception]) -> Self:
        """The fault `data` asks for: the shared fields, the cloud's `own` ones, each key of
        `renames` taken as its value (`retryAfter` as `retry_after`); checked."""
        names = {"status", "message", "mode", "api", "method", "path", "count", "probability",
                 *own, *renames}
        unknown = sorted(set(data) - names)
        if unknown:
            raise invalid(f"unknown fault field {unknown[0]!r}")
        values = {renames.get(k, k): v for k, v in data.items()}
        fault = cls(**values)
        check_fault(fault.mode, fault.status, fault.probability, fault.path, invalid)
        return fault

    def matches(self, call: CallLike) -> bool:
        return matches(self.api, self.method, self.path, call)


@dataclass
class Bucket:
    rate: float
    burst: float
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        moment = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (moment - self.stamp) * self.rate)
        self.stamp = moment
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate if self.rate > 0 else 60.0


def buckets_from(data: dict[str, Any], skip: str,
                 invalid: Callable[[str], Exception]) -> dict[str, Bucket]:
    """`{"read": {"rate": 5, "burst": 10}, "write": ...}` as buckets; the key `skip` is the
    cloud's own option; anything else is `invalid(message)`, raised."""
    buckets = {}
    for name, spec in data.items():
        if name == skip:
            continue
        if name not in FAMILIES or not isinstance(spec, dict):
            raise invalid(f"rate limit families: {FAMILIES}")
        rate = float(spec.get("rate", 1))
        buckets[name] = Bucket(rate, float(spec.get("burst", max(rate, 1))))
    return buckets


@dataclass(kw_only=True)
class CallLog(Generic[C, F]):
    """The calls seen (the oldest tenth dropped past `MAX_LOG`), the faults armed, the buckets."""

    calls: list[C] = field(default_factory=list)
    rules: list[F] = field(default_factory=list)
    buckets: dict[str, Bucket] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def record(self, call: C) -> None:
        if len(self.calls) >= MAX_LOG:
            del self.calls[: MAX_LOG // 10]
        self.calls.append(call)

    def counts(self) -> Counter[str]:
        return Counter(c.api for c in self.calls)

    def pick(self, call: C) -> F | None:
        """The fault that fires on `call`, counted down; None when none does."""
        for fault in self.rules:
            if fault.count is not None and fault.fired >= fault.count:
                continue
            if fault.matches(call) and self.rng.random() < fault.probability:
                fault.fired += 1
                return fault
        return None

    def reset(self) -> None:
        self.calls.clear()
        self.rules.clear()
        self.buckets.clear()
