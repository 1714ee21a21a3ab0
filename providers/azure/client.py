"""The only place lbctl talks to ARM: azure-mgmt-network's client behind rate limits, bounded
retries, counted requests and one error mapping.

Why each piece:
- Bodies in and out are ARM's REST JSON (dicts): the desired model is written in that shape and
  golden-tested against the SDK's models, so nothing is converted twice. Every operation is
  called with `cls=` returning the response's own JSON.
- The SDK's retries are off (`RetryPolicy(retry_total=0)`): its policy retries any status >= 400
  that carries Retry-After and sleeps it in full, uncapped. tenacity decides instead: 429, 5xx,
  a lost connection and 409 AnotherOperationInProgress (ARM runs one operation per resource) are
  retried with jittered exponential waits, never shorter than the server's Retry-After and never
  longer than `retry_after_cap`; 412 (a concurrent writer) is the caller's to handle (re-read).
- Long-running PUT/DELETE: the SDK's poller follows `Azure-AsyncOperation`; a failed operation
  comes back as an HttpResponseError with HTTP status 200, so errors are classified by their
  `error.code`, never the status alone.
- Every HTTP request (each retry and each operation poll) passes one hook: it is counted as
  `<kind>.<verb>` (`loadBalancers.put`, `operations.get`) and waits for a token of its family
  (read, write, operations), so waiting for an operation cannot starve the reads.
- A load-balancing rule's health (`health`: POST `.../loadBalancingRules/R/health`, counted
  `loadBalancingRules.health`) is a long-running action whose result ARM serves at its
  `Location` (`operationResults.get`): it is polled there alone (the Azure-AsyncOperation poll
  would be a third request for nothing), its requests take tokens of their own family
  (`health`), so status reads never slow the writes, and it is tried once: a best-effort
  read that fails is the caller's unknown, not a retry loop.
- Credentials: `DefaultAzureCredential` (workload identity, the managed identity, the CLI) and
  ARM's own URL; with `azure.endpoint` (the emulator, on loopback only) a static token over
  plain HTTP, which the SDK's bearer policy would refuse.
The SDK is imported in the constructor: importing the provider costs nothing.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from lbctl.ratelimit import TokenBucket

from .errors import ArmError, from_sdk
from .settings import AzureSettings

log = logging.getLogger(__name__)

CRASH_ENV = "LBCTL_TEST_CRASH_AFTER_ARM_CALL"
"""Tests only: SIGKILL this process right after the named write (`loadBalancers.put`) is done."""
OPERATIONS = {
    # kind -> (operations attribute, its name parameters after the resource group)
    "loadBalancers": ("load_balancers", ("load_balancer_name",)),
    "publicIPAddresses": ("public_ip_addresses", ("public_ip_address_name",)),
    "networkSecurityGroups": ("network_security_groups", ("network_security_group_name",)),
    "subnets": ("subnets", ("virtual_network_name", "subnet_name")),
}
_WRITES = {"PUT": "put", "PATCH": "patch", "DELETE": "delete", "POST": "post"}
HEALTH = "loadBalancingRules.health"
"""A rule's health action as counted (the ARM emulator's API id too)."""


def kind_of(path: str) -> str:
    """`loadBalancers` for `.../providers/Microsoft.Network/loadBalancers/lb`, `operations`
    for an Azure-AsyncOperation poll, `operationResults` for a Location poll."""
    parts = [p for p in path.split("/") if p]
    lowered = [p.lower() for p in parts]
    if "operationresults" in lowered:
        return "operationResults"
    if "operations" in lowered or "asyncoperations" in " ".join(lowered):
        return "operations"
    if "microsoft.network" in lowered:
        rest = parts[lowered.index("microsoft.network") + 1:]
        if len(rest) >= 4:  # a child: loadBalancers/lb/backendAddressPools/p
            return rest[2]
        if rest:
            return rest[0]
    return "other"


class ArmClient:
    """See the module docstring. Thread-safe."""

    def __init__(self, settings: AzureSettings, *, max_attempts: int = 6,
                 max_seconds: float = 120.0, max_wait: float = 8.0,
                 retry_after_cap: float = 30.0, polling_interval: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        from azure.core.pipeline.policies import RetryPolicy  # noqa: PLC0415 - the SDK
        from azure.mgmt.network import NetworkManagementClient  # noqa: PLC0415

        self.settings = settings
        self.calls: Counter[str] = Counter()
        """HTTP requests sent, by `<kind>.<verb>` (each retry and each operation poll)."""
        self._lock = threading.Lock()
        self._buckets = {f: TokenBucket(float(settings.rate_limits.get(f, 10.0)), sleep=sleep)
                         for f in ("read", "write", "operations", "health")}
        self._max_attempts, self._max_seconds = max_attempts, max_seconds
        self._max_wait, self._cap, self._sleep = max_wait, retry_after_cap, sleep
        self._crash_after = os.environ.get(CRASH_ENV, "")
        self._polling_interval = polling_interval
        kwargs: dict[str, Any] = {"retry_policy": RetryPolicy(retry_total=0),
                                  "polling_interval": polling_interval,
                                  "raw_request_hook": self._on_request,
                                  "transport": _transport()}
        if settings.endpoint:
            credential, kwargs["authentication_policy"] = _emulator_auth(settings.endpoint)
            kwargs["base_url"] = settings.endpoint
        else:
            identity: Any = __import__("azure.identity", fromlist=["DefaultAzureCredential"])
            credential = identity.DefaultAzureCredential()
        self.sdk: Any = NetworkManagementClient(credential, settings.subscription_id, **kwargs)

    # -- accounting --------------------------------------------------------------------------
    def _on_request(self, request: Any) -> None:
        self._count(request)

    def _on_health_request(self, request: Any) -> None:
        """A health read's requests (its POST, its polls in the poller's own thread): the
        `health` bucket."""
        self._count(request, "health")

    def _count(self, request: Any, family: str | None = None) -> None:
        http = request.http_request
        path = urlparse(http.url).path
        kind = kind_of(path)
        verb = _WRITES.get(http.method, "get")
        name = HEALTH if verb == "post" and path.rstrip("/").lower().endswith(
            "/health") else f"{kind}.{verb}"
        family = family or ("operations" if kind in ("operations", "operationResults") else (
            "write" if verb != "get" else "read"))
        self._buckets[family].acquire()
        with self._lock:
            self.calls[name] += 1

    def reset_calls(self) -> Counter[str]:
        with self._lock:
            out = Counter(self.calls)
            self.calls.clear()
        return out

    # -- retries -----------------------------------------------------------------------------
    def _attempts(self, what: str, do: Callable[[], Any], attempts: int | None = None) -> Any:
        import tenacity  # noqa: PLC0415

        def once() -> Any:
            try:
                return do()
            except ArmError:
                raise
            except Exception as exc:
                error = from_sdk(what, exc)
                if error is None:
                    raise
                raise error from exc

        jitter = tenacity.wait_random_exponential(multiplier=0.2, max=self._max_wait)

        def wait(state: tenacity.RetryCallState) -> float:
            seconds = float(jitter(state))
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, ArmError) and error.retry_after is not None:
                seconds = max(seconds, min(error.retry_after, self._cap))
            log.info("%s: %s (attempt %d): again in %.2f s", what, error,
                     state.attempt_number, seconds)
            return seconds

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda e: isinstance(e, ArmError) and e.retryable),
            wait=wait, sleep=self._sleep, reraise=True,
            stop=(tenacity.stop_after_attempt(attempts or self._max_attempts)
                  | tenacity.stop_after_delay(self._max_seconds)))
        return retrying(once)

    # -- calls -------------------------------------------------------------------------------
    def _ops(self, kind: str, names: tuple[str, ...]) -> tuple[Any, dict[str, str]]:
        attribute, params = OPERATIONS[kind]
        if len(names) != len(params) + 1:
            raise ValueError(f"{kind} takes a resource group and {', '.join(params)}")
        request = {"resource_group_name": names[0], **dict(zip(params, names[1:], strict=True))}
        return getattr(self.sdk, attribute), request

    def get(self, kind: str, *names: str) -> dict[str, Any] | None:
        """The resource's JSON, or None on 404 (only a 404 means absent)."""
        ops, request = self._ops(kind, names)
        try:
            found = self._attempts(f"{kind}.get", lambda: ops.get(
                **request, cls=lambda response, _model, _headers: response.http_response.json()))
        except ArmError as exc:
            if exc.not_found:
                return None
            raise
        return dict(found)

    def list(self, kind: str, resource_group: str) -> list[dict[str, Any]]:
        ops, _ = self._ops(kind, (resource_group, *[""] * len(OPERATIONS[kind][1])))

        def fetch() -> list[dict[str, Any]]:
            return [dict(item.as_dict()) for item in ops.list(resource_group)]

        out: list[dict[str, Any]] = self._attempts(f"{kind}.list", fetch)
        return out

    def put(self, kind: str, *names: str, body: dict[str, Any], if_match: str | None = None,
            create_only: bool = False) -> dict[str, Any]:
        """Create or replace; waits for the operation; answers the resource as stored.
        `if_match`: the etag it must still have; `create_only`: it must not exist (both
        raise ArmError with `precondition_failed` otherwise)."""
        ops, request = self._ops(kind, names)
        headers = {"If-Match": if_match} if if_match else (
            {"If-None-Match": "*"} if create_only else {})

        def once() -> Any:
            poller = ops.begin_create_or_update(
                **request, parameters=body, headers=headers, polling=self._polling(),
                cls=lambda response, _model, _headers: response.http_response.json())
            return poller.result()

        stored = self._attempts(f"{kind}.put", once)
        self._crash_hook(f"{kind}.put")
        return dict(stored)

    def delete(self, kind: str, *names: str, if_match: str | None = None) -> None:
        """Delete and wait; gone already is success."""
        ops, request = self._ops(kind, names)
        headers = {"If-Match": if_match} if if_match else {}
        try:
            self._attempts(f"{kind}.delete", lambda: ops.begin_delete(
                **request, headers=headers, polling=self._polling()).result())
        except ArmError as exc:
            if not exc.not_found:
                raise
        self._crash_hook(f"{kind}.delete")

    def health(self, group: str, load_balancer: str, rule: str) -> dict[str, Any]:
        """A load-balancing rule's backend health (`LoadBalancerHealthPerRule`'s JSON: `up`,
        `down`, `loadBalancerBackendAddresses`), waited for at its Location; one attempt,
        its requests in the `health` family. Raises ArmError (404 for an unknown rule)."""
        ops = self.sdk.load_balancer_load_balancing_rules

        from azure.core.polling.base_polling import LocationPolling  # noqa: PLC0415

        hook = self._on_health_request  # per call: it replaces the client's hook

        def once() -> Any:
            polling = _patient_class()(
                self._polling_interval, lro_algorithms=[LocationPolling()],
                path_format_arguments={"endpoint": self.sdk._config.base_url},
                raw_request_hook=hook)
            poller = ops.begin_health(
                group, load_balancer, rule, polling=polling, raw_request_hook=hook,
                cls=lambda response, _model, _headers: response.http_response.json())
            return poller.result()

        return dict(self._attempts(HEALTH, once, attempts=1))

    def _polling(self) -> Any:
        """A poller for one long-running write (they hold state: one per call)."""
        return _patient_class()(self._polling_interval, path_format_arguments={
            "endpoint": self.sdk._config.base_url})

    def _crash_hook(self, name: str) -> None:
        if self._crash_after == name:
            log.critical("%s=%s: killing this process after %s", CRASH_ENV, name, name)
            os.kill(os.getpid(), signal.SIGKILL)

    def close(self) -> None:
        self.sdk.close()


_PATIENT: list[Any] = []
RETRY_HEADERS = ("retry-after-ms", "x-ms-retry-after-ms", "Retry-After")
"""What azure-core's poller reads its wait from (case-insensitive headers)."""


def _patient_class() -> Any:
    """ARMPolling, but waiting as the server says before its first poll when it says so
    (Retry-After on the write's answer, as ARM sends): azure-core's poller asks once right
    away and then after Retry-After, so every operation that takes any time cost two polls
    (476 for 247 writes in bench/azure.py), and polls are what ARM's read budget runs out of
    first. Without a hint it polls at once, as azure-core does."""
    if not _PATIENT:
        from azure.mgmt.core.polling.arm_polling import ARMPolling  # noqa: PLC0415

        class PatientPolling(ARMPolling):
            def _poll(self) -> None:
                headers = self._pipeline_response.http_response.headers
                if not self.finished() and any(h in headers for h in RETRY_HEADERS):
                    self._delay()  # the write's own answer said when to look
                super()._poll()

        _PATIENT.append(PatientPolling)
    return _PATIENT[0]


POOL_SIZE = 65
"""Connections kept to ARM: one per controller worker (at most 64) and a spare; requests'
default of 10 discards the rest after each call ("Connection pool is full"), a new TLS
handshake per request under load."""


def _transport() -> Any:
    """azure-core's requests transport on a session sized for the workers (retries stay off,
    as in azure-core's own session: tenacity decides)."""
    from azure.core.pipeline.transport import RequestsTransport  # noqa: PLC0415
    requests: Any = importlib.import_module("requests")
    retry: Any = importlib.import_module("urllib3.util.retry")
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(
        pool_maxsize=POOL_SIZE, max_retries=retry.Retry(total=False, redirect=False,
                                                         raise_on_status=False))
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return RequestsTransport(session=session, session_owner=True)


def _emulator_auth(endpoint: str) -> tuple[Any, Any]:
    """A static token and a policy that sends it over plain HTTP (loopback emulators only:
    the settings refuse any other host)."""
    from azure.core.credentials import AccessToken  # noqa: PLC0415
    from azure.core.pipeline.policies import SansIOHTTPPolicy  # noqa: PLC0415

    class StaticToken:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken("lbctl-emulator", int(time.time()) + 3600)

    class Header(SansIOHTTPPolicy):  # type: ignore[type-arg]
        def on_request(self, request: Any) -> None:
            request.http_request.headers["Authorization"] = "Bearer lbctl-emulator"

    host = urlparse(endpoint).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"azure.endpoint {endpoint}: a static token only for a loopback "
                         "emulator")
    return StaticToken(), Header()
