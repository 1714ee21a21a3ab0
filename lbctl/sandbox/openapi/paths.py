"""The REST operations of each served resource, as OpenAPI paths (v2 and v3 spellings).

Clients read more than schemas from these paths: kubectl >= 1.27 decides whether it may leave
field validation to the server by finding, in `/openapi/v3/<group-version>`, the PATCH operation
tagged `x-kubernetes-group-version-kind` for the kind and checking it takes a `fieldValidation`
query parameter; `kubectl apply` checks that the same PATCH accepts strategic merge patches.
Operations are derived from the resource table, so every served resource is described and
only the verbs and patch types the sandbox implements are listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..storage.resources import ACTION_KINDS, Resource
from . import spec as openapi

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json")
SCALE = ("autoscaling", "v1", "Scale")

QUERY_DOCS = {
    "pretty": "If 'true', then the output is pretty printed. Defaults to 'false' unless the "
              "user-agent indicates a browser or command-line HTTP tool (curl and wget).",
    "dryRun": "When present, indicates that modifications should not be persisted. An invalid "
              "or unrecognized dryRun directive will result in an error response and no further "
              "processing of the request. Valid values are: - All: all dry run stages will be "
              "processed",
    "fieldManager": "fieldManager is a name associated with the actor or entity that is making "
                    "these changes.",
    "fieldValidation": "fieldValidation instructs the server on how to handle objects in the "
                       "request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid "
                       "values are: - Ignore: unknown fields are silently dropped. - Warn: a "
                       "warning is sent for each unknown field that is dropped (the default). "
                       "- Strict: the request fails with a BadRequest error if any unknown "
                       "fields would be dropped or any duplicate fields are present.",
    "labelSelector": "A selector to restrict the list of returned objects by their labels. "
                     "Defaults to everything.",
    "fieldSelector": "A selector to restrict the list of returned objects by their fields. "
                     "Defaults to everything.",
    "limit": "limit is a maximum number of responses to return for a list call.",
    "continue": "The continue option should be set when retrieving more results from the "
                "server.",
    "resourceVersion": "resourceVersion sets a constraint on what resource versions a request "
                       "may be served from.",
    "resourceVersionMatch": "resourceVersionMatch determines how resourceVersion is applied "
                            "to list calls.",
    "watch": "Watch for changes to the described resources and return them as a stream of add, "
             "update, and remove notifications.",
    "allowWatchBookmarks": "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
    "sendInitialEvents": "`sendInitialEvents=true` may be set together with `watch=true`.",
    "timeoutSeconds": "Timeout for the list/watch call.",
    "gracePeriodSeconds": "The duration in seconds before the object should be deleted.",
    "propagationPolicy": "Whether and how garbage collection will be performed.",
}
_QUERY_TYPES = {"limit": "integer", "timeoutSeconds": "integer", "gracePeriodSeconds": "integer",
                "watch": "boolean", "allowWatchBookmarks": "boolean",
                "sendInitialEvents": "boolean"}
_WRITE = ("dryRun", "fieldManager", "fieldValidation")
_LIST = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
         "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds",
         "watch")
_DELETE = ("dryRun", "gracePeriodSeconds", "propagationPolicy")
_DESCRIPTIONS = {"get": "read the specified {kind}", "list": "list or watch objects of kind {kind}",
                 "post": "create a {kind}", "put": "replace the specified {kind}",
                 "patch": "partially update the specified {kind}",
                 "delete": "delete a {kind}", "deletecollection": "delete collection of {kind}"}


@dataclass(frozen=True)
class Operation:
    method: str  # get | put | post | patch | delete
    action: str  # x-kubernetes-action
    operation_id: str
    gvk: tuple[str, str, str]
    response: str  # definition name
    body: str = ""  # definition name; "" for none
    query: tuple[str, ...] = ()


@dataclass(frozen=True)
class PathItem:
    path: str
    params: tuple[str, ...]  # path parameters, in order
    operations: tuple[Operation, ...]
    tag: str


def _camel(text: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in text.replace(".", "-").split("-") if p)


def _kind_def(group: str, version: str, kind: str) -> str:
    api_version = f"{group}/{version}" if group else version
    return openapi.definition_name(api_version, kind) or ""


def path_items(res: Resource) -> list[PathItem]:
    """The paths kube-apiserver publishes for `res`: collection, object, subresources."""
    group_id = _camel(res.group.removesuffix(".k8s.io") if res.group else "core")
    gv_id = group_id + _camel(res.version)  # listRbacAuthorizationV1NamespacedRole
    tag = f"{group_id[:1].lower()}{group_id[1:]}_{res.version}"  # rbacAuthorization_v1
    prefix = f"/apis/{res.group}/{res.version}" if res.group else f"/api/{res.version}"
    scope = "/namespaces/{namespace}" if res.namespaced else ""
    scoped = ("namespace",) if res.namespaced else ()
    noun = ("Namespaced" if res.namespaced else "") + res.kind
    gvk = (res.group, res.version, res.kind)
    obj, listed = _kind_def(*gvk), _kind_def(res.group, res.version, res.list_kind)
    status = META + "Status"
    if res.virtual:  # the review APIs: POST only, nothing stored
        return [PathItem(f"{prefix}{scope}/{res.plural}", scoped, (
            Operation("post", "post", f"create{gv_id}{noun}", gvk, obj, obj, _WRITE),), tag)]
    items = [PathItem(f"{prefix}{scope}/{res.plural}", scoped, (
        Operation("get", "list", f"list{gv_id}{noun}", gvk, listed, query=_LIST),
        Operation("post", "post", f"create{gv_id}{noun}", gvk, obj, obj, _WRITE),
        Operation("delete", "deletecollection", f"deleteCollection{gv_id}{noun}", gvk, status,
                  META + "DeleteOptions", _DELETE + _LIST)), tag)]
    if res.namespaced:
        items.append(PathItem(f"{prefix}/{res.plural}", (), (Operation(
            "get", "list", f"list{gv_id}{res.kind}ForAllNamespaces", gvk, listed,
            query=_LIST),), tag))
    named = (*scoped, "name")
    items.append(PathItem(f"{prefix}{scope}/{res.plural}/{{name}}", named, (
        Operation("get", "get", f"read{gv_id}{noun}", gvk, obj),
        Operation("put", "put", f"replace{gv_id}{noun}", gvk, obj, obj, _WRITE),
        Operation("patch", "patch", f"patch{gv_id}{noun}", gvk, obj, META + "Patch",
                  (*_WRITE, "force")),
        Operation("delete", "delete", f"delete{gv_id}{noun}", gvk, obj,
                  META + "DeleteOptions", _DELETE)), tag))
    for sub in sorted(res.subresources):
        sub_gvk = SCALE if sub == "scale" else gvk
        shown = _kind_def(*sub_gvk)
        op_noun = noun + _camel(sub)
        items.append(PathItem(f"{prefix}{scope}/{res.plural}/{{name}}/{sub}", named, (
            Operation("get", "get", f"read{gv_id}{op_noun}", sub_gvk, shown),
            Operation("put", "put", f"replace{gv_id}{op_noun}", sub_gvk, shown, shown, _WRITE),
            Operation("patch", "patch", f"patch{gv_id}{op_noun}", sub_gvk, shown,
                      META + "Patch", (*_WRITE, "force"))), tag))
    for action in sorted(res.actions):  # serviceaccounts/{name}/token: TokenRequest
        taken = _kind_def(*ACTION_KINDS[action])
        items.append(PathItem(f"{prefix}{scope}/{res.plural}/{{name}}/{action}", named, (
            Operation("post", "post", f"create{gv_id}{noun}{_camel(action)}",
                      ACTION_KINDS[action], taken, taken, _WRITE),), tag))
    return items


def referenced(items: list[PathItem]) -> set[str]:
    """The definitions the operations of `items` take or return."""
    return {name for item in items for op in item.operations
            for name in (op.response, op.body) if name}


def _param_schema(name: str) -> dict[str, Any]:
    return {"type": _QUERY_TYPES.get(name, "string"), "uniqueItems": True}


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "type": "string",
            "uniqueItems": True,
            "description": "object name and auth scope, such as for teams and projects"
            if name == "namespace" else f"name of the {name}"}


def _gvk(op: Operation) -> dict[str, str]:
    return {"group": op.gvk[0], "version": op.gvk[1], "kind": op.gvk[2]}


def render_v3(item: PathItem) -> dict[str, Any]:
    """A v3 PathItem object; refs point at `#/components/schemas/`."""
    out: dict[str, Any] = {"parameters": [
        {**{k: v for k, v in _path_param(p).items() if k not in ("type", "uniqueItems")},
         "schema": {"type": "string", "uniqueItems": True}} for p in item.params] + [
        {"name": "pretty", "in": "query", "description": QUERY_DOCS["pretty"],
         "schema": _param_schema("pretty")}]}
    for op in item.operations:
        ref = {"$ref": f"#/components/schemas/{op.response}"}
        spec: dict[str, Any] = {
            "tags": [item.tag], "description": _DESCRIPTIONS[op.action].format(kind=op.gvk[2]),
            "operationId": op.operation_id,
            "parameters": [{"name": q, "in": "query", "description": QUERY_DOCS.get(q, q),
                            "schema": _param_schema(q)} for q in op.query],
            "responses": {"200": {"description": "OK", "content": {
                "application/json": {"schema": ref}, "application/yaml": {"schema": ref}}},
                "401": {"description": "Unauthorized"}},
            "x-kubernetes-action": op.action, "x-kubernetes-group-version-kind": _gvk(op)}
        if op.body:
            body_ref = {"$ref": f"#/components/schemas/{op.body}"}
            types = PATCH_TYPES if op.method == "patch" else ("*/*",)
            spec["requestBody"] = {"content": {t: {"schema": body_ref} for t in types},
                                   "required": op.method != "delete"}
        if op.method == "post":
            spec["responses"]["201"] = {"description": "Created", "content": {
                "application/json": {"schema": ref}}}
        out[op.method] = spec
    return out


def render_v2(item: PathItem) -> dict[str, Any]:
    """A v2 (swagger 2.0) PathItem object; refs point at `#/definitions/`."""
    out: dict[str, Any] = {"parameters": [_path_param(p) for p in item.params] + [
        {"name": "pretty", "in": "query", "type": "string", "uniqueItems": True,
         "description": QUERY_DOCS["pretty"]}]}
    for op in item.operations:
        params: list[dict[str, Any]] = []
        if op.body:
            params.append({"name": "body", "in": "body", "required": op.method != "delete",
                           "schema": {"$ref": f"#/definitions/{op.body}"}})
        params += [{"name": q, "in": "query", "description": QUERY_DOCS.get(q, q),
                    **_param_schema(q)} for q in op.query]
        out[op.method] = {
            "tags": [item.tag], "description": _DESCRIPTIONS[op.action].format(kind=op.gvk[2]),
            "operationId": op.operation_id,
            "consumes": list(PATCH_TYPES) if op.method == "patch" else ["*/*"],
            "produces": ["application/json", "application/yaml"], "schemes": ["https"],
            "parameters": params,
            "responses": {"200": {"description": "OK",
                                  "schema": {"$ref": f"#/definitions/{op.response}"}},
                          "401": {"description": "Unauthorized"}},
            "x-kubernetes-action": op.action, "x-kubernetes-group-version-kind": _gvk(op)}
    return out
