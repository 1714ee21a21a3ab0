"""Folding one Service's share of a shared load balancer into the whole LB body, and out again.

ARM replaces a load balancer whole on every PUT, and every Service of the cluster (per scheme)
lives in the same one: a Service's change is therefore a pure function of the LB's current body
(the batching writer, `coalesce`, applies many of them to one read and writes once). `merge`
puts one Service's frontend, rules and probes in (replacing its old ones by name, dropping its
stale ones) and `remove` takes them out; neither touches another Service's parts nor mutates
its argument.

No write when nothing changed: a part of ours that ARM already holds as we want it (ARM adds
IDs, etags, provisioning states, back references and allocated IPs, and may re-case resource
groups in IDs) is kept as ARM's own object, so `merge` returns its argument itself and the
writer sees no change. A property ARM holds that we no longer want (a probe reference, an Http
probe's path) is a change. Parts are ours by their exact names (`names.owns_part`).
"""

from __future__ import annotations

from typing import Any

from providers.errors import NotOwnedError

from . import names
from .desired import Body, Parts

PARTS = ("frontendIPConfigurations", "loadBalancingRules", "probes")
_EXCLUSIVE = {"frontendIPConfigurations": ("publicIPAddress", "subnet", "publicIPPrefix"),
              "loadBalancingRules": ("probe",),
              "probes": ("requestPath",)}
"""Properties whose presence in ARM's copy but absence from ours is a difference (a rule that
lost its probe, a probe turned from Http to Tcp), unlike what ARM adds: IDs, states, allocated
IPs, and defaults it fills in (a UDP rule's idle timeout, `enableTcpReset: false`)."""


def covers(want: Any, have: Any) -> bool:
    """`have` (ARM's copy) says at least what `want` says: ARM adds IDs, states and back
    references, and may re-case resource-group names in IDs."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(covers(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return (isinstance(have, list) and len(want) == len(have)
                and all(covers(w, h) for w, h in zip(want, have, strict=True)))
    if isinstance(want, str) and want.startswith("/subscriptions/"):
        return names.same_id(want, have)
    return bool(want == have and type(want) is type(have))


def same_part(kind: str, want: Body, have: Body) -> bool:
    """Whether ARM's `have` already is the part `want` (of `kind`, one of PARTS)."""
    theirs = have.get("properties") or {}
    ours = want.get("properties") or {}
    if any(key not in ours and theirs.get(key) is not None for key in _EXCLUSIVE[kind]):
        return False
    return covers(want, have)


def _owner_check(body: Body, cluster: str | None, name: str) -> None:
    if cluster is not None and (body.get("tags") or {}).get(names.TAG_CLUSTER) != cluster:
        raise NotOwnedError("load balancer", name)


def merge(lb_body: Body | None, parts: Parts) -> Body:
    """`lb_body` (None: absent) with `parts` in it: this Service's frontend, rules and probes
    replaced by name (stale ones of it dropped), everything else untouched, the shared pool
    added if missing. Returns `lb_body` itself when nothing changes; never mutates it.
    NotOwnedError when the LB is not this cluster's lbctl's."""
    base = parts.skeleton if lb_body is None else lb_body
    _owner_check(base, parts.skeleton["tags"].get(names.TAG_CLUSTER), str(base.get("name", "")))
    props = base.get("properties") or {}
    changed: Body = {}
    wanted = {"frontendIPConfigurations": (parts.frontend,), "loadBalancingRules": parts.rules,
              "probes": parts.probes}
    for kind in PARTS:
        have = list(props.get(kind) or [])
        todo = {w["name"]: w for w in wanted[kind]}
        out: list[Body] = []
        for part in have:
            name = str(part.get("name", ""))
            if not names.owns_part(parts.balancer, name):
                out.append(part)
                continue
            want = todo.pop(name, None)
            if want is not None:
                out.append(part if same_part(kind, want, part) else want)
        out.extend(todo.values())
        if len(out) != len(have) or any(a is not b for a, b in zip(out, have, strict=True)):
            changed[kind] = out
    pools = list(props.get("backendAddressPools") or [])
    if not any(p.get("name") == parts.pool for p in pools):
        changed["backendAddressPools"] = [*pools, {"name": parts.pool}]
    if not changed and lb_body is not None:
        return lb_body
    return {**base, "properties": {**props, **changed}}


def remove(lb_body: Body | None, balancer: str, cluster: str | None = None) -> Body | None:
    """`lb_body` without `balancer`'s frontend, rules and probes; None when no frontend is left
    (delete the LB; a later merge in the same batch starts from the skeleton, so the deployer
    re-syncs the pool after writing a created LB). Returns `lb_body` itself when it holds
    nothing of `balancer`'s. With `cluster`, NotOwnedError for another owner's LB."""
    if lb_body is None:
        return None
    _owner_check(lb_body, cluster, str(lb_body.get("name", "")))
    props = lb_body.get("properties") or {}
    changed: Body = {}
    for kind in PARTS:
        have = list(props.get(kind) or [])
        out = [p for p in have if not names.owns_part(balancer, str(p.get("name", "")))]
        if len(out) != len(have):
            changed[kind] = out
    left = changed.get("frontendIPConfigurations", props.get("frontendIPConfigurations"))
    if not left:
        return None
    if not changed:
        return lb_body
    return {**lb_body, "properties": {**props, **changed}}
