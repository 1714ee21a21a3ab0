"""The HTTP face of the sandbox: kube-apiserver's REST API on aiohttp.

One catch-all handler authenticates the caller (`auth`), applies impersonation headers, asks
the authorizer (`rbac`) about the request's attributes before routing anything, as kube-apiserver
does (401 for a bad credential, 403 `Forbidden` naming user, verb and resource), then parses the
URL into a Target, consults the fault hooks, runs the verb through the registry (or answers a
review / TokenRequest on the spot) and writes either the object or a `Status`; every resource
request is audited with the user it ran as. Watches stream chunked JSON lines (one event per
line) with bookmarks and timeouts.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
from aiohttp import web

from .. import errors
from ..auth import token_request
from ..auth.attributes import request_attributes
from ..auth.authn import SYSTEM_MASTERS, Authenticator, TokenIssuer, UserInfo
from ..auth.impersonation import impersonate
from ..auth.rbac import Authorizer, forbidden
from ..auth.reviews import Reviews
from ..encoding import protobuf
from ..encoding.patch import json_patch, merge_patch, strategic_merge_patch
from ..encoding.strategic_merge_lists import go_format
from ..openapi import discovery, schema
from ..storage.listing import list_objects, open_watch
from ..storage.registry import Registry
from ..storage.store import Obj
from ..storage.watch import Watcher
from ..tables import table as tables
from . import negotiation
from .faults import FaultConfig, Faults
from .requests import MAX_BODY, Target, decode_body, object_body, parse_path, patch_type, verb_of
from .scale import serve_scale
from .watch_stream import WatchStream

JSON = "application/json"
AUDIT_NAME = web.RequestKey("audit_name", str)
"""The created object's name (it may come from generateName), for the audit log."""


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON,
                        headers=headers)


def _error(err: errors.ApiError) -> web.Response:
    return _json(err.status(), err.code, err.headers or None)


class ApiServer:
    """Request handling over a Registry; `app()` gives the aiohttp application.

    `insecure` (plain HTTP): a request without credentials is kube's old insecure-port user
    `system:unsecured` in `system:masters`, since kubectl sends no credentials over plain HTTP;
    under TLS it is `system:anonymous`, allowed what RBAC grants `system:unauthenticated`.
    """

    def __init__(self, registry: Registry, admin_token: str, *,
                 bookmark_interval: float = 10.0, faults: Faults | None = None,
                 insecure: bool = True, issuer: TokenIssuer | None = None) -> None:
        self.registry = registry
        self.issuer = issuer or TokenIssuer()
        self.authenticator = Authenticator(registry.store, admin_token, self.issuer,
                                           insecure=insecure)
        self.authorizer = Authorizer(registry.store)
        self.reviews = Reviews(self.authenticator, self.authorizer)
        self.bookmark_interval = bookmark_interval
        self.faults = faults or Faults()
        self.watchers: set[Watcher] = set()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_shutdown.append(self._close_watches)
        return app

    async def _close_watches(self, _app: web.Application) -> None:
        for watcher in list(self.watchers):
            watcher.close()

    # -- entry -----------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        user = self.authenticator.authenticate(request.headers.get("Authorization", ""))
        if user is None:
            return _error(errors.ApiError(401, "Unauthorized", "Unauthorized"))
        try:
            user = impersonate(self.authorizer, user, request.headers.items())
        except errors.ApiError as err:
            return _error(err)
        parts = [p for p in request.path.split("/") if p]
        attrs = request_attributes(user, request.method, request.path, request.query)
        if parts and parts[0] == "sandbox":
            if SYSTEM_MASTERS not in user.groups:
                return _error(forbidden(attrs))
            return await self._admin(request, parts[1:])
        target = _target(parts)
        watch = request.query.get("watch") in ("true", "1")
        verb = verb_of(request.method, target, watch) if target is not None else attrs.verb
        decision = self.authorizer.authorize(attrs)
        if not decision.allowed:
            if target is not None:
                self._audit(user, request, target, verb, 403)
            return _error(forbidden(attrs, decision.reason))
        static = self._static(request, parts)
        if static is not None:
            return static
        if target is None:
            return _error(errors.no_such_resource())
        code = 200
        try:
            injected = self.faults.injected_error(verb, target.resource.plural)
            if injected is not None:
                raise injected
            if target.resource.virtual or target.subresource in target.resource.actions:
                response = await self._create_only(request, target, verb, user)
            elif verb == "watch":
                return await self._watch(request, target)
            else:
                response = await self._serve(request, target, verb)
            code = response.status
            return response
        except errors.ApiError as err:
            code = err.code
            return _error(err)
        finally:
            self._audit(user, request, target, verb, code)

    def _audit(self, user: UserInfo, request: web.Request, target: Target, verb: str,
               code: int) -> None:
        self.faults.record(user.name, verb, target.resource.plural, target.subresource,
                           target.namespace or "", target.name or request.get(AUDIT_NAME, ""),
                           code)

    def _static(self, request: web.Request, parts: list[str]) -> web.Response | None:
        """Non-resource paths: version, health, discovery, OpenAPI."""
        doc = discovery.document(parts, request.headers.get("Accept", ""), request.host)
        if doc is None:
            return None
        return web.Response(body=doc.body, status=doc.status, content_type=doc.content_type)

    # -- verbs -----------------------------------------------------------------------------
    async def _read(self, request: web.Request) -> bytes:
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise errors.too_large(MAX_BODY) from exc

    async def _object_bytes(self, request: web.Request) -> tuple[bytes, str]:
        """A create/update body and its content type; protobuf (client-go >= 1.32's typed
        clients) comes back as the equivalent JSON."""
        raw = await self._read(request)
        if request.content_type == protobuf.CONTENT_TYPE:
            return orjson.dumps(protobuf.decode(raw)), "application/json"
        return raw, request.content_type

    async def _serve(self, request: web.Request, t: Target, verb: str) -> web.Response:
        reg, res, q = self.registry, t.resource, request.query
        ns = t.namespace or ""
        if t.subresource == "scale":
            return await self._scale(request, t, verb)
        accept = request.headers.get("Accept", "")
        if verb == "get":
            return _json(negotiation.render(accept, res, reg.get(res, ns, t.name), q))
        if verb == "list":
            return _json(negotiation.render(accept, res, list_objects(
                reg, res, t.namespace, label=q.get("labelSelector", ""),
                field=q.get("fieldSelector", ""), limit=_int(q, "limit"),
                cont=q.get("continue", ""), rv=q.get("resourceVersion", ""),
                rv_match=q.get("resourceVersionMatch", "")), q))
        dry_run = q.get("dryRun") == "All"
        if verb in ("create", "update"):
            body = object_body(*await self._object_bytes(request), res)
            body, warnings = schema.decode(body, res.api_version, res.kind,
                                           _field_validation(q))
            headers = _warning_headers(warnings)
            if verb == "create":
                created = reg.create(res, ns, body, dry_run)
                request[AUDIT_NAME] = created["metadata"]["name"]
                return _json(created, 201, headers)
            return _json(reg.update(res, ns, t.name, body, t.subresource, dry_run), 200, headers)
        if verb == "patch":
            return self._patch(t, await self._read(request), request.headers.get(
                "Content-Type", ""), _field_validation(q), dry_run)
        if verb == "delete":
            return _json(reg.delete(res, ns, t.name, await self._delete_options(request)))
        if verb == "deletecollection":
            listed = list_objects(reg, res, t.namespace, label=q.get("labelSelector", ""),
                                  field=q.get("fieldSelector", ""))
            options = await self._delete_options(request)
            deleted = [reg.delete(res, o["metadata"].get("namespace", ""),
                                  o["metadata"]["name"], options) for o in listed["items"]]
            listed["items"] = deleted
            return _json(listed)
        raise errors.method_not_allowed(request.method, res.plural)

    def _patch(self, t: Target, raw: bytes, content_type: str, validation: str,
               dry_run: bool) -> web.Response:
        res = t.resource
        patch = decode_body(raw, content_type)
        kind = patch_type(content_type, patch)
        if kind == "apply":
            raise errors.unsupported_media_type("application/apply-patch+yaml")
        warnings: list[str] = []

        def change(current: Obj) -> Obj:
            if kind == "json":
                patched = json_patch(current, patch)
            elif kind == "merge":
                patched = merge_patch(current, patch)
            else:
                patched = strategic_merge_patch(current, patch, res.api_version, res.kind)
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch did not produce a JSON object")
            # Upstream names the patch in a decode failure: the patched JSON, or for a
            # strategic merge patch Go's rendering of the patch itself.
            shown = go_format(patch) if kind == "strategic" else orjson.dumps(patched).decode()
            decoded, found = schema.decode_patched(patched, res.api_version, res.kind,
                                                   validation, shown)
            warnings.extend(found)
            return decoded

        obj = self.registry.update_with(res, t.namespace or "", t.name, t.subresource, change,
                                        dry_run=dry_run)
        return _json(obj, 200, _warning_headers(warnings))

    async def _delete_options(self, request: web.Request) -> Obj:
        raw = await self._read(request)
        options: Obj = {}
        if raw.strip():
            body = decode_body(raw, request.content_type)
            if not isinstance(body, dict):
                raise errors.bad_request("DeleteOptions must be a JSON object")
            options = body
        if request.query.get("dryRun") == "All":
            options["dryRun"] = ["All"]
        return options

    async def _scale(self, request: web.Request, t: Target, verb: str) -> web.Response:
        body = None
        if verb in ("update", "patch"):
            body = decode_body(await self._read(request), request.headers.get("Content-Type", ""))
        return _json(serve_scale(self.registry, t, verb, body))

    async def _create_only(self, request: web.Request, t: Target, verb: str,
                           user: UserInfo) -> web.Response:
        """The review APIs and `serviceaccounts/<name>/token`: POST only, nothing stored."""
        if verb != "create":
            raise errors.ApiError(405, "MethodNotAllowed",
                                  "the server does not allow this method on the requested "
                                  "resource")
        raw, content_type = await self._object_bytes(request)
        validation = _field_validation(request.query)
        if t.subresource == "token":
            body = token_request.decode(decode_body(raw, content_type), validation)
            return _json(token_request.create_token(self.registry.store, self.issuer,
                                                    t.namespace or "", t.name, body), 201)
        body, warnings = schema.decode(object_body(raw, content_type, t.resource),
                                       t.resource.api_version, t.resource.kind, validation)
        answer = self.reviews.create(t.resource, t.namespace or "", user, body)
        return _json(answer, 201, _warning_headers(warnings))

    # -- watch -----------------------------------------------------------------------------
    async def _watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        q = request.query
        response = web.StreamResponse(headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        try:
            tables.include_option(q)  # a bad includeObject is a 400, not an error mid-stream
            if self.faults.take_watch_gone():
                raise errors.gone("too old resource version: forced by the sandbox's faults")
            watcher = open_watch(self.registry, t.resource, t.namespace,
                                 label=q.get("labelSelector", ""),
                                 field=q.get("fieldSelector", ""),
                                 rv=q.get("resourceVersion", ""),
                                 send_initial=q.get("sendInitialEvents") == "true")
        except errors.ApiError as err:
            if err.code != 410:
                raise
            await response.prepare(request)
            await response.write(orjson.dumps({"type": "ERROR", "object": err.status()}) + b"\n")
            return response
        self.watchers.add(watcher)
        try:
            await response.prepare(request)
            timeout = _int(q, "timeoutSeconds") or random.randint(1800, 3600)  # noqa: S311
            stream = WatchStream(self.registry, t, watcher, response, timeout=timeout,
                                 bookmarks=q.get("allowWatchBookmarks") == "true",
                                 bookmark_interval=self.bookmark_interval,
                                 accept=request.headers.get("Accept", ""), query=q)
            await stream.run(request)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.watchers.discard(watcher)
            self.registry.store.unsubscribe(watcher.key, watcher.offer)
            watcher.close()
        return response

    # -- admin -----------------------------------------------------------------------------
    async def _admin(self, request: web.Request, parts: list[str]) -> web.Response:
        try:
            what = "/".join(parts)
            if what == "faults" and request.method == "GET":
                return _json(self.faults.config.to_json())
            if what == "faults" and request.method == "PUT":
                self.faults.configure(FaultConfig.parse(decode_body(
                    await self._read(request), request.content_type)))
                return _json(self.faults.config.to_json())
            if what == "faults/drop-watches" and request.method == "POST":
                dropped = list(self.watchers)
                for watcher in dropped:
                    watcher.close()
                return _json({"dropped": len(dropped)})
            if what == "compact" and request.method == "POST":
                self.registry.store.compact()
                return _json({"compactedResourceVersion": str(self.registry.store.compacted_rv)})
            if what == "audit" and request.method == "GET":
                return _json({"items": list(self.faults.audit)})
            if what == "audit" and request.method == "DELETE":
                self.faults.audit.clear()
                return _json({"items": []})
            raise errors.no_such_resource()
        except errors.ApiError as err:
            return _error(err)


def _target(parts: list[str]) -> Target | None:
    """The resource a path names, including create-only actions (`serviceaccounts/x/token`)."""
    target = parse_path(parts)
    if target is not None or len(parts) < 2:
        return target
    owner = parse_path(parts[:-1])
    if owner is None or not owner.name or owner.subresource:
        return None
    if parts[-1] not in owner.resource.actions:
        return None
    return Target(owner.resource, owner.namespace, owner.name, parts[-1])


def _int(q: Any, name: str) -> int:
    text = q.get(name, "")
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError as exc:
        raise errors.bad_request(f"{name}: invalid value {text!r}: must be an integer") from exc
    if value < 0:
        raise errors.bad_request(f"{name}: must not be negative")
    return value


def _field_validation(q: Any) -> str:
    value = q.get("fieldValidation", "Warn") or "Warn"
    if value not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(f"fieldValidation: invalid value {value!r}: must be one of "
                                 "Ignore, Warn, Strict")
    return str(value)


def _warning_headers(warnings: list[str]) -> dict[str, str] | None:
    if not warnings:
        return None
    return {"Warning": ", ".join('299 - "' + w.replace('"', '\\"') + '"' for w in warnings)}
