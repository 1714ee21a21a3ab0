"""What lbctl wants in GCE for one Service, built purely from the spec, the annotations'
options, the settings and what discovery found: request bodies as the Compute REST API takes
them (camelCase JSON, ports as strings), golden-tested and checked against the SDK's own
message types.

The external passthrough NLB on a regional backend service (GKE's form for new Services):
- the address: ours (`<b>`, a static regional address), or the user's: named by
  `networking.gke.io/load-balancer-ip-addresses`, or, for an external balancer, the reserved
  address holding `spec.loadBalancerIP` (found at deploy by its IP: GCE cannot reserve a
  chosen external IP, so the user reserves it first, and it is never ours to delete); an
  internal balancer's `loadBalancerIP` is ours, reserved at that IP in the subnet. The
  forwarding rules and the clients' firewall take the address's IP at deploy time;
- the health check: Local -> the Service's own HTTP check of `/healthz` on healthCheckNodePort
  (3 s, 2 failures, as upstream); Cluster -> kube-proxy's `:10256/healthz` shared by every
  Service (`clusterHealthCheck: kubeProxy`, 8 s, 3 failures, as GKE) or a TCP check of the
  Service's first TCP nodePort (`nodePort`); internal balancers use global checks;
- per protocol a backend service (TCP or UDP; mixed Services get one of each, which GCE
  allows on one address) over the cluster's instance group in each zone of its targets, and a
  forwarding rule created last: `ports` when 5 or fewer, else a `portRange` (internal: every
  port, `allPorts`);
- firewall rules: the Service's ports from its source ranges to the nodes' tags and the LB's IP,
  and Google's probers' ranges to the check's port (the shared check's rule is shared too).
Targets whose providerID is not `gce://PROJECT/ZONE/NAME` of this project are skipped and
reported, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from providers.errors import PermanentError
from providers.spec import LoadBalancerSpec, Target

from . import names
from .annotations import GcpOptions
from .settings import GcpSettings

HEALTH_CHECK_RANGES = ("130.211.0.0/22", "35.191.0.0/16", "209.85.152.0/22", "209.85.204.0/22")
"""Where Google's health-check probers come from (for external passthrough NLBs too)."""
KUBE_PROXY_PORT = 10256
MAX_LISTED_PORTS = 5
_PROVIDER_ID = re.compile(r"gce://([^/]+)/([a-z]+-[a-z]+\d+-[a-z])/([a-z]([-a-z0-9]*[a-z0-9])?)")


@dataclass(frozen=True, slots=True)
class Instance:
    name: str
    zone: str


@dataclass(frozen=True, slots=True)
class HealthCheckPlan:
    name: str
    scope: str
    """regional | global (internal balancers' checks are global)."""
    shared: bool
    """kube-proxy's check: one per cluster, deleted only when no Service uses it."""
    body: dict[str, Any]
    port: int


@dataclass(frozen=True, slots=True)
class Desired:
    balancer: str
    address_name: str | None
    """The address by name: ours (`<b>`) or the user's; None when found by `reserved_ip`."""
    address_ours: bool
    """False: the user's reserved address (by name or IP), never created or deleted by lbctl."""
    address: dict[str, Any] | None
    """Our address's body (None when it is the user's)."""
    health_check: HealthCheckPlan
    backend_services: tuple[tuple[str, dict[str, Any]], ...]
    forwarding_rules: tuple[tuple[str, dict[str, Any]], ...]
    """Bodies without `IPAddress`: deploy sets the address's IP."""
    firewalls: tuple[tuple[str, dict[str, Any]], ...]
    """The clients' rule gets `destinationRanges` (the LB's IP) at deploy."""
    health_firewall: tuple[str, dict[str, Any], bool]
    """(name, body, shared)."""
    instances: tuple[Instance, ...]
    skipped: tuple[tuple[str, str], ...] = field(default=())
    """(node, why) for targets that cannot be backends."""
    reserved_ip: str | None = None
    """An external `spec.loadBalancerIP`: the user's reserved address with this IP."""

    @property
    def owner(self) -> str:
        """The ownership record (description) of this balancer's own objects."""
        return str(self.forwarding_rules[0][1]["description"])

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(sorted({i.zone for i in self.instances}))


def instances(targets: tuple[Target, ...], project: str
              ) -> tuple[tuple[Instance, ...], tuple[tuple[str, str], ...]]:
    """The GCE instances behind the targets, and the targets skipped with the reason."""
    found: list[Instance] = []
    skipped: list[tuple[str, str]] = []
    for t in targets:
        match = _PROVIDER_ID.fullmatch(t.provider_id)
        if match is None:
            skipped.append((t.node, f"providerID {t.provider_id!r} is not "
                                    "gce://PROJECT/ZONE/NAME"))
        elif match.group(1) != project:
            skipped.append((t.node, f"its instance is in project {match.group(1)!r}, not "
                                    f"{project!r}"))
        else:
            found.append(Instance(match.group(3), match.group(2)))
    return tuple(sorted(set(found), key=lambda i: (i.zone, i.name))), tuple(skipped)


def _link(settings: GcpSettings, kind: str, name: str, scope: str = "regional") -> str:
    where = f"regions/{settings.region}" if scope == "regional" else "global"
    return f"projects/{settings.project}/{where}/{kind}/{name}"


def _health_check(spec: LoadBalancerSpec, settings: GcpSettings, internal: bool,
                  ) -> HealthCheckPlan:
    scope = "global" if internal else "regional"
    hc = spec.health_check
    b = spec.ref.name
    if hc.protocol == "HTTP" and hc.port:
        return HealthCheckPlan(names.service_health_check(b), scope, False, {
            "name": names.service_health_check(b), "description": names.description(spec.ref),
            "type": "HTTP", "httpHealthCheck": {"port": hc.port,
                                                "requestPath": hc.path or "/healthz"},
            "checkIntervalSec": 3, "timeoutSec": 3, "healthyThreshold": 1,
            "unhealthyThreshold": 2}, hc.port)
    tcp_port = next((li.node_port for li in spec.listeners
                     if li.protocol == "TCP" and li.node_port), None)
    if settings.cluster_health_check == "nodePort" and tcp_port is not None:
        return HealthCheckPlan(names.service_health_check(b), scope, False, {
            "name": names.service_health_check(b), "description": names.description(spec.ref),
            "type": "TCP", "tcpHealthCheck": {"port": tcp_port},
            "checkIntervalSec": 8, "timeoutSec": 1, "healthyThreshold": 1,
            "unhealthyThreshold": 3}, tcp_port)
    cluster = spec.ref.cluster
    name = names.node_health_check(cluster)
    return HealthCheckPlan(name, scope, True, {
        "name": name, "description": names.cluster_description(cluster, "kube-proxy check"),
        "type": "HTTP", "httpHealthCheck": {"port": KUBE_PROXY_PORT, "requestPath": "/healthz"},
        "checkIntervalSec": 8, "timeoutSec": 1, "healthyThreshold": 1,
        "unhealthyThreshold": 3}, KUBE_PROXY_PORT)


def _ports(ports: list[int], internal: bool) -> dict[str, Any]:
    if len(ports) <= MAX_LISTED_PORTS:
        return {"ports": [str(p) for p in ports]}
    if internal:
        return {"allPorts": True}
    return {"portRange": f"{min(ports)}-{max(ports)}"}


def desired(spec: LoadBalancerSpec, options: GcpOptions, settings: GcpSettings,
            node_tags: tuple[str, ...]) -> Desired:
    """The whole desired balancer of `spec` (pure; golden-tested). `node_tags`: the nodes'
    network tags (`gcp.nodeTags`, else read from the instances), the firewall rules' targets:
    none is a PermanentError, since a rule without targets opens every instance."""
    if not node_tags:
        raise PermanentError("gcp.nodeTags", "the nodes' instances have no network tags: set "
                                             "gcp.nodeTags or tag the instances (a firewall "
                                             "rule without target tags would open every "
                                             "instance of the network)")
    b = spec.ref.name
    internal = options.internal
    scheme = "INTERNAL" if internal else "EXTERNAL"
    found, skipped = instances(spec.targets, settings.project)
    zones = sorted({i.zone for i in found})
    network = f"projects/{settings.project}/global/networks/{settings.network}"
    subnet_name = options.subnetwork or settings.subnetwork
    subnetwork = _link(settings, "subnetworks", subnet_name) if internal and subnet_name else None
    labels = names.labels(spec.ref, settings.labels)
    description = names.description(spec.ref)

    address: dict[str, Any] | None = None
    address_name: str | None = names.address(b)
    requested = next((ip for ip in spec.requested_ips if ":" not in ip), None)
    reserved_ip = requested if requested and not internal and not options.address_names \
        else None
    if options.address_names:
        address_name = options.address_names[0]
    elif reserved_ip:
        address_name = None
    else:
        address = {"name": address_name, "description": description,
                   "addressType": scheme, "labels": labels}
        if internal and subnetwork:
            address["subnetwork"] = subnetwork
        elif not internal and options.network_tier:
            address["networkTier"] = options.network_tier
        if requested:
            address["address"] = requested

    check = _health_check(spec, settings, internal)
    check_link = _link(settings, "healthChecks", check.name, check.scope)
    affinity = "CLIENT_IP" if spec.session_affinity == "ClientIP" else "NONE"
    protocols = sorted({li.protocol for li in spec.listeners})
    services: list[tuple[str, dict[str, Any]]] = []
    rules: list[tuple[str, dict[str, Any]]] = []
    allowed: list[dict[str, Any]] = []
    for protocol in protocols:
        ports = sorted({li.port for li in spec.listeners if li.protocol == protocol})
        name = names.backend_service(b, protocol)
        service: dict[str, Any] = {
            "name": name, "description": description, "protocol": protocol,
            "loadBalancingScheme": scheme, "healthChecks": [check_link],
            "sessionAffinity": affinity,
            "backends": [{"group": f"projects/{settings.project}/zones/{zone}/instanceGroups/"
                                   f"{names.instance_group(spec.ref.cluster)}",
                          "balancingMode": "CONNECTION"} for zone in zones]}
        if internal:
            service["network"] = network
        services.append((name, service))
        rule: dict[str, Any] = {
            "name": names.forwarding_rule(b, protocol), "description": description,
            "IPProtocol": protocol, "loadBalancingScheme": scheme,
            "backendService": _link(settings, "backendServices", name), "labels": labels,
            **_ports(ports, internal)}
        if internal:
            rule["network"] = network
            if subnetwork:
                rule["subnetwork"] = subnetwork
            if options.global_access:
                rule["allowGlobalAccess"] = True
        elif options.network_tier:
            rule["networkTier"] = options.network_tier
        rules.append((rule["name"], rule))
        allowed.append({"IPProtocol": protocol.lower(), "ports": [str(p) for p in ports]})

    targets = list(node_tags)
    ranges = sorted({r for r in spec.source_ranges or ("0.0.0.0/0",) if ":" not in r})
    if not ranges:  # IPv6 ranges only: opening to the world instead would be the opposite
        raise PermanentError("spec.loadBalancerSourceRanges", "has no IPv4 range, and this "
                                                              "provider serves IPv4 only")
    clients: dict[str, Any] = {
        "name": names.firewall(b), "description": description, "network": network,
        "direction": "INGRESS", "priority": 1000, "sourceRanges": ranges, "allowed": allowed,
        "targetTags": targets}
    # the shared check's rule serves external and internal balancers alike: every range
    probe_ranges = list(HEALTH_CHECK_RANGES) if not internal or check.shared else \
        ["130.211.0.0/22", "35.191.0.0/16"]
    if check.shared:
        hc_name = names.node_health_firewall(spec.ref.cluster)
        hc_description = names.cluster_description(spec.ref.cluster, "kube-proxy check firewall")
    else:
        hc_name, hc_description = names.health_firewall(b), description
    probes: dict[str, Any] = {"name": hc_name, "description": hc_description, "network": network,
              "direction": "INGRESS", "priority": 1000, "sourceRanges": probe_ranges,
              "allowed": [{"IPProtocol": "tcp", "ports": [str(check.port)]}],
              "targetTags": targets}
    return Desired(
        balancer=b, address_name=address_name, address_ours=address is not None,
        address=address, health_check=check, backend_services=tuple(services),
        forwarding_rules=tuple(rules), firewalls=((clients["name"], clients),),
        health_firewall=(hc_name, probes, check.shared), instances=found,
        skipped=skipped, reserved_ip=reserved_ip)
