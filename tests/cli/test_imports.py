"""The production controller loads only what it runs: no sandbox, emulator, demo or test library.

`lbctl run` is started for real (a subprocess against the session's sandbox, `-X importtime` listing
every module it imports) and stopped once `/readyz` answers; the list must hold the controller, the
configured provider and the Kubernetes client (so the run got that far) and nothing of
`lbctl.sandbox`, `lbctl.emulators`, `lbctl.demo`, moto or jsonpatch. `import lbctl.cli` (what `lbctl
--help` pays) loads click and the command modules only.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lbctl.sandbox.app import Sandbox

pytestmark = pytest.mark.integration
NEVER_IN_THE_CONTROLLER = ("lbctl.sandbox", "lbctl.emulators", "lbctl.demo", "moto", "jsonpatch",
                           "boto3")
# kubernetes-validate is not listed: the official client's `kubernetes.dynamic` imports it
# whenever it is installed (it is, in this test venv: the sandbox extra); the controller's
# image installs no sandbox extra, so there it is absent.


def imported(stderr: str) -> list[str]:
    return re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", stderr, re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_lbctl_run_loads_no_sandbox_or_emulator(sandbox: Sandbox, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("clusterName: imports\nprovider: baremetal\nbaremetal:\n  pools: "
                      "[{name: default, addresses: ['127.0.100.0/24']}]\n")
    port = free_port()
    err = tmp_path / "stderr"
    with err.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "lbctl", "run", "--kubeconfig",
             str(sandbox.options.kubeconfig), "--config", str(config), "--leader-elect=false",
             "--metrics-bind", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=sink)
        ready = False
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline and proc.poll() is None and not ready:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz",
                                                timeout=2) as answer:
                        ready = answer.status == 200
                except OSError:
                    time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
    modules = imported(err.read_text())
    assert ready, err.read_text()[-3000:]
    assert code == 0
    for needed in ("lbctl.controller.runner", "lbctl.controller.controller",
                   "providers.baremetal.provider", "lbctl.kube.informer", "kubernetes"):
        assert needed in modules, needed
    loaded = sorted(m for m in modules if m.split(".")[0] in NEVER_IN_THE_CONTROLLER
                    or m.startswith(NEVER_IN_THE_CONTROLLER))
    assert loaded == []


def test_importing_the_cli_loads_click_and_the_command_modules_only() -> None:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import lbctl.cli"],
                         capture_output=True, text=True, timeout=60, check=True)
    modules = imported(out.stderr)
    ours = sorted(m for m in modules if m.startswith(("lbctl", "providers")))
    assert "click" in modules
    assert ours == ["lbctl", "lbctl.cli", "lbctl.cli.balancer", "lbctl.cli.bgp_status",
                    "lbctl.cli.controller",
                    "lbctl.cli.demo", "lbctl.cli.emulator", "lbctl.cli.options",
                    "lbctl.cli.root", "lbctl.cli.sandbox", "lbctl.cli.status"]
    heavy = [m for m in modules if m.split(".")[0] in ("kubernetes", "pydantic", "aiohttp",
                                                       "yaml", "boto3", "moto")]
    assert heavy == []


@pytest.mark.parametrize(("argv", "missing"), [
    (["sandbox", "--listen", "127.0.0.1:0"], "kubernetes_validate"),
    (["demo"], "jsonpatch"),
    (["emulator", "aws", "--listen", "127.0.0.1:0"], "moto"),
])
def test_commands_of_the_sandbox_extra_name_it_when_it_is_missing(argv: list[str],
                                                                  missing: str) -> None:
    """As on the controller's image, which installs no `sandbox` extra (the module is made
    unimportable in the child): a message naming the extra, exit 1, no traceback."""
    code = (f"import sys; sys.modules[{missing!r}] = None; from lbctl.cli import main; "
            f"main({argv!r})")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 1, out.stderr
    assert "needs the `sandbox` extra" in out.stderr and "lbctl[sandbox]" in out.stderr
    assert "Traceback" not in out.stderr
