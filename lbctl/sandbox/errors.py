"""API errors as kube-apiserver writes them: `Status` objects and field errors.

Clients (kubectl, the official Python client, our controller) read `reason`, `code` and
`details.causes`, and users read `message`; so both are built exactly the way apimachinery's
`k8s.io/apimachinery/pkg/api/errors` and `pkg/util/validation/field` build them.

    ApiError                  any non-2xx answer; `.status()` is the wire `Status`
     |- invalid(...)          422 with one cause per FieldError
     |- not_found / already_exists / conflict / gone / bad_request / ...

A `FieldError` is one bad field (`spec.ports[0].nodePort`) with a type ("Forbidden",
"Invalid value", ...), the bad value and a detail, rendered like Go's `field.Error`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# field.ErrorType: the cause `reason` and its human-readable label.
ERROR_TYPES: dict[str, str] = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}
_NO_VALUE_TYPES = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong",
                   "InternalError"}
_UNSET = object()


def go_value(value: Any) -> str:
    """Format a bad value the way Go's `%v`/`%q` do in field errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[]string{" + ", ".join(go_value(v) for v in value) + "}"
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class FieldError:
    """One invalid field, like apimachinery's `field.Error`."""

    type: str
    field: str
    value: Any = _UNSET
    detail: str = ""

    def body(self) -> str:
        label = ERROR_TYPES[self.type]
        if self.type in _NO_VALUE_TYPES or self.value is _UNSET:
            text = label
        else:
            text = f"{label}: {go_value(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, detail=detail)


def invalid(path: str, value: Any, detail: str = "") -> FieldError:
    return FieldError("FieldValueInvalid", path, value, detail)


def forbidden(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueForbidden", path, detail=detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", path, value)


def not_supported(path: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(json.dumps(s) for s in supported)
    return FieldError("FieldValueNotSupported", path, value, detail)


def too_long(path: str, max_len: int) -> FieldError:
    return FieldError("FieldValueTooLong", path, detail=f"may not be more than {max_len} bytes")


def aggregate(errors: list[FieldError]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message, or `[a, b]` (duplicates dropped)."""
    msgs: list[str] = []
    for err in errors:
        text = str(err)
        if text not in msgs:
            msgs.append(text)
    return msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"


@dataclass
class ApiError(Exception):
    """A failed request, carried to the HTTP layer and written as a `Status` object."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        }
        if self.reason:  # Go omits an empty reason (e.g. raw internal errors)
            body["reason"] = self.reason
        if self.details:
            body["details"] = self.details
        return body


def _details(resource: str, group: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return details


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    _details(resource, group, name))


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists",
                    f'{_qualified(resource, group)} "{name}" already exists',
                    _details(resource, group, name))


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    what = f'{_qualified(resource, group)} "{name}"'
    return ApiError(409, "Conflict", f"Operation cannot be fulfilled on {what}: {why}",
                    _details(resource, group, name))


STALE_OBJECT = ("the object has been modified; please apply your changes to the latest version "
                "and try again")


def invalid_object(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    """422 Invalid: `Service "x" is invalid: <aggregate>` with one cause per field error."""
    qualified = f"{kind}.{group}" if group else kind
    causes = [{"reason": e.type, "message": e.body(), "field": e.field} for e in errors]
    details: dict[str, Any] = {"name": name, "kind": kind, "causes": causes}
    if group:
        details["group"] = group
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {aggregate(errors)}',
                    details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: application/json-patch+json, application/merge-patch+json, "
                    f"application/strategic-merge-patch+json (got {content_type})")


def method_not_allowed(method: str, what: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"{method} is not supported on {what}")


def no_such_resource() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource",
                    {})


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                    {"retryAfterSeconds": retry_after}, {"Retry-After": str(retry_after)})


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}",
                    {"causes": [{"message": message}]})
