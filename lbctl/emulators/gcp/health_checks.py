"""Health checks, regional (`regionHealthChecks`) and global (`healthChecks`).

A passthrough Network Load Balancer's backend service names exactly one: a regional one for
the external scheme, global or regional for the internal one. GCE's rules kept here: `type` is
required and its one protocol block must match it (`HTTP` -> `httpHealthCheck`), ports
1-65535, `requestPath` starting with `/`, `timeoutSec` no longer than `checkIntervalSec`
(1-300 s), thresholds 1-10; defaults filled in as GCE does (5 s, 5 s, 2, 2, port 80 or 443,
path `/`). PATCH merges (changing `type` drops the other protocol's block), PUT replaces;
there is no fingerprint. A check a backend service uses cannot be deleted.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .errors import invalid, not_implemented
from .fields import Body
from .kinds import Kind
from .links import Key

BLOCKS = {"TCP": "tcpHealthCheck", "HTTP": "httpHealthCheck", "HTTPS": "httpsHealthCheck",
          "HTTP2": "http2HealthCheck", "SSL": "sslHealthCheck"}
DEFAULT_PORTS = {"TCP": 80, "HTTP": 80, "HTTPS": 443, "HTTP2": 443, "SSL": 443}
BLOCK_FIELDS = ("port", "portSpecification", "requestPath", "host", "proxyHeader", "request",
                "response")


class HealthChecks(Kind):
    collection = "healthChecks"
    kind = "compute#healthCheck"
    api: ClassVar[dict[str, str]] = {"global": "healthChecks", "regions": "regionHealthChecks"}
    label = "health_check"
    patchable = True
    replaceable = True
    fields = frozenset({
        "checkIntervalSec", "creationTimestamp", "description", "grpcHealthCheck",
        "grpcTlsHealthCheck", "healthyThreshold", "http2HealthCheck", "httpHealthCheck",
        "httpsHealthCheck", "id", "kind", "logConfig", "name", "region", "selfLink",
        "sourceRegions", "sslHealthCheck", "tcpHealthCheck", "timeoutSec", "type",
        "unhealthyThreshold"})
    supported = frozenset({"name", "description", "type", "checkIntervalSec", "timeoutSec",
                           "healthyThreshold", "unhealthyThreshold", *BLOCKS.values()})

    def normalize(self, key: Key, body: Body, current: dict[str, Any] | None) -> dict[str, Any]:
        kind = body.choice("type", BLOCKS, need=True)
        assert kind is not None
        block_name = BLOCKS[kind]
        changed_type = current is not None and current.get("type") != kind
        for other in BLOCKS.values():
            if other != block_name and body.has(other) and not changed_type:
                raise invalid(f"resource.{other}", "...",
                              f"Does not match the health check type {kind}.")
        interval = body.integer("checkIntervalSec", 1, 300, 5)
        timeout = body.integer("timeoutSec", 1, 300, 5)
        assert interval is not None and timeout is not None
        if timeout > interval:
            raise invalid("resource.timeoutSec", str(timeout),
                          "TimeoutSec should be less than checkIntervalSec.")
        obj: dict[str, Any] = {
            "name": key.name, "type": kind, "checkIntervalSec": interval, "timeoutSec": timeout,
            "healthyThreshold": body.integer("healthyThreshold", 1, 10, 2),
            "unhealthyThreshold": body.integer("unhealthyThreshold", 1, 10, 2),
            block_name: _block(kind, body.child(block_name, BLOCK_FIELDS) or Body(
                {}, f"resource.{block_name}"))}
        description = body.text("description", max_len=2048)
        if description:
            obj["description"] = description
        return obj


def _block(kind: str, body: Body) -> dict[str, Any]:
    spec = body.text("portSpecification", "USE_FIXED_PORT")
    if spec != "USE_FIXED_PORT":
        raise not_implemented(f"{body.field('portSpecification')} {spec}")
    block: dict[str, Any] = {"port": body.integer("port", 1, 65535, DEFAULT_PORTS[kind]),
                             "portSpecification": spec,
                             "proxyHeader": body.choice("proxyHeader", ("NONE", "PROXY_V1"),
                                                        "NONE")}
    if kind.startswith("HTTP"):
        path = body.text("requestPath", "/")
        assert path is not None
        if not path.startswith("/"):
            raise invalid(body.field("requestPath"), path, "Must start with '/'.")
        block["requestPath"] = path
        for name in ("host", "response"):
            value = body.text(name, max_len=1024)
            if value:
                block[name] = value
    else:
        for name in ("request", "response"):
            value = body.text(name, max_len=1024)
            if value:
                block[name] = value
        if body.has("requestPath") or body.has("host"):
            raise invalid(body.field("requestPath"), body.raw("requestPath") or "",
                          f"Not a field of a {kind} health check.")
    return block
