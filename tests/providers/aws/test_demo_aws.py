"""`lbctl demo --provider aws` end to end: a subprocess that starts its own moto server (no
AWS_ENDPOINT_URL, no AWS credentials in its environment), seeds the world, runs the sandbox and
the controller with the `aws` provider, and prints what it built. The output is checked against
itself: the hostname in `kubectl get services`, the NLB by name, the target group named after
the Service's nodePort, the world's instances registered as targets, the NLB's two security
groups with the `lbctl:` rules (source ranges on the frontend group, one node rule admitting
the backend group on the nodePort), and a cleanup line of zeros (security groups included); and the
exit status is 0."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.providers.demo_run import run_demo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo() -> subprocess.CompletedProcess[str]:
    return run_demo("aws", ("AWS_",), 120, AWS_CONFIG_FILE=os.devnull,
                    AWS_SHARED_CREDENTIALS_FILE=os.devnull)


def test_demo_aws_exits_zero(demo: subprocess.CompletedProcess[str]) -> None:
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "a moto server of its own" in demo.stdout
    assert "demo passed: the Service got " in demo.stdout


def test_demo_aws_shows_hostname_nlb_target_groups_and_rules(
        demo: subprocess.CompletedProcess[str]) -> None:
    out = demo.stdout
    row = re.search(r"^frontend\s+LoadBalancer\s+\S+\s+(\S+\.elb\.amazonaws\.com)\s+"
                    r"80:(\d+)/TCP$", out, re.M)
    assert row, out
    hostname, node_port = row.group(1), row.group(2)
    nlb = re.search(r"^\$ aws elbv2 describe-load-balancers --names (lb-\S+)$", out, re.M)
    assert nlb, out
    assert hostname.startswith(f"{nlb.group(1)}-")
    assert re.search(rf"^  DNSName\s+{re.escape(hostname)}$", out, re.M)
    assert re.search(r"^  Type\s+network$", out, re.M)
    assert re.search(r"^  Scheme\s+internet-facing$", out, re.M)
    assert re.search(r"^  lbctl\.io/cluster\s+demo$", out, re.M)
    assert re.search(r"^  lbctl\.io/service-name\s+frontend$", out, re.M)
    groups = re.findall(rf"^  (lbctl-[a-z0-9]{{10}}-tcp-{node_port})\s+TCP\s+{node_port}\s+"
                        r"instance\s+TCP traffic-port", out, re.M)
    assert len(groups) == 1, out
    assert re.search(rf"^  TCP\s+80\s+forward {groups[0]}$", out, re.M)
    # the world's instances, registered on the nodePort, each named by its node
    world = re.search(r"instances ((?:i-[0-9a-f]+(?:, )?)+)$", out, re.M)
    assert world, out
    instances = world.group(1).split(", ")
    assert len(instances) == 3
    for instance in instances:
        assert re.search(rf"^  {instance}\s+{node_port}\s+healthy\s+"
                         r"ip-10-0-\d+-\d+\.ec2\.internal$", out, re.M), out
    # the NLB carries two groups: its own frontend group holds the source ranges (everyone)
    # on the listener port; the node group admits the other one (the cluster's backend group)
    # on the nodePort, traffic and health checks alike: one node rule, no per-CIDR rules
    attached = re.search(r"^  SecurityGroups\s+(sg-\S+) (sg-\S+)$", out, re.M)
    assert attached, out
    frontend = re.search(rf"^  (sg-\S+)\s+tcp\s+80\s+0\.0\.0\.0/0\s+"
                         rf"lbctl:{nlb.group(1)}:frontend$", out, re.M)
    assert frontend and frontend.group(1) in attached.groups(), out
    [backend] = set(attached.groups()) - {frontend.group(1)}
    node_rules = re.findall(rf"^  (sg-\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+lbctl:{nlb.group(1)}:"
                            r"(traffic|health)$", out, re.M)
    assert [r[1:] for r in node_rules] == [("tcp", node_port, backend, "traffic")], out
    assert "Pending" in out  # no pods run on instances the sandbox does not simulate


def test_demo_aws_cleans_up(demo: subprocess.CompletedProcess[str]) -> None:
    out = demo.stdout
    assert 'service "frontend" deleted' in out
    assert re.search(r"^  0 load balancers, 0 target groups, 0 listeners, 0 security group rules, "
                     r"0 security groups, 0 Elastic IPs$", out, re.M), out
