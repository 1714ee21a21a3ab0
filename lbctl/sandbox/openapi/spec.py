"""The Kubernetes 1.33 OpenAPI definitions, compiled once into small typed nodes.

kube-apiserver decodes bodies into Go structs and patches them following Go struct tags. The
sandbox has no Go types, so the published OpenAPI schema of the same release stands in for them:
the strict 1.33 variant shipped by the `kubernetes-validate` package gives every field's name and
type, and carries the struct tags as `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`.

Reading the 1.4 MB definitions file and compiling a definition into `Node`s happen lazily, once
per process (under a lock, so threads never see a half-compiled node); the compiled nodes are the
only cache. `lbctl.sandbox.openapi.schema` decodes with them and
`lbctl.sandbox.encoding.strategic_merge` patches with them.
"""

from __future__ import annotations

import functools
import importlib.resources
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

SCHEMA_DIR = "kubernetes-json-schema/v1.33.0-local-strict"

# Node kinds: what a JSON value must look like, and which Go type decodes it.
STRUCT, MAP, ARRAY, STRING, INT, FLOAT, BOOL = range(7)
INT_OR_STRING, QUANTITY, TIME, MICRO_TIME, BYTES, ANY = range(7, 13)

_SPECIAL = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": (INT_OR_STRING, "intstr.IntOrString"),
    "io.k8s.apimachinery.pkg.api.resource.Quantity": (QUANTITY, "resource.Quantity"),
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": (TIME, "v1.Time"),
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": (MICRO_TIME, "v1.MicroTime"),
}
_SCALARS = {"boolean": (BOOL, "bool"), "number": (FLOAT, "float64")}


class FieldPatch(NamedTuple):
    """A field's patch tags: strategy "" | merge | replace | retainKeys | merge,retainKeys."""

    strategy: str = ""
    merge_key: str = ""


NO_PATCH = FieldPatch()


class Node:
    """One compiled schema node: a Go type as the decoder and the patcher see it."""

    __slots__ = ("elem", "fields", "go_type", "kind", "name", "patch")

    def __init__(self, kind: int, go_type: str, name: str = "") -> None:
        self.kind = kind
        self.go_type = go_type  # as Go prints it in errors: "v1.ServiceSpec", "[]string", "int32"
        self.name = name  # bare struct name ("ServicePort"), for STRUCT nodes
        self.fields: dict[str, Node] = {}
        self.patch: dict[str, FieldPatch] = {}
        self.elem: Node | None = None  # ARRAY item or MAP value

    def child(self, key: str) -> tuple[Node | None, FieldPatch]:
        """The node of field `key` (struct) or of any value (map), with the field's patch tags."""
        if self.kind == STRUCT:
            return self.fields.get(key), self.patch.get(key, NO_PATCH)
        if self.kind == MAP:
            return self.elem, NO_PATCH
        return None, NO_PATCH

    def __repr__(self) -> str:
        return f"Node({self.go_type})"


@functools.cache
def _definitions() -> dict[str, dict[str, Any]]:
    package = importlib.resources.files("kubernetes_validate")
    path = package.joinpath(SCHEMA_DIR, "_definitions.json")
    defs: dict[str, dict[str, Any]] = orjson.loads(path.read_bytes())["$defs"]
    return defs


@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in _definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            index.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return index


def definition_name(api_version: str, kind: str) -> str | None:
    """("v1", "Service") -> "io.k8s.api.core.v1.Service"; None when 1.33 has no such kind."""
    group, _, version = api_version.rpartition("/")
    return _gvk_index().get((group, version, kind))


def definition(name: str) -> dict[str, Any]:
    """The raw schema of a definition, e.g. "io.k8s.api.core.v1.ServiceSpec" (KeyError if none)."""
    return _definitions()[name]


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a `$ref` (`#/$defs/<name>`) to the definition it names."""
    ref = schema.get("$ref")
    return definition(ref.rsplit("/", 1)[1]) if ref else schema


_nodes: dict[str, Node] = {}  # complete nodes only: readers never see one half-compiled
_compiling = threading.Lock()


def node(name: str) -> Node:
    """The compiled node of a definition (compiled on first use, then cached)."""
    found = _nodes.get(name)
    if found is None:
        with _compiling:
            fresh: dict[str, Node] = {}
            found = _node(name, fresh)
            _nodes.update(fresh)
    return found


def _node(name: str, fresh: dict[str, Node]) -> Node:
    found = _nodes.get(name) or fresh.get(name)
    if found is not None:
        return found
    schema = definition(name)
    if name in _SPECIAL:
        found = fresh[name] = Node(*_SPECIAL[name])
    elif "properties" in schema:
        parts = name.rsplit(".", 2)
        # registered before its fields are compiled: definitions may be recursive
        found = fresh[name] = Node(STRUCT, f"{parts[-2]}.{parts[-1]}", parts[-1])
        for field, sub in schema["properties"].items():
            found.fields[field] = _compile(sub, fresh)
            tags = FieldPatch(sub.get("x-kubernetes-patch-strategy", ""),
                              sub.get("x-kubernetes-patch-merge-key", ""))
            if tags != NO_PATCH:
                found.patch[field] = tags
    else:
        found = fresh[name] = _compile(schema, fresh)
    return found


def _compile(schema: dict[str, Any], fresh: dict[str, Node]) -> Node:
    ref = schema.get("$ref")
    if ref:
        return _node(ref.rsplit("/", 1)[1], fresh)
    kinds = schema.get("type")
    if isinstance(kinds, list):
        kinds = next((k for k in kinds if k != "null"), None)
    if kinds == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            value = _compile(extra, fresh)
            return _container(MAP, f"map[string]{value.go_type}", value)
        return Node(ANY, "interface {}")  # free-form: RawExtension, FieldsV1
    if kinds == "array":
        item = _compile(schema.get("items") or {}, fresh)
        return _container(ARRAY, f"[]{item.go_type}", item)
    if kinds == "string":
        fmt = schema.get("format")
        return Node(BYTES, "[]uint8") if fmt == "byte" else Node(STRING, "string")
    if kinds == "integer":
        return Node(INT, "int32" if schema.get("format") == "int32" else "int64")
    if kinds in _SCALARS:
        return Node(*_SCALARS[kinds])
    return Node(ANY, "interface {}")


def _container(kind: int, go_type: str, elem: Node) -> Node:
    out = Node(kind, go_type)
    out.elem = elem
    return out


def root(api_version: str, kind: str) -> Node | None:
    """The node of a top-level kind, or None for kinds 1.33 does not define (e.g. CRDs)."""
    name = definition_name(api_version, kind)
    return None if name is None else node(name)


def patch_info(api_version: str, kind: str, path: Sequence[str]) -> FieldPatch:
    """Patch tags of the field at `path`, e.g. (v1, Service, [spec, ports]) -> (merge, port).

    List items and map values are stepped through transparently, so
    ["spec", "template", "spec", "containers", "ports"] names the container ports field.
    """
    current = root(api_version, kind)
    tags = NO_PATCH
    for key in path:
        while current is not None and current.kind == ARRAY:
            current = current.elem
        if current is None:
            return NO_PATCH
        current, tags = current.child(key)
    return tags
