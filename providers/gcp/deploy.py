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
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from providers.errors import PermanentError

from . import names
from .client import GceClient, GceError
from .desired import Desired
from .groups import InstanceGroups
from .remove import check_scopes, delete_quietly, remove_shared_checks

log = logging.getLogger(__name__)

Scope = tuple[str, str]


class Deployer:
    """One balancer's writes through `gce` (see the module docstring)."""

    def __init__(self, gce: GceClient, cluster: str, groups: InstanceGroups | None = None,
                 ) -> None:
        self.gce = gce
        self.s = gce.settings
        self.cluster = cluster
        self.groups = groups if groups is not None else InstanceGroups(gce, cluster)
        self.created = False
        """A backend service was created in this pass (a new balancer: no check to drop)."""

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

    # -- backend services ------------------------------------------------------------------------
    def backend_services(self, desired: Desired) -> None:
        for name, body in desired.backend_services:
            found = self.gce.get("regionBackendServices", **self._regional(),
                                 backend_service=name)
            if found is None:
                self.gce.write("regionBackendServices", "insert", scope=("region", self.s.region),
                               **self._regional(),
                               backend_service_resource=self._message("BackendService", body))
                self.created = True
                continue
            self._check_owner(found, body["description"], "backend service")
            if _differs(body, found):
                patch = {**body, "fingerprint": found.get("fingerprint", "")}
                self.gce.write("regionBackendServices", "patch", scope=("region", self.s.region),
                               **self._regional(), backend_service=name,
                               backend_service_resource=self._message("BackendService", patch))

    # -- the address -----------------------------------------------------------------------------
    def address(self, desired: Desired) -> str:
        """The balancer's IP: our reserved address (made if missing, replaced when what
        cannot change differs) or the user's, by name or by IP."""
        if desired.reserved_ip is not None:
            return self._reserved(desired, desired.reserved_ip)
        assert desired.address_name is not None
        found = self.gce.get("addresses", **self._regional(), address=desired.address_name)
        if desired.address is None:  # the user's, by name
            if found is None:
                raise PermanentError("metadata.annotations[networking.gke.io/load-balancer-"
                                     "ip-addresses]", f"no reserved address "
                                                      f"{desired.address_name!r} in "
                                                      f"{self.s.region}")
            return str(found["address"])
        if found is not None:
            self._check_owner(found, desired.address["description"], "address")
            if not _differs(desired.address, found, ignore=("labels",)):
                return str(found["address"])
            # the IP, type, subnet or tier: none can change in place
            log.info("address %s differs in what cannot change in place: releasing it from "
                     "the forwarding rules and reserving it again", desired.address_name)
            self._drop_rules(desired)
            self._delete_address(desired.address_name)
        self.gce.write("addresses", "insert", scope=("region", self.s.region),
                       **self._regional(),
                       address_resource=self._message("Address", desired.address))
        found = self.gce.get("addresses", **self._regional(), address=desired.address_name)
        if found is None:
            raise PermanentError("spec", f"address {desired.address_name} vanished")
        return str(found["address"])

    def _reserved(self, desired: Desired, ip: str) -> str:
        """The user's reserved external address holding `ip` (GCE cannot reserve a chosen
        external IP: the user reserves it, lbctl uses it and never releases it)."""
        field = "spec.loadBalancerIP"
        found = list(self.gce.list("addresses", **self._regional(), filter=f'address = "{ip}"'))
        if not found:
            raise PermanentError(field, f"{ip} is not a reserved address in {self.s.region}: "
                                        "reserve it first (gcloud compute addresses create "
                                        f"NAME --region {self.s.region} --addresses {ip}), "
                                        "or leave spec.loadBalancerIP empty for a new one")
        address = found[0]
        if address.get("addressType", "EXTERNAL") != "EXTERNAL":
            raise PermanentError(field, f"the address holding {ip} ({address.get('name')}) is "
                                        "INTERNAL; this Service's balancer is external")
        ours = {f"/forwardingRules/{n}" for n, _ in desired.forwarding_rules}
        others = [u for u in address.get("users", []) if not u.endswith(tuple(ours))]
        if others:
            raise PermanentError(field, f"the address holding {ip} ({address.get('name')}) is "
                                        f"in use by {others[0].rsplit('/', 1)[-1]}")
        return ip

    def _drop_rules(self, desired: Desired) -> None:
        for name, body in desired.forwarding_rules:
            found = self.gce.get("forwardingRules", **self._regional(), forwarding_rule=name)
            if found is not None:
                self._check_owner(found, body["description"], "forwarding rule")
                self.gce.write("forwardingRules", "delete", scope=("region", self.s.region),
                               **self._regional(), forwarding_rule=name)

    def _delete_address(self, name: str) -> None:
        try:
            self.gce.write("addresses", "delete", scope=("region", self.s.region),
                           **self._regional(), address=name)
        except GceError as exc:
            if not exc.not_found:
                raise

    def drop_own_address(self, desired: Desired) -> None:
        """Once the rules are on the user's address, ours (from before the user asked for
        theirs) goes; looked for on every pass, so a crash in between cannot leak it."""
        if desired.address_ours:
            return
        own = names.address(desired.balancer)
        if own == desired.address_name:
            return
        found = self.gce.get("addresses", **self._regional(), address=own)
        if found is None or found.get("description") != desired.owner:
            return
        if found.get("users"):
            log.warning("address %s is still used by %s: kept", own, found["users"])
            return
        self._delete_address(own)

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

    def drop_unused_checks(self, desired: Desired,
                           shared: AbstractContextManager[object] | None = None) -> None:
        """After a change of traffic policy or scheme, the health checks this Service no
        longer uses (its backend services were patched off them first): its own check in the
        other scope, or in both with the shared one, and then its own prober rule; with its
        own check, the kube-proxy check of either scope (GCE keeps one that another backend
        service still uses: `resourceInUseByAnotherResource`) and, once both are gone, theirs.
        """
        hc, b = desired.health_check, desired.balancer
        own = names.service_health_check(b)
        for scope_name, collection, scope, where in check_scopes(self.gce):
            if not hc.shared and hc.scope == scope_name:
                continue  # the one it uses
            found = self.gce.get(collection, **where, health_check=own)
            if found is not None and found.get("description") == desired.owner:
                delete_quietly(self.gce, collection, "health_check", own, scope, where)
        if hc.shared:
            rule = names.health_firewall(b)
            found = self.gce.get("firewalls", project=self.s.project, firewall=rule)
            if found is not None and found.get("description") == desired.owner:
                delete_quietly(self.gce, "firewalls", "firewall", rule, ("global", ""),
                               {"project": self.s.project})
        keep = hc.scope if hc.shared else None
        with shared if shared is not None else nullcontext():
            remove_shared_checks(self.gce, self.cluster, keep=keep)

    def ensure(self, desired: Desired,
               shared: AbstractContextManager[object] | None = None,
               changed: bool = True) -> str:
        """Every object of `desired`, in the crash-safe order; answers the IP. `shared` is
        held around the writes to the cluster's shared objects (instance groups, the
        kube-proxy check and its firewall): the provider's lock. `changed` (the desired state
        differs from the last one this process ensured, or there was none): also drop the
        health checks a change of policy left unused."""
        user_ip = None if desired.address_ours else self.address(desired)  # refused: no writes
        with shared if shared is not None else nullcontext():
            self.health_check(desired)
            name, body, _shared = desired.health_firewall
            self.firewall(name, body)
            self.groups.sync(desired.instances)
        self.backend_services(desired)
        ip = user_ip or self.address(desired)
        self.forwarding_rules(desired, ip)
        self.drop_own_address(desired)
        for fw_name, fw_body in desired.firewalls:
            self.firewall(fw_name, {**fw_body, "destinationRanges": [f"{ip}/32"]})
        if changed and not self.created:
            self.drop_unused_checks(desired, shared)
        return ip


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
