"""Making one Service's desired GCE balancer real: observe each object by name, create what is
missing, change what differs, in an order that is safe to crash in, and delete in reverse.

Order (ingress-gce's, checked against GCE's references): health check and its prober firewall
-> the cluster's instance groups and their members -> backend services -> the address ->
forwarding rules (created last: nothing is reachable before the backends exist) -> the
clients' firewall (it needs the address's IP). Every step is "get, then write only a real
difference", so a re-run after a crash at any point continues where it stopped, and a steady
state costs reads only. An object with our name but another owner's description is never
touched: the Service fails naming it.

What cannot change in place is replaced: a forwarding rule whose protocol, ports, backend or
address differ is deleted and created again on the same reserved address (only
`allowGlobalAccess` and `networkTier` may be patched, and lbctl never needs to). Backend
services and health checks are patched (with the backend service's fingerprint), firewall
rules too.

Delete: forwarding rules -> our address (never the user's) -> firewall rules -> backend services
-> the Service's own health check (the shared kube-proxy check and its firewall stay while
another Service uses them; `cleanup` removes them with the last). Gone already is success.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from providers.errors import PermanentError
from providers.spec import BalancerRef

from . import names
from .client import GceClient, GceError
from .desired import Desired, Instance

log = logging.getLogger(__name__)

Scope = tuple[str, str]


class Deployer:
    """One balancer's writes through `gce` (see the module docstring)."""

    def __init__(self, gce: GceClient, cluster: str) -> None:
        self.gce = gce
        self.s = gce.settings
        self.cluster = cluster

    # -- helpers -------------------------------------------------------------------------------
    def _regional(self) -> dict[str, str]:
        return {"project": self.s.project, "region": self.s.region}

    def _message(self, kind: str, body: dict[str, Any]) -> Any:
        return getattr(self.gce.compute, kind).from_json(json.dumps(body))

    def _check_owner(self, found: dict[str, Any], description: str, what: str) -> None:
        if found.get("description") != description:
            raise PermanentError("metadata.name", f"GCE {what} {found.get('name')!r} exists and "
                                                  "is not this Service's (its description "
                                                  "names another owner): lbctl leaves it alone")

    # -- health check --------------------------------------------------------------------------
    def health_check(self, desired: Desired) -> None:
        hc = desired.health_check
        regional = hc.scope == "regional"
        collection = "regionHealthChecks" if regional else "healthChecks"
        where = self._regional() if regional else {"project": self.s.project}
        scope: Scope = ("region", self.s.region) if regional else ("global", "")
        found = self.gce.get(collection, **where, health_check=hc.name)
        if found is None:
            self.gce.write(collection, "insert", scope=scope, **where,
                           health_check_resource=self._message("HealthCheck", hc.body))
            return
        self._check_owner(found, hc.body["description"], "health check")
        if _differs(hc.body, found):
            self.gce.write(collection, "patch", scope=scope, **where, health_check=hc.name,
                           health_check_resource=self._message("HealthCheck", hc.body))

    # -- firewalls -------------------------------------------------------------------------------
    def firewall(self, name: str, body: dict[str, Any]) -> None:
        found = self.gce.get("firewalls", project=self.s.project, firewall=name)
        if found is None:
            self.gce.write("firewalls", "insert", scope=("global", ""), project=self.s.project,
                           firewall_resource=self._message("Firewall", body))
            return
        self._check_owner(found, body["description"], "firewall rule")
        if _differs(body, found):
            self.gce.write("firewalls", "patch", scope=("global", ""), project=self.s.project,
                           firewall=name, firewall_resource=self._message("Firewall", body))

    # -- instance groups -----------------------------------------------------------------------
    def groups(self, members: Iterable[Instance]) -> None:
        """The cluster's group in each zone holds at least `members` (shared by every Service:
        removal is the node sync's, never one Service's)."""
        by_zone: dict[str, set[str]] = {}
        for i in members:
            by_zone.setdefault(i.zone, set()).add(i.name)
        name = names.instance_group(self.cluster)
        for zone, wanted in sorted(by_zone.items()):
            where = {"project": self.s.project, "zone": zone}
            found = self.gce.get("instanceGroups", **where, instance_group=name)
            if found is None:
                body = {"name": name, "network": f"projects/{self.s.project}/global/networks/"
                                                  f"{self.s.network}",
                        "description": names.cluster_description(self.cluster,
                                                                 "instance group")}
                self.gce.write("instanceGroups", "insert", scope=("zone", zone), **where,
                               instance_group_resource=self._message("InstanceGroup", body))
                have: set[str] = set()
            else:
                if not names.is_shared(found.get("description"), self.cluster):
                    raise PermanentError("gcp", f"instance group {name!r} in {zone} exists and "
                                                "is not this cluster's")
                have = {item["instance"].rsplit("/", 1)[1] for item in self.gce.list(
                    "instanceGroups", "list_instances", **where, instance_group=name,
                    instance_groups_list_instances_request_resource=self._message(
                        "InstanceGroupsListInstancesRequest", {"instanceState": "ALL"}))}
            missing = sorted(wanted - have)
            if missing:
                refs = [{"instance": f"projects/{self.s.project}/zones/{zone}/instances/{n}"}
                        for n in missing]
                self.gce.write("instanceGroups", "add_instances", scope=("zone", zone), **where,
                               instance_group=name,
                               instance_groups_add_instances_request_resource=self._message(
                                   "InstanceGroupsAddInstancesRequest", {"instances": refs}))

    # -- backend services ------------------------------------------------------------------------
    def backend_services(self, desired: Desired) -> None:
        for name, body in desired.backend_services:
            found = self.gce.get("regionBackendServices", **self._regional(),
                                 backend_service=name)
            if found is None:
                self.gce.write("regionBackendServices", "insert", scope=("region", self.s.region),
                               **self._regional(),
                               backend_service_resource=self._message("BackendService", body))
                continue
            self._check_owner(found, body["description"], "backend service")
            if _differs(body, found):
                patch = {**body, "fingerprint": found.get("fingerprint", "")}
                self.gce.write("regionBackendServices", "patch", scope=("region", self.s.region),
                               **self._regional(), backend_service=name,
                               backend_service_resource=self._message("BackendService", patch))

    # -- the address -----------------------------------------------------------------------------
    def address(self, desired: Desired) -> str:
        """The balancer's IP: our reserved address (made if missing) or the user's."""
        found = self.gce.get("addresses", **self._regional(), address=desired.address_name)
        if desired.address is None:  # the user's, by name
            if found is None:
                raise PermanentError("metadata.annotations[networking.gke.io/load-balancer-"
                                     "ip-addresses]", f"no reserved address "
                                                      f"{desired.address_name!r} in "
                                                      f"{self.s.region}")
            return str(found["address"])
        if found is None:
            self.gce.write("addresses", "insert", scope=("region", self.s.region),
                           **self._regional(),
                           address_resource=self._message("Address", desired.address))
            found = self.gce.get("addresses", **self._regional(), address=desired.address_name)
            if found is None:
                raise PermanentError("spec", f"address {desired.address_name} vanished")
        else:
            self._check_owner(found, desired.address["description"], "address")
        return str(found["address"])

    # -- forwarding rules --------------------------------------------------------------------------
    def forwarding_rules(self, desired: Desired, ip: str) -> None:
        for name, body in desired.forwarding_rules:
            want = {**body, "IPAddress": ip}
            found = self.gce.get("forwardingRules", **self._regional(), forwarding_rule=name)
            if found is not None:
                self._check_owner(found, body["description"], "forwarding rule")
                if not _differs(want, found, ignore=("labels",)):
                    continue
                log.info("forwarding rule %s differs in what cannot change in place: replacing "
                         "it on the same address", name)
                self.gce.write("forwardingRules", "delete", scope=("region", self.s.region),
                               **self._regional(), forwarding_rule=name)
            self.gce.write("forwardingRules", "insert", scope=("region", self.s.region),
                           **self._regional(),
                           forwarding_rule_resource=self._message("ForwardingRule", want))

    def ensure(self, desired: Desired,
               shared: AbstractContextManager[object] | None = None) -> str:
        """Every object of `desired`, in the crash-safe order; answers the IP. `shared` is
        held around the writes to the cluster's shared objects (instance groups, the
        kube-proxy check and its firewall): the provider's lock."""
        with shared if shared is not None else nullcontext():
            self.health_check(desired)
            name, body, _shared = desired.health_firewall
            self.firewall(name, body)
            self.groups(desired.instances)
        self.backend_services(desired)
        ip = self.address(desired)
        self.forwarding_rules(desired, ip)
        for fw_name, fw_body in desired.firewalls:
            self.firewall(fw_name, {**fw_body, "destinationRanges": [f"{ip}/32"]})
        return ip


class Remover:
    """One balancer's objects deleted, found again by name and recognised by description;
    not-found is success (an earlier, interrupted delete got that far)."""

    def __init__(self, gce: GceClient) -> None:
        self.gce = gce
        self.s = gce.settings

    def _delete(self, collection: str, key: str, name: str, scope: Scope,
                where: dict[str, str], description: str) -> bool:
        found = self.gce.get(collection, **where, **{key: name})
        if found is None or found.get("description") != description:
            return False
        try:
            self.gce.write(collection, "delete", scope=scope, **where, **{key: name})
        except GceError as exc:
            if not exc.not_found:
                raise
        return True

    def delete(self, ref: BalancerRef) -> list[str]:
        """Delete in GCE's order; answers what was deleted (`kind/name`)."""
        b, mine = ref.name, names.description(ref)
        regional = {"project": self.s.project, "region": self.s.region}
        project = {"project": self.s.project}
        region: Scope = ("region", self.s.region)
        steps: list[tuple[str, str, str, Scope, dict[str, str]]] = [
            *[("forwardingRules", "forwarding_rule", names.forwarding_rule(b, p), region,
               regional) for p in ("TCP", "UDP")],
            ("addresses", "address", names.address(b), region, regional),
            ("firewalls", "firewall", names.firewall(b), ("global", ""), project),
            ("firewalls", "firewall", names.health_firewall(b), ("global", ""), project),
            *[("regionBackendServices", "backend_service", names.backend_service(b, p), region,
               regional) for p in ("TCP", "UDP")],
            ("regionHealthChecks", "health_check", names.service_health_check(b), region,
             regional),
            ("healthChecks", "health_check", names.service_health_check(b), ("global", ""),
             project),
        ]
        return [f"{collection}/{name}" for collection, key, name, scope, where in steps
                if self._delete(collection, key, name, scope, where, mine)]


def _differs(want: dict[str, Any], found: dict[str, Any], ignore: tuple[str, ...] = ()) -> bool:
    """Whether `found` disagrees with any field `want` sets (GCE adds fields of its own, and
    answers references as full URLs where we send partial ones)."""
    for key, value in want.items():
        if key in ignore or key == "fingerprint":
            continue
        if not _same(value, found.get(key)):
            return True
    return False


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and all(_same(v, got.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(got, list) and len(want) == len(got) and all(
            _same(w, g) for w, g in zip(want, got, strict=True))
    if isinstance(want, str) and isinstance(got, str) and want.startswith("projects/"):
        return got == want or got.endswith("/" + want)
    return bool(want == got)
