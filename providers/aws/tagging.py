"""What the cluster owns, found through the Resource Groups Tagging API.

Why: listing every load balancer and target group of the region (DescribeLoadBalancers and
DescribeTargetGroups pages, then DescribeTags for all of them) costs O(objects in the account),
and an account shared by many clusters or teams makes delete, orphan collection and the
detached-group scan slow and throttled. GetResources with a TagFilter on `lbctl.io/cluster`
(and `lbctl.io/balancer` for one balancer) answers with the ARNs and tags of exactly what lbctl
owns, 100 a page, so the cost is O(owned objects); where more than ARNs and tags is needed the
callers fetch only those objects (DescribeTargetGroups with TargetGroupArns, 20 a call, ...).

The tagging API is eventually consistent: an object created seconds ago may be missing from an
answer, and one deleted seconds ago may still be in it. So callers treat its answer as a list
of candidates: deletes tolerate "not found", and delete also follows the NLB's own links (its
listeners' target groups, its security groups) for what was made just before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import names
from .client import ApiError, AwsClient

LOAD_BALANCER = "elasticloadbalancing:loadbalancer"
TARGET_GROUP = "elasticloadbalancing:targetgroup"
SECURITY_GROUP = "ec2:security-group"
PER_PAGE = 100
ARNS_PER_DESCRIBE = 20


@dataclass(frozen=True, slots=True)
class Tagged:
    """One object the tagging API named: its ARN, kind and tags."""

    arn: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """loadbalancer | targetgroup | security-group (from the ARN's resource part)."""
        resource = self.arn.split(":", 5)[-1]
        return resource.split("/", 1)[0]

    @property
    def id(self) -> str:
        """The last part of the ARN: a security group's `sg-...`."""
        return self.arn.rsplit("/", 1)[-1]

    @property
    def balancer(self) -> str:
        return self.tags.get(names.TAG_BALANCER, "")


def pages(client: AwsClient, kinds: Iterable[str],
          filters: dict[str, list[str]]) -> Iterator[list[Tagged]]:
    """GetResources page by page (so a caller may stop early); `filters` maps tag keys to the
    values allowed (an empty list: the key with any value)."""
    tag_filters = [{"Key": k, "Values": v} if v else {"Key": k} for k, v in filters.items()]
    for page in client.pages("tagging", "GetResources", TagFilters=tag_filters,
                             ResourceTypeFilters=sorted(kinds), ResourcesPerPage=PER_PAGE):
        yield [Tagged(r["ResourceARN"], names.tag_dict(r.get("Tags")))
               for r in page.get("ResourceTagMappingList", [])]


def owned(client: AwsClient, cluster: str, kinds: Iterable[str],
          balancer: str | None = None) -> list[Tagged]:
    """Everything of `kinds` tagged `lbctl.io/cluster=<cluster>` (and, given, the balancer)."""
    filters = {names.TAG_CLUSTER: [cluster]}
    if balancer is not None:
        filters[names.TAG_BALANCER] = [balancer]
    return [item for page in pages(client, kinds, filters) for item in page]


def any_cluster_nlb(client: AwsClient, cluster: str, ignore: Iterable[str] = ()) -> bool:
    """Whether a load balancer tagged `kubernetes.io/cluster/<cluster>` (lbctl's, a released
    one, upstream's) still exists, besides `ignore`. The tagging API's candidates are checked
    with DescribeLoadBalancers (it may still list one deleted moments ago); the first page with
    a live one ends the search."""
    skip = set(ignore)
    key = f"{names.K8S_CLUSTER_TAG_PREFIX}{cluster}"
    for page in pages(client, [LOAD_BALANCER], {key: []}):
        arns = [t.arn for t in page if t.arn not in skip]
        if any(existing_load_balancers(client, arns[i:i + ARNS_PER_DESCRIBE])
               for i in range(0, len(arns), ARNS_PER_DESCRIBE)):
            return True
    return False


def existing_load_balancers(client: AwsClient, arns: list[str]) -> list[dict[str, Any]]:
    """The load balancers among `arns` that exist (AWS refuses the whole call when one does
    not: then they are asked one by one)."""
    if not arns:
        return []
    try:
        found: list[dict[str, Any]] = client.elbv2(
            "DescribeLoadBalancers", LoadBalancerArns=arns).get("LoadBalancers", [])
        return found
    except ApiError as exc:
        if exc.code != "LoadBalancerNotFound" or len(arns) == 1:
            if exc.code == "LoadBalancerNotFound":
                return []
            raise
    return [lb for arn in arns for lb in existing_load_balancers(client, [arn])]


def existing_target_groups(client: AwsClient, arns: list[str]) -> list[dict[str, Any]]:
    """The target groups among `arns` that exist, 20 ARNs a call (one by one after a "not
    found", which AWS answers for the whole call)."""
    out: list[dict[str, Any]] = []
    for i in range(0, len(arns), ARNS_PER_DESCRIBE):
        chunk = arns[i:i + ARNS_PER_DESCRIBE]
        try:
            out += client.elbv2("DescribeTargetGroups",
                                TargetGroupArns=chunk).get("TargetGroups", [])
        except ApiError as exc:
            if exc.code != "TargetGroupNotFound":
                raise
            if len(chunk) > 1:
                out += [tg for arn in chunk for tg in existing_target_groups(client, [arn])]
    return out
