"""`lbctl demo --provider azure` end to end: a subprocess that starts its own ARM emulator (no
Azure credentials or subscription in its environment), seeds the world, runs the sandbox and the
controller with the `azure` provider, and prints what it built as the az CLI would list it. The
output is checked against itself: the Service's IP is its public IP's, the shared LB
`lbctl-demo` holds its frontend on that public IP, a floating-IP rule on port 80 with a Tcp
probe of the nodePort, the pool holds the world's VMs, the NSG admits the Internet on port 80 to
that IP; 20 more Services at once got 20 distinct IPs in at most 10 LB writes (the batching);
the port change rewrites the rule and the NSG rule on the same IP; the new node costs one LB
write and joins the pool; the delete leaves zeros, by ownership and in the emulator's inventory;
and the exit status is 0. The verdict's failures (something left, unbatched writes, a moved IP)
are checked on `AzureStory` itself."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from typing import Any

import pytest

from lbctl.demo.azure_story import AzureStory, cost, lb_writes
from tests.providers.demo_run import in_state, run_demo, service_ip


@pytest.fixture(scope="module")
def demo() -> subprocess.CompletedProcess[str]:
    return run_demo("azure", ("AZURE_", "MSI_"), 180)


def _after(out: str, marker: str) -> str:
    assert marker in out, out
    return out.split(marker, 1)[1]


@pytest.mark.integration
def test_demo_azure_exits_zero(demo: subprocess.CompletedProcess[str]) -> None:
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "an `lbctl emulator azure` of its own" in demo.stdout
    ip, _ = service_ip(demo.stdout)
    assert f"demo passed: the Service got {ip} and kept it through the port change" in (
        demo.stdout)


@pytest.mark.integration
def test_demo_azure_shows_what_arm_holds(demo: subprocess.CompletedProcess[str]) -> None:
    out = demo.stdout
    ip, node_port = service_ip(out)
    world = re.search(r"^world demo: vnet demo-vnet, subnet demo-nodes, nsg demo-nsg, VMs (.*)$",
                      out, re.M)
    assert world, out
    vms = re.findall(r"(demo-node-\d) \(eastus-\d, ([\d.]+)\)", world.group(1))
    assert len(vms) == 3, world.group(1)
    first = out.split("$ kubectl apply -f web.yaml", 1)[0]
    assert re.search(r"^  lbctl-demo\s+eastus\s+Standard\s+1\s+1\s+1\s+1\s+Succeeded\s+"
                     r"lbctl-cluster=demo$", first, re.M), first
    frontend = re.search(r"^  ((lb-\S+)-[0-9a-f]{32})\s+(\S+)\s+-\s+-\s+Succeeded$", first, re.M)
    assert frontend, first
    name, stem, pip = frontend.groups()
    assert pip == stem  # our public IP, named after the balancer
    assert re.search(rf"^  {stem}-TCP-80\s+Tcp\s+80\s+80\s+{name}\s+{stem}-TCP-{node_port}\s+"
                     r"True\s+4\s+True\s+Default$", first, re.M), first
    assert re.search(rf"^  {stem}-TCP-{node_port}\s+Tcp\s+{node_port}\s+-\s+5\s+2$", first,
                     re.M), first
    pool = _after(first, "--pool-name lbctl-demo -o table\n").split("\n\n")[0]
    assert re.findall(r"^  (demo-node-\d)\s+([\d.]+)\s+demo-vnet$", pool, re.M) == vms, pool
    assert re.search(rf"^  {stem}\s+{re.escape(ip)}\s+Standard\s+Static\s+default/frontend\s+"
                     r"Succeeded$", first, re.M), first
    assert re.search(rf"^  {stem}-TCP-tag-Internet\s+\d+\s+Allow\s+Tcp\s+Inbound\s+Internet\s+"
                     rf"{re.escape(ip)}\s+80$", first, re.M), first
    create = re.search(r"requests for the create .*\n  writes: (.*)$", out, re.M)
    assert create and create.group(1) == (
        "loadBalancers.put, networkSecurityGroups.put, publicIPAddresses.put"), out


@pytest.mark.integration
def test_demo_azure_batches_a_wave_of_services(demo: subprocess.CompletedProcess[str]) -> None:
    out = demo.stdout
    wave = _after(out, "$ kubectl apply -f web.yaml")
    ips = {service_ip(wave, f"web-{k}")[0] for k in range(1, 21)}
    assert len(ips) == 20 and service_ip(out)[0] not in ips, wave
    writes = re.search(r"^20 Services in [\d.]+ s with (\d+) LB writes? ", wave, re.M)
    assert writes and 1 <= int(writes.group(1)) <= 10, wave
    cost_line = re.search(r"requests for the 20 Services: .*\n  writes: (.*)$", wave, re.M)
    assert cost_line and "publicIPAddresses.put x20" in cost_line.group(1), wave
    assert re.search(r"^  lbctl-demo\s+eastus\s+Standard\s+21\s+21\s+21\s+1\s+Succeeded", wave,
                     re.M), wave


@pytest.mark.integration
def test_demo_azure_port_change_keeps_the_address(
        demo: subprocess.CompletedProcess[str]) -> None:
    out = demo.stdout
    ip, node_port = service_ip(out)
    after = _after(out, "service/frontend patched")
    assert re.search(r"requests for the port change: .*\n  writes: loadBalancers\.put, "
                     r"networkSecurityGroups\.put$", after, re.M), after
    assert re.search(r"^  lb-\S+-TCP-8080\s+Tcp\s+8080\s+8080\s+", after, re.M), after
    assert not re.search(r"^  lb-\S+-TCP-80\s+Tcp\s+80\s+", after, re.M), after
    assert re.search(rf"^  lb-\S+-TCP-tag-Internet\s+\d+\s+Allow\s+Tcp\s+Inbound\s+Internet\s+"
                     rf"{re.escape(ip)}\s+8080$", after, re.M), after
    assert re.search(rf"^frontend\s+LoadBalancer\s+\S+\s+{re.escape(ip)}\s+"
                     rf"8080:{node_port}/TCP$", after, re.M), after


@pytest.mark.integration
def test_demo_azure_new_node_is_one_pool_write(demo: subprocess.CompletedProcess[str]) -> None:
    out = demo.stdout
    assert re.search(r"^\$ az vm create -g lbctl-rg -n demo-node-4 ", out, re.M), out
    assert ("providerID azure:///subscriptions/00000000-0000-0000-0000-00000000a2e0/"
            "resourceGroups/lbctl-rg/providers/Microsoft.Compute/virtualMachines/demo-node-4)"
            in out)
    assert re.search(r"requests for the new node .*\n  writes: loadBalancers\.put$", out,
                     re.M), out
    pool = out.split("--pool-name lbctl-demo -o table\n")[-1].split("\n\n")[0]
    assert re.search(r"^  demo-node-4\s+[\d.]+\s+demo-vnet$", pool, re.M), pool


@pytest.mark.integration
def test_demo_azure_cleans_up(demo: subprocess.CompletedProcess[str]) -> None:
    out = demo.stdout
    gone = _after(out, "$ kubectl delete services -l lbctl-demo=azure")
    assert {f"web-{k}" for k in range(1, 21)} | {"frontend"} == set(
        re.findall(r'^service "(\S+)" deleted$', gone, re.M)), gone
    assert re.search(r"^  0 load balancers, 0 public IPs, 0 NSG rules$", gone, re.M), gone
    assert "  nothing besides the seeded world" in gone
    delete = re.search(r"requests for the delete: .*\n  writes: (.*)$", gone, re.M)
    assert delete and "loadBalancers.delete" in delete.group(1), gone
    assert "publicIPAddresses.delete x21" in delete.group(1), gone


def _story(**state: Any) -> AzureStory:
    story = AzureStory(None, None, None, lambda: ("", "", {}))  # type: ignore[arg-type]
    story.ip = story.ip_after_change = "20.62.0.4"
    story.wave_ips = [f"20.62.0.{k}" for k in range(5, 25)]
    story.wave_lb_writes = 2
    story.ports_after_change = [8080]
    story.node_ip, story.node_lb_writes = "10.224.0.7", 1
    story.left = {"load balancer": 0, "public IP": 0, "NSG rule": 0}
    return in_state(story, **state)


@pytest.mark.unit
def test_verdict_fails_on_anything_left_or_a_step_gone_wrong() -> None:
    assert _story().verdict() is None
    assert _story(ip="").verdict() == "the Service never got an IP"
    assert "19 distinct IPs" in (_story(wave_ips=["x", *[str(k) for k in range(18)], "x"])
                                 .verdict() or "")
    assert "not batched" in (_story(wave_lb_writes=20).verdict() or "")
    assert "not batched" in (_story(wave_lb_writes=0).verdict() or "")
    assert "not [8080]" in (_story(ports_after_change=[80, 8080]).verdict() or "")
    assert "20.62.0.9" in (_story(ip_after_change="20.62.0.9").verdict() or "")
    assert "backend pool" in (_story(node_ip="").verdict() or "")
    assert "3 LB writes" in (_story(node_lb_writes=3).verdict() or "")
    assert _story(left={"load balancer": 1, "public IP": 2, "NSG rule": 0}).verdict() == (
        "left in ARM after the delete: 1 load balancer, 2 public IPs")
    assert _story(inventory={"securityRules": ["a", "b"]}).verdict() == (
        "left in ARM after the delete: 2 securityRules")


@pytest.mark.unit
def test_cost_tells_writes_from_reads_and_polls() -> None:
    calls = Counter({"loadBalancers.put": 1, "loadBalancers.get": 2,
                     "publicIPAddresses.put": 3, "operations.get": 4,
                     "loadBalancers.delete": 1})
    summary, writes = cost(calls)
    assert summary == "11 requests: 5 writes, 2 reads, 4 operation polls"
    assert writes == ["loadBalancers.delete", "loadBalancers.put", "publicIPAddresses.put x3"]
    assert lb_writes(calls) == 2
    assert cost(Counter({"loadBalancers.put": 1, "operations.get": 1}))[0] == (
        "2 requests: 1 write, 0 reads, 1 operation poll")
