"""`lbctl emulator gcp` as a process: the ready line, the nodes file the sandbox loads, the config
`lbctl run` parses, the world behind the URL (read with the SDK), clean exits on SIGTERM and
SIGINT, and a taken port or a bad zone refused with exit 1.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lbctl.controller.config import parse_config
from lbctl.sandbox.nodes import from_file

from .. import cli
from .conftest import Sdk

pytestmark = pytest.mark.integration


def start(*args: str) -> tuple[subprocess.Popen[str], str]:
    return cli.start("gcp", *args)


def test_the_command_seeds_writes_its_files_and_stops(tmp_path: Path, sdk: Sdk) -> None:
    nodes_file, config_out = tmp_path / "nodes.yaml", tmp_path / "config.yaml"
    proc, line = start("--listen", "127.0.0.1:0", "--project", "demo-project", "--region",
                       "us-west1", "--zones", "a,c", "--cluster", "demo", "--nodes", "3",
                       "--nodes-file", str(nodes_file), "--config-out", str(config_out))
    try:
        match = re.search(r"gcp emulator ready at (http://127\.0\.0\.1:\d+) ", line)
        assert match, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr
                              else "")
        endpoint = match.group(1)
        assert f"nodes-file={nodes_file}" in line and f"config={config_out}" in line

        specs = from_file(nodes_file)
        assert [(s.name, s.provider_id) for s in specs] == [
            ("demo-node-1", "gce://demo-project/us-west1-a/demo-node-1"),
            ("demo-node-2", "gce://demo-project/us-west1-c/demo-node-2"),
            ("demo-node-3", "gce://demo-project/us-west1-a/demo-node-3")]
        assert not any(s.simulate for s in specs)
        assert specs[0].labels["topology.kubernetes.io/zone"] == "us-west1-a"

        config = parse_config(config_out.read_text())
        assert (config.provider, config.cluster_name) == ("gcp", "demo")
        assert config.gcp == {"project": "demo-project", "region": "us-west1",
                              "network": "default", "subnetwork": "default",
                              "endpoint": endpoint}

        instances = sdk.compute.InstancesClient(
            client_options=sdk.options(api_endpoint=endpoint), credentials=sdk.credentials,
            transport="rest")
        found = {i.name: i for i in instances.list(project="demo-project", zone="us-west1-a")}
        assert sorted(found) == ["demo-node-1", "demo-node-3"]
        assert list(found["demo-node-1"].tags.items) == ["demo-node"]
        assert found["demo-node-1"].network_interfaces[0].network_i_p == specs[0].internal_ip
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "gcp emulator stopped" in out


def test_no_nodes_and_sigint() -> None:
    proc, line = start("--listen", "127.0.0.1:0", "--nodes", "0")
    try:
        assert "ready at http://127.0.0.1:" in line and "0 nodes" in line, line
        assert "emulated-project, us-central1: us-central1-a, us-central1-b" in line
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_a_taken_port_and_a_bad_zone_exit_1() -> None:
    cli.assert_a_taken_port_exits_1("gcp")
    bad = subprocess.run([sys.executable, "-m", "lbctl", "emulator", "gcp", "--zones",
                          "europe-west1-b"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert bad.returncode == 1 and "not a zone of us-central1" in bad.stderr, bad.stderr
    flag = subprocess.run([sys.executable, "-m", "lbctl", "emulator", "gcp", "--listen", "x"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert flag.returncode == 2 and "--listen" in flag.stderr, flag.stderr
