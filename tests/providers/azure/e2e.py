"""What the Azure end-to-end tests share: the ARM emulator's objects read back in full, what one
Service should own there, the cluster's exactness and leak checks, the controller's config, and
azure-mgmt-network on the emulator for what a user does by hand (a public IP of their own).

Everything is read from the emulator's admin snapshot (every object as ARM renders it, the
seeded NSG included), never through lbctl's code. Names are the ones the issue and
`providers/azure/names.py`'s contract fix, spelled out here again: the cluster's load balancers
`lbctl-<cluster>` and `lbctl-<cluster>-internal`, each with the one backend pool
`lbctl-<cluster>` of node IP addresses; per Service (stem = its balancer name) the frontend
`<stem>-<uid without dashes>`, rules `<stem>-<TCP|UDP>-<port>`, probes `<stem>-TCP-<nodePort>`
(Cluster policy, TCP ports only) or `<stem>-HTTP-<healthCheckNodePort>` (Local), our public IP
`<stem>` tagged `lbctl-service-uid=<uid>`, NSG rules `<stem>-<TCP|UDP>-allow` (CIDR sources,
or `*` for an internal balancer open to all) and `<stem>-<TCP|UDP>-tag-Internet` (an external
balancer open to all). A Service's stem is read back from its frontend (the one name carrying
its UID), so a frontend that is missing, doubled or in the wrong LB is a problem of its own.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from lbctl.controller.controller import Controller
from lbctl.emulators.azure import world as world_module
from lbctl.emulators.azure.client import network_client
from lbctl.emulators.azure.server import AzureAdmin
from lbctl.emulators.azure.world import World
from lbctl.sandbox.app import Sandbox
from tests.providers.convergence import (
    NAMESPACE,
    ServiceEnv,
    nodes_sandbox,
    not_ensured,
    wait_until,
)

__all__ = ["NAMESPACE", "not_ensured", "wait_until"]

CLUSTER = "prod"
EXCLUDE = "node.kubernetes.io/exclude-from-external-load-balancers"
FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"
TAG_CLUSTER = "lbctl-cluster"
TAG_UID = "lbctl-service-uid"
NODE_SUBNET = ipaddress.ip_network("10.224.0.0/16")
PRIORITIES = range(500, 4097)
EVERYONE: tuple[str, ...] = ()
"""No source ranges: open to all (`Internet` for external balancers, `*` for internal)."""
BIG_RATES = {"read": 1000.0, "write": 1000.0, "operations": 1000.0}


def config_text(world: World, endpoint: str, *, batch: float = 0.05,
                rates: dict[str, float] | None = None, debounce: float = 0.2,
                resync: float = 300.0, workers: int = 8) -> str:
    """`lbctl emulator azure --config-out`'s config, with a short batch window, the given
    rate limits (generous by default) and a quick node sync."""
    doc = yaml.safe_load(world_module.config_text(world, endpoint))
    doc["azure"].update(batchWindowSeconds=batch, rateLimits=dict(rates or BIG_RATES))
    doc["controller"] = {"workers": workers, "nodeSyncDebounceSeconds": debounce,
                         "resyncSeconds": resync}
    return str(yaml.safe_dump(doc, sort_keys=False))


def azure_sandbox(world: World, tmp: Path) -> Iterator[Sandbox]:
    """A fixture's body: a sandbox whose nodes are the world's VMs (not simulated)."""
    yield from nodes_sandbox(world_module.nodes_file(world), tmp)


def lb_name(world: World, internal: bool) -> str:
    return f"lbctl-{world.cluster}-internal" if internal else f"lbctl-{world.cluster}"


def same(a: object, b: object) -> bool:
    """ARM ids compare case-insensitively."""
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


def ref_id(obj: dict[str, Any] | None) -> str:
    return str((obj or {}).get("id", ""))


def tail(rid: str) -> str:
    return rid.rsplit("/", 1)[-1]


def strip(value: Any) -> Any:
    """`value` without etags and provisioning states (which every write of the LB renews)."""
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in ("etag", "provisioningState")}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


# -- ARM, read back in full ------------------------------------------------------------------
@dataclass
class Snapshot:
    """Every object in the emulated subscription (the seeded world's included), by kind."""

    lbs: dict[str, dict[str, Any]]
    pips: dict[str, dict[str, Any]]
    nsg: dict[str, Any]
    world: World

    @classmethod
    def read(cls, emu: AzureAdmin, world: World) -> Snapshot:
        objects = emu.snapshot(seeded=True)["objects"]
        lbs = {o["name"]: o for o in objects.get("loadBalancers", [])}
        pips = {o["name"]: o for o in objects.get("publicIPAddresses", [])}
        nsg = next(o for o in objects.get("networkSecurityGroups", []) if o["name"] == world.nsg)
        return cls(lbs, pips, nsg, world)

    def lb(self, internal: bool) -> dict[str, Any] | None:
        return self.lbs.get(lb_name(self.world, internal))

    def children(self, internal: bool, kind: str) -> dict[str, dict[str, Any]]:
        """`frontendIPConfigurations`, `loadBalancingRules`, `probes`, `backendAddressPools`
        of one scheme's LB, by name."""
        props = (self.lb(internal) or {}).get("properties") or {}
        return {c["name"]: c for c in props.get(kind, [])}

    def pool(self, internal: bool) -> dict[str, str]:
        """The LB's backend pool: address name -> IP (every pool the LB has, merged)."""
        out: dict[str, str] = {}
        for pool in self.children(internal, "backendAddressPools").values():
            for a in (pool.get("properties") or {}).get("loadBalancerBackendAddresses", []):
                out[a["name"]] = a["properties"]["ipAddress"]
        return out

    def security_rules(self) -> dict[str, dict[str, Any]]:
        return {r["name"]: r for r in self.nsg["properties"].get("securityRules", [])}

    def ours(self) -> dict[str, dict[str, Any]]:
        """The public IPs tagged with the cluster (lbctl's own)."""
        return {n: p for n, p in self.pips.items()
                if (p.get("tags") or {}).get(TAG_CLUSTER) == self.world.cluster}

    def frontends_of(self, uid: str) -> list[tuple[bool, str]]:
        """Every frontend (scheme, name) carrying the Service's UID."""
        token = uid.replace("-", "")
        return [(internal, name) for internal in (False, True)
                for name in self.children(internal, "frontendIPConfigurations")
                if name.endswith(f"-{token}")]

    def stem_of(self, uid: str) -> str:
        found = self.frontends_of(uid)
        if len(found) != 1:
            return ""
        return found[0][1].removesuffix(f"-{uid.replace('-', '')}")

    def parts_of(self, stem: str) -> dict[str, Any]:
        """Everything named after the stem (frontends, rules, probes in both LBs, public IPs,
        NSG rules), etags stripped: what another Service's change must leave as it was."""
        out: dict[str, Any] = {}
        for internal in (False, True):
            for kind in ("frontendIPConfigurations", "loadBalancingRules", "probes"):
                for name, body in self.children(internal, kind).items():
                    if name.startswith(f"{stem}-"):
                        out[f"{lb_name(self.world, internal)}/{kind}/{name}"] = strip(body)
        for name, body in self.pips.items():
            if name == stem:
                out[f"publicIPAddresses/{name}"] = strip(body)
        for name, body in self.security_rules().items():
            if name.startswith(f"{stem}-"):
                out[f"securityRules/{name}"] = strip(body)
        return out


# -- what one Service should own ---------------------------------------------------------------
@dataclass
class Want:
    """What ARM should hold for one Service, from its spec and status."""

    name: str
    uid: str
    ports: list[tuple[str, int, int]]
    """(protocol, port, nodePort) of each spec port."""
    ip: str
    sources: tuple[str, ...] = EVERYONE
    local_port: int | None = None
    """healthCheckNodePort (Local policy), else None (a Tcp probe per TCP nodePort)."""
    internal: bool = False
    affinity: str = "Default"
    user_pip: str | None = None
    """The name of the user's public IP the Service uses (never ours to own)."""

    @property
    def uid32(self) -> str:
        return self.uid.replace("-", "")


def want_for(svc: client.V1Service, user_pip: str | None = None) -> Want:
    spec = svc.spec
    ports = [(p.protocol or "TCP", int(p.port), int(p.node_port or 0)) for p in spec.ports or []]
    ingress = (svc.status.load_balancer.ingress or []) if svc.status.load_balancer else []
    annotations = svc.metadata.annotations or {}
    local = spec.external_traffic_policy == "Local" and spec.health_check_node_port
    return Want(name=svc.metadata.name, uid=svc.metadata.uid, ports=ports,
                ip=str(ingress[0].ip or "") if ingress else "",
                sources=tuple(sorted(spec.load_balancer_source_ranges or (),
                                     key=lambda r: ipaddress.ip_network(r).network_address)),
                local_port=int(spec.health_check_node_port) if local else None,
                internal=annotations.get(INTERNAL, "") == "true",
                affinity="SourceIP" if spec.session_affinity == "ClientIP" else "Default",
                user_pip=user_pip)


def expected_names(want: Want, stem: str) -> dict[str, set[str]]:
    """The names of the Service's parts, by kind."""
    rules = {f"{stem}-{proto}-{port}" for proto, port, _ in want.ports}
    if want.local_port is not None:
        probes = {f"{stem}-HTTP-{want.local_port}"}
    else:
        probes = {f"{stem}-TCP-{node_port}" for proto, _, node_port in want.ports
                  if proto == "TCP"}
    protocols = sorted({proto for proto, _, _ in want.ports})
    if want.sources or want.internal:
        security = {f"{stem}-{proto}-allow" for proto in protocols}
    else:
        security = {f"{stem}-{proto}-tag-Internet" for proto in protocols}
    return {"frontendIPConfigurations": {f"{stem}-{want.uid32}"},
            "loadBalancingRules": rules, "probes": probes, "securityRules": security,
            "publicIPAddresses": set() if want.internal or want.user_pip else {stem}}


def problems(snap: Snapshot, want: Want, nodes: dict[str, str]) -> list[str]:
    """Every way ARM differs from `want` for the Service (its parts missing, extra or wrong;
    the pool of its LB not exactly `nodes`, name -> IP)."""
    world = snap.world
    found = snap.frontends_of(want.uid)
    if len(found) != 1 or found[0][0] != want.internal:
        return [f"{want.name}: frontends carrying its UID: {found} (internal: {want.internal})"]
    stem = snap.stem_of(want.uid)
    lb = lb_name(world, want.internal)
    names = expected_names(want, stem)
    out: list[str] = []
    for kind in ("frontendIPConfigurations", "loadBalancingRules", "probes"):
        got = {n for n in snap.children(want.internal, kind) if n.startswith(f"{stem}-")}
        if got != names[kind]:
            out.append(f"{want.name}: {lb} {kind}: extra {sorted(got - names[kind])}, missing "
                       f"{sorted(names[kind] - got)}")
        other = {n for n in snap.children(not want.internal, kind) if n.startswith(f"{stem}-")}
        if other:
            out.append(f"{want.name}: parts in the other scheme's LB: {sorted(other)}")
    security = {n for n in snap.security_rules() if n.startswith(f"{stem}-")}
    if security != names["securityRules"]:
        out.append(f"{want.name}: NSG rules: extra {sorted(security - names['securityRules'])}"
                   f", missing {sorted(names['securityRules'] - security)}")
    if out:
        return out
    lb_id = ref_id(snap.lb(want.internal))
    frontend = snap.children(want.internal, "frontendIPConfigurations")[f"{stem}-{want.uid32}"]
    fprops = frontend.get("properties") or {}
    if want.internal:
        if fprops.get("privateIPAddress") != want.ip:
            out.append(f"{want.name}: frontend IP {fprops.get('privateIPAddress')}, status "
                       f"{want.ip!r}")
        if ipaddress.ip_address(want.ip or "0.0.0.0") not in NODE_SUBNET:
            out.append(f"{want.name}: internal IP {want.ip!r} outside {NODE_SUBNET}")
        if not same(ref_id(fprops.get("subnet")), world.subnet_id):
            out.append(f"{want.name}: frontend subnet {fprops.get('subnet')}")
        if fprops.get("publicIPAddress"):
            out.append(f"{want.name}: an internal frontend with a public IP")
    else:
        pip_name = want.user_pip or stem
        pip = snap.pips.get(pip_name) or {}
        address = (pip.get("properties") or {}).get("ipAddress")
        if not same(ref_id(fprops.get("publicIPAddress")), ref_id(pip)):
            out.append(f"{want.name}: frontend -> {fprops.get('publicIPAddress')}, want the "
                       f"public IP {pip_name}")
        if address != want.ip or not want.ip:
            out.append(f"{want.name}: status IP {want.ip!r}, public IP {pip_name} holds "
                       f"{address!r}")
        if want.user_pip is None:
            tags = pip.get("tags") or {}
            got_pip = (tags.get(TAG_UID), tags.get(TAG_CLUSTER), pip.get("sku", {}).get("name"),
                       pip["properties"].get("publicIPAllocationMethod"))
            if got_pip != (want.uid, world.cluster, "Standard", "Static"):
                out.append(f"{want.name}: public IP {pip_name}: {got_pip}")
    rules = snap.children(want.internal, "loadBalancingRules")
    for proto, port, node_port in want.ports:
        body = rules[f"{stem}-{proto}-{port}"]["properties"]
        if want.local_port is not None:
            probe = f"{stem}-HTTP-{want.local_port}"
        else:
            probe = f"{stem}-TCP-{node_port}" if proto == "TCP" else ""
        got_rule = (tail(ref_id(body.get("frontendIPConfiguration"))),
                    tail(ref_id(body.get("backendAddressPool"))),
                    tail(ref_id(body.get("probe"))), body.get("protocol"),
                    body.get("frontendPort"), body.get("backendPort"),
                    body.get("enableFloatingIP"), body.get("loadDistribution"))
        want_rule = (f"{stem}-{want.uid32}", f"lbctl-{world.cluster}", probe,
                     proto.capitalize(), port, port, True, want.affinity)
        if got_rule != want_rule:
            out.append(f"{want.name}: rule {stem}-{proto}-{port}: {got_rule}, want "
                       f"{want_rule}")
        if not ref_id(body.get("frontendIPConfiguration")).lower().startswith(lb_id.lower()):
            out.append(f"{want.name}: rule {stem}-{proto}-{port} refers outside {lb}")
    probes = snap.children(want.internal, "probes")
    if want.local_port is not None:
        body = probes[f"{stem}-HTTP-{want.local_port}"]["properties"]
        got_probe = (body.get("protocol"), body.get("port"), body.get("requestPath"))
        if got_probe != ("Http", want.local_port, "/healthz"):
            out.append(f"{want.name}: probe {got_probe}, want Http {want.local_port} /healthz")
    else:
        for name in names["probes"]:
            body = probes[name]["properties"]
            if (body.get("protocol"), body.get("port")) != ("Tcp", int(name.rsplit("-", 1)[1])):
                out.append(f"{want.name}: probe {name}: {body.get('protocol')} "
                           f"{body.get('port')}")
    out += security_problems(snap, want, stem)
    pool = snap.pool(want.internal)
    if pool != nodes:
        out.append(f"{lb} pool: {sorted(pool.items())}, want {sorted(nodes.items())}")
    return out


def security_problems(snap: Snapshot, want: Want, stem: str) -> list[str]:
    out = []
    rules = snap.security_rules()
    for proto in sorted({p for p, _, _ in want.ports}):
        ports = sorted({port for p, port, _ in want.ports if p == proto})
        if want.sources or want.internal:
            name = f"{stem}-{proto}-allow"
            sources: tuple[str, ...] = want.sources or ("*",)
        else:
            name, sources = f"{stem}-{proto}-tag-Internet", ("Internet",)
        props = rules[name]["properties"]
        got_sources = tuple(props.get("sourceAddressPrefixes") or
                            [props.get("sourceAddressPrefix")])
        got = (props.get("protocol"), props.get("access"), props.get("direction"),
               got_sources, props.get("destinationAddressPrefix"),
               sorted(props.get("destinationPortRanges") or
                      [props.get("destinationPortRange")], key=int))
        expect = (proto.capitalize(), "Allow", "Inbound", sources, want.ip,
                  [str(p) for p in ports])
        if got != expect:
            out.append(f"{want.name}: NSG rule {name}: {got}, want {expect}")
        if props.get("priority") not in PRIORITIES:
            out.append(f"{want.name}: NSG rule {name} priority {props.get('priority')}")
        record = json.loads(props.get("description") or "{}")
        if record.get("lbctl.io/cluster") != snap.world.cluster:
            out.append(f"{want.name}: NSG rule {name} description {props.get('description')}")
    return out


def cluster_problems(snap: Snapshot, wants: list[Want], nodes: dict[str, str]) -> list[str]:
    """Each Service as it asks, and nothing else of the cluster's: no other frontend, rule,
    probe, public IP of ours or NSG rule; an LB only for a scheme some Service uses; NSG
    priorities unique."""
    out = [p for want in wants for p in problems(snap, want, nodes)]
    if out:
        return out
    expected: dict[str, set[str]] = {}
    for want in wants:
        for kind, names in expected_names(want, snap.stem_of(want.uid)).items():
            key = f"{lb_name(snap.world, want.internal)}/{kind}" if kind in (
                "frontendIPConfigurations", "loadBalancingRules", "probes") else kind
            expected.setdefault(key, set()).update(names)
    found: dict[str, set[str]] = {}
    for internal in (False, True):
        if snap.lb(internal) is None:
            continue
        if not any(w.internal == internal for w in wants):
            out.append(f"{lb_name(snap.world, internal)} exists with no Service on it")
        for kind in ("frontendIPConfigurations", "loadBalancingRules", "probes"):
            found[f"{lb_name(snap.world, internal)}/{kind}"] = set(snap.children(internal, kind))
    found["securityRules"] = set(snap.security_rules())
    found["publicIPAddresses"] = set(snap.ours())
    for key in sorted(set(found) | set(expected)):
        have, need = found.get(key, set()), expected.get(key, set())
        if have != need:
            out.append(f"{key}: extra {sorted(have - need)}, missing {sorted(need - have)}")
    priorities = [r["properties"].get("priority") for r in snap.security_rules().values()]
    if len(priorities) != len(set(priorities)):
        out.append(f"NSG priorities repeat: {sorted(priorities)}")
    return out


def world_nodes(world: World, *, without: tuple[str, ...] = ()) -> dict[str, str]:
    return {n.name: n.ip for n in world.nodes if n.name not in without}


# -- azure-mgmt-network on the emulator (what a user does by hand) ----------------------------
class UserSdk:
    """NetworkManagementClient on the emulator, for the user's own objects."""

    def __init__(self, emu: AzureAdmin, world: World) -> None:
        sdk = importlib.import_module("azure.mgmt.network")
        self.net: Any = network_client(sdk.NetworkManagementClient, emu.endpoint,
                                       world.subscription, polling_interval=0.01)
        self.world = world

    def create_public_ip(self, name: str) -> str:
        """A Standard static public IP of the user's; answers its address."""
        made = self.net.public_ip_addresses.begin_create_or_update(
            self.world.resource_group, name, {
                "location": self.world.location, "sku": {"name": "Standard"},
                "tags": {"owner": "the user"},
                "properties": {"publicIPAllocationMethod": "Static"}}).result()
        return str(made.ip_address)

    def public_ip(self, name: str) -> Any:
        return self.net.public_ip_addresses.get(self.world.resource_group, name)

    def delete_public_ip(self, name: str) -> None:
        self.net.public_ip_addresses.begin_delete(self.world.resource_group, name).result()

    def load_balancer(self, internal: bool) -> Any:
        """The cluster's LB as the SDK reads it, or None."""
        name = lb_name(self.world, internal)
        found = [x for x in self.net.load_balancers.list(self.world.resource_group)
                 if x.name == name]
        return found[0] if found else None


# -- the Services ----------------------------------------------------------------------------
@dataclass
class Env(ServiceEnv):
    emu: AzureAdmin
    world: World
    box: Sandbox
    controller: Controller | None = None
    user_pips: dict[str, str] = field(default_factory=dict)
    """Service name -> the user's public IP it uses."""

    def snapshot(self) -> Snapshot:
        return Snapshot.read(self.emu, self.world)

    def converge(self, *names: str, nodes: dict[str, str] | None = None,
                 timeout: float = 45.0,
                 extra: Callable[[Snapshot], list[str]] | None = None) -> Snapshot:
        """Wait until ARM holds exactly what these Services ask for and nothing else of the
        cluster's (`names` are all the cluster's Services with a balancer), each reported
        ensured; answers the snapshot that showed it."""
        members = world_nodes(self.world) if nodes is None else nodes
        seen: list[Snapshot] = []

        def check() -> list[str]:
            wants = []
            waiting = []
            for name in names:
                svc = self.read(name)
                want = want_for(svc, self.user_pips.get(name))
                if not want.ip:
                    waiting.append(f"{name}: no status IP yet")
                waiting += [f"{name}: {p}" for p in not_ensured(svc)]
                wants.append(want)
            if waiting:
                return waiting
            snap = self.snapshot()
            found = cluster_problems(snap, wants, members) or (extra(snap) if extra else [])
            if not found:
                seen.append(snap)
            return found

        wait_until(check, timeout, f"{', '.join(names)} converged in ARM")
        return seen[-1]

    def gone(self, timeout: float = 45.0, keep: tuple[str, ...] = ()) -> None:
        """Wait until nothing lbctl made is left in ARM (the emulator's leak check), but for
        the user's own public IPs named in `keep`."""
        wait_until(lambda: leaks(self.emu, keep), timeout, "nothing of the cluster's left in ARM")


def leaks(emu: AzureAdmin, keep: tuple[str, ...] = ()) -> list[str]:
    """What ARM calls made and left (the emulator's leak check), but for the public IPs in
    `keep` (the user's)."""
    return [rid for kind, ids in sorted(emu.objects().items()) for rid in ids
            if not (kind == "publicIPAddresses" and tail(rid) in keep)]
