"""`AzureProvider`: the Provider protocol over the cluster's shared load balancers, written
through one `Coalescer` per shared object (the external LB, the internal LB, the NSG).

Why this shape: every Service of the cluster lives in the same LB and ARM replaces it whole on
each write, so per-Service writes are what make upstream slow (one PUT per Service, serialised)
and racy (412s, lost frontends). Here an ensure resolves its public IP (its own resource,
before the frontend that references it), then submits its change to the LB's coalescer and
waits: the changes of every Service that arrives within the batch window go out in one
etag-guarded PUT, and a node change (the pool) rides along with them. Then the NSG the same
way, with the frontend's IP as the rules' destination. The same balancer is never worked on
twice at once (a lock per balancer); different balancers proceed in parallel up to the
coalescers.

A change of nodes alone (every Service's targets change at once) touches the pool only: the
provider remembers each balancer's last desired state, and an ensure that differs from it only
in its nodes submits the pool change and nothing else (no public IP read, no NSG); all the
Services' identical pool changes fold into one LB write.

Cleanup that only matters after a change of shape (a Service moved between external and
internal, or from our public IP to the user's) is done on the first ensure of a balancer in
this process and whenever its shape changed: the steady state reads the LB once per batch and
its resource group's public IPs once (a listing shared by every Service for a few seconds), and
writes nothing.

Ownership: the LBs carry `lbctl-cluster` tags (another owner's LB raises NotOwnedError, never
touched); a Service's parts in them are recognised by exact names (`<stem>-<uid32>`, ...); our
public IPs carry the Service's tags. `release` can hand over only the public IP (its tags are
removed): the frontend lives in lbctl's shared LB, which stays lbctl's.

Target health (`LoadBalancerStatus.targets`, `lbctl status`'s TARGETS) comes from one
load-balancing rule's health action per Service (`health`: POST `.../loadBalancingRules/RULE/
health`, `up` of `up + down`), read on the resync alone (an ensure whose desired state, nodes
included, is the last one's): creates, changes and node changes report None (unknown, "-"),
and so does a failed read, which never fails the ensure. A resync costs that POST and its
Location poll per Service, in a token bucket of their own (`azure.rateLimits.health`).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from lbctl.parsing import ConfigError
from providers.cluster import ClusterView
from providers.errors import PermanentError
from providers.interface import Capabilities
from providers.spec import (
    BalancerRef,
    IngressPoint,
    LoadBalancerSpec,
    LoadBalancerStatus,
    ServiceRef,
)

from . import names
from .annotations import parse_annotations
from .changes import (
    ArmObject,
    frontend_ip,
    lb_change,
    lb_removal,
    nsg_change,
    nsg_removal,
)
from .client import ArmClient
from .coalesce import Coalescer
from .desired import Desired, Parts, desired, pool_addresses
from .errors import map_error
from .health import rule_health
from .public_ips import PublicIps
from .settings import AzureSettings, parse_settings

CAPABILITIES = Capabilities(
    protocols=frozenset({"TCP", "UDP"}), mixed_protocols=True, static_ips=True,
    source_ranges=True, health_check_protocols=frozenset({"TCP", "HTTP"}),
    ip_families=frozenset({"IPv4"}), shared_objects=True, ingress="ip")


class AzureProvider:
    capabilities = CAPABILITIES

    def __init__(self, settings: AzureSettings, cluster_name: str, cluster: ClusterView,
                 client: ArmClient | None = None) -> None:
        self.settings = settings
        self.cluster_name = cluster_name
        self.cluster = cluster
        self._arm = client
        self._lock = threading.Lock()
        self._writers: dict[tuple[str, str, str], Coalescer] = {}
        self._pips: PublicIps | None = None
        self._side: ThreadPoolExecutor | None = None
        self._balancers: dict[str, threading.Lock] = {}
        self._shapes: dict[str, tuple[bool, bool]] = {}
        """balancer -> (internal, our public IP) as last ensured in this process."""
        self._applied: dict[str, tuple[str, tuple[dict[str, Any], ...], str, Parts]] = {}
        """balancer -> (desired without its nodes, the pool, the IP, the parts as resolved)
        of the last successful ensure: a change of nodes alone touches the pool only."""

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def arm(self) -> ArmClient:
        with self._lock:
            if self._arm is None:
                self._arm = ArmClient(self.settings)
            return self._arm

    def _writer(self, kind: str, group: str, name: str) -> Coalescer:
        arm = self.arm
        with self._lock:
            key = (kind, group, name)
            if key not in self._writers:
                self._writers[key] = Coalescer(ArmObject(arm, kind, group, name),
                                               f"{kind}/{name}",
                                               window=self.settings.batch_window_seconds)
            return self._writers[key]

    @property
    def pips(self) -> PublicIps:
        """The public IPs, and the group listings they are read from (one per provider)."""
        arm = self.arm
        with self._lock:
            if self._pips is None:
                self._pips = PublicIps(arm, self.settings, self.cluster_name)
            return self._pips

    @property
    def side(self) -> ThreadPoolExecutor:
        """Threads for the writes an ensure makes beside its LB write (the NSG's)."""
        with self._lock:
            if self._side is None:
                self._side = ThreadPoolExecutor(64, thread_name_prefix="azure-beside")
            return self._side

    def lb(self, internal: bool) -> Coalescer:
        return self._writer("loadBalancers", self.settings.lb_group, names.load_balancer(
            self.cluster_name, internal, self.settings.load_balancer_name))

    def nsg(self) -> Coalescer:
        return self._writer("networkSecurityGroups", self.settings.resource_group,
                            self.settings.security_group_name)

    def _balancer_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._balancers.setdefault(name, threading.Lock())

    # -- the Provider protocol ---------------------------------------------------------------
    def validate(self, spec: LoadBalancerSpec) -> None:
        parse_annotations(spec)
        found, skipped = pool_addresses(spec.targets, "")
        if spec.targets and not found:
            node, why = skipped[0]
            raise PermanentError("spec", f"no target is an Azure node: node {node}: {why}")

    def ensure(self, spec: LoadBalancerSpec) -> LoadBalancerStatus:
        self.validate(spec)
        b = spec.name
        with self._balancer_lock(b):
            try:
                want = desired(spec, parse_annotations(spec), self.settings)
                key = _without_nodes(want)
                last = self._applied.pop(b, None)
                resync = last is not None and last[0] == key and last[1] == want.pool_addresses
                if last is not None and last[0] == key and last[1] != want.pool_addresses:
                    # only the nodes changed: the pool alone (folded with the other Services'
                    # identical change into one LB write); a resync, where nothing changed,
                    # goes the whole way and repairs drift
                    want = dataclasses.replace(want, parts=last[3])
                    self.lb(want.internal).submit(b, lb_change(want))
                    ip = last[2]
                else:
                    ip, want = self._ensure(b, want)
                self._applied[b] = (key, want.pool_addresses, ip, want.parts)
            except Exception as exc:
                raise map_error(exc) from exc
            # the resync alone reads the targets' health (`health`); never fails the ensure
            targets = rule_health(self.arm, want) \
                if resync and self.settings.target_health else None
        degraded = "; ".join(f"node {n} is not a backend: {why}" for n, why in want.skipped)
        return LoadBalancerStatus(ingress=(IngressPoint(ip=ip, ip_mode="VIP"),),
                                  degraded=degraded or None, targets=targets,
                                  details=(("loadBalancer", want.load_balancer),
                                           ("frontend", want.parts.frontend["name"])))

    def _ensure(self, b: str, want: Desired) -> tuple[str, Desired]:
        """The whole way: public IP, the LB, the other scheme's LB after a move, the NSG,
        our public IP after a move to the user's. Answers the IP and `want` as resolved
        (its frontend on the public IP found)."""
        shape = (want.internal, want.public_ip_ours)
        moved = self._shapes.pop(b, None) != shape
        pips = self.pips
        want, ip = pips.resolve(want)
        # what does not wait for this LB's write goes beside it: each write is an operation of
        # a second or more, and a Service holds its worker until all are done
        beside: list[Future[Any]] = []
        if moved:  # out of the other scheme's LB (nothing there: a read, no write)
            beside.append(self.side.submit(self.lb(not want.internal).submit, b,
                                           lb_removal(b, self.cluster_name)))
        if ip is not None:  # external: the rules' destination is the public IP, known now
            beside.append(self.side.submit(self.nsg().submit, b,
                                           nsg_change(want, self.cluster_name, ip)))
        written = self.lb(want.internal).submit(b, lb_change(want))
        for done in beside:
            done.result()
        if want.internal:
            ip = frontend_ip(written, want)
            if ip is None:
                raise PermanentError("spec", "ARM gave the frontend no IP address")
            self.nsg().submit(b, nsg_change(want, self.cluster_name, ip))
        assert ip is not None
        if moved and not want.public_ip_ours:  # ours, from before, is unused now
            pips.release(b, self.settings.resource_group, strict=True)
        self._shapes[b] = shape
        return ip, want

    def plan(self, spec: LoadBalancerSpec) -> list[str]:
        want = desired(spec, parse_annotations(spec), self.settings)
        pip = "" if want.internal else (
            f"public IP {want.public_ip_name}" if want.public_ip_ours else
            f"the public IP {want.public_ip_name or 'at ' + str(want.requested_ip)} (yours, "
            "kept)")
        words = ([pip] if pip else []) + [
            f"load balancer {want.load_balancer}: frontend {want.parts.frontend['name']}, "
            f"{len(want.parts.rules)} rule(s), {len(want.parts.probes)} probe(s), the pool "
            f"at {len(want.pool_addresses)} node(s)",
            f"network security group {want.security_group}: "
            f"{', '.join(r['name'] for r in want.security_rules) or 'no rule'}"]
        return [f"ensure {w}" for w in words]

    def _frontend_of(self, ref: BalancerRef) -> tuple[bool, dict[str, Any]] | None:
        for internal in (False, True):
            lb = self.arm.get("loadBalancers", self.settings.lb_group, names.load_balancer(
                self.cluster_name, internal, self.settings.load_balancer_name))
            for frontend in ((lb or {}).get("properties") or {}).get(
                    "frontendIPConfigurations", []):
                if names.is_frontend_of(ref.name, str(frontend.get("name", ""))):
                    return internal, frontend
        return None

    def observe(self, ref: BalancerRef) -> LoadBalancerStatus | None:
        try:
            found = self._frontend_of(ref)
            if found is None:
                return None
            internal, frontend = found
            props = frontend.get("properties") or {}
            ip = props.get("privateIPAddress") if internal else None
            pip_id = str((props.get("publicIPAddress") or {}).get("id", ""))
            if not internal and pip_id:
                parts = pip_id.split("/")
                pip = self.arm.get("publicIPAddresses", parts[4], parts[-1])
                ip = ((pip or {}).get("properties") or {}).get("ipAddress")
        except Exception as exc:
            raise map_error(exc) from exc
        return LoadBalancerStatus(ingress=(IngressPoint(ip=str(ip), ip_mode="VIP"),)) \
            if ip else None

    def delete(self, ref: BalancerRef) -> None:
        with self._balancer_lock(ref.name):
            self._shapes.pop(ref.name, None)
            self._applied.pop(ref.name, None)
            try:
                self.nsg().submit(ref.name, nsg_removal(self.cluster_name, ref.name))
                # the public IP's resource group (azure-load-balancer-resource-group may have
                # put ours elsewhere) is read from the frontend as it goes
                referenced: set[str] = set()
                for internal in (False, True):
                    self.lb(internal).submit(ref.name, lb_removal(ref.name, self.cluster_name,
                                                                  referenced))
                groups = {self.settings.resource_group}
                groups |= {pip.split("/")[4] for pip in referenced if pip.count("/") >= 4}
                pips = self.pips
                for group in sorted(groups):
                    pips.release(ref.name, group, strict=True)
            except Exception as exc:
                raise map_error(exc) from exc

    def release(self, ref: BalancerRef) -> None:
        group, name = self.settings.resource_group, names.public_ip(ref.name)
        try:
            found = self.arm.get("publicIPAddresses", group, name)
            if found is None or not names.is_owned(found.get("tags"), ref.cluster, ref.name):
                return
            ours = {names.TAG_CLUSTER, names.TAG_BALANCER, names.TAG_SERVICE, names.TAG_UID,
                    names.TAG_ROLE}
            tags = {k: v for k, v in (found.get("tags") or {}).items() if k not in ours}
            body = {k: v for k, v in found.items() if k not in ("etag",)}
            self.arm.put("publicIPAddresses", group, name, body={**body, "tags": tags},
                         if_match=str(found.get("etag") or "") or None)
        except Exception as exc:
            raise map_error(exc) from exc

    def list_owned(self) -> Iterable[BalancerRef]:
        refs: dict[str, BalancerRef] = {}
        try:
            for pip in self.arm.list("publicIPAddresses", self.settings.resource_group):
                ref = names.ref_from_tags(pip.get("tags"))
                if ref is not None and ref.cluster == self.cluster_name:
                    refs.setdefault(ref.service.uid, ref)
            for internal in (False, True):
                lb = self.arm.get("loadBalancers", self.settings.lb_group, names.load_balancer(
                    self.cluster_name, internal, self.settings.load_balancer_name))
                if lb is None or not names.is_owned(lb.get("tags"), self.cluster_name):
                    continue
                for frontend in (lb.get("properties") or {}).get("frontendIPConfigurations", []):
                    read = names.uid_from_frontend(str(frontend.get("name", "")))
                    if read is not None:
                        stem, uid = read
                        refs.setdefault(uid, BalancerRef(stem, self.cluster_name,
                                                         ServiceRef("", stem, uid)))
        except Exception as exc:
            raise map_error(exc) from exc
        return list(refs.values())

    def close(self) -> None:
        if self._side is not None:
            self._side.shutdown(wait=True)
        if self._arm is not None:
            self._arm.close()


def _without_nodes(want: Desired) -> str:
    """`want` as text but for its pool and skipped nodes: equal texts differ in nodes alone."""
    doc = dataclasses.asdict(dataclasses.replace(want, pool_addresses=(), skipped=()))
    return json.dumps(doc, sort_keys=True, default=str)


def create(settings: Mapping[str, Any], cluster_name: str, cluster: ClusterView
           ) -> AzureProvider:
    parsed, problems = parse_settings(settings)
    if problems:
        raise ConfigError("azure", problems)
    return AzureProvider(parsed, cluster_name, cluster)
