"""`GcpProvider`: the Provider protocol over `desired`, `Deployer` and `remove`, per-balancer
serialisation, and the shared objects' lock.

Why the locks: two Services' ensures share the cluster's instance groups and kube-proxy check
(`InstanceGroups`, the shared health check and its firewall): one writer at a time for those,
while different balancers otherwise proceed in parallel; the same balancer is never worked on
twice at once. What the groups hold is remembered across ensures (a node change costs one write
per zone, not one per Service) and forgotten on any error; so is each balancer's last desired
state: an ensure whose spec differs from the last only in its nodes touches the groups alone
(zero calls for all Services but the first), while an ensure where nothing changed (the
periodic resync) reads everything and repairs drift, and reads the targets' health
(`health`: one getHealth per backend service and zone; the node-only path reports no counts).
The shared objects are deleted with the last Service of type LoadBalancer the cluster view
shows (GCE refuses to delete what a backend service still uses, the safety net for a Service
being created meanwhile). The SDK
client is built on the first call that needs GCE (importing the SDK costs seconds), so
`lbctl plan` and start-up stay fast.

Ownership on the wire: forwarding rules and addresses carry labels (`lbctl-cluster`,
`lbctl-balancer`), which is how `list_owned` finds this cluster's balancers with one filtered
listing; every object's description names its owner, which `release` cannot change in GCE
(descriptions are immutable on most kinds), so a release removes the labels instead: the
balancer is then no longer listed as owned, and orphan collection leaves it alone.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from lbctl.parsing import ConfigError
from providers.cluster import ClusterView
from providers.errors import PermanentError
from providers.interface import Capabilities
from providers.spec import BalancerRef, IngressPoint, LoadBalancerSpec, LoadBalancerStatus

from . import names
from .annotations import parse_annotations
from .client import GceClient, map_error
from .deploy import Deployer
from .desired import Desired, Instance, desired, instances
from .groups import InstanceGroups
from .health import backend_health
from .remove import Remover, remove_shared
from .settings import GcpSettings, parse_settings

CAPABILITIES = Capabilities(
    protocols=frozenset({"TCP", "UDP"}), mixed_protocols=True, static_ips=True,
    source_ranges=True, health_check_protocols=frozenset({"TCP", "HTTP"}),
    ip_families=frozenset({"IPv4"}), ingress="ip",
    annotation_prefixes=("networking.gke.io/", "cloud.google.com/"))


class GcpProvider:
    capabilities = CAPABILITIES

    def __init__(self, settings: GcpSettings, cluster_name: str, cluster: ClusterView,
                 client: GceClient | None = None) -> None:
        self.settings = settings
        self.cluster_name = cluster_name
        self.cluster = cluster
        self._gce = client
        self._lock = threading.Lock()
        self._shared = threading.Lock()
        self._balancers: dict[str, threading.Lock] = {}
        self._tags: dict[tuple[str, str], tuple[str, ...]] = {}
        """(zone, instance) -> its network tags, read once."""
        self._tags_lock = threading.Lock()
        self._groups: InstanceGroups | None = None
        self._applied: dict[str, tuple[str, tuple[Instance, ...], str]] = {}
        """balancer -> (desired without its instances, the instances, the IP) of the last
        successful ensure: what lets a change of nodes alone skip everything but the groups."""

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def gce(self) -> GceClient:
        with self._lock:
            if self._gce is None:
                self._gce = GceClient(self.settings)
            return self._gce

    @property
    def groups(self) -> InstanceGroups:
        """The cluster's instance groups and what they are known to hold (`_shared` guards)."""
        gce = self.gce
        with self._lock:
            if self._groups is None:
                self._groups = InstanceGroups(gce, self.cluster_name)
            return self._groups

    def _others(self, ref: BalancerRef) -> bool:
        """Whether another Service of type LoadBalancer may still use the shared objects
        (any loadBalancerClass: kept rather than guessed)."""
        return any(s.type == "LoadBalancer" and not s.deleting
                   and (s.namespace, s.name) != (ref.service.namespace, ref.service.name)
                   for s in self.cluster.services())

    def _balancer_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._balancers.setdefault(name, threading.Lock())

    def _node_tags(self, spec: LoadBalancerSpec) -> tuple[str, ...]:
        if self.settings.node_tags:
            return self.settings.node_tags
        found, _ = instances(spec.targets, self.settings.project)
        tags: set[str] = set()
        with self._tags_lock:  # a new node is read once, not once per worker
            for inst in found:
                key = (inst.zone, inst.name)
                if key not in self._tags:
                    doc = self.gce.get("instances", project=self.settings.project,
                                       zone=inst.zone, instance=inst.name)
                    self._tags[key] = tuple((doc or {}).get("tags", {}).get("items", []))
                tags.update(self._tags[key])
        return tuple(sorted(tags))

    def _desired(self, spec: LoadBalancerSpec) -> Desired:
        return desired(spec, parse_annotations(spec), self.settings, self._node_tags(spec))

    # -- the Provider protocol ---------------------------------------------------------------
    def validate(self, spec: LoadBalancerSpec) -> None:
        parse_annotations(spec)
        found, skipped = instances(spec.targets, self.settings.project)
        if spec.targets and not found:
            node, why = skipped[0]
            raise PermanentError("spec", f"no target is a GCE instance of project "
                                         f"{self.settings.project}: node {node}: {why}")

    def ensure(self, spec: LoadBalancerSpec) -> LoadBalancerStatus:
        self.validate(spec)
        with self._balancer_lock(spec.name):
            try:
                want = self._desired(spec)
                key = _without_instances(want)
                last = self._applied.pop(spec.name, None)
                if last is not None and last[0] == key and last[1] != want.instances:
                    # only nodes changed since the last ensure: only the shared groups can
                    # differ (a resync, where nothing changed, verifies everything)
                    with self._shared:
                        self.groups.sync(want.instances)
                    ip = last[2]
                    targets = None  # free, so unread: the members just changed (`health`)
                else:  # the groups and the kube-proxy check are everyone's: one writer
                    ip = Deployer(self.gce, self.cluster_name, self.groups).ensure(
                        want, shared=self._shared, changed=last is None or last[0] != key)
                    targets = backend_health(self.gce, want.backend_services)
                self._applied[spec.name] = (key, want.instances, ip)
            except Exception as exc:
                with self._shared:  # what the groups hold is read again next time
                    self.groups.forget()
                raise map_error(exc) from exc
        degraded = None
        if want.skipped:
            degraded = "; ".join(f"node {n} is not a backend: {why}" for n, why in want.skipped)
        return LoadBalancerStatus(ingress=(IngressPoint(ip=ip, ip_mode="VIP"),),
                                  degraded=degraded, targets=targets,
                                  details=(("address", want.address_name or ip),
                                           ("forwardingRules", ",".join(
                                               n for n, _ in want.forwarding_rules))))

    def plan(self, spec: LoadBalancerSpec) -> list[str]:
        want = desired(spec, parse_annotations(spec), self.settings,
                       self.settings.node_tags or ("<the nodes' network tags>",))
        words = [f"health check {want.health_check.name}"
                 f"{' (shared)' if want.health_check.shared else ''}",
                 f"instance group {names.instance_group(self.cluster_name)} in "
                 f"{', '.join(want.zones) or 'no zone'}"]
        words += [f"backend service {n}" for n, _ in want.backend_services]
        words.append(f"address {want.address_name or 'reserved at ' + str(want.reserved_ip)}"
                     f"{'' if want.address_ours else ' (yours, kept)'}")
        words += [f"forwarding rule {n}" for n, _ in want.forwarding_rules]
        words += [f"firewall rule {n}" for n, _ in want.firewalls]
        return [f"ensure {w}" for w in words]

    def observe(self, ref: BalancerRef) -> LoadBalancerStatus | None:
        where = {"project": self.settings.project, "region": self.settings.region}
        try:
            for protocol in ("TCP", "UDP"):
                found = self.gce.get("forwardingRules", **where,
                                     forwarding_rule=names.forwarding_rule(ref.name, protocol))
                if found is not None and names.is_owned(found.get("description"),
                                                        ref.cluster, ref.name):
                    return LoadBalancerStatus(ingress=(IngressPoint(
                        ip=str(found["IPAddress"]), ip_mode="VIP"),))
        except Exception as exc:
            raise map_error(exc) from exc
        return None

    def delete(self, ref: BalancerRef) -> None:
        with self._balancer_lock(ref.name):
            self._applied.pop(ref.name, None)
            try:
                Remover(self.gce).delete(ref)
                if not self._others(ref):  # the last one: the cluster's shared objects too
                    with self._shared:
                        remove_shared(self.gce, self.groups)
            except Exception as exc:
                raise map_error(exc) from exc

    def release(self, ref: BalancerRef) -> None:
        self._applied.pop(ref.name, None)
        where = {"project": self.settings.project, "region": self.settings.region}
        try:
            for collection, key, name in [
                    *[("forwardingRules", "forwarding_rule", names.forwarding_rule(ref.name, p))
                      for p in ("TCP", "UDP")],
                    ("addresses", "address", names.address(ref.name))]:
                found = self.gce.get(collection, **where, **{key: name})
                if found is None or not found.get("labels"):
                    continue
                labels = {k: v for k, v in found["labels"].items()
                          if k not in (names.LABEL_CLUSTER, names.LABEL_BALANCER)}
                request = self.gce.compute.RegionSetLabelsRequest(
                    labels=labels, label_fingerprint=found.get("labelFingerprint", ""))
                self.gce.write(collection, "set_labels", scope=("region", self.settings.region),
                               **where, resource=name, region_set_labels_request_resource=request)
        except Exception as exc:
            raise map_error(exc) from exc

    def list_owned(self) -> Iterable[BalancerRef]:
        label = names.label_value(self.cluster_name)
        try:
            rules = list(self.gce.list(
                "forwardingRules", project=self.settings.project, region=self.settings.region,
                filter=f"labels.{names.LABEL_CLUSTER} = {label}"))
        except Exception as exc:
            raise map_error(exc) from exc
        refs: dict[str, BalancerRef] = {}
        for rule in rules:
            ref = names.ref_from_description(rule.get("description"))
            if ref is not None and ref.cluster == self.cluster_name:
                refs.setdefault(ref.name, ref)
        return list(refs.values())

    def close(self) -> None:
        if self._gce is not None:
            self._gce.close()


def _without_instances(want: Desired) -> str:
    """`want` as text, but for the instances (and the nodes skipped): equal texts differ in
    group membership alone."""
    doc = dataclasses.asdict(dataclasses.replace(want, instances=(), skipped=()))
    return json.dumps(doc, sort_keys=True, default=str)


def create(settings: Mapping[str, Any], cluster_name: str, cluster: ClusterView) -> GcpProvider:
    parsed, problems = parse_settings(settings)
    if not parsed.project:
        problems.append(("gcp.project", "required: set gcp.project (or GOOGLE_CLOUD_PROJECT)"))
    if problems:
        raise ConfigError("gcp", problems)
    return GcpProvider(parsed, cluster_name, cluster)
