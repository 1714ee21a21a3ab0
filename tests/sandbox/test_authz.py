"""Pure pieces of authentication and authorization: request attributes as kube's RequestInfo
derives them, RBAC rule matching, token signing and expiry, and protobuf body decoding."""

from __future__ import annotations

from typing import Any

import pytest

from lbctl.sandbox import errors
from lbctl.sandbox.auth.attributes import Attributes, request_attributes
from lbctl.sandbox.auth.authn import ANONYMOUS_USER, TokenIssuer, split_sa_username
from lbctl.sandbox.auth.rbac import forbidden, rule_allows
from lbctl.sandbox.encoding import protobuf

pytestmark = pytest.mark.unit

U = ANONYMOUS_USER


@pytest.mark.parametrize(("method", "path", "query", "want"), [
    ("GET", "/api/v1/namespaces/a/services", {}, ("list", "a", "services", "", "")),
    ("GET", "/api/v1/namespaces/a/services", {"watch": "true"}, ("watch", "a", "services", "", "")),
    ("GET", "/api/v1/namespaces/a/services", {"watch": "false"}, ("list", "a", "services", "", "")),
    ("GET", "/api/v1/namespaces/a/configmaps", {"fieldSelector": "metadata.name=x"},
     ("list", "a", "configmaps", "", "x")),
    ("PATCH", "/api/v1/namespaces/a/services/s/status", {}, ("patch", "a", "services", "status",
                                                              "s")),
    ("GET", "/api/v1/namespaces/a", {}, ("get", "a", "namespaces", "", "a")),
    ("PUT", "/api/v1/namespaces/a/finalize", {}, ("update", "a", "namespaces", "finalize", "a")),
    ("GET", "/api/v1/namespaces", {}, ("list", "", "namespaces", "", "")),
    ("DELETE", "/apis/apps/v1/namespaces/a/deployments", {},
     ("deletecollection", "a", "deployments", "", "")),
    ("POST", "/api/v1/namespaces/a/serviceaccounts/x/token", {},
     ("create", "a", "serviceaccounts", "token", "x")),
    ("GET", "/api/v1/watch/namespaces/a/pods", {}, ("watch", "a", "pods", "", "")),
])
def test_resource_request_attributes(method: str, path: str, query: dict[str, str],
                                     want: tuple[str, ...]) -> None:
    a = request_attributes(U, method, path, query)
    assert a.resource_request
    assert (a.verb, a.namespace, a.resource, a.subresource, a.name) == want


@pytest.mark.parametrize("path", ["/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1",
                                  "/version", "/openapi/v3", "/healthz"])
def test_non_resource_paths(path: str) -> None:
    a = request_attributes(U, "GET", path, {})
    assert not a.resource_request and (a.verb, a.path) == ("get", path)


def _res(verb: str, resource: str, sub: str = "", name: str = "", group: str = "") -> Attributes:
    return Attributes(U, verb, True, api_group=group, resource=resource, subresource=sub,
                      name=name)


@pytest.mark.parametrize(("rule", "attrs", "allowed"), [
    ({"verbs": ["*"], "apiGroups": [""], "resources": ["services"]}, _res("list", "services"),
     True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["services"]},
     _res("get", "services", "status"), False),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["*/status"]},
     _res("get", "services", "status"), True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["*/status"]}, _res("get", "services"),
     False),
    ({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"]},
     _res("get", "deployments"), False),
    ({"verbs": ["get"], "apiGroups": ["*"], "resources": ["deployments"]},
     _res("get", "deployments", group="apps"), True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]},
     _res("get", "configmaps", name="a"), True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]},
     _res("list", "configmaps"), False),
    ({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}, Attributes(U, "get", False, "/apis/x"),
     True),
    ({"verbs": ["get"], "nonResourceURLs": ["/apis"]}, Attributes(U, "get", False, "/apis/x"),
     False),
    ({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*"]},
     Attributes(U, "get", False, "/healthz"), False),
])
def test_rule_allows(rule: dict[str, Any], attrs: Attributes, allowed: bool) -> None:
    assert rule_allows(attrs, rule) is allowed


def test_forbidden_sanitizes_and_appends_the_reason() -> None:
    err = forbidden(Attributes(U, "get", False, "/a<b>&"), "RBAC: x")
    assert err.message == ('forbidden: User "system:anonymous" cannot get path '
                           '"/a&lt;b&gt;&amp;": RBAC: x')


def test_tokens_expire_and_signatures_are_checked() -> None:
    now = [1_000_000.0]
    issuer = TokenIssuer(b"k" * 32, clock=lambda: now[0])
    sa = {"metadata": {"namespace": "ns", "name": "sa", "uid": "u-1"}}
    token, exp = issuer.issue(sa, 600, ["aud"])
    assert exp == 1_000_600
    claims = issuer.verify(token)
    assert claims is not None and claims["sub"] == "system:serviceaccount:ns:sa"
    assert claims["kubernetes.io"]["serviceaccount"] == {"name": "sa", "uid": "u-1"}
    assert issuer.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert TokenIssuer(b"x" * 32).verify(token) is None  # another sandbox's key
    now[0] += 600
    assert issuer.verify(token) is None


def test_split_sa_username() -> None:
    assert split_sa_username("system:serviceaccount:ns:name") == ("ns", "name")
    assert split_sa_username("system:serviceaccount:ns") is None
    assert split_sa_username("system:serviceaccount:Bad_NS:x") is None
    assert split_sa_username("bob") is None


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: bytes | str | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def test_protobuf_role_binding_decodes_like_its_json() -> None:
    meta = _field(1, "rb") + _field(3, "") + _field(11, _field(1, "app") + _field(2, "web"))
    subject = _field(1, "ServiceAccount") + _field(2, "") + _field(3, "x") + _field(4, "ns")
    ref = _field(1, "rbac.authorization.k8s.io") + _field(2, "ClusterRole") + _field(3, "view")
    raw = _field(1, meta) + _field(2, subject) + _field(3, ref)
    type_meta = _field(1, "rbac.authorization.k8s.io/v1") + _field(2, "RoleBinding")
    body = protobuf.decode(protobuf.MAGIC + _field(1, type_meta) + _field(2, raw))
    assert body == {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "rb", "labels": {"app": "web"}},
        "subjects": [{"kind": "ServiceAccount", "name": "x", "namespace": "ns"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "view"}}


def test_protobuf_keeps_zero_pointers_and_refuses_unknown_kinds() -> None:
    spec = _field(4, 0)
    raw = _field(2, spec)
    type_meta = _field(1, "authentication.k8s.io/v1") + _field(2, "TokenRequest")
    body = protobuf.decode(protobuf.MAGIC + _field(1, type_meta) + _field(2, raw))
    assert body["spec"] == {"expirationSeconds": 0}
    unknown = _field(1, _field(1, "v1") + _field(2, "Pod")) + _field(2, b"")
    with pytest.raises(errors.ApiError) as info:
        protobuf.decode(protobuf.MAGIC + unknown)
    assert info.value.code == 415 and "Pod" in info.value.message
    with pytest.raises(errors.ApiError) as info:
        protobuf.decode(protobuf.MAGIC + b"\x0a\xff")
    assert info.value.code == 400
