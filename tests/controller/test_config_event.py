"""A refused config reload keeps the last good config and says why on the ConfigMap."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from lbctl.controller.metrics import Metrics
from lbctl.controller.runner import ConfigHolder, _config_event
from lbctl.kube import Kube
from lbctl.sandbox.app import Sandbox
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def test_bad_reload_keeps_last_good_and_warns(ctl_sandbox: Sandbox, core_api: client.CoreV1Api,
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    core_api.create_namespaced_config_map("kube-system", {"metadata": {"name": "lbctl"}})
    monkeypatch.setenv("LBCTL_CONFIGMAP", "kube-system/lbctl")
    path = tmp_path / "config.yaml"
    path.write_text("provider: fake\nloadBalancerClasses: [lbctl.io/a]\n")
    metrics = Metrics()
    kube = Kube.connect(str(ctl_sandbox.options.kubeconfig))
    holder = ConfigHolder(path, metrics, _config_event(kube))
    path.write_text("provider: fake\nloadBalancerClasses: [lbctl.io/a, lbctl.io/b]\n"
                    "handleClasslessServices: false\n")
    assert holder.reload()
    assert holder().load_balancer_classes == ("lbctl.io/a", "lbctl.io/b")
    path.write_text("provider: fake\nmeltdown: {maxRemovedFraction: 7}\n# longer file\n")
    assert not holder.reload()
    assert holder().load_balancer_classes == ("lbctl.io/a", "lbctl.io/b")
    assert b"lbctl_config_reload_errors_total 1.0" in metrics.render()
    events = wait_for(lambda: core_api.list_namespaced_event(
        "kube-system", field_selector="involvedObject.name=lbctl").items, what="event")
    assert events[0].type == "Warning" and events[0].reason == "InvalidConfig"
    assert "meltdown.maxRemovedFraction" in events[0].message
    kube.close()
