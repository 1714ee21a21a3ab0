"""Deterministic GCE names and the ownership marks every lbctl object carries.

Names are how lbctl finds its objects again without a database: they depend only on the
balancer name (derived from the cluster and the Service UID, `lb-<ns>-<name>-<hash>`) and the
cluster, never on upstream's `a<uid32>` or `k8s2-...` schemes, which GKE's controllers would
treat as theirs. GCE names match `[a-z]([-a-z0-9]{0,61}[a-z0-9])?`; an odd name (a plugin's,
an old config's) becomes a hash that does.

Ownership: only addresses and forwarding rules have labels in GCE (keys and values lower-case,
no `.` or `/`), so every object carries a JSON `description` as upstream's do, naming the
cluster, the balancer and the Service; an object with our name but another description is
someone else's and is never touched. Scans use name-prefix filters (`name eq lb-.*`), never a
whole-project listing.

Per Service: the address `<b>`, per protocol a backend service and a forwarding rule
`<b>-tcp` / `<b>-udp`, with Local policy a health check `<b>-hc`, and firewall rules `<b>-fw`
(clients) and `<b>-hc-fw` (Google's probers, when the check is the Service's own). Per cluster,
shared by every Service: the instance group `lbctl-<c>` in each zone and kube-proxy's check
`lbctl-<c>-node-hc` with its firewall `lbctl-<c>-node-hc-fw`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping

from providers.spec import BalancerRef, ServiceRef

MAX_NAME = 63
NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_BALANCER_MAX = MAX_NAME - len("-hc-fw")
LABEL_CLUSTER = "lbctl-cluster"
LABEL_BALANCER = "lbctl-balancer"
KEY_CLUSTER = "lbctl.io/cluster"
KEY_BALANCER = "lbctl.io/balancer"
KEY_SERVICE = "kubernetes.io/service-name"
KEY_UID = "lbctl.io/service-uid"
KEY_ROLE = "lbctl.io/role"
"""`service` (one balancer's object) or `cluster` (shared: instance groups, kube-proxy check)."""


def short_hash(text: str, length: int = 10) -> str:
    """Lower-case base32 of SHA-256: letters and digits, stable across processes."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode().lower()[:length]


def base(balancer: str) -> str:
    """The stem of a balancer's names: the balancer name when GCE accepts it with every
    suffix, else `lb-` and a hash of it."""
    if len(balancer) <= _BALANCER_MAX and NAME.fullmatch(balancer):
        return balancer
    return "lb-" + short_hash(balancer, 20)


def cluster_stem(cluster: str) -> str:
    """`lbctl-<cluster>` when the cluster name is already a valid lower-case name (short
    enough), else `lbctl-` and a hash: two clusters never share a stem."""
    if len(cluster) <= 32 and NAME.fullmatch(cluster):
        return f"lbctl-{cluster}"
    return f"lbctl-{short_hash(cluster, 16)}"


def address(balancer: str) -> str:
    return base(balancer)


def forwarding_rule(balancer: str, protocol: str) -> str:
    return f"{base(balancer)}-{protocol.lower()}"


def backend_service(balancer: str, protocol: str) -> str:
    return f"{base(balancer)}-{protocol.lower()}"


def service_health_check(balancer: str) -> str:
    return f"{base(balancer)}-hc"


def firewall(balancer: str) -> str:
    return f"{base(balancer)}-fw"


def health_firewall(balancer: str) -> str:
    return f"{base(balancer)}-hc-fw"


def instance_group(cluster: str) -> str:
    """One per zone, the same name in each (instance group names are unique per zone)."""
    return cluster_stem(cluster)


def node_health_check(cluster: str) -> str:
    return f"{cluster_stem(cluster)}-node-hc"


def node_health_firewall(cluster: str) -> str:
    return f"{cluster_stem(cluster)}-node-hc-fw"


def label_value(text: str) -> str:
    """A label value for `text`: itself when GCE accepts it, else a hash."""
    return text if re.fullmatch(r"[a-z0-9_-]{1,63}", text) else short_hash(text, 20)


def labels(ref: BalancerRef, extra: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    """Labels of an address or forwarding rule of `ref`: the user's, then ours (ours win)."""
    return {**dict(extra), LABEL_CLUSTER: label_value(ref.cluster),
            LABEL_BALANCER: label_value(ref.name)}


def description(ref: BalancerRef) -> str:
    """The JSON ownership record of one balancer's object (stable key order)."""
    return json.dumps({KEY_CLUSTER: ref.cluster, KEY_BALANCER: ref.name,
                       KEY_SERVICE: ref.service.key, KEY_UID: ref.service.uid,
                       KEY_ROLE: "service"}, sort_keys=True, separators=(",", ":"))


def cluster_description(cluster: str, what: str) -> str:
    """The JSON ownership record of a shared object (`what`: instance group, node check...)."""
    return json.dumps({KEY_CLUSTER: cluster, KEY_ROLE: "cluster", "lbctl.io/shared": what},
                      sort_keys=True, separators=(",", ":"))


def owner(text: str | None) -> Mapping[str, str]:
    """The ownership record in a description ({} when it is not one of ours)."""
    if not text or not text.startswith("{"):
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        return {}
    return doc


def is_owned(text: str | None, cluster: str, balancer: str) -> bool:
    doc = owner(text)
    return doc.get(KEY_CLUSTER) == cluster and doc.get(KEY_BALANCER) == balancer


def is_shared(text: str | None, cluster: str) -> bool:
    doc = owner(text)
    return doc.get(KEY_CLUSTER) == cluster and doc.get(KEY_ROLE) == "cluster"


def ref_from_description(text: str | None) -> BalancerRef | None:
    """The owner recorded in a description, or None when incomplete."""
    doc = owner(text)
    key = doc.get(KEY_SERVICE, "")
    namespace, _, name = key.partition("/")
    if not (doc.get(KEY_BALANCER) and doc.get(KEY_CLUSTER) and namespace and name
            and doc.get(KEY_UID)):
        return None
    return BalancerRef(doc[KEY_BALANCER], doc[KEY_CLUSTER], ServiceRef(namespace, name,
                                                                        doc[KEY_UID]))
