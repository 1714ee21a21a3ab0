"""GCE's errors, in the two shapes google-cloud-compute reads them.

A refused call answers `{"error": {"code", "message", "errors": [{"message", "domain",
"reason"}]}}` with the HTTP status; the SDK raises the matching `GoogleAPICallError` subclass
(NotFound, Conflict, BadRequest, PreconditionFailed, Forbidden, TooManyRequests, ...) whose
`errors[0]["reason"]` is the reason (`e.reason` stays None over REST). An accepted write that
fails later ends its operation DONE with `error.errors[{code, message}]` AND
`httpErrorStatusCode`/`httpErrorMessage`: without the last two the SDK's `.result()` returns
quietly. One exception type, `GceError`, renders both, so every rule can fail either way.
"""

from __future__ import annotations

import http
import re
from typing import Any

OPERATION_CODES = {
    "notFound": "RESOURCE_NOT_FOUND",
    "alreadyExists": "RESOURCE_ALREADY_EXISTS",
    "resourceInUseByAnotherResource": "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE",
    "resourceNotReady": "RESOURCE_NOT_READY",
    "invalid": "INVALID_FIELD_VALUE",
    "required": "REQUIRED_FIELD_MISSING",
    "conditionNotMet": "CONDITION_NOT_MET",
    "quotaExceeded": "QUOTA_EXCEEDED",
    "backendError": "INTERNAL_ERROR",
}
"""A reason's `error.errors[].code` in a failed operation (GCE's upper-case codes)."""


class GceError(Exception):
    """A refusal: `status` and `reason` as GCE answers them; `details` go into a failed
    operation's `errorDetails` (quota information)."""

    def __init__(self, status: int, reason: str, message: str,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details or []

    def body(self) -> dict[str, Any]:
        """The JSON body of the HTTP error answer."""
        return {"error": {"code": self.status, "message": self.message, "errors": [
            {"message": self.message, "domain": "global", "reason": self.reason}]}}

    @property
    def code(self) -> str:
        """The code a failed operation carries in `error.errors[0].code`."""
        known = OPERATION_CODES.get(self.reason)
        return known or re.sub(r"(?<!^)(?=[A-Z])", "_", self.reason).upper()

    def operation_fields(self) -> dict[str, Any]:
        """What a failed operation adds: `error`, `httpErrorStatusCode`, `httpErrorMessage`."""
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            entry["errorDetails"] = self.details
        return {"error": {"errors": [entry]}, "httpErrorStatusCode": self.status,
                "httpErrorMessage": http.HTTPStatus(self.status).phrase.upper()}


def not_found(path: str) -> GceError:
    return GceError(404, "notFound", f"The resource '{path}' was not found")


def already_exists(path: str) -> GceError:
    return GceError(409, "alreadyExists", f"The resource '{path}' already exists")


def not_ready(path: str) -> GceError:
    return GceError(400, "resourceNotReady", f"The resource '{path}' is not ready")


def in_use(kind: str, path: str, user: str) -> GceError:
    return GceError(400, "resourceInUseByAnotherResource",
                    f"The {kind} resource '{path}' is already being used by '{user}'")


def invalid(field: str, value: Any, why: str) -> GceError:
    shown = value if isinstance(value, str) else repr(value)
    return GceError(400, "invalid", f"Invalid value for field '{field}': '{shown}'. {why}")


def required(field: str) -> GceError:
    return GceError(400, "required", f"Required field '{field}' not specified")


def bad_request(message: str, reason: str = "badRequest") -> GceError:
    return GceError(400, reason, message)


def condition_not_met(message: str = "Invalid fingerprint.") -> GceError:
    return GceError(412, "conditionNotMet", message)


def not_implemented(what: str) -> GceError:
    return GceError(501, "notImplemented",
                    f"{what} is not emulated by lbctl's GCE emulator")


def quota_exceeded(metric: str, limit: int, region: str | None) -> GceError:
    where = f" in region {region}" if region else ""
    details = [{"quotaInfo": {
        "metricName": f"compute.googleapis.com/{metric.lower()}",
        "limitName": f"{metric.replace('_', '-')}-per-project"
                     + ("-region" if region else ""),
        "dimensions": {"region": region} if region else {},
        "limit": float(limit)}}]
    return GceError(403, "quotaExceeded",
                    f"Quota '{metric}' exceeded.  Limit: {float(limit)}{where}.", details)


def rate_limited(status: int) -> GceError:
    return GceError(status, "rateLimitExceeded", "Rate Limit Exceeded")
