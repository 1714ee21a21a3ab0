"""`lbctl run` as processes: ingress written, two replicas with one leader, SIGTERM releases
the Lease so the standby takes over at once; `lbctl config validate` and `lbctl plan`."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client

from lbctl.sandbox.app import Sandbox
from tests.conftest import svc, wait_for

pytestmark = pytest.mark.integration


def _start(box: Sandbox, config: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lbctl", "run", "--kubeconfig", str(box.options.kubeconfig),
         "--config", str(config), "--metrics-bind", f"127.0.0.1:{port}",
         "--leader-elect=true"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""
    except OSError:
        return 0, ""


def _holder(core: client.CoreV1Api, box: Sandbox) -> str:
    from tests.conftest import client_for

    api = client_for(box)
    try:
        lease = client.CoordinationV1Api(api).read_namespaced_lease("lbctl-controller",
                                                                    "kube-system")
        return lease.spec.holder_identity or ""
    except client.ApiException:
        return ""
    finally:
        api.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_two_replicas_one_leader_and_takeover(ctl_sandbox: Sandbox, core_api: client.CoreV1Api,
                                              tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("provider: fake\n")
    ports = [_free_port(), _free_port()]
    procs = [_start(ctl_sandbox, config, p) for p in ports]
    try:
        # Both ready: a standby is ready too, just not leading.
        wait_for(lambda: all(_get(p, "/readyz")[0] == 200 for p in ports), 30, "readyz")
        leader = wait_for(lambda: _holder(core_api, ctl_sandbox), 30, "a leader")
        core_api.create_namespaced_service("default", svc("web", type="LoadBalancer"))

        def ingress() -> bool:
            got = core_api.read_namespaced_service("web", "default")
            return bool(got.status.load_balancer and got.status.load_balancer.ingress)

        wait_for(ingress, 30, "ingress")
        leading = [p for p, port in zip(procs, ports, strict=True)
                   if "lbctl_leader 1.0" in _get(port, "/metrics")[1]]
        assert len(leading) == 1
        leading[0].send_signal(signal.SIGTERM)
        assert leading[0].wait(30) == 0
        started = time.monotonic()
        wait_for(lambda: _holder(core_api, ctl_sandbox) not in ("", leader), 15, "takeover")
        assert time.monotonic() - started < 10  # released, not waited out (15 s lease)
        # The new leader keeps serving: a second Service gets an address too.
        core_api.create_namespaced_service("default", svc("api", type="LoadBalancer"))
        wait_for(lambda: core_api.read_namespaced_service("api", "default").status
                 .load_balancer.ingress, 30, "ingress from the new leader")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)


def test_config_validate_reports_core_and_provider_problems_in_one_round(
        tmp_path: Path) -> None:
    """Core keys with problems used to end the check there: fixing them revealed the
    provider's. Now one run names them all, and a credential anywhere."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusterName: Bad_Name\nprovider: baremetal\n"
                   "baremetal: {pools: [{name: p, addresses: ['0.0.0.0/0']}], bogus: 1}\n"
                   "gcp: {apiToken: t}\n")
    out = subprocess.run([sys.executable, "-m", "lbctl", "config", "validate", str(bad)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 1
    keys = [line.split(": ")[1] for line in out.stderr.splitlines()]
    assert keys == ["clusterName", "gcp.apiToken", "baremetal.bogus",
                    'baremetal.pools[0] "p".addresses[0]'], out.stderr
    assert "includes the unspecified address 0.0.0.0" in out.stderr


def test_config_validate_and_plan_commands(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusterName: Bad_Name\nmeltdown: {maxRemovedFraction: 3}\n")
    out = subprocess.run([sys.executable, "-m", "lbctl", "config", "validate", str(bad)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 1
    assert f"{bad}: clusterName:" in out.stderr
    assert f"{bad}: meltdown.maxRemovedFraction:" in out.stderr
    good = tmp_path / "good.yaml"
    good.write_text("provider: fake\n")
    service = tmp_path / "svc.yaml"
    service.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n"
                       "  type: LoadBalancer\n  ports: [{port: 80, nodePort: 30080}]\n")
    out = subprocess.run([sys.executable, "-m", "lbctl", "plan", "-f", str(service),
                          "--config", str(good)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert '"node_port": 30080' in out.stdout
    assert "create balancer lb-defaul-web-" in out.stdout


def test_plan_reads_namespace_labels_from_the_cluster(ctl_sandbox: Sandbox,
                                                      core_api: client.CoreV1Api,
                                                      tmp_path: Path) -> None:
    """A pool that selects on a namespace label: without --kubeconfig the namespace has no
    labels but its name (the plain pool); with it, the cluster's labels pick the other."""
    core_api.create_namespace({"metadata": {"name": "team-a", "labels": {"tier": "gold"}}})
    config = tmp_path / "config.yaml"
    config.write_text(
        "provider: baremetal\nbaremetal:\n  pools:\n"
        "  - {name: gold, addresses: ['10.9.1.0/28'], serviceAllocation: {priority: 1, "
        "namespaceSelectors: [{matchLabels: {tier: gold}}]}}\n"
        "  - {name: plain, addresses: ['10.9.2.0/28']}\n")
    service = tmp_path / "svc.yaml"
    service.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: team-a}\n"
                       "spec:\n  type: LoadBalancer\n  ports: [{port: 80, nodePort: 30080}]\n")
    base = [sys.executable, "-m", "lbctl", "plan", "-f", str(service), "--config", str(config)]
    for extra, pool in (([], "plain"),
                        (["--kubeconfig", str(ctl_sandbox.options.kubeconfig)], "gold")):
        out = subprocess.run([*base, *extra], capture_output=True, text=True, timeout=60,
                             check=False)
        assert out.returncode == 0, out.stderr
        assert f'from pool "{pool}"' in out.stdout, out.stdout
