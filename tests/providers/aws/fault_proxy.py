"""A fault-injecting HTTP proxy in front of moto (or any AWS endpoint speaking the query
protocol), for the AWS fault tests.

Every request is forwarded unchanged, except that, decided by a seeded RNG per request:
- a share `error_share` of the requests whose action is in `actions` (all when None) is answered
  by the proxy itself, without reaching moto, with a real AWS error document and status:
  ELBv2 `Throttling` (400), `InternalFailure` (500), `ServiceUnavailable` (503); EC2
  `RequestLimitExceeded` (503), `InternalError` (500), `Unavailable` (503). botocore parses
  `<ErrorResponse><Error><Code>` (ELBv2, query protocol) and `<Response><Errors><Error><Code>`
  (EC2), so the caller sees a ClientError with that code and status;
- a share `provisioning_share` of `DescribeLoadBalancers` answers is forwarded and rewritten from
  `<Code>active</Code>` to `<Code>provisioning</Code>` (an NLB AWS is still provisioning);
- a share `lost_reply_share` of mutating requests (in `lost_reply_actions`, all when None) is
  forwarded, so the change is made, and then answered with a 500 as if the reply had been lost
  on the way back (the retry then meets what the first attempt did);
- `script(action, fault, times)` answers the next `times` requests for `action` with `fault`
  whatever the shares (e.g. DeleteSecurityGroup -> DependencyViolation, which moto never says);
- the Resource Groups Tagging API (JSON protocol, `X-Amz-Target`, credential scope `tagging`)
  gets the same error share with its own errors (`ThrottledException` 400,
  `InternalServiceException` 500) as JSON documents.

Every request is recorded (`records`) with its monotonic time, service, action, the fault made
(None when it was passed through untouched) and the status returned. The shares can be changed
while the proxy runs (`configure`), so one proxy serves a fault-free run and a faulty one.

    with FaultProxy(moto_url, seed=7, error_share=0.25) as proxy:
        ... endpoint_url=proxy.url ...
        proxy.faults()  # Counter: {"Throttling": 12, "provisioning": 5, ...}
"""

from __future__ import annotations

import http.client
import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

ELBV2 = "elasticloadbalancing"
EC2 = "ec2"
TAGGING = "tagging"


class Fault(NamedTuple):
    code: str
    status: int
    message: str


ELBV2_ERRORS = (
    Fault("Throttling", 400, "Rate exceeded"),
    Fault("InternalFailure", 500, "The request processing has failed because of an unknown "
                                  "error, exception or failure."),
    Fault("ServiceUnavailable", 503, "The request has failed due to a temporary failure of "
                                     "the server."),
)
EC2_ERRORS = (
    Fault("RequestLimitExceeded", 503, "Request limit exceeded."),
    Fault("InternalError", 500, "An internal error has occurred."),
    Fault("Unavailable", 503, "The server is overloaded and can't handle the request."),
)
TAGGING_ERRORS = (
    Fault("ThrottledException", 400, "Rate exceeded"),
    Fault("InternalServiceException", 500, "The request processing failed because of an "
                                           "unknown error, exception, or failure."),
)
PROVISIONING = "provisioning"
LOST_REPLY = "lost-reply"
_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
_ACTIVE = b"<Code>active</Code>"


def error_body(service: str, fault: Fault, request_id: str) -> bytes:
    """The error document AWS sends for `fault` on `service` (ELBv2, EC2 or tagging)."""
    if service == TAGGING:
        return json.dumps({"__type": fault.code, "Message": fault.message}).encode()
    if service == EC2:
        return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>"
                f"<Code>{fault.code}</Code><Message>{fault.message}</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>").encode()
    kind = "Sender" if fault.status < 500 else "Receiver"
    return ("<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">"
            f"<Error><Type>{kind}</Type><Code>{fault.code}</Code>"
            f"<Message>{fault.message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()


@dataclass(frozen=True, slots=True)
class Record:
    at: float
    """time.monotonic() when the request arrived."""
    service: str
    action: str
    fault: str | None
    """The error code answered, `provisioning`, `lost-reply`, or None (passed through)."""
    status: int
    params: dict[str, str] = field(default_factory=dict)
    """The request's form parameters (first value of each), for debugging a failure."""


class FaultProxy:
    """See the module docstring. `start()`/`stop()` or use it as a context manager."""

    def __init__(self, target: str, *, seed: int = 0, error_share: float = 0.0,
                 provisioning_share: float = 0.0, lost_reply_share: float = 0.0,
                 actions: Iterable[str] | None = None,
                 lost_reply_actions: Iterable[str] | None = None,
                 host: str = "127.0.0.1") -> None:
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"target must be an http:// URL, not {target!r}")
        self.target_host, self.target_port = parts.hostname, parts.port or 80
        self._rng = random.Random(seed)  # noqa: S311  (fault choice, not secrets)
        self._lock = threading.Lock()
        self.records: list[Record] = []
        self.error_share = self.provisioning_share = self.lost_reply_share = 0.0
        self.actions: frozenset[str] | None = None
        self.lost_reply_actions: frozenset[str] | None = None
        self.scripted: dict[str, list[tuple[Fault, dict[str, str]]]] = {}
        self.configure(error_share=error_share, provisioning_share=provisioning_share,
                       lost_reply_share=lost_reply_share, actions=actions,
                       lost_reply_actions=lost_reply_actions)
        self._server = ThreadingHTTPServer((host, 0), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def configure(self, *, error_share: float = 0.0, provisioning_share: float = 0.0,
                  lost_reply_share: float = 0.0, actions: Iterable[str] | None = None,
                  lost_reply_actions: Iterable[str] | None = None) -> None:
        """Set the fault shares (0 to 1) for the requests from now on. `actions` limits the
        error answers, `lost_reply_actions` the lost replies (None: every action, every
        mutating action)."""
        for share in (error_share, provisioning_share, lost_reply_share):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"a share is between 0 and 1, not {share}")
        with self._lock:
            self.error_share, self.provisioning_share = error_share, provisioning_share
            self.lost_reply_share = lost_reply_share
            self.actions = None if actions is None else frozenset(actions)
            self.lost_reply_actions = (None if lost_reply_actions is None
                                       else frozenset(lost_reply_actions))

    def script(self, action: str, fault: Fault, times: int = 1,
               match: dict[str, str] | None = None) -> None:
        """Answer the next `times` requests for `action` whose form parameters include `match`
        with `fault` (before any share)."""
        with self._lock:
            self.scripted.setdefault(action, []).extend([(fault, dict(match or {}))] * times)

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="aws-fault-proxy")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- what happened ---------------------------------------------------------------------
    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self.records)

    def mark(self) -> int:
        """An index into `records`: pass it to `since` to see only later requests."""
        with self._lock:
            return len(self.records)

    def since(self, mark: int) -> list[Record]:
        with self._lock:
            return self.records[mark:]

    def faults(self, records: Iterable[Record] | None = None) -> Counter[str]:
        """How many faults of each kind (error code, `provisioning`, `lost-reply`)."""
        return Counter(r.fault for r in (self.snapshot() if records is None else records)
                       if r.fault is not None)

    # -- the decision ----------------------------------------------------------------------
    def decide(self, service: str, action: str,
               params: dict[str, str] | None = None) -> tuple[str, Fault | None]:
        """("error", fault) | ("provisioning", None) | ("lost-reply", fault) | ("pass", None);
        a scripted fault first, then each share drawn on its own, in that order."""
        with self._lock:
            for i, (fault, match) in enumerate(self.scripted.get(action, [])):
                if all((params or {}).get(k) == v for k, v in match.items()):
                    del self.scripted[action][i]
                    return "error", fault
            error, state, lost, pick = (self._rng.random() for _ in range(4))
            errors = {EC2: EC2_ERRORS, TAGGING: TAGGING_ERRORS}.get(service, ELBV2_ERRORS)
            if (self.actions is None or action in self.actions) and error < self.error_share:
                return "error", errors[int(pick * len(errors))]
            if action == "DescribeLoadBalancers" and state < self.provisioning_share:
                return PROVISIONING, None
            writes = (not action.startswith(("Describe", "Get", "List"))
                      and (self.lost_reply_actions is None or action in self.lost_reply_actions))
            if writes and lost < self.lost_reply_share:
                return LOST_REPLY, errors[1]
            return "pass", None

    def record(self, at: float, service: str, action: str, fault: str | None,
               status: int, params: dict[str, str] | None = None) -> None:
        with self._lock:
            self.records.append(Record(at, service, action, fault, status, params or {}))


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    local = threading.local()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like botocore's pool expects

        def log_message(self, format: str, *args: object) -> None:
            return

        def _upstream(self) -> http.client.HTTPConnection:
            conn: http.client.HTTPConnection | None = getattr(local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(proxy.target_host, proxy.target_port,
                                                  timeout=60)
                local.conn = conn
            return conn

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("connection", "keep-alive", "proxy-connection")}
            for attempt in range(2):  # a pooled upstream connection may have been closed
                conn = self._upstream()
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    return resp.status, resp.getheaders(), data
                except (http.client.HTTPException, OSError):
                    conn.close()
                    local.conn = None
                    if attempt:
                        raise
            raise AssertionError("unreachable")

        def _reply(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in ("content-length", "transfer-encoding", "connection",
                                       "keep-alive", "date", "server"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            at = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            match = _SERVICE.search(self.headers.get("Authorization", ""))
            service = match.group(1) if match else ""
            json_protocol = service == TAGGING
            form = parse_qs(body.decode("utf-8", "replace")) if body and not json_protocol \
                else {}
            action = (form.get("Action") or parse_qs(urlsplit(self.path).query).get("Action")
                      or [""])[0]
            if json_protocol:
                action = str(self.headers.get("X-Amz-Target", "")).rpartition(".")[2]
            params = {k: v[0] for k, v in form.items() if k not in ("Action", "Version")}
            what, fault = (proxy.decide(service, action, params)
                           if action and service in (ELBV2, EC2, TAGGING) else ("pass", None))
            request_id = str(uuid.uuid4())
            kind = "application/x-amz-json-1.1" if json_protocol else "text/xml"
            if what == "error" and fault is not None:
                proxy.record(at, service, action, fault.code, fault.status, params)
                self._reply(fault.status, [("Content-Type", kind),
                                           ("x-amzn-RequestId", request_id)],
                            error_body(service, fault, request_id))
                return
            status, headers, data = self._forward(body)
            if what == PROVISIONING and status == 200 and _ACTIVE in data:
                data = data.replace(_ACTIVE, b"<Code>provisioning</Code>")
                proxy.record(at, service, action, PROVISIONING, status, params)
            elif what == LOST_REPLY and fault is not None and status == 200:
                proxy.record(at, service, action, LOST_REPLY, fault.status, params)
                self._reply(fault.status, [("Content-Type", kind)],
                            error_body(service, fault, request_id))
                return
            else:
                proxy.record(at, service, action, None, status, params)
            self._reply(status, headers, data)

        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

    return Handler
