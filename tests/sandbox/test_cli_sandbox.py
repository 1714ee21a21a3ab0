"""`lbctl sandbox` as a process: the design's contract (ready line, kubeconfig, /version,
nodes, clean exit on SIGTERM), and clear errors for bad flags and files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.helpers import SandboxProcess, node_names

pytestmark = pytest.mark.integration


def test_sandbox_process_contract(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    with SandboxProcess("--listen", "127.0.0.1:0", "--nodes", "2",
                        "--kubeconfig", str(kubeconfig)) as sandbox:
        assert "ready" in sandbox.line and "http://127.0.0.1:" in sandbox.line
        api = config.new_client_from_config(config_file=str(kubeconfig))
        version = client.VersionApi(api).get_code()
        assert (version.major, version.minor) == ("1", "33")
        api.close()
        assert node_names(kubeconfig) == ["sandbox-node-1", "sandbox-node-2"]
        assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
    assert sandbox.proc.returncode == 0, sandbox.err
    assert "stopped" in sandbox.out


def test_tls_with_traffic(tmp_path: Path) -> None:
    """The ready line comes only once the traffic process has listed the API, which under
    --tls it can only do by trusting the sandbox's own CA."""
    kubeconfig = tmp_path / "kc"
    with SandboxProcess("--tls", "--nodes", "1", "--kubeconfig", str(kubeconfig)) as sandbox:
        assert "ready" in sandbox.line and "https://127.0.0.1:" in sandbox.line
        assert node_names(kubeconfig) == ["sandbox-node-1"]
    assert sandbox.proc.returncode == 0


def test_nodes_file(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(
        "nodes:\n"
        "- name: ip-10-0-1-5\n"
        "  providerID: aws:///us-east-1a/i-0abc\n"
        "  addresses: [{type: InternalIP, address: 10.0.1.5}]\n"
        "  labels: {topology.kubernetes.io/zone: us-east-1a}\n"
        "  simulate: false\n")
    kubeconfig = tmp_path / "kc"
    with SandboxProcess("--nodes-file", str(nodes), "--kubeconfig", str(kubeconfig),
                        stop=signal.SIGINT) as sandbox:
        assert "ready" in sandbox.line
        api = config.new_client_from_config(config_file=str(kubeconfig))
        node = client.CoreV1Api(api).read_node("ip-10-0-1-5")
        assert node.spec.provider_id == "aws:///us-east-1a/i-0abc"
        assert node.status.addresses[0].address == "10.0.1.5"
        assert node.metadata.labels["topology.kubernetes.io/zone"] == "us-east-1a"
        api.close()
    assert sandbox.proc.returncode == 0


@pytest.mark.parametrize(("args", "content", "needle"), [
    (["--listen", "nonsense"], None, "--listen"),
    ([], "nodes:\n- providerID: x\n", "nodes[0].name"),
    ([], "nodes:\n- {name: a, simulate: maybe}\n", "nodes[0].simulate"),
    ([], "nodes:\n- {name: a}\n- {name: a}\n", "duplicate node name"),
    ([], "nodes: [\n", "nodes.yaml"),
])
def test_bad_flags_and_files(tmp_path: Path, args: list[str], content: str | None,
                             needle: str) -> None:
    if content is not None:
        (tmp_path / "nodes.yaml").write_text(content)
        args = [*args, "--nodes-file", str(tmp_path / "nodes.yaml")]
    proc = subprocess.run([sys.executable, "-m", "lbctl", "sandbox", *args],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


# -- anonymous admin beyond loopback (issue 14) -----------------------------------------------
@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
    ("::ffff:127.0.0.1", True), ("localhost", True), ("LocalHost.", True),
    ("api.localhost", True), ("0.0.0.0", False), ("::", False), ("", False),
    ("192.0.2.10", False), ("fe80::1", False), ("::ffff:192.0.2.10", False),
    ("example.test", False), ("localhost.example.test", False),
])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    from lbctl.sandbox.app import is_loopback

    assert is_loopback(host) is loopback


def test_a_sandbox_object_refuses_remote_plain_http_unless_allowed() -> None:
    from lbctl.sandbox.app import AnonymousAdminRefused, Sandbox, SandboxOptions

    with pytest.raises(AnonymousAdminRefused, match="--allow-anonymous-remote-admin"):
        Sandbox(SandboxOptions(host="0.0.0.0", workloads=False))
    Sandbox(SandboxOptions(host="0.0.0.0", workloads=False, allow_anonymous_remote_admin=True))
    Sandbox(SandboxOptions(host="0.0.0.0", workloads=False, tls=True))


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0", "192.0.2.10:6443", "example.test:0"])
def test_non_loopback_without_the_flag_is_refused_naming_the_way_out(listen: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "lbctl", "sandbox", "--listen", listen,
                           "--no-traffic", "--no-workloads"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2, proc.stderr
    message = " ".join(proc.stderr.split())
    assert "refusing to serve plain HTTP" in message
    assert "--allow-anonymous-remote-admin" in message
    assert "--tls" in message  # how to turn anonymous admin off
    assert "ready" not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_non_loopback_with_the_flag_serves_and_warns_loudly() -> None:
    with SandboxProcess("--listen", "0.0.0.0:0", "--allow-anonymous-remote-admin",
                        "--no-traffic", "--no-workloads", "--nodes", "1") as sandbox:
        assert "ready at http://0.0.0.0:" in sandbox.line, sandbox.line
        port = int(sandbox.line.split("ready at http://0.0.0.0:", 1)[1].split()[0])
        # the risk is real: no token, and the nodes are listed (asked on loopback only)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nodes",
                                    timeout=10) as resp:
            assert json.loads(resp.read())["items"][0]["metadata"]["name"] == "sandbox-node-1"
    assert sandbox.proc.returncode == 0, sandbox.err
    banner, _, logged = sandbox.err.partition("WARNING: the sandbox at")
    assert "!! WARNING: --allow-anonymous-remote-admin" in banner
    assert "is ADMIN (system:masters)" in banner
    assert f"http://0.0.0.0:{port} gives admin (system:masters)" in logged  # the log line


@pytest.mark.parametrize("args", [
    ["--listen", "127.0.0.1:0"],
    ["--listen", "localhost:0"],
    ["--listen", "[::1]:0"],
    ["--listen", "0.0.0.0:0", "--tls"],  # anonymous callers are system:anonymous under TLS
])
def test_loopback_and_tls_stay_silent(args: list[str]) -> None:
    with SandboxProcess(*args, "--no-traffic", "--no-workloads", "--nodes", "1") as sandbox:
        assert "ready" in sandbox.line, sandbox.line
    assert sandbox.proc.returncode == 0, sandbox.err
    assert "WARNING" not in sandbox.err
    assert "anonymous" not in sandbox.err
