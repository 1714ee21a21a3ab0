"""A token bucket: the client-side rate limit every API client of lbctl shares.

Kubernetes (client-go's flowcontrol QPS/burst), AWS and GCE clients all take a token before
each request. Neutral on purpose (like `parsing`): the providers may import it, and it imports
nothing of lbctl.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up. `acquire` reserves a token (the balance
    may go negative) and sleeps until it is due, so waiting callers are served in order without
    polling. rate <= 0 disables limiting."""

    def __init__(self, rate: float, burst: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.burst = max(1.0, float(burst if burst is not None else rate))
        self._tokens = self.burst
        self._clock, self._sleep = clock, sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take a token; answer the seconds to wait before using it."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            return max(0.0, -self._tokens / self.rate)

    def acquire(self) -> float:
        """Take a token, sleeping until it is due; answer the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait
