"""What every emulated resource type shares: the envelope of a PUT body, children, references.

A kind turns a PUT body into the object ARM would store (`build`: the envelope checked here,
its `properties` by the kind, keeping only the writable fields so that a model read and PUT
back does not smuggle read-only ones in), renders it with the read-only back-references ARM
adds (`render`), and refuses a delete of something in use (`check_delete`). Children
(`backendAddressPools`, `securityRules`, `subnets`) are written through their parent: a child
PUT or DELETE is a PUT of the whole parent with that child replaced, validated the same way.
References go through `Refs.require`: the object must exist (InvalidResourceReference), be
Succeeded (ReferencedResourceNotProvisioned, as ARM's network provider refuses an object still
being written) and be in the same location.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from .errors import ArmError, bad_request, child_not_found, invalid, invalid_reference
from .ids import Rid, check_name, ref
from .store import Store

OPERATION_NAMES = {"publicIPAddresses": "PublicIpAddress", "loadBalancers": "LoadBalancer",
                   "virtualNetworks": "VirtualNetwork",
                   "networkSecurityGroups": "NetworkSecurityGroup"}
ENVELOPE = frozenset({"location", "tags", "sku", "properties", "id", "name", "type", "etag",
                      "zones"})


class Kind:
    type: ClassVar[str]
    writable_children: ClassVar[tuple[str, ...]] = ()
    readable_children: ClassVar[tuple[str, ...]] = ()
    taggable: ClassVar[bool] = True
    """PATCH `{"tags": ...}` (updateTags) is answered."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- what a kind defines ------------------------------------------------------------------
    def properties(self, rid: Rid, body: dict[str, Any], props: dict[str, Any],
                   current: dict[str, Any] | None, location: str) -> dict[str, Any]:
        """The stored `properties` for `props` (checked; references resolved)."""
        raise NotImplementedError

    def sku(self, body: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any] | None:
        return None

    def render(self, obj: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(obj)

    def check_delete(self, rid: Rid, obj: dict[str, Any]) -> None:
        users = self.store.users(rid)
        if users:
            raise bad_request("InUseResourceCannotBeDeleted",
                              f"{rid.path} is in use by {users[0]} and cannot be deleted.")

    # -- shared -------------------------------------------------------------------------------
    def build(self, rid: Rid, body: dict[str, Any], current: dict[str, Any] | None
              ) -> dict[str, Any]:
        """The object a PUT of `body` to `rid` leaves (no etag or provisioningState yet)."""
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise bad_request("LocationRequired", "The location property is required for this "
                                                  "definition.")
        location = location.replace(" ", "").lower()
        if current is not None and current["location"] != location:
            raise ArmError(409, "InvalidResourceLocation",
                           f"The resource '{rid.name}' already exists in location "
                           f"'{current['location']}' in resource group '{rid.group}'. A resource "
                           f"with the same name cannot be created in location '{location}'.")
        props = body.get("properties", {})
        if not isinstance(props, dict):
            raise invalid("properties", props, "an object")
        out: dict[str, Any] = {
            "name": current["name"] if current else rid.name, "id": rid.path,
            "type": f"Microsoft.Network/{self.type}", "location": location,
            "tags": tags(body.get("tags"))}
        sku = self.sku(body, current)
        if sku is not None:
            out["sku"] = sku
        if isinstance(body.get("zones"), list):
            out["zones"] = [str(z) for z in body["zones"]]
        out["properties"] = self.properties(rid, body, props, current, location)
        return out

    def inputs(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A stored object as a PUT body (what a child write changes)."""
        return copy.deepcopy({k: v for k, v in obj.items() if k in ENVELOPE})

    def with_child(self, obj: dict[str, Any], collection: str, name: str,
                   child: dict[str, Any] | None) -> dict[str, Any]:
        """The parent's body with child `name` replaced by `child` (None: removed)."""
        body = self.inputs(obj)
        items = [c for c in body["properties"].get(collection, [])
                 if c["name"].lower() != name.lower()]
        if child is not None:
            entry = {"name": name, "properties": child.get("properties", {})}
            position = next((i for i, c in enumerate(body["properties"].get(collection, []))
                             if c["name"].lower() == name.lower()), len(items))
            items.insert(position, entry)
        body["properties"][collection] = items
        return body

    def find_child(self, obj: dict[str, Any], rid: Rid) -> dict[str, Any]:
        for child in self.render(obj)["properties"].get(rid.child_type, []):
            if child["name"].lower() == rid.child_name.lower():
                return dict(child)
        raise child_not_found(rid.path)


def tags(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 50:
        raise invalid("tags", value, "an object of at most 50 tags")
    for key, item in value.items():
        if not isinstance(item, str) or not 0 < len(key) <= 512 or len(item) > 256:
            raise bad_request("InvalidTag", f"The tag {key!r}: names of 1-512 characters, "
                                            "string values of at most 256.")
        if any(c in key for c in "<>%&\\?/"):
            raise bad_request("InvalidTagNameCharacters",
                              f"The tag names '{key}' have reserved characters '<,>,%,&,\\,?,/'.")
    return dict(value)


def children(parent: Rid, collection: str, items: Any, field: str
             ) -> list[tuple[Rid, dict[str, Any]]]:
    """A child list of a body: (child rid, its properties); names checked and unique."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise invalid(field, items, "a list")
    out: list[tuple[Rid, dict[str, Any]]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise invalid(f"{field}[{index}]", item, "an object")
        name = check_name(item.get("name", ""), f"{field}[{index}].name")
        if name.lower() in seen:
            raise bad_request("DuplicateResourceName",
                              f"Resource {parent.path} has two child resources with the same "
                              f"name ({name}) in {field}.")
        seen.add(name.lower())
        props = item.get("properties", {})
        if not isinstance(props, dict):
            raise invalid(f"{field}[{index}].properties", props, "an object")
        out.append((parent.child(collection, name), props))
    return out


def child_entry(rid: Rid, props: dict[str, Any]) -> dict[str, Any]:
    return {"name": rid.child_name, "id": rid.path, "type": rid.arm_type, "properties": props}


class Refs:
    """Reference checks of one object being written (`by`: the object or child referring)."""

    def __init__(self, store: Store, location: str) -> None:
        self.store, self.location = store, location

    def require(self, value: Any, field: str, by: str, kind: str, child: str = ""
                ) -> tuple[Rid, dict[str, Any]]:
        """The referenced object (top-level) and the child named, both existing."""
        rid = ref(value, field)
        if rid is None:
            raise bad_request("InvalidRequestFormat", f"{field} is required.")
        if rid.type != kind or rid.child_type != child:
            raise invalid_reference(rid.path, by, f"is not a {kind}{'/' + child if child else ''}")
        obj = self.store.objects.get(rid.key)
        if obj is None or rid.subscription.lower() != self.store.subscription.lower():
            raise invalid_reference(rid.path, by)
        state = obj["properties"].get("provisioningState")
        if state != "Succeeded":  # upstream parses this message for the resource's group/name
            verb = "Delete" if state == "Deleting" else "Put"
            raise bad_request("ReferencedResourceNotProvisioned",
                              f"Cannot proceed with operation because resource {obj['id']} "
                              f"used by resource {'/'.join(by.split('/')[:9])} is not in "
                              f"Succeeded state. Resource is in {state} state and the last "
                              "operation that updated/is updating the resource is "
                              f"{verb}{OPERATION_NAMES[rid.type]}Operation.")
        if obj["location"] != self.location:
            raise invalid_reference(rid.path, by, f"is in location {obj['location']}, not "
                                                  f"{self.location}")
        if child:
            found = next((c for c in obj["properties"].get(child, [])
                          if c["name"].lower() == rid.child_name.lower()), None)
            if found is None:
                raise invalid_reference(rid.path, by)
            return rid, found
        return rid, obj
