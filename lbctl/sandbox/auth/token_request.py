"""The TokenRequest API: `POST .../serviceaccounts/<name>/token` (`kubectl create token`).

This is how a workload, an operator or a test gets a credential for a ServiceAccount, so it
follows kube's `pkg/registry/core/serviceaccount/storage/token.go` step by step: the body's
name/namespace must match the URL, the ServiceAccount must exist, audiences default to the API
server's, `expirationSeconds` (default 3600) must lie in [600, 2^32], and a `boundObjectRef` (a
Pod of this ServiceAccount, a Secret, or a Node) must exist and keep its uid; the token then dies
with that object as well as with the ServiceAccount.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .. import errors
from ..openapi import schema
from ..storage.store import Obj, ObjectStore
from .authn import API_AUDIENCES, TokenIssuer

API_VERSION = "authentication.k8s.io/v1"
KIND = "TokenRequest"
GROUP = "authentication.k8s.io"
DEFAULT_SECONDS = 3600
MIN_SECONDS = 600
MAX_SECONDS = 1 << 32
_BINDABLE = {"Pod": ("pods", True), "Secret": ("secrets", True), "Node": ("nodes", False)}


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _invalid(name: str, error: errors.FieldError) -> errors.ApiError:
    return errors.invalid_object(KIND, GROUP, name, [error])


def decode(body: Any, field_validation: str) -> Obj:
    """A TokenRequest body decoded against the 1.33 schema (400 naming the problem)."""
    if not isinstance(body, dict):
        raise errors.bad_request("couldn't get version/kind; json parse error: the body must "
                                 f"be a JSON object, got {type(body).__name__}")
    if body.get("apiVersion", API_VERSION) != API_VERSION or body.get("kind", KIND) != KIND:
        raise errors.bad_request(f"the body must be a {KIND} of {API_VERSION}, got "
                                 f"{body.get('kind')} of {body.get('apiVersion')}")
    decoded, _ = schema.decode(body, API_VERSION, KIND, field_validation)
    return decoded


def _bound(store: ObjectStore, namespace: str, sa_name: str,
           ref: Obj) -> tuple[str, Obj]:
    api_version, kind, name = ref.get("apiVersion", ""), ref.get("kind", ""), ref.get("name", "")
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    if group or kind not in _BINDABLE:
        version = api_version.rpartition("/")[2]
        shown = f"{group}/{version}, Kind={kind}" if group else f"/{version}, Kind={kind}"
        raise errors.bad_request(f"cannot bind token to object of type {shown}")
    key, namespaced = _BINDABLE[kind]
    obj = store.get(key, namespace if namespaced else "", name)
    if obj is None:
        raise errors.not_found(key, "", name)
    if kind == "Pod" and (obj.get("spec") or {}).get("serviceAccountName") != sa_name:
        raise errors.bad_request(f'cannot bind token for serviceaccount "{sa_name}" to pod '
                                 "running with different serviceaccount name.")
    uid = obj["metadata"]["uid"]
    if ref.get("uid") and ref["uid"] != uid:
        raise errors.conflict(kind, "", name, f"the UID in the bound object reference "
                              f"({ref['uid']}) does not match the UID in record. The object "
                              "might have been deleted and then recreated")
    return kind.lower(), obj


def create_token(store: ObjectStore, issuer: TokenIssuer, namespace: str, name: str,
                 request: Obj) -> Obj:
    """TokenREST.Create: the TokenRequest with `status.token` filled in (or an ApiError)."""
    meta = dict(request.get("metadata") or {})
    if meta.get("name") and meta["name"] != name:
        raise _invalid(name, errors.invalid("metadata.name", meta["name"],
                                            "must match the service account name if specified"))
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise _invalid(name, errors.invalid(
            "metadata.namespace", meta["namespace"],
            "must match the service account namespace if specified"))
    sa = store.get("serviceaccounts", namespace, name)
    if sa is None:
        raise errors.not_found("serviceaccounts", "", name)
    if meta.get("uid") and meta["uid"] != sa["metadata"]["uid"]:
        raise errors.conflict(KIND, GROUP, name, f"the UID in the token request ({meta['uid']}) "
                              f"does not match the UID of the service account "
                              f"({sa['metadata']['uid']})")
    spec = dict(request.get("spec") or {})
    spec["audiences"] = spec.get("audiences") or list(API_AUDIENCES)
    seconds = spec.get("expirationSeconds")
    seconds = DEFAULT_SECONDS if seconds is None else seconds
    spec["expirationSeconds"] = seconds
    if seconds < MIN_SECONDS:
        raise _invalid("", errors.invalid("spec.expirationSeconds", seconds,
                                          "may not specify a duration less than 10 minutes"))
    if seconds > MAX_SECONDS:
        raise _invalid("", errors.invalid("spec.expirationSeconds", seconds,
                                          "may not specify a duration larger than 2^32 seconds"))
    ref = spec.get("boundObjectRef")
    bound = _bound(store, namespace, name, ref) if isinstance(ref, dict) else None
    if ref is None:
        spec.pop("boundObjectRef", None)
    now = issuer.clock()
    token, _ = issuer.issue(sa, seconds, list(spec["audiences"]), bound)
    meta.update(name=name, namespace=namespace, creationTimestamp=_timestamp(now))
    return {"kind": KIND, "apiVersion": API_VERSION, "metadata": meta, "spec": spec,
            "status": {"token": token, "expirationTimestamp": _timestamp(now + seconds)}}
