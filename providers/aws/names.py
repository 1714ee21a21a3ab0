"""Deterministic AWS names and the ownership tags every lbctl object carries.

Names are how lbctl finds its objects again without a database, so they depend only on the
balancer name (itself derived from the cluster and the Service UID) and never on upstream's
`a<uid32>` scheme, which cloud-provider-aws would treat as its own. Tags are the proof of
ownership: an object with our name but without our tags is someone else's and is never touched.
Security group rules cannot carry tags in every API, so lbctl recognises its ingress rules by
their description, `lbctl:<balancer>:<purpose>`, as upstream does.

Security groups have names unique per VPC, which is what makes creating them crash-safe: a
second CreateSecurityGroup for the same name fails with InvalidGroup.Duplicate and the first one
is adopted (after its tags prove it ours). Each NLB gets a frontend group named after it; the
cluster's NLBs share one backend group named after the cluster (the node rules' source).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping

from providers.spec import BalancerRef, ServiceRef

MAX_NAME = 32
"""ELBv2 limit for load balancer and target group names."""

TAG_CLUSTER = "lbctl.io/cluster"
TAG_NAMESPACE = "lbctl.io/service-namespace"
TAG_SERVICE = "lbctl.io/service-name"
TAG_UID = "lbctl.io/service-uid"
TAG_BALANCER = "lbctl.io/balancer"
TAG_MANAGED_BY = "lbctl.io/managed-by"
LBCTL_TAG_PREFIX = "lbctl.io/"
K8S_SERVICE_TAG = "kubernetes.io/service-name"
K8S_CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"
TAG_GROUP_ROLE = "lbctl.io/security-group"
"""`frontend` (one NLB's clients) or `backend` (the cluster's shared node-rule source)."""
ROLE_ELB = "kubernetes.io/role/elb"
ROLE_INTERNAL_ELB = "kubernetes.io/role/internal-elb"

_VALID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")


def short_hash(text: str, length: int = 10) -> str:
    """Lower-case base32 of SHA-256: letters and digits only, stable across processes."""
    digest = hashlib.sha256(text.encode()).digest()
    return base64.b32encode(digest).decode().lower()[:length]


def load_balancer_name(balancer: str) -> str:
    """The NLB's name: the balancer name itself (`lb-<ns6>-<name8>-<hash10>`) when AWS accepts
    it, else `lb-` and a hash of it (an over-long or odd name from a plugin or old config)."""
    if (len(balancer) <= MAX_NAME and _VALID.fullmatch(balancer) and "--" not in balancer
            and not balancer.lower().startswith("internal-")):
        return balancer
    return "lb-" + short_hash(balancer, MAX_NAME - 3)


_PROTO = {"TCP": "tcp", "UDP": "udp", "TCP_UDP": "tcpudp"}


def target_group_name(balancer: str, protocol: str, node_port: int, target_type: str) -> str:
    """`lbctl-<hash10>-<tcp|udp|tcpudp>-<nodePort>[-ip]` (<= 32). Everything a target group
    cannot change in place is in the name, so a change of protocol, port or target type
    yields a new name, which is what makes replacement (create, switch, delete) natural."""
    suffix = "-ip" if target_type == "ip" else ""
    name = f"lbctl-{short_hash(balancer)}-{_PROTO[protocol]}-{node_port}{suffix}"
    assert len(name) <= MAX_NAME, name
    return name


def frontend_group_name(balancer: str) -> str:
    """The per-NLB security group enforcing loadBalancerSourceRanges on the listener ports."""
    return f"lbctl-frontend-{load_balancer_name(balancer)}"


def backend_group_name(cluster: str) -> str:
    """The cluster's shared security group: attached to every NLB lbctl creates, and the source
    of the node security group rules (`lbctl-backend-<cluster>`, or a hash of an odd name)."""
    ok = _VALID.fullmatch(cluster) and len(cluster) <= 63
    return f"lbctl-backend-{cluster if ok else short_hash(cluster, 20)}"


def backend_tags(cluster: str, *extra: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The backend group's tags: the cluster's, not any one Service's (it is shared)."""
    tags: dict[str, str] = {}
    for group in extra:
        tags.update(group)
    tags.update({f"{K8S_CLUSTER_TAG_PREFIX}{cluster}": "owned", TAG_CLUSTER: cluster,
                 TAG_MANAGED_BY: "lbctl", TAG_GROUP_ROLE: "backend",
                 "Name": backend_group_name(cluster)})
    return tuple(sorted(tags.items()))


def is_backend(tags: Mapping[str, str], cluster: str) -> bool:
    return tags.get(TAG_CLUSTER) == cluster and tags.get(TAG_GROUP_ROLE) == "backend"


RULE_PREFIX = "lbctl:"
"""What every description of an lbctl security group rule starts with."""


def rule_prefix(balancer: str) -> str:
    """What every description of this balancer's security group rules starts with."""
    return f"{RULE_PREFIX}{balancer}:"


def rule_description(balancer: str, purpose: str) -> str:
    return f"{rule_prefix(balancer)}{purpose}"


def ownership_tags(ref: BalancerRef) -> dict[str, str]:
    """The tags that say "this object belongs to `ref`" (upstream's and lbctl's own)."""
    svc = ref.service
    return {
        f"{K8S_CLUSTER_TAG_PREFIX}{ref.cluster}": "owned",
        K8S_SERVICE_TAG: svc.key,
        TAG_CLUSTER: ref.cluster,
        TAG_NAMESPACE: svc.namespace,
        TAG_SERVICE: svc.name,
        TAG_UID: svc.uid,
        TAG_BALANCER: ref.name,
        TAG_MANAGED_BY: "lbctl",
    }


def object_tags(ref: BalancerRef, *extra: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Every tag an object of `ref` gets: user tags first, ownership tags win, sorted."""
    tags: dict[str, str] = {}
    for group in extra:
        tags.update(group)
    tags.update(ownership_tags(ref))
    return tuple(sorted(tags.items()))


def is_owned(tags: Mapping[str, str], cluster: str, balancer: str) -> bool:
    """True when `tags` mark the object as `balancer`'s in `cluster`."""
    return tags.get(TAG_CLUSTER) == cluster and tags.get(TAG_BALANCER) == balancer


def ref_from_tags(tags: Mapping[str, str]) -> BalancerRef | None:
    """The owner recorded in an object's tags, or None when the tags are incomplete."""
    keys = (TAG_BALANCER, TAG_CLUSTER, TAG_NAMESPACE, TAG_SERVICE, TAG_UID)
    if any(not tags.get(k) for k in keys):
        return None
    return BalancerRef(
        name=tags[TAG_BALANCER], cluster=tags[TAG_CLUSTER],
        service=ServiceRef(tags[TAG_NAMESPACE], tags[TAG_SERVICE], tags[TAG_UID]))


def tag_list(tags: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """The `[{"Key": k, "Value": v}]` form the AWS APIs want."""
    return [{"Key": k, "Value": v} for k, v in tags]


def tag_dict(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in tags or ()}
