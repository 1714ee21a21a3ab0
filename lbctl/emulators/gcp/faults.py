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

import time
from dataclasses import dataclass, field
from typing import Any

from ..faults_base import Call as BaseCall
from ..faults_base import CallLog, FaultRule, buckets_from
from .errors import GceError, rate_limited


@dataclass
class Call(BaseCall):
    at: float = field(default_factory=time.time)
    """When the call arrived (Unix time: comparable across processes)."""


@dataclass(kw_only=True)
class Fault(FaultRule):
    status: int = 503
    reason: str = "backendError"
    message: str = "Internal error. Please try again or contact Google Support."

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        return cls.parse(data, {"reason"}, {}, lambda message: GceError(400, "invalid", message))

    def error(self) -> GceError:
        return GceError(self.status, self.reason, self.message)

    def json(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "message": self.message,
                "mode": self.mode, "api": self.api, "method": self.method, "path": self.path,
                "count": self.count, "probability": self.probability, "fired": self.fired}


@dataclass
class Faults(CallLog[Call, Fault]):
    throttle_status: int = 429

    def throttle(self, call: Call) -> None:
        bucket = self.buckets.get(call.family)
        if bucket is not None and bucket.take() > 0:
            raise rate_limited(self.throttle_status)

    def set_rate_limit(self, data: dict[str, Any]) -> None:
        """`{"read": {"rate": 5, "burst": 10}, "write": ..., "status": 403}`; `{}` lifts it."""
        buckets = buckets_from(data, "status", lambda message: GceError(400, "invalid", message))
        status = int(data.get("status", 429))
        if status not in (403, 429):
            raise GceError(400, "invalid", "rate limit status: 403 or 429")
        self.buckets, self.throttle_status = buckets, status

    def reset(self) -> None:
        super().reset()
        self.throttle_status = 429
