"""A load-balancing rule's backend health, the one per-backend health source ARM has:

    POST .../loadBalancers/LB/loadBalancingRules/RULE/health        (API id
                                                                     `loadBalancingRules.health`)

answered as ARM answers it (the REST reference's example): 202 with `Azure-AsyncOperation` and
`Location`, the operation InProgress for `operationDelay`, then the `Location` URL answers 200
with `LoadBalancerHealthPerRule`: `{"up": N, "down": M, "loadBalancerBackendAddresses":
[{"ipAddress", "state": "Up" | "Down", "reason"}]}`, one entry per address of the rule's backend
pools. An unknown load balancer answers 404 ResourceNotFound, an unknown rule 404 NotFound,
before any operation. The action changes nothing: the load balancer stays writable meanwhile
(no AnotherOperationInProgress). ARM bills a POST against the subscription's write budget, so
its family is `write` (the rate limit's write bucket; an `operation`-mode fault fails its
operation, which `Location` then answers with the fault's error).

What the probers say comes from the admin API (`PUT /_emulator/health`): every address is Up
unless set Down, for every rule or for one rule. `Up_Probe_Success` is ARM's own reason (its
example); `Down_Probe_Failed` is the emulator's wording for the other state.
"""

from __future__ import annotations

from typing import Any

from .errors import invalid
from .ids import Rid
from .kinds import Kind
from .operations import Operations
from .store import Store
from .writes import Answer, Context, Writes

STATES = ("Up", "Down")
REASONS = {"Up": "Up_Probe_Success", "Down": "Down_Probe_Failed"}


def health_key(address: str, rule: Rid | None = None) -> str:
    """Where `Store.health` keeps an address's state: for every rule, or for `rule` alone."""
    return f"{rule.path.lower()}|{address}" if rule is not None else address


def check_state(state: object) -> str:
    if state not in STATES:
        raise invalid("state", state, f"one of {', '.join(STATES)}")
    return str(state)


class RuleHealth:
    def __init__(self, store: Store, operations: Operations, writes: Writes) -> None:
        self.store, self.operations, self.writes = store, operations, writes

    def post(self, kind: Kind, rule: Rid, ctx: Context) -> Answer:
        """The action accepted: 202 and its operation (404 for what does not exist)."""
        lb = self.store.require(rule.top)
        kind.find_child(lb, rule)  # 404 NotFound for an unknown rule
        result: dict[str, Any] = {}

        def finish() -> None:  # what the probers say when the operation ends
            result.update(self.answer(rule))

        op = self.operations.start(rule, "health", lb["location"], finish, lambda: None,
                                   ctx.failure, busy=False)
        op.result = result
        return Answer(202, None, self.writes.async_headers(ctx, op.path, location=True))

    def answer(self, rule: Rid) -> dict[str, Any]:
        """`LoadBalancerHealthPerRule` for the rule as the load balancer holds it now."""
        lb = self.store.get(rule.top) or {"properties": {}}
        props = lb["properties"]
        found = next((r for r in props.get("loadBalancingRules", [])
                      if r["name"].lower() == rule.child_name.lower()), None)
        pools = {p["id"].lower(): p for p in props.get("backendAddressPools", [])}
        used = [ref["id"].lower() for ref in ((found or {}).get("properties") or {}).get(
            "backendAddressPools", [])]
        addresses: list[dict[str, Any]] = []
        up = down = 0
        for pool_id in used:
            pool = pools.get(pool_id) or {"properties": {}}
            for entry in pool["properties"].get("loadBalancerBackendAddresses", []):
                ip = str((entry.get("properties") or {}).get("ipAddress", ""))
                state = self.store.health.get(health_key(ip, rule),
                                              self.store.health.get(ip, "Up"))
                up, down = (up + 1, down) if state == "Up" else (up, down + 1)
                addresses.append({"ipAddress": ip, "state": state, "reason": REASONS[state]})
        return {"up": up, "down": down, "loadBalancerBackendAddresses": addresses}
