"""The emulated subscription's state: objects as ARM renders them, writes in flight, the world.

Objects are kept whole, as ARM returns them (`id`, `name`, `type`, `location`, `tags`, `sku`,
`etag`, `properties` with children inline and their ids filled in), keyed by the lowercased id.
A write is applied when it is accepted (provisioningState `Updating`, or `Deleting`) and
finished by its operation (`Succeeded`, or rolled back when the operation fails): a GET during
the operation shows the goal state, as ARM's network provider does, and `busy` holds the
operation so that a second write meets 409 AnotherOperationInProgress. What refers to what is
computed from the objects (`users`), so an in-use check sees writes still in flight.

The seeded world (resource group, virtual network, node subnet, NSG; the VMs, which are not
Microsoft.Network objects, as plain nodes) is remembered so that `leaks` tells what ARM calls
made and left behind. Everything runs on the server's event loop: no locks.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import ArmError, group_not_found, in_progress, resource_not_found
from .ids import Rid


@dataclass(frozen=True)
class Settings:
    operation_delay: float = 0.1
    """Seconds a PUT/DELETE stays InProgress before it Succeeded (0: done at once)."""
    operation_retry_after: int = 0
    """Retry-After sent with long-running answers (ARM sends 10; the SDK sleeps it: 0 = none)."""
    page_size: int = 50
    """Objects per list page before a nextLink."""
    max_frontends: int = 600
    max_rules: int = 1500
    max_probes: int = 1000
    max_pools: int = 1000
    max_security_rules: int = 1000
    max_addresses: int = 5000
    """Backend addresses per pool (a Standard pool's 5,000 IP configurations)."""

    def changed(self, values: dict[str, Any]) -> Settings:
        known = {_camel(f.name): f for f in fields(self)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ArmError(400, "InvalidSetting", f"unknown setting {unknown[0]!r}; "
                                                  f"known: {sorted(known)}")
        out: dict[str, Any] = {}
        for name, value in values.items():
            f = known[name]
            out[f.name] = float(value) if f.type == "float" else int(value)
            if out[f.name] < 0:
                raise ArmError(400, "InvalidSetting", f"{name} cannot be negative")
        return replace(self, **out)

    def json(self) -> dict[str, Any]:
        return {_camel(f.name): getattr(self, f.name) for f in fields(self)}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


@dataclass
class Node:
    """A VM of the world: not an ARM network object here, only what the nodes file needs."""

    name: str
    ip: str
    zone: str
    provider_id: str = ""
    """`azure:///subscriptions/S/resourceGroups/G/providers/Microsoft.Compute/
    virtualMachines/NAME`, the Node's spec.providerID."""


class Objects(dict[str, dict[str, Any]]):
    """The objects by key, counting replacements: references change only when an object is
    put or removed (in-place changes touch states, etags and tags), so `Store.users` indexes
    them once per version."""

    version = 0

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        self.version += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.version += 1
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self.version += 1
        return super().pop(key, *default)

    def clear(self) -> None:
        self.version += 1
        super().clear()


@dataclass
class Store:
    subscription: str
    group: str
    location: str
    settings: Settings = field(default_factory=Settings)
    groups: dict[str, str] = field(default_factory=dict)
    """Lowercased name -> name of every resource group (implicit: seeded, never an ARM call)."""
    objects: Objects = field(default_factory=Objects)
    busy: dict[str, str] = field(default_factory=dict)
    """Object key -> the URL of its operation in flight."""
    seeded: dict[str, set[str]] = field(default_factory=dict)
    """Seeded object key -> the lowercased ids of its seeded children."""
    cluster: str = "kubernetes"
    vnet: str = ""
    subnet: str = ""
    nsg: str = ""
    nodes: list[Node] = field(default_factory=list)
    health: dict[str, str] = field(default_factory=dict)
    """Backend address (or `<rule id>|<address>`) -> "Up" | "Down", what a load-balancing
    rule's health action reports (`rule_health`); absent: Up."""
    rng: random.Random = field(default_factory=random.Random)
    _index: tuple[int, dict[str, list[str]]] = (-1, {})

    def __post_init__(self) -> None:
        self.groups.setdefault(self.group.lower(), self.group)

    # -- objects ------------------------------------------------------------------------------
    def check_scope(self, rid: Rid) -> None:
        if rid.subscription.lower() != self.subscription.lower():
            raise ArmError(404, "SubscriptionNotFound",
                           f"The subscription '{rid.subscription}' could not be found.")
        if rid.group.lower() not in self.groups:
            raise group_not_found(rid.group)

    def get(self, rid: Rid) -> dict[str, Any] | None:
        return self.objects.get(rid.key)

    def require(self, rid: Rid) -> dict[str, Any]:
        self.check_scope(rid)
        obj = self.objects.get(rid.key)
        if obj is None:
            raise resource_not_found(rid.type, rid.name, rid.group)
        return obj

    def check_idle(self, rid: Rid) -> None:
        operation = self.busy.get(rid.key)
        if operation is not None:
            raise in_progress(rid.top.path, operation)

    def of_type(self, kind: str, group: str | None = None) -> list[dict[str, Any]]:
        """Objects of `kind` (in `group`), by id."""
        prefix = f"/subscriptions/{self.subscription}/resourcegroups/".lower()
        found = []
        for key, obj in sorted(self.objects.items()):
            tail = key[len(prefix):].split("/") if key.startswith(prefix) else []
            if len(tail) == 5 and tail[3] == kind.lower() and (
                    group is None or tail[0] == group.lower()):
                found.append(obj)
        return found

    def users(self, rid: Rid) -> list[str]:
        """Ids of the objects (or their children) that refer to `rid` or, for a top-level
        object, to one of its children: it cannot go."""
        version, index = self._index
        if version != self.objects.version:
            index = {}
            for obj in self.objects.values():
                for ref_id, where in references(obj):
                    target = ref_id.lower()
                    index.setdefault(target, []).append(where)
                    parts = target.split("/")
                    if len(parts) == 11:  # a child: its parent is used too
                        index.setdefault("/".join(parts[:9]), []).append(where)
            self._index = (self.objects.version, index)
        return sorted(set(index.get(rid.path.lower(), [])))

    # -- identities ---------------------------------------------------------------------------
    def new_etag(self) -> str:
        return f'W/"{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"'

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def leaks(self) -> dict[str, list[str]]:
        """What ARM calls made and left: objects beyond the seeded world, and children added
        to seeded objects (a rule left in the cluster's NSG), by type."""
        out: dict[str, list[str]] = {}
        for key, obj in sorted(self.objects.items()):
            kind = obj["type"].split("/")[-1]
            if key not in self.seeded:
                out.setdefault(kind, []).append(obj["id"])
                continue
            for child_type in ("securityRules", "subnets"):
                for child in obj["properties"].get(child_type, []):
                    if child["id"].lower() not in self.seeded[key]:
                        out.setdefault(child_type, []).append(child["id"])
        return out


def references(obj: dict[str, Any]) -> list[tuple[str, str]]:
    """Every `{"id": ...}` reference inside `obj` to another object: (id, where it sits)."""
    found: list[tuple[str, str]] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            if set(value) == {"id"} and isinstance(value["id"], str):
                found.append((value["id"], where))
                return
            own = value.get("id")
            here = own if isinstance(own, str) else where
            for name, item in value.items():
                if name != "id":
                    walk(item, here)
        elif isinstance(value, list):
            for item in value:
                walk(item, where)

    walk(obj.get("properties", {}), obj["id"])
    own = obj["id"].lower()
    return [(r, w) for r, w in found if not r.lower().startswith(own + "/")
            and r.lower() != own]


def missing(rid: Rid) -> ArmError:
    return resource_not_found(rid.type, rid.name, rid.group)
