"""What the GCP end-to-end tests share: the GCE emulator's objects read back in full, what one
Service should own there, the cluster's leak check, the controller's config, and the SDK on the
emulator for what a user does by hand (reserving an address).

Everything is read from the emulator's admin snapshot (every object made through Compute, as
GCE renders it, and every instance group's members), never through lbctl's code: an object is
the Service's when its `description` names the Service's UID (`lbctl.io/service-uid`), the
cluster's when its name starts with `lbctl-<cluster>` or its description names the cluster.
Names are the ones the issue fixes: per Service `<b>` (address), `<b>-tcp` / `<b>-udp`
(backend service and forwarding rule), `<b>-fw` (clients), `<b>-hc` / `<b>-hc-fw` (the Local
policy's own check); per cluster `lbctl-<c>` (instance group, one per zone),
`lbctl-<c>-node-hc` / `-node-hc-fw` (kube-proxy's check and its firewall).
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from lbctl.controller.controller import Controller
from lbctl.emulators.gcp import world as world_module
from lbctl.emulators.gcp.server import GceAdmin
from lbctl.emulators.gcp.world import World
from lbctl.sandbox.app import Sandbox
from tests.providers.convergence import (
    NAMESPACE,
    ServiceEnv,
    nodes_sandbox,
    not_ensured,
    wait_until,
)

__all__ = ["NAMESPACE", "not_ensured", "wait_until"]

EXCLUDE = "node.kubernetes.io/exclude-from-external-load-balancers"
FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
LB_TYPE = "networking.gke.io/load-balancer-type"
KEY_UID = "lbctl.io/service-uid"
KEY_BALANCER = "lbctl.io/balancer"
KEY_CLUSTER = "lbctl.io/cluster"
KUBE_PROXY_PORT = 10256
PROBERS = ("130.211.0.0/22", "35.191.0.0/16", "209.85.152.0/22", "209.85.204.0/22")
INTERNAL_PROBERS = ("130.211.0.0/22", "35.191.0.0/16")
EVERYONE = ("0.0.0.0/0",)
MAX_LISTED_PORTS = 5


def config_text(world: World, endpoint: str, *, debounce: float = 0.2,
                resync: float = 300.0, workers: int = 8, rates: str = "") -> str:
    """`lbctl emulator gcp --config-out`'s config, with a quick node sync (and rate limits)."""
    text = world_module.config_text(world, endpoint)
    if rates:
        text = text.rstrip().rstrip("}") + f", rateLimits: {{{rates}}}}}\n"
    return text + (f"controller: {{workers: {workers}, nodeSyncDebounceSeconds: {debounce}, "
                   f"resyncSeconds: {resync}}}\n")


def gce_sandbox(world: World, tmp: Path) -> Iterator[Sandbox]:
    """A fixture's body: a sandbox whose nodes are the world's instances (not simulated)."""
    yield from nodes_sandbox(world_module.nodes_file(world), tmp)


# -- GCE, read back in full ------------------------------------------------------------------
def owner(obj: dict[str, Any]) -> dict[str, str]:
    """The JSON ownership record in an object's description ({} when there is none)."""
    text = obj.get("description") or ""
    try:
        doc = json.loads(text) if text.startswith("{") else {}
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def rel(link: str) -> str:
    """`regions/R/forwardingRules/N`: a link (full URL or `projects/P/...`) after the project."""
    tail = link.split("/projects/", 1)[1] if "/projects/" in link else \
        link.removeprefix("projects/")
    return tail.split("/", 1)[1]


def path_of(obj: dict[str, Any]) -> str:
    return rel(str(obj["selfLink"]))


@dataclass
class Snapshot:
    """Every object made through Compute, by path, and every instance group's members."""

    objects: dict[str, dict[str, Any]]
    members: dict[str, set[str]]
    """Group path -> instance names."""

    @classmethod
    def read(cls, emu: GceAdmin) -> Snapshot:
        snap = emu.snapshot()
        objects = {path_of(o): o for found in snap["objects"].values() for o in found}
        members = {rel(g): {m.rsplit("/", 1)[1] for m in ms}
                   for g, ms in snap["members"].items()}
        return cls(objects, members)

    def of_service(self, uid: str) -> dict[str, dict[str, Any]]:
        return {p: o for p, o in self.objects.items() if owner(o).get(KEY_UID) == uid}

    def of_cluster(self, cluster: str) -> dict[str, dict[str, Any]]:
        """What lbctl made for `cluster`: by name prefix or by the description's cluster."""
        stem = f"lbctl-{cluster}"
        return {p: o for p, o in self.objects.items()
                if str(o.get("name", "")).startswith(stem)
                or owner(o).get(KEY_CLUSTER) == cluster}

    def get(self, path: str) -> dict[str, Any]:
        return self.objects.get(path) or {}


def cluster_left(emu: GceAdmin, cluster: str) -> list[str]:
    """The leak check: every object of the cluster's still in GCE (empty: nothing leaked)."""
    return sorted(Snapshot.read(emu).of_cluster(cluster))


# -- what one Service should own ---------------------------------------------------------------
@dataclass
class Want:
    """What GCE should hold for one Service, from its spec, status and the cluster's nodes."""

    uid: str
    ports: dict[str, list[int]]
    """Protocol -> its listener ports."""
    instances: dict[str, str]
    """Instance name -> zone: the group members the Service's nodes make."""
    ip: str
    """The status ingress IP (checked against the forwarding rules' IP)."""
    sources: tuple[str, ...] = EVERYONE
    local_port: int | None = None
    """healthCheckNodePort (Local policy), else None (kube-proxy's shared check)."""
    internal: bool = False
    affinity: str = "NONE"
    user_address: str | None = None
    """The path of the user's reserved address the Service uses (never ours to own)."""
    extra: list[str] = field(default_factory=list)

    @property
    def zones(self) -> list[str]:
        return sorted(set(self.instances.values()))


def want_for(svc: client.V1Service, instances: dict[str, str],
             user_address: str | None = None) -> Want:
    spec = svc.spec
    ports: dict[str, list[int]] = {}
    for p in spec.ports or []:
        ports.setdefault(p.protocol or "TCP", []).append(int(p.port))
    ingress = (svc.status.load_balancer.ingress or []) if svc.status.load_balancer else []
    annotations = svc.metadata.annotations or {}
    local = spec.external_traffic_policy == "Local" and spec.health_check_node_port
    return Want(uid=svc.metadata.uid, ports={k: sorted(v) for k, v in ports.items()},
                instances=instances, ip=str(ingress[0].ip or "") if ingress else "",
                sources=tuple(spec.load_balancer_source_ranges or EVERYONE),
                local_port=int(spec.health_check_node_port) if local else None,
                internal=annotations.get(LB_TYPE, "").lower() == "internal",
                affinity="CLIENT_IP" if spec.session_affinity == "ClientIP" else "NONE",
                user_address=user_address)


def balancer_of(objects: dict[str, dict[str, Any]]) -> str:
    found = {owner(o).get(KEY_BALANCER, "") for o in objects.values()}
    return found.pop() if len(found) == 1 else ""


def region_path(world: World, collection: str, name: str) -> str:
    return f"regions/{world.region}/{collection}/{name}"


def shared_paths(world: World, want: Want) -> set[str]:
    """The cluster's objects this Service needs: its zones' groups, kube-proxy's check."""
    stem = f"lbctl-{world.cluster}"
    out = {f"zones/{z}/instanceGroups/{stem}" for z in want.zones}
    if want.local_port is None:
        where = "global" if want.internal else f"regions/{world.region}"
        out |= {f"{where}/healthChecks/{stem}-node-hc", f"global/firewalls/{stem}-node-hc-fw"}
    return out


def service_paths(world: World, want: Want, b: str) -> set[str]:
    """The Service's own objects (described with its UID), by path."""
    out = {f"global/firewalls/{b}-fw"}
    if want.user_address is None:
        out.add(region_path(world, "addresses", b))
    for protocol in want.ports:
        out |= {region_path(world, "forwardingRules", f"{b}-{protocol.lower()}"),
                region_path(world, "backendServices", f"{b}-{protocol.lower()}")}
    if want.local_port is not None:
        where = "global" if want.internal else f"regions/{world.region}"
        out |= {f"{where}/healthChecks/{b}-hc", f"global/firewalls/{b}-hc-fw"}
    return out


def problems(snap: Snapshot, world: World, want: Want) -> list[str]:
    """Every way GCE differs from `want` for the Service: missing, extra (leaked) or wrong
    objects, wrong fields, wrong group members."""
    mine = snap.of_service(want.uid)
    b = balancer_of(mine)
    if not b:
        return [f"the Service's objects name no single balancer: {sorted(mine)}"]
    expected = service_paths(world, want, b)
    out = []
    if set(mine) != expected:
        out.append(f"the Service's objects: extra {sorted(set(mine) - expected)}, missing "
                   f"{sorted(expected - set(mine))}")
    shared = shared_paths(world, want)
    missing = sorted(p for p in shared if p not in snap.objects)
    if missing:
        out.append(f"shared objects missing: {missing}")
    if out:
        return out + want.extra
    scheme = "INTERNAL" if want.internal else "EXTERNAL"
    stem = f"lbctl-{world.cluster}"
    hc_where = "global" if want.internal else f"regions/{world.region}"
    check = (f"{hc_where}/healthChecks/{b}-hc" if want.local_port is not None
             else f"{hc_where}/healthChecks/{stem}-node-hc")
    # the address (ours, or the user's) and the forwarding rules on its IP
    address_path = want.user_address or region_path(world, "addresses", b)
    address = snap.get(address_path)
    ip = address.get("address")
    if ip != want.ip:
        out.append(f"status IP {want.ip!r}, address {address_path} holds {ip!r}")
    if address.get("addressType") != scheme:
        out.append(f"address type {address.get('addressType')}, want {scheme}")
    if want.internal and not str(address.get("subnetwork", "")).endswith(
            f"subnetworks/{world.subnetwork}"):
        out.append(f"internal address on {address.get('subnetwork')}")
    for protocol, ports in want.ports.items():
        name = f"{b}-{protocol.lower()}"
        rule = snap.get(region_path(world, "forwardingRules", name))
        service = snap.get(region_path(world, "backendServices", name))
        got = (rule.get("IPAddress"), rule.get("IPProtocol"), rule.get("loadBalancingScheme"))
        if got != (ip, protocol, scheme):
            out.append(f"forwarding rule {name}: {got}, want {(ip, protocol, scheme)}")
        if not str(rule.get("backendService", "")).endswith(
                region_path(world, "backendServices", name)):
            out.append(f"forwarding rule {name} -> {rule.get('backendService')}")
        if len(ports) <= MAX_LISTED_PORTS:
            want_ports: dict[str, Any] = {"ports": [str(p) for p in ports]}
        elif want.internal:
            want_ports = {"allPorts": True}
        else:
            want_ports = {"portRange": f"{min(ports)}-{max(ports)}"}
        got_ports = {k: rule[k] for k in ("ports", "portRange", "allPorts") if rule.get(k)}
        if "ports" in got_ports:
            got_ports["ports"] = sorted(got_ports["ports"], key=int)
        if got_ports != want_ports:
            out.append(f"forwarding rule {name} ports {got_ports}, want {want_ports}")
        got_bs = (service.get("protocol"), service.get("loadBalancingScheme"),
                  service.get("sessionAffinity"),
                  [rel(h) for h in service.get("healthChecks", [])])
        if got_bs != (protocol, scheme, want.affinity, [check]):
            out.append(f"backend service {name}: {got_bs}, want "
                       f"{(protocol, scheme, want.affinity, [check])}")
        groups = sorted(rel(g["group"]) for g in service.get("backends", []))
        if groups != [f"zones/{z}/instanceGroups/{stem}" for z in want.zones]:
            out.append(f"backend service {name} backends {groups}, want the zones {want.zones}")
    # firewalls: the clients' and the probers'
    fw = snap.get(f"global/firewalls/{b}-fw")
    allowed = sorted((a["IPProtocol"], sorted(a.get("ports", []), key=int))
                     for a in fw.get("allowed", []))
    want_allowed = sorted((p.lower(), [str(x) for x in ports])
                          for p, ports in want.ports.items())
    got_fw = (sorted(fw.get("sourceRanges", [])), allowed, fw.get("destinationRanges"),
              fw.get("targetTags"), fw.get("direction"))
    want_fw = (sorted(want.sources), want_allowed, [f"{ip}/32"], [world.node_tag], "INGRESS")
    if got_fw != want_fw:
        out.append(f"firewall {b}-fw: {got_fw}, want {want_fw}")
    hc = snap.get(check)
    hc_port = want.local_port or KUBE_PROXY_PORT
    got_hc = (hc.get("type"), hc.get("httpHealthCheck", {}).get("port"),
              hc.get("httpHealthCheck", {}).get("requestPath"))
    if got_hc != ("HTTP", hc_port, "/healthz"):
        out.append(f"health check {check}: {got_hc}, want HTTP {hc_port} /healthz")
    hc_fw_path = (f"global/firewalls/{b}-hc-fw" if want.local_port is not None
                  else f"global/firewalls/{stem}-node-hc-fw")
    hc_fw = snap.get(hc_fw_path)
    # the shared check's rule serves internal and external balancers: every probers' range
    probers = INTERNAL_PROBERS if want.internal and want.local_port is not None else PROBERS
    got_hc_fw = (sorted(hc_fw.get("sourceRanges", [])),
                 [(a["IPProtocol"], a.get("ports")) for a in hc_fw.get("allowed", [])],
                 hc_fw.get("targetTags"))
    want_hc_fw = (sorted(probers), [("tcp", [str(hc_port)])], [world.node_tag])
    if got_hc_fw != want_hc_fw:
        out.append(f"firewall {hc_fw_path}: {got_hc_fw}, want {want_hc_fw}")
    out += members_problems(snap, world, want.instances)
    return out + want.extra


def members_problems(snap: Snapshot, world: World, instances: dict[str, str]) -> list[str]:
    """The cluster's group in each zone holds exactly the zone's instances of `instances`
    (a group in a zone without any may be gone or empty)."""
    stem = f"lbctl-{world.cluster}"
    out = []
    zones = set(world.zones) | set(instances.values())
    for zone in sorted(zones):
        path = f"zones/{zone}/instanceGroups/{stem}"
        want = {n for n, z in instances.items() if z == zone}
        got = snap.members.get(path, set())
        if got != want:
            out.append(f"members of {path}: {sorted(got)}, want {sorted(want)}")
    return out


def world_instances(world: World, *, without: tuple[str, ...] = (),
                    added: dict[str, str] | None = None) -> dict[str, str]:
    found = {n.name: n.zone for n in world.nodes if n.name not in without}
    return {**found, **(added or {})}


# -- the SDK on the emulator (what a user does by hand) -------------------------------------------
class UserSdk:
    """google-cloud-compute's clients on the emulator, for the user's own objects."""

    def __init__(self, endpoint: str, world: World) -> None:
        self.compute: Any = importlib.import_module("google.cloud.compute_v1")
        options = importlib.import_module("google.api_core.client_options").ClientOptions
        credentials = importlib.import_module("google.auth.credentials").AnonymousCredentials
        self._kw = {"client_options": options(api_endpoint=endpoint),
                    "credentials": credentials(), "transport": "rest"}
        self.world = world

    def client(self, name: str) -> Any:
        return getattr(self.compute, name)(**self._kw)

    def wait(self, op: Any, timeout: float = 30.0) -> None:
        ops = self.client("RegionOperationsClient")
        deadline = time.monotonic() + timeout
        while op.status != self.compute.Operation.Status.DONE:
            assert time.monotonic() < deadline, f"operation {op.name} not DONE"
            op = ops.wait(project=self.world.project, region=self.world.region,
                          operation=op.name)
        assert not op.error.errors, op.error

    def reserve_address(self, name: str, **fields: Any) -> str:
        """A regional static address of the user's; answers its IP."""
        addresses = self.client("AddressesClient")
        self.wait(addresses.insert_unary(project=self.world.project, region=self.world.region,
                                         address_resource=self.compute.Address(
                                             name=name, description="the user's", **fields)))
        found = addresses.get(project=self.world.project, region=self.world.region,
                              address=name)
        return str(found.address)

    def delete_address(self, name: str) -> None:
        addresses = self.client("AddressesClient")
        self.wait(addresses.delete_unary(project=self.world.project, region=self.world.region,
                                         address=name))

    def group_instances(self, zone: str, group: str) -> set[str]:
        """The members of a group as the SDK lists them (instanceGroups.listInstances)."""
        groups = self.client("InstanceGroupsClient")
        request = self.compute.InstanceGroupsListInstancesRequest(instance_state="ALL")
        return {i.instance.rsplit("/", 1)[1] for i in groups.list_instances(
            project=self.world.project, zone=zone, instance_group=group,
            instance_groups_list_instances_request_resource=request)}


# -- the Services ----------------------------------------------------------------------------------
@dataclass
class Env(ServiceEnv):
    emu: GceAdmin
    world: World
    box: Sandbox
    controller: Controller | None = None

    def converge(self, name: str, instances: dict[str, str] | None = None,
                 timeout: float = 45.0, user_address: str | None = None,
                 extra: Callable[[Snapshot], list[str]] | None = None) -> Snapshot:
        """Wait until GCE holds exactly what the Service asks for (and the controller says
        so); answers the snapshot that showed it."""
        members = world_instances(self.world) if instances is None else instances
        seen: list[Snapshot] = []

        def check() -> list[str]:
            svc = self.read(name)
            want = want_for(svc, members, user_address)
            if not want.ip:
                return ["no status IP yet", *not_ensured(svc)]
            snap = Snapshot.read(self.emu)
            found = problems(snap, self.world, want) or not_ensured(svc)
            found = found or (extra(snap) if extra else [])
            if not found:
                seen.append(snap)
            return found

        wait_until(check, timeout, f"{name} converged in GCE")
        return seen[-1]

    def gone(self, timeout: float = 45.0) -> None:
        """Wait until nothing of the cluster's is left in GCE."""
        wait_until(lambda: cluster_left(self.emu, self.world.cluster), timeout,
                   "nothing of the cluster's left in GCE")
