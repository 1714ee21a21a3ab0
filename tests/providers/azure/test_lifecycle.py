"""The `azure` provider end to end: an in-process Controller against a sandbox whose nodes are the
ARM emulator's seeded VMs (providerID azure:///...), Services created with the official client,
every assertion read back from the emulator (its admin snapshot: every object as ARM renders
it, the seeded NSG's rules included; its call log) or through azure-mgmt-network, not only what
lbctl would find.

Covered: create (our public IP, the Service's frontend, rules and probes in the cluster's shared
LB, its pool at the nodes, NSG rules to the frontend's IP; status IP = our public IP's address;
the order of the writes), several ports, TCP+UDP on one frontend, port changes (rules and probes
replaced, the address kept, another Service's parts untouched), nodes excluded / re-included /
deleted / added (the shared pool follows: a node added costs one LB write and nothing else),
Cluster <-> Local (an Http probe on healthCheckNodePort /healthz), loadBalancerSourceRanges ->
the NSG rule's sources, a user's public IP by spec.loadBalancerIP (found by address, kept after
the Service), an address nobody holds refused naming spec.loadBalancerIP, internal balancers (a
private frontend in the node subnet, at a chosen address too), bad annotations (a Warning naming
the key, other Services unharmed), type -> ClusterIP and delete (nothing of ours left).

And what is Azure's own: 50 Services created and then deleted at once on the shared LB (no
frontend lost or left, far fewer LB writes than Services), a second writer bumping the LB's
etag throughout a wave (412s met, nothing lost, the other writer's tags kept), and two
controllers across a leader hand-over (both leading for a while, the old one stopped mid-wave)
losing nothing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from kubernetes import client

from lbctl.controller.config import parse_config
from lbctl.controller.embedded import Embedded, running_controller
from lbctl.emulators.azure.server import AzureAdmin, AzureEmulator
from lbctl.emulators.azure.world import World
from lbctl.sandbox.app import Sandbox
from tests.conftest import wait_for
from tests.providers.azure.e2e import (
    EXCLUDE,
    FINALIZER,
    INTERNAL,
    NAMESPACE,
    NODE_SUBNET,
    Env,
    Snapshot,
    UserSdk,
    config_text,
    lb_name,
    leaks,
    world_nodes,
)

pytestmark = pytest.mark.integration

IDLE_TIMEOUT = "service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout"
PROBE_INTERVAL = "service.beta.kubernetes.io/azure-load-balancer-health-probe-interval"
LB_WRITES_FOR_50 = 20
"""At most this many LB writes for 50 Services created (or deleted) at once: 2.5 Services'
changes per write on average at least (upstream: 50 writes, one after another). With the
default 8 workers the floor is 7; seen 10-18, since each Service passes three coalescers in
turn (LB, the other scheme's LB, NSG) and a coalescer's leader is a worker thread that stays
with it until a window passes empty."""
NSG_WRITES_FOR_50 = 25
"""The NSG's writes for the same: batched too (seen 11-19)."""
WRITE_APIS = ("loadBalancers.put", "loadBalancers.delete", "publicIPAddresses.put",
              "publicIPAddresses.delete", "networkSecurityGroups.put")


def _controller(box: Sandbox, emulator: AzureAdmin, world: World, batch: float = 0.05
                ) -> contextlib.AbstractContextManager[Embedded]:
    config = parse_config(config_text(world, emulator.endpoint, batch=batch))
    assert box.options.kubeconfig is not None
    return running_controller(str(box.options.kubeconfig), config, qps=500, burst=1000)


@pytest.fixture
def env(emulator: AzureEmulator, world: World, box: Sandbox,
        core_api: client.CoreV1Api) -> Iterator[Env]:
    with _controller(box, emulator, world) as embedded:
        yield Env(core_api, emulator, world, box, embedded.controller)


def _writes(emu: AzureAdmin, since: int = 0) -> list[str]:
    """The accepted writes in the call log from index `since`, in order (`loadBalancers.put`)."""
    return [c["api"] for c in emu.calls()[since:]
            if c["family"] == "write" and c["status"] in (200, 201, 202)]


def _free_node_port(core: client.CoreV1Api, start: int = 32100) -> int:
    used = {p.node_port for s in core.list_service_for_all_namespaces().items
            for p in (s.spec.ports or []) if p.node_port}
    return next(p for p in range(start, 32768) if p not in used)


def _ports(count: int, start: int = 8000) -> list[dict[str, Any]]:
    return [{"name": f"p{k}", "port": start + k, "targetPort": 8080} for k in range(count)]


def _stem(env: Env, name: str, snap: Snapshot | None = None) -> str:
    stem = (snap or env.snapshot()).stem_of(env.read(name).metadata.uid)
    assert stem, f"{name} has no single frontend"
    return stem


def _node_port(svc: client.V1Service, port: int) -> int:
    return int(next(p.node_port for p in svc.spec.ports if p.port == port))


# -- the tests -------------------------------------------------------------------------------
def test_create_ports_change_and_delete(env: Env) -> None:
    emu, world = env.emu, env.world
    emu.clear_calls()
    svc = env.create("web")
    uid = svc.metadata.uid
    snap = env.converge("web")
    stem = _stem(env, "web", snap)
    assert stem.startswith("lb-defaul-web-")
    pip = snap.pips[stem]
    assert env.ip("web") == pip["properties"]["ipAddress"]
    assert pip["tags"]["lbctl-service"] == "default/web"
    assert (snap.lb(False) or {})["tags"]["lbctl-cluster"] == world.cluster
    assert snap.lb(True) is None  # no internal LB without an internal Service
    assert FINALIZER in env.read("web").metadata.finalizers
    # ARM's order: the public IP before the frontend that uses it and the NSG rules that
    # need its address; those two are written side by side (either may land first)
    writes = _writes(emu)
    assert writes[0] == "publicIPAddresses.put", writes
    assert sorted(writes[1:]) == ["loadBalancers.put", "networkSecurityGroups.put"], writes
    # the SDK reads the same LB: the frontend on our public IP, the pool at the three VMs
    sdk = UserSdk(emu, world)
    lb = sdk.load_balancer(internal=False)
    assert [f.name for f in lb.frontend_ip_configurations] == [f"{stem}-{uid.replace('-', '')}"]
    assert lb.frontend_ip_configurations[0].public_ip_address.id.lower() == pip["id"].lower()
    assert {a.ip_address for a in lb.backend_address_pools[0].load_balancer_backend_addresses
            } == {n.ip for n in world.nodes}
    first_ip = env.ip("web")

    # a second Service with three ports on the same LB, its own frontend and address
    env.create("api", ports=_ports(3))
    snap = env.converge("web", "api")
    api_stem = _stem(env, "api", snap)
    assert sorted(snap.children(False, "loadBalancingRules")) == sorted([
        f"{stem}-TCP-80", *[f"{api_stem}-TCP-{8000 + k}" for k in range(3)]])
    assert env.ip("api") not in ("", first_ip)
    api_parts = snap.parts_of(api_stem)

    # web: a new nodePort and one more port: its rules and probes replaced, the address kept
    old_node_port = _node_port(env.read("web"), 80)
    emu.clear_calls()
    svc = env.read("web")
    new_node_port = _free_node_port(env.core)
    svc.spec.ports = [client.V1ServicePort(name="http", port=80, target_port=8080,
                                           node_port=new_node_port),
                      client.V1ServicePort(name="https", port=443, target_port=8443)]
    env.core.replace_namespaced_service("web", NAMESPACE, svc)
    snap = env.converge("web", "api")
    probes = set(snap.children(False, "probes"))
    assert f"{stem}-TCP-{old_node_port}" not in probes
    assert {f"{stem}-TCP-{new_node_port}", f"{stem}-TCP-{_node_port(env.read('web'), 443)}"
            } <= probes
    assert env.ip("web") == first_ip
    assert snap.parts_of(api_stem) == api_parts  # the other Service's parts untouched
    writes = _writes(emu)
    assert sorted(writes) == ["loadBalancers.put", "networkSecurityGroups.put"], writes

    # port 80 dropped: its rule and probe go, the NSG rule opens 443 alone
    svc = env.read("web")
    svc.spec.ports = [p for p in svc.spec.ports if p.port == 443]
    env.core.replace_namespaced_service("web", NAMESPACE, svc)
    snap = env.converge("web", "api")
    assert sorted(n for n in snap.children(False, "loadBalancingRules") if n.startswith(stem)
                  ) == [f"{stem}-TCP-443"]
    assert sorted(n for n in snap.children(False, "probes") if n.startswith(stem)) == [
        f"{stem}-TCP-{_node_port(env.read('web'), 443)}"]
    assert snap.security_rules()[f"{stem}-TCP-tag-Internet"]["properties"][
        "destinationPortRanges"] == ["443"]
    assert env.ip("web") == first_ip
    assert snap.parts_of(api_stem) == api_parts

    # web goes: its NSG rules, then its frontend (one LB write), then its address
    emu.clear_calls()
    env.delete("web")
    wait_for(lambda: not env.exists("web"), 30, "web gone")
    snap = env.converge("api")
    assert snap.parts_of(api_stem) == api_parts
    assert snap.parts_of(stem) == {}
    assert _writes(emu) == ["networkSecurityGroups.put", "loadBalancers.put",
                            "publicIPAddresses.delete"]

    # the last Service goes: the LB with its last frontend, nothing of ours is left
    emu.clear_calls()
    env.delete("api")
    env.gone()
    wait_for(lambda: not env.exists("api"), 30, "api gone")
    assert emu.objects() == {}
    assert _writes(emu) == ["networkSecurityGroups.put", "loadBalancers.delete",
                            "publicIPAddresses.delete"]


def test_tcp_and_udp_then_cluster_ip(env: Env) -> None:
    emu = env.emu
    env.create("mixed", ports=[{"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                               {"name": "dns", "port": 53, "protocol": "UDP"},
                               {"name": "ntp", "port": 123, "protocol": "UDP"}],
               sessionAffinity="ClientIP")
    snap = env.converge("mixed")
    stem = _stem(env, "mixed", snap)
    rules = snap.children(False, "loadBalancingRules")
    assert sorted(rules) == sorted([f"{stem}-TCP-53", f"{stem}-UDP-53", f"{stem}-UDP-123"])
    uid32 = env.read("mixed").metadata.uid.replace("-", "")
    assert {r["properties"]["frontendIPConfiguration"]["id"].rsplit("/", 1)[1]
            for r in rules.values()} == {f"{stem}-{uid32}"}  # one frontend for all three
    # one Tcp probe (the TCP port's nodePort); a UDP rule has none
    assert list(snap.children(False, "probes")) == [
        f"{stem}-TCP-{_node_port(env.read('mixed'), 53)}"]
    assert "probe" not in rules[f"{stem}-UDP-123"]["properties"]
    assert {r["properties"]["loadDistribution"] for r in rules.values()} == {"SourceIP"}
    assert list(snap.pips) == [stem]  # one address for both protocols
    assert sorted(snap.security_rules()) == [f"{stem}-TCP-tag-Internet",
                                             f"{stem}-UDP-tag-Internet"]

    # type -> ClusterIP: the balancer goes, status and finalizer too (the last Service)
    env.core.patch_namespaced_service("mixed", NAMESPACE, {"spec": {"type": "ClusterIP"}})
    env.gone()

    def cleared() -> bool:
        svc = env.read("mixed")
        lb = svc.status.load_balancer if svc.status else None
        return (not (lb and lb.ingress)) and FINALIZER not in (svc.metadata.finalizers or [])

    wait_for(cleared, 30, "status cleared and finalizer removed")
    svc = env.read("mixed")
    assert svc.spec.type == "ClusterIP"
    assert not [c for c in (svc.status.conditions or []) if c.type.startswith("LoadBalancer")]
    assert emu.objects() == {}


def test_nodes_excluded_deleted_and_added(env: Env) -> None:
    emu, world = env.emu, env.world
    env.create("nodes")
    env.create("other", ports=[{"name": "dns", "port": 53, "protocol": "UDP"}])
    env.converge("nodes", "other")
    node1, node2, node3 = world.nodes

    env.core.patch_node(node1.name, {"metadata": {"labels": {EXCLUDE: "true"}}})
    env.converge("nodes", "other", nodes=world_nodes(world, without=(node1.name,)))
    env.core.patch_node(node1.name, {"metadata": {"labels": {EXCLUDE: None}}})
    env.converge("nodes", "other")

    env.core.delete_node(node3.name)  # the node goes; its VM still runs
    without = world_nodes(world, without=(node3.name,))
    env.converge("nodes", "other", nodes=without)

    # a new VM joins as a node: the shared pool gets it in one LB write, and nothing else is
    # written or even read (the public IPs and the NSG are as they were)
    emu.clear_calls()
    added = next(n for n in emu.add_nodes(names=[f"{world.cluster}-node-9"]).nodes
                 if n.name == f"{world.cluster}-node-9")
    env.core.create_node({
        "metadata": {"name": added.name, "labels": {
            "topology.kubernetes.io/zone": added.zone,
            "topology.kubernetes.io/region": world.location}},
        "spec": {"providerID": added.provider_id},
        "status": {"addresses": [{"type": "InternalIP", "address": added.ip},
                                 {"type": "Hostname", "address": added.name}]}})
    now = {**without, added.name: added.ip}
    env.converge("nodes", "other", nodes=now)
    counts = emu.counts()
    assert _writes(emu) == ["loadBalancers.put"], counts
    assert not [api for api in counts if api.startswith(("publicIPAddresses.",
                                                         "networkSecurityGroups."))], counts

    # the last node of the first three goes too
    env.core.delete_node(node2.name)
    env.converge("nodes", "other", nodes={n: ip for n, ip in now.items() if n != node2.name})
    env.delete("nodes")
    snap = env.converge("other", nodes={n: ip for n, ip in now.items() if n != node2.name})
    assert snap.lb(False) is not None  # still the other's
    env.delete("other")
    env.gone()


def test_cluster_local_and_source_ranges(env: Env) -> None:
    env.create("keeper")
    svc = env.create("local", externalTrafficPolicy="Local")
    hc_port = svc.spec.health_check_node_port
    assert hc_port
    snap = env.converge("keeper", "local")
    stem, keeper = _stem(env, "local", snap), _stem(env, "keeper", snap)
    keeper_parts = snap.parts_of(keeper)
    probe = snap.children(False, "probes")[f"{stem}-HTTP-{hc_port}"]["properties"]
    assert (probe["protocol"], probe["port"], probe["requestPath"]) == ("Http", hc_port,
                                                                        "/healthz")
    assert snap.children(False, "loadBalancingRules")[f"{stem}-TCP-80"]["properties"][
        "probe"]["id"].endswith(f"/probes/{stem}-HTTP-{hc_port}")

    ranges = ["203.0.113.0/24", "198.51.100.7/32"]
    env.core.patch_namespaced_service("local", NAMESPACE,
                                      {"spec": {"loadBalancerSourceRanges": ranges}})
    snap = env.converge("keeper", "local")
    rules = snap.security_rules()
    assert f"{stem}-TCP-tag-Internet" not in rules
    assert rules[f"{stem}-TCP-allow"]["properties"]["sourceAddressPrefixes"] == [
        "198.51.100.7/32", "203.0.113.0/24"]
    env.core.patch_namespaced_service("local", NAMESPACE,
                                      {"spec": {"loadBalancerSourceRanges": ["192.0.2.0/24"]}})
    snap = env.converge("keeper", "local")
    props = snap.security_rules()[f"{stem}-TCP-allow"]["properties"]
    assert (props.get("sourceAddressPrefixes") or [props.get("sourceAddressPrefix")]) == [
        "192.0.2.0/24"]
    assert snap.parts_of(keeper) == keeper_parts

    # back to Cluster: a Tcp probe on the nodePort replaces the Http one
    env.core.patch_namespaced_service("local", NAMESPACE, {"spec": {
        "externalTrafficPolicy": "Cluster", "loadBalancerSourceRanges": None}})
    snap = env.converge("keeper", "local")
    node_port = _node_port(env.read("local"), 80)
    assert sorted(n for n in snap.children(False, "probes") if n.startswith(stem)) == [
        f"{stem}-TCP-{node_port}"]
    assert sorted(n for n in snap.security_rules() if n.startswith(stem)) == [
        f"{stem}-TCP-tag-Internet"]
    assert snap.parts_of(keeper) == keeper_parts
    env.delete("keeper")
    env.delete("local")
    env.gone()


def test_internal_balancer(env: Env) -> None:
    world = env.world
    env.create("outside")
    env.create("inside", ports=_ports(2), annotations={INTERNAL: "true"})
    snap = env.converge("outside", "inside")
    stem = _stem(env, "inside", snap)
    assert snap.lb(True) is not None and snap.lb(False) is not None  # one LB per scheme
    (frontend,) = snap.children(True, "frontendIPConfigurations").values()
    props = frontend["properties"]
    assert props["privateIPAddress"] == env.ip("inside")
    assert ipaddress.ip_address(env.ip("inside")) in NODE_SUBNET
    assert props["subnet"]["id"].lower() == world.subnet_id.lower()
    assert stem not in snap.pips  # no public IP for an internal balancer
    assert snap.security_rules()[f"{stem}-TCP-allow"]["properties"][
        "sourceAddressPrefix"] == "*"
    # the internal LB has its own pool of the same nodes
    assert snap.pool(True) == snap.pool(False) == world_nodes(world)
    env.delete("inside")
    snap = env.converge("outside")
    assert snap.lb(True) is None  # gone with its last frontend

    # internal at a chosen address: a static private frontend there
    env.create("pinned", annotations={INTERNAL: "true"}, loadBalancerIP="10.224.0.200")
    snap = env.converge("outside", "pinned")
    (frontend,) = snap.children(True, "frontendIPConfigurations").values()
    assert (frontend["properties"]["privateIPAllocationMethod"],
            frontend["properties"]["privateIPAddress"]) == ("Static", "10.224.0.200")
    assert env.ip("pinned") == "10.224.0.200"
    env.delete("pinned")
    env.delete("outside")
    env.gone()
    assert env.emu.objects() == {}


def test_load_balancer_ip_uses_the_users_public_ip(env: Env) -> None:
    emu, world = env.emu, env.world
    sdk = UserSdk(emu, world)
    address = sdk.create_public_ip("users-ip")
    env.user_pips["static"] = "users-ip"
    env.create("static", loadBalancerIP=address)
    snap = env.converge("static")
    stem = _stem(env, "static", snap)
    assert env.ip("static") == address
    assert list(snap.ours()) == []  # no public IP of ours
    theirs = sdk.public_ip("users-ip")
    assert theirs.ip_configuration.id.lower().endswith(
        f"/frontendipconfigurations/{stem}-{env.read('static').metadata.uid.replace('-', '')}")
    assert theirs.tags == {"owner": "the user"}  # never tagged as ours

    env.delete("static")
    env.gone(keep=("users-ip",))
    wait_for(lambda: not env.exists("static"), 30, "the Service gone")
    left = sdk.public_ip("users-ip")  # the user's public IP survives, unused and unchanged
    assert (left.ip_address, left.tags, left.ip_configuration) == (address,
                                                                   {"owner": "the user"}, None)
    assert [tail for kind, ids in emu.objects().items() for tail in ids] == [theirs.id]
    sdk.delete_public_ip("users-ip")
    assert emu.objects() == {}


def test_an_address_nobody_holds_is_refused(env: Env) -> None:
    emu = env.emu
    env.create("fine")
    before = env.converge("fine")
    svc = env.create("wishful", loadBalancerIP="20.9.9.9")
    warning = wait_for(lambda: [e for e in env.warnings("wishful")
                                if "spec.loadBalancerIP" in e.message], 30,
                       "a Warning event naming spec.loadBalancerIP")[0]
    assert "20.9.9.9" in warning.message
    # the controller did act on it (the Warning); nothing was built for it
    after = env.converge("fine")
    assert after.frontends_of(svc.metadata.uid) == []
    assert after.parts_of(_stem(env, "fine", after)) == before.parts_of(
        _stem(env, "fine", before))
    assert env.ip("wishful") == ""
    env.delete("wishful")
    env.delete("fine")
    env.gone()
    assert emu.objects() == {}


def test_bad_annotations_warn_and_harm_nobody(env: Env) -> None:
    env.create("good")
    first = env.converge("good")
    good = _stem(env, "good", first)
    ip = env.ip("good")
    bad = env.create("bad", annotations={IDLE_TIMEOUT: "2"})
    warning = wait_for(lambda: [e for e in env.warnings("bad") if IDLE_TIMEOUT in e.message],
                       30, "a Warning event naming the annotation")[0]
    assert "from 4 to 100" in warning.message and "'2'" in warning.message
    snap = env.converge("good")  # nothing of bad's, good's as it was
    assert snap.frontends_of(bad.metadata.uid) == []
    assert snap.parts_of(good) == first.parts_of(good)
    assert env.ip("bad") == ""

    # fixed: it works, beside the other
    env.core.patch_namespaced_service("bad", NAMESPACE, {"metadata": {"annotations": {
        IDLE_TIMEOUT: "10"}}})
    snap = env.converge("good", "bad")
    assert snap.children(False, "loadBalancingRules")[f"{_stem(env, 'bad', snap)}-TCP-80"][
        "properties"]["idleTimeoutInMinutes"] == 10
    assert snap.parts_of(good) == first.parts_of(good)
    assert env.ip("good") == ip
    env.delete("good")
    env.delete("bad")
    env.gone()


def test_a_bad_annotation_on_a_working_service_keeps_it_and_clears_when_fixed(
        env: Env) -> None:
    env.create("good")
    first = env.converge("good")
    good = _stem(env, "good", first)
    ip = env.ip("good")
    # a bad value on a working Service: a Warning, its balancer left as it was
    env.core.patch_namespaced_service("good", NAMESPACE, {"metadata": {"annotations": {
        PROBE_INTERVAL: "1"}}})
    wait_for(lambda: [e for e in env.warnings("good") if PROBE_INTERVAL in e.message], 30,
             "a Warning event naming the probe interval annotation")
    assert env.snapshot().parts_of(good) == first.parts_of(good)
    assert env.ip("good") == ip
    # fixed: reported ensured again (as it was)
    env.core.patch_namespaced_service("good", NAMESPACE, {"metadata": {"annotations": {
        PROBE_INTERVAL: None}}})
    snap = env.converge("good", timeout=10)
    assert snap.parts_of(good) == first.parts_of(good)
    env.delete("good")
    env.gone()


# -- Azure's own: the shared LB under load, races and a hand-over -----------------------------
def _wave(env: Env, names: list[str], act: str) -> None:
    """Create (or delete) the Services at once, from 16 threads."""
    def one(name: str) -> None:
        if act == "create":
            env.create(name)
        else:
            env.delete(name)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, names))


def test_fifty_services_at_once_share_few_lb_writes(emulator: AzureEmulator, world: World,
                                                    box: Sandbox,
                                                    core_api: client.CoreV1Api) -> None:
    """The controller as configured by default (8 workers, a 0.5 s batch window): a write of
    the LB carries at most 8 Services' changes (one per worker), so 7 writes is the floor."""
    emu = emulator
    env = Env(core_api, emulator, world, box)
    names = [f"wave-{k:02d}" for k in range(50)]
    with _controller(box, emulator, world, batch=0.5):
        emu.clear_calls()
        _wave(env, names, "create")
        snap = env.converge(*names, timeout=90)
        assert len(snap.children(False, "frontendIPConfigurations")) == 50
        assert len({env.ip(n) for n in names}) == 50
        counts = emu.counts()
        print(f"\n50 created: {dict(sorted(counts.items()))}")
        assert counts["publicIPAddresses.put"] == 50  # one address each, made once
        assert 7 <= counts["loadBalancers.put"] <= LB_WRITES_FOR_50, counts
        assert 7 <= counts["networkSecurityGroups.put"] <= NSG_WRITES_FOR_50, counts

        emu.clear_calls()
        _wave(env, names, "delete")
        env.gone(timeout=90)
        wait_for(lambda: not any(env.exists(n) for n in names), 60, "the Services gone")
        counts = emu.counts()
        print(f"50 deleted: {dict(sorted(counts.items()))}")
        lb_writes = counts.get("loadBalancers.put", 0) + counts["loadBalancers.delete"]
        assert counts["loadBalancers.delete"] == 1, counts
        assert 7 <= lb_writes <= LB_WRITES_FOR_50, counts
        assert counts["publicIPAddresses.delete"] == 50
        assert emu.objects() == {}


class SecondWriter:
    """Another writer of the cluster's LB (a user, a script) while a block runs: it bumps the
    LB's etag (tags `someone=else`) every few milliseconds until lbctl has met `conflicts`
    412s on its LB writes since the block began, then lets it be (a writer faster than any
    read-write cycle for ever starves every optimistic writer, lbctl's or upstream's)."""

    def __init__(self, emu: AzureAdmin, world: World, conflicts: int = 3) -> None:
        self.emu, self.conflicts = emu, conflicts
        self.lb_id = (f"/subscriptions/{world.subscription}/resourceGroups/"
                      f"{world.resource_group}/providers/Microsoft.Network/loadBalancers/"
                      f"{lb_name(world, False)}")
        self.bumps = 0
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="second-writer", daemon=True)
        self._mark = 0

    def _refusals(self) -> int:
        return sum(1 for c in self.emu.calls()[self._mark:]
                   if c["api"] == "loadBalancers.put" and c["status"] == 412)

    def _run(self) -> None:
        while not self._stop.is_set() and self.refused < self.conflicts:
            for _ in range(10):
                with contextlib.suppress(RuntimeError):  # no LB for a moment: nothing to bump
                    self.emu.bump_etag(id=self.lb_id, tags={"someone": "else"})
                    self.bumps += 1
                self._stop.wait(0.003)
            self.refused = self._refusals()

    def __enter__(self) -> SecondWriter:
        self._mark = len(self.emu.calls())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.refused = self._refusals()


def test_a_second_writer_bumping_the_etag_loses_nothing(env: Env) -> None:
    """Each wave must meet at least one real race (a 412 on an LB write: the other writer
    changed the LB between lbctl's read and its write); the writer keeps bumping until three
    or the wave ends. How many a wave meets depends on how many LB writes it takes (a
    handful, batched) and on the machine's load: one proves the re-read and re-apply."""
    emu, world = env.emu, env.world
    env.create("first")
    env.converge("first")
    names = [f"race-{k:02d}" for k in range(20)]
    with SecondWriter(emu, world) as other:
        _wave(env, names, "create")
        snap = env.converge("first", *names, timeout=60)
    print(f"\ncreate: {other.bumps} etag bumps, {other.refused} LB writes refused (412)")
    assert other.refused >= 1, "the second writer never beat lbctl to the LB: nothing tested"
    tags = (snap.lb(False) or {})["tags"]
    assert (tags["someone"], tags["lbctl-cluster"]) == ("else", world.cluster)  # theirs kept

    with SecondWriter(emu, world) as other:  # deleting them, bumped too
        _wave(env, names, "delete")
        snap = env.converge("first", timeout=60)
    print(f"delete: {other.bumps} etag bumps, {other.refused} LB writes refused (412)")
    assert other.refused >= 1, "the second writer never beat lbctl to the LB: nothing tested"
    assert (snap.lb(False) or {})["tags"]["someone"] == "else"
    env.delete("first")
    env.gone()


def test_two_controllers_across_a_leader_hand_over(emulator: AzureEmulator, world: World,
                                                   box: Sandbox,
                                                   core_api: client.CoreV1Api) -> None:
    """The old leader is still finishing its wave when the new one starts leading (both
    write the shared LB for a while, each with its own batches); then the old one stops, and
    the new one carries on. Etags guard every write: no frontend is lost or doubled."""
    env = Env(core_api, emulator, world, box)
    first = [f"early-{k:02d}" for k in range(15)]
    second = [f"late-{k:02d}" for k in range(15)]
    with contextlib.ExitStack() as old_leader, contextlib.ExitStack() as new_leader:
        old = old_leader.enter_context(_controller(box, emulator, world))
        _wave(env, first, "create")
        wait_for(lambda: env.snapshot().children(False, "frontendIPConfigurations"), 30,
                 "the old leader's first frontends")
        emulator.clear_calls()
        before = _provider_calls(old).get("loadBalancers.put", 0)
        new = new_leader.enter_context(_controller(box, emulator, world))
        _wave(env, second, "create")
        # both lead now: each has written the LB (the newcomer repeats what it finds undone)
        wait_for(lambda: _provider_calls(new).get("loadBalancers.put", 0), 30,
                 "the new leader's first LB write")
        old_leader.close()  # the old leader stops, its in-flight syncs finished
        assert _provider_calls(old).get("loadBalancers.put", 0) >= 1
        env.converge(*first, *second, timeout=90)
        refused = sum(1 for c in emulator.calls() if c["api"] == "loadBalancers.put"
                      and c["status"] == 412)
        print(f"\nLB writes by the old leader while both led "
              f"{_provider_calls(old).get('loadBalancers.put', 0) - before}, by the new "
              f"(to here) {_provider_calls(new).get('loadBalancers.put', 0)}; refused (412) "
              f"{refused}")
        # the new leader alone from here: half of each wave goes
        gone = first[::2] + second[::2]
        _wave(env, gone, "delete")
        kept = [n for n in first + second if n not in gone]
        env.converge(*kept, timeout=90)
        _wave(env, kept, "delete")
        env.gone(timeout=90)
        assert new is not None
    assert leaks(emulator) == []


def _provider_calls(embedded: Embedded) -> dict[str, int]:
    """The ARM requests one controller's provider sent, by `<kind>.<verb>`."""
    provider: Any = embedded.controller.inner_provider
    return dict(provider.arm.calls)
