"""The changes one Service makes to the cluster's shared ARM objects, as pure functions of their
current bodies (what `coalesce.Coalescer` folds into one guarded PUT), and `ArmObject`, the
coalescer's view of one ARM resource through `ArmClient`.

- The load balancer: `merge` this Service's frontend, rules and probes, and set the shared
  backend pool to the Service's targets (every Service's targets are the cluster's selected
  nodes: a node change is one pool difference, folded into whatever LB write the batch makes);
  `remove` them for a delete or a move to the other scheme (the LB goes with its last frontend).
- The network security group (the cluster's, never created or deleted by lbctl): this
  Service's allow rules replaced by name, each keeping its priority once it has one (the lowest
  free one from 500 otherwise), their destination the frontend's IP; other rules untouched.
A change that finds nothing to do returns its argument itself: no write.
"""

from __future__ import annotations

from collections.abc import Callable

from providers.errors import PermanentError

from . import names
from .client import ArmClient
from .coalesce import Body, Change, PreconditionFailed
from .desired import Desired, pool_body, security_rule_body
from .errors import ArmError
from .merge import covers, merge, remove

READ_ONLY = ("etag", "provisioningState", "resourceGuid", "type")


class ArmObject:
    """One whole ARM resource read with its etag and written guarded by it (the Store of a
    Coalescer)."""

    def __init__(self, arm: ArmClient, kind: str, group: str, name: str) -> None:
        self.arm, self.kind, self.group, self.name = arm, kind, group, name

    def read(self) -> tuple[Body | None, str | None]:
        body = self.arm.get(self.kind, self.group, self.name)
        if body is None:
            return None, None
        return body, str(body.get("etag") or "") or None

    def write(self, body: Body, etag: str | None) -> Body:
        clean = {k: v for k, v in body.items() if k not in READ_ONLY}
        try:
            return self.arm.put(self.kind, self.group, self.name, body=clean, if_match=etag,
                                create_only=etag is None)
        except ArmError as exc:
            if exc.precondition_failed:
                raise PreconditionFailed(str(exc)) from exc
            raise

    def delete(self, etag: str) -> None:
        try:
            self.arm.delete(self.kind, self.group, self.name, if_match=etag)
        except ArmError as exc:
            if exc.precondition_failed:
                raise PreconditionFailed(str(exc)) from exc
            raise


def with_pool(body: Body, pool: str, addresses: tuple[Body, ...]) -> Body:
    """`body` with its backend pool `pool` holding exactly `addresses` (itself when it does)."""
    props = body.get("properties") or {}
    pools = list(props.get("backendAddressPools") or [])
    want = pool_body(pool, addresses)
    wanted = want["properties"]["loadBalancerBackendAddresses"]
    for i, have in enumerate(pools):
        if have.get("name") != pool:
            continue
        listed = (have.get("properties") or {}).get("loadBalancerBackendAddresses") or []
        if len(listed) == len(wanted) and all(
                covers(w, h) for w, h in zip(wanted, sorted(listed, key=lambda a: a["name"]),
                                             strict=True)):
            return body
        pools[i] = {**have, "properties": {**(have.get("properties") or {}),
                                           "loadBalancerBackendAddresses": wanted}}
        return {**body, "properties": {**props, "backendAddressPools": pools}}
    return {**body, "properties": {**props, "backendAddressPools": [*pools, want]}}


def lb_change(want: Desired) -> Change:
    """This Service's parts in the LB, and the pool at its targets."""
    def change(body: Body | None) -> Body | None:
        merged = merge(body, want.parts)
        return with_pool(merged, want.parts.pool, want.pool_addresses)
    return change


def lb_removal(balancer: str, cluster: str, public_ips: set[str] | None = None) -> Change:
    """`balancer`'s parts out of the LB; the public IPs its frontends referenced are added to
    `public_ips` (what a delete releases next, without reading the LB again)."""
    def change(body: Body | None) -> Body | None:
        if public_ips is not None:
            for frontend in ((body or {}).get("properties") or {}).get(
                    "frontendIPConfigurations", []):
                pip = ((frontend.get("properties") or {}).get("publicIPAddress") or {}).get("id")
                if pip and names.is_frontend_of(balancer, str(frontend.get("name", ""))):
                    public_ips.add(str(pip))
        return remove(body, balancer, cluster)
    return change


def frontend_ip(body: Body | None, want: Desired) -> str | None:
    """The private IP ARM gave this Service's internal frontend (in the LB as written)."""
    for frontend in ((body or {}).get("properties") or {}).get("frontendIPConfigurations", []):
        if frontend.get("name") == want.parts.frontend["name"]:
            ip = (frontend.get("properties") or {}).get("privateIPAddress")
            return str(ip) if ip else None
    return None


def _mine(cluster: str, balancer: str) -> Callable[[Body], bool]:
    def owned(rule: Body) -> bool:
        return names.owns_security_rule(str(rule.get("name", "")),
                                        (rule.get("properties") or {}).get("description"),
                                        cluster, balancer)
    return owned


def nsg_change(want: Desired, cluster: str, ip: str | None) -> Change:
    """This Service's allow rules in the cluster's NSG, destination `ip` (the frontend's)."""
    owned = _mine(cluster, want.balancer)

    def change(body: Body | None) -> Body | None:
        if body is None:
            raise PermanentError("azure.securityGroupName", f"network security group "
                                                            f"{want.security_group} not found")
        props = body.get("properties") or {}
        rules: list[Body] = list(props.get("securityRules") or [])
        mine = {str(r["name"]): r for r in rules if owned(r)}
        others = [r for r in rules if not owned(r)]
        used = {int((r.get("properties") or {}).get("priority", 0)) for r in others
                if (r.get("properties") or {}).get("direction", "Inbound") == "Inbound"}
        out: list[Body] = []
        for rule in want.security_rules:
            have = mine.get(rule["name"])
            current = (have.get("properties") or {}).get("priority") if have else None
            try:
                priority = names.pick_priority(used, current)
            except LookupError as exc:
                raise PermanentError("azure.securityGroupName", str(exc)) from exc
            used.add(priority)
            made = security_rule_body(rule, priority,
                                      ip if want.destination_is_frontend else None)
            out.append(have if have is not None and covers(made, have) else made)
        if len(out) == len(mine) and all(o is mine.get(o["name"]) for o in out):
            return body
        return {**body, "properties": {**props, "securityRules": [*others, *out]}}
    return change


def nsg_removal(cluster: str, balancer: str) -> Change:
    owned = _mine(cluster, balancer)

    def change(body: Body | None) -> Body | None:
        if body is None:
            return None
        props = body.get("properties") or {}
        rules = list(props.get("securityRules") or [])
        kept = [r for r in rules if not owned(r)]
        if len(kept) == len(rules):
            return body
        return {**body, "properties": {**props, "securityRules": kept}}
    return change
