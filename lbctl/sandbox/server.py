"""The HTTP face of the sandbox: kube-apiserver's REST API on aiohttp.

One catch-all handler parses the URL into a Target, authenticates, consults the fault hooks,
runs the verb through the registry and writes either the object or a `Status`; every request is
audited. Watches stream chunked JSON lines (one event per line) with bookmarks and timeouts.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
from aiohttp import web

from . import discovery, errors, negotiation, schema
from .faults import FaultConfig, Faults
from .listing import list_objects, open_watch
from .patch import json_patch, merge_patch, strategic_merge_patch
from .registry import Registry
from .requests import MAX_BODY, Target, decode_body, object_body, parse_path, patch_type, verb_of
from .store import Obj
from .strategic_merge_lists import go_format
from .watch import Watcher
from .watch_stream import WatchStream

JSON = "application/json"
ANONYMOUS = "system:anonymous"
AUDIT_NAME = web.RequestKey("audit_name", str)
"""The created object's name (it may come from generateName), for the audit log."""


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON,
                        headers=headers)


def _error(err: errors.ApiError) -> web.Response:
    return _json(err.status(), err.code, err.headers or None)


class ApiServer:
    """Request handling over a Registry; `app()` gives the aiohttp application."""

    def __init__(self, registry: Registry, admin_token: str, *,
                 bookmark_interval: float = 10.0, faults: Faults | None = None,
                 anonymous_is_admin: bool = True) -> None:
        self.registry = registry
        self.anonymous_is_admin = anonymous_is_admin
        self.admin_token = admin_token
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
        identity = self._authenticate(request)
        if identity is None:
            return _error(errors.ApiError(401, "Unauthorized", "Unauthorized"))
        parts = [p for p in request.path.split("/") if p]
        if parts and parts[0] == "sandbox":
            return await self._admin(request, parts[1:])
        static = self._static(request, parts)
        if static is not None:
            return static
        target = parse_path(parts)
        if target is None:
            return _error(errors.no_such_resource())
        watch = request.query.get("watch") in ("true", "1")
        verb = verb_of(request.method, target, watch)
        code = 200
        try:
            injected = self.faults.injected_error(verb, target.resource.plural)
            if injected is not None:
                raise injected
            if verb == "watch":
                return await self._watch(request, target)
            response = await self._serve(request, target, verb)
            code = response.status
            return response
        except errors.ApiError as err:
            code = err.code
            return _error(err)
        finally:
            self.faults.record(identity, verb, target.resource.plural, target.subresource,
                               target.namespace or "", target.name or request.get(AUDIT_NAME, ""),
                               code)

    def _authenticate(self, request: web.Request) -> str | None:
        """The caller's identity, or None for a bad credential (401).

        A presented bearer token must be valid. With no credential at all the caller is
        `system:anonymous`; on plain HTTP it acts with full rights, like kube-apiserver's old
        insecure port, because kubectl never sends credentials over plain HTTP.
        """
        header = request.headers.get("Authorization", "")
        if not header:
            return ANONYMOUS if self.anonymous_is_admin else None
        if header == f"Bearer {self.admin_token}":
            return "admin"
        return None

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
            body = object_body(await self._read(request), request.content_type, res)
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
                "Content-Type", ""), _field_validation(q))
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

    def _patch(self, t: Target, raw: bytes, content_type: str, validation: str) -> web.Response:
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

        obj = self.registry.update_with(res, t.namespace or "", t.name, t.subresource, change)
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
        """Deployments' scale subresource (autoscaling/v1 Scale)."""
        reg, res, ns = self.registry, t.resource, t.namespace or ""
        if verb in ("update", "patch"):
            body = decode_body(await self._read(request), request.headers.get("Content-Type", ""))
            current = _scale_of(reg.get(res, ns, t.name))
            if verb == "patch":
                body = merge_patch(current, body)
            replicas = (body.get("spec") or {}).get("replicas") if isinstance(body, dict) else None
            if not isinstance(replicas, int) or replicas < 0:
                raise errors.invalid_object("Scale", "autoscaling", t.name, [errors.invalid(
                    "spec.replicas", replicas, "must be greater than or equal to 0")])
            reg.update_with(res, ns, t.name, "", lambda obj: {
                **obj, "spec": {**obj.get("spec", {}), "replicas": replicas}})
        return _json(_scale_of(reg.get(res, ns, t.name)))

    # -- watch -----------------------------------------------------------------------------
    async def _watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        q = request.query
        response = web.StreamResponse(headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        try:
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
                                 bookmark_interval=self.bookmark_interval)
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


def _scale_of(obj: Obj) -> Obj:
    meta = obj["metadata"]
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace", ""),
                         "uid": meta["uid"], "resourceVersion": meta["resourceVersion"],
                         "creationTimestamp": meta.get("creationTimestamp")},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))}}
