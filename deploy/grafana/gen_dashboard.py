"""Write lbctl's Grafana dashboard: deploy/grafana/lbctl.json and the chart's copy.

The dashboard is built here rather than edited as JSON so every panel stays small and
consistent (one data source variable, the namespace and daemon filters on every query). It
shows only series lbctl exports: the controller's (lbctl/controller/metrics.py) and the balancer
daemon's (lbctl/balancer/metrics.py); tests/deploy/test_observability.py parses every query and
checks its names against a running controller's and daemon's /metrics. The chart ships the same
file (deploy/helm/lbctl/dashboards/lbctl.json: Helm reads files inside the chart only) as a
ConfigMap for Grafana's dashboard sidecar with metrics.dashboard.enabled.

    .venv/bin/python deploy/grafana/gen_dashboard.py            # rewrite both files
    .venv/bin/python deploy/grafana/gen_dashboard.py --check    # exit 1 when either is stale

Import by hand: Grafana > Dashboards > New > Import, upload deploy/grafana/lbctl.json, pick a
Prometheus data source.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUTS = (HERE / "lbctl.json", HERE.parent / "helm" / "lbctl" / "dashboards" / "lbctl.json")
Obj = dict[str, Any]

DATASOURCE: Obj = {"type": "prometheus", "uid": "${datasource}"}
C = 'namespace=~"$namespace"'
"""The controller's series of the chosen namespace."""
B = 'namespace=~"$namespace",instance=~"$instance"'
"""The chosen balancer daemons' series."""
RATE = "$__rate_interval"


class Layout:
    """Places panels left to right on Grafana's 24-column grid, a row header per section."""

    def __init__(self) -> None:
        self.panels: list[Obj] = []
        self.x = 0
        self.y = 0
        self.height = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append({"type": "row", "title": title, "collapsed": False,
                            "id": len(self.panels) + 1, "panels": [],
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}})
        self.y += 1

    def _newline(self) -> None:
        if self.x:
            self.y += self.height
            self.x, self.height = 0, 0

    def add(self, panel: Obj, w: int, h: int) -> None:
        if self.x + w > 24:
            self._newline()
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.panels.append(panel)
        self.x += w
        self.height = max(self.height, h)


def _targets(queries: list[tuple[str, str]]) -> list[Obj]:
    return [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr,
             "legendFormat": legend, "range": True}
            for i, (expr, legend) in enumerate(queries)]


def timeseries(title: str, description: str, queries: list[tuple[str, str]],
               unit: str = "short", stack: bool = False) -> Obj:
    """A time series panel: one line (or stacked area) per query and label set."""
    custom: Obj = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                   "showPoints": "never", "spanNulls": False}
    if stack:
        custom |= {"stacking": {"mode": "normal", "group": "A"}, "fillOpacity": 40}
    return {"type": "timeseries", "title": title, "description": description,
            "datasource": DATASOURCE, "targets": _targets(queries),
            "fieldConfig": {"defaults": {"unit": unit, "min": 0, "custom": custom},
                            "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom",
                                   "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(title: str, description: str, expr: str, unit: str = "short",
         red_above: float | None = None, red_below: float | None = None) -> Obj:
    """A single figure, red past a threshold."""
    steps: list[Obj] = [{"color": "green", "value": None}]
    if red_above is not None:
        steps.append({"color": "red", "value": red_above})
    if red_below is not None:
        steps = [{"color": "red", "value": None}, {"color": "green", "value": red_below}]
    return {"type": "stat", "title": title, "description": description,
            "datasource": DATASOURCE, "targets": _targets([(expr, "")]),
            "fieldConfig": {"defaults": {"unit": unit, "thresholds": {
                "mode": "absolute", "steps": steps}}, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                          "values": False},
                        "colorMode": "background", "graphMode": "area",
                        "textMode": "value", "justifyMode": "auto",
                        "orientation": "auto"}}


def controller(layout: Layout) -> None:
    layout.row("Controller")
    layout.add(stat("Replicas reporting", "Controller replicas whose /metrics Prometheus "
                    "scrapes.", f"count(lbctl_leader{{{C}}})", red_below=1), 4, 4)
    layout.add(stat("Leaders", "Replicas that hold the Lease lbctl-controller: exactly 1.",
                    f"sum(lbctl_leader{{{C}}})", red_above=2, red_below=1), 4, 4)
    layout.add(stat("Balancers managed", "Balancers the provider lists as lbctl's (the "
                    "leader's count, refreshed by orphan collection).",
                    f"sum(lbctl_managed_load_balancers{{{C}}} and on (instance) "
                    f"(lbctl_leader{{{C}}} == 1))"), 4, 4)
    layout.add(stat("Services without an address", "LoadBalancer Services lbctl owns with "
                    "no status.loadBalancer.ingress yet (lbctl status -A shows them as "
                    "<pending>).", f"max(lbctl_services_without_address{{{C}}})",
                    red_above=1), 4, 4)
    layout.add(stat("Config reload", "1: the last config change was loaded; 0: refused, the "
                    "last good config serves (the ConfigMap's InvalidConfig event says why).",
                    f"min(lbctl_config_last_reload_successful{{{C}}})", red_below=1), 4, 4)
    layout.add(stat("Work queue depth", "Service keys waiting for a worker on the leader.",
                    f"max(lbctl_workqueue_depth{{{C}}})"), 4, 4)
    layout.add(timeseries(
        "Syncs by outcome", "Service syncs per second: done, after (retry at a set time: "
        "provisioning, a Retry-After), backoff (failed, retried with back-off).",
        [(f"sum by (outcome) (rate(lbctl_syncs_total{{{C}}}[{RATE}]))", "{{outcome}}")],
        "ops", stack=True), 12, 8)
    layout.add(timeseries(
        "Sync errors by reason", "Failed syncs and provider calls per second, by the error's "
        "reason (a provider's reason, api_NNN for the Kubernetes API).",
        [(f"sum by (reason) (rate(lbctl_sync_errors_total{{{C}}}[{RATE}]))", "{{reason}}")],
        "ops", stack=True), 12, 8)
    layout.add(timeseries(
        "Provider call latency (p50, p99)", "Latency of the provider's calls by operation "
        "(ensure, observe, delete, release, list_owned) and of a whole sync.",
        [(f"histogram_quantile(0.99, sum by (le, operation) "
          f"(rate(lbctl_provider_operation_seconds_bucket{{{C}}}[{RATE}])))", "p99 {{operation}}"),
         (f"histogram_quantile(0.5, sum by (le, operation) "
          f"(rate(lbctl_provider_operation_seconds_bucket{{{C}}}[{RATE}])))", "p50 {{operation}}")],
        "s"), 12, 8)
    layout.add(timeseries(
        "Provider calls", "Provider calls per second by operation.",
        [(f"sum by (operation) (rate(lbctl_provider_operation_seconds_count{{{C}}}[{RATE}]))",
          "{{operation}}")], "ops"), 12, 8)
    layout.add(timeseries(
        "Node sync", "Debounced node sync passes, and the Services they queued because their "
        "targets changed.",
        [(f"sum(rate(lbctl_node_syncs_total{{{C}}}[{RATE}]))", "passes"),
         (f"sum(rate(lbctl_node_sync_queued_total{{{C}}}[{RATE}]))", "Services queued")],
        "ops"), 12, 8)
    layout.add(timeseries(
        "Orphans deleted, config reloads refused", "Balancers deleted because their Service "
        "was gone, and config changes refused, per hour.",
        [(f"sum(increase(lbctl_orphans_deleted_total{{{C}}}[1h]))", "orphans deleted"),
         (f"sum(increase(lbctl_config_reload_errors_total{{{C}}}[1h]))", "reloads refused")]),
        12, 8)


def balancer(layout: Layout) -> None:
    layout.row("Balancer daemons: traffic")
    layout.add(stat("Daemons reporting", "Balancer daemons whose /metrics Prometheus scrapes.",
                    f"count(lbctl_balancer_balancers{{{B},dataplane=\"userspace\"}})",
                    red_below=1), 6, 4)
    layout.add(stat("Listeners without a healthy target", "Listeners (per daemon) whose "
                    "every target fails its health checks: their clients are refused.",
                    f"count(max by (instance, balancer, protocol, port) "
                    f"(lbctl_balancer_target_up{{{B}}}) == 0) or vector(0)",
                    red_above=1), 6, 4)
    layout.add(stat("Degraded balancers", "Balancers with a problem (a bind failure, a "
                    "fallback to userspace, an L2 conflict), summed over daemons.",
                    f"sum(lbctl_balancer_degraded{{{B}}})", red_above=1), 6, 4)
    layout.add(stat("Active connections", "Connections (TCP) and flows (UDP) open now.",
                    f"sum(lbctl_balancer_active_connections{{{B}}})"), 6, 4)
    layout.add(timeseries(
        "New connections by balancer", "Connections (TCP) or flows (UDP) accepted per second.",
        [(f"sum by (balancer) (rate(lbctl_balancer_connections_total{{{B}}}[{RATE}]))",
          "{{balancer}}")], "ops", stack=True), 12, 8)
    layout.add(timeseries(
        "Throughput by balancer", "Bits forwarded per second, in (client to target) and out.",
        [(f"sum by (balancer, direction) (rate(lbctl_balancer_bytes_total{{{B}}}[{RATE}])) * 8",
          "{{balancer}} {{direction}}")], "bps"), 12, 8)
    layout.add(timeseries(
        "Active connections by balancer", "Connections or flows open now.",
        [(f"sum by (balancer) (lbctl_balancer_active_connections{{{B}}})", "{{balancer}}")],
        stack=True), 12, 8)
    layout.add(timeseries(
        "Refused and failed", "Clients refused per second by reason (source_range, "
        "no_healthy_target, loop) and connections to targets that failed.",
        [(f"sum by (balancer, reason) (rate(lbctl_balancer_refused_total{{{B}}}[{RATE}]))",
          "{{balancer}} refused: {{reason}}"),
         (f"sum by (balancer) (rate(lbctl_balancer_connect_failures_total{{{B}}}[{RATE}]))",
          "{{balancer}} connect failures")], "ops"), 12, 8)

    layout.row("Balancer daemons: health checks and processes")
    layout.add(timeseries(
        "Healthy targets by listener", "Targets passing their health checks, against all, per "
        "listener (the worst daemon's view).",
        [(f"min by (balancer, protocol, port) (sum by (instance, balancer, protocol, port) "
          f"(lbctl_balancer_target_up{{{B}}}))", "{{balancer}} {{protocol}}/{{port}} healthy"),
         (f"max by (balancer, protocol, port) (count by (instance, balancer, protocol, port) "
          f"(lbctl_balancer_target_up{{{B}}}))", "{{balancer}} {{protocol}}/{{port}} targets")]),
        12, 8)
    layout.add(timeseries(
        "Health checks", "Active probes and their failures per second, passive ejections "
        "(a refused or timed-out connect) and health changes.",
        [(f"sum(rate(lbctl_balancer_health_probes_total{{{B}}}[{RATE}]))", "probes"),
         (f"sum(rate(lbctl_balancer_health_probe_failures_total{{{B}}}[{RATE}]))",
          "probe failures"),
         (f"sum(rate(lbctl_balancer_health_ejections_total{{{B}}}[{RATE}]))", "ejections"),
         (f"sum(rate(lbctl_balancer_health_transitions_total{{{B}}}[{RATE}]))",
          "transitions")], "ops"), 12, 8)
    layout.add(timeseries(
        "Balancers by data plane", "Balancers each daemon serves, in the kernel (nftables) or "
        "in userspace.",
        [(f"sum by (instance, dataplane) (lbctl_balancer_balancers{{{B}}})",
          "{{instance}} {{dataplane}}")]), 8, 8)
    layout.add(timeseries(
        "Workers", "Data plane worker processes alive, and their restarts per hour (each drops "
        "the connections it held).",
        [(f"sum by (instance) (lbctl_balancer_workers_alive{{{B}}})", "{{instance}} alive"),
         (f"sum by (instance) (increase(lbctl_balancer_worker_restarts_total{{{B}}}[1h]))",
          "{{instance}} restarts/h")]), 8, 8)
    layout.add(timeseries(
        "Kernel data plane", "Whether each daemon can program nftables, and the time one nft "
        "transaction takes.",
        [(f"max by (instance) (lbctl_balancer_nftables_available{{{B}}})",
          "{{instance}} nftables available"),
         (f"sum by (instance) (rate(lbctl_balancer_nft_transaction_seconds_total{{{B}}}"
          f"[{RATE}])) / sum by (instance) (rate(lbctl_balancer_nft_transactions_total{{{B}}}"
          f"[{RATE}]))", "{{instance}} seconds per transaction")]), 8, 8)
    layout.add(timeseries(
        "Control API", "Connections open to each daemon's API, and those refused at its cap "
        "(503) per second.",
        [(f"sum by (instance) (lbctl_balancer_api_connections{{{B}}})", "{{instance}} open"),
         (f"sum by (instance) (rate(lbctl_balancer_api_refused_connections_total{{{B}}}"
          f"[{RATE}]))", "{{instance}} refused/s")]), 12, 8)

    layout.row("L2 announcements (daemons run with --interface)")
    layout.add(timeseries(
        "VIPs owned and in conflict", "VIPs each daemon announces now, those withdrawn because "
        "another host claims them, and the instances it hears.",
        [(f"sum by (instance) (lbctl_l2_owned_vips{{{B}}})", "{{instance}} owned"),
         (f"sum by (instance) (lbctl_l2_conflicted_vips{{{B}}})", "{{instance}} conflicted"),
         (f"max by (instance) (lbctl_l2_alive_instances{{{B}}})",
          "{{instance}} instances alive")]), 12, 8)
    layout.add(timeseries(
        "L2 events", "Per second: gratuitous ARPs / unsolicited NAs, ARP replies, NAs, "
        "conflicts seen, takeovers, heartbeats refused.",
        [(f"sum(rate(lbctl_l2_garp_sent_total{{{B}}}[{RATE}]))", "gratuitous ARP / NA"),
         (f"sum(rate(lbctl_l2_arp_replies_total{{{B}}}[{RATE}]))", "ARP replies"),
         (f"sum(rate(lbctl_l2_na_sent_total{{{B}}}[{RATE}]))", "NAs"),
         (f"sum(rate(lbctl_l2_conflicts_total{{{B}}}[{RATE}]))", "conflicts"),
         (f"sum(rate(lbctl_l2_takeovers_total{{{B}}}[{RATE}]))", "takeovers"),
         (f"sum(rate(lbctl_l2_rejected_heartbeats_total{{{B}}}[{RATE}]))",
          "heartbeats refused")], "ops"), 12, 8)

    layout.row("BGP (daemons with a bgp section: config.baremetal.bgp)")
    layout.add(stat(
        "Sessions down", "BGP sessions (daemon x peer) not Established now; each one is a "
        "router that sends that node no traffic.",
        f"count(lbctl_bgp_session_up{{{B}}} == 0) or vector(0)", red_above=1), 6, 8)
    layout.add(stat(
        "VIPs not announced", "VIPs daemons serve in BGP mode but do not announce (no healthy "
        "target, held down after a flap), summed over daemons.",
        f'sum(lbctl_bgp_vips{{{B},announced="false"}}) or vector(0)', red_above=1), 6, 8)
    layout.add(timeseries(
        "Sessions", "1 while the session of a daemon with a peer is Established.",
        [(f"max by (instance, peer) (lbctl_bgp_session_up{{{B}}})",
          "{{instance}} -> {{peer}}")]), 12, 8)
    layout.add(timeseries(
        "Prefixes announced", "Prefixes each daemon announces to each peer now (a /32 or /128 "
        "per VIP, fewer with aggregationLength).",
        [(f"sum by (instance, peer) (lbctl_bgp_announced_prefixes{{{B}}})",
          "{{instance}} -> {{peer}}")]), 12, 8)
    layout.add(timeseries(
        "VIPs announced and held back", "VIPs BGP carries on each daemon, announced or not.",
        [(f'sum by (instance) (lbctl_bgp_vips{{{B},announced="true"}})',
          "{{instance}} announced"),
         (f'sum by (instance) (lbctl_bgp_vips{{{B},announced="false"}})',
          "{{instance}} not announced")]), 6, 8)
    layout.add(timeseries(
        "Sessions established", "Times per hour each session came up: more than once is a "
        "flapping session (hold timer, the router, the link).",
        [(f"sum by (instance, peer) (increase(lbctl_bgp_sessions_established_total{{{B}}}"
          f"[1h]))", "{{instance}} -> {{peer}}")]), 6, 8)


def dashboard() -> Obj:
    """The dashboard's JSON model."""
    layout = Layout()
    controller(layout)
    balancer(layout)
    variables: list[Obj] = [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
         "options": []},
        {"name": "namespace", "label": "Namespace", "type": "query", "datasource": DATASOURCE,
         "definition": "label_values(lbctl_leader, namespace)",
         "query": {"query": "label_values(lbctl_leader, namespace)", "refId": "namespace"},
         "refresh": 2, "sort": 1, "includeAll": False, "multi": False, "current": {},
         "hide": 0, "options": [], "regex": ""},
        {"name": "instance", "label": "Balancer daemon", "type": "query",
         "datasource": DATASOURCE,
         "definition": 'label_values(lbctl_balancer_balancers{namespace=~"$namespace"}, '
                       "instance)",
         "query": {"query": 'label_values(lbctl_balancer_balancers{namespace=~"$namespace"}, '
                            "instance)", "refId": "instance"},
         "refresh": 2, "sort": 1, "includeAll": True, "allValue": ".*", "multi": True,
         "current": {}, "hide": 0, "options": [], "regex": ""},
    ]
    return {
        "title": "lbctl", "uid": "lbctl",
        "description": "lbctl's controller and software balancer daemons "
                       "(deploy/grafana/gen_dashboard.py).",
        "tags": ["lbctl", "loadbalancer", "kubernetes"], "editable": True,
        "graphTooltip": 1, "schemaVersion": 39, "version": 1, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"}, "timepicker": {}, "timezone": "browser",
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana",
                                                              "uid": "-- Grafana --"},
                                  "enable": True, "hide": True,
                                  "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": variables}, "panels": layout.panels, "links": [],
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write: exit 1 when a file differs from what is generated")
    args = parser.parse_args(argv)
    text = render()
    stale = [p for p in OUTPUTS if not p.exists() or p.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path} is stale: run {Path(__file__).name}", file=sys.stderr)
        return 1 if stale else 0
    for path in OUTPUTS:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
