"""What tests do to the emulator besides calling it: count calls, inject faults, throttle.

- The call log records every Compute call (method, path, the API method id such as
  `compute.forwardingRules.insert`, its family `read`/`write`/`operation`, the status answered,
  when it arrived as Unix time `at`): tests count calls per API method to hold a provider to a
  budget, and count them per time window to hold it to its rate limits.
- A fault matches calls by API method id (shell-style pattern, `compute.*.insert`), HTTP method
  or path regex, fires with a probability (seeded) for a number of calls (or for ever), and
  either answers an HTTP error without doing anything (`http`), accepts the write and fails its
  operation (`operation`: DONE with the error, as quota failures come), or does the work and
  loses the reply (`lost`: the connection is dropped after the write was accepted).
- The rate limit is a token bucket per family; a call finding it empty is refused with 403 or
  429 and reason rateLimitExceeded, as GCE's per-minute API quotas are.
"""

from __future__ import annotations

import fnmatch
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .errors import GceError, rate_limited

FAMILIES = ("read", "write", "operation")
MODES = ("http", "operation", "lost")
MAX_LOG = 200_000


@dataclass
class Call:
    method: str
    path: str
    api: str
    family: str
    status: int = 0
    at: float = field(default_factory=time.time)
    """When the call arrived (Unix time: comparable across processes)."""

    def json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "api": self.api,
                "family": self.family, "status": self.status, "at": self.at}


@dataclass
class Fault:
    status: int = 503
    reason: str = "backendError"
    message: str = "Internal error. Please try again or contact Google Support."
    mode: str = "http"
    api: str = ""
    method: str = ""
    path: str = ""
    count: int | None = 1
    probability: float = 1.0
    fired: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        names = {"status", "reason", "message", "mode", "api", "method", "path", "count",
                 "probability"}
        unknown = sorted(set(data) - names)
        if unknown:
            raise GceError(400, "invalid", f"unknown fault field {unknown[0]!r}")
        fault = cls(**data)
        if fault.mode not in MODES:
            raise GceError(400, "invalid", f"mode must be one of {MODES}")
        if not 100 <= int(fault.status) <= 599 or not 0 <= float(fault.probability) <= 1:
            raise GceError(400, "invalid", "status 100-599 and probability 0-1")
        if fault.path:
            re.compile(fault.path)
        return fault

    def matches(self, call: Call) -> bool:
        return ((not self.api or fnmatch.fnmatchcase(call.api, self.api))
                and (not self.method or self.method.upper() == call.method)
                and (not self.path or re.search(self.path, call.path) is not None))

    def error(self) -> GceError:
        return GceError(self.status, self.reason, self.message)

    def json(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "message": self.message,
                "mode": self.mode, "api": self.api, "method": self.method, "path": self.path,
                "count": self.count, "probability": self.probability, "fired": self.fired}


@dataclass
class Bucket:
    rate: float
    burst: float
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self) -> bool:
        moment = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (moment - self.stamp) * self.rate)
        self.stamp = moment
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class Faults:
    calls: list[Call] = field(default_factory=list)
    rules: list[Fault] = field(default_factory=list)
    buckets: dict[str, Bucket] = field(default_factory=dict)
    throttle_status: int = 429
    rng: random.Random = field(default_factory=random.Random)

    def record(self, call: Call) -> None:
        if len(self.calls) >= MAX_LOG:
            del self.calls[: MAX_LOG // 10]
        self.calls.append(call)

    def counts(self) -> Counter[str]:
        return Counter(c.api for c in self.calls)

    def throttle(self, call: Call) -> None:
        bucket = self.buckets.get(call.family)
        if bucket is not None and not bucket.take():
            raise rate_limited(self.throttle_status)

    def pick(self, call: Call) -> Fault | None:
        """The fault that fires on `call`, counted down; None when none does."""
        for fault in self.rules:
            if fault.count is not None and fault.fired >= fault.count:
                continue
            if fault.matches(call) and self.rng.random() < fault.probability:
                fault.fired += 1
                return fault
        return None

    def set_rate_limit(self, data: dict[str, Any]) -> None:
        """`{"read": {"rate": 5, "burst": 10}, "write": ..., "status": 403}`; `{}` lifts it."""
        buckets = {}
        for name, spec in data.items():
            if name == "status":
                continue
            if name not in FAMILIES or not isinstance(spec, dict):
                raise GceError(400, "invalid", f"rate limit families: {FAMILIES}")
            rate = float(spec.get("rate", 1))
            buckets[name] = Bucket(rate, float(spec.get("burst", max(rate, 1))))
        status = int(data.get("status", 429))
        if status not in (403, 429):
            raise GceError(400, "invalid", "rate limit status: 403 or 429")
        self.buckets, self.throttle_status = buckets, status

    def reset(self) -> None:
        self.calls.clear()
        self.rules.clear()
        self.buckets.clear()
        self.throttle_status = 429
