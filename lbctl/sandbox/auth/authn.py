"""Authentication: who a request comes from, as kube-apiserver's authenticators decide it.

Real clients present a bearer token; the sandbox knows two kinds. The admin token written into
the kubeconfig is user `admin` in `system:masters`. ServiceAccount tokens come from the
TokenRequest API (`serviceaccounts/<name>/token`) and are JWTs like kube's bound tokens, signed
here with HMAC-SHA256 under a per-sandbox key: they name the ServiceAccount (namespace, name,
uid), expire, and stop working once the ServiceAccount (or the object the token is bound to) is
deleted or recreated. A request without a credential is `system:anonymous`, except on plain HTTP,
where it is kube's old insecure-port user `system:unsecured` in `system:masters`, because kubectl
never sends credentials over plain HTTP.

    Authenticator.authenticate(header) -> UserInfo | None (401)
    TokenIssuer.issue(claims...) -> JWT;  TokenIssuer.verify(jwt) -> claims | None
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..name_formats import is_dns1123_label, is_dns1123_subdomain
from ..storage.store import Obj, ObjectStore

SYSTEM_MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
SA_PREFIX = "system:serviceaccount:"
ALL_SERVICE_ACCOUNTS = "system:serviceaccounts"
ISSUER = "https://kubernetes.default.svc.cluster.local"
"""The token issuer, and the API server's only audience (kube-apiserver's defaults)."""
API_AUDIENCES = (ISSUER,)
CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
POD_NAME = "authentication.kubernetes.io/pod-name"
POD_UID = "authentication.kubernetes.io/pod-uid"


@dataclass(frozen=True)
class UserInfo:
    """user.Info: the name, uid, groups and extra attributes a request acts as."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    def to_json(self) -> dict[str, Any]:
        """authentication.k8s.io/v1 UserInfo (empty fields omitted, as Go does)."""
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ADMIN = UserInfo("admin", (SYSTEM_MASTERS, AUTHENTICATED))
INSECURE = UserInfo("system:unsecured", (SYSTEM_MASTERS, AUTHENTICATED))
ANONYMOUS_USER = UserInfo(ANONYMOUS, (UNAUTHENTICATED,))


def sa_username(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def sa_groups(namespace: str) -> tuple[str, ...]:
    return (ALL_SERVICE_ACCOUNTS, f"{ALL_SERVICE_ACCOUNTS}:{namespace}")


def split_sa_username(username: str) -> tuple[str, str] | None:
    """serviceaccount.SplitUsername: (namespace, name) of `system:serviceaccount:NS:NAME`."""
    if not username.startswith(SA_PREFIX):
        return None
    parts = username[len(SA_PREFIX):].split(":")
    if len(parts) != 2:
        return None
    namespace, name = parts
    if is_dns1123_label(namespace) or is_dns1123_subdomain(name):
        return None
    return namespace, name


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Signs and checks ServiceAccount JWTs (HS256) with a key of this sandbox's own."""

    _HEADER = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))

    def __init__(self, key: bytes | None = None, clock: Callable[[], float] = time.time) -> None:
        self._key = key or secrets.token_bytes(32)
        self.clock = clock

    def _sign(self, signing_input: str) -> str:
        return _b64(hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest())

    def issue(self, sa: Obj, seconds: int, audiences: list[str],
              bound: tuple[str, Obj] | None = None) -> tuple[str, int]:
        """A token for ServiceAccount `sa`, valid `seconds`; returns (token, expiry epoch).

        `bound` is ("pod" | "secret" | "node", object): the token dies with that object too.
        """
        now = int(self.clock())
        meta = sa["metadata"]
        private: dict[str, Any] = {
            "namespace": meta["namespace"],
            "serviceaccount": {"name": meta["name"], "uid": meta["uid"]}}
        if bound is not None:
            kind, obj = bound
            private[kind] = {"name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"]}
        claims = {"aud": audiences, "exp": now + seconds, "iat": now, "iss": ISSUER,
                  "jti": str(uuid.uuid4()), "kubernetes.io": private, "nbf": now,
                  "sub": sa_username(meta["namespace"], meta["name"])}
        signing_input = f"{self._HEADER}.{_b64(orjson.dumps(claims))}"
        return f"{signing_input}.{self._sign(signing_input)}", now + seconds

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a well-signed, unexpired token of this sandbox, else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        header, payload, signature = parts
        if not hmac.compare_digest(self._sign(f"{header}.{payload}"), signature):
            return None
        try:
            claims = orjson.loads(_unb64(payload))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
            return None
        now = self.clock()
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int) or not isinstance(nbf, int) or not nbf <= now < exp:
            return None
        return claims


class Authenticator:
    """Bearer tokens -> UserInfo, reading ServiceAccounts (and bound objects) live."""

    def __init__(self, store: ObjectStore, admin_token: str, issuer: TokenIssuer, *,
                 insecure: bool) -> None:
        self.store = store
        self.admin_token = admin_token
        self.issuer = issuer
        self.insecure = insecure

    def authenticate(self, authorization: str) -> UserInfo | None:
        """The user of an `Authorization` header value; None means 401.

        Only `Bearer <token>` is a credential; anything else is no credential at all (kube's
        bearer authenticator passes, and the anonymous one answers).
        """
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return INSECURE if self.insecure else ANONYMOUS_USER
        user, _ = self.review(token)
        return user

    def review(self, token: str, audiences: tuple[str, ...] = API_AUDIENCES
               ) -> tuple[UserInfo | None, list[str]]:
        """A token's user and which of `audiences` it is meant for (TokenReview); (None, [])
        when it is not valid for any of them."""
        if hmac.compare_digest(token.encode(), self.admin_token.encode()):
            matched = [a for a in audiences if a in API_AUDIENCES]
            return (ADMIN if matched else None), matched
        claims = self.issuer.verify(token)
        aud = claims.get("aud") if claims is not None else None
        if claims is None or not isinstance(aud, list):
            return None, []
        matched = [a for a in audiences if a in aud]
        user = self._service_account(claims) if matched else None
        return user, matched if user is not None else []

    def _service_account(self, claims: dict[str, Any]) -> UserInfo | None:
        """The ServiceAccount verified claims name, if it and its bound object still exist."""
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict):
            return None
        ns = private.get("namespace", "")
        ref = private.get("serviceaccount") or {}
        sa = self.store.get("serviceaccounts", ns, ref.get("name", ""))
        if sa is None or sa["metadata"]["uid"] != ref.get("uid"):
            return None
        extra: dict[str, tuple[str, ...]] = {CREDENTIAL_ID: (f"JTI={claims.get('jti', '')}",)}
        for kind, key, scoped in (("pod", "pods", True), ("secret", "secrets", True),
                                  ("node", "nodes", False)):
            bound = private.get(kind)
            if bound is None:
                continue
            obj = self.store.get(key, ns if scoped else "", bound.get("name", ""))
            if obj is None or obj["metadata"]["uid"] != bound.get("uid"):
                return None
            if kind == "pod":
                extra[POD_NAME] = (bound["name"],)
                extra[POD_UID] = (bound["uid"],)
        name = ref["name"]
        return UserInfo(sa_username(ns, name), (*sa_groups(ns), AUTHENTICATED),
                        sa["metadata"]["uid"], extra)
