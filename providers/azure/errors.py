"""ARM's errors in one taxonomy: `ArmError` (status, code, Retry-After) from whatever the SDK
raised, and `map_error` from that to the provider's errors (what the controller does next).

Why by code: a long-running operation that failed comes back with HTTP status 200 and the
reason only in `error.code`; a 409 is a real conflict (`Conflict`, `InUseSubnetCannotBeDeleted`)
or ARM's "one operation at a time" (`AnotherOperationInProgress`, worth waiting for); a 412
is a concurrent writer (the coalescer re-reads). A failed GET never reads as "absent": only a
404 does.
"""

from __future__ import annotations

from typing import Any

from providers.errors import PermanentError, ProviderError, TransientError

RETRY_CODES = frozenset({
    "AnotherOperationInProgress", "RetryableError", "TooManyRequests", "InternalServerError",
    "ServiceUnavailable", "GatewayTimeout", "OperationNotAllowed.Throttled",
    "SubscriptionRequestsThrottled", "ResourceGroupRequestsThrottled",
    "CanceledAndSupersededDueToAnotherOperation", "ReferencedResourceNotProvisioned"})
"""Worth another try: throttling, ARM's hiccups, a resource busy with another operation."""
IN_USE = frozenset({"PublicIPAddressInUse", "InUseSubnetCannotBeDeleted",
                    "LoadBalancerInUseByVirtualMachineScaleSet", "InUseNetworkSecurityGroup"})
QUOTA = frozenset({"QuotaExceeded", "PublicIPCountLimitReached",
                   "LoadBalancerRulesLimitReached", "FrontendIPConfigurationsLimitReached",
                   "OperationNotAllowed"})


class ArmError(Exception):
    def __init__(self, call: str, status: int, code: str, message: str,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{call}: {status} {code}: {message}")
        self.call, self.status, self.code, self.message = call, status, code, message
        self.retry_after = retry_after

    @property
    def not_found(self) -> bool:
        return self.status == 404 or self.code in ("ResourceNotFound", "NotFound")

    @property
    def precondition_failed(self) -> bool:
        return self.status == 412 or self.code == "PreconditionFailed"

    @property
    def in_use(self) -> bool:
        return self.code in IN_USE

    @property
    def retryable(self) -> bool:
        if self.precondition_failed or self.not_found:
            return False
        return self.status in (408, 429) or self.status >= 500 or self.code in RETRY_CODES \
            or self.status == 0


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    for name in ("Retry-After", "retry-after", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        return seconds / 1000 if name.endswith("-ms") else seconds
    return None


def from_sdk(call: str, exc: BaseException) -> ArmError | None:
    """An ArmError for an azure-core error (None: not an ARM error, let it through)."""
    from azure.core.exceptions import (  # noqa: PLC0415 - the SDK, with the client
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return ArmError(call, 0, "ConnectionError", str(exc).splitlines()[0])
    if not isinstance(exc, HttpResponseError):
        return None
    error = getattr(exc, "error", None)
    code = str(getattr(error, "code", None) or getattr(exc, "reason", None) or "")
    message = str(getattr(error, "message", None) or exc.message or exc).splitlines()[0]
    response = getattr(exc, "response", None)
    status = int(getattr(exc, "status_code", None) or 0)
    return ArmError(call, status, code or str(status), message, _retry_after(response))


def map_error(exc: BaseException, field: str = "spec") -> ProviderError:
    """What the controller should do about an error that escaped the provider's steps."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ArmError):
        if exc.retryable or exc.precondition_failed:
            return TransientError(str(exc), retry_after=exc.retry_after)
        if exc.in_use:
            return TransientError(f"ARM still uses the resource: {exc}")
        if exc.not_found:
            return TransientError(f"an ARM resource vanished: {exc}")
        if exc.status in (401, 403) or exc.code in ("AuthorizationFailed",
                                                     "AuthenticationFailed"):
            return PermanentError("azure", f"ARM refused the credentials or permissions: "
                                           f"{exc}")
        if exc.code in QUOTA:
            return PermanentError(field, f"an Azure limit or quota was reached: {exc}")
        return PermanentError(field, f"ARM refused the request: {exc}")
    name = type(exc).__name__
    if name in ("ClientAuthenticationError", "CredentialUnavailableError"):
        return PermanentError("azure", f"no usable Azure credentials: {exc}")
    return TransientError(f"ARM unreachable: {name}: {exc}")
