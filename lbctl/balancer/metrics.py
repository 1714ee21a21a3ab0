"""Prometheus metrics of the balancer daemon, read from the data plane at scrape time.

Why a collector rather than prometheus-client counters updated in the hot path: the frontends
count into plain integers (no lock, no label lookup per packet), and a scrape turns them into
samples. Labels are balancer, protocol, port and (for health) target: bounded by configuration,
never per connection or per client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .announce import Announcements
    from .api_server import ApiServer
    from .bgp import BgpAnnouncements
    from .dataplane import Dataplane

_L = ["balancer", "protocol", "port"]


class DataplaneCollector(Collector):
    def __init__(self, dataplane: Dataplane) -> None:
        self.dataplane = dataplane
        self.l2: Announcements | None = None
        self.bgp: BgpAnnouncements | None = None
        self.api: ApiServer | None = None

    def collect(self) -> Iterator[Metric]:
        dp = self.dataplane
        conns = CounterMetricFamily("lbctl_balancer_connections",
                                    "Connections (TCP) or flows (UDP) accepted", labels=_L)
        active = GaugeMetricFamily("lbctl_balancer_active_connections",
                                   "Connections or flows open now", labels=_L)
        byts = CounterMetricFamily("lbctl_balancer_bytes", "Bytes forwarded",
                                   labels=[*_L, "direction"])
        refused = CounterMetricFamily("lbctl_balancer_refused",
                                      "Clients refused, by reason", labels=[*_L, "reason"])
        failures = CounterMetricFamily("lbctl_balancer_connect_failures",
                                       "Connections to targets that failed", labels=_L)
        up = GaugeMetricFamily("lbctl_balancer_target_up",
                               "1 when the target passes its health checks",
                               labels=[*_L, "target"])
        for key, run in dp.running.items():
            protocol, _vip, port = key
            labels = [run.balancer, protocol, str(port)]
            s = dp.totals(key)
            conns.add_metric(labels, s.connections)
            active.add_metric(labels, s.active)
            byts.add_metric([*labels, "in"], s.bytes_in)
            byts.add_metric([*labels, "out"], s.bytes_out)
            refused.add_metric([*labels, "source_range"], s.refused_acl)
            refused.add_metric([*labels, "no_healthy_target"], s.refused_no_target)
            refused.add_metric([*labels, "loop"], s.refused_loop)
            failures.add_metric(labels, s.connect_failures)
            for backend in run.backends.backends:
                up.add_metric([*labels, backend.label], 1.0 if backend.up else 0.0)
        yield from (conns, active, byts, refused, failures, up)
        health = dp.health
        counters = {"probes": health.probes_total, "probe_failures": health.probe_failures_total,
                    "ejections": health.ejections_total,
                    "transitions": health.transitions_total}
        for name, help_text in (("probes", "Active health probes sent"),
                                ("probe_failures", "Active health probes that failed"),
                                ("ejections", "Targets ejected after a failed connection"),
                                ("transitions", "Target health changes")):
            family = CounterMetricFamily(f"lbctl_balancer_health_{name}", help_text)
            family.add_metric([], counters[name])
            yield family
        balancers = GaugeMetricFamily("lbctl_balancer_balancers",
                                      "Balancers served, by data plane", labels=["dataplane"])
        balancers.add_metric(["nftables"], len(dp.in_kernel))
        balancers.add_metric(["userspace"], len(dp.desired) - len(dp.in_kernel))
        yield balancers
        if dp.workers is not None:
            workers = GaugeMetricFamily("lbctl_balancer_workers_alive",
                                        "Data plane worker processes running")
            workers.add_metric([], dp.workers.alive())
            yield workers
            restarts = CounterMetricFamily("lbctl_balancer_worker_restarts",
                                           "Data plane worker processes restarted")
            restarts.add_metric([], dp.workers.restarts)
            yield restarts
        available = GaugeMetricFamily(
            "lbctl_balancer_nftables_available",
            "1 when this instance can program nftables (CAP_NET_ADMIN and nft work); "
            "0 means nftables balancers fall back to userspace")
        available.add_metric([], 1.0 if dp.kernel is not None else 0.0)
        yield available
        transactions = CounterMetricFamily("lbctl_balancer_nft_transactions",
                                           "nft transactions committed")
        transactions.add_metric([], dp.kernel_transactions)
        yield transactions
        seconds = CounterMetricFamily("lbctl_balancer_nft_transaction_seconds",
                                      "Time spent in nft transactions")
        seconds.add_metric([], dp.kernel_seconds)
        yield seconds
        problems = GaugeMetricFamily("lbctl_balancer_degraded",
                                     "Balancers with a problem (bind failure, fallback, ...)")
        problems.add_metric([], len(dp.problems.by_balancer))
        yield problems
        if self.api is not None:
            api_open = GaugeMetricFamily("lbctl_balancer_api_connections",
                                         "Connections open to the daemon's API")
            api_open.add_metric([], self.api.connections)
            yield api_open
            api_refused = CounterMetricFamily("lbctl_balancer_api_refused_connections",
                                              "API connections refused at the cap (503)")
            api_refused.add_metric([], self.api.refused)
            yield api_refused
        if self.l2 is not None and self.l2.announcer is not None:
            yield from _l2_metrics(self.l2)
        if self.bgp is not None:
            yield from _bgp_metrics(self.bgp)


def _bgp_metrics(bgp: BgpAnnouncements) -> Iterator[Metric]:
    """Per peer (bounded by config): session up, prefixes announced, sessions established;
    VIPs announced and held back (not per VIP: a gauge per address would grow with Services)."""
    up = GaugeMetricFamily("lbctl_bgp_session_up", "1 while the BGP session is Established",
                           labels=["peer"])
    prefixes = GaugeMetricFamily("lbctl_bgp_announced_prefixes",
                                 "Prefixes announced to the peer now", labels=["peer"])
    established = CounterMetricFamily("lbctl_bgp_sessions_established",
                                      "Times the session came up", labels=["peer"])
    for peer in bgp.status()["peers"]:
        up.add_metric([peer["name"]], 1 if peer["state"] == "up" else 0)
        prefixes.add_metric([peer["name"]], peer["prefixes"])
        established.add_metric([peer["name"]], peer["established"])
    yield from (up, prefixes, established)
    vips = GaugeMetricFamily("lbctl_bgp_vips", "VIPs BGP carries, by whether they are "
                             "announced", labels=["announced"])
    announced = sum(1 for vip in bgp.vips if bgp.vip_view(vip)["announced"])  # and a peer up
    vips.add_metric(["true"], announced)
    vips.add_metric(["false"], len(bgp.vips) - announced)
    yield vips


def _l2_metrics(l2: Announcements) -> Iterator[Metric]:
    assert l2.announcer is not None
    counters = l2.announcer.counters
    for name, help_text in (("garp_sent", "Gratuitous ARPs / unsolicited NAs sent"),
                            ("arp_replies", "ARP replies sent for owned VIPs"),
                            ("na_sent", "Neighbour advertisements sent for owned VIPs"),
                            ("conflicts", "Foreign MACs seen claiming an owned VIP"),
                            ("takeovers", "VIPs this instance took over")):
        family = CounterMetricFamily(f"lbctl_l2_{name}", help_text)
        family.add_metric([], getattr(counters, name))
        yield family
    owned = GaugeMetricFamily("lbctl_l2_owned_vips", "VIPs this instance announces now")
    owned.add_metric([], len(l2.announcer.owned()))
    yield owned
    conflicted = GaugeMetricFamily("lbctl_l2_conflicted_vips",
                                   "VIPs withdrawn because another host claims them")
    conflicted.add_metric([], len(l2.announcer.conflicts()))
    yield conflicted
    if l2.membership is not None:
        alive = GaugeMetricFamily("lbctl_l2_alive_instances",
                                  "Balancer instances heard from (this one included)")
        alive.add_metric([], len(l2.membership.alive()))
        yield alive
        rejected = CounterMetricFamily("lbctl_l2_rejected_heartbeats",
                                       "Heartbeats refused (bad signature, replay, stranger)")
        rejected.add_metric([], l2.membership.rejected)
        yield rejected
