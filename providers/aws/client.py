"""The only place lbctl talks to AWS: boto3 clients for ELBv2, EC2 and the Resource Groups
Tagging API behind rate limits, retries and one error mapping.

Why each piece:
- A token bucket per API family (describe / modify / register / tagging / ec2Modify, from
  `aws.rateLimits`; EC2's writes apart from ELB's, as AWS throttles them apart) keeps a
  node-change storm across hundreds of Services under AWS's account-wide limits instead of turning
  it into throttling (the ALBC's defaults are ~50 rps Describe*, ~4 rps Register*). The tagging
  API (GetResources: what the cluster owns, in O(owned objects) instead of listing the region) has
  its own limits, so its own bucket.
- tenacity retries throttling, 5xx and connection errors with jittered exponential waits,
  bounded in attempts and total time; botocore's own retries are off so each attempt passes the
  bucket and is counted once. Anything else is raised at once as `ApiError` (code kept, so
  callers can treat `LoadBalancerNotFound` or `InvalidPermission.Duplicate` as the answer they
  are), and `map_error` turns what escapes into the provider error taxonomy.
- Every request is counted by operation (`calls`, via botocore's `before-call` event), which is
  how tests prove a no-op ensure makes only Describe* calls and the bench reports API cost.
boto3 is imported here, lazily, in the constructor: importing the provider costs nothing.
Credentials come from the SDK's default chain (environment, web identity, instance role),
never from lbctl's config.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from lbctl.ratelimit import TokenBucket
from providers.errors import PermanentError, ProviderError, TransientError

from .annotation_keys import EIP_ALLOCATIONS, SECURITY_GROUPS, SUBNETS
from .annotation_reader import annotation_field
from .settings import AwsSettings

THROTTLING = frozenset({
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
    "TooManyRequestsException", "RequestThrottled", "RequestThrottledException", "SlowDown",
    "ThrottledException",  # the Resource Groups Tagging API's spelling
})
NOT_FOUND = frozenset({
    "LoadBalancerNotFound", "TargetGroupNotFound", "ListenerNotFound",
    "InvalidPermission.NotFound", "InvalidGroup.NotFound", "InvalidInstanceID.NotFound",
    "InvalidSubnetID.NotFound", "InvalidVpcID.NotFound",
})
IN_USE = frozenset({"DependencyViolation", "ResourceInUse"})
"""Still referenced (a security group AWS keeps on a deleted NLB's interfaces for minutes, a
target group a listener still uses): the answer changes by itself, so it is transient. So is
an expired tagging API page token (the scan starts again)."""
TRANSIENT = IN_USE | {"PaginationTokenExpiredException"}
QUOTA = frozenset({
    "TooManyLoadBalancers", "TooManyTargetGroups", "TooManyListeners", "TooManyTargets",
    "TooManyTags", "TooManyRegistrationsForTargetId", "RulesPerSecurityGroupLimitExceeded",
    "SecurityGroupLimitExceeded", "AddressLimitExceeded",
    "TooManyUniqueTargetGroupsPerLoadBalancer",
})
AUTH = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure",
    "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "UnrecognizedClientException",
})
_FIELDS = {
    "SubnetNotFound": annotation_field(SUBNETS),
    "InvalidSubnet": annotation_field(SUBNETS),
    "InvalidSubnetID.NotFound": annotation_field(SUBNETS),
    "AllocationIdNotFound": annotation_field(EIP_ALLOCATIONS),
    "InvalidAllocationID.NotFound": annotation_field(EIP_ALLOCATIONS),
    "InvalidConfigurationRequest": "metadata.annotations",
    "InvalidSecurityGroup": annotation_field(SECURITY_GROUPS),
}
FAMILIES = ("describe", "modify", "register", "tagging", "ec2Modify")
EC2_WRITES = frozenset({"AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress",
                        "UpdateSecurityGroupRuleDescriptionsIngress", "CreateSecurityGroup",
                        "DeleteSecurityGroup", "CreateTags", "DeleteTags"})
"""EC2's writes lbctl makes: they draw from EC2's own bucket, not ELB's (a unit test checks
every call the provider makes lands in its service's bucket)."""
TAGGING_OPERATIONS = frozenset({"GetResources", "GetTagKeys", "GetTagValues", "TagResources",
                                "UntagResources"})
READ_PREFIXES = ("Describe", "Get", "List")


class ApiError(Exception):
    """An AWS error answer that retrying would not fix (or retries ran out on)."""

    def __init__(self, operation: str, code: str, message: str, status: int = 0) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.message = message
        self.status = status

    @property
    def not_found(self) -> bool:
        return self.code in NOT_FOUND


def family(operation: str) -> str:
    """Which rate limit an operation draws from."""
    if operation in TAGGING_OPERATIONS:
        return "tagging"
    if operation.startswith(READ_PREFIXES):
        return "describe"
    if operation.startswith(("Register", "Deregister")):
        return "register"
    if operation in EC2_WRITES:
        return "ec2Modify"
    return "modify"


def is_read(operation: str) -> bool:
    """Describe*/Get*/List*: changes nothing (what a steady-state resync may call)."""
    return operation.startswith(READ_PREFIXES)


def map_error(exc: BaseException, field: str = "spec") -> ProviderError:
    """An AWS/botocore failure as the provider taxonomy: throttling, 5xx, network ->
    TransientError; bad input or quota -> PermanentError (with the field to fix when known);
    credentials -> PermanentError on the `aws` config; not-found -> TransientError (something
    changed under us: look again)."""
    if isinstance(exc, ProviderError):
        return exc
    code, message, status = _error_parts(exc)
    if code is None:
        name = type(exc).__name__
        if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
            return PermanentError("aws.credentials", f"no usable AWS credentials: {exc}")
        if name == "NoRegionError":
            return PermanentError("aws.region", str(exc))
        return TransientError(f"AWS unreachable: {exc}")
    text = f"{code}: {message}"
    if code in THROTTLING or status >= 500 or status == 429:
        return TransientError(f"AWS throttled or failed: {text}")
    if code in TRANSIENT:
        return TransientError(f"AWS still uses the object, or a listing expired: {text}")
    if code in NOT_FOUND and code not in _FIELDS:
        return TransientError(f"AWS object vanished: {text}")
    if code in QUOTA:
        return PermanentError(field, f"AWS quota reached: {text}")
    if code in AUTH:
        return PermanentError("aws.credentials", f"AWS refused the credentials: {text}")
    return PermanentError(_FIELDS.get(code, field), f"AWS refused the request: {text}")


def _error_parts(exc: BaseException) -> tuple[str | None, str, int]:
    if isinstance(exc, ApiError):
        return exc.code, exc.message, exc.status
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response.get("Error") or {}
        status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
        return str(error.get("Code", "Unknown")), str(error.get("Message", "")), status
    return None, str(exc), 0


def _retryable(exc: BaseException) -> bool:
    code, _, status = _error_parts(exc)
    if code is None:  # botocore transport errors: connection, timeouts
        return type(exc).__name__ in (
            "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError",
            "ConnectTimeoutError", "ConnectionError", "ProxyConnectionError")
    return code in THROTTLING or status >= 500 or status == 429


log = logging.getLogger(__name__)

CRASH_ENV = "LBCTL_TEST_CRASH_AFTER_AWS_CALL"
"""Set to an operation name (e.g. CreateTargetGroup) to SIGKILL the process right after that
call succeeds: the crash-safety tests' kill point. Never set in production."""


class AwsClient:
    """elbv2, ec2 and the tagging API with limits, retries and call counting; see the module
    docstring."""

    def __init__(self, settings: AwsSettings, *, max_attempts: int = 5,
                 max_seconds: float = 30.0, max_wait: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        import boto3  # noqa: PLC0415 - the SDK is an optional extra, loaded with the provider
        from botocore.config import Config  # noqa: PLC0415

        config = Config(region_name=settings.region, connect_timeout=5, read_timeout=30,
                        retries={"total_max_attempts": 1, "mode": "standard"},
                        max_pool_connections=32)
        session = boto3.session.Session(region_name=settings.region)
        self.elbv2_client: Any = session.client(
            "elbv2", endpoint_url=settings.endpoint_url, config=config)
        self.ec2_client: Any = session.client(
            "ec2", endpoint_url=settings.endpoint_url, config=config)
        self.tagging_client: Any = session.client(
            "resourcegroupstaggingapi", endpoint_url=settings.endpoint_url, config=config)
        self.calls: Counter[str] = Counter()
        """Requests sent, by operation name (each retry counts)."""
        self._calls_lock = threading.Lock()
        self._buckets = {f: TokenBucket(float(settings.rate_limits.get(f, 10.0)), sleep=sleep)
                         for f in FAMILIES}
        self._max_attempts, self._max_seconds, self._max_wait = max_attempts, max_seconds, max_wait
        self._sleep = sleep
        for client in self._clients():
            client.meta.events.register("before-call.*.*", self._count)
        crash = os.environ.get(CRASH_ENV, "")
        if crash:
            self._crash_after = crash
            for client in self._clients():
                client.meta.events.register("after-call.*.*", self._maybe_crash)

    def _clients(self) -> tuple[Any, ...]:
        return (self.elbv2_client, self.ec2_client, self.tagging_client)

    def _maybe_crash(self, model: Any = None, http_response: Any = None, **_: Any) -> None:
        """Test hook: die like SIGKILL right after the named call succeeded (crash-safety
        tests kill the controller at every distinct call in turn)."""
        if model is None or model.name != self._crash_after:
            return
        if http_response is not None and getattr(http_response, "status_code", 200) >= 300:
            return
        log.critical("%s=%s: killing this process after %s", CRASH_ENV, self._crash_after,
                     model.name)
        os.kill(os.getpid(), signal.SIGKILL)

    def _count(self, model: Any = None, **_: Any) -> None:
        if model is not None:
            with self._calls_lock:
                self.calls[model.name] += 1

    def reset_calls(self) -> Counter[str]:
        """The counts so far, and start again from zero."""
        with self._calls_lock:
            out = Counter(self.calls)
            self.calls.clear()
        return out

    def elbv2(self, operation: str, **params: Any) -> dict[str, Any]:
        return self._call(self.elbv2_client, operation, params)

    def ec2(self, operation: str, **params: Any) -> dict[str, Any]:
        return self._call(self.ec2_client, operation, params)

    def tagging(self, operation: str, **params: Any) -> dict[str, Any]:
        return self._call(self.tagging_client, operation, params)

    def pages(self, service: str, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every page of a Describe*/Get*: ELBv2 pages by Marker/NextMarker, EC2 by NextToken,
        the tagging API by PaginationToken (an empty one ends it)."""
        call = {"elbv2": self.elbv2, "ec2": self.ec2, "tagging": self.tagging}[service]
        token_in, token_out = {"elbv2": ("Marker", "NextMarker"),
                               "ec2": ("NextToken", "NextToken"),
                               "tagging": ("PaginationToken", "PaginationToken")}[service]
        while True:
            page = call(operation, **params)
            yield page
            token = page.get(token_out)
            if not token:
                return
            params = {**params, token_in: token}

    def _call(self, client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        import tenacity  # noqa: PLC0415
        from botocore import xform_name  # noqa: PLC0415
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        method = getattr(client, xform_name(operation))
        bucket = self._buckets[family(operation)]
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_retryable),
            wait=tenacity.wait_random_exponential(multiplier=0.2, max=self._max_wait),
            stop=(tenacity.stop_after_attempt(self._max_attempts)
                  | tenacity.stop_after_delay(self._max_seconds)),
            sleep=self._sleep, reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    bucket.acquire()
                    result: dict[str, Any] = method(**params)
                    return result
        except ClientError as exc:
            code, message, status = _error_parts(exc)
            if _retryable(exc):
                raise map_error(exc) from exc
            raise ApiError(operation, code or "Unknown", message, status) from exc
        except BotoCoreError as exc:
            raise map_error(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        for client in self._clients():
            client.close()
