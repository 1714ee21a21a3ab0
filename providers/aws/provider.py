"""`AwsProvider`: one Network Load Balancer per LoadBalancer Service, behind the provider
interface.

ensure = validate -> discover (node instances, subnets, security groups) -> desired (pure) ->
observe (by name and ownership tags) -> deploy (only the differences) -> status (the NLB's DNS
name). While AWS still provisions the NLB, ensure raises RetryAfter(5 s) carrying the status
with the hostname, so the controller writes it at once and polls at a fixed interval.

delete rediscovers everything by tags and descriptions rather than trusting the NLB to lead to
the rest: a crash after DeleteLoadBalancer leaves target groups and rules that upstream leaks
forever; here the next delete (or orphan collection via `list_owned`, which reports target
groups whose NLB is gone) removes them.

Threads: writes for one balancer are serialised by a lock per balancer name; different
Services ensure concurrently (boto3 clients are thread-safe; rate limits are shared).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
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
)

from . import names, observe
from .annotations import ANNOTATION_PREFIXES, EIP_ALLOCATIONS, AwsOptions, parse_annotations
from .client import ApiError, AwsClient, map_error
from .deploy import Deployer, Result, delete_target_group, ignore_missing
from .desired import desired, instance_id
from .ingress import revoke
from .model import DesiredNlb, Observed
from .settings import AwsSettings, parse_settings

log = logging.getLogger(__name__)
DETACHED_SCAN_SECONDS = 300.0
"""How old the scan for target groups no load balancer uses may be (one scan serves every
Service of the cluster; a restarted controller scans on its first ensure)."""

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
        self._detached: dict[str, list[dict[str, Any]]] | None = None
        self._detached_at = 0.0

    def _detached_groups(self, balancer: str) -> list[dict[str, Any]]:
        """Target groups tagged for `balancer` that no load balancer uses, from one scan of
        the cluster's groups at most every DETACHED_SCAN_SECONDS (and on the first ensure after
        a start, which is when a crash may have left one)."""
        with self._locks_guard:
            fresh = self._detached is not None and \
                time.monotonic() - self._detached_at < DETACHED_SCAN_SECONDS
            if fresh and self._detached is not None:
                return list(self._detached.get(balancer, []))
        scanned: dict[str, list[dict[str, Any]]] = {}
        for owned in observe.scan_owned(self.client, self.cluster_name, load_balancers=False):
            if not owned.raw.get("LoadBalancerArns"):
                scanned.setdefault(owned.tags.get(names.TAG_BALANCER, ""), []).append(owned.raw)
        with self._locks_guard:
            self._detached, self._detached_at = scanned, time.monotonic()
        return list(scanned.get(balancer, []))

    def _forget_detached(self, balancer: str) -> None:
        with self._locks_guard:
            if self._detached is not None:
                self._detached.pop(balancer, None)

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    # -- Provider --------------------------------------------------------------------------
    def validate(self, spec: LoadBalancerSpec) -> None:
        """Capabilities, annotations and requested IPs; no AWS call."""
        check_capabilities(self.capabilities, spec)
        self._options(spec)
        for i, li in enumerate(spec.listeners):
            if li.node_port is None:
                raise PermanentError("spec.allocateLoadBalancerNodePorts",
                                     f"spec.ports[{i}] has no nodePort; an NLB targets nodePorts")

    def ensure(self, spec: LoadBalancerSpec) -> LoadBalancerStatus:
        """Create or update the NLB; RetryAfter while AWS provisions it."""
        self.validate(spec)
        with self._lock(spec.name), _mapped():
            want, have = self._prepare(spec)
            result = Deployer(self.client, want, have, cluster=self.cluster_name,
                              balancer=spec.name, sleep=self._sleep).run()
            self._forget_detached(spec.name)  # deleted above if there were any
        status = self._status(spec, want, have, result)
        if result.state == "provisioning":
            raise RetryAfter(PROVISIONING_POLL_SECONDS, "AWS is provisioning the NLB",
                             status=status)
        if result.state == "failed":
            raise TransientError(f"AWS reports load balancer {want.load_balancer.name} failed")
        return status

    def plan(self, spec: LoadBalancerSpec) -> list[str]:
        """The writes ensure would make now, in words."""
        self.validate(spec)
        with _mapped():
            want, have = self._prepare(spec)
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
        """Everything of `ref`, found by tags and rule descriptions, in dependency order:
        listeners -> NLB -> target groups -> security group rules. Gone is success."""
        with self._lock(ref.name), _mapped():
            vpcs: set[str] = set()
            raw_lb = observe.find_load_balancer(self.client, names.load_balancer_name(ref.name))
            if raw_lb is not None:
                arn = raw_lb["LoadBalancerArn"]
                tags = observe.describe_tags(self.client, [arn]).get(arn, {})
                if names.is_owned(tags, self.cluster_name, ref.name):
                    vpcs.add(raw_lb.get("VpcId", ""))
                    self._delete_lb(arn)
            for owned in observe.scan_owned(self.client, self.cluster_name,
                                            load_balancers=False):
                if owned.tags.get(names.TAG_BALANCER) == ref.name:
                    vpcs.add(owned.raw.get("VpcId", ""))
                    delete_target_group(self.client, owned.arn, self._sleep)
            self._revoke_rules(ref.name, {v for v in vpcs if v})

    def release(self, ref: BalancerRef) -> None:
        """Drop lbctl's ownership tags (lbctl.io/*) from the NLB and its target groups; the
        objects stay and keep serving. Security group rules keep their description."""
        with self._lock(ref.name), _mapped():
            arns: dict[str, dict[str, str]] = {}
            raw_lb = observe.find_load_balancer(self.client, names.load_balancer_name(ref.name))
            if raw_lb is not None:
                arn = raw_lb["LoadBalancerArn"]
                tags = observe.describe_tags(self.client, [arn]).get(arn, {})
                if names.is_owned(tags, self.cluster_name, ref.name):
                    arns[arn] = tags
            for owned in observe.scan_owned(self.client, self.cluster_name,
                                            load_balancers=False):
                if owned.tags.get(names.TAG_BALANCER) == ref.name:
                    arns[owned.arn] = owned.tags
            for arn, tags in arns.items():
                keys = [k for k in tags if k.startswith(names.LBCTL_TAG_PREFIX)]
                if keys:
                    self.client.elbv2("RemoveTags", ResourceArns=[arn], TagKeys=keys)

    def list_owned(self) -> Iterable[BalancerRef]:
        """Every balancer with an NLB or a target group tagged for this cluster."""
        with _mapped():
            owned = observe.scan_owned(self.client, self.cluster_name)
        refs: dict[str, BalancerRef] = {}
        for item in owned:
            ref = names.ref_from_tags(item.tags)
            if ref is not None:
                refs.setdefault(ref.name, ref)
        return [refs[k] for k in sorted(refs)]

    def close(self) -> None:
        self.client.close()

    # -- helpers ---------------------------------------------------------------------------
    def _options(self, spec: LoadBalancerSpec) -> AwsOptions:
        options = parse_annotations(spec)
        if spec.requested_ips and options.scheme != "internal":
            raise PermanentError("spec.loadBalancerIP",
                                 "an internet-facing NLB takes its addresses from Elastic IP "
                                 f"allocations: use the {EIP_ALLOCATIONS} annotation")
        if spec.requested_ips and not options.private_ipv4_addresses:
            from dataclasses import replace  # noqa: PLC0415

            options = replace(options, private_ipv4_addresses=spec.requested_ips)
        return options

    def _prepare(self, spec: LoadBalancerSpec) -> tuple[DesiredNlb, Observed]:
        options = self._options(spec)
        ids = [iid for t in spec.targets if (iid := instance_id(t.provider_id))]
        found, raw_groups = self._discovery.discover(ids)
        if not found.vpc_id:
            raise TransientError("no node is a running AWS instance, so the VPC is unknown; "
                                 "set aws.vpcID to create balancers without nodes")
        labels: Mapping[str, Mapping[str, str]] = {}
        if options.target_node_labels and self._cluster is not None:
            labels = {n.name: n.labels for n in self._cluster.nodes()}
        want = desired(spec, options, self.settings, found, labels)
        have = observe.observe_balancer(
            self.client, self.cluster_name, spec.name, want.load_balancer.name,
            lb_attributes=bool(want.load_balancer.attributes), raw_groups=raw_groups,
            detached=self._detached_groups(spec.name))
        return want, have

    def _status(self, spec: LoadBalancerSpec, want: DesiredNlb, have: Observed,
                result: Result) -> LoadBalancerStatus:
        notes = list(want.notes)
        for tg in want.target_groups:
            seen = have.target_groups.get(tg.name)
            if seen is not None and seen.unhealthy:
                notes.append(f"{len(seen.unhealthy)} of {len(seen.targets)} targets unhealthy "
                             f"in {tg.name}")
        details = [("loadBalancerArn", result.lb_arn or ""), ("loadBalancerName",
                                                               want.load_balancer.name),
                   ("targetGroups", ",".join(sorted(result.target_group_arns)))]
        return LoadBalancerStatus(
            ingress=(IngressPoint(hostname=result.dns_name),) if result.dns_name else (),
            ports=tuple(PortStatus(li.port, li.protocol) for li in spec.listeners),
            degraded="; ".join(notes) or None,
            serving=result.state == "active" and any(tg.targets for tg in want.target_groups),
            details=tuple(sorted(details)))

    def _delete_lb(self, arn: str) -> None:
        try:
            for page in self.client.pages("elbv2", "DescribeListeners", LoadBalancerArn=arn):
                for li in page.get("Listeners", []):
                    ignore_missing(self.client.elbv2, "DeleteListener",
                                    ListenerArn=li["ListenerArn"])
        except ApiError as exc:
            if not exc.not_found:
                raise
        ignore_missing(self.client.elbv2, "DeleteLoadBalancer", LoadBalancerArn=arn)

    def _revoke_rules(self, balancer: str, vpcs: set[str]) -> None:
        """Our rules on every group of the balancer's VPCs (all groups when none is known)."""
        if self.settings.vpc_id:
            vpcs.add(self.settings.vpc_id)
        scopes: list[str | None] = [*sorted(vpcs)] or [None]
        for vpc in scopes:
            rules = observe.rules_of(observe.describe_security_groups(self.client, vpc_id=vpc),
                                     balancer)
            by_group: dict[str, list[Any]] = {}
            for rule in rules:
                by_group.setdefault(rule.group_id, []).append(rule)
            for group, group_rules in sorted(by_group.items()):
                revoke(self.client, group, group_rules)


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
