"""The only place lbctl talks to GCE: google-cloud-compute's REST clients behind rate limits,
bounded retries, operation waits and one error mapping.

Why each piece:
- The SDK's own retries are off (`retry=None`, an explicit timeout on every call): its reads
  would retry a 503 for ten minutes, its writes never, and a 429 never. tenacity decides
  instead, with jittered exponential waits bounded in attempts and time, so each attempt passes
  a token bucket (`gcp.rateLimits`: reads, writes and operation polls apart: waiting for an
  operation must not starve the reads that decide the next write) and is counted once.
- Writes go through the `*_unary` calls and are waited for here, with operations clients built
  on the same endpoint and credentials: the SDK's `.result()` would poll the public endpoint.
  A DONE operation with `error` is a failure even though the SDK would return quietly.
- Two error shapes, one taxonomy: an HTTP error carries `errors[0]["reason"]`
  (`rateLimitExceeded`, `resourceInUseByAnotherResource`, `alreadyExists`...), a failed
  operation `error.errors[0].code` (`QUOTA_EXCEEDED`, `RESOURCE_NOT_FOUND`...); both become a
  `GceError` with a normalised `reason`, and `map_error` turns what escapes into the provider's
  errors. A failed GET never reads as "absent": only a 404 does.
- Every request is counted as `<collection>.<method>` (each page and each operation poll too),
  which is how tests prove a steady-state ensure writes nothing and the bench reports cost.
The SDK is imported here, in the constructor (seconds, ~150 MB): importing the provider costs
nothing. Credentials: the SDK's default chain (workload identity, GOOGLE_APPLICATION_CREDENTIALS,
the metadata server); with `gcp.endpoint` (the emulator), anonymous ones.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from lbctl.ratelimit import TokenBucket
from providers.errors import PermanentError, ProviderError, TransientError

from .settings import GcpSettings

log = logging.getLogger(__name__)

CLIENTS = {
    "addresses": "AddressesClient", "forwardingRules": "ForwardingRulesClient",
    "regionBackendServices": "RegionBackendServicesClient",
    "regionHealthChecks": "RegionHealthChecksClient", "healthChecks": "HealthChecksClient",
    "firewalls": "FirewallsClient", "instanceGroups": "InstanceGroupsClient",
    "instances": "InstancesClient", "regionOperations": "RegionOperationsClient",
    "globalOperations": "GlobalOperationsClient", "zoneOperations": "ZoneOperationsClient",
}
READS = frozenset({"get", "list", "aggregated_list", "get_health", "list_instances"})
RETRY_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "backendError",
                           "resourceNotReady", "internalError", "RATE_LIMIT_EXCEEDED",
                           "RESOURCE_NOT_READY"})
"""Worth another try: throttling, GCE's own hiccups, and an object still busy with a write."""
IN_USE = frozenset({"resourceInUseByAnotherResource", "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"})
QUOTA = frozenset({"quotaExceeded", "QUOTA_EXCEEDED"})
NOT_FOUND = frozenset({"notFound", "RESOURCE_NOT_FOUND"})
EXISTS = frozenset({"alreadyExists", "RESOURCE_ALREADY_EXISTS"})
AUTH = frozenset({"forbidden", "insufficientPermissions", "authError", "PERMISSION_DENIED"})
CRASH_ENV = "LBCTL_TEST_CRASH_AFTER_GCE_CALL"
"""Set to `<collection>.<method>` (e.g. forwardingRules.insert) to SIGKILL the process right
after that write's operation finished: the crash-safety tests' kill point. Never in production."""


class GceError(Exception):
    """A GCE answer that retrying would not fix (or retries ran out on)."""

    def __init__(self, call: str, status: int, reason: str, message: str) -> None:
        super().__init__(f"{call}: {status} {reason}: {message}")
        self.call, self.status, self.reason, self.message = call, status, reason, message

    @property
    def not_found(self) -> bool:
        return self.status == 404 or self.reason in NOT_FOUND

    @property
    def exists(self) -> bool:
        return self.status == 409 or self.reason in EXISTS

    @property
    def in_use(self) -> bool:
        return self.reason in IN_USE


def as_json(message: Any) -> dict[str, Any]:
    """A proto-plus message as the REST JSON it came from (camelCase, `IPAddress`)."""
    doc: dict[str, Any] = json.loads(type(message).to_json(message))
    return doc


def _http_error(call: str, exc: Any) -> GceError:
    errors = getattr(exc, "errors", None) or []
    first = errors[0] if errors else {}
    reason = first.get("reason", "") if isinstance(first, dict) else getattr(first, "code", "")
    return GceError(call, int(getattr(exc, "code", 0) or 0), str(reason or ""),
                    str(getattr(exc, "message", exc)))


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, GceError):
        return exc.status in (429, 500, 502, 503, 504) or exc.reason in RETRY_REASONS
    return type(exc).__name__ in ("ConnectionError", "Timeout", "ReadTimeout",
                                  "ConnectTimeout", "ChunkedEncodingError")


def map_error(exc: BaseException, field: str = "spec") -> ProviderError:
    """A GCE failure as the provider taxonomy: throttling, 5xx, busy or in-use objects and the
    network -> TransientError; quota and refusals -> PermanentError (field named when known);
    credentials -> PermanentError on the `gcp` config; not-found -> TransientError (look again)."""
    if isinstance(exc, ProviderError):
        return exc
    if not isinstance(exc, GceError):
        name = type(exc).__name__
        if name in ("DefaultCredentialsError", "RefreshError"):
            return PermanentError("gcp", f"no usable Google credentials: {exc}")
        return TransientError(f"GCE unreachable: {exc}")
    if _retryable(exc):
        return TransientError(f"GCE throttled, busy or failed: {exc}")
    if exc.in_use:
        return TransientError(f"GCE still uses the object: {exc}")
    if exc.not_found:
        return TransientError(f"GCE object vanished: {exc}")
    if exc.reason in QUOTA:
        return PermanentError(field, f"GCE quota reached: {exc}")
    if exc.status in (401, 403) and exc.reason not in QUOTA:
        return PermanentError("gcp", f"GCE refused the credentials or permissions: {exc}")
    return PermanentError(field, f"GCE refused the request: {exc}")


class GceClient:
    """See the module docstring. Thread-safe; clients are built on first use."""

    def __init__(self, settings: GcpSettings, *, max_attempts: int = 5,
                 max_seconds: float = 60.0, max_wait: float = 8.0, timeout: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        from google.api_core.client_options import ClientOptions  # noqa: PLC0415 - the SDK
        from google.cloud import compute_v1  # noqa: PLC0415 - loads with the provider only

        self.settings = settings
        self.compute: Any = compute_v1
        self._kwargs: dict[str, Any] = {"transport": "rest"}
        if settings.endpoint:
            auth: Any = importlib.import_module("google.auth.credentials")  # untyped
            self._kwargs["client_options"] = ClientOptions(api_endpoint=settings.endpoint)
            self._kwargs["credentials"] = auth.AnonymousCredentials()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        """Requests sent, by `<collection>.<method>` (each retry, page and poll counts)."""
        self._buckets = {f: TokenBucket(float(settings.rate_limits.get(f, 10.0)), sleep=sleep)
                         for f in ("read", "write", "operations")}
        self._max_attempts, self._max_seconds = max_attempts, max_seconds
        self._max_wait, self._timeout, self._sleep = max_wait, timeout, sleep
        self._crash_after = os.environ.get(CRASH_ENV, "")

    def _client(self, collection: str) -> Any:
        with self._lock:
            client = self._clients.get(collection)
            if client is None:
                client = getattr(self.compute, CLIENTS[collection])(**self._kwargs)
                self._clients[collection] = client
            return client

    def reset_calls(self) -> Counter[str]:
        """The counts so far, and start again from zero."""
        with self._lock:
            out = Counter(self.calls)
            self.calls.clear()
        return out

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] += 1

    def _attempts(self, family: str, name: str, do: Callable[[], Any]) -> Any:
        import tenacity  # noqa: PLC0415
        from google.api_core.exceptions import GoogleAPICallError  # noqa: PLC0415

        def once() -> Any:
            self._buckets[family].acquire()
            self._count(name)
            try:
                return do()
            except GoogleAPICallError as exc:
                raise _http_error(name, exc) from exc

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_retryable),
            wait=tenacity.wait_random_exponential(multiplier=0.2, max=self._max_wait),
            stop=(tenacity.stop_after_attempt(self._max_attempts)
                  | tenacity.stop_after_delay(self._max_seconds)),
            sleep=self._sleep, reraise=True)
        return retrying(once)

    # -- reads ------------------------------------------------------------------------------
    def get(self, collection: str, **request: Any) -> dict[str, Any] | None:
        """One object as JSON, or None on 404 (only a 404 means absent)."""
        client = self._client(collection)
        try:
            found = self._attempts("read", f"{collection}.get", lambda: client.get(
                request=request, retry=None, timeout=self._timeout))
        except GceError as exc:
            if exc.status == 404:
                return None
            raise
        return as_json(found)

    def read(self, collection: str, method: str, **request: Any) -> dict[str, Any]:
        """One read that is no plain get (`get_health`: a POST that changes nothing), as
        JSON; every failure, a 404 included, raises."""
        assert method in READS, f"{collection}.{method} is not a read"
        client = self._client(collection)
        found = self._attempts("read", f"{collection}.{method}", lambda: getattr(
            client, method)(request=request, retry=None, timeout=self._timeout))
        return as_json(found)

    def list(self, collection: str, method: str = "list", **request: Any,
             ) -> Iterator[dict[str, Any]]:
        """Every item of a listing as JSON, page by page (each page a counted call)."""
        client = self._client(collection)
        name = f"{collection}.{method}"
        token = ""
        while True:
            page_request = {**request, "page_token": token} if token else dict(request)

            def fetch(r: dict[str, Any] = page_request) -> Any:
                return getattr(client, method)(request=r, retry=None, timeout=self._timeout)

            response = next(iter(self._attempts("read", name, fetch).pages))  # already fetched
            for item in response.items:
                yield as_json(item)
            token = response.next_page_token
            if not token:
                return

    def aggregated(self, collection: str, **request: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        """(scope, item) for every item of an aggregated listing (scope: `zones/us-east1-b`,
        `regions/...`), page by page."""
        client = self._client(collection)
        name = f"{collection}.aggregated_list"
        token = ""
        while True:
            page_request = {**request, "page_token": token} if token else dict(request)

            def fetch(r: dict[str, Any] = page_request) -> Any:
                return client.aggregated_list(request=r, retry=None, timeout=self._timeout)

            response = next(iter(self._attempts("read", name, fetch).pages))
            for scope, scoped in as_json(response).get("items", {}).items():
                for item in scoped.get(collection, []):
                    yield scope, item
            token = response.next_page_token
            if not token:
                return

    # -- writes -----------------------------------------------------------------------------
    def write(self, collection: str, method: str, *, scope: tuple[str, str],
              **request: Any) -> None:
        """`<collection>.<method>_unary(request)`, then wait for its operation to be DONE.
        `scope`: ("region", R) | ("zone", Z) | ("global", "").

        Each attempt carries a `requestId` of its own, kept across the HTTP retries of that
        attempt: a write whose reply was lost is answered with the operation it started, not
        done twice (GCE de-duplicates by it; without it the retry met alreadyExists). An
        operation that ends with a retryable error (GCE's own 5xx, a rate limit) is a new
        attempt with a new requestId: the failed write was rolled back."""
        client = self._client(collection)
        name = f"{collection}.{method}"
        for attempt in range(1, self._max_attempts + 1):
            attempt_request = {**request, "request_id": str(uuid.uuid4())}

            def send(r: dict[str, Any] = attempt_request) -> Any:
                return getattr(client, f"{method}_unary")(request=r, retry=None,
                                                          timeout=self._timeout)

            operation = self._attempts("write", name, send)
            try:
                self._wait(name, operation, scope)
                break
            except GceError as exc:
                if not _retryable(exc) or attempt == self._max_attempts:
                    raise
                log.info("%s: the operation failed (%s), attempt %d: writing again", name,
                         exc, attempt)
                self._sleep(min(self._max_wait, 0.2 * 2 ** attempt))
        if self._crash_after == name:
            log.critical("%s=%s: killing this process after %s", CRASH_ENV, name, name)
            os.kill(os.getpid(), signal.SIGKILL)

    def _wait(self, name: str, operation: Any, scope: tuple[str, str]) -> None:
        kind, where = scope
        ops = self._client({"region": "regionOperations", "zone": "zoneOperations",
                            "global": "globalOperations"}[kind])
        request: dict[str, Any] = {"project": self.settings.project,
                                   "operation": operation.name}
        if kind != "global":
            request[kind] = where
        deadline = time.monotonic() + 600
        while str(operation.status) not in ("DONE", "Status.DONE") and \
                getattr(operation.status, "name", "") != "DONE":
            if time.monotonic() > deadline:
                raise GceError(name, 504, "operationTimeout",
                               f"operation {operation.name} not DONE after 600 s")
            def poll() -> Any:
                return ops.wait(request=request, retry=None, timeout=self._timeout + 120)

            operation = self._attempts("operations", f"{ops_name(kind)}.wait", poll)
        errors = list(operation.error.errors) if operation.error else []
        if errors:
            status = int(operation.http_error_status_code or 400)
            raise GceError(name, status, str(errors[0].code),
                           str(operation.http_error_message or errors[0].message))

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            transport = getattr(client, "transport", None)
            if transport is not None:
                transport.close()


def ops_name(kind: str) -> str:
    return {"region": "regionOperations", "zone": "zoneOperations",
            "global": "globalOperations"}[kind]
