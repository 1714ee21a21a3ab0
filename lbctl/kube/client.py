"""The API client: one rate-limited ApiClient, raw JSON requests and the reconciler's writes.

Every request goes through the official client's `ApiClient.param_serialize` + `call_api` (its
auth, TLS, token refresh and connection pool) and a client-side token bucket, like client-go's
QPS/burst limiter, so N workers cannot flood the API server. Nothing is deserialised into client
models: `request()` is what the generated methods do with `_preload_content=False`, for any path,
and answers plain dicts (orjson); `RawWatch` splits the chunked watch stream itself (linear time,
the resourceVersion and 410 kept, unlike `Watch.stream(deserialize=False)`).

The Service writes, as upstream's service controller makes them: status by strategic merge
patch to the `status` subresource; finalizers guarded so a stale list is never written (a JSON
patch whose `test` op checks the list we saw, or, when we saw none, a merge patch with a
resourceVersion precondition: JSON patch cannot test for an absent member). Events: `events`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from lbctl.ratelimit import TokenBucket

JSON = "application/json"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
Timeout = float | tuple[float, float]


class ApiError(Exception):
    """An API answer other than 2xx, or status 0 when no answer came (connection, timeout)."""

    def __init__(self, status: int, reason: str, message: str = "",
                 retry_after: float | None = None, body: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")
        self.status, self.reason, self.message = status, reason, message
        self.retry_after = retry_after
        self.body: Mapping[str, Any] = body or {}

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        return self.status == 410

    @property
    def transient(self) -> bool:
        """Worth retrying unchanged: no answer, throttled, or a server-side failure."""
        return self.status in (0, 429) or self.status >= 500

    @classmethod
    def from_response(cls, status: int, data: bytes, headers: Mapping[str, str]) -> ApiError:
        try:
            body = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        retry: float | None = None
        header = headers.get("Retry-After") or (body.get("details") or {}).get("retryAfterSeconds")
        if header is not None:
            try:
                retry = float(header)
            except ValueError:
                retry = None
        return cls(status, str(body.get("reason") or ""), str(body.get("message") or
                   data[:200].decode(errors="replace")), retry, body)


@dataclass(frozen=True, slots=True)
class Resource:
    """Where a kind lives in the REST API: `path()` builds collection and object paths."""

    group: str
    version: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str = "", subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}" + (f"/{subresource}" if subresource else "")
        return base


SERVICES = Resource("", "v1", "services", True)
NODES = Resource("", "v1", "nodes", False)
NAMESPACES = Resource("", "v1", "namespaces", False)
EVENTS = Resource("", "v1", "events", True)
LEASES = Resource("coordination.k8s.io", "v1", "leases", True)
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices", True)


class _LimitedApiClient(k8s.ApiClient):  # type: ignore[misc]  # the client is untyped here
    """The official ApiClient with a token taken before every request it sends."""

    def __init__(self, configuration: Any, limiter: TokenBucket) -> None:
        super().__init__(configuration)
        self.limiter = limiter

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        self.limiter.acquire()
        return super().call_api(*args, **kwargs)


def new_api_client(kubeconfig: str | os.PathLike[str] | None = None, *, context: str | None = None,
                   qps: float = 20.0, burst: int = 30) -> Any:
    """An ApiClient from a kubeconfig file, or from in-cluster config when none is given."""
    configuration = k8s.Configuration()
    if kubeconfig is None:
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        k8s_config.load_kube_config(config_file=os.fspath(kubeconfig), context=context,
                                    client_configuration=configuration, persist_config=False)
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, 32)
    api = _LimitedApiClient(configuration, TokenBucket(qps, burst))
    api.user_agent = "lbctl"
    return api


class RawWatch:
    """One open watch: iterate to get its events as dicts; `close()` works from any thread.

    Raises ApiError(0) when the connection breaks or the socket read times out; the stream
    simply ends when the server closes it (timeoutSeconds, or the server dropping watches).
    """

    def __init__(self, response: Any) -> None:
        self._response = response
        self._closed = False
        self._reading = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        buf = bytearray()
        clean = False
        try:
            while not self._closed:
                self._reading = True
                try:
                    chunk = self._response.read1(65536)
                finally:
                    self._reading = False
                if not chunk:
                    clean = True
                    return
                buf += chunk
                if b"\n" not in chunk:
                    continue
                end = buf.rfind(b"\n")
                lines = bytes(buf[:end]).split(b"\n")
                del buf[:end + 1]
                for line in lines:
                    if line.strip():
                        yield orjson.loads(line)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if not self._closed:
                raise ApiError(0, type(exc).__name__, str(exc)) from exc
        finally:
            self._closed = True
            if clean:
                self._response.release_conn()  # a finished chunked reply: the socket is reusable
            else:
                self._response.close()

    def close(self) -> None:
        """Stop the stream; a reader blocked in another thread returns at once."""
        if self._closed:
            return
        self._closed = True
        if not self._reading:  # not iterated yet, or suspended between events
            self._response.close()
            return
        # unblocks a read in progress (urllib3 >= 2.3); raises if the reader just finished
        with contextlib.suppress(OSError, AttributeError, RuntimeError):
            self._response.shutdown()


class Kube:
    """The API server as lbctl sees it: raw JSON in and out, every request rate-limited."""

    def __init__(self, api_client: Any, *, timeout: Timeout = (10.0, 30.0)) -> None:
        self.api_client = api_client
        self.timeout = timeout

    @classmethod
    def connect(cls, kubeconfig: str | os.PathLike[str] | None = None, *, qps: float = 20.0,
                burst: int = 30, **kw: Any) -> Kube:
        return cls(new_api_client(kubeconfig, qps=qps, burst=burst), **kw)

    def with_limits(self, qps: float, burst: int) -> Kube:
        """A Kube over the same configuration with a bucket (and pool) of its own: the leader
        elector gets one so a busy controller can never starve its Lease renewals."""
        configuration = self.api_client.configuration
        return Kube(_LimitedApiClient(configuration, TokenBucket(qps, burst)),
                    timeout=self.timeout)

    def close(self) -> None:
        self.api_client.close()

    # -- raw requests --------------------------------------------------------------------------
    def open(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
             body: Any = None, content_type: str = JSON, timeout: Timeout | None = None) -> Any:
        """Send a request; answer the open urllib3 response (2xx only, else ApiError)."""
        headers = {"Accept": JSON, "Content-Type": content_type}
        params = [(k, v) for k, v in (query or {}).items() if v not in (None, "")]
        try:
            req = self.api_client.param_serialize(method, path, query_params=params,
                                                  header_params=headers, body=body,
                                                  auth_settings=["BearerToken"])
            answer = self.api_client.call_api(*req, _request_timeout=timeout or self.timeout)
        except k8s.ApiException as exc:  # the client's own: TLS failures, bad request bodies
            raise ApiError(int(exc.status or 0), str(exc.reason or "ApiException"),
                           str(exc)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(0, type(exc).__name__, str(exc)) from exc
        resp = answer.response
        if not 200 <= resp.status <= 299:
            try:
                data = resp.data
            except (urllib3.exceptions.HTTPError, OSError):
                data = b""
            raise ApiError.from_response(resp.status, data, resp.headers)
        return resp

    def request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        """Send a request; answer the JSON body as a dict."""
        resp = self.open(method, path, **kw)
        try:
            data = resp.data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(0, type(exc).__name__, str(exc)) from exc
        answer = orjson.loads(data) if data else {}
        return answer if isinstance(answer, dict) else {"items": answer}

    def list_page(self, resource: Resource, *, namespace: str | None = None, limit: int = 500,
                  continue_token: str = "", label_selector: str = "", field_selector: str = "",
                  timeout: Timeout | None = None) -> dict[str, Any]:
        """One page of a consistent list (resourceVersion unset, so `limit` is honoured)."""
        return self.request("GET", resource.path(namespace), timeout=timeout, query={
            "limit": limit, "continue": continue_token, "labelSelector": label_selector,
            "fieldSelector": field_selector})

    def watch(self, resource: Resource, resource_version: str, *, namespace: str | None = None,
              timeout_seconds: int = 300, read_timeout: float = 120.0, label_selector: str = "",
              field_selector: str = "") -> RawWatch:
        """A watch from `resource_version` with bookmarks, ended by the server after
        `timeout_seconds`, or by ApiError(0) when nothing arrives for `read_timeout`."""
        resp = self.open("GET", resource.path(namespace), timeout=(10.0, read_timeout), query={
            "watch": "true", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_seconds, "labelSelector": label_selector,
            "fieldSelector": field_selector})
        return RawWatch(resp)

    # -- the reconciler's writes ---------------------------------------------------------------
    def patch_service_status(self, namespace: str, name: str,
                             patch: Mapping[str, Any]) -> dict[str, Any]:
        """Strategic merge patch to `status`, as upstream: e.g. {"status": {"loadBalancer":
        {"ingress": [...]}}}. Answers the Service as JSON."""
        return self.request("PATCH", SERVICES.path(namespace, name, "status"), body=dict(patch),
                            content_type=STRATEGIC)

    def patch_service_metadata(self, namespace: str, name: str, *, finalizers: Sequence[str],
                               expected_finalizers: Sequence[str],
                               resource_version: str = "") -> dict[str, Any]:
        """Set `metadata.finalizers` only if they are still `expected_finalizers`.

        Raises ApiError 409 when they changed meanwhile (never writes a stale list); the caller
        requeues and decides again from a fresh view.
        """
        path = SERVICES.path(namespace, name)
        if not expected_finalizers:
            if not resource_version:
                raise ValueError("a resourceVersion is needed to add to an empty finalizer list")
            return self.request("PATCH", path, content_type=MERGE, body={"metadata": {
                "resourceVersion": resource_version, "finalizers": list(finalizers)}})
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/finalizers", "value": list(expected_finalizers)},
            {"op": "replace", "path": "/metadata/finalizers", "value": list(finalizers)}
            if finalizers else {"op": "remove", "path": "/metadata/finalizers"}]
        try:
            return self.request("PATCH", path, body=ops, content_type=JSON_PATCH)
        except ApiError as err:
            causes = (err.body.get("details") or {}).get("causes") or []
            if err.status == 422 and not any(c.get("field") for c in causes):
                raise ApiError(409, "Conflict", f"finalizers of {namespace}/{name} changed "
                               "meanwhile", body=err.body) from err
            raise
