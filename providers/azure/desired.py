"""What lbctl wants in Azure for one Service, built purely from the spec, the annotations'
options and the settings: ARM REST bodies (camelCase under `properties`, references as
`{"id": <full ARM ID>}`), golden-tested and checked against azure-mgmt-network's own models.

The cluster has one Standard load balancer per scheme (`names.load_balancer`), shared by every
Service and written whole. A Service owns, inside it:
- a frontend IP configuration: our public IP (Standard, Static, tagged, optional DNS label);
  or the user's, by `azure-pip-name` or by the address asked for (`azure-load-balancer-ipv4`,
  `spec.loadBalancerIP`; ARM cannot create a public IP at a chosen address, so it is the
  user's, found by IP at deploy and never deleted); internal: a private IP in a subnet, static
  when asked for;
- probes: Cluster -> Tcp on each TCP port's nodePort (UDP ports have none, as upstream: nothing
  answers TCP there), interval 5 s, 2 probes; Local -> one Http probe of kube-proxy's
  healthCheckNodePort `/healthz`; the annotations override protocol, path, interval, count;
- a rule per port: frontendPort = port; backendPort = port with floating IP (the default: the
  node sees the frontend's IP, kube-proxy captures it, many Services share port 80 on one pool)
  or nodePort with `azure-disable-load-balancer-floating-ip`; SourceIP distribution for
  ClientIP affinity; TCP rules get the idle timeout and TCP reset; external rules disable
  outbound SNAT (this LB serves inbound only: the nodes' outbound stays what the cluster has).
Shared by all: the backend pool of node IPs in the cluster's virtual network (targets whose
providerID is not `azure://...` or that have no IPv4 address are skipped and reported).
Outside the LB: NSG allow rules in the cluster's security group for the Service's ports, from
its source ranges and `azure-allowed-ip-ranges` (one rule per protocol) and each
`azure-allowed-service-tags` tag (one rule each: ARM takes service tags one per rule); with
neither, everyone (`Internet` for external balancers, `*` for internal ones). The destination is
the frontend's IP (set at deploy, `security_rule_body`), or the node IPs on the nodePorts with
floating IP disabled. Priorities are picked at deploy (`names.pick_priority`).

`Desired.parts` is what `merge.merge` folds into the shared LB's body.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from providers.errors import PermanentError
from providers.spec import LoadBalancerSpec, Target

from . import names
from .annotations import INTERNAL_SUBNET, AzureOptions
from .annotations import field as annotation
from .settings import AzureSettings

Body = dict[str, Any]
SKU = {"name": "Standard", "tier": "Regional"}


@dataclass(frozen=True, slots=True)
class Parts:
    """One Service's share of a shared load balancer, and the LB to start from if absent."""

    balancer: str
    frontend: Body
    rules: tuple[Body, ...]
    probes: tuple[Body, ...]
    pool: str
    skeleton: Body
    """The whole LB as created when absent: location, SKU, ownership tags, the empty pool."""


@dataclass(frozen=True, slots=True)
class Desired:
    """Everything one Service wants: its parts of the shared LB (`parts`, for `merge`), its
    nodes for the shared pool, its public IP, its NSG rules, and what deploy must still look
    up or fill in (a public IP found by address, NSG priorities, the frontend's IP)."""

    balancer: str
    internal: bool
    load_balancer: str
    load_balancer_group: str
    parts: Parts
    pool_addresses: tuple[Body, ...]
    """This Service's targets as `loadBalancerBackendAddresses` entries (the pool is shared:
    the deployer writes the union over the cluster's Services)."""
    public_ip_name: str | None
    """Ours (`<stem>`) or the user's; None: internal, or the user's found by `requested_ip`."""
    public_ip_group: str
    public_ip_ours: bool
    public_ip: Body | None
    """Our public IP's body (None when it is the user's or the balancer is internal)."""
    requested_ip: str | None
    """External: the address the user's public IP must hold (found by it when unnamed);
    internal: the frontend's static private IP."""
    security_group: str
    security_rules: tuple[Body, ...]
    """Without `priority` and, with floating IP, without destination: `security_rule_body`."""
    destination_is_frontend: bool
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def needs_public_ip_lookup(self) -> bool:
        """External, and the public IP is known only by its address."""
        return not self.internal and self.public_ip_name is None

    def public_ip_id(self, settings: AzureSettings) -> str | None:
        if self.public_ip_name is None:
            return None
        return names.resource_id(settings.subscription_id, self.public_ip_group,
                                 "publicIPAddresses", self.public_ip_name)

    def with_public_ip(self, public_ip_id: str) -> Desired:
        """The frontend pointed at the public IP found at deploy (by its address)."""
        frontend = {**self.parts.frontend, "properties": {"publicIPAddress":
                                                          {"id": public_ip_id}}}
        return dataclasses.replace(self, parts=dataclasses.replace(self.parts,
                                                                   frontend=frontend))


def lb_id(settings: AzureSettings, name: str, *children: str) -> str:
    return names.resource_id(settings.subscription_id, settings.lb_group, "loadBalancers", name,
                             *children)


def skeleton(settings: AzureSettings, cluster: str) -> Body:
    """A shared load balancer with no Service in it yet."""
    return {"location": settings.location, "sku": dict(SKU),
            "tags": names.with_tags(names.cluster_tags(cluster), settings.tags),
            "properties": {"frontendIPConfigurations": [],
                           "backendAddressPools": [{"name": names.backend_pool(cluster)}],
                           "loadBalancingRules": [], "probes": []}}


def pool_body(pool: str, addresses: Iterable[Body]) -> Body:
    """The backend pool as `load_balancer_backend_address_pools.begin_create_or_update` takes
    it: every address once (by name), sorted, so an unchanged pool compares equal."""
    unique = {a["name"]: a for a in addresses}
    return {"name": pool, "properties": {"loadBalancerBackendAddresses":
                                         [unique[k] for k in sorted(unique)]}}


def pool_addresses(targets: Iterable[Target], vnet_id: str
                   ) -> tuple[tuple[Body, ...], tuple[tuple[str, str], ...]]:
    found: dict[str, Body] = {}
    skipped: list[tuple[str, str]] = []
    for t in targets:
        ip = next((a for a in t.addresses if ":" not in a), None)
        if not t.provider_id.startswith("azure://"):
            skipped.append((t.node, f"providerID {t.provider_id!r} is not azure:///..."))
        elif ip is None:
            skipped.append((t.node, "has no IPv4 address"))
        else:
            name = t.node if len(t.node) <= names.MAX_NAME and names.NAME.fullmatch(t.node) \
                else "node-" + names.short_hash(t.node, 20)
            found[name] = {"name": name, "properties": {"ipAddress": ip,
                                                        "virtualNetwork": {"id": vnet_id}}}
    return tuple(found[k] for k in sorted(found)), tuple(skipped)


def _probes(spec: LoadBalancerSpec, options: AzureOptions, balancer: str,
            ) -> tuple[dict[int, str], tuple[Body, ...]]:
    """The probes, and which probe (by name) each listener (by index) uses."""
    timing = {"intervalInSeconds": options.probe_interval,
              "numberOfProbes": options.probe_count}
    hc = spec.health_check
    if spec.external_traffic_policy == "Local" or (hc.protocol == "HTTP" and hc.port):
        if not hc.port:
            raise PermanentError("spec.healthCheckNodePort", "a Local Service needs one")
        name = names.probe(balancer, "Http", hc.port)
        body = {"name": name, "properties": {"protocol": "Http", "port": hc.port,
                                             "requestPath": hc.path or "/healthz", **timing}}
        return dict.fromkeys(range(len(spec.listeners)), name), (body,)
    protocol = options.probe_protocol or ("Http" if options.probe_path else "Tcp")
    by_listener: dict[int, str] = {}
    bodies: dict[str, Body] = {}
    for i, li in enumerate(spec.listeners):
        if li.protocol != "TCP":
            continue
        if li.node_port is None:
            raise PermanentError(f"spec.ports[{i}].nodePort", "an externalTrafficPolicy: "
                                 "Cluster Service is probed on its nodePorts: allocate them")
        name = names.probe(balancer, protocol, li.node_port)
        props: Body = {"protocol": protocol, "port": li.node_port, **timing}
        if protocol != "Tcp":
            props["requestPath"] = options.probe_path or "/"
        bodies[name] = {"name": name, "properties": props}
        by_listener[i] = name
    return by_listener, tuple(bodies.values())


def _rules(spec: LoadBalancerSpec, options: AzureOptions, settings: AzureSettings,
           balancer: str, lb: str, frontend: str, pool: str, probe_of: dict[int, str]
           ) -> tuple[Body, ...]:
    out = []
    idle = options.idle_timeout or settings.idle_timeout_minutes
    for i, li in enumerate(spec.listeners):
        backend = li.port
        if not options.floating_ip:
            if li.node_port is None:
                raise PermanentError(f"spec.ports[{i}].nodePort", "floating IP is disabled, "
                                     "so traffic goes to the nodePort: allocate it")
            backend = li.node_port
        props: Body = {
            "frontendIPConfiguration": {"id": lb_id(settings, lb, "frontendIPConfigurations",
                                                    frontend)},
            "backendAddressPool": {"id": lb_id(settings, lb, "backendAddressPools", pool)},
            "protocol": li.protocol.capitalize(), "frontendPort": li.port,
            "backendPort": backend, "enableFloatingIP": options.floating_ip,
            "loadDistribution": "SourceIP" if spec.session_affinity == "ClientIP" else "Default"}
        if i in probe_of:
            props["probe"] = {"id": lb_id(settings, lb, "probes", probe_of[i])}
        if li.protocol == "TCP":
            props.update(idleTimeoutInMinutes=idle, enableTcpReset=True)
        if not options.internal:
            props["disableOutboundSnat"] = True
        out.append({"name": names.rule(balancer, li.protocol, li.port), "properties": props})
    return tuple(out)


def _sources(spec: LoadBalancerSpec, options: AzureOptions) -> tuple[tuple[str, ...],
                                                                     tuple[str, ...]]:
    """(CIDRs, service tags) allowed in; both empty means everyone."""
    v4 = [r for r in spec.source_ranges if ":" not in r]
    unset = set(v4) <= {"0.0.0.0/0"} and all(r == "::/0" for r in spec.source_ranges
                                              if ":" in r)
    if not v4 and not unset:
        raise PermanentError("spec.loadBalancerSourceRanges", "has no IPv4 range, and this "
                                                              "provider serves IPv4 only")
    extra = [r for r in options.allowed_ranges if ":" not in r]
    if options.allowed_ranges and not extra and not options.service_tags:
        raise PermanentError(annotation("service.beta.kubernetes.io/azure-allowed-ip-ranges"),
                             "has no IPv4 range, and this provider serves IPv4 only")
    cidrs = sorted({*([] if unset else v4), *extra},
                   key=lambda r: (ipaddress.ip_network(r).network_address, r))
    return tuple(cidrs), options.service_tags


def _security_rules(spec: LoadBalancerSpec, options: AzureOptions, balancer: str,
                    node_ips: list[str]) -> tuple[Body, ...]:
    cidrs, tags = _sources(spec, options)
    if not cidrs and not tags:
        if options.internal:
            cidrs = ("*",)
        else:
            tags = ("Internet",)
    if not options.floating_ip and not node_ips:
        return ()  # no node to open; the rules come back with the nodes
    description = names.description(spec.ref.cluster, balancer)
    out: list[Body] = []
    for protocol in names.PROTOCOLS:
        ports = sorted({li.port if options.floating_ip else li.node_port or 0
                        for li in spec.listeners if li.protocol == protocol})
        if not ports:
            continue
        common: Body = {"description": description, "protocol": protocol.capitalize(),
                        "access": "Allow", "direction": "Inbound", "sourcePortRange": "*",
                        "destinationPortRanges": [str(p) for p in ports]}
        if not options.floating_ip:
            common["destinationAddressPrefixes"] = node_ips
        if cidrs == ("*",):
            out.append({"name": names.security_rule(balancer, protocol),
                        "properties": {**common, "sourceAddressPrefix": "*"}})
        elif cidrs:
            out.append({"name": names.security_rule(balancer, protocol),
                        "properties": {**common, "sourceAddressPrefixes": list(cidrs)}})
        for tag in tags:
            out.append({"name": names.security_rule(balancer, protocol, tag),
                        "properties": {**common, "sourceAddressPrefix": tag}})
    return tuple(out)


def security_rule_body(body: Body, priority: int, frontend_ip: str | None) -> Body:
    """An NSG rule of `Desired.security_rules` made whole at deploy: its priority and, when
    the destination is the frontend, the frontend's IP."""
    props = {**body["properties"], "priority": priority}
    if frontend_ip is not None and "destinationAddressPrefixes" not in props:
        props["destinationAddressPrefix"] = frontend_ip
    return {**body, "properties": props}


def _frontend(spec: LoadBalancerSpec, options: AzureOptions, settings: AzureSettings,
              name: str, requested: str | None, public_ip_id: str | None) -> Body:
    if not options.internal:
        props: Body = {} if public_ip_id is None else {"publicIPAddress": {"id": public_ip_id}}
        return {"name": name, "properties": props}
    subnet = options.subnet or settings.subnet_name
    if not subnet:
        raise PermanentError("azure.subnetName", "an internal balancer needs a subnet: set "
                             f"azure.subnetName or {annotation(INTERNAL_SUBNET)}")
    subnet_id = names.resource_id(settings.subscription_id, settings.vnet_group,
                                  "virtualNetworks", settings.vnet_name, "subnets", subnet)
    props = {"privateIPAllocationMethod": "Static" if requested else "Dynamic",
             "privateIPAddressVersion": "IPv4", "subnet": {"id": subnet_id}}
    if requested:
        props["privateIPAddress"] = requested
    return {"name": name, "properties": props}


def desired(spec: LoadBalancerSpec, options: AzureOptions, settings: AzureSettings) -> Desired:
    """The whole desired state of `spec`'s balancer (pure; golden-tested)."""
    b = spec.ref.name
    cluster = spec.ref.cluster
    internal = options.internal
    lb = names.load_balancer(cluster, internal, settings.load_balancer_name)
    pool = names.backend_pool(cluster)
    frontend = names.frontend(b, spec.ref.service.uid)
    requested = options.ipv4 or next((ip for ip in spec.requested_ips if ":" not in ip), None)
    group = options.resource_group or settings.resource_group
    pip_name: str | None = None
    pip: Body | None = None
    if not internal:
        pip_name = options.pip_name
        if pip_name is None and requested is None:
            pip_name = names.public_ip(b)
            props: Body = {"publicIPAllocationMethod": "Static",
                           "publicIPAddressVersion": "IPv4"}
            if options.dns_label:
                props["dnsSettings"] = {"domainNameLabel": options.dns_label}
            pip = {"location": settings.location, "sku": dict(SKU),
                   "tags": names.with_tags(names.service_tags(spec.ref),
                                           (*settings.tags, *options.pip_tags)),
                   "properties": props}
    pip_id = None if pip_name is None else names.resource_id(
        settings.subscription_id, group, "publicIPAddresses", pip_name)
    vnet_id = names.resource_id(settings.subscription_id, settings.vnet_group,
                                "virtualNetworks", settings.vnet_name)
    addresses, skipped = pool_addresses(spec.targets, vnet_id)
    probe_of, probes = _probes(spec, options, b)
    parts = Parts(
        balancer=b, frontend=_frontend(spec, options, settings, frontend, requested, pip_id),
        rules=_rules(spec, options, settings, b, lb, frontend, pool, probe_of), probes=probes,
        pool=pool, skeleton=skeleton(settings, cluster))
    node_ips = sorted({a["properties"]["ipAddress"] for a in addresses},
                      key=ipaddress.ip_address)
    return Desired(
        balancer=b, internal=internal, load_balancer=lb, load_balancer_group=settings.lb_group,
        parts=parts, pool_addresses=addresses, public_ip_name=pip_name, public_ip_group=group,
        public_ip_ours=pip is not None, public_ip=pip, requested_ip=requested,
        security_group=settings.security_group_name,
        security_rules=_security_rules(spec, options, b, node_ips),
        destination_is_frontend=options.floating_ip, skipped=skipped)
