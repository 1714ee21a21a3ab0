"""`lbctl emulator azure` as a process: the ready line, the nodes file the sandbox loads, the
config `lbctl run` parses, the world behind the URL (read with azure-mgmt-network), a clean
exit on SIGTERM, and a taken port refused with exit 1."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from lbctl.controller.config import parse_config
from lbctl.emulators.azure.client import network_client
from lbctl.sandbox.nodes import from_file

from .. import cli
from .conftest import NetworkManagementClient

pytestmark = pytest.mark.integration
SUB = "11111111-2222-3333-4444-555555555555"


def test_the_command_seeds_writes_its_files_and_stops(tmp_path: Path) -> None:
    nodes_file, config_out = tmp_path / "nodes.yaml", tmp_path / "config.yaml"
    proc, line = cli.start(
        "azure", "--listen", "127.0.0.1:0", "--subscription", SUB, "--resource-group",
        "demo-rg", "--location", "westeurope", "--cluster", "demo", "--nodes", "2",
        "--nodes-file", str(nodes_file), "--config-out", str(config_out), "--operation-delay",
        "0")
    try:
        match = re.search(r"azure emulator ready at (http://127\.0\.0\.1:\d+) ", line)
        assert match, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr
                              else "")
        endpoint = match.group(1)
        assert f"nodes-file={nodes_file}" in line and f"config={config_out}" in line

        specs = from_file(nodes_file)
        vm = f"azure:///subscriptions/{SUB}/resourceGroups/demo-rg/providers/Microsoft.Compute"
        assert [(s.name, s.provider_id) for s in specs] == [
            ("demo-node-1", f"{vm}/virtualMachines/demo-node-1"),
            ("demo-node-2", f"{vm}/virtualMachines/demo-node-2")]
        assert not any(s.simulate for s in specs)
        assert specs[0].internal_ip == "10.224.0.4"

        config = parse_config(config_out.read_text())
        assert (config.provider, config.cluster_name) == ("azure", "demo")
        assert config.azure == {"subscriptionId": SUB, "resourceGroup": "demo-rg",
                                "location": "westeurope", "vnetName": "demo-vnet",
                                "subnetName": "demo-nodes", "securityGroupName": "demo-nsg",
                                "endpoint": endpoint}

        net = network_client(NetworkManagementClient, endpoint, SUB)
        vnet = net.virtual_networks.get("demo-rg", "demo-vnet")
        assert vnet.location == "westeurope"
        assert [s.name for s in vnet.subnets] == ["demo-nodes"]
        assert net.network_security_groups.get("demo-rg", "demo-nsg").security_rules == []
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "azure emulator stopped" in out


def test_a_taken_port_exits_1() -> None:
    cli.assert_a_taken_port_exits_1("azure")
