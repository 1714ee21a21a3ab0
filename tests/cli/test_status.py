"""`lbctl status` as an operator runs it: a subprocess against a sandbox the controller works on.

The controller (fake provider) provisions one Service and refuses another (a Warning event and
a False serving condition); a third, of a class this controller does not own, carries the
conditions the baremetal provider writes for a balancer with a target down, written by hand
through the status subresource; a fourth belongs to some other controller. The table, `-o json`,
`--config`, `-n`/`-l`, the failures (no kubeconfig, no server) and what the command imports are
checked on the real output.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from lbctl.sandbox.app import Sandbox
from tests.conftest import client_for, running_sandbox, svc, wait_for
from tests.controller.conftest import Running, start_controller, stop_controller

pytestmark = pytest.mark.integration
DEGRADED = "balancer lb-1: 2 of 3 targets healthy; down: sandbox-node-3"


def lbctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "lbctl", "status", *args], capture_output=True,
                         text=True, timeout=60, check=False)
    if check:
        assert out.returncode == 0, out.stderr
    return out


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox of this module's own: the controller acts on every Service it sees."""
    yield from running_sandbox(tmp_path_factory.mktemp("status"), workloads=False)


@pytest.fixture(scope="module")
def cluster(box: Sandbox) -> Iterator[str]:
    """The four Services, settled: answers the kubeconfig path."""
    run: Running = start_controller(box, "provider: fake\n")
    api = client_for(box)
    core = client.CoreV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": "shop"}})
        core.create_namespaced_service("shop", svc("web", type="LoadBalancer"))
        broken = svc("broken", type="LoadBalancer")
        broken["metadata"]["annotations"] = {"fake.lbctl.io/fail": "no quota"}
        core.create_namespaced_service("shop", broken)
        core.create_namespaced_service("default", svc(
            "metal", type="LoadBalancer", loadBalancerClass="lbctl.io/baremetal"))
        core.patch_namespaced_service_status("metal", "default", {"status": {
            "loadBalancer": {"ingress": [{"ip": "10.99.0.7", "ipMode": "VIP"}]},
            "conditions": [_cond("Serving", "True", "Ensured"),
                           _cond("Degraded", "True", "Degraded", DEGRADED)]}})
        core.create_namespaced_service("default", svc(
            "other", type="LoadBalancer", loadBalancerClass="example.com/other",
            ports=[{"port": 53, "protocol": "UDP"}]))

        def settled() -> bool:
            web = core.read_namespaced_service("web", "shop")
            warned = core.list_namespaced_event(
                "shop", field_selector="involvedObject.name=broken,type=Warning").items
            return bool(web.status.load_balancer.ingress) and bool(warned)

        wait_for(settled, 30, "web's address and broken's Warning")
        assert box.options.kubeconfig is not None
        yield str(box.options.kubeconfig)
    finally:
        api.close()
        stop_controller(run)


def _cond(kind: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": f"LoadBalancer{kind}", "status": status, "reason": reason,
            "message": message, "lastTransitionTime": "2026-12-07T11:00:00Z"}


def rows(stdout: str) -> dict[tuple[str, str], list[str]]:
    """Table lines split on kubectl's runs of spaces, by (namespace, name)."""
    lines = stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "CLASS", "ADDRESS", "PORTS", "PROVIDER",
                                "READY", "TARGETS", "AGE", "WARNING"]
    return {(c[0], c[1]): c for c in (re.split(r"\s{2,}", line.strip()) for line in lines[1:])}


def test_the_table(cluster: str) -> None:
    table = rows(lbctl("--kubeconfig", cluster).stdout)
    assert sorted(table) == [("default", "metal"), ("default", "other"), ("shop", "broken"),
                             ("shop", "web")]
    web = table["shop", "web"]
    assert re.fullmatch(r"198\.51\.100\.\d+", web[3]) and re.fullmatch(r"80:\d+/TCP", web[4])
    assert (web[2], web[5], web[6], web[7], web[9]) == ("<none>", "lbctl", "True", "-", "-")
    assert re.fullmatch(r"\d+s", web[8])
    broken = table["shop", "broken"]
    assert (broken[3], broken[5], broken[6], broken[9]) == (
        "<pending>", "fake", "False", "SyncLoadBalancerFailed")  # fake: from its annotation
    assert table["default", "metal"][2:8] == ["lbctl.io/baremetal", "10.99.0.7",
                                              table["default", "metal"][4], "baremetal",
                                              "True", "2/3"]
    other = table["default", "other"]
    assert (other[2], other[3], other[5], other[6], other[7]) == (
        "example.com/other", "<pending>", "-", "-", "-")


def test_json(cluster: str) -> None:
    doc = json.loads(lbctl("--kubeconfig", cluster, "-o", "json").stdout)
    by_name = {d["name"]: d for d in doc}
    assert [d["name"] for d in doc] == ["metal", "other", "broken", "web"]
    assert by_name["metal"]["targets"] == {"healthy": 2, "total": 3}
    assert by_name["metal"]["provider"] == "baremetal"
    assert by_name["metal"]["providerSource"] == "class"
    assert by_name["other"]["provider"] is None and by_name["other"]["ready"] is None
    broken = by_name["broken"]
    assert broken["ready"] == "False" and broken["addresses"] == []
    serving = next(c for c in broken["conditions"] if c["type"] == "LoadBalancerServing")
    assert serving["reason"] == "InvalidConfiguration" and "no quota" in serving["message"]
    assert broken["lastWarning"]["reason"] == "SyncLoadBalancerFailed"
    assert "no quota" in broken["lastWarning"]["message"]
    assert by_name["web"]["ports"][0]["port"] == 80


def test_config_namespace_selector_and_wide(cluster: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("provider: fake\n")
    out = lbctl("--kubeconfig", cluster, "--config", str(config), "-n", "shop", "-o", "wide",
                "-l", "app!=nothing").stdout.splitlines()
    assert out[0].split()[:2] == ["NAME", "CLASS"]  # one namespace: no NAMESPACE column
    assert out[0].split()[-2:] == ["CONDITIONS", "MESSAGE"]
    web, = (line for line in out if line.startswith("web "))
    broken, = (line for line in out if line.startswith("broken "))
    assert " fake " in web and "Provisioning=False,Serving=True,Degraded=False" in web
    assert broken.endswith("Serving: metadata.annotations[fake.lbctl.io/fail]: asked to fail: "
                           "'no quota'")
    assert len(out) == 3
    none = lbctl("--kubeconfig", cluster, "-l", "app=nothing")
    assert none.stdout == "" and "No LoadBalancer Services found" in none.stderr


@pytest.mark.parametrize(("kubeconfig", "says"), [
    ("missing", "cannot load kubeconfig"),
    ("dead", "cannot list Services from http://127.0.0.1:1"),
    ("garbage", "cannot load kubeconfig"),
])
def test_a_bad_kubeconfig_is_one_clear_line(cluster: str, tmp_path: Path, kubeconfig: str,
                                            says: str) -> None:
    path = tmp_path / kubeconfig
    if kubeconfig == "dead":
        path.write_text(re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:1", Path(cluster).read_text()))
    elif kubeconfig == "garbage":
        path.write_text("clusters: [oops\n")
    out = lbctl("--kubeconfig", str(path), check=False)
    assert out.returncode == 1
    assert out.stderr.startswith("Error: ") and says in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_status_loads_no_sandbox_emulator_or_provider(cluster: str) -> None:
    """An operator's laptop has the base install: status needs the client and no more."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "lbctl", "status",
                          "--kubeconfig", cluster], capture_output=True, text=True, timeout=60,
                         check=True)
    modules = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", out.stderr, re.M)
    assert "lbctl.controller.status_view" in modules
    assert [m for m in modules if m.startswith(("lbctl.sandbox", "lbctl.emulators", "lbctl.demo",
                                                "providers.fake", "providers.baremetal",
                                                "moto", "boto3", "jsonpatch"))] == []
