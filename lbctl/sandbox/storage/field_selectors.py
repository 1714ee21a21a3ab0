"""Field selectors: parsing, the field labels each resource accepts, and the values they match.

`?fieldSelector=` is parsed like apimachinery's `pkg/fields` (comma-separated `f=v`, `f==v` and
`f!=v` terms; `\\`, `,` and `=` in values escaped with a backslash). Each label is then put
through the resource's field-label conversion as kube registers it: an unknown label is a 400
BadRequest, and legacy names are renamed (pods' `spec.host`, events.k8s.io's `regarding.*`,
which select on the core Event fields because both groups share one store).

The values an object offers (`field_set`) follow each registry's `ToSelectableFields`. A label
kube accepts but never fills (pods' `status.podIPs`) reads as "" there too, so `=` on it
matches nothing but the empty value.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from lbctl.sandbox.errors import bad_request

Obj = Mapping[str, Any]

_META_LABELS = {"metadata.name": "metadata.name", "metadata.namespace": "metadata.namespace"}


def _identity(*labels: str) -> dict[str, str]:
    return {label: label for label in labels}


# Field-label conversions (pkg/apis/*/v1/conversion.go): accepted label -> selectable field.
# Resources that register none accept just _META_LABELS (DefaultMetaV1FieldSelectorConversion).
_LABELS: dict[str, dict[str, str]] = {
    "pods": {**_identity("metadata.name", "metadata.namespace", "spec.nodeName",
                         "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                         "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
                         "status.nominatedNodeName"),
             "spec.host": "spec.nodeName"},
    "nodes": _identity("metadata.name", "spec.unschedulable"),
    "namespaces": _identity("status.phase", "metadata.name"),
    "secrets": _identity("type", "metadata.namespace", "metadata.name"),
    "services": _identity("metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"),
    "replicationcontrollers": _identity("metadata.name", "metadata.namespace", "status.replicas"),
    "events": _identity("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                        "involvedObject.uid", "involvedObject.apiVersion",
                        "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                        "reportingComponent", "source", "type", "metadata.namespace",
                        "metadata.name"),
    "events.events.k8s.io": {
        **_identity("reason", "source", "type", "metadata.namespace", "metadata.name"),
        **{f"regarding.{f}": f"involvedObject.{f}" for f in (
            "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
        "reportingController": "reportingComponent",
    },
}


def field_labels(resource: str) -> Mapping[str, str]:
    """Accepted field label -> the field it selects on, for a resource key (`pods`,
    `events.events.k8s.io`, `deployments.apps`, as `resources.Resource.key` spells it)."""
    return _LABELS.get(resource, _META_LABELS)


def supported_fields(resource: str) -> frozenset[str]:
    """The field labels `?fieldSelector=` accepts for this resource."""
    return frozenset(field_labels(resource))


def _reject(label: str, supported: Collection[str]) -> str:
    if set(supported) == set(_META_LABELS):
        return (f'"{label}" is not a known field selector: '
                f'only "metadata.name", "metadata.namespace"')
    return f"field label not supported: {label}"


@dataclass(frozen=True)
class FieldSelector:
    """AND of `field=value` / `field!=value` terms; no terms selects everything."""

    terms: tuple[tuple[str, str, bool], ...] = ()
    """(field, value, negated)."""

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all((fields.get(f, "") == v) != neg for f, v, neg in self.terms)

    @property
    def empty(self) -> bool:
        return not self.terms

    def requires_exact_match(self, field: str) -> str | None:
        """The value `field` must equal, if a term pins it (lets a store look up one key)."""
        return next((v for f, v, neg in self.terms if f == field and not neg), None)

    def __str__(self) -> str:
        return ",".join(f"{f}{'!=' if neg else '='}{_escape(v)}" for f, v, neg in self.terms)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _split_terms(text: str) -> list[str]:
    """Split on commas not escaped by a backslash (the backslash stays in the term)."""
    terms: list[str] = []
    start, in_slash = 0, False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """The first operator splits; `!=` and `==` win over `=` at the same position."""
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def _unescape(value: str) -> str:
    out: list[str] = []
    in_slash = False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            # Go formats the rune with %v, i.e. as its number.
            raise bad_request(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(text: str, supported: Collection[str]) -> FieldSelector:
    """fields.ParseSelector, then the resource's label conversion; errors are 400 BadRequest.

    `supported` is `supported_fields(...)`, or `field_labels(...)` to also apply its renames.
    """
    parsed: list[tuple[str, str, bool]] = []
    for part in sorted(_split_terms(text)) if text else []:
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        lhs, op, rhs = split
        parsed.append((lhs, _unescape(rhs), op == "!="))
    renames: Mapping[str, str] = supported if isinstance(supported, Mapping) else {}
    terms: list[tuple[str, str, bool]] = []
    for field, value, negated in parsed:
        if field not in supported:
            raise bad_request(_reject(field, supported))
        terms.append((renames.get(field, field), value, negated))
    return FieldSelector(tuple(terms))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pod_fields(pod: Obj) -> dict[str, str]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    pod_ips = status.get("podIPs") or []
    return {
        "spec.nodeName": _text(spec.get("nodeName")),
        "spec.restartPolicy": _text(spec.get("restartPolicy")),
        "spec.schedulerName": _text(spec.get("schedulerName")),
        "spec.serviceAccountName": _text(spec.get("serviceAccountName")),
        "spec.hostNetwork": _text(bool(spec.get("hostNetwork"))),
        "status.phase": _text(status.get("phase")),
        "status.podIP": _text(pod_ips[0].get("ip") if pod_ips else status.get("podIP")),
        "status.nominatedNodeName": _text(status.get("nominatedNodeName")),
    }


def _event_fields(event: Obj) -> dict[str, str]:
    """EventToSelectableFields, from a core/v1 or an events.k8s.io/v1 shaped Event."""
    about = event.get("involvedObject") or event.get("regarding") or {}
    source = event.get("source") or event.get("deprecatedSource") or {}
    fields = {f"involvedObject.{f}": _text(about.get(f)) for f in (
        "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
    fields.update({
        "reason": _text(event.get("reason")),
        "reportingComponent": _text(event.get("reportingComponent")
                                    or event.get("reportingController")),
        "source": _text(source.get("component")),
        "type": _text(event.get("type")),
    })
    return fields


def _path(obj: Obj, path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return _text(node)


def _paths(*paths: str) -> Callable[[Obj], dict[str, str]]:
    return lambda obj: {p: _path(obj, p) for p in paths}


_FIELD_SETS: dict[str, Callable[[Obj], dict[str, str]]] = {
    "pods": _pod_fields,
    "nodes": lambda node: {"spec.unschedulable": _text(
        bool((node.get("spec") or {}).get("unschedulable")))},
    "namespaces": _paths("status.phase"),
    "secrets": _paths("type"),
    "services": _paths("spec.clusterIP", "spec.type"),
    "replicationcontrollers": lambda rc: {"status.replicas": _text(
        (rc.get("status") or {}).get("replicas") or 0)},
    "events": _event_fields,
    "events.events.k8s.io": _event_fields,
}


def field_set(resource: str, obj: Obj) -> dict[str, str]:
    """The selectable fields of an object of this resource.

    Keyed by the converted field names, plus the resource's alias labels (`spec.host`,
    `regarding.name`, ...), so a selector parsed with or without the renames matches alike.
    """
    meta = obj.get("metadata") or {}
    fields = {"metadata.name": _text(meta.get("name")),
              "metadata.namespace": _text(meta.get("namespace"))}
    extract = _FIELD_SETS.get(resource)
    if extract is not None:
        fields.update(extract(obj))
    for label, field in field_labels(resource).items():
        if label != field:
            fields[label] = fields.get(field, "")
    return fields
