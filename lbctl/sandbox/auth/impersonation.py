"""Impersonation: `Impersonate-User` / `-Group` / `-Uid` / `-Extra-*` headers (kubectl `--as`).

`kubectl auth can-i ... --as=system:serviceaccount:ns:sa` is how people check a ServiceAccount's
RBAC, and it works by impersonation: the caller must be allowed the `impersonate` verb on each
thing it asks to be (users, groups, serviceaccounts, uids, userextras/<key>), after which the
request runs as that user. A port of `k8s.io/apiserver/pkg/endpoints/filters/impersonation.go`:
same authorization checks, same defaulted groups, same 403 messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from .. import errors
from .attributes import Attributes
from .authn import ANONYMOUS, AUTHENTICATED, UNAUTHENTICATED, UserInfo, sa_groups, split_sa_username
from .rbac import Authorizer, forbidden

USER = "Impersonate-User"
GROUP = "Impersonate-Group"
UID = "Impersonate-Uid"
EXTRA_PREFIX = "Impersonate-Extra-"
AUTHENTICATION_GROUP = "authentication.k8s.io"


@dataclass(frozen=True)
class _Ask:
    """One thing the caller asks to be, and what it takes to be allowed it."""

    kind: str  # ServiceAccount | User | Group | Uid | UserExtra
    name: str
    namespace: str = ""
    extra_key: str = ""

    def __str__(self) -> str:
        return f"{{{self.kind} {self.namespace} {self.name} {self.extra_key}}}"


def _asks(headers: Iterable[tuple[str, str]]) -> list[_Ask]:
    pairs = list(headers)
    asks: list[_Ask] = []
    user = next((v for k, v in pairs if k.lower() == USER.lower()), "")
    if user:
        sa = split_sa_username(user)
        asks.append(_Ask("ServiceAccount", sa[1], sa[0]) if sa else _Ask("User", user))
    asks += [_Ask("Group", v) for k, v in pairs if k.lower() == GROUP.lower()]
    extras = [_Ask("UserExtra", v, extra_key=unquote(k[len(EXTRA_PREFIX):]).lower())
              for k, v in pairs if k.lower().startswith(EXTRA_PREFIX.lower())]
    asks += extras
    uid = next((v for k, v in pairs if k.lower() == UID.lower()), "")
    if uid:
        asks.append(_Ask("Uid", uid))
    if asks and not user:
        shown = "[" + " ".join(str(a) for a in asks) + "]"
        raise errors.ApiError(500, "InternalError", f"Internal error occurred: requested "
                              f"{shown} without impersonating a user (set {USER})")
    return asks


def impersonate(authorizer: Authorizer, requester: UserInfo,
                headers: Iterable[tuple[str, str]]) -> UserInfo:
    """The user the request acts as: `requester`, or whom its headers impersonate (403 if the
    requester may not)."""
    asks = _asks(headers)
    if not asks:
        return requester
    groups_given = any(a.kind == "Group" for a in asks)
    username, uid = "", ""
    groups: list[str] = []
    extra: dict[str, tuple[str, ...]] = {}
    for ask in asks:
        group, resource, subresource, namespace = "", "", "", ""
        if ask.kind == "ServiceAccount":
            resource, namespace = "serviceaccounts", ask.namespace
            username = f"system:serviceaccount:{ask.namespace}:{ask.name}"
            if not groups_given:
                groups = list(sa_groups(ask.namespace))
        elif ask.kind == "User":
            resource, username = "users", ask.name
        elif ask.kind == "Group":
            resource = "groups"
            groups.append(ask.name)
        elif ask.kind == "Uid":
            group, resource, uid = AUTHENTICATION_GROUP, "uids", ask.name
        else:
            group, resource, subresource = AUTHENTICATION_GROUP, "userextras", ask.extra_key
            extra[ask.extra_key] = (*extra.get(ask.extra_key, ()), ask.name)
        attrs = Attributes(requester, "impersonate", True, api_group=group,
                           namespace=namespace, resource=resource, subresource=subresource,
                           name=ask.name)
        decision = authorizer.authorize(attrs)
        if not decision.allowed:
            raise forbidden(attrs, decision.reason)
    if username != ANONYMOUS:
        if AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
    elif UNAUTHENTICATED not in groups:
        groups.append(UNAUTHENTICATED)
    return UserInfo(username, tuple(groups), uid, extra)
