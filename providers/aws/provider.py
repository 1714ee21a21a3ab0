"""`AwsProvider`: one Network Load Balancer per LoadBalancer Service, behind the provider
interface.

ensure = validate -> discover (node instances, subnets, security groups) -> desired (pure) ->
observe (by name and ownership tags) -> deploy (only the differences) -> status (the NLB's DNS
name). While AWS still provisions the NLB, ensure raises RetryAfter(5 s) carrying the status
with the hostname, so the controller writes it at once and polls at a fixed interval.
Target counts (`LoadBalancerStatus.targets`) are the observe step's DescribeTargetHealth, read
before this pass's writes: the worst target group's; a group this pass created has not been
read and adds no view (a new NLB's counts appear on the provisioning poll that follows).

Security groups (see `firewall`): every NLB lbctl creates carries a frontend group of its own
(the Service's source ranges on the listener ports) and the cluster's shared backend group,
which the node groups admit (one rule per protocol and nodePort), so node groups no longer fill
up with per-CIDR rules. An NLB an older lbctl made without groups keeps the per-CIDR node rules
(AWS cannot add groups to it) and its Service hears so in status.degraded.

delete, release and list_owned (`cleanup`) rediscover everything by tags (the Resource Groups
Tagging API: O(owned objects), not O(account)) and descriptions rather than trusting the NLB to
lead to the rest: a crash after DeleteLoadBalancer leaves target groups, rules and a frontend
group that upstream leaks forever; here the next delete (or orphan collection via
`list_owned`) removes them.

Threads: writes for one balancer are serialised by a lock per balancer name; different
Services ensure concurrently (boto3 clients are thread-safe; rate limits are shared). The shared
backend group is deleted only when no ensure is using it (`groups.BackendGate`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Literal

from providers.cluster import ClusterView
from providers.errors import PermanentError, ProviderError, RetryAfter, TransientError
from providers.interface import Capabilities, check_capabilities
from providers.spec import (
    BalancerRef,
    IngressPoint,
    LoadBalancerSpec,
    LoadBalancerStatus,
    PortStatus,
    TargetHealth,
)

from . import groups, names, observe, tagging
from .annotation_keys import ANNOTATION_PREFIXES
from .annotation_reader import is_security_group_id
from .annotations import AwsOptions, parse_annotations
from .cleanup import Cleaner
from .client import ApiError, AwsClient, map_error
from .deploy import Deployer, Result
from .desired import desired, instance_id, keeps_legacy_rules, options_for, own_group_names
from .model import DesiredNlb, Observed
from .settings import AwsSettings, parse_settings

log = logging.getLogger(__name__)
DETACHED_SCAN_SECONDS = 300.0
"""How old the scan of the cluster's target groups (tagging API) may be: a group tagged for a
balancer that its NLB does not link (a crash between switching a listener and deleting the old
group) is read and deleted. One scan serves every Service of the cluster; a restarted
controller scans on its first ensure."""

PROVISIONING_POLL_SECONDS = 5.0

CAPABILITIES = Capabilities(
    protocols=frozenset({"TCP", "UDP"}), mixed_protocols=True, static_ips=True,
    source_ranges=True, health_check_protocols=frozenset({"TCP", "HTTP"}),
    ip_families=frozenset({"IPv4"}), shared_objects=False, ingress="hostname",
    annotation_prefixes=ANNOTATION_PREFIXES)


class AwsProvider:
    """NLBs in one region and VPC; see the module docstring."""

    capabilities: Capabilities = CAPABILITIES

    def __init__(self, settings: AwsSettings, cluster_name: str,
                 cluster: ClusterView | None = None, *, client: AwsClient | None = None,
                 problems: tuple[tuple[str, str], ...] = (),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.cluster_name = cluster_name
        self.problems = problems
        self.client = client or AwsClient(settings)
        self._cluster = cluster
        self._sleep = sleep
        self._discovery = observe.Discovery(self.client, settings.vpc_id)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._tagged: dict[str, list[str]] | None = None
        self._tagged_at = 0.0
        self._gate = groups.BackendGate()
        self._cleaner = Cleaner(self.client, cluster_name, settings.vpc_id, self._gate, sleep)

    def _tagged_groups(self, balancer: str) -> list[str]:
        """ARNs of the target groups tagged for `balancer`, from one tagging API scan of the
        cluster's groups at most every DETACHED_SCAN_SECONDS (and on the first ensure after a
        start, which is when a crash may have left one behind)."""
        with self._locks_guard:
            fresh = self._tagged is not None and \
                time.monotonic() - self._tagged_at < DETACHED_SCAN_SECONDS
            if fresh and self._tagged is not None:
                return list(self._tagged.get(balancer, []))
        scanned: dict[str, list[str]] = {}
        for item in tagging.owned(self.client, self.cluster_name, [tagging.TARGET_GROUP]):
            scanned.setdefault(item.balancer, []).append(item.arn)
        with self._locks_guard:
            self._tagged, self._tagged_at = scanned, time.monotonic()
        return list(scanned.get(balancer, []))

    def _forget_tagged(self, balancer: str) -> None:
        """After an ensure: its stray groups are deleted, the rest are linked to its NLB."""
        with self._locks_guard:
            if self._tagged is not None:
                self._tagged.pop(balancer, None)

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    # -- Provider --------------------------------------------------------------------------
    def validate(self, spec: LoadBalancerSpec) -> None:
        """Capabilities, annotations and requested IPs; no AWS call."""
        self._checked(spec)

    def ensure(self, spec: LoadBalancerSpec) -> LoadBalancerStatus:
        """Create or update the NLB; RetryAfter while AWS provisions it."""
        options = self._checked(spec)  # the annotations are parsed here, once per ensure
        with self._lock(spec.name), self._gate.use(), _mapped():
            want, have = self._prepare(spec, options)
            result = Deployer(self.client, want, have, cluster=self.cluster_name,
                              balancer=spec.name, sleep=self._sleep).run()
            self._forget_tagged(spec.name)
        status = self._status(spec, want, have, result)
        if result.state == "provisioning":
            raise RetryAfter(PROVISIONING_POLL_SECONDS, "AWS is provisioning the NLB",
                             status=status)
        if result.state == "failed":
            raise TransientError(f"AWS reports load balancer {want.load_balancer.name} failed")
        return status

    def plan(self, spec: LoadBalancerSpec) -> list[str]:
        """The writes ensure would make now, in words."""
        options = self._checked(spec)
        with _mapped():
            want, have = self._prepare(spec, options)
            return Deployer(self.client, want, have, cluster=self.cluster_name,
                            balancer=spec.name, dry_run=True).run().words

    def observe(self, ref: BalancerRef) -> LoadBalancerStatus | None:
        """The NLB's hostname and listener ports, or None when there is none of ours."""
        lb_name = names.load_balancer_name(ref.name)
        with _mapped():
            raw = observe.find_load_balancer(self.client, lb_name)
            if raw is None:
                return None
            arn = raw["LoadBalancerArn"]
            if not names.is_owned(observe.describe_tags(self.client, [arn]).get(arn, {}),
                                  self.cluster_name, ref.name):
                return None
            listeners = [li for page in self.client.pages("elbv2", "DescribeListeners",
                                                          LoadBalancerArn=arn)
                         for li in page.get("Listeners", [])]
        state = raw.get("State", {}).get("Code", "")
        return LoadBalancerStatus(
            ingress=(IngressPoint(hostname=raw.get("DNSName", "")),),
            ports=tuple(PortStatus(int(li["Port"]), p) for li in listeners
                        for p in str(li.get("Protocol", "")).split("_")),
            serving=state == "active", details=(("loadBalancerArn", arn), ("state", state)))

    def delete(self, ref: BalancerRef) -> None:
        """Everything of `ref`, found by tags and rule descriptions, in dependency order (see
        `cleanup`); gone is success; RetryAfter while AWS still holds the frontend group."""
        with self._lock(ref.name), _mapped():
            self._cleaner.delete(ref)
            self._forget_tagged(ref.name)

    def release(self, ref: BalancerRef) -> None:
        """Drop lbctl's ownership tags (lbctl.io/*) from the NLB, its target groups and its
        frontend group; the objects stay and keep serving. Rules keep their description."""
        with self._lock(ref.name), _mapped():
            self._cleaner.release(ref)

    def list_owned(self) -> Iterable[BalancerRef]:
        """Every balancer with an NLB, a target group or a frontend group tagged for this
        cluster (one tagging API listing)."""
        with _mapped():
            return self._cleaner.list_owned()

    def close(self) -> None:
        self.client.close()

    # -- helpers ---------------------------------------------------------------------------
    def _checked(self, spec: LoadBalancerSpec) -> AwsOptions:
        """Everything checkable without AWS (capabilities, nodePorts, annotations, requested
        IPs): the options to build with, or PermanentError naming the field."""
        check_capabilities(self.capabilities, spec)
        for i, li in enumerate(spec.listeners):
            if li.node_port is None:
                raise PermanentError("spec.allocateLoadBalancerNodePorts",
                                     f"spec.ports[{i}] has no nodePort; an NLB targets nodePorts")
        return options_for(spec, parse_annotations(spec))

    def _prepare(self, spec: LoadBalancerSpec,
                 options: AwsOptions) -> tuple[DesiredNlb, Observed]:
        """Observe what the decisions need, decide (pure, `desired`), observe the rest."""
        raw_lb = observe.find_load_balancer(self.client, names.load_balancer_name(spec.name))
        ids = [iid for t in spec.targets if (iid := instance_id(t.provider_id))]
        found, raw_groups = self._discovery.discover(
            ids, extra_groups=(raw_lb or {}).get("SecurityGroups") or ())
        if not found.vpc_id:
            raise TransientError("no node is a running AWS instance, so the VPC is unknown; "
                                 "set aws.vpcID to create balancers without nodes")
        legacy = keeps_legacy_rules(raw_lb, options.scheme)
        group_names = list(own_group_names(spec, legacy))
        seen = {g.get("GroupName") for g in raw_groups if g.get("VpcId") == found.vpc_id}
        # ours not (all) on the NLB: creating it, the annotation's groups in use (a frontend
        # left from before is found and deleted), or a switch back to ours: look up by name
        if set(group_names) - seen:
            raw_groups += groups.find_by_names(self.client, found.vpc_id,
                                               set(group_names) - seen)
        tags = [g for g in options.security_groups if not is_security_group_id(g)]
        if tags:
            found = replace(found, named_groups=observe.groups_by_name_tag(
                self.client, found.vpc_id, tags))
        labels: Mapping[str, Mapping[str, str]] = {}
        if options.target_node_labels and self._cluster is not None:
            labels = {n.name: n.labels for n in self._cluster.nodes()}
        want = desired(spec, options, self.settings, found, labels, legacy=legacy)
        have = observe.observe_balancer(
            self.client, self.cluster_name, spec.name, raw_lb,
            lb_attributes=bool(want.load_balancer.attributes), raw_groups=raw_groups,
            group_names=group_names, tagged_groups=self._tagged_groups(spec.name))
        return want, have

    def _status(self, spec: LoadBalancerSpec, want: DesiredNlb, have: Observed,
                result: Result) -> LoadBalancerStatus:
        notes = list(want.notes)
        views: list[TargetHealth | None] = []
        for tg in want.target_groups:
            seen = have.target_groups.get(tg.name)
            if seen is not None and seen.unhealthy:
                notes.append(f"{len(seen.unhealthy)} of {len(seen.targets)} targets unhealthy "
                             f"in {tg.name}")
            views.append(seen.health if seen is not None else None)
        details = [("loadBalancerArn", result.lb_arn or ""), ("loadBalancerName",
                                                               want.load_balancer.name),
                   ("targetGroups", ",".join(sorted(result.target_group_arns))),
                   ("securityGroups", ",".join(result.security_groups)),
                   ("securityGroupMode", want.security_group_mode)]
        return LoadBalancerStatus(
            ingress=(IngressPoint(hostname=result.dns_name),) if result.dns_name else (),
            ports=tuple(PortStatus(li.port, li.protocol) for li in spec.listeners),
            degraded="; ".join(notes) or None,
            serving=result.state == "active" and any(tg.targets for tg in want.target_groups),
            targets=TargetHealth.worst(views), details=tuple(sorted(details)))


class _mapped:
    """Context manager: ApiError and botocore errors leave as the provider taxonomy."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> Literal[False]:
        if exc is None or isinstance(exc, ProviderError):
            return False
        if isinstance(exc, ApiError) or type(exc).__module__.startswith("botocore"):
            raise map_error(exc) from exc
        return False


def create(settings: Mapping[str, Any], cluster_name: str,
           cluster: ClusterView) -> AwsProvider:
    """The `aws` provider factory: `settings` is the config's `aws:` section. Problems are
    logged (a bad key keeps its default); `validate_settings` reports the same for
    `lbctl config validate`."""
    parsed, problems = parse_settings(settings)
    for path, message in problems:
        log.warning("config %s: %s", path, message)
    return AwsProvider(parsed, cluster_name, cluster, problems=tuple(problems))
