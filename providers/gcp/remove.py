"""Deleting what lbctl built in GCE: one balancer's objects (`Remover`), and the cluster's
shared ones with the last Service that used them (`remove_shared`).

Why found again rather than remembered: a delete must work after a crash, in another process,
from the name and ownership alone. Each kind is read once by a name-pattern filter (both
protocols' rules in one listing), so a typical delete costs six reads and its writes. An object
is deleted only when its description names this balancer; not-found is success (an earlier,
interrupted delete got that far). Order is GCE's references backwards: forwarding rules ->
our address (never the user's: it has another name and no description of ours) -> firewall
rules -> backend services -> the Service's own health check.

Shared objects (the per-zone instance groups, the kube-proxy check and its firewall) go when
the provider sees no other Service that may use them; GCE itself refuses to delete a group or
check a backend service still references (`resourceInUseByAnotherResource`), which is the
safety net when another Service is being created at that moment: kept, and tried again with
the next last delete.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from providers.spec import BalancerRef

from . import names
from .client import GceClient, GceError
from .groups import InstanceGroups

log = logging.getLogger(__name__)

Scope = tuple[str, str]


def delete_quietly(gce: GceClient, collection: str, key: str, name: str, scope: Scope,
                   where: dict[str, str]) -> bool:
    """Delete one object: True when it is gone, False when GCE keeps it because it is in
    use; not-found is gone."""
    try:
        gce.write(collection, "delete", scope=scope, **where, **{key: name})
    except GceError as exc:
        if exc.in_use:
            log.info("%s %s is in use: kept", collection, name)
            return False
        if not exc.not_found:
            raise
    return True


class Remover:
    """One balancer's objects (see the module docstring)."""

    def __init__(self, gce: GceClient) -> None:
        self.gce = gce
        self.s = gce.settings

    def _found(self, ref: BalancerRef) -> Iterator[tuple[str, str, dict[str, Any], Scope,
                                                         dict[str, str]]]:
        """(collection, key, object, scope, where) of each object of `ref`, in delete order."""
        b = names.base(ref.name)
        regional = {"project": self.s.project, "region": self.s.region}
        project = {"project": self.s.project}
        region: Scope = ("region", self.s.region)
        protocols = f'name eq "{b}-(tcp|udp)"'
        for rule in self.gce.list("forwardingRules", **regional, filter=protocols):
            yield "forwardingRules", "forwarding_rule", rule, region, regional
        address = self.gce.get("addresses", **regional, address=names.address(ref.name))
        if address is not None:
            yield "addresses", "address", address, region, regional
        for rule in self.gce.list("firewalls", **project, filter=f'name eq "{b}-(fw|hc-fw)"'):
            yield "firewalls", "firewall", rule, ("global", ""), project
        for service in self.gce.list("regionBackendServices", **regional, filter=protocols):
            yield "regionBackendServices", "backend_service", service, region, regional
        check = names.service_health_check(ref.name)
        for collection, scope, where in (("regionHealthChecks", region, regional),
                                         ("healthChecks", ("global", ""), project)):
            found = self.gce.get(collection, **where, health_check=check)
            if found is not None:
                yield collection, "health_check", found, scope, where

    def delete(self, ref: BalancerRef) -> list[str]:
        """Delete in GCE's order; answers what was deleted (`kind/name`)."""
        mine = names.description(ref)
        done: list[str] = []
        for collection, key, found, scope, where in list(self._found(ref)):
            if found.get("description") != mine:
                continue
            if delete_quietly(self.gce, collection, key, str(found["name"]), scope, where):
                done.append(f"{collection}/{found['name']}")
        return done


def check_scopes(gce: GceClient) -> list[tuple[str, str, Scope, dict[str, str]]]:
    """(scope name, collection, scope, where) of a health check: regional, then global."""
    s = gce.settings
    return [("regional", "regionHealthChecks", ("region", s.region),
             {"project": s.project, "region": s.region}),
            ("global", "healthChecks", ("global", ""), {"project": s.project})]


def remove_shared(gce: GceClient, groups: InstanceGroups) -> list[str]:
    """The cluster's shared objects, each unless GCE says it is still in use; answers what
    went (`kind/name`)."""
    done = [f"instanceGroups/{zone}/{groups.name}" for zone in groups.delete_all()]
    return done + remove_shared_checks(gce, groups.cluster)


def remove_shared_checks(gce: GceClient, cluster: str, keep: str | None = None) -> list[str]:
    """The kube-proxy check in each scope but `keep` ("regional" | "global"), unless GCE says
    a backend service still uses it, and its prober rule once no scope has it."""
    s = gce.settings
    check = names.node_health_check(cluster)
    done: list[str] = []
    checks_left = keep is not None
    for scope_name, collection, scope, where in check_scopes(gce):
        if scope_name == keep:
            continue
        found = gce.get(collection, **where, health_check=check)
        if found is None or not names.is_shared(found.get("description"), cluster):
            continue
        if delete_quietly(gce, collection, "health_check", check, scope, where):
            done.append(f"{collection}/{check}")
        else:
            checks_left = True
    if checks_left:
        return done
    firewall = names.node_health_firewall(cluster)
    found = gce.get("firewalls", project=s.project, firewall=firewall)
    if found is not None and names.is_shared(found.get("description"), cluster) and \
            delete_quietly(gce, "firewalls", "firewall", firewall, ("global", ""),
                           {"project": s.project}):
        done.append(f"firewalls/{firewall}")
    return done
