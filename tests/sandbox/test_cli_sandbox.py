"""`lbctl sandbox` as a process: the design's contract (ready line, kubeconfig, /version,
nodes, clean exit on SIGTERM), and clear errors for bad flags and files."""

from __future__ import annotations

import signal
import subprocess
import sys
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
