"""The chart's manifests applied to the sandbox, and `lbctl run` under the chart's own
ServiceAccount token through a Service's whole lifecycle: zero 403s, and every RBAC rule the
chart grants is used. Then each rule (each verb of each resource) is removed in turn and the
same scenario must meet a 403 on exactly that request: nothing is granted that is not needed.

The controller runs as `python -m lbctl` with the command, arguments, environment and probe
paths of the rendered Deployment (only the config path, the metrics address and the kubeconfig
are local), and the config read back from the applied ConfigMap (rendered with
`config.provider=fake`, the recording test provider); the lifecycle also runs with the bare-metal
example's config as the chart renders it (addresses from its IP pools), plus one pool that
selects on a namespace label, so that the Namespace informer runs too.

The scenario: controller A leads -> a LoadBalancer Service gets its ingress and finalizer ->
A stops (SIGTERM, Lease released) -> controller B takes over (its first Events meet the ones A
wrote: 409, get, patch) -> the Service's port changes (status conditions observe the new
generation, the Ensured Event's count grows) -> the Service is deleted and B removes the
finalizer -> B stops.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbctl.sandbox.app import Sandbox, SandboxOptions, SandboxThread
from lbctl.sandbox.nodes import simulated
from tests.conftest import admin_call, unavailable

from .conftest import KUBECTL, NAMESPACE, Helm, Manifests, values_file

pytestmark = pytest.mark.integration

LEASE = "lbctl-controller"
FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
STEP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Grant:
    """One verb on one resource, in the chart's ClusterRole or its leader-election Role."""

    kind: str  # ClusterRole | Role
    resource: str  # as RBAC spells it: "services", "services/status"
    verb: str

    def matches(self, entry: dict[str, Any]) -> bool:
        resource = entry["resource"] + (f"/{entry['subresource']}" if entry["subresource"]
                                        else "")
        return resource == self.resource and bool(entry["verb"] == self.verb)

    def __str__(self) -> str:
        return f"{self.resource}:{self.verb}"


GRANTS = [Grant("ClusterRole", r, v) for r, v in [
    ("services", "list"), ("services", "watch"), ("services", "patch"),
    ("services/status", "patch"), ("nodes", "list"), ("nodes", "watch"),
    ("events", "create"), ("events", "patch"), ("events", "get"),
    ("endpointslices", "list"), ("endpointslices", "watch"),
    ("namespaces", "list"), ("namespaces", "watch")]] + [
    Grant("Role", "leases", v) for v in ("get", "create", "update")]
ENDPOINTS = {g for g in GRANTS if g.resource == "endpointslices"}
"""Used only once a Service is in the endpoints target mode, which the bare-metal provider
serves (the recording fake does not): the bare-metal scenario has one."""
NAMESPACES = {g for g in GRANTS if g.resource == "namespaces"}
"""Used only once a bare-metal pool selects on a namespace label: the bare-metal scenario's
config has one (`LABELLED_POOL`), so its first ensure lists and watches Namespaces."""
BAREMETAL_ONLY = ENDPOINTS | NAMESPACES
LABELLED_POOL = {"name": "labelled", "addresses": ["192.168.30.0/28"],
                 "serviceAllocation": {"namespaceSelectors": [
                     {"matchLabels": {"lbctl.io/rbac-test": "labelled"}}]}}
"""Serves no namespace of the scenario (none carries the label): its Services keep getting
`default`'s addresses."""


def chart_grants(manifests: Manifests) -> set[Grant]:
    controller = manifests.component("controller")
    return {Grant(kind, resource, verb) for kind in ("ClusterRole", "Role")
            for rule in controller.one(kind)["rules"] for resource in rule["resources"]
            for verb in rule["verbs"]}


def without(role: dict[str, Any], grant: Grant) -> dict[str, Any]:
    """`role` with one verb of one resource taken out of its rules (and nothing else)."""
    out = copy.deepcopy(role)
    rules = []
    for rule in out["rules"]:
        if grant.resource not in rule["resources"] or grant.verb not in rule["verbs"]:
            rules.append(rule)
            continue
        others = [r for r in rule["resources"] if r != grant.resource]
        if others:  # the other resources keep the verb
            rules.append({**rule, "resources": others})
        verbs = [v for v in rule["verbs"] if v != grant.verb]
        if verbs:
            rules.append({**rule, "resources": [grant.resource], "verbs": verbs})
    out["rules"] = rules
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _answers_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:  # HTTPError included
        return False


@dataclass
class Installed:
    """The chart applied to a sandbox, and how to run its controller locally."""

    box: Sandbox
    manifests: Manifests
    kubeconfig: Path
    configs: dict[str, Path]
    """Config files by provider: `fake` as applied, `baremetal` as the example renders it."""
    user: str
    workdir: Path
    applied: str

    def admin(self, method: str, path: str, body: Any = None,
              headers: dict[str, str] | None = None) -> tuple[int, Any]:
        code, answer, _ = admin_call(self.box, method, path, body, headers=headers)
        return code, answer

    def role_path(self, kind: str) -> str:
        name = self.manifests.component("controller").one(kind)["metadata"]["name"]
        if kind == "ClusterRole":
            return f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"
        return f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}/roles/{name}"

    def put_role(self, role: dict[str, Any]) -> None:
        path = self.role_path(role["kind"])
        code, current = self.admin("GET", path)
        assert code == 200, current
        body = {**role, "metadata": {**role["metadata"],
                                     "resourceVersion": current["metadata"]["resourceVersion"]}}
        code, answer = self.admin("PUT", path, body)
        assert code == 200, answer

    def audit(self) -> list[dict[str, Any]]:
        code, answer = self.admin("GET", "/sandbox/audit")
        assert code == 200
        return [e for e in answer["items"] if e["user"] == self.user]

    def lease_holder(self) -> str | None:
        code, lease = self.admin(
            "GET", f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{LEASE}")
        if code != 200:
            return None
        return str((lease.get("spec") or {}).get("holderIdentity") or "")

    def command(self, port: int, config: Path) -> tuple[list[str], dict[str, str]]:
        """The Deployment's container as a local process: argv and environment."""
        container = self.manifests.container()
        assert container["command"] == ["lbctl"]
        args = list(container["args"])
        mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
        at = args.index("--config")
        assert args[at + 1] == f"{mount['mountPath']}/config.yaml"
        args[at + 1] = str(config)
        at = args.index("--metrics-bind")
        assert args[at + 1].endswith(f":{container['ports'][0]['containerPort']}")
        args[at + 1] = f"127.0.0.1:{port}"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir)}
        namespace = self.manifests.one("Deployment")["metadata"]["namespace"]
        for var in container["env"]:
            if "value" in var:
                env[var["name"]] = var["value"]
            else:
                assert var["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
                env[var["name"]] = namespace
        return [sys.executable, "-m", "lbctl", *args, "--kubeconfig",
                str(self.kubeconfig)], env

    def probe_paths(self) -> tuple[str, str]:
        container = self.manifests.container()
        return (container["livenessProbe"]["httpGet"]["path"],
                container["readinessProbe"]["httpGet"]["path"])


@pytest.fixture(scope="module")
def installed(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    if not KUBECTL.exists():
        unavailable(f"{KUBECTL} is missing (the machine image's kubectl 1.33)")
    tmp = tmp_path_factory.mktemp("deploy")
    manifests = helm.template(values=[values_file("baremetal")], sets=["config.provider=fake"])
    thread = SandboxThread(SandboxOptions(nodes=simulated(3), kubeconfig=tmp / "admin.kc",
                                          workloads=False, bookmark_interval=0.5))
    box = thread.start()
    try:
        def kubectl(*args: str, stdin: str | None = None) -> str:
            done = subprocess.run([str(KUBECTL), "--kubeconfig", str(tmp / "admin.kc"),
                                   "--cache-dir", str(tmp / "kubectl-cache"), *args],
                                  input=stdin, capture_output=True, text=True, timeout=60,
                                  env={"HOME": str(tmp), "PATH": os.environ.get("PATH", "")},
                                  check=False)
            assert done.returncode == 0, f"kubectl {args}: {done.stderr}"
            return done.stdout

        kubectl("create", "namespace", NAMESPACE)
        applied = kubectl("apply", "-f", "-", stdin=manifests.yaml())
        sa = manifests.component("controller").one("ServiceAccount")["metadata"]["name"]
        config_map = manifests.one("ConfigMap")["metadata"]["name"]
        code, stored = admin_call(box, "GET",
                                  f"/api/v1/namespaces/{NAMESPACE}/configmaps/{config_map}")[:2]
        assert code == 200
        fake = tmp / "fake.yaml"  # the mounted file, as the kubelet would write it
        fake.write_text(stored["data"]["config.yaml"])
        baremetal = tmp / "baremetal.yaml"
        rendered = yaml.safe_load(helm.template(values=[values_file("baremetal")]).config_text())
        rendered["baremetal"]["pools"].append(LABELLED_POOL)
        baremetal.write_text(yaml.safe_dump(rendered))
        kubeconfig = box.write_kubeconfig(tmp / "sa.kc", box.issue_token(NAMESPACE, sa), user=sa)
        yield Installed(box, manifests, kubeconfig, {"fake": fake, "baremetal": baremetal},
                        f"system:serviceaccount:{NAMESPACE}:{sa}", tmp, applied)
    finally:
        thread.stop()


class Proven(Exception):
    """The 403 the removal case looks for happened."""


@dataclass
class Controller:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Scenario:
    """The lifecycle, stopping as soon as a 403 for the user appears: an error when nothing
    was removed, the proof sought when it is on the removed rule."""

    inst: Installed
    namespace: str
    removed: Grant | None = None
    provider: str = "fake"
    controllers: list[Controller] = field(default_factory=list)
    ingress: str = ""

    def start(self, label: str) -> Controller:
        port = _free_port()
        argv, env = self.inst.command(port, self.inst.configs[self.provider])
        log = self.inst.workdir / f"{self.namespace}-{label}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        controller = Controller(proc, port, log)
        self.controllers.append(controller)
        return controller

    def logs(self) -> str:
        return "\n".join(f"--- {c.log.name}\n{c.tail()}" for c in self.controllers)

    def check_forbidden(self, what: str) -> None:
        denied = [e for e in self.inst.audit() if e["code"] == 403]
        if not denied:
            return
        if self.removed is not None and all(self.removed.matches(e) for e in denied):
            raise Proven(f"{what}: {denied[0]}")
        raise AssertionError(f"403 during '{what}': {denied}\n{self.logs()}")

    def wait(self, what: str, check: Callable[[], Any], timeout: float = STEP_TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_forbidden(what)
            value = check()
            if value:
                return value
            for c in self.controllers:
                if c.proc.poll() not in (None, 0):
                    raise AssertionError(f"{c.log.name} exited {c.proc.returncode} during "
                                         f"'{what}'\n{self.logs()}")
            time.sleep(0.1)
        self.check_forbidden(what)
        raise AssertionError(f"step '{what}' did not happen in {timeout} s\n{self.logs()}")

    def stop(self, controller: Controller, what: str) -> None:
        self.check_forbidden(what)
        code = controller.terminate()
        assert code == 0, f"{what}: exit {code}\n{self.logs()}"

    def service(self) -> dict[str, Any] | None:
        code, svc = self.inst.admin("GET", f"/api/v1/namespaces/{self.namespace}/services/web")
        return svc if code == 200 else None

    def ensured_count(self) -> int:
        code, events = self.inst.admin("GET", f"/api/v1/namespaces/{self.namespace}/events")
        assert code == 200
        return sum(int(e.get("count") or 1) for e in events["items"]
                   if e.get("reason") == "EnsuredLoadBalancer")

    def run(self) -> None:
        inst, ns = self.inst, self.namespace
        liveness, readiness = inst.probe_paths()
        a = self.start("a")
        holder_a = self.wait("A leads", inst.lease_holder)
        for path in (liveness, readiness):  # the chart's probes, served by the real process
            self.wait(f"A answers {path}", partial(_answers_ok, f"http://127.0.0.1:{a.port}{path}"))
        code, answer = inst.admin("POST", f"/api/v1/namespaces/{ns}/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
        assert code == 201, answer

        def served() -> str:
            """The ingress IP, once the finalizer is there too."""
            svc = self.service() or {}
            points = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            held = FINALIZER in (svc.get("metadata", {}).get("finalizers") or [])
            return str(points[0].get("ip") or "") if points and held else ""

        self.ingress = self.wait("ingress written and finalizer added", served)
        self.stop(a, "A stops")
        self.wait("A released the Lease", lambda: inst.lease_holder() == "")
        self.start("b")
        self.wait("B leads", lambda: inst.lease_holder() not in (None, "", holder_a))
        code, answer = inst.admin(
            "PATCH", f"/api/v1/namespaces/{ns}/services/web",
            {"spec": {"ports": [{"name": "http", "port": 8080, "targetPort": 8080}]}},
            headers={"Content-Type": "application/merge-patch+json"})
        assert code == 200, answer
        generation = answer["metadata"]["generation"]

        def port_synced() -> bool:
            svc = self.service() or {}
            serving = [c for c in (svc.get("status") or {}).get("conditions") or []
                       if c["type"] == "LoadBalancerServing"]
            return (bool(serving) and serving[0]["observedGeneration"] == generation
                    and serving[0]["status"] == "True" and self.ensured_count() >= 2
                    and served() == self.ingress)  # the address survived restart and change

        self.wait("port change synced", port_synced)
        if self.provider == "baremetal":  # the endpoints mode: B starts watching slices
            code, answer = inst.admin("POST", f"/api/v1/namespaces/{ns}/services", {
                "apiVersion": "v1", "kind": "Service", "metadata": {
                    "name": "pods", "annotations": {"lbctl.io/target-mode": "endpoints"}},
                "spec": {"type": "LoadBalancer", "selector": {"app": "pods"},
                         "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
            assert code == 201, answer
            self.wait("EndpointSlices listed and watched", lambda: all(
                any(g.matches(e) and 200 <= e["code"] < 300 for e in inst.audit())
                for g in ENDPOINTS if g.verb == "list"))
            code, answer = inst.admin("DELETE", f"/api/v1/namespaces/{ns}/services/pods")
            assert code == 200, answer
            self.wait("the endpoints-mode Service gone", lambda: inst.admin(
                "GET", f"/api/v1/namespaces/{ns}/services/pods")[0] == 404)
        code, answer = inst.admin("DELETE", f"/api/v1/namespaces/{ns}/services/web")
        assert code == 200, answer
        self.wait("finalizer removed, Service gone", lambda: self.service() is None)
        self.stop(self.controllers[-1], "B stops")

    def cleanup(self) -> None:
        for controller in self.controllers:
            controller.kill()
        for name in ("web", "pods"):
            path = f"/api/v1/namespaces/{self.namespace}/services/{name}"
            if self.inst.admin("GET", path)[0] != 200:
                continue
            self.inst.admin("PATCH", path, {"metadata": {"finalizers": None}},
                            headers={"Content-Type": "application/merge-patch+json"})
            self.inst.admin("DELETE", path)


def prepare(inst: Installed, namespace: str, removed: Grant | None) -> None:
    """Full RBAC from the chart (less `removed`), no Lease, an empty audit log, a namespace."""
    for kind in ("ClusterRole", "Role"):
        role = inst.manifests.component("controller").one(kind)
        inst.put_role(without(role, removed) if removed and removed.kind == kind else role)
    code, _ = inst.admin(
        "DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{LEASE}")
    assert code in (200, 404)
    code, _ = inst.admin("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    assert code == 201
    code, _ = inst.admin("DELETE", "/sandbox/audit")
    assert code == 200


def test_manifests_apply_to_the_sandbox(installed: Installed) -> None:
    for doc in installed.manifests.docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        group = doc["apiVersion"].rpartition("/")[0]
        shown = f"{kind.lower()}.{group}" if group else kind.lower()
        assert f"{shown}/{name} created" in installed.applied, installed.applied
    code, deployment = installed.admin(
        "GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/lbctl")
    assert code == 200
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFilesystem"] is True


def test_chart_grants_exactly_the_rules_tested_below(installed: Installed) -> None:
    assert chart_grants(installed.manifests) == set(GRANTS)


def test_the_balancer_daemons_are_granted_nothing(installed: Installed) -> None:
    """The daemon makes no Kubernetes API calls (import-linter keeps lbctl.balancer away from
    any Kubernetes client): the applied chart binds its ServiceAccount to nothing, anywhere,
    and neither the account nor the pods mount a token."""
    balancer = installed.manifests.component("balancer")
    name = balancer.one("ServiceAccount")["metadata"]["name"]
    assert [d["kind"] for d in balancer.docs if "Role" in d["kind"]] == []
    subjects = []
    for kind in ("rolebindings", "clusterrolebindings"):
        code, found = installed.admin("GET", f"/apis/rbac.authorization.k8s.io/v1/{kind}")
        assert code == 200, found
        subjects += [s for binding in found["items"] for s in binding.get("subjects") or []]
    assert any(s.get("name") == "lbctl" for s in subjects)  # the controller's are there
    assert [s for s in subjects if s.get("name") == name] == []
    code, account = installed.admin(
        "GET", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{name}")
    assert code == 200 and account["automountServiceAccountToken"] is False
    code, daemonset = installed.admin(
        "GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets/{name}")
    assert code == 200
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == name
    assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("provider", ["fake", "baremetal"])
def test_lifecycle_under_the_chart_service_account_has_no_403(installed: Installed,
                                                              provider: str) -> None:
    prepare(installed, f"lifecycle-{provider}", None)
    scenario = Scenario(installed, f"lifecycle-{provider}", provider=provider)
    try:
        scenario.run()
    finally:
        scenario.cleanup()
    network = {"fake": "198.51.100.0/24", "baremetal": "192.168.10.0/24"}[provider]
    assert ipaddress.ip_address(scenario.ingress) in ipaddress.ip_network(network)
    entries = installed.audit()
    assert entries, "the controller made no request as the ServiceAccount"
    assert [e for e in entries if e["code"] == 403] == []

    def used() -> set[Grant]:
        return {g for g in GRANTS for e in installed.audit()
                if g.matches(e) and 200 <= e["code"] < 300}

    expected = set(GRANTS) if provider == "baremetal" else set(GRANTS) - BAREMETAL_ONLY
    # watches are audited when they end; both controllers have exited, so they all end soon
    deadline = time.monotonic() + 10
    while used() != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sorted(map(str, expected - used())) == []
    assert used() == expected
    # the Lease requests stayed in the release namespace, on the one Lease
    leases = [e for e in installed.audit() if e["resource"] == "leases"]
    assert {(e["namespace"], e["name"]) for e in leases} == {(NAMESPACE, LEASE)}


@pytest.mark.parametrize("grant", GRANTS, ids=str)
def test_each_rule_is_needed(installed: Installed, grant: Grant) -> None:
    namespace = f"without-{grant.resource.replace('/', '-')}-{grant.verb}"
    prepare(installed, namespace, grant)
    scenario = Scenario(installed, namespace, removed=grant,
                        provider="baremetal" if grant in BAREMETAL_ONLY else "fake")
    try:
        with pytest.raises(Proven):  # raised only for a 403 on exactly `grant`
            scenario.run()
    finally:
        scenario.cleanup()
