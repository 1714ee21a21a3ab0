"""`lbctl demo --provider gcp` end to end: a subprocess that starts its own GCE emulator (no
Google credentials or project in its environment), seeds the world, runs the sandbox and the
controller with the `gcp` provider, and prints what it built as gcloud would list it. The output
is checked against itself: the Service's IP is the forwarding rule's and the reserved address's,
the backend service spans the cluster's instance group in both zones behind kube-proxy's shared
check, the groups hold the world's instances by zone, the firewall rules admit the clients on
the Service's port to that IP and Google's probers on 10256; the port change replaces only the
forwarding rule (same IP) and patches the clients' rule; the delete leaves zeros, by ownership
and in the emulator's inventory; and the exit status is 0. The verdict's failures (something
left, a moved IP) are checked on `GcpStory` itself."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from typing import Any

import pytest

from lbctl.demo.gcp_story import GcpStory, cost
from tests.providers.demo_run import in_state, run_demo, service_ip

HC_RANGES = "130.211.0.0/22,35.191.0.0/16,209.85.152.0/22,209.85.204.0/22"


@pytest.fixture(scope="module")
def demo() -> subprocess.CompletedProcess[str]:
    return run_demo("gcp", ("GOOGLE_", "CLOUDSDK_", "GCE_"), 120)


@pytest.mark.integration
def test_demo_gcp_exits_zero(demo: subprocess.CompletedProcess[str]) -> None:
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "an `lbctl emulator gcp` of its own" in demo.stdout
    ip, _ = service_ip(demo.stdout)
    assert f"demo passed: the Service got {ip}, kept it through the port change" in demo.stdout


@pytest.mark.integration
def test_demo_gcp_shows_what_gce_holds(demo: subprocess.CompletedProcess[str]) -> None:
    out = demo.stdout
    ip, _ = service_ip(out)
    world = re.search(r"^world demo: .* instances (.*), tagged demo-node$", out, re.M)
    assert world, out
    zones: dict[str, list[str]] = {}
    for name, zone in re.findall(r"(demo-node-\d) \((us-central1-[ab]), [\d.]+\)",
                                 world.group(1)):
        zones.setdefault(zone, []).append(name)
    assert sorted(zones) == ["us-central1-a", "us-central1-b"], out
    rule = re.search(rf"^  (lb-\S+-tcp)\s+us-central1\s+{re.escape(ip)}\s+TCP\s+80\s+EXTERNAL\s+"
                     r"(\S+)\s+\S*lbctl-cluster=demo$", out, re.M)
    assert rule, out
    balancer = rule.group(1).removesuffix("-tcp")
    assert rule.group(2) == rule.group(1)  # the backend service of the same name
    assert re.search(rf"^  {rule.group(1)}\s+us-central1-a/instanceGroups/lbctl-demo,"
                     r"us-central1-b/instanceGroups/lbctl-demo\s+TCP\s+EXTERNAL\s+"
                     r"lbctl-demo-node-hc\s+NONE$", out, re.M), out
    assert re.search(r"^  lbctl-demo-node-hc\s+us-central1\s+HTTP\s+10256\s+/healthz\s+8s\s+3$",
                     out, re.M), out
    for zone, members in zones.items():
        assert re.search(rf"^  lbctl-demo\s+{zone}\s+zone\s+default\s+No\s+{len(members)}$",
                         out, re.M), out
        listing = out.split(f"list-instances lbctl-demo --zone {zone}\n", 1)[1].split("\n\n")[0]
        assert listing.split()[1:] == sorted(members), listing
    assert re.search(rf"^  {balancer}-fw\s+default\s+INGRESS\s+tcp:80\s+0\.0\.0\.0/0\s+"
                     rf"{re.escape(ip)}/32\s+demo-node$", out, re.M), out
    assert re.search(rf"^  lbctl-demo-node-hc-fw\s+default\s+INGRESS\s+tcp:10256\s+"
                     rf"{re.escape(HC_RANGES)}\s+-\s+demo-node$", out, re.M), out
    assert re.search(rf"^  {balancer}\s+{re.escape(ip)}\s+EXTERNAL\s+PREMIUM\s+us-central1\s+"
                     r"IN_USE$", out, re.M), out
    create = re.search(r"requests for the create: .*\n  writes: (.*)$", out, re.M)
    assert create and "forwardingRules.insert" in create.group(1), out


@pytest.mark.integration
def test_demo_gcp_port_change_keeps_the_address(demo: subprocess.CompletedProcess[str]) -> None:
    out = demo.stdout
    ip, node_port = service_ip(out)
    assert re.search(r"requests for the port change: .*\n  writes: firewalls\.patch, "
                     r"forwardingRules\.delete, forwardingRules\.insert$", out, re.M), out
    after = out.split("service/frontend patched", 1)[1]
    assert re.search(rf"^  lb-\S+-tcp\s+us-central1\s+{re.escape(ip)}\s+TCP\s+8080\s+", after,
                     re.M), after
    assert re.search(rf"^  lb-\S+-fw\s+default\s+INGRESS\s+tcp:8080\s+0\.0\.0\.0/0\s+"
                     rf"{re.escape(ip)}/32\s+demo-node$", after, re.M), after
    assert re.search(rf"^frontend\s+LoadBalancer\s+\S+\s+{re.escape(ip)}\s+"
                     rf"8080:{node_port}/TCP$", after, re.M), after


@pytest.mark.integration
def test_demo_gcp_new_node_joins_its_zones_group(
        demo: subprocess.CompletedProcess[str]) -> None:
    out = demo.stdout
    joined = re.search(r"^\$ gcloud compute instances create (demo-node-4) --zone "
                       r"(us-central1-[ab]) --tags demo-node", out, re.M)
    assert joined, out
    name, zone = joined.groups()
    assert f"providerID gce://emulated-project/{zone}/{name})" in out
    assert re.search(r"requests for the new node .*\n  writes: instanceGroups\.add_instances$",
                     out, re.M), out
    listing = out.split(f"list-instances lbctl-demo --zone {zone}\n")[-1].split("\n\n")[0]
    assert name in listing.split()[1:], listing


@pytest.mark.integration
def test_demo_gcp_cleans_up(demo: subprocess.CompletedProcess[str]) -> None:
    out = demo.stdout
    assert 'service "frontend" deleted' in out
    assert re.search(r"^  0 forwarding rules, 0 backend services, 0 health checks, "
                     r"0 instance groups, 0 firewall rules, 0 addresses$", out, re.M), out
    assert "  nothing besides the seeded world" in out
    delete = re.search(r"requests for the delete: .*\n  writes: (.*)$", out, re.M)
    assert delete and "instanceGroups.delete" in delete.group(1), out


def _story(**state: Any) -> GcpStory:
    story = GcpStory(None, None, None, lambda: ("", "", {}))  # type: ignore[arg-type]
    story.ip = story.ip_after_change = "35.200.0.10"
    story.ports_after_change = ["8080"]
    story.joined = ["demo-node-2", "demo-node-4"]
    story.left = {"forwarding rule": 0, "instance group": 0}
    return in_state(story, **state)


@pytest.mark.unit
def test_verdict_fails_on_anything_left_or_a_step_gone_wrong() -> None:
    assert _story().verdict() is None
    assert _story(ip="").verdict() == "the Service never got an IP"
    assert "35.200.0.11" in (_story(ip_after_change="35.200.0.11").verdict() or "")
    assert "not [8080]" in (_story(ports_after_change=["80"]).verdict() or "")
    assert "new node" in (_story(joined=[]).verdict() or "")
    assert _story(left={"forwarding rule": 0, "instance group": 2, "address": 1}).verdict() == (
        "left in GCE after the delete: 2 instance groups, 1 address")
    assert _story(inventory={"firewalls": ["a", "b"]}).verdict() == (
        "left in GCE after the delete: 2 firewalls")


@pytest.mark.unit
def test_cost_tells_writes_from_reads_and_polls() -> None:
    summary, writes = cost(Counter({"forwardingRules.insert": 1, "firewalls.insert": 2,
                                    "firewalls.get": 3, "instanceGroups.list_instances": 1,
                                    "regionOperations.wait": 2}))
    assert summary == "9 requests: 3 writes, 4 reads, 2 operation polls"
    assert cost(Counter({"instanceGroups.add_instances": 1, "zoneOperations.wait": 1}))[0] == (
        "2 requests: 1 write, 0 reads, 1 operation poll")
    assert writes == ["firewalls.insert x2", "forwardingRules.insert"]
