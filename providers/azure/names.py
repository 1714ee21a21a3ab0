"""Deterministic ARM names, resource IDs, ownership tags and NSG priorities.

Names are how lbctl finds its objects again without a database. They follow upstream's shape
(one shared load balancer per cluster and scheme, a frontend per Service, a rule and a probe
per port named `<frontend-stem>-<TCP|UDP>-<port>`) but never upstream's words: the design's
contract is that lbctl never names cloud objects like the cloud's own controller, which AKS
always runs beside it. Upstream's load balancer is `<cluster>` (`kubernetes` on AKS, the same
default as lbctl's clusterName) and it rewrites that LB's backend pool and deletes frontends
named `a<uid32>`; sharing its names would let either controller undo the other. So:
- load balancers `lbctl-<cluster>` and `lbctl-<cluster>-internal` (or `azure.loadBalancerName`),
  each with one backend pool `lbctl-<cluster>` of node IP addresses;
- per Service (stem = the balancer name, `lb-<ns>-<name>-<hash>`): the frontend
  `<stem>-<uid32>`, rules `<stem>-TCP-80`, probes `<stem>-<TCP|HTTP|HTTPS>-<probed port>`, our
  public IP `<stem>`, NSG rules `<stem>-<TCP|UDP>-allow` (CIDR sources) and
  `<stem>-<TCP|UDP>-tag-<ServiceTag>`.
The frontend carries the Service's UID because frontends, rules and probes have no tags: an
internal Service's balancer must be found again (orphan collection) from its frontend alone.

Ownership: load balancers and public IPs carry tags (`lbctl-cluster`, `lbctl-balancer`,
`lbctl-service` = ns/name, `lbctl-service-uid`; Azure refuses '/' in tag names, so not
`lbctl.io/...`), plus upstream's informational `k8s-azure-service` / `k8s-azure-cluster-name`
as the issue asks; lbctl decides ownership from its own tags only. A frontend, rule or probe is
one balancer's when its name parses as that balancer's (exact match, never a bare prefix: `lb-a`
must not claim `lb-a-b-...`). NSG rules carry a JSON `description` naming cluster and balancer.

ARM names: 1-80 characters, `[a-zA-Z0-9]([a-zA-Z0-9._-]{0,78}[a-zA-Z0-9_])?`; an odd stem (a
plugin's balancer name) becomes `lb-<hash>`, which always fits with every suffix.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping

from providers.spec import BalancerRef, ServiceRef

MAX_NAME = 80
NAME = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9._-]{0,78}[a-zA-Z0-9_])?")
_STEM_MAX = 36
"""Longest stem used as is: `<stem>-<uid32>` and `<stem>-UDP-tag-<tag>` stay within 80."""
_STEM = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SERVICE_TAG = re.compile(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)?")
TAG_CLUSTER = "lbctl-cluster"
TAG_BALANCER = "lbctl-balancer"
TAG_SERVICE = "lbctl-service"
TAG_UID = "lbctl-service-uid"
TAG_ROLE = "lbctl-role"
"""`cluster` on the shared load balancers, `service` on a Service's public IP."""
UPSTREAM_SERVICE_TAG = "k8s-azure-service"
UPSTREAM_CLUSTER_TAG = "k8s-azure-cluster-name"
KEY_CLUSTER = "lbctl.io/cluster"
KEY_BALANCER = "lbctl.io/balancer"
PRIORITY_RANGE = (500, 4096)
"""NSG priorities lbctl uses, as upstream: below Azure's defaults (65000+), above what people
usually keep for their own rules (100-499)."""
PROTOCOLS = ("TCP", "UDP")


def short_hash(text: str, length: int = 10) -> str:
    """Lower-case base32 of SHA-256: letters and digits, stable across processes."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode().lower()[:length]


def stem(balancer: str) -> str:
    """The stem of a balancer's names: the balancer name when short and plain enough, else
    `lb-` and a hash of it."""
    if len(balancer) <= _STEM_MAX and _STEM.fullmatch(balancer):
        return balancer
    return "lb-" + short_hash(balancer, 20)


def cluster_stem(cluster: str) -> str:
    """`lbctl-<cluster>` for a plain cluster name (<= 32), else `lbctl-` and a hash."""
    if len(cluster) <= 32 and NAME.fullmatch(cluster) and "." not in cluster:
        return f"lbctl-{cluster}"
    return f"lbctl-{short_hash(cluster, 16)}"


def load_balancer(cluster: str, internal: bool, configured: str = "") -> str:
    """The shared load balancer of the cluster for one scheme."""
    base = configured or cluster_stem(cluster)
    return f"{base}-internal" if internal else base


def backend_pool(cluster: str) -> str:
    return cluster_stem(cluster)


def uid_token(uid: str) -> str:
    """A UUID without dashes (a Kubernetes UID), else `h` and a hash (never read back)."""
    if _UUID.fullmatch(uid.lower()):
        return uid.lower().replace("-", "")
    return "h" + short_hash(uid, 20)


def frontend(balancer: str, uid: str) -> str:
    return f"{stem(balancer)}-{uid_token(uid)}"


def rule(balancer: str, protocol: str, port: int) -> str:
    return f"{stem(balancer)}-{protocol.upper()}-{port}"


def probe(balancer: str, protocol: str, port: int) -> str:
    """`protocol`: what the probe speaks (Tcp, Http, Https); `port`: what it probes."""
    return f"{stem(balancer)}-{protocol.upper()}-{port}"


def public_ip(balancer: str) -> str:
    return stem(balancer)


def security_rule(balancer: str, protocol: str, service_tag: str | None = None) -> str:
    """The Service's NSG rule for one protocol from CIDRs (None) or one service tag."""
    base = f"{stem(balancer)}-{protocol.upper()}"
    if service_tag is None:
        return f"{base}-allow"
    tag = service_tag if _SERVICE_TAG.fullmatch(service_tag) and len(service_tag) <= 30 else \
        short_hash(service_tag, 12)
    return f"{base}-tag-{tag}"


def _owned(balancer: str) -> re.Pattern[str]:
    return re.compile(re.escape(stem(balancer)) + r"-(?:[0-9a-f]{32}|h[a-z2-7]{20}|"
                      r"(?:TCP|UDP|HTTP|HTTPS)-\d{1,5}|(?:TCP|UDP)-(?:allow|tag-[A-Za-z0-9.]+))")


def owns_part(balancer: str, name: str) -> bool:
    """Whether a frontend, rule, probe or NSG rule named `name` is `balancer`'s."""
    return _owned(balancer).fullmatch(name) is not None


def is_frontend_of(balancer: str, name: str) -> bool:
    return re.fullmatch(re.escape(stem(balancer)) + r"-(?:[0-9a-f]{32}|h[a-z2-7]{20})",
                        name) is not None


def uid_from_frontend(name: str) -> tuple[str, str] | None:
    """(stem, uid) read back from a frontend's name, or None when it is not one of ours
    carrying a UUID (a hashed UID cannot be read back: such a balancer is never collected)."""
    match = re.fullmatch(r"([a-z0-9][a-z0-9-]*[a-z0-9])-([0-9a-f]{32})", name)
    if match is None:
        return None
    t = match.group(2)
    return match.group(1), f"{t[:8]}-{t[8:12]}-{t[12:16]}-{t[16:20]}-{t[20:]}"


def resource_id(subscription: str, group: str, kind: str, name: str, *children: str) -> str:
    """An ARM resource ID: `kind` is `loadBalancers`, `publicIPAddresses`, ...; `children`
    alternate child kind and name (`frontendIPConfigurations`, `a`)."""
    out = (f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Network/"
           f"{kind}/{name}")
    return out + "".join(f"/{part}" for part in children)


def same_id(a: str | None, b: str | None) -> bool:
    """ARM IDs compare case-insensitively (ARM returns resource-group names re-cased)."""
    return a is not None and b is not None and a.lower() == b.lower()


def service_tags(ref: BalancerRef) -> dict[str, str]:
    """The ownership tags of a Service's own object (its public IP)."""
    return {TAG_CLUSTER: ref.cluster, TAG_BALANCER: ref.name, TAG_SERVICE: ref.service.key,
            TAG_UID: ref.service.uid, TAG_ROLE: "service",
            UPSTREAM_SERVICE_TAG: ref.service.key, UPSTREAM_CLUSTER_TAG: ref.cluster}


def cluster_tags(cluster: str) -> dict[str, str]:
    """The ownership tags of a shared load balancer."""
    return {TAG_CLUSTER: cluster, TAG_ROLE: "cluster", UPSTREAM_CLUSTER_TAG: cluster}


def with_tags(ours: Mapping[str, str], extra: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The user's tags (config, annotation), then ours: ours always win."""
    return {**dict(extra), **ours}


def is_owned(tags: Mapping[str, str] | None, cluster: str, balancer: str | None = None) -> bool:
    """A tagged object (LB: `balancer` None; public IP: its balancer) is ours."""
    if not tags or tags.get(TAG_CLUSTER) != cluster:
        return False
    return balancer is None or tags.get(TAG_BALANCER) == balancer


def ref_from_tags(tags: Mapping[str, str] | None) -> BalancerRef | None:
    """The owner recorded on a public IP, or None when incomplete."""
    if not tags:
        return None
    namespace, _, name = tags.get(TAG_SERVICE, "").partition("/")
    balancer, cluster, uid = (tags.get(TAG_BALANCER), tags.get(TAG_CLUSTER),
                              tags.get(TAG_UID))
    if not (balancer and cluster and uid and namespace and name):
        return None
    return BalancerRef(balancer, cluster, ServiceRef(namespace, name, uid))


def description(cluster: str, balancer: str) -> str:
    """The JSON ownership record of an NSG rule (<= 140 characters: long or odd names
    hashed)."""
    def fit(text: str) -> str:
        return text if re.fullmatch(r"[A-Za-z0-9._-]{1,40}", text) else "h" + short_hash(text, 20)
    return json.dumps({KEY_BALANCER: fit(balancer), KEY_CLUSTER: fit(cluster)},
                      sort_keys=True, separators=(",", ":"))


def owns_security_rule(name: str, text: str | None, cluster: str, balancer: str) -> bool:
    """An NSG rule is `balancer`'s when both its name and its description say so."""
    return owns_part(balancer, name) and text == description(cluster, balancer)


def pick_priority(used: Iterable[int], current: int | None = None) -> int:
    """The NSG priority for a rule: its current one when it has one in range (stable), else
    the lowest free one from 500. Raises LookupError when 500-4096 are all taken."""
    low, high = PRIORITY_RANGE
    if current is not None and low <= current <= high:
        return current
    taken = set(used)
    for priority in range(low, high + 1):
        if priority not in taken:
            return priority
    raise LookupError(f"every NSG priority from {low} to {high} is taken")
