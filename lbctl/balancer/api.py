"""The daemon's HTTP API: how the `baremetal` provider tells balancer instances what to serve.

Why push over an authenticated API rather than the daemon watching the cluster: a balancer host
needs no Kubernetes credentials or RBAC at all, keeps serving when the API server is down (pain
point 6 of the bare-metal field), and works on LB hosts outside the cluster; the controller,
which already holds the desired state, simply PUTs it. The controller polls `GET /v1/balancers`
and re-programs whatever an instance lacks, so instances that restart, or come and go, converge.

Routes (JSON; `/v1/*` needs `Authorization: Bearer <token>` from `--token-file`, compared in
constant time; the file is re-read when it changes, so a rotated Secret takes effect at once):
  GET    /v1/balancers[?cluster=C]   every balancer with its status (+ `bgp`: the section
                                     in force, if any)
  GET    /v1/balancers/{name}        one balancer and its status (404)
  PUT    /v1/balancers/{name}        program it (200; 422 naming each bad field; 409 clash)
  DELETE /v1/balancers/{name}        forget it (200; 404 unknown; 409 static)
  GET    /v1/bgp                     the BGP section in force, its source, sessions, VIPs
  PUT    /v1/bgp                     the provider's BGP section (422 naming each bad field;
                                     409 while the static file has one)
  DELETE /v1/bgp                     drop the provider's section (every prefix withdrawn)
  GET    /healthz /readyz /metrics   unauthenticated
A refused request changes nothing. How the API listens (TLS, a connection cap, header and body
timeouts) is in `api_server.py`.

The API shares its event loop with the userspace data plane, so its work is kept off that loop
or cut into short steps: bodies are validated in a thread, the state file is written in a thread
(`Store.persist`), answers reuse each balancer's stored JSON form and are encoded with orjson,
and a list yields to the loop between balancers.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from lbctl.bgp_config import parse_bgp
from lbctl.parsing import ConfigError

from .model import parse_balancer
from .store import Refused, Store

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TokenFile:
    """The bearer token, re-read when the file's mtime changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime = -1.0
        self._token = b""

    def current(self) -> bytes:
        try:
            mtime = self.path.stat().st_mtime
            if mtime != self._mtime:
                self._token = self.path.read_bytes().strip()
                self._mtime = mtime
        except OSError as exc:
            log.error("token file %s unreadable: %s", self.path, exc)
            return b""
        return self._token


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status,
                        content_type="application/json")


def _error(status: int, message: str, problems: list[dict[str, str]] | None = None
           ) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if problems:
        body["problems"] = problems
    return _json(body, status)


class Api:
    """Request handlers; `changed()` is awaited after every accepted write."""

    def __init__(self, store: Store, changed: Callable[[], Awaitable[None]],
                 status: Callable[[str], dict[str, Any]], token: TokenFile | None,
                 registry: CollectorRegistry, ready: Callable[[], bool], *,
                 body_timeout: float = 10.0,
                 bgp_status: Callable[[], dict[str, Any] | None] = lambda: None) -> None:
        self.store = store
        self.changed = changed
        self.status = status
        self.token = token
        self.registry = registry
        self.ready = ready
        self.body_timeout = body_timeout
        self.bgp_status = bgp_status

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._auth])
        app.router.add_get("/v1/balancers", self.list)
        app.router.add_get("/v1/balancers/{name}", self.get)
        app.router.add_put("/v1/balancers/{name}", self.put)
        app.router.add_delete("/v1/balancers/{name}", self.delete)
        app.router.add_get("/v1/bgp", self.get_bgp)
        app.router.add_put("/v1/bgp", self.put_bgp)
        app.router.add_delete("/v1/bgp", self.delete_bgp)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        expected = self.token.current() if self.token is not None else b""
        header = request.headers.get("Authorization", "")
        given = header[7:].strip().encode() if header.startswith("Bearer ") else b""
        if not expected or not given or not hmac.compare_digest(given, expected):
            resp = _error(401, "unauthorized: a valid bearer token is required")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="lbctl-balancer"'
            return resp
        return await handler(request)

    def _view(self, name: str) -> dict[str, Any] | None:
        found = self.store.get(name)
        if found is None:
            return None
        _, static = found
        return {"balancer": self.store.doc(name), "static": static, "status": self.status(name)}

    async def list(self, request: web.Request) -> web.Response:
        cluster = request.query.get("cluster")
        parts: list[bytes] = []
        for b in self.store.desired():
            if cluster is not None and (b.owner is None or b.owner.cluster != cluster):
                continue
            view = self._view(b.name)
            if view is not None:
                parts.append(orjson.dumps(view))  # encoded now: no big dump at the end
            await asyncio.sleep(0)  # one balancer's status at a time, then traffic
        bgp = self.store.bgp()  # the provider keeps it in step from this same poll
        section = b',"bgp":' + orjson.dumps({
            "source": self.store.bgp_source(),
            "config": bgp.model_dump(mode="json", by_alias=True)}) if bgp else b""
        return web.Response(body=b'{"balancers":[' + b",".join(parts) + b"]" + section + b"}",
                            content_type="application/json")

    async def get(self, request: web.Request) -> web.Response:
        view = self._view(request.match_info["name"])
        if view is None:
            return _error(404, f'balancer "{request.match_info["name"]}" not found')
        return _json(view)

    async def _body(self, request: web.Request) -> Any:
        """The decoded JSON body, or the error response to answer with."""
        if request.content_type != "application/json":
            return _error(415, "Content-Type must be application/json")
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await request.read()
            return orjson.loads(body)  # nesting past 1,024 levels is an error
        except TimeoutError:
            slow = _error(408, f"body not received within {self.body_timeout:g} s")
            slow.force_close()  # the rest of that body is not worth waiting for
            return slow
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body larger than {MAX_BODY} bytes")
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, f"body is not JSON: {exc}")

    async def put(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        doc = await self._body(request)
        if isinstance(doc, web.Response):
            return doc
        if isinstance(doc, dict):
            doc.setdefault("name", name)
            if doc["name"] != name:
                return _error(422, "name must match the URL",
                              [{"field": "name", "message": f"{doc['name']!r} is not {name!r}"}])
        try:
            balancer = await asyncio.to_thread(parse_balancer, doc)
            changed = self.store.put(balancer)
        except ConfigError as exc:
            return _error(422, "invalid balancer",
                          [{"field": p, "message": m} for p, m in exc.problems])
        except Refused as exc:
            return _error(exc.status, str(exc))
        if changed:
            log.info("programmed balancer %s", name)
            await self.changed()
            await asyncio.to_thread(self.store.persist)
        view = self._view(name)
        return _json({**(view or {}), "changed": changed})

    async def delete(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            self.store.delete(name)
        except Refused as exc:
            return _error(exc.status, str(exc))
        log.info("deleted balancer %s", name)
        await self.changed()
        await asyncio.to_thread(self.store.persist)
        return _json({"deleted": name})

    def _bgp_view(self) -> dict[str, Any]:
        config = self.store.bgp()
        return {"source": self.store.bgp_source(),
                "config": config.model_dump(mode="json", by_alias=True) if config else None,
                "status": self.bgp_status()}

    async def get_bgp(self, _request: web.Request) -> web.Response:
        return _json(self._bgp_view())

    async def put_bgp(self, request: web.Request) -> web.Response:
        doc = await self._body(request)
        if isinstance(doc, web.Response):
            return doc
        if self.store.bgp_source() == "static":
            return _error(409, "the static file's bgp section is in force on this instance")
        try:
            config = await asyncio.to_thread(parse_bgp, doc, "bgp")
        except ConfigError as exc:
            return _error(422, "invalid bgp section",
                          [{"field": p, "message": m} for p, m in exc.problems])
        changed = self.store.put_bgp(config)
        if changed:
            log.info("BGP section programmed: %d peers", len(config.peers))
            await self.changed()
            await asyncio.to_thread(self.store.persist)
        return _json({**self._bgp_view(), "changed": changed})

    async def delete_bgp(self, _request: web.Request) -> web.Response:
        if self.store.bgp_source() == "static":
            return _error(409, "the static file's bgp section is in force on this instance")
        if self.store.put_bgp(None):
            await self.changed()
            await asyncio.to_thread(self.store.persist)
        return _json(self._bgp_view())

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(self, _request: web.Request) -> web.Response:
        if not self.ready():
            return web.Response(status=503, text="not ready")
        return web.Response(text="ok")

    async def metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
