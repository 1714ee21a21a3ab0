"""The chart's observability: ServiceMonitors, the PrometheusRule and the Grafana dashboard.

Rendered with helm (off by default, on with metrics.serviceMonitor / prometheusRule /
dashboard), checked as objects (selectors that match the Services, TLS to the daemons, every
alert with `for`, a severity and a runbook-style description), and, above all, every PromQL
expression (the alerts', the dashboard's queries and variables) parsed by a real PromQL parser
(promql-parser, the Rust parser's bindings: unknown functions, wrong argument types and
unbalanced brackets are errors) and every series it names checked against what lbctl exports:
the /metrics of a running `lbctl run` (against the sandbox, fake provider) and of a running
balancer daemon with a balancer, workers and its API, of a daemon in BGP mode (a `bgp:` section
whose peer never answers: its sessions are down, its VIP not announced, and every BGP series is
there), and of a daemon run with L2 announcements inside a network namespace (root only). A
broken expression and an unknown name are shown to be caught, so the checker is not a no-op.
Prometheus's own promtool (Debian's package, extracted into .cache) checks the rule file,
annotation templates included, and runs rule unit tests: every alert fires on synthetic series
once its `for` has passed, with the labels routing needs, and none fires on a healthy set.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # via kubernetes-validate
import promql_parser
import pytest
import yaml
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from lbctl.balancer.daemon import DaemonThread, ServeOptions
from lbctl.controller.config import parse_config
from lbctl.controller.runner import without_address
from lbctl.sandbox.app import Sandbox, SandboxOptions, SandboxThread
from lbctl.sandbox.nodes import simulated
from lbctl.sandbox.openapi.schema import validate_full
from providers.cluster import Ingress, ServiceView
from tests.conftest import client_for, unavailable, wait_for
from tests.helpers import named_backend

from .conftest import CHART, DEPLOY, NAMESPACE, PROVIDERS, RELEASE, Helm, Manifests, values_file

pytestmark = pytest.mark.integration

ROOT = DEPLOY.parent
DASHBOARD = DEPLOY / "grafana" / "lbctl.json"
CHART_DASHBOARD = CHART / "dashboards" / "lbctl.json"
GEN_DASHBOARD = DEPLOY / "grafana" / "gen_dashboard.py"
ON = ["metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true",
      "metrics.dashboard.enabled=true"]
INSTANCES = ["balancer.instances[0].name=lb-1",
             "balancer.instances[0].url=https://10.0.0.11:9450",
             "balancer.instances[1].name=lb-2",
             "balancer.instances[1].url=https://lb-2.example.net:9450"]
MONITORING_KINDS = ("ServiceMonitor", "PrometheusRule")
# Labels Prometheus (and the Prometheus Operator's service discovery) puts on every target.
TARGET_LABELS = {"job", "instance", "namespace", "service", "pod", "container", "endpoint"}
# Grafana's built-in variables that stand where PromQL wants a duration.
GRAFANA_DURATIONS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
TOKEN = "observability-test-token"


# -- rendering ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def everything(helm: Helm) -> Manifests:
    """Bare metal with two listed daemons (TLS) and every monitoring feature on."""
    return helm.template(values=[values_file("baremetal")], sets=[*ON, *INSTANCES])


def _rule(manifests: Manifests) -> dict[str, Any]:
    return manifests.one("PrometheusRule")


def _alerts(manifests: Manifests) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in _rule(manifests)["spec"]["groups"] for r in g["rules"]}


def _monitor(manifests: Manifests, name: str) -> dict[str, Any]:
    found = [d for d in manifests.all("ServiceMonitor") if d["metadata"]["name"] == name]
    assert len(found) == 1, [d["metadata"]["name"] for d in manifests.all("ServiceMonitor")]
    return found[0]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_off_by_default(helm: Helm, provider: str) -> None:
    manifests = helm.template(values=[values_file(provider)])
    assert not set(MONITORING_KINDS) & set(manifests.kinds())
    assert [d["metadata"]["name"] for d in manifests.all("ConfigMap")] == [RELEASE]


def test_everything_on_renders_monitors_rule_and_dashboard(everything: Manifests) -> None:
    kinds = everything.kinds()
    assert kinds.count("ServiceMonitor") == 2 and kinds.count("PrometheusRule") == 1
    # the controller's ServiceMonitor selects its metrics Service, by the port's name
    service = next(s for s in everything.all("Service")
                   if s["metadata"]["name"] == f"{RELEASE}-metrics")
    monitor = _monitor(everything, RELEASE)
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items())
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics",
                                             "scheme": "http", "interval": "30s",
                                             "scrapeTimeout": "10s"}]
    assert {p["name"] for p in service["spec"]["ports"]} == {"metrics"}
    # no other Service matches it (the daemons' headless Service carries another name)
    assert [s["metadata"]["name"] for s in everything.all("Service")
            if monitor["spec"]["selector"]["matchLabels"].items()
            <= s["metadata"]["labels"].items()] == [f"{RELEASE}-metrics"]

    # the daemons': their headless Service, over HTTPS verified with the CA of their TLS
    # Secret, by the first instance's host (every daemon serves the one certificate)
    headless = next(s for s in everything.all("Service")
                    if s["metadata"]["name"] == f"{RELEASE}-balancer")
    daemons = _monitor(everything, f"{RELEASE}-balancer")
    assert daemons["spec"]["selector"]["matchLabels"].items() <= (
        headless["metadata"]["labels"].items())
    assert daemons["spec"]["selector"]["matchLabels"] == (
        everything.one("DaemonSet")["spec"]["selector"]["matchLabels"])
    assert headless["spec"]["ports"][0]["name"] == "metrics"
    endpoint = daemons["spec"]["endpoints"][0]
    assert endpoint["port"] == "metrics" and endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {"ca": {"secret": {"name": f"{RELEASE}-balancer-tls",
                                                       "key": "ca.crt"}},
                                     "serverName": "10.0.0.11"}
    tls = next(s for s in everything.all("Secret")
               if s["metadata"]["name"] == f"{RELEASE}-balancer-tls")
    assert "ca.crt" in tls["data"]

    # both groups of alerts, labelled as the chart's monitoring objects
    rule = _rule(everything)
    assert rule["metadata"]["namespace"] == NAMESPACE
    assert rule["metadata"]["labels"]["app.kubernetes.io/component"] == "monitoring"
    assert [g["name"] for g in rule["spec"]["groups"]] == ["lbctl-controller", "lbctl-balancer"]

    # the dashboard: the file under deploy/grafana, for Grafana's sidecar
    board = next(c for c in everything.all("ConfigMap")
                 if c["metadata"]["name"] == f"{RELEASE}-dashboard")
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["lbctl.json"]) == json.loads(DASHBOARD.read_text())


def test_cloud_providers_get_the_controller_only(helm: Helm) -> None:
    manifests = helm.template(values=[values_file("aws")], sets=ON)
    assert [d["metadata"]["name"] for d in manifests.all("ServiceMonitor")] == [RELEASE]
    assert [g["name"] for g in _rule(manifests)["spec"]["groups"]] == ["lbctl-controller"]


def test_daemon_scrape_follows_tls_and_server_name(helm: Helm) -> None:
    plain = helm.template(values=[values_file("baremetal")],
                          sets=[*ON, "balancer.tls.enabled=false",
                                "balancer.instances[0].name=lb-1",
                                "balancer.instances[0].url=http://10.0.0.11:9450"])
    endpoint = _monitor(plain, f"{RELEASE}-balancer")["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "http" and "tlsConfig" not in endpoint
    # no instance listed (static daemons): the node's address is verified, unless named here
    bare = helm.template(values=[values_file("baremetal")], sets=ON)
    endpoint = _monitor(bare, f"{RELEASE}-balancer")["spec"]["endpoints"][0]
    assert "serverName" not in endpoint["tlsConfig"]
    named = helm.template(values=[values_file("baremetal")],
                          sets=[*ON, *INSTANCES, "balancer.tls.existingSecret=my-cert",
                                "metrics.serviceMonitor.balancerServerName=lb.example.net"])
    endpoint = _monitor(named, f"{RELEASE}-balancer")["spec"]["endpoints"][0]
    assert endpoint["tlsConfig"] == {"ca": {"secret": {"name": "my-cert", "key": "ca.crt"}},
                                     "serverName": "lb.example.net"}


def test_labels_relabelings_and_alert_choices_reach_the_objects(helm: Helm) -> None:
    manifests = helm.template(values=[values_file("baremetal")], sets=[
        *ON, "metrics.serviceMonitor.labels.release=kube-prometheus-stack",
        "metrics.serviceMonitor.interval=15s",
        "metrics.serviceMonitor.metricRelabelings[0].action=drop",
        "metrics.serviceMonitor.metricRelabelings[0].sourceLabels[0]=__name__",
        "metrics.serviceMonitor.metricRelabelings[0].regex=lbctl_l2_.*",
        "metrics.prometheusRule.labels.release=kube-prometheus-stack",
        "metrics.prometheusRule.alertLabels.team=network",
        "metrics.prometheusRule.alertLabels.severity=page",
        "metrics.prometheusRule.disabledAlerts={LbctlL2Conflict,LbctlMultipleLeaders}",
        "metrics.prometheusRule.withoutAddressFor=30m",
        "metrics.dashboard.namespace=monitoring",
        "metrics.dashboard.annotations.grafana_folder=Networking"])
    for monitor in manifests.all("ServiceMonitor"):
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        endpoint = monitor["spec"]["endpoints"][0]
        assert endpoint["interval"] == "15s"
        assert endpoint["metricRelabelings"] == [
            {"action": "drop", "sourceLabels": ["__name__"], "regex": "lbctl_l2_.*"}]
    assert _rule(manifests)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = _alerts(manifests)
    assert "LbctlL2Conflict" not in alerts and "LbctlMultipleLeaders" not in alerts
    assert "LbctlBalancerDown" in alerts
    for rule in alerts.values():  # added to every alert; an alert's own severity wins
        assert rule["labels"]["team"] == "network"
        assert rule["labels"]["severity"] in ("critical", "warning")
    assert alerts["LbctlServicesWithoutAddress"]["for"] == "30m"
    assert "30m" in alerts["LbctlServicesWithoutAddress"]["annotations"]["description"]
    board = next(c for c in manifests.all("ConfigMap")
                 if c["metadata"]["name"] == f"{RELEASE}-dashboard")
    assert board["metadata"]["namespace"] == "monitoring"
    assert board["metadata"]["annotations"] == {"grafana_folder": "Networking"}


def test_service_monitor_needs_the_metrics_service(helm: Helm) -> None:
    done = helm.run(*helm.template_args(sets=[*ON, "metrics.service.enabled=false"]),
                    check=False)
    assert done.returncode != 0
    assert "metrics.serviceMonitor.enabled needs metrics.service.enabled" in done.stderr


@pytest.mark.parametrize("args", [["metrics.serviceMonitor.interval=30 seconds"],
                                  ["metrics.serviceMonitor.enable=true"],
                                  ["metrics.prometheusRule.disabledAlerts[0]=up"],
                                  ["metrics.dashboard.labels.grafana_dashboard=1"]])
def test_values_typos_are_refused(helm: Helm, args: list[str]) -> None:
    done = helm.run(*helm.template_args(sets=args), check=False)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr, done.stderr


def test_lint_strict_with_everything_on(helm: Helm, tmp_path: Path) -> None:
    values = tmp_path / "on.yaml"
    values.write_text(yaml.safe_dump({
        "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
                    "dashboard": {"enabled": True}},
        "balancer": {"instances": [{"name": "lb-1", "url": "https://10.0.0.11:9450"}]}}))
    done = helm.run("lint", "--strict", str(CHART), "-f", str(values_file("baremetal")),
                    "-f", str(values))
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout
    assert "[ERROR]" not in done.stdout and "[WARNING]" not in done.stdout, done.stdout


# The fields of monitoring.coreos.com/v1 the chart writes, each as the Prometheus Operator's
# API types define it (ServiceMonitorSpec, Endpoint, SafeTLSConfig, RuleGroup, Rule); any other
# key is refused, so a misspelt field fails here instead of being pruned by the API server.
DURATION = {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?"
                                         "(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
META = {"type": "object", "required": ["name", "namespace"], "properties": {
    "name": {"type": "string"}, "namespace": {"type": "string"}, "labels": STRINGS,
    "annotations": STRINGS}}


def _strict(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": required,
            "properties": properties}


SECRET_KEY = _strict(["name", "key"], name={"type": "string"}, key={"type": "string"})
RELABELINGS = {"type": "array", "items": {"type": "object"}}
SERVICE_MONITOR = _strict(
    ["apiVersion", "kind", "metadata", "spec"], apiVersion={"const": "monitoring.coreos.com/v1"},
    kind={"const": "ServiceMonitor"}, metadata=META,
    spec=_strict(
        ["selector", "endpoints"],
        namespaceSelector=_strict([], matchNames={"type": "array", "items": {"type": "string"}},
                                  any={"type": "boolean"}),
        selector=_strict(["matchLabels"], matchLabels=STRINGS),
        endpoints={"type": "array", "minItems": 1, "items": _strict(
            ["port"], port={"type": "string"}, path={"type": "string"},
            scheme={"enum": ["http", "https"]}, interval=DURATION, scrapeTimeout=DURATION,
            relabelings=RELABELINGS, metricRelabelings=RELABELINGS,
            tlsConfig=_strict([], ca=_strict([], secret=SECRET_KEY),
                              serverName={"type": "string"},
                              insecureSkipVerify={"type": "boolean"}))}))
PROMETHEUS_RULE = _strict(
    ["apiVersion", "kind", "metadata", "spec"], apiVersion={"const": "monitoring.coreos.com/v1"},
    kind={"const": "PrometheusRule"}, metadata=META,
    spec=_strict(["groups"], groups={"type": "array", "minItems": 1, "items": _strict(
        ["name", "rules"], name={"type": "string", "minLength": 1}, interval=DURATION,
        rules={"type": "array", "minItems": 1, "items": _strict(
            ["alert", "expr", "for", "labels", "annotations"], alert={"type": "string"},
            expr={"type": "string"}, labels=STRINGS, annotations=STRINGS,
            **{"for": DURATION, "keep_firing_for": DURATION})})}))


def test_objects_match_the_operator_and_kubernetes_schemas(everything: Manifests) -> None:
    for doc in everything.docs:
        if doc["kind"] == "ServiceMonitor":
            jsonschema.validate(doc, SERVICE_MONITOR)
        elif doc["kind"] == "PrometheusRule":
            jsonschema.validate(doc, PROMETHEUS_RULE)
        else:  # the dashboard's ConfigMap and everything beside it
            assert validate_full(doc) == [], (doc["kind"], doc["metadata"]["name"])
    names = [r["alert"] for g in _rule(everything)["spec"]["groups"] for r in g["rules"]]
    assert len(names) == len(set(names))
    # the schema refuses what it should (a misspelt field)
    bad = json.loads(json.dumps(_monitor(everything, RELEASE)))
    bad["spec"]["endpoints"][0]["scrapeInterval"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SERVICE_MONITOR)


def test_every_alert_says_how_bad_and_what_to_check(everything: Manifests) -> None:
    alerts = _alerts(everything)
    assert {"LbctlControllerDown", "LbctlNoLeader", "LbctlSyncErrors",
            "LbctlServicesWithoutAddress", "LbctlConfigReloadRefused",
            "LbctlBalancerNoHealthyTarget", "LbctlL2Conflict", "LbctlL2PeersUnheard",
            "LbctlBgpSessionDown", "LbctlBgpNothingAnnounced",
            "LbctlBgpVipsNotAnnounced"} <= set(alerts)
    for name, rule in alerts.items():
        assert re.fullmatch(r"Lbctl[A-Za-z0-9]+", name)
        assert rule["for"] not in ("", "0", "0s"), name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description"}, name
        assert "\n" not in annotations["summary"], name
        assert "What to check:" in annotations["description"], name
        # Prometheus's templating survived Helm's: {{ $labels.x }} / {{ $value }} only
        for text in annotations.values():
            for expansion in re.findall(r"{{(.*?)}}", text):
                assert re.fullmatch(r" \$(labels\.[a-z_]+|value)( \| humanize\w*)? ",
                                    expansion), (name, expansion)


def test_dashboard_is_generated_and_the_chart_ships_the_same_file() -> None:
    done = subprocess.run([sys.executable, str(GEN_DASHBOARD), "--check"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert CHART_DASHBOARD.read_bytes() == DASHBOARD.read_bytes()


def test_dashboard_is_a_grafana_model() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "lbctl" and board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cell = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cell & cells, f"{panel['title']} overlaps another panel"
        cells |= cell
        if panel["type"] == "row":
            continue
        assert panel["description"] and panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            # every query follows the dashboard's namespace filter
            assert 'namespace=~"$namespace"' in target["expr"], panel["title"]


# -- Prometheus's own checks: promtool ------------------------------------------------------
PROMTOOL = ROOT / ".cache" / "promtool" / "promtool"


def _promtool_runs(path: Path) -> bool:
    try:
        done = subprocess.run([str(path), "--version"], capture_output=True, timeout=30,
                              check=False)
    except OSError:
        return False
    return done.returncode == 0


def _fetch_promtool() -> str:
    """Extract promtool from Debian's prometheus package (never installed: no service, no
    user) into .cache/promtool; answer what went wrong, or ""."""
    PROMTOOL.parent.mkdir(parents=True, exist_ok=True)
    with (PROMTOOL.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel workers: one fetch, the others wait
        if _promtool_runs(PROMTOOL):
            return ""
        with tempfile.TemporaryDirectory() as work:
            Path(work).chmod(0o755)  # apt's _apt user downloads into it

            def download() -> subprocess.CompletedProcess[str]:
                return subprocess.run(["apt-get", "download", "-qq", "prometheus"], cwd=work,
                                      capture_output=True, text=True, timeout=600,
                                      check=False)

            try:
                done = download()
                if done.returncode != 0:
                    subprocess.run(["apt-get", "update", "-qq"], capture_output=True,
                                   timeout=600, check=False)
                    done = download()
                if done.returncode != 0:
                    return f"apt-get download prometheus failed: {done.stderr.strip()[-500:]}"
                debs = list(Path(work).glob("prometheus_*.deb"))
                subprocess.run(["dpkg-deb", "-x", str(debs[0]), f"{work}/root"], check=True,
                               capture_output=True, timeout=300)
            except (OSError, IndexError, subprocess.SubprocessError) as exc:
                return str(exc)
            staged = PROMTOOL.with_name("promtool.tmp")
            shutil.copy2(Path(work) / "root" / "usr" / "bin" / "promtool", staged)
            staged.replace(PROMTOOL)
    return ""


@pytest.fixture(scope="session")
def promtool() -> Path:
    """Prometheus's promtool (Debian's package, extracted into .cache/promtool once): its own
    PromQL parser and rule checks, and rule unit tests on synthetic series."""
    problem = "" if _promtool_runs(PROMTOOL) else _fetch_promtool()
    if not _promtool_runs(PROMTOOL):
        unavailable(f"promtool is not available: {problem or 'extracted but does not run'}")
    return PROMTOOL


def _rules_file(manifests: Manifests, path: Path, annotations: bool = True) -> Path:
    """The PrometheusRule's groups as a Prometheus rule file."""
    groups = json.loads(json.dumps(_rule(manifests)["spec"]["groups"]))
    if not annotations:
        for group in groups:
            for rule in group["rules"]:
                rule.pop("annotations", None)
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def test_promtool_checks_the_rules(promtool: Path, everything: Manifests,
                                   tmp_path: Path) -> None:
    """Prometheus's own parser and checks, annotations' templates included."""
    rules = _rules_file(everything, tmp_path / "rules.yaml")
    done = subprocess.run([str(promtool), "check", "rules", str(rules)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_alerts(everything))} rules found" in done.stdout
    broken = rules.read_text().replace("> 0.5", "> > 0.5", 1)
    (tmp_path / "broken.yaml").write_text(broken)
    done = subprocess.run([str(promtool), "check", "rules", str(tmp_path / "broken.yaml")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0


CJ = {"job": f"{RELEASE}-metrics", "namespace": NAMESPACE}
"""The labels of the controller's series as the chart's ServiceMonitor makes them."""
BJ = {"job": f"{RELEASE}-balancer", "namespace": NAMESPACE}
NODE = "10.0.0.11:9450"
NODE2 = "10.0.0.12:9450"


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _fires(alert: str, before: str, after: str, labels: dict[str, str],
           severity: str) -> list[dict[str, Any]]:
    """Not yet at `before` (pending for its `for`), firing at `after` with `labels`."""
    return [{"eval_time": before, "alertname": alert, "exp_alerts": []},
            {"eval_time": after, "alertname": alert,
             "exp_alerts": [{"exp_labels": {**labels, "severity": severity}}]}]


def _healthy() -> list[dict[str, str]]:
    """Two controller replicas (one leading) and one daemon doing fine, with the errors that
    are no operator's problem: a Service's own bad input (reason done, PermanentError),
    provisioning polls (RetryAfter), write conflicts (api_409)."""
    return [
        _series("up", {**CJ, "instance": "10.1.0.5:8080"}, "1x40"),
        _series("up", {**CJ, "instance": "10.1.0.6:8080"}, "1x40"),
        _series("lbctl_leader", {**CJ, "instance": "10.1.0.5:8080"}, "1x40"),
        _series("lbctl_leader", {**CJ, "instance": "10.1.0.6:8080"}, "0x40"),
        _series("lbctl_syncs_total", {**CJ, "instance": "10.1.0.5:8080", "outcome": "done"},
                "0+5x40"),
        _series("lbctl_syncs_total", {**CJ, "instance": "10.1.0.5:8080", "outcome": "backoff"},
                "0+1x40"),
        *[_series("lbctl_sync_errors_total", {**CJ, "instance": "10.1.0.5:8080",
                                              "reason": reason}, "0+1x40")
          for reason in ("done", "PermanentError", "RetryAfter", "api_409", "api_404")],
        _series("lbctl_services_without_address", {**CJ, "instance": "10.1.0.5:8080"},
                "0x40"),
        _series("lbctl_config_last_reload_successful", {**CJ, "instance": "10.1.0.5:8080"},
                "1x40"),
        _series("up", {**BJ, "instance": NODE}, "1x40"),
        *[_series("lbctl_balancer_target_up", {**BJ, "instance": NODE, "balancer": "web",
                                               "protocol": "TCP", "port": "80",
                                               "target": target}, up)
          for target, up in (("10.0.1.1:30080", "1x40"), ("10.0.1.2:30080", "0x40"))],
        _series("lbctl_balancer_degraded", {**BJ, "instance": NODE}, "0x40"),
        _series("lbctl_l2_conflicted_vips", {**BJ, "instance": NODE}, "0x40"),
        *[_series("lbctl_l2_alive_instances", {**BJ, "instance": node}, "2x40")
          for node in (NODE, NODE2)],
        # BGP: both sessions up, the VIPs announced; a second router's session flapped once
        *[_series("lbctl_bgp_session_up", {**BJ, "instance": node, "peer": peer}, "1x40")
          for node in (NODE, NODE2) for peer in ("tor-a", "tor-b")],
        _series("lbctl_bgp_session_up", {**BJ, "instance": NODE, "peer": "tor-c"},
                "1 0 1x38"),
        *[_series("lbctl_bgp_announced_prefixes", {**BJ, "instance": node, "peer": "tor-a"},
                  "3x40") for node in (NODE, NODE2)],
        *[_series("lbctl_bgp_vips", {**BJ, "instance": node, "announced": announced}, value)
          for node in (NODE, NODE2) for announced, value in (("true", "3x40"),
                                                             ("false", "0x40"))],
        # a VIP held down for a minute after its targets came back: no alert
        _series("lbctl_bgp_vips", {**BJ, "instance": "10.0.0.13:9450", "announced": "false"},
                "0 1 0x38"),
        _series("lbctl_balancer_worker_restarts_total", {**BJ, "instance": NODE}, "1x40"),
        _series("lbctl_balancer_api_refused_connections_total", {**BJ, "instance": NODE},
                "3x40"),
    ]


def _firing_cases() -> list[dict[str, Any]]:
    """One promtool test group per alert: the series that should fire it, and when."""
    a, b = {**CJ, "instance": "10.1.0.5:8080"}, {**CJ, "instance": "10.1.0.6:8080"}
    node = {**BJ, "instance": NODE}
    listener = {**node, "balancer": "web", "protocol": "TCP", "port": "80"}
    cases: list[tuple[str, list[dict[str, str]], list[dict[str, Any]]]] = [
        ("LbctlControllerDown", [_series("up", a, "0x40")],
         _fires("LbctlControllerDown", "4m", "6m", CJ, "critical")),
        ("LbctlControllerDown", [_series("lbctl_leader", {"job": "elsewhere"}, "1x40")],
         _fires("LbctlControllerDown", "4m", "6m", CJ, "critical")),  # never scraped at all
        ("LbctlNoLeader", [_series("lbctl_leader", a, "0x40"),
                           _series("lbctl_leader", b, "0x40")],
         _fires("LbctlNoLeader", "4m", "6m", CJ, "critical")),
        ("LbctlMultipleLeaders", [_series("lbctl_leader", a, "1x40"),
                                  _series("lbctl_leader", b, "1x40")],
         _fires("LbctlMultipleLeaders", "4m", "6m", CJ, "warning")),
        ("LbctlSyncErrors", [_series("lbctl_sync_errors_total", {**a, "reason": "backoff"},
                                     "0+1x40")],
         _fires("LbctlSyncErrors", "10m", "20m", {**CJ, "reason": "backoff"}, "warning")),
        ("LbctlSyncErrors", [_series("lbctl_sync_errors_total", {**a, "reason": "api_500"},
                                     "0+1x40")],
         _fires("LbctlSyncErrors", "10m", "20m", {**CJ, "reason": "api_500"}, "warning")),
        ("LbctlSyncsMostlyFailing",
         [_series("lbctl_syncs_total", {**a, "outcome": "backoff"}, "0+3x40"),
          _series("lbctl_syncs_total", {**a, "outcome": "done"}, "0+1x40")],
         _fires("LbctlSyncsMostlyFailing", "10m", "20m", CJ, "critical")),
        ("LbctlServicesWithoutAddress",
         [_series("lbctl_services_without_address", a, "2x40"),
          _series("lbctl_services_without_address", b, "2x40")],
         _fires("LbctlServicesWithoutAddress", "10m", "20m", CJ, "warning")),
        ("LbctlConfigReloadRefused",
         [_series("lbctl_config_last_reload_successful", a, "1x40"),
          _series("lbctl_config_last_reload_successful", b, "0x40")],
         _fires("LbctlConfigReloadRefused", "4m", "6m", CJ, "warning")),
        ("LbctlBalancersAllDown", [_series("up", node, "0x40")],
         _fires("LbctlBalancersAllDown", "4m", "6m", BJ, "critical")),
        ("LbctlBalancerDown", [_series("up", node, "0x40"),
                               _series("up", {**BJ, "instance": "10.0.0.12:9450"}, "1x40")],
         _fires("LbctlBalancerDown", "4m", "6m", node, "warning")),
        ("LbctlBalancerNoHealthyTarget",
         [_series("lbctl_balancer_target_up", {**listener, "target": "10.0.1.1:30080"},
                  "1 0x40"),
          _series("lbctl_balancer_target_up", {**listener, "target": "10.0.1.2:30080"},
                  "0x40")],
         _fires("LbctlBalancerNoHealthyTarget", "5m", "7m", listener, "critical")),
        ("LbctlBalancerDegraded", [_series("lbctl_balancer_degraded", node, "1x40")],
         _fires("LbctlBalancerDegraded", "9m", "11m", node, "warning")),
        ("LbctlL2Conflict", [_series("lbctl_l2_conflicted_vips", node, "1x40")],
         _fires("LbctlL2Conflict", "0m", "2m", node, "critical")),
        ("LbctlL2PeersUnheard",
         [_series("lbctl_l2_alive_instances", node, "1x40"),
          _series("lbctl_l2_alive_instances", {**BJ, "instance": NODE2}, "1x40")],
         [{"eval_time": "1m", "alertname": "LbctlL2PeersUnheard", "exp_alerts": []},
          {"eval_time": "3m", "alertname": "LbctlL2PeersUnheard", "exp_alerts": [
              {"exp_labels": {**node, "severity": "warning"}},
              {"exp_labels": {**BJ, "instance": NODE2, "severity": "warning"}}]}]),
        ("LbctlBgpSessionDown",
         [_series("lbctl_bgp_session_up", {**node, "peer": "tor-a"}, "1 0x40"),
          _series("lbctl_bgp_session_up", {**node, "peer": "tor-b"}, "1x40")],
         _fires("LbctlBgpSessionDown", "1m", "3m", {**node, "peer": "tor-a"}, "warning")),
        ("LbctlBgpNothingAnnounced",
         [_series("lbctl_bgp_announced_prefixes", {**node, "peer": "tor-a"}, "0x40"),
          _series("lbctl_bgp_announced_prefixes", {**BJ, "instance": NODE2, "peer": "tor-a"},
                  "0x40"),
          _series("lbctl_bgp_vips", {**node, "announced": "false"}, "2x40"),
          _series("lbctl_bgp_vips", {**node, "announced": "true"}, "0x40")],
         _fires("LbctlBgpNothingAnnounced", "1m", "3m", BJ, "critical")),
        ("LbctlBgpVipsNotAnnounced",
         [_series("lbctl_bgp_vips", {**node, "announced": "false"}, "2x40"),
          _series("lbctl_bgp_vips", {**node, "announced": "true"}, "1x40")],
         _fires("LbctlBgpVipsNotAnnounced", "1m", "3m", node, "warning")),
        ("LbctlBalancerWorkersRestarting",
         [_series("lbctl_balancer_worker_restarts_total", node, "0+1x40")],
         _fires("LbctlBalancerWorkersRestarting", "2m", "15m", node, "warning")),
        ("LbctlBalancerApiRefusing",
         [_series("lbctl_balancer_api_refused_connections_total", node, "0+1x40")],
         _fires("LbctlBalancerApiRefusing", "5m", "15m", node, "warning")),
    ]
    return [{"name": alert, "interval": "1m", "input_series": series,
             "alert_rule_test": tests} for alert, series, tests in cases]


def test_every_alert_fires_when_it_should_and_not_when_healthy(
        promtool: Path, everything: Manifests, tmp_path: Path) -> None:
    """promtool's rule unit tests on synthetic series: each alert fires once its condition has
    held for its `for`, with the labels routing needs, and none fires on a healthy set of
    series that includes the errors no operator can act on."""
    alerts = _alerts(everything)
    firing = _firing_cases()
    assert {g["name"] for g in firing} == set(alerts), "an alert without a test, or the reverse"
    healthy = {"name": "healthy", "interval": "1m", "input_series": _healthy(),
               "alert_rule_test": [{"eval_time": "30m", "alertname": name, "exp_alerts": []}
                                   for name in alerts]}
    rules = _rules_file(everything, tmp_path / "rules.yaml", annotations=False)
    spec = tmp_path / "tests.yaml"
    spec.write_text(yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "1m",
                                    "tests": [healthy, *firing]}, sort_keys=False))
    done = subprocess.run([str(promtool), "test", "rules", str(spec)], capture_output=True,
                          text=True, timeout=120, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


# -- the expressions ------------------------------------------------------------------------
@dataclass(frozen=True)
class Selector:
    """A series an expression reads: its metric name and the labels it matches on."""

    name: str
    labels: frozenset[str]


def selectors(expr: str) -> list[Selector]:
    """Parse `expr` (a PromQL parse error raises ValueError) and answer the series it reads."""
    found: list[Selector] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = node.matchers.matchers
            name = node.name or next((m.value for m in matchers if m.name == "__name__"), "")
            assert name, f"a selector without a metric name in {expr!r}"
            found.append(Selector(name, frozenset(m.name for m in matchers
                                                  if m.name != "__name__")))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def grafana_query(text: str) -> str:
    """A dashboard query as Prometheus would get it: Grafana's interval variables replaced.
    `label_values(SELECTOR, LABEL)` (a variable's query) is Grafana's, not PromQL: its
    selector is the expression."""
    for variable, value in GRAFANA_DURATIONS.items():
        text = text.replace(variable, value)
    call = re.fullmatch(r"label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)", text.strip())
    return call.group(1) if call else text


def dashboard_expressions(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expression) of every query and variable of the dashboard."""
    out = [(f"panel {p['title']!r}", grafana_query(t["expr"]))
           for p in board["panels"] for t in p.get("targets", [])]
    out += [(f"variable {v['name']}", grafana_query(v["query"]["query"]))
            for v in board["templating"]["list"] if v["type"] == "query"]
    return out


def rule_expressions(manifests: Manifests) -> list[tuple[str, str]]:
    return [(f"alert {r['alert']}", r["expr"])
            for g in _rule(manifests)["spec"]["groups"] for r in g["rules"]]


@dataclass
class Exported:
    """Series names a /metrics page shows, with the label names each carries."""

    labels: dict[str, set[str]] = field(default_factory=dict)

    def add(self, text: str) -> None:
        for family in text_string_to_metric_families(text):
            for name in _sample_names(family.name, family.type):
                self.labels.setdefault(name, set())
            for sample in family.samples:
                self.labels.setdefault(sample.name, set()).update(sample.labels)

    def problems(self, where: str, expr: str) -> list[str]:
        """What in `expr` is not exported (names, or label names no sample carries)."""
        out = []
        try:
            found = selectors(expr)
        except ValueError as exc:
            return [f"{where}: does not parse: {exc}: {expr}"]
        for sel in found:
            if sel.name == "up":  # Prometheus's own, on every target
                unknown = sel.labels - TARGET_LABELS
            elif sel.name not in self.labels:
                out.append(f"{where}: {sel.name} is not exported")
                continue
            else:
                unknown = sel.labels - TARGET_LABELS - self.labels[sel.name] - {"le"}
            if unknown:
                out.append(f"{where}: {sel.name} has no label {sorted(unknown)}")
        return out


def _sample_names(name: str, kind: str) -> list[str]:
    """The series a family exposes even before its first sample (a labelled metric no code
    path has touched yet shows only its HELP and TYPE)."""
    if kind == "counter":
        return [f"{name}_total", f"{name}_created"]
    if kind == "histogram":
        return [f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"]
    if kind == "summary":
        return [name, f"{name}_sum", f"{name}_count", f"{name}_created"]
    if kind == "info":
        return [f"{name}_info"]
    return [name]


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        text: str = resp.read().decode()
        return text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _command() -> list[str]:
    script = ROOT / ".venv" / "bin" / "lbctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lbctl"]


def _value(text: str, name: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return float(sample.value)
    return None


@dataclass
class RunningController:
    """`lbctl run` (fake provider, leader election on) against a sandbox."""

    box: Sandbox
    proc: subprocess.Popen[bytes]
    port: int
    config: Path
    log: Path

    def metrics(self) -> str:
        return _scrape(f"http://127.0.0.1:{self.port}/metrics")

    def value(self, name: str) -> float | None:
        try:
            return _value(self.metrics(), name)
        except OSError:
            return None


CONFIG = "provider: fake\nclusterName: observability\n"


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningController]:
    tmp = tmp_path_factory.mktemp("observability-controller")
    thread = SandboxThread(SandboxOptions(nodes=simulated(2), kubeconfig=tmp / "kc",
                                          bookmark_interval=0.5, workloads=False))
    box = thread.start()
    config = tmp / "config.yaml"
    config.write_text(CONFIG)
    log = tmp / "controller.log"
    port = _free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_command(), "run", "--kubeconfig", str(tmp / "kc"), "--config", str(config),
             "--leader-elect=true", "--metrics-bind", f"127.0.0.1:{port}",
             "--log-format", "text"],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "POD_NAMESPACE": "default"})
    running = RunningController(box, proc, port, config, log)
    try:
        api = client_for(box)
        core = client.CoreV1Api(api)
        for name, annotations in (("web", {}), ("broken", {"fake.lbctl.io/fail": "yes"})):
            core.create_namespaced_service("default", {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "annotations": annotations},
                "spec": {"type": "LoadBalancer", "selector": {"app": name},
                         "ports": [{"port": 80, "targetPort": 8080}]}})
        api.close()
        wait_for(lambda: running.value("lbctl_leader") == 1, 30, "the controller to lead")
        # both Services synced: one ensured (latency observed), one refused (an error)
        wait_for(lambda: 'lbctl_provider_operation_seconds_count{operation="ensure"}'
                 in running.metrics() and "lbctl_sync_errors_total{" in running.metrics(),
                 30, "an ensure and a failed sync")
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        thread.stop()


@pytest.fixture(scope="module")
def daemon_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A balancer daemon with two data plane workers and one balancer over a live backend,
    scraped once its target is healthy."""
    tmp = tmp_path_factory.mktemp("observability-daemon")
    token = tmp / "token"
    token.write_text(TOKEN + "\n")
    backend: ThreadingHTTPServer = named_backend("127.0.108.2")
    thread = DaemonThread(ServeOptions(api_listen="127.0.0.1:0", token_file=token,
                                       state_file=tmp / "state.json", workers=2,
                                       reload_seconds=0.1))
    thread.start()
    try:
        body = {"name": "web", "vip": "127.0.108.1", "listeners": [{
            "protocol": "TCP", "port": 18080,
            "targets": [f"127.0.108.2:{backend.server_address[1]}"],
            "healthCheck": {"type": "tcp", "intervalSeconds": 0.2, "timeoutSeconds": 0.5,
                            "healthyThreshold": 1, "unhealthyThreshold": 1}}]}
        request = urllib.request.Request(f"{thread.url}/v1/balancers/web", method="PUT",
                                         data=json.dumps(body).encode(), headers={
                                             "Authorization": f"Bearer {TOKEN}",
                                             "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status in (200, 201)

        def healthy() -> str | None:
            text = _scrape(f"{thread.url}/metrics")
            return text if re.search(r"^lbctl_balancer_target_up\{.*\} 1\.0$", text,
                                     re.MULTILINE) else None

        yield wait_for(healthy, 20, "the balancer's target to be healthy")
    finally:
        thread.stop()
        backend.shutdown()
        backend.server_close()


BGP_STATIC = {
    "balancers": [{"name": "web", "vip": "127.0.109.1", "listeners": [{
        "protocol": "TCP", "port": 18081, "targets": ["127.0.109.2:30080"],
        "healthCheck": {"type": "tcp", "intervalSeconds": 0.2, "timeoutSeconds": 0.2,
                        "healthyThreshold": 1, "unhealthyThreshold": 1}}]}],
    "bgp": {"myASN": 64512, "routerID": "10.0.0.2", "peers": [{
        "name": "router", "peerAddress": "127.0.0.1", "peerASN": 64500, "holdTime": "3s"}]}}
"""A daemon in BGP mode whose one peer never answers (a port nothing listens on, set below)
and whose VIP has no healthy target: a loopback VIP, so nothing is bound on lo."""


@pytest.fixture(scope="module")
def bgp_daemon_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`lbctl balancer serve --config` with a `bgp:` section: ExaBGP runs, the session to the
    peer that does not answer stays down, and /metrics shows every BGP family with samples.
    As root it runs in a network namespace of its own (the daemon manages addresses on lo);
    otherwise as this user (it then cannot bind VIPs, which a loopback VIP does not need)."""
    from lbctl.balancer.bgp_speaker import exabgp_binary

    if exabgp_binary() is None:
        unavailable("exabgp is not installed (the `bgp` extra)")
    tmp = tmp_path_factory.mktemp("observability-bgp")
    token = tmp / "token"
    token.write_text(TOKEN + "\n")
    static = json.loads(json.dumps(BGP_STATIC))
    static["bgp"]["peers"][0]["peerPort"] = _free_port()  # nothing listens: refused
    config = tmp / "balancers.yaml"
    config.write_text(yaml.safe_dump(static))
    port = _free_port()
    argv = [*_command(), "balancer", "serve", "--config", str(config), "--api-listen",
            f"127.0.0.1:{port}", "--token-file", str(token), "--state-file",
            str(tmp / "state.json"), "--kernel-dataplane", "off"]
    spaces = None
    if os.geteuid() == 0 and shutil.which("ip"):
        from tests.balancer.network.conftest import Namespaces

        spaces = Namespaces(prefix="lbb-")
        ns = spaces.new("bgp")
        proc = ns.popen(*argv)

        def scrape() -> str:
            done = ns.run(sys.executable, "-c", "import urllib.request; print(urllib.request."
                          f"urlopen('http://127.0.0.1:{port}/metrics', timeout=2).read()."
                          "decode())", check=False)
            if done.returncode != 0:
                raise OSError(done.stderr)
            return done.stdout
    else:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT)

        def scrape() -> str:
            return _scrape(f"http://127.0.0.1:{port}/metrics")

    def ready() -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited: {proc.communicate()[1][-2000:]}")
        try:
            text = scrape()
        except OSError:
            return None
        # the speaker is up and has tried the peer: the session's gauge is there, at 0
        return text if re.search(r'^lbctl_bgp_session_up\{peer="router"\} 0\.0$', text,
                                 re.MULTILINE) else None

    try:
        yield wait_for(ready, 30, "the BGP series of a daemon whose peer does not answer")
    finally:
        if spaces is not None:
            spaces.close()
        else:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=10)


@pytest.fixture(scope="module")
def exported(controller: RunningController, daemon_metrics: str,
             bgp_daemon_metrics: str) -> Exported:
    names = Exported()
    names.add(controller.metrics())
    names.add(daemon_metrics)
    names.add(bgp_daemon_metrics)
    return names


def test_a_bgp_daemon_whose_peer_does_not_answer_exports_every_bgp_series(
        bgp_daemon_metrics: str) -> None:
    """The names the BGP alerts and panels read come from this scrape, not from a list."""
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(bgp_daemon_metrics) for s in f.samples}
    peer = (("peer", "router"),)
    assert samples[("lbctl_bgp_session_up", peer)] == 0
    assert samples[("lbctl_bgp_announced_prefixes", peer)] == 0
    assert samples[("lbctl_bgp_sessions_established_total", peer)] == 0
    # the VIP has no healthy target: carried by BGP, not announced
    assert samples[("lbctl_bgp_vips", (("announced", "false"),))] == 1
    assert samples[("lbctl_bgp_vips", (("announced", "true"),))] == 0


def test_the_running_processes_export_what_the_code_defines(controller: RunningController,
                                                            exported: Exported) -> None:
    """The scrape is real: the families metrics.py defines, with samples where used."""
    for name in ("lbctl_leader", "lbctl_syncs_total", "lbctl_sync_errors_total",
                 "lbctl_provider_operation_seconds_bucket", "lbctl_services_without_address",
                 "lbctl_config_last_reload_successful", "lbctl_balancer_target_up",
                 "lbctl_balancer_connections_total", "lbctl_balancer_workers_alive",
                 "lbctl_balancer_api_refused_connections_total"):
        assert name in exported.labels, name
    assert exported.labels["lbctl_balancer_target_up"] >= {"balancer", "protocol", "port",
                                                           "target"}
    assert "operation" in exported.labels["lbctl_provider_operation_seconds_bucket"]


def test_every_alert_parses_and_names_only_exported_series(everything: Manifests,
                                                          exported: Exported) -> None:
    expressions = rule_expressions(everything)
    assert len(expressions) >= 10
    assert sum("lbctl_bgp_" in e for _, e in expressions) >= 3  # checked like the others
    problems = [p for where, expr in expressions for p in exported.problems(where, expr)
                if "lbctl_l2_" not in p]  # L2's: test_l2_series_exist_on_an_announcing_daemon
    assert problems == []


def test_every_dashboard_query_parses_and_names_only_exported_series(
        exported: Exported) -> None:
    expressions = dashboard_expressions(json.loads(DASHBOARD.read_text()))
    assert len(expressions) >= 30
    assert sum("lbctl_bgp_" in e for _, e in expressions) >= 4  # checked like the others
    problems = [p for where, expr in expressions for p in exported.problems(where, expr)
                if "lbctl_l2_" not in p]
    assert problems == []


def test_the_checker_catches_broken_expressions_and_unknown_names(exported: Exported) -> None:
    cases = {
        "sum(rate(lbctl_syncs_total[5m])": "does not parse",  # unbalanced
        "rate(lbctl_syncs_total)": "does not parse",  # a vector where a range is wanted
        "rates(lbctl_syncs_total[5m])": "does not parse",  # no such function
        "lbctl_sync_total > 0": "lbctl_sync_total is not exported",  # a typo
        "lbctl_syncs > 0": "lbctl_syncs is not exported",  # the family, not the series
        "lbctl_balancer_target_up{target_name=\"x\"} == 0": "has no label ['target_name']",
        "up{nonsense=\"1\"}": "has no label ['nonsense']",
    }
    for expr, problem in cases.items():
        found = exported.problems("case", expr)
        assert len(found) == 1 and problem in found[0], (expr, found)
    assert exported.problems("case", 'sum by (reason) (rate(lbctl_sync_errors_total'
                                     '{namespace="x"}[5m])) > 0') == []
    # and a rule or a panel gone wrong is reported where it is
    board = json.loads(DASHBOARD.read_text())
    board["panels"][1]["targets"][0]["expr"] = "count(lbctl_leaders)"
    where, expr = dashboard_expressions(board)[0]
    assert exported.problems(where, expr) == [
        f"panel {board['panels'][1]['title']!r}: lbctl_leaders is not exported"]


# -- the gauges the alerts needed -----------------------------------------------------------
def test_services_without_address_counts_owned_pending_services() -> None:
    config = parse_config("provider: fake\nloadBalancerClasses: [lbctl.io/lb]\n"
                          "handleClasslessServices: true\n")

    def svc(name: str, **extra: Any) -> ServiceView:
        return ServiceView(namespace="default", name=name, uid=name, resource_version="1",
                           type=extra.pop("type", "LoadBalancer"), ports=(), **extra)

    class Cache:
        def services(self) -> list[ServiceView]:
            return [svc("pending"), svc("served", ingress=(Ingress(ip="192.0.2.1"),)),
                    svc("classed", load_balancer_class="lbctl.io/lb"),
                    svc("someone-elses", load_balancer_class="example.com/lb"),
                    svc("deleting", deleting=True), svc("cluster-ip", type="ClusterIP"),
                    svc("released", annotations={"lbctl.io/release": "true"})]

    assert without_address(Cache(), config) == 2.0  # type: ignore[arg-type]


def test_the_gauges_of_a_running_controller(controller: RunningController) -> None:
    # the refused Service has no address; the other one has
    assert wait_for(lambda: controller.value("lbctl_services_without_address") == 1, 20,
                    "one Service without an address")
    assert controller.value("lbctl_config_last_reload_successful") == 1
    try:
        _write_changed(controller.config, "provider: fake\nclusterName: [not, a, name]\n")
        wait_for(lambda: controller.value("lbctl_config_last_reload_successful") == 0, 20,
                 "the refused reload")
        assert (controller.value("lbctl_config_reload_errors_total") or 0) >= 1
        # a change of provider or clusterName is refused in part: still 0
        _write_changed(controller.config, "provider: fake\nclusterName: renamed\n")
        time.sleep(3)  # two reload polls: the gauge must stay 0
        assert controller.value("lbctl_config_last_reload_successful") == 0
    finally:
        _write_changed(controller.config, CONFIG + "# good again\n")
    wait_for(lambda: controller.value("lbctl_config_last_reload_successful") == 1, 20,
             "the good reload")


def _write_changed(path: Path, text: str) -> None:
    """Write so the reloader's (mtime, size) stamp surely changes."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    while path.stat().st_mtime_ns == before:
        time.sleep(0.01)
        path.write_text(text)


# -- L2: the daemon's announcer needs an interface, so root and a namespace ------------------
@pytest.mark.network
def test_l2_series_exist_on_an_announcing_daemon(everything: Manifests,
                                                  tmp_path: Path) -> None:
    from tests.balancer.network.conftest import Namespaces, require_netns, veth

    require_netns()
    spaces = Namespaces(prefix="lbo-")
    try:
        ns = spaces.new("l2")
        veth(ns, "lb0", spaces.new("wire"), "peer0")  # a segment to announce on
        ns.ip("addr", "add", "10.98.0.2/24", "dev", "lb0")
        token, key = tmp_path / "token", tmp_path / "heartbeat-key"
        token.write_text(TOKEN + "\n")
        key.write_text("0123456789abcdef0123456789abcdef\n")
        static = tmp_path / "balancers.yaml"
        static.write_text(yaml.safe_dump({"balancers": [{
            "name": "web", "vip": "10.98.0.100", "listeners": [{
                "protocol": "TCP", "port": 18080, "targets": ["10.98.0.3:30080"]}]}]}))
        daemon = ns.popen(*_command(), "balancer", "serve", "--config", str(static),
                          "--api-listen", "127.0.0.1:19450", "--token-file", str(token),
                          "--interface", "lb0", "--heartbeat-key-file", str(key),
                          "--heartbeat-listen", "10.98.0.2:19451", "--instance-name", "a")

        def scrape() -> str | None:
            if daemon.poll() is not None:
                raise AssertionError(f"the daemon exited: {daemon.communicate()[1][-2000:]}")
            done = ns.run(sys.executable, "-c", "import urllib.request; print(urllib.request."
                          "urlopen('http://127.0.0.1:19450/metrics', timeout=2).read()."
                          "decode())", check=False)
            return done.stdout if "lbctl_l2_owned_vips" in done.stdout else None

        names = Exported()
        names.add(wait_for(scrape, 30, "the L2 series"))
    finally:
        spaces.close()
    l2 = [(w, e) for w, e in [*rule_expressions(everything),
                              *dashboard_expressions(json.loads(DASHBOARD.read_text()))]
          if "lbctl_l2_" in e]
    assert l2, "no L2 expression to check"
    problems = [p for where, expr in l2 for p in names.problems(where, expr)
                if "lbctl_l2_" in p]
    assert problems == []
