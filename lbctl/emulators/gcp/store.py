"""The emulated project's state: objects, writes in flight, what refers to what, quotas.

Objects are kept as GCE renders them (camelCase JSON, references as full self links), plus
private `_fields` never shown. A write is validated when it arrives and applied when its
operation completes (`pending` holds it until then, with the object as it will be), as in GCE:
an object being created is not found yet, one being changed or deleted is "not ready" to a
second write, and a reference to either is refused until its operation is DONE. What refers to
what (`users`) is computed from the objects and the pending writes, so deleting a health check a
backend service will use is refused even before that backend service exists.

Everything here runs on the server's event loop: no locks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from .errors import GceError, invalid, not_found, not_ready, quota_exceeded
from .links import Key

EMPTY_LABELS_FINGERPRINT = "42WmSpB8rSM="
"""GCE's labelFingerprint of an object without labels."""

DEFAULT_QUOTAS = {
    "STATIC_ADDRESSES": 1000, "INTERNAL_ADDRESSES": 1000, "FORWARDING_RULES": 1000,
    "REGION_BACKEND_SERVICES": 1000, "REGION_HEALTH_CHECKS": 1000, "HEALTH_CHECKS": 1000,
    "FIREWALLS": 1000, "INSTANCE_GROUPS": 1000,
}
"""Limits per scope (region, zone or project), generous by default: tests set low ones."""

_QUOTA_OF: dict[tuple[str, str], Callable[[dict[str, Any]], str]] = {
    ("regions", "addresses"): lambda o: ("STATIC_ADDRESSES" if o.get("addressType") == "EXTERNAL"
                                         else "INTERNAL_ADDRESSES"),
    ("regions", "forwardingRules"): lambda o: "FORWARDING_RULES",
    ("regions", "backendServices"): lambda o: "REGION_BACKEND_SERVICES",
    ("regions", "healthChecks"): lambda o: "REGION_HEALTH_CHECKS",
    ("global", "healthChecks"): lambda o: "HEALTH_CHECKS",
    ("global", "firewalls"): lambda o: "FIREWALLS",
    ("zones", "instanceGroups"): lambda o: "INSTANCE_GROUPS",
}


@dataclass(frozen=True)
class Settings:
    operation_delay: float = 0.1
    """Seconds a write's operation stays RUNNING before it is applied and DONE (0: DONE at once)."""
    wait_timeout: float = 120.0
    """The longest an operations `wait` call blocks before answering a RUNNING operation."""
    max_group_size: int = 2000
    """Instances an unmanaged instance group may hold."""

    def changed(self, values: dict[str, Any]) -> Settings:
        known = {"operationDelay": "operation_delay", "waitTimeout": "wait_timeout",
                 "maxGroupSize": "max_group_size"}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise GceError(400, "invalid", f"unknown setting {unknown[0]!r}")
        kinds = {"operation_delay": float, "wait_timeout": float, "max_group_size": int}
        changed = {known[k]: kinds[known[k]](v) for k, v in values.items()}
        if any(v < 0 for v in changed.values()):
            raise GceError(400, "invalid", "settings cannot be negative")
        return replace(self, **changed)

    def json(self) -> dict[str, Any]:
        return {"operationDelay": self.operation_delay, "waitTimeout": self.wait_timeout,
                "maxGroupSize": self.max_group_size}


@dataclass
class Pending:
    """A write accepted and not applied yet."""

    operation: str
    verb: str
    obj: dict[str, Any] | None
    """The object as the write leaves it (insert, patch, update), else None."""


@dataclass
class Store:
    project: str
    regions: dict[str, list[str]]
    """Region -> its zones."""
    settings: Settings = field(default_factory=Settings)
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    members: dict[Key, list[Key]] = field(default_factory=dict)
    """Instance group -> its instances, in the order they were added."""
    pending: dict[Key, Pending] = field(default_factory=dict)
    seeded: set[Key] = field(default_factory=set)
    """The world's objects (network, subnetworks, instances, default firewalls)."""
    health: dict[str, str] = field(default_factory=dict)
    """Instance path (or `backend service path|instance path`) -> health state."""
    quotas: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    rng: random.Random = field(default_factory=random.Random)

    # -- scopes -------------------------------------------------------------------------------
    def zones(self) -> list[str]:
        return [z for zones in self.regions.values() for z in zones]

    def check_scope(self, scope: str) -> None:
        kind, _, where = scope.partition("/")
        if kind == "regions" and where not in self.regions:
            raise invalid("region", where, "Unknown region.")
        if kind == "zones" and where not in self.zones():
            raise invalid("zone", where, "Unknown zone.")

    def scopes(self, kind: str) -> list[str]:
        if kind == "global":
            return ["global"]
        if kind == "regions":
            return [f"regions/{r}" for r in sorted(self.regions)]
        return [f"zones/{z}" for z in sorted(self.zones())]

    # -- objects ------------------------------------------------------------------------------
    def get(self, key: Key) -> dict[str, Any] | None:
        return self.objects.get(key)

    def require(self, key: Key) -> dict[str, Any]:
        """An existing object for a reference: 404 when absent, 400 resourceNotReady while
        it is being created or deleted."""
        pending = self.pending.get(key)
        if pending is not None and pending.verb in ("insert", "delete"):
            raise not_ready(key.path)
        obj = self.objects.get(key)
        if obj is None:
            raise not_found(key.path)
        return obj

    def items(self, collection: str, scope: str | None = None) -> list[tuple[Key, dict[str, Any]]]:
        """Applied objects of `collection` (in `scope`), by name."""
        return sorted((k, v) for k, v in self.objects.items()
                      if k.collection == collection and (scope is None or k.scope == scope)
                      and k.project == self.project)

    def view(self, collection: str) -> Iterator[tuple[Key, dict[str, Any]]]:
        """Objects of `collection` as they will be once the pending writes are applied
        (pending inserts included, pending deletes still there): what refers to what."""
        for key, obj in self.objects.items():
            if key.collection == collection:
                pending = self.pending.get(key)
                yield key, pending.obj if pending is not None and pending.obj else obj
        for key, pending in self.pending.items():
            if key.collection == collection and key not in self.objects and pending.obj:
                yield key, pending.obj

    def users(self, key: Key) -> list[Key]:
        """The objects that refer to `key` (and so keep it from being deleted)."""
        url = key.url
        if key.collection == "healthChecks":
            return [k for k, o in self.view("backendServices") if url in o.get("healthChecks", [])]
        if key.collection == "backendServices":
            return [k for k, o in self.view("forwardingRules") if o.get("backendService") == url]
        if key.collection == "instanceGroups":
            return [k for k, o in self.view("backendServices")
                    if any(b.get("group") == url for b in o.get("backends", []))]
        if key.collection == "networks":
            return sorted(
                [k for k, o in self.view("subnetworks") if o.get("network") == url
                 and not o.get("_auto")]
                + [k for kind in ("firewalls", "instanceGroups", "backendServices")
                   for k, o in self.view(kind) if o.get("network") == url]
                + [k for k, o in self.view("instances")
                   if any(n.get("network") == url for n in o.get("networkInterfaces", []))])
        if key.collection == "subnetworks":
            return sorted(
                [k for kind in ("addresses", "forwardingRules") for k, o in self.view(kind)
                 if o.get("subnetwork") == url]
                + [k for k, o in self.view("instances")
                   if any(n.get("subnetwork") == url for n in o.get("networkInterfaces", []))])
        if key.collection == "addresses":
            address = self.objects.get(key) or {}
            return [k for k, o in self.view("forwardingRules")
                    if k.scope == key.scope and o.get("IPAddress") == address.get("address")
                    and uses_address(o, address)]
        return []

    def load_balanced(self, besides: Key | None = None) -> set[str]:
        """Self links of the instance groups some backend service (or pending one) uses,
        `besides` that one."""
        return {b["group"] for k, o in self.view("backendServices") if k != besides
                for b in o.get("backends", []) if "group" in b}

    def groups_of(self, instance: Key) -> list[Key]:
        return [g for g, members in self.members.items() if instance in members]

    def check_quota(self, key: Key, obj: dict[str, Any]) -> None:
        """403 QUOTA_EXCEEDED when one more `obj` would pass its scope's limit."""
        name_of = _QUOTA_OF.get((key.scope.partition("/")[0], key.collection))
        if name_of is None:
            return
        metric = name_of(obj)
        limit = self.quotas.get(metric, DEFAULT_QUOTAS[metric])
        used = sum(1 for k, o in self.objects.items() if k.collection == key.collection
                   and k.scope == key.scope and name_of(o) == metric)
        if used + 1 > limit:
            raise quota_exceeded(metric, limit, key.region)

    # -- identities ---------------------------------------------------------------------------
    def new_id(self) -> str:
        return str(self.rng.getrandbits(63) | (1 << 62))

    def new_operation_name(self) -> str:
        millis = int(datetime.now(UTC).timestamp() * 1000)
        parts = [f"{self.rng.getrandbits(52):013x}", f"{self.rng.getrandbits(32):08x}",
                 f"{self.rng.getrandbits(32):08x}"]
        return f"operation-{millis}-{'-'.join(parts)}"


def uses_address(rule: dict[str, Any], address: dict[str, Any]) -> bool:
    """Whether a forwarding rule's IP is that reserved address (same type and network)."""
    if address.get("addressType") == "INTERNAL":
        return bool(rule.get("loadBalancingScheme") == "INTERNAL"
                    and rule.get("subnetwork") == address.get("subnetwork"))
    return bool(rule.get("loadBalancingScheme", "EXTERNAL") == "EXTERNAL")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def fingerprint(value: Any) -> str:
    """A content hash in GCE's fingerprint form (8 bytes, base64)."""
    if value in ({}, None):
        return EMPTY_LABELS_FINGERPRINT
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without its private `_fields`."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}
