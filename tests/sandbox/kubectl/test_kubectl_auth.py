"""kubectl 1.33 against a TLS sandbox: `create token`, `auth can-i` with impersonation (`--as`)
and with a ServiceAccount's own token, a ServiceAccount refused until `create rolebinding`, and
`auth whoami`. kubectl 1.32+ sends these typed requests as protobuf, so this also proves the
sandbox reads kube's protobuf encoding."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbctl.sandbox.app import Sandbox
from tests.conftest import running_sandbox, unavailable

KUBECTL = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.33")

pytestmark = pytest.mark.kubectl


@pytest.fixture(autouse=True)
def _kubectl_installed() -> None:
    if not KUBECTL.exists():
        unavailable(f"{KUBECTL} is not installed")


@pytest.fixture(scope="module")
def tls_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from running_sandbox(tmp_path_factory.mktemp("kubectl-tls"), nodes=1, tls=True)


class Kubectl:
    """kubectl with the sandbox's kubeconfig (certificate-authority-data, admin token)."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(KUBECTL), "--kubeconfig", str(self.kubeconfig),
                               "-n", self.namespace, *args],
                              capture_output=True, text=True, timeout=60, check=False)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture
def kubectl(tls_box: Sandbox) -> Iterator[Kubectl]:
    assert tls_box.options.kubeconfig is not None
    ns = f"kc-{uuid.uuid4().hex[:8]}"
    k = Kubectl(tls_box.options.kubeconfig, ns)
    k.ok("create", "namespace", ns)
    yield k
    k.run("delete", "namespace", ns, "--wait=false")


def test_ready_url_is_https_and_kubectl_trusts_the_ca(tls_box: Sandbox, kubectl: Kubectl) -> None:
    assert tls_box.url.startswith("https://")
    assert "Server Version: v1.33.0" in kubectl.ok("version")


def test_sa_refused_until_create_rolebinding(kubectl: Kubectl) -> None:
    sa = f"system:serviceaccount:{kubectl.namespace}:x"
    kubectl.ok("create", "serviceaccount", "x")
    denied = kubectl.run("auth", "can-i", "list", "services", f"--as={sa}")
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    kubectl.ok("create", "rolebinding", "x-view", "--clusterrole=view",
               f"--serviceaccount={kubectl.namespace}:x")
    assert kubectl.ok("auth", "can-i", "list", "services", f"--as={sa}").strip() == "yes"
    refused = kubectl.run("auth", "can-i", "list", "secrets", f"--as={sa}")
    assert refused.stdout.strip() == "no"


def test_create_token_then_act_with_it(kubectl: Kubectl) -> None:
    kubectl.ok("create", "serviceaccount", "robot")
    token = kubectl.ok("create", "token", "robot", "--duration=20m").strip()
    assert token.count(".") == 2  # a JWT, like kube's bound tokens
    as_robot = ("--token", token)
    assert kubectl.run(*as_robot, "auth", "can-i", "get", "pods").stdout.strip() == "no"
    denied = kubectl.run(*as_robot, "get", "services")
    assert denied.returncode == 1
    assert (f'Error from server (Forbidden): services is forbidden: User "system:serviceaccount:'
            f'{kubectl.namespace}:robot" cannot list resource "services" in API group "" in '
            f'the namespace "{kubectl.namespace}"') in denied.stderr
    kubectl.ok("create", "role", "pod-reader", "--verb=get,list", "--resource=pods")
    kubectl.ok("create", "rolebinding", "robot-pods", "--role=pod-reader",
               f"--serviceaccount={kubectl.namespace}:robot")
    assert kubectl.ok(*as_robot, "auth", "can-i", "get", "pods").strip() == "yes"
    whoami = kubectl.ok(*as_robot, "auth", "whoami")
    assert f"system:serviceaccount:{kubectl.namespace}:robot" in whoami
    assert "system:authenticated" in whoami
    kubectl.ok("delete", "serviceaccount", "robot")
    gone = kubectl.run(*as_robot, "get", "pods")
    assert gone.returncode == 1 and "Unauthorized" in gone.stderr


def test_create_token_refuses_a_short_duration(kubectl: Kubectl) -> None:
    kubectl.ok("create", "serviceaccount", "brief")
    done = kubectl.run("create", "token", "brief", "--duration=1m")
    assert done.returncode == 1
    assert ('TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid '
            "value: 60: may not specify a duration less than 10 minutes") in done.stderr


def test_impersonation_of_users_and_groups(kubectl: Kubectl) -> None:
    assert kubectl.run("auth", "can-i", "list", "nodes", "--as=bob").stdout.strip() == "no"
    masters = ("--as=bob", "--as-group=system:masters")
    assert kubectl.ok("auth", "can-i", "delete", "nodes", *masters).strip() == "yes"
    kubectl.ok("create", "clusterrolebinding", f"bob-view-{kubectl.namespace}",
               "--clusterrole=view", "--user=bob")
    try:
        assert kubectl.ok("auth", "can-i", "list", "pods", "--as=bob",
                          "--all-namespaces").strip() == "yes"
    finally:
        kubectl.ok("delete", "clusterrolebinding", f"bob-view-{kubectl.namespace}")
