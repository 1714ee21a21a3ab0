"""Unmanaged zonal instance groups: the nodes of one zone, as a backend service's backend.

GCE's rules kept here: `addInstances` takes instances that exist, in the group's own zone and
network, not already members (400 memberAlreadyExists) and, when the group is load-balanced
(some backend service uses it), in no other load-balanced group (400
instanceInMultipleLoadBalancedIgs: "instance may belong to at most one load-balanced instance
group"); a group holds at most `maxGroupSize` instances (2,000 by default). `removeInstances`
takes members only (400 memberNotFound otherwise: stricter than GCE may be, so a provider
removes what it listed). `listInstances` pages like a list; `setNamedPorts` checks the
`fingerprint` when one is sent. A group a backend service uses cannot be deleted. Each call is
one operation on the group: a second write while one is RUNNING is "not ready".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .errors import GceError, condition_not_met, invalid, not_found, required
from .fields import Body
from .kinds import Action, Kind
from .links import Key, parse_ref, valid_name
from .listing import answer, page
from .operations import Write
from .store import fingerprint, public

STATES = ("ALL", "RUNNING")


class InstanceGroups(Kind):
    collection = "instanceGroups"
    kind = "compute#instanceGroup"
    api: ClassVar[dict[str, str]] = {"zones": "instanceGroups"}
    label = "instance_group"
    fields = frozenset({
        "creationTimestamp", "description", "fingerprint", "id", "kind", "name", "namedPorts",
        "network", "region", "selfLink", "size", "subnetwork", "zone"})
    supported = frozenset({"name", "description", "network", "namedPorts", "fingerprint"})

    def normalize(self, key: Key, body: Body, current: dict[str, Any] | None) -> dict[str, Any]:
        obj: dict[str, Any] = {"name": key.name}
        description = body.text("description", max_len=2048)
        if description:
            obj["description"] = description
        network = body.text("network")
        if network:
            obj["network"] = parse_ref(network, "resource.network",
                                       Key(key.project, "global", "networks", ""),
                                       "networks").url
        ports = _named_ports(body)
        if ports:
            obj["namedPorts"] = ports
        return obj

    def verify(self, key: Key, obj: dict[str, Any]) -> None:
        if "network" in obj:
            self.store.require(parse_ref(obj["network"], "resource.network", key, "networks"))

    def render(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        out = public(obj)
        out["size"] = len(self.store.members.get(key, []))
        out["fingerprint"] = fingerprint(obj.get("namedPorts", []))
        return out

    def removed(self, key: Key) -> None:
        self.store.members.pop(key, None)

    def actions(self) -> dict[str, tuple[str, Action]]:
        return {"addInstances": ("write", self.add_instances),
                "removeInstances": ("write", self.remove_instances),
                "listInstances": ("read", self.list_instances),
                "setNamedPorts": ("write", self.set_named_ports)}

    def _instances(self, key: Key, data: dict[str, Any]) -> list[Key]:
        if self.store.get(key) is None:
            raise not_found(key.path)
        body = Body(data, "", supported=("instances",), ignored=())
        entries = body.children("instances", ("instance",))
        if not entries:
            raise required("instances")
        found = [parse_ref(e.text("instance", need=True), e.field("instance"), key, "instances")
                 for e in entries]
        seen: set[Key] = set()
        for index, instance in enumerate(found):
            if instance in seen:
                raise invalid(f"instances[{index}].instance", instance.url,
                              "The instance is listed twice.")
            seen.add(instance)
        return found

    def add_instances(self, key: Key, data: dict[str, Any], query: Mapping[str, str]) -> Write:
        instances = self._instances(key, data)

        def verify() -> None:
            group = self.store.get(key)
            if group is None:
                raise not_found(key.path)
            members = self.store.members.get(key, [])
            balanced = self.store.load_balanced()
            if len(members) + len(instances) > self.store.settings.max_group_size:
                raise invalid("instances", len(instances), f"An instance group holds at most "
                              f"{self.store.settings.max_group_size} instances.")
            for index, instance in enumerate(instances):
                found = self.store.require(instance)
                if instance.zone != key.zone:
                    raise invalid(f"instances[{index}].instance", instance.url,
                                  f"The instance is in zone {instance.zone}, the instance "
                                  f"group in zone {key.zone}.")
                network = found["networkInterfaces"][0]["network"]
                if group.get("network", network) != network:
                    raise invalid(f"instances[{index}].instance", instance.url,
                                  "The instance is not in the instance group's network.")
                if instance in members:
                    raise GceError(400, "memberAlreadyExists",
                                   f"The resource '{instance.path}' is already a member of "
                                   f"'{key.path}'")
                others = [g for g in self.store.groups_of(instance)
                          if g != key and g.url in balanced]
                if others and key.url in balanced:
                    raise multiple_load_balanced(instance)

        def apply() -> None:
            members = self.store.members.setdefault(key, [])
            members.extend(instances)
            group = self.store.objects[key]
            group.setdefault("network", self.store.objects[instances[0]][
                "networkInterfaces"][0]["network"])

        verify()
        return Write(key, "addInstances", None, verify, apply)

    def remove_instances(self, key: Key, data: dict[str, Any],
                         query: Mapping[str, str]) -> Write:
        instances = self._instances(key, data)

        def verify() -> None:
            if self.store.get(key) is None:
                raise not_found(key.path)
            members = self.store.members.get(key, [])
            for instance in instances:
                if instance not in members:
                    raise GceError(400, "memberNotFound", f"The resource '{instance.path}' is "
                                                          f"not a member of '{key.path}'")

        def apply() -> None:
            members = self.store.members.get(key, [])
            self.store.members[key] = [m for m in members if m not in instances]

        verify()
        return Write(key, "removeInstances", None, verify, apply)

    def list_instances(self, key: Key, data: dict[str, Any],
                       query: Mapping[str, str]) -> dict[str, Any]:
        if self.store.get(key) is None:
            raise not_found(key.path)
        Body(data, "", supported=("instanceState",), ignored=()).choice(
            "instanceState", STATES, "ALL")
        items = [{"instance": m.url, "status": "RUNNING"}
                 for m in self.store.members.get(key, [])]
        chosen, token = page(items, query, ("instance", "status", "namedPorts"))
        return answer("compute#instanceGroupsListInstances", f"{key.url}/listInstances",
                      chosen, token)

    def set_named_ports(self, key: Key, data: dict[str, Any],
                        query: Mapping[str, str]) -> Write:
        current = self.store.get(key)
        if current is None:
            raise not_found(key.path)
        body = Body(data, "", supported=("namedPorts", "fingerprint"), ignored=())
        ports = _named_ports(body)
        given = body.text("fingerprint")
        if given is not None and given != fingerprint(current.get("namedPorts", [])):
            raise condition_not_met()

        def apply() -> None:
            group = self.store.objects[key]
            group.pop("namedPorts", None)
            if ports:
                group["namedPorts"] = ports

        def verify() -> None:
            if self.store.get(key) is None:
                raise not_found(key.path)

        return Write(key, "setNamedPorts", None, verify, apply)


def multiple_load_balanced(instance: Key) -> GceError:
    return GceError(400, "instanceInMultipleLoadBalancedIgs",
                    f"Validation failed for instance '{instance.path}': instance may belong to "
                    f"at most one load-balanced instance group.")


def _named_ports(body: Body) -> list[dict[str, Any]]:
    ports = []
    for entry in body.children("namedPorts", ("name", "port")):
        name = entry.text("name", need=True)
        assert name is not None
        if not valid_name(name):
            raise invalid(entry.field("name"), name, "Must be a valid name.")
        port = entry.integer("port", 1, 65535)
        if port is None:
            raise required(entry.field("port"))
        ports.append({"name": name, "port": port})
    return ports
