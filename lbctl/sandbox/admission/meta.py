"""ObjectMeta validation shared by every resource, as kube-apiserver runs it.

Every create and update passes through core's `ValidateObjectMeta` / `ValidateObjectMetaUpdate`
(apimachinery's checks plus core's finalizer-name rule) before any resource-specific check, and
clients match the resulting 422 messages, so the checks, their order and their wording here
are upstream's. Resource admission modules call these first and append their own errors, built
with the two field-error helpers at the top (`invalid_each`, `required_one_of`).

Names follow one of four rules (`resources.Resource.name_rule`): "subdomain" (DNS-1123
subdomain: most resources, nodes), "dns1123label" (namespaces), "dns1035" (services) and
"path" (any string that is a safe URL path segment: RBAC roles and bindings).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from lbctl.sandbox.errors import (
    FieldError,
    forbidden,
    invalid,
    not_supported,
    required,
    too_long,
)
from lbctl.sandbox.name_formats import NAME_RULES, is_dns1123_label, is_label_value
from lbctl.sandbox.name_formats import is_qualified_name as _qualified

Obj = Mapping[str, Any]

ANNOTATIONS_SIZE_LIMIT = 256 * 1024
FIELD_IMMUTABLE = "field is immutable"
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})
_MANAGER_MAX, _SUBRESOURCE_MAX = 128, 256
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # utilrand's: no vowels, no 0/1/3
_GENERATED_SUFFIX, _MAX_NAME = 5, 63


def invalid_each(path: str, value: Any, messages: list[str]) -> list[FieldError]:
    """One "Invalid value" error per problem a format check (`name_formats.is_*`) found."""
    return [invalid(path, value, msg) for msg in messages]


def required_one_of(path: str, value: Any, supported: list[str]) -> list[FieldError]:
    """An enum field: required when empty, else one of `supported`."""
    if not value:
        return [required(path)]
    if value not in supported:
        return [not_supported(path, value, supported)]
    return []


def generate_name(prefix: str) -> str:
    """names.SimpleNameGenerator: the prefix cut to 58 bytes plus 5 random characters."""
    base = prefix[:_MAX_NAME - _GENERATED_SUFFIX]
    return base + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(_GENERATED_SUFFIX))


def validate_labels(labels: Mapping[str, str] | None, path: str) -> list[FieldError]:
    """metav1validation.ValidateLabels: keys are qualified names, values label values."""
    errs: list[FieldError] = []
    for key, value in (labels or {}).items():
        errs += invalid_each(path, key, _qualified(key))
        errs += invalid_each(path, value, is_label_value(value))
    return errs


def validate_annotations(annotations: Mapping[str, str] | None, path: str) -> list[FieldError]:
    """Keys are qualified names in any case; keys and values total at most 256 KiB."""
    errs: list[FieldError] = []
    size = 0
    for key, value in (annotations or {}).items():
        errs += invalid_each(path, key, _qualified(key.lower()))
        size += len(key.encode()) + len(str(value).encode())
    if size > ANNOTATIONS_SIZE_LIMIT:
        errs.append(too_long(path, ANNOTATIONS_SIZE_LIMIT))
    return errs


def validate_label_selector(selector: Obj | None, path: str) -> list[FieldError]:
    """metav1validation.ValidateLabelSelector for a `{matchLabels, matchExpressions}` spec."""
    if selector is None:
        return []
    errs = validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        at = f"{path}.matchExpressions[{i}]"
        op, values = expr.get("operator", ""), expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.append(required(f"{at}.values",
                                     "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(forbidden(f"{at}.values", "may not be specified when `operator` "
                                                      "is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(invalid(f"{at}.operator", op, "not a valid selector operator"))
        key = expr.get("key", "")
        errs += invalid_each(f"{at}.key", key, _qualified(key))
        for j, value in enumerate(values):
            errs += invalid_each(f"{at}.values[{j}]", value, is_label_value(value))
    return errs


def _group_version(api_version: str) -> tuple[str, str]:
    """schema.ParseGroupVersion; a malformed string yields an empty group and version."""
    if api_version in ("", "/"):
        return "", ""
    if api_version.count("/") == 0:
        return "", api_version
    if api_version.count("/") == 1:
        group, version = api_version.split("/")
        return group, version
    return "", ""


def _owner_reference(ref: Obj) -> dict[str, Any]:
    """An owner reference in Go struct field order, for the values errors print."""
    out = {k: ref.get(k, "") for k in ("apiVersion", "kind", "name", "uid")}
    out.update({k: ref[k] for k in ("controller", "blockOwnerDeletion") if ref.get(k) is not None})
    return out


def validate_owner_references(refs: Sequence[Obj] | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    first_controller = ""
    for ref in refs or []:
        group, version = _group_version(ref.get("apiVersion", ""))
        kind = ref.get("kind", "")
        if not version:
            errs.append(invalid(f"{path}.apiVersion", ref.get("apiVersion", ""),
                                "version must not be empty"))
        for key, value in (("kind", kind), ("name", ref.get("name", "")),
                           ("uid", ref.get("uid", ""))):
            if not value:
                errs.append(invalid(f"{path}.{key}", value, "must not be empty"))
        if (group, version, kind) == ("", "v1", "Event"):
            errs.append(invalid(path, _owner_reference(ref),
                                "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller") is True:
            this = f"{kind}/{ref.get('name', '')}"
            if first_controller:
                errs.append(invalid(path, [_owner_reference(r) for r in refs or []],
                                    "Only one reference can have Controller set to true. Found "
                                    f'"true" in references for {first_controller} and {this}'))
            else:
                first_controller = this
    return errs


def validate_finalizers(finalizers: Sequence[str] | None, path: str) -> list[FieldError]:
    """apimachinery's ValidateFinalizers (qualified names, not both orphan and foreground)."""
    errs = [invalid(path, f, msg) for f in finalizers or [] for msg in _qualified(f)]
    if {"orphan", "foregroundDeletion"} <= set(finalizers or []):
        errs.append(invalid(path, list(finalizers or []),
                            "finalizer orphan and foregroundDeletion cannot be both set"))
    return errs


def _kube_finalizer_names(finalizers: Sequence[str] | None, path: str) -> list[FieldError]:
    """core's validateKubeFinalizerName: an unprefixed finalizer must be a standard one."""
    return [invalid(f"{path}[{i}]", f,
                    "name is neither a standard finalizer name nor is it fully qualified")
            for i, f in enumerate(finalizers or [])
            if "/" not in f and f not in STANDARD_FINALIZERS]


def _managed_fields(entries: Sequence[Obj] | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, entry in enumerate(entries or []):
        at = f"{path}[{i}]"
        if entry.get("operation") not in ("Apply", "Update"):
            errs.append(invalid(f"{at}.operation", entry.get("operation", ""),
                                "must be `Apply` or `Update`"))
        if entry.get("fieldsType") not in (None, "", "FieldsV1"):
            errs.append(invalid(f"{at}.fieldsType", entry["fieldsType"], "must be `FieldsV1`"))
        if len(str(entry.get("manager", "")).encode()) > _MANAGER_MAX:
            errs.append(too_long(f"{at}.manager", _MANAGER_MAX))
        if len(str(entry.get("subresource", "")).encode()) > _SUBRESOURCE_MAX:
            errs.append(too_long(f"{at}.subresource", _SUBRESOURCE_MAX))
    return errs


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _validate_meta_fields(meta: Obj, *, on_create: bool) -> list[FieldError]:
    """The field checks create and update share; only create runs `ValidateFinalizers`."""
    errs = validate_labels(meta.get("labels"), "metadata.labels")
    errs += validate_annotations(meta.get("annotations"), "metadata.annotations")
    errs += validate_owner_references(meta.get("ownerReferences"), "metadata.ownerReferences")
    if on_create:
        errs += validate_finalizers(meta.get("finalizers"), "metadata.finalizers")
    errs += _managed_fields(meta.get("managedFields"), "metadata.managedFields")
    errs += _kube_finalizer_names(meta.get("finalizers"), "metadata.finalizers")
    return errs


def validate_object_meta(obj: Obj, namespaced: bool, name_rule: str) -> list[FieldError]:
    """core ValidateObjectMeta on create, after generateName has been turned into a name.

    `name_rule` is one of "subdomain", "dns1123label", "dns1035", "path".
    """
    name_errors = NAME_RULES[name_rule]
    meta = _meta(obj)
    name, generate = meta.get("name") or "", meta.get("generateName") or ""
    errs = invalid_each("metadata.generateName", generate,
                        name_errors(generate, True) if generate else [])
    if not name:
        errs.append(required("metadata.name", "name or generateName is required"))
    else:
        errs += invalid_each("metadata.name", name, name_errors(name, False))
    namespace = meta.get("namespace") or ""
    if namespaced and not namespace:
        errs.append(required("metadata.namespace"))
    elif namespaced:
        errs += invalid_each("metadata.namespace", namespace, is_dns1123_label(namespace))
    elif namespace:
        errs.append(forbidden("metadata.namespace", "not allowed on this type"))
    generation = meta.get("generation") or 0
    if generation < 0:
        errs.append(invalid("metadata.generation", generation,
                            "must be greater than or equal to 0"))
    return errs + _validate_meta_fields(meta, on_create=True)


def _go_string_slice(values: Sequence[str]) -> str:
    """Go's %#v of a []string."""
    return "[]string{" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "}"


_IMMUTABLE = ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
              "deletionGracePeriodSeconds")


def _immutable_value(meta: Obj, key: str) -> Any:
    """The value as Go compares and prints it: "" for unset strings, null for unset pointers
    and zero timestamps."""
    value = meta.get(key)
    if key == "deletionGracePeriodSeconds":
        return value
    if key.endswith("Timestamp"):
        return value or None
    return value or ""


def validate_object_meta_update(old: Obj, new: Obj) -> list[FieldError]:
    """core ValidateObjectMetaUpdate.

    Run it on `prepare_meta_for_update(old, new)`: kube fills in what an update may omit before
    validating, and expects `metadata.resourceVersion` set (an unconditional update takes the
    stored object's), so a missing one here is reported as upstream reports it.
    """
    old_meta, new_meta = _meta(old), _meta(new)
    errs: list[FieldError] = []
    if old_meta.get("deletionTimestamp"):
        added = set(new_meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
        extra = sorted(added)
        if extra:
            errs.append(forbidden("metadata.finalizers",
                                  "no new finalizers can be added if the object is being deleted,"
                                  f" found new finalizers {_go_string_slice(extra)}"))
    if not new_meta.get("resourceVersion"):
        errs.append(invalid("metadata.resourceVersion", new_meta.get("resourceVersion") or "",
                            "must be specified for an update"))
    new_generation = new_meta.get("generation") or 0
    if new_generation < (old_meta.get("generation") or 0):
        errs.append(invalid("metadata.generation", new_generation, "must not be decremented"))
    for key in _IMMUTABLE:
        value = _immutable_value(new_meta, key)
        if value != _immutable_value(old_meta, key):
            errs.append(invalid(f"metadata.{key}", value, FIELD_IMMUTABLE))
    return errs + _validate_meta_fields(new_meta, on_create=False)


def prepare_meta_for_update(old: Obj, new: Obj) -> dict[str, Any]:
    """A copy of `new` with what rest.BeforeUpdate carries over from `old` before validating.

    An update may omit uid (kept), and may never change creationTimestamp, deletionTimestamp
    or drop deletionGracePeriodSeconds once set. (BeforeUpdate also resets generation to the
    stored one before the strategy bumps it; that stays with the store's generation logic.)
    """
    old_meta, meta = _meta(old), dict(_meta(new))
    if not meta.get("uid") and old_meta.get("uid"):
        meta["uid"] = old_meta["uid"]
    for key in ("creationTimestamp", "deletionTimestamp"):
        if old_meta.get(key):
            meta[key] = old_meta[key]
    if old_meta.get("deletionGracePeriodSeconds") is not None \
            and meta.get("deletionGracePeriodSeconds") is None:
        meta["deletionGracePeriodSeconds"] = old_meta["deletionGracePeriodSeconds"]
    return {**new, "metadata": meta}
