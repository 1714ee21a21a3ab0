"""The provider error taxonomy: what the controller should do next, not what went wrong.

Every provider maps its SDK's errors into these four, so the controller's retry policy is the
same for every cloud:

    ProviderError
     |- RetryAfter       still converging (e.g. provisioning): poll again after `seconds`
     |- TransientError   throttled, 5xx, network: exponential backoff with jitter
     |- PermanentError   bad input (names the offending `field`): no hot retry until it changes
     |- NotOwnedError    the object exists but is not ours: never touched
"""

from __future__ import annotations

from typing import Any, TypeVar


class ProviderError(Exception):
    """Base of every error a provider raises on purpose."""

    reason = "ProviderError"
    event: str | None = None
    """The reason of the Warning event the controller records (None: its default,
    `SyncLoadBalancerFailed`); e.g. `AllocationFailed` for an address that cannot be given,
    which is what MetalLB's users look for."""


class RetryAfter(ProviderError):
    """Not failed, not done: ask again after `seconds` (fixed-interval polling). `status`,
    when given, is what already exists (e.g. an NLB's DNS name while AWS still provisions
    it): the controller writes its ingress and keeps the Provisioning condition."""

    reason = "RetryAfter"

    def __init__(self, seconds: float, message: str, status: Any = None) -> None:
        super().__init__(message)
        self.seconds = seconds
        self.status = status


class TransientError(ProviderError):
    """Worth retrying with backoff; `retry_after` is the server's hint when it gave one."""

    reason = "TransientError"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ProviderError):
    """The request can never succeed as it is; `field` names what to fix, e.g.
    `metadata.annotations[service.beta.kubernetes.io/aws-load-balancer-type]`."""

    reason = "PermanentError"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.detail = message


class NotOwnedError(ProviderError):
    """An object with the name we would use exists but carries no ownership of ours."""

    reason = "NotOwned"

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} exists but is not owned by this cluster's lbctl")
        self.kind = kind
        self.name = name


E = TypeVar("E", bound="ProviderError")


def allocation_failed(exc: E) -> E:
    """`exc`, reported as `AllocationFailed` (an address the pools cannot give)."""
    exc.event = "AllocationFailed"
    return exc
