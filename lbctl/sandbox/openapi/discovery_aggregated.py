"""Aggregated discovery: every group, version and resource in one `APIGroupDiscoveryList`.

kubectl >= 1.27 (client-go's discovery client) first asks `/api` and `/apis` for
`application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList` (v2beta1 before 1.30)
and only falls back to one request per group-version when the answer's Content-Type is plain
JSON. The client tells the formats apart by that Content-Type, so `negotiate` returns the media
type to answer with together with the version to build. Built from the resource table, like the
plain discovery documents.
"""

from __future__ import annotations

from typing import Any

from ..storage.resources import ACTION_KINDS, RESOURCES, Resource, group_versions

GROUP = "apidiscovery.k8s.io"
VERSIONS = ("v2", "v2beta1")
SUB_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"]}
SUB_KIND = {"scale": ("autoscaling", "v1", "Scale")}


def subresources(res: Resource) -> list[tuple[str, list[str], tuple[str, str, str]]]:
    """(name, verbs, (group, version, kind)) of each subresource and create-only action."""
    own = (res.group, res.version, res.kind)
    out = [(sub, SUB_VERBS[sub], SUB_KIND.get(sub, own)) for sub in sorted(res.subresources)]
    out += [(action, ["create"], ACTION_KINDS[action]) for action in sorted(res.actions)]
    return out


def negotiate(accept: str) -> str | None:
    """The aggregated discovery version the first fitting Accept range asks for, or None."""
    for clause in accept.split(","):
        mime, *raw = (p.strip() for p in clause.split(";"))
        params = dict(item.partition("=")[::2] for item in raw)
        if mime.lower() not in ("application/json", "application/*", "*/*"):
            continue
        if not params.get("as"):
            return None  # plain JSON comes first
        if (params.get("as") == "APIGroupDiscoveryList" and params.get("g") == GROUP
                and params.get("v") in VERSIONS):
            return params["v"]
    return None


def content_type(version: str) -> str:
    return f"application/json;g={GROUP};v={version};as=APIGroupDiscoveryList"


def _kind(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


def resource_entry(res: Resource) -> dict[str, Any]:
    """One `APIResourceDiscovery`, its subresources nested."""
    entry: dict[str, Any] = {
        "resource": res.plural, "responseKind": _kind(res.group, res.version, res.kind),
        "scope": "Namespaced" if res.namespaced else "Cluster",
        "singularResource": res.singular, "verbs": list(res.verbs)}
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.categories:
        entry["categories"] = list(res.categories)
    subs = [{"subresource": name, "responseKind": _kind(*gvk), "verbs": verbs}
            for name, verbs, gvk in subresources(res)]
    if subs:
        entry["subresources"] = subs
    return entry


def _group(name: str) -> dict[str, Any]:
    versions = [{"version": v,
                 "resources": [resource_entry(r) for r in sorted(
                     (r for r in RESOURCES if r.group == name and r.version == v),
                     key=lambda r: r.plural)],
                 "freshness": "Current"}
                for g, v in group_versions() if g == name]
    meta: dict[str, Any] = {"creationTimestamp": None}
    if name:
        meta = {"name": name, **meta}
    return {"metadata": meta, "versions": versions}


def discovery_list(legacy: bool, version: str = "v2") -> dict[str, Any]:
    """`/api` (legacy: the core group only) or `/apis` (every named group)."""
    names: list[str] = []
    for g, _ in group_versions():
        if (g == "") == legacy and g not in names:
            names.append(g)
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"{GROUP}/{version}",
            "metadata": {}, "items": [_group(n) for n in names]}
