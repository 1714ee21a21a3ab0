"""Fault injection and the audit log: the hooks tests use to make the sandbox misbehave.

A controller is only as good as its handling of a flaky API server, so tests must be able to
force 410 Gone on watches, drop watch connections and answer a share of requests with 409, 429 or
500, and then read back exactly which requests were made. Everything is off by default and
configured at run time through `/sandbox/faults` (admin only).
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .. import errors

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
_CODES = {409, 429, 500}


@dataclass
class FaultConfig:
    """What to break. `error_rates` maps an HTTP code (409, 429, 500) to a share in [0, 1]."""

    watch_gone: int = 0
    error_rates: dict[int, float] = field(default_factory=dict)
    verbs: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    seed: int | None = None

    @classmethod
    def parse(cls, body: Any) -> FaultConfig:
        """Read the JSON body of PUT /sandbox/faults, naming the bad field on error."""
        if not isinstance(body, dict):
            raise errors.bad_request("faults: body must be a JSON object")
        unknown = set(body) - {"watchGone", "errorRates", "verbs", "resources", "seed"}
        if unknown:
            raise errors.bad_request(f"faults: unknown field {sorted(unknown)[0]!r}")
        gone = body.get("watchGone", 0)
        if not isinstance(gone, int) or gone < 0:
            raise errors.bad_request("faults.watchGone: must be a non-negative integer")
        rates: dict[int, float] = {}
        for code, share in (body.get("errorRates") or {}).items():
            if not str(code).isdigit() or int(code) not in _CODES:
                raise errors.bad_request(f"faults.errorRates: code {code!r} is not one of "
                                         "409, 429, 500")
            if not isinstance(share, int | float) or not 0 <= share <= 1:
                raise errors.bad_request(f"faults.errorRates.{code}: must be between 0 and 1")
            rates[int(code)] = float(share)
        for name in ("verbs", "resources"):
            value = body.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise errors.bad_request(f"faults.{name}: must be a list of strings")
        seed = body.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise errors.bad_request("faults.seed: must be an integer")
        return cls(gone, rates, frozenset(body.get("verbs", [])),
                   frozenset(body.get("resources", [])), seed)

    def to_json(self) -> dict[str, Any]:
        return {"watchGone": self.watch_gone,
                "errorRates": {str(k): v for k, v in self.error_rates.items()},
                "verbs": sorted(self.verbs), "resources": sorted(self.resources),
                "seed": self.seed}


class Faults:
    """The live fault configuration plus the audit log of every request."""

    def __init__(self, audit_size: int = 200_000) -> None:
        self.config = FaultConfig()
        self._rng = random.Random()  # noqa: S311  (test chaos, not cryptography)
        self.audit: deque[dict[str, Any]] = deque(maxlen=audit_size)

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)  # noqa: S311

    def injected_error(self, verb: str, resource: str) -> errors.ApiError | None:
        """An error to answer instead of serving the request, or None."""
        cfg = self.config
        if not cfg.error_rates:
            return None
        if cfg.verbs and verb not in cfg.verbs:
            return None
        if cfg.resources and resource not in cfg.resources:
            return None
        roll = self._rng.random()
        for code, share in sorted(cfg.error_rates.items()):
            if roll < share:
                return _fault_error(code, resource)
            roll -= share
        return None

    def take_watch_gone(self) -> bool:
        if self.config.watch_gone <= 0:
            return False
        self.config.watch_gone -= 1
        return True

    def record(self, identity: str, verb: str, resource: str, subresource: str,
               namespace: str, name: str, code: int) -> None:
        self.audit.append({"time": time.time(), "user": identity, "verb": verb,
                           "resource": resource, "subresource": subresource,
                           "namespace": namespace, "name": name, "code": code})


def _fault_error(code: int, resource: str) -> errors.ApiError:
    if code == 409:
        return errors.conflict(resource, "", "injected", errors.STALE_OBJECT)
    if code == 429:
        return errors.too_many_requests(1)
    return errors.internal("injected fault")
