"""What tests do to the emulator besides calling it: count calls, inject faults, throttle.

- The call log records every ARM call (method, path, an API id such as `loadBalancers.put`,
  `publicIPAddresses.delete` or `operations.get` for an Azure-AsyncOperation poll, its family
  `read`/`write`/`operation`, the status answered): tests hold a provider to a call budget.
- A fault matches calls by API id (shell-style pattern, `loadBalancers.*`), HTTP method or path
  regex, fires with a probability (seeded) for a number of calls (or for ever), and either
  answers an HTTP error without doing anything (`http`, with `Retry-After` when given), accepts
  the write and fails its operation (`operation`: `{"status": "Failed", "error": {...}}` behind
  an HTTP 200, as quota and capacity failures come), or does the work and loses the reply
  (`lost`: the connection is dropped once the write was accepted).
- The rate limit is a token bucket per family; a call finding it empty is refused with 429
  SubscriptionRequestsThrottled and `Retry-After`, as ARM's subscription limits are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..faults_base import Call, CallLog, FaultRule, buckets_from
from .errors import ArmError, throttled

__all__ = ["Call", "Fault", "Faults"]


@dataclass(kw_only=True)
class Fault(FaultRule):
    status: int = 500
    code: str = "InternalServerError"
    message: str = "An error occurred."
    retry_after: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        return cls.parse(data, {"code", "retry_after"}, {"retryAfter": "retry_after"},
                         lambda message: ArmError(400, "InvalidFault", message))

    def error(self) -> ArmError:
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return ArmError(self.status, self.code, self.message, headers)

    def json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Faults(CallLog[Call, Fault]):
    subscription: str
    retry_after: int | None = None
    """Retry-After of a throttled call (None: the seconds until the bucket has a token)."""

    def throttle(self, call: Call) -> None:
        bucket = self.buckets.get(call.family)
        if bucket is None:
            return
        wait = bucket.take()
        if wait > 0:
            seconds = self.retry_after if self.retry_after is not None else max(1, round(wait))
            raise throttled(call.family, self.subscription, seconds)

    def set_rate_limit(self, data: dict[str, Any]) -> None:
        """`{"read": {"rate": 5, "burst": 10}, "write": ..., "retryAfter": 2}`; `{}` lifts it."""
        buckets = buckets_from(data, "retryAfter",
                               lambda message: ArmError(400, "InvalidRateLimit", message))
        retry = data.get("retryAfter")
        self.buckets = buckets
        self.retry_after = None if retry is None else int(retry)

    def reset(self) -> None:
        super().reset()
        self.retry_after = None
