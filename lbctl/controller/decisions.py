"""The controller's decisions as pure functions of cached records and config.

Whether lbctl acts on a Service, which finalizer it uses, whether an update needs a sync, what
status a balancer should produce: all decided here without I/O, so each rule is table-tested and
the reconciler only sequences I/O around them (upstream's `needsCleanup`/`needsUpdate` shape).
"""

from __future__ import annotations

from typing import Any

from providers.cluster import ServiceView
from providers.spec import LoadBalancerStatus

from .config import Config

STANDARD_FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
LBCTL_FINALIZER = "lbctl.io/load-balancer-cleanup"
RELEASE_ANNOTATION = "lbctl.io/release"
"""`"true"`: lbctl lets go of the balancer (finalizer and status removed) without deleting it."""


def owned(service: ServiceView, config: Config) -> bool:
    """lbctl's to reconcile: class-less when it is the default controller, or a class it owns.
    Anything else is never touched: no finalizer, no status, no event."""
    return config.owns_class(service.load_balancer_class)


def finalizer_for(service: ServiceView) -> str:
    """Class-less Services get the standard finalizer (lbctl replaces the upstream controller);
    Services of an lbctl class get lbctl's own, which an upstream controller beside lbctl never
    strips."""
    return STANDARD_FINALIZER if service.load_balancer_class is None else LBCTL_FINALIZER


def wants_balancer(service: ServiceView) -> bool:
    return (service.type == "LoadBalancer" and not service.deleting
            and service.annotations.get(RELEASE_ANNOTATION) != "true")


def held_finalizer(service: ServiceView, config: Config) -> str | None:
    """The cleanup finalizer lbctl holds on this Service, if any. lbctl's own finalizer is
    always ours, even after a type change cleared the class; the standard one is ours only
    for class-less Services while lbctl is the cluster's default controller (else it belongs
    to the upstream controller)."""
    if LBCTL_FINALIZER in service.finalizers:
        return LBCTL_FINALIZER
    if (STANDARD_FINALIZER in service.finalizers and service.load_balancer_class is None
            and config.handle_classless_services):
        return STANDARD_FINALIZER
    return None


def needs_cleanup(service: ServiceView, config: Config) -> bool:
    """Holds our finalizer but should no longer have a balancer: deleting, no longer a
    LoadBalancer, or of a class the config no longer owns."""
    return held_finalizer(service, config) is not None and (
        service.deleting or service.type != "LoadBalancer" or not owned(service, config))


def released(service: ServiceView, config: Config) -> bool:
    return (service.annotations.get(RELEASE_ANNOTATION) == "true"
            and held_finalizer(service, config) is not None and not service.deleting)


def needs_sync(old: ServiceView, new: ServiceView) -> bool:
    """Whether an update event can change the balancer (upstream's list). Our own writes
    (status, finalizers) never cause a sync; a finalizer stripped by someone else is put back by
    the periodic resync."""
    if wants_balancer(old) != wants_balancer(new) or old.deleting != new.deleting:
        return True
    return (old.source_ranges, old.ports, old.session_affinity, old.affinity_timeout,
            old.load_balancer_ip, old.external_ips, dict(old.annotations), old.uid,
            old.external_traffic_policy, old.health_check_node_port, old.ip_families,
            old.load_balancer_class, old.type) != (
        new.source_ranges, new.ports, new.session_affinity, new.affinity_timeout,
        new.load_balancer_ip, new.external_ips, dict(new.annotations), new.uid,
        new.external_traffic_policy, new.health_check_node_port, new.ip_families,
        new.load_balancer_class, new.type)


def ingress_json(status: LoadBalancerStatus) -> list[dict[str, Any]]:
    """`status.loadBalancer.ingress` for a provider's status (ipMode only with an ip; per-port
    errors on every entry, as the API defines them)."""
    errors = [{"port": p.port, "protocol": p.protocol, "error": p.error}
              for p in status.ports if p.error]
    return [_entry(p.ip, p.hostname, p.ip_mode, errors) for p in status.ingress]


def current_ingress(service: ServiceView) -> list[dict[str, Any]]:
    """The Service's ingress in the same form, to compare before patching."""
    return [_entry(p.ip, p.hostname, p.ip_mode,
                   [{"port": port, "protocol": proto, "error": err}
                    for port, proto, err in p.port_errors])
            for p in service.ingress]


def _entry(ip: str | None, hostname: str | None, ip_mode: str | None,
           errors: list[dict[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if ip:
        entry["ip"] = ip
        if ip_mode:
            entry["ipMode"] = ip_mode
    if hostname:
        entry["hostname"] = hostname
    if errors:
        entry["ports"] = errors
    return entry
