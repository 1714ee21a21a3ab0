"""The cluster's instance groups: one unmanaged group per zone, shared by every Service's
backend services, whose members follow the cluster's nodes.

Why shared and remembered: a node added to a cluster with 300 Services must cost one write per
zone, not 300. Every ensure asks `sync(members)`; the first after a node change reads the
groups and writes the difference (add the new members, remove the ones no longer targets),
and remembers what each zone now holds; the other 299 find their wanted members equal to what
was remembered and cost nothing. What is remembered is forgotten after `ttl` seconds and after
any error (the provider calls `forget`), so a change made behind lbctl's back (someone removing
an instance from a group) is repaired within one resync. The caller holds the provider's
shared-objects lock around `sync` and `delete_all`: one writer at a time.

Removal belongs here and nowhere else: every Service's targets are the cluster's selected
nodes, so the members a spec does not name are nodes that left (deleted, excluded, not ready to
serve). A zone with none left keeps its (emptied) group until the last Service goes
(`delete_all`): the backend services stop naming it, and a node coming back to that zone finds
it. Which zones have a group is listed once (one aggregated call) after each `forget`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from providers.errors import PermanentError

from . import names
from .client import GceClient, GceError
from .desired import Instance

log = logging.getLogger(__name__)


class InstanceGroups:
    """See the module docstring. Not thread-safe: the caller serialises."""

    def __init__(self, gce: GceClient, cluster: str, ttl: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.gce = gce
        self.s = gce.settings
        self.cluster = cluster
        self.name = names.instance_group(cluster)
        self.ttl = ttl
        self._clock = clock
        self._known: dict[str, frozenset[str]] = {}
        self._zones: set[str] | None = None
        """Zones where the cluster's group exists (None: not listed since the last forget)."""
        self._since = 0.0

    def forget(self) -> None:
        self._known.clear()
        self._zones = None

    def _message(self, kind: str, body: dict[str, Any]) -> Any:
        return getattr(self.gce.compute, kind).from_json(json.dumps(body))

    def _link(self, zone: str, instance: str) -> dict[str, str]:
        return {"instance": f"projects/{self.s.project}/zones/{zone}/instances/{instance}"}

    def sync(self, members: Iterable[Instance]) -> None:
        """Each zone's group holds exactly `members` of that zone (made when missing)."""
        if self._clock() - self._since > self.ttl:
            self.forget()
        by_zone: dict[str, set[str]] = {}
        for i in members:
            by_zone.setdefault(i.zone, set()).add(i.name)
        if self._zones is None:  # a zone whose last node went keeps a group: empty it too
            self._zones = {zone[6:] for zone, group in self.gce.aggregated(
                "instanceGroups", project=self.s.project, filter=f'name = "{self.name}"')
                if zone.startswith("zones/")
                and names.is_shared(group.get("description"), self.cluster)}
        for zone in self._zones - set(by_zone):
            by_zone[zone] = set()
        for zone, wanted in sorted(by_zone.items()):
            if self._known.get(zone) == frozenset(wanted):
                continue
            self._known.pop(zone, None)
            self._zone(zone, wanted)
            if wanted:
                self._zones.add(zone)
            if not self._known:
                self._since = self._clock()
            self._known[zone] = frozenset(wanted)

    def _zone(self, zone: str, wanted: set[str]) -> None:
        where = {"project": self.s.project, "zone": zone}
        found = self.gce.get("instanceGroups", **where, instance_group=self.name)
        have: set[str] = set()
        if found is None:
            if not wanted:
                return
            body = {"name": self.name, "description": names.cluster_description(
                        self.cluster, "instance group"),
                    "network": f"projects/{self.s.project}/global/networks/{self.s.network}"}
            self.gce.write("instanceGroups", "insert", scope=("zone", zone), **where,
                           instance_group_resource=self._message("InstanceGroup", body))
        else:
            if not names.is_shared(found.get("description"), self.cluster):
                raise PermanentError("gcp", f"instance group {self.name!r} in {zone} exists "
                                            "and is not this cluster's")
            have = {item["instance"].rsplit("/", 1)[1] for item in self.gce.list(
                "instanceGroups", "list_instances", **where, instance_group=self.name,
                instance_groups_list_instances_request_resource=self._message(
                    "InstanceGroupsListInstancesRequest", {"instanceState": "ALL"}))}
        gone = sorted(have - wanted)
        if gone:
            log.info("instance group %s/%s: removing %s", zone, self.name, ", ".join(gone))
            self.gce.write("instanceGroups", "remove_instances", scope=("zone", zone), **where,
                           instance_group=self.name,
                           instance_groups_remove_instances_request_resource=self._message(
                               "InstanceGroupsRemoveInstancesRequest",
                               {"instances": [self._link(zone, n) for n in gone]}))
        missing = sorted(wanted - have)
        if missing:
            self.gce.write("instanceGroups", "add_instances", scope=("zone", zone), **where,
                           instance_group=self.name,
                           instance_groups_add_instances_request_resource=self._message(
                               "InstanceGroupsAddInstancesRequest",
                               {"instances": [self._link(zone, n) for n in missing]}))

    def delete_all(self) -> list[str]:
        """Delete the cluster's group in every zone (the last Service went); a group a backend
        service still uses stays (GCE refuses: another Service came). Answers the zones done."""
        self.forget()
        done: list[str] = []
        for zone, group in self.gce.aggregated(
                "instanceGroups", project=self.s.project, filter=f'name = "{self.name}"'):
            if not zone.startswith("zones/") or not names.is_shared(group.get("description"),
                                                                    self.cluster):
                continue
            try:
                self.gce.write("instanceGroups", "delete", scope=("zone", zone[6:]),
                               project=self.s.project, zone=zone[6:], instance_group=self.name)
            except GceError as exc:
                if exc.in_use:
                    log.info("instance group %s/%s is in use: kept", zone, self.name)
                    continue
                if not exc.not_found:
                    raise
            done.append(zone[6:])
        return done
