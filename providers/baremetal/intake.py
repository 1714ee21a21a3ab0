"""Reading what a Service asks of the pools out of its spec (and its cached view).

`build_spec` already merged `spec.loadBalancerIP`, `lbctl.io/load-balancer-ips` and
`metallb.io/loadBalancerIPs` into `spec.requested_ips`; here each address gets back the field
that asked for it, so an error names what the user wrote. Labels (for `serviceSelectors`) and
the ipFamilyPolicy (PreferDualStack is content with one family) are not in the spec: they come
from the ClusterView's record of the same Service (same UID), else the strict defaults apply.
"""

from __future__ import annotations

from providers.cluster import ServiceView
from providers.errors import PermanentError
from providers.spec import LoadBalancerSpec

from .addresses import parse_ip
from .claims import (
    POOL_ANNOTATIONS,
    SHARING_ANNOTATIONS,
    Claimant,
    Request,
    RequestedIP,
    annotation_field,
)

REQUESTED_IP_ANNOTATIONS = ("lbctl.io/load-balancer-ips", "metallb.io/loadBalancerIPs",
                            "metallb.universe.tf/loadBalancerIPs")
KNOWN_FAMILIES = ("IPv4", "IPv6")


def _one_of(spec: LoadBalancerSpec, keys: tuple[str, ...]) -> tuple[str, str] | None:
    """(key, value) of the set annotation among aliases; PermanentError when they disagree."""
    found = [(k, v.strip()) for k in keys if (v := spec.annotation(k)) is not None and v.strip()]
    for key, value in found[1:]:
        if value != found[0][1]:
            raise PermanentError(annotation_field(key), f'"{value}" disagrees with '
                                                        f'{found[0][0]} ("{found[0][1]}")')
    return found[0] if found else None


def requested(spec: LoadBalancerSpec) -> tuple[RequestedIP, ...]:
    """`spec.requested_ips`, each with the field that asked for it."""
    by_annotation: dict[str, str] = {}
    for key in REQUESTED_IP_ANNOTATIONS:
        for part in (spec.annotation(key) or "").split(","):
            ip = parse_ip(part) if part.strip() else None
            if ip is not None:
                by_annotation.setdefault(str(ip), annotation_field(key))
    out = []
    for text in spec.requested_ips:
        field = by_annotation.get(text, "spec.loadBalancerIP")
        ip = parse_ip(text)
        if ip is None:
            raise PermanentError(field, f'"{text}" is not an IP address')
        out.append(RequestedIP(ip, field))
    return tuple(out)


def request_for(spec: LoadBalancerSpec, service: ServiceView | None) -> Request:
    """The `Request` for `spec`; `service` is the cached view of the same Service, if any."""
    ref = spec.ref.service
    if service is not None and service.uid != ref.uid:
        service = None
    families = spec.ip_families or ("IPv4",)
    for family in families:
        if family not in KNOWN_FAMILIES:
            raise PermanentError("spec.ipFamilies", f"{family!r} is not IPv4 or IPv6")
    sharing = _one_of(spec, SHARING_ANNOTATIONS)
    pool = _one_of(spec, POOL_ANNOTATIONS)
    claimant = Claimant(
        uid=ref.uid, namespace=ref.namespace, name=ref.name,
        labels=tuple(sorted(service.labels.items())) if service is not None else (),
        ports=tuple((li.protocol, li.port) for li in spec.listeners),
        sharing_key=sharing[1] if sharing else "",
        cluster_policy=spec.external_traffic_policy != "Local")
    return Request(
        claimant=claimant, families=tuple(families),
        require_all_families=(service is None
                              or service.ip_family_policy != "PreferDualStack"),
        requested=requested(spec),
        pool=pool[1] if pool else None,
        pool_annotation=pool[0] if pool else POOL_ANNOTATIONS[0])
