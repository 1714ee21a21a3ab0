"""The `gcp` provider end to end: an in-process Controller against a sandbox whose nodes are the
GCE emulator's seeded instances, Services created with the official client, every assertion read
back from the emulator (its admin snapshot: every object made through Compute, group members;
the SDK for what a user does by hand), not only what lbctl would find.

Covered: create (one port; several ports; more than five -> a portRange; TCP+UDP -> two backend
services and two forwarding rules on one address), the status IP is the forwarding rules' IP,
port changes (the forwarding rule replaced on the same address), the order of the writes,
nodes excluded / re-included / deleted / added (the shared per-zone instance groups follow),
Cluster <-> Local (the Service's own HTTP check on healthCheckNodePort; kube-proxy's shared
check), loadBalancerSourceRanges -> the clients' firewall, internal balancers, a user's reserved
address by spec.loadBalancerIP (kept after the Service), an unreserved external IP refused, bad
annotations (a Warning naming the key, other Services unharmed), type -> ClusterIP and delete
(nothing of the cluster's left once the last Service goes: the shared kube-proxy check, its
firewall and the instance groups included).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from lbctl.controller.config import parse_config
from lbctl.controller.embedded import running_controller
from lbctl.emulators.gcp.server import GceAdmin, GceEmulator
from lbctl.emulators.gcp.world import World, provider_id
from lbctl.sandbox.app import Sandbox
from tests.conftest import client_for, wait_for
from tests.providers.gcp.e2e import (
    EXCLUDE,
    FINALIZER,
    LB_TYPE,
    NAMESPACE,
    Env,
    Snapshot,
    UserSdk,
    cluster_left,
    config_text,
    owner,
    world_instances,
)

pytestmark = pytest.mark.integration

NETWORK_TIER = "cloud.google.com/network-tier"


@pytest.fixture
def env(emulator: GceEmulator, world: World, box: Sandbox) -> Iterator[Env]:
    config = parse_config(config_text(world, emulator.endpoint))
    assert box.options.kubeconfig is not None
    api = client_for(box)
    try:
        with running_controller(str(box.options.kubeconfig), config, qps=500,
                                burst=1000) as embedded:
            yield Env(client.CoreV1Api(api), emulator, world, box, embedded.controller)
    finally:
        api.close()


def _writes(emu: GceAdmin) -> list[str]:
    """The successful writes in the call log, in order (`forwardingRules.insert`)."""
    return [c["api"].removeprefix("compute.") for c in emu.calls()
            if c["family"] == "write" and c["status"] == 200]


def _rule(snap: Snapshot, world: World, name: str) -> dict[str, Any]:
    return snap.get(f"regions/{world.region}/forwardingRules/{name}")


def _balancer(snap: Snapshot, uid: str) -> str:
    (b,) = {owner(o)["lbctl.io/balancer"] for o in snap.of_service(uid).values()}
    return b


def _free_node_port(core: client.CoreV1Api, start: int = 32100) -> int:
    used = {p.node_port for s in core.list_service_for_all_namespaces().items
            for p in (s.spec.ports or []) if p.node_port}
    return next(p for p in range(start, 32768) if p not in used)


def _ports(count: int, start: int = 8000) -> list[dict[str, Any]]:
    return [{"name": f"p{k}", "port": start + k, "targetPort": 8080} for k in range(count)]


# -- the tests -------------------------------------------------------------------------------
def test_create_ports_and_delete(env: Env) -> None:
    emu, world = env.emu, env.world
    svc = env.create("web")
    uid = svc.metadata.uid
    snap = env.converge("web")
    b = _balancer(snap, uid)
    assert b.startswith("lb-defaul-web-")
    mine = snap.of_service(uid)
    assert sorted(mine) == sorted([
        f"global/firewalls/{b}-fw", f"regions/{world.region}/addresses/{b}",
        f"regions/{world.region}/backendServices/{b}-tcp",
        f"regions/{world.region}/forwardingRules/{b}-tcp"])
    record = owner(mine[f"regions/{world.region}/addresses/{b}"])
    assert record == {"kubernetes.io/service-name": "default/web", "lbctl.io/balancer": b,
                      "lbctl.io/cluster": world.cluster, "lbctl.io/role": "service",
                      "lbctl.io/service-uid": uid}
    rule = _rule(snap, world, f"{b}-tcp")
    assert rule["labels"] == {"lbctl-cluster": world.cluster, "lbctl-balancer": b}
    assert env.ip("web") == rule["IPAddress"]
    assert FINALIZER in env.read("web").metadata.finalizers
    # the cluster's objects: nothing but the Service's, its zones' groups, kube-proxy's check
    stem = f"lbctl-{world.cluster}"
    assert sorted(snap.of_cluster(world.cluster)) == sorted([
        *mine, f"global/firewalls/{stem}-node-hc-fw",
        f"regions/{world.region}/healthChecks/{stem}-node-hc",
        *[f"zones/{z}/instanceGroups/{stem}" for z in world.zones]])
    # GCE's order: check and groups, backend service, address, forwarding rule, clients' rule
    writes = _writes(emu)
    assert writes.index("regionHealthChecks.insert") < writes.index(
        "regionBackendServices.insert")
    assert max(i for i, w in enumerate(writes) if w.startswith("instanceGroups.")) < \
        writes.index("regionBackendServices.insert")
    assert writes.index("regionBackendServices.insert") < writes.index("addresses.insert") < \
        writes.index("forwardingRules.insert")
    assert writes[-1] == "firewalls.insert"
    assert writes.count("forwardingRules.insert") == 1
    assert writes.count("addresses.insert") == 1
    # the SDK sees the same members
    sdk = UserSdk(emu.endpoint, world)
    assert sdk.group_instances(world.zones[0], stem) == {
        n.name for n in world.nodes if n.zone == world.zones[0]}
    first_ip = rule["IPAddress"]

    # a new nodePort and two more ports: the rule replaced on the same address
    emu.clear_calls()
    svc = env.read("web")
    svc.spec.ports = [client.V1ServicePort(name="http", port=80, target_port=8080,
                                           node_port=_free_node_port(env.core)),
                      client.V1ServicePort(name="https", port=443, target_port=8443),
                      client.V1ServicePort(name="alt", port=8080, target_port=8080)]
    env.core.replace_namespaced_service("web", NAMESPACE, svc)
    snap = env.converge("web")
    assert _rule(snap, world, f"{b}-tcp")["ports"] == ["80", "443", "8080"]
    assert env.ip("web") == first_ip
    writes = _writes(emu)
    assert writes.index("forwardingRules.delete") < writes.index("forwardingRules.insert")
    assert "addresses.insert" not in writes and "addresses.delete" not in writes
    assert "regionBackendServices.insert" not in writes

    # seven ports: more than GCE lists, a port range
    svc = env.read("web")
    svc.spec.ports = [client.V1ServicePort(name=f"p{k}", port=8000 + 3 * k, target_port=8080)
                      for k in range(7)]
    env.core.replace_namespaced_service("web", NAMESPACE, svc)
    snap = env.converge("web")
    rule = _rule(snap, world, f"{b}-tcp")
    assert rule["portRange"] == "8000-8018" and not rule.get("ports")
    assert env.ip("web") == first_ip

    # the last Service goes: nothing of the cluster's is left, the shared objects included
    emu.clear_calls()
    env.core.delete_namespaced_service("web", NAMESPACE)
    env.gone()
    wait_for(lambda: not env.exists("web"), 30, "the Service gone")
    assert emu.objects() == {}
    writes = _writes(emu)
    assert writes.index("forwardingRules.delete") < writes.index("addresses.delete") < \
        writes.index("regionBackendServices.delete") < writes.index("regionHealthChecks.delete")
    assert writes.index("regionBackendServices.delete") < min(
        i for i, w in enumerate(writes) if w.startswith("instanceGroups."))


def test_tcp_and_udp_then_cluster_ip(env: Env) -> None:
    emu, world = env.emu, env.world
    svc = env.create("mixed", ports=[{"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                                     {"name": "dns", "port": 53, "protocol": "UDP"},
                                     {"name": "ntp", "port": 123, "protocol": "UDP"}],
                     sessionAffinity="ClientIP")
    uid = svc.metadata.uid
    snap = env.converge("mixed")
    b = _balancer(snap, uid)
    tcp, udp = _rule(snap, world, f"{b}-tcp"), _rule(snap, world, f"{b}-udp")
    assert tcp["IPAddress"] == udp["IPAddress"] == env.ip("mixed")
    assert (tcp["ports"], udp["ports"]) == (["53"], ["53", "123"])
    addresses = [p for p in snap.of_service(uid) if "/addresses/" in p]
    assert addresses == [f"regions/{world.region}/addresses/{b}"]  # one address for both

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
    """Two Services on the cluster's shared groups; world: node-1 and node-3 in zone a,
    node-2 alone in zone b."""
    emu, world = env.emu, env.world
    stem = f"lbctl-{world.cluster}"
    env.create("nodes")
    env.create("other", ports=[{"name": "dns", "port": 53, "protocol": "UDP"}])
    env.converge("nodes")
    env.converge("other")
    node1, node2, node3 = world.nodes
    assert node1.zone == node3.zone != node2.zone

    def both(members: dict[str, str]) -> None:
        env.converge("nodes", members)
        env.converge("other", members)

    env.core.patch_node(node1.name, {"metadata": {"labels": {EXCLUDE: "true"}}})
    both(world_instances(world, without=(node1.name,)))
    env.core.patch_node(node1.name, {"metadata": {"labels": {EXCLUDE: None}}})
    both(world_instances(world))

    env.core.delete_node(node3.name)  # the node goes; its instance still runs
    without = world_instances(world, without=(node3.name,))
    both(without)

    zone = node1.zone
    emu.clear_calls()
    emu.add_instances([{"name": f"{world.cluster}-node-9", "zone": zone,
                        "tags": [world.node_tag]}])
    added = next(n for n in emu.read_world(world.cluster).nodes
                 if n.name == f"{world.cluster}-node-9")
    env.core.create_node({
        "metadata": {"name": added.name, "labels": {
            "topology.kubernetes.io/zone": added.zone,
            "topology.kubernetes.io/region": world.region}},
        "spec": {"providerID": provider_id(world.project, added)},
        "status": {"addresses": [{"type": "InternalIP", "address": added.ip},
                                 {"type": "Hostname", "address": added.name}]}})
    now = {**without, added.name: added.zone}
    both(now)
    # one group per zone shared by both Services: one write adds the node, not one each
    writes = [(c["api"], c["path"]) for c in emu.calls()
              if c["family"] == "write" and c["status"] == 200]
    assert writes == [("compute.instanceGroups.addInstances",
                       f"/compute/v1/projects/{world.project}/zones/{zone}/instanceGroups/"
                       f"{stem}/addInstances")]

    env.core.delete_namespaced_service("nodes", NAMESPACE)
    snap = env.converge("other", now)  # the other Service keeps the shared groups
    assert f"zones/{zone}/instanceGroups/{stem}" in snap.objects
    env.core.delete_namespaced_service("other", NAMESPACE)
    env.gone()


def test_a_zone_whose_last_node_goes_keeps_no_member(env: Env) -> None:
    """node-2 is zone b's only node: once it is excluded (then deleted), zone b's group holds
    nobody and the backend services leave the zone."""
    world = env.world
    node2 = world.nodes[1]
    assert [n.zone for n in world.nodes].count(node2.zone) == 1
    env.create("zonal")
    env.converge("zonal")
    env.core.patch_node(node2.name, {"metadata": {"labels": {EXCLUDE: "true"}}})
    env.converge("zonal", world_instances(world, without=(node2.name,)))
    env.core.delete_node(node2.name)
    env.converge("zonal", world_instances(world, without=(node2.name,)))
    env.core.delete_namespaced_service("zonal", NAMESPACE)
    env.gone()


def test_cluster_local_and_source_ranges(env: Env) -> None:
    world = env.world
    stem = f"lbctl-{world.cluster}"
    env.create("keeper")  # Cluster policy throughout: kube-proxy's check stays for it
    svc = env.create("local", externalTrafficPolicy="Local")
    uid = svc.metadata.uid
    hc_port = svc.spec.health_check_node_port
    assert hc_port
    snap = env.converge("local")
    env.converge("keeper")
    b = _balancer(snap, uid)
    check = snap.get(f"regions/{world.region}/healthChecks/{b}-hc")
    assert (check["httpHealthCheck"]["port"], check["httpHealthCheck"]["requestPath"]) == (
        hc_port, "/healthz")
    assert snap.get(f"global/firewalls/{b}-hc-fw")["allowed"] == [
        {"IPProtocol": "tcp", "ports": [str(hc_port)]}]

    ranges = ["203.0.113.0/24", "198.51.100.7/32"]
    env.core.patch_namespaced_service("local", NAMESPACE,
                                      {"spec": {"loadBalancerSourceRanges": ranges}})
    snap = env.converge("local")
    assert sorted(snap.get(f"global/firewalls/{b}-fw")["sourceRanges"]) == sorted(ranges)
    env.core.patch_namespaced_service("local", NAMESPACE,
                                      {"spec": {"loadBalancerSourceRanges": ["192.0.2.0/24"]}})
    snap = env.converge("local")
    assert snap.get(f"global/firewalls/{b}-fw")["sourceRanges"] == ["192.0.2.0/24"]

    # back to Cluster: the shared kube-proxy check; the Service's own check and its rule go
    env.core.patch_namespaced_service("local", NAMESPACE, {"spec": {
        "externalTrafficPolicy": "Cluster", "loadBalancerSourceRanges": None}})
    snap = env.converge("local")
    assert f"regions/{world.region}/healthChecks/{b}-hc" not in snap.objects
    assert f"global/firewalls/{b}-hc-fw" not in snap.objects
    service = snap.get(f"regions/{world.region}/backendServices/{b}-tcp")
    assert service["healthChecks"][0].endswith(
        f"regions/{world.region}/healthChecks/{stem}-node-hc")

    env.core.delete_namespaced_service("local", NAMESPACE)
    env.core.delete_namespaced_service("keeper", NAMESPACE)
    env.gone()


def test_kube_proxy_check_goes_with_its_last_user(env: Env) -> None:
    """The only Cluster-policy Service turns Local: nobody uses kube-proxy's shared check and
    its firewall any more, and they are deleted (the Service's own check stays)."""
    stem = f"lbctl-{env.world.cluster}"
    env.create("solo")
    snap = env.converge("solo")
    assert f"regions/{env.world.region}/healthChecks/{stem}-node-hc" in snap.objects
    env.core.patch_namespaced_service("solo", NAMESPACE,
                                      {"spec": {"externalTrafficPolicy": "Local"}})
    env.converge("solo")
    wait_for(lambda: not any(p.endswith(("-node-hc", "-node-hc-fw"))
                             for p in Snapshot.read(env.emu).objects), 30,
             "kube-proxy's check and its firewall deleted with their last user")
    env.converge("solo")
    env.core.delete_namespaced_service("solo", NAMESPACE)
    env.gone()


def test_internal_balancer(env: Env) -> None:
    world = env.world
    svc = env.create("inside", ports=_ports(7), annotations={LB_TYPE: "Internal"})
    uid = svc.metadata.uid
    snap = env.converge("inside")
    b = _balancer(snap, uid)
    rule = _rule(snap, world, f"{b}-tcp")
    assert rule["loadBalancingScheme"] == "INTERNAL" and rule["allPorts"] is True
    assert rule["subnetwork"].endswith(f"regions/{world.region}/subnetworks/{world.subnetwork}")
    assert rule["IPAddress"].startswith("10.128.")
    address = snap.get(f"regions/{world.region}/addresses/{b}")
    assert address["addressType"] == "INTERNAL" and address["address"] == env.ip("inside")
    env.core.delete_namespaced_service("inside", NAMESPACE)
    env.gone()

    # internal at a chosen IP: lbctl reserves an INTERNAL address of its own there
    svc = env.create("pinned", annotations={LB_TYPE: "Internal"},
                     loadBalancerIP="10.128.0.77")
    snap = env.converge("pinned")
    b = _balancer(snap, svc.metadata.uid)
    address = snap.get(f"regions/{world.region}/addresses/{b}")
    assert (address["addressType"], address["address"]) == ("INTERNAL", "10.128.0.77")
    assert env.ip("pinned") == "10.128.0.77"
    env.core.delete_namespaced_service("pinned", NAMESPACE)
    env.gone()
    assert env.emu.objects() == {}  # its own address went with it


def test_load_balancer_ip_uses_the_users_reserved_address(env: Env) -> None:
    emu, world = env.emu, env.world
    sdk = UserSdk(emu.endpoint, world)
    ip = sdk.reserve_address("users-ip")
    user_path = f"regions/{world.region}/addresses/users-ip"
    svc = env.create("static", loadBalancerIP=ip)
    snap = env.converge("static", user_address=user_path)
    b = _balancer(snap, svc.metadata.uid)
    assert _rule(snap, world, f"{b}-tcp")["IPAddress"] == ip == env.ip("static")
    assert f"regions/{world.region}/addresses/{b}" not in snap.objects  # no address of ours
    assert snap.get(user_path)["status"] == "IN_USE"

    env.core.delete_namespaced_service("static", NAMESPACE)
    env.gone()
    left = Snapshot.read(emu)
    assert sorted(left.objects) == [user_path]  # the user's address survives, unused
    assert left.get(user_path)["status"] == "RESERVED"
    assert left.get(user_path)["description"] == "the user's"
    sdk.delete_address("users-ip")


def test_unreserved_external_ip_is_refused(env: Env) -> None:
    emu, world = env.emu, env.world
    env.create("fine")
    env.converge("fine")
    before = Snapshot.read(emu)
    svc = env.create("wishful", loadBalancerIP="35.200.0.99")
    warning = wait_for(lambda: [e for e in env.warnings("wishful")
                                if "spec.loadBalancerIP" in e.message], 30,
                       "a Warning event naming spec.loadBalancerIP")[0]
    assert "35.200.0.99" in warning.message
    # the controller did act on it (the Warning); nothing was built for it
    after = Snapshot.read(emu)
    assert not after.of_service(svc.metadata.uid)
    assert sorted(after.objects) == sorted(before.objects)
    assert env.ip("wishful") == ""
    env.converge("fine")
    env.core.delete_namespaced_service("wishful", NAMESPACE)
    env.core.delete_namespaced_service("fine", NAMESPACE)
    env.gone()
    assert world.cluster and emu.objects() == {}


def test_bad_annotations_warn_and_harm_nobody(env: Env) -> None:
    emu = env.emu
    good = env.create("good")
    first = env.converge("good")
    ip = env.ip("good")
    bad = env.create("bad", annotations={LB_TYPE: "Sideways"})
    warning = wait_for(lambda: [e for e in env.warnings("bad") if LB_TYPE in e.message], 30,
                       "a Warning event naming the annotation")[0]
    assert "Sideways" in warning.message
    assert not Snapshot.read(emu).of_service(bad.metadata.uid)
    assert env.ip("bad") == ""

    # a bad value on a working Service: a Warning, its balancer left as it was
    env.core.patch_namespaced_service("good", NAMESPACE, {"metadata": {"annotations": {
        NETWORK_TIER: "Gold"}}})
    wait_for(lambda: [e for e in env.warnings("good") if NETWORK_TIER in e.message], 30,
             "a Warning event naming the network tier annotation")
    now = Snapshot.read(emu)
    assert now.of_service(good.metadata.uid) == first.of_service(good.metadata.uid)
    assert env.ip("good") == ip

    for name in ("good", "bad"):
        env.core.delete_namespaced_service(name, NAMESPACE)
    env.gone()
    assert cluster_left(emu, env.world.cluster) == []


def test_a_fixed_annotation_clears_the_failure(env: Env) -> None:
    """A bad annotation added to a working Service, then removed: the Service is reported
    ensured again (same balancer), and one created bad and then fixed gets its balancer."""
    env.create("good")
    env.converge("good")
    ip = env.ip("good")
    env.create("bad", annotations={LB_TYPE: "Sideways"})
    env.core.patch_namespaced_service("good", NAMESPACE, {"metadata": {"annotations": {
        NETWORK_TIER: "Gold"}}})
    for name, key in (("good", NETWORK_TIER), ("bad", LB_TYPE)):
        def named(n: str = name, k: str = key) -> list[client.CoreV1Event]:
            return [e for e in env.warnings(n) if k in e.message]

        wait_for(named, 30, f"a Warning event on {name} naming {key}")
    env.core.patch_namespaced_service("bad", NAMESPACE, {"metadata": {"annotations": {
        LB_TYPE: "External"}}})
    env.core.patch_namespaced_service("good", NAMESPACE, {"metadata": {"annotations": {
        NETWORK_TIER: None}}})
    env.converge("bad")
    env.converge("good")
    assert env.ip("good") == ip
    for name in ("good", "bad"):
        env.core.delete_namespaced_service(name, NAMESPACE)
    env.gone()


def test_shared_objects_cost_nothing_twice(env: Env) -> None:
    """A second Service reuses the cluster's groups and kube-proxy check without a write to
    them; a change of source ranges costs exactly one write (the clients' firewall)."""
    emu, world = env.emu, env.world
    env.create("a")
    env.converge("a")
    emu.clear_calls()
    svc = env.create("b")
    snap = env.converge("b")
    b = _balancer(snap, svc.metadata.uid)
    writes = _writes(emu)
    assert sorted(writes) == sorted(["regionBackendServices.insert", "addresses.insert",
                                     "forwardingRules.insert", "firewalls.insert"])
    assert not [c for c in emu.calls() if c["family"] == "write"
                and c["path"].endswith(("-node-hc", "-node-hc-fw"))]

    emu.clear_calls()
    env.core.patch_namespaced_service("b", NAMESPACE, {"spec": {
        "loadBalancerSourceRanges": ["192.0.2.0/24"]}})
    snap = env.converge("b")
    assert snap.get(f"global/firewalls/{b}-fw")["sourceRanges"] == ["192.0.2.0/24"]
    assert [(c["api"], c["path"].rsplit("/", 1)[1]) for c in emu.calls()
            if c["family"] == "write"] == [("compute.firewalls.patch", f"{b}-fw")]
    for name in ("a", "b"):
        env.core.delete_namespaced_service(name, NAMESPACE)
    env.gone()
    assert world.cluster and emu.objects() == {}
