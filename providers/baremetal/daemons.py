"""`DaemonProgrammer`: the baremetal provider programs `lbctl balancer serve` instances.

Transport: the daemons' authenticated HTTP API (see `lbctl.balancer.api` for why push beats a
daemon watching the cluster). Every call is idempotent: PUT the whole balancer, DELETE by name.

Writes only real differences: each body carries `revision`, a digest of the body itself; a
background poll (`statusPollSeconds`) keeps what every instance reports (`GET /v1/balancers?
cluster=...`), and `program` PUTs only to instances whose revision differs or is unknown. The
same poll is how state loss and health reach the controller: an instance that restarted without
its state file, or whose targets changed health, makes the poll call `notify(ref)` for the
Services concerned, and the controller re-ensures them at once (status, conditions, re-PUT).
Target health for `LoadBalancerStatus.targets` comes from the same reports (`targets`): each
listener's targets with their `up`, no extra request.

Instances that are down: `program` succeeds while at least one instance took the balancer and
reports the others in the degraded reason; with none reachable it raises TransientError (the
controller backs off). `unprogram` does not wait for an unreachable instance: when it comes back
its balancer is an orphan, listed by `programmed()`, and the controller's orphan collection
deletes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from providers.errors import TransientError
from providers.spec import BalancerRef, LoadBalancerSpec, ServiceRef, TargetHealth

from .bgp_push import BgpPusher
from .bgp_settings import BgpSettings
from .daemon_options import DaemonOptions
from .direct import endpoint_check, endpoint_targets
from .settings import BalancerDaemon

log = logging.getLogger(__name__)

Notify = Callable[[BalancerRef], None]
_OPEN = ("0.0.0.0/0", "::/0")


def balancer_body(spec: LoadBalancerSpec, ips: tuple[str, ...], options: DaemonOptions
                  ) -> dict[str, Any]:
    """The daemon's wire form of `spec` served at `ips` (see `lbctl.balancer.model`): each
    listener's targets are the nodes at its nodePort, or in the endpoints mode the pods at
    their target port."""
    affinity = spec.session_affinity == "ClientIP"
    direct = spec.target_mode == "endpoints"
    listeners = []
    for li in spec.listeners:
        if li.node_port is None and not direct:
            continue  # refused before: check_capabilities wants every nodePort in this mode
        targets = endpoint_targets(spec, li) if direct else [
            {"name": t.node, "address": _address(t.addresses, ips), "port": li.node_port}
            for t in spec.targets if t.addresses]
        listener = {"protocol": li.protocol, "port": li.port, "targets": targets,
                    "healthCheck": listener_check(spec, li.protocol, options),
                    "algorithm": "maglev" if affinity else "roundRobin"}
        if li.protocol == "TCP" and options.upstream_congestion_control:
            listener["upstreamCongestionControl"] = options.upstream_congestion_control
        listeners.append(listener)
    ranges = [r for r in spec.source_ranges if r not in _OPEN]
    body: dict[str, Any] = {
        "name": spec.name, "vips": list(ips), "dataplane": options.dataplane,
        "sourceRanges": ranges, "sessionAffinity": spec.session_affinity,
        "drainSeconds": options.drain_seconds, "listeners": listeners,
        "owner": {"cluster": spec.ref.cluster, "namespace": spec.ref.service.namespace,
                  "name": spec.ref.service.name, "uid": spec.ref.service.uid}}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
    return {**body, "revision": digest}


def listener_check(spec: LoadBalancerSpec, protocol: str, options: DaemonOptions
                   ) -> dict[str, Any]:
    """The active check for one listener's targets.

    Local: HTTP `/healthz` on healthCheckNodePort (kube-proxy answers for the node's own
    endpoints, whatever the listener's protocol). Cluster with `clusterPolicy: kubeProxy`:
    kube-proxy's own `/healthz` (one probe per node for every Service, UDP included). Cluster
    (the default, `nodePort`), TCP: a connect to the nodePort
    itself. Cluster, UDP: nothing listens for TCP on a UDP nodePort, so a connect there would
    fail on every healthy node and take the listener out of service; the node is checked by a
    connect to the Service's first TCP nodePort instead (mixed-protocol Services; an ICMP
    port-unreachable from a node then ejects it at once, like a failed TCP connect), and a
    UDP-only Service gets no active check: its targets stay in rotation until their node
    leaves the Service's targets (NotReady, deleted, excluded).
    """
    hc = spec.health_check
    timing = {"intervalSeconds": options.interval_seconds,
              "timeoutSeconds": options.timeout_seconds,
              "healthyThreshold": options.healthy_threshold,
              "unhealthyThreshold": options.unhealthy_threshold}
    if spec.target_mode == "endpoints":
        return endpoint_check(spec, protocol, timing)
    if hc.protocol == "HTTP":
        return {"type": "http", "port": hc.port, "path": hc.path or "/healthz", **timing}
    if options.cluster_check == "kubeProxy":
        return {"type": "http", "port": options.kube_proxy_port, "path": "/healthz", **timing}
    if protocol == "TCP":
        return {"type": "tcp", **timing}
    sibling = next((li.node_port for li in spec.listeners
                    if li.protocol == "TCP" and li.node_port is not None), None)
    if sibling is None:
        return {"type": "none"}
    return {"type": "tcp", "port": sibling, **timing}


def _address(addresses: tuple[str, ...], vips: tuple[str, ...]) -> str:
    """The node address of the VIPs' family (IPv4 first when both)."""
    want_v6 = bool(vips) and all(":" in v for v in vips)
    return next((a for a in addresses if (":" in a) == want_v6), addresses[0])


def _ref(item: dict[str, Any]) -> BalancerRef | None:
    owner = item.get("balancer", {}).get("owner")
    if not isinstance(owner, dict):
        return None
    return BalancerRef(item["balancer"]["name"], str(owner.get("cluster")),
                       ServiceRef(str(owner.get("namespace")), str(owner.get("name")),
                                  str(owner.get("uid"))))


def _summary(item: dict[str, Any]) -> tuple[Any, ...]:
    """What about an instance's report should make the controller look again (a change of
    target counts too: the Service's status shows them)."""
    status, bgp = item.get("status", {}), item.get("status", {}).get("bgp") or {}
    return (item.get("balancer", {}).get("revision"), status.get("serving"),  # + BGP's view
            tuple(status.get("problems", ())), report_targets(item),
            tuple(sorted((vip, bool(v.get("announced"))) for vip, v in bgp.items())))


def report_targets(item: dict[str, Any]) -> TargetHealth | None:
    """One instance's view of a balancer's targets: the worst listener's (every listener
    checks the same nodes or pods), or the daemon's totals for a report without listeners;
    None when the instance does not serve the balancer."""
    status = item.get("status") if isinstance(item, dict) else None
    if not isinstance(status, dict):
        return None
    listeners = [li for li in status.get("listeners") or [] if isinstance(li, dict)]
    if listeners:
        return TargetHealth.worst(TargetHealth(
            sum(1 for t in li.get("targets") or [] if isinstance(t, dict) and t.get("up")),
            len(li.get("targets") or [])) for li in listeners)
    healthy, total = status.get("healthyTargets"), status.get("totalTargets")
    if isinstance(healthy, int) and isinstance(total, int):
        return TargetHealth(healthy, total)
    return None


POOL_SIZE = 65
"""Idle connections kept per daemon: the controller's workers (at most 64) and the poller."""


class DaemonProgrammer:
    """See the module docstring. Thread-safe."""

    def __init__(self, daemons: tuple[BalancerDaemon, ...], options: DaemonOptions,
                 cluster_name: str, *, timeout: float = 5.0,
                 bgp: BgpSettings | None = None) -> None:
        import urllib3  # noqa: PLC0415 - loaded with the provider, not with lbctl

        self.daemons = daemons
        self.options = options
        self.cluster_name = cluster_name
        self._timeout = urllib3.Timeout(connect=min(2.0, timeout), read=timeout)
        self._http = {d.name: urllib3.PoolManager(timeout=self._timeout, retries=False,
                                                  ca_certs=d.ca_file, maxsize=POOL_SIZE)
                      for d in daemons}
        """One pool per daemon: each may have a CA bundle of its own. Sized for every worker
        at once (urllib3 keeps one connection per host by default and drops the others with
        a "Connection pool is full" warning, a new TCP handshake each time under load)."""
        self._lock = threading.Lock()
        self._known: dict[str, dict[str, dict[str, Any]] | None] = {}
        """daemon -> balancer name -> last report; None while unreachable."""
        self._expected: dict[str, BalancerRef] = {}
        self._notify: Notify | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.bgp = BgpPusher(bgp or BgpSettings(present=True), self._call)
        """`baremetal.bgp` kept on every daemon (absent from config by default: untouched)."""

    # -- HTTP -------------------------------------------------------------------------------
    def _call(self, daemon: BalancerDaemon, method: str, path: str,
              body: dict[str, Any] | None = None) -> tuple[int, Any]:
        import urllib3  # noqa: PLC0415

        try:
            token = Path(daemon.token_file).read_text().strip()
        except OSError as exc:
            raise TransientError(f"balancer {daemon.name}: token file {daemon.token_file}: "
                                 f"{exc.strerror or exc}") from exc
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        try:
            resp = self._http[daemon.name].request(method, daemon.url.rstrip("/") + path,
                                                   body=data, headers=headers)
        except urllib3.exceptions.SSLError as exc:
            hint = f"caFile {daemon.ca_file}" if daemon.ca_file else "no caFile: system CAs"
            raise TransientError(f"balancer {daemon.name}: TLS failed ({hint}): {exc}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise TransientError(f"balancer {daemon.name} unreachable: {exc}") from exc
        try:
            doc = json.loads(resp.data) if resp.data else {}
        except ValueError:
            doc = {"error": resp.data[:200].decode(errors="replace")}
        if resp.status == 401:
            raise TransientError(f"balancer {daemon.name} refused our token (401)")
        return resp.status, doc

    # -- Programmer ---------------------------------------------------------------------------
    def program(self, spec: LoadBalancerSpec, ips: tuple[str, ...]) -> str | None:
        body = balancer_body(spec, ips, self.options)
        self._start_poller()
        with self._lock:
            self._expected[spec.name] = spec.ref
        reasons: list[str] = []
        took = 0
        seen: dict[str, dict[str, Any]] = {}
        for daemon in self.daemons:
            self.bgp.sync_once(daemon)
            with self._lock:
                reports = self._known.get(daemon.name)
                report = reports.get(spec.name) if reports else None
            if report is None or report["balancer"].get("revision") != body["revision"]:
                try:
                    code, report = self._call(daemon, "PUT", f"/v1/balancers/{spec.name}", body)
                except TransientError as exc:
                    reasons.append(str(exc))
                    continue
                if code != 200:
                    reasons.append(f"balancer {daemon.name} refused {spec.name} ({code}): "
                                   f"{_problems(report)}")
                    continue
                with self._lock:
                    self._known.setdefault(daemon.name, {})
                    known = self._known[daemon.name]
                    if known is not None:
                        known[spec.name] = report
            took += 1
            seen[daemon.name] = report
            problems = report.get("status", {}).get("problems", [])
            if problems:
                reasons.append(f"balancer {daemon.name}: {'; '.join(problems)}")
        if took == 0:
            raise TransientError("no balancer daemon took the balancer: " + "; ".join(reasons))
        reasons += self.bgp.unannounced(ips, seen)
        return "; ".join(reasons) or None

    def serving(self, name: str) -> bool:
        """Some instance reports the balancer serving (bound, with a healthy target)."""
        with self._lock:
            reports = [r.get(name) for r in self._known.values() if r]
        return any(r is not None and r.get("status", {}).get("serving") for r in reports)

    def targets(self, name: str) -> TargetHealth | None:
        """The worst of the reachable instances' views of balancer `name` (each checks the
        same targets on its own), as they last reported; None when none reports it."""
        with self._lock:
            reports = [r.get(name) for r in self._known.values() if r]
        return TargetHealth.worst(report_targets(r) for r in reports if r is not None)

    def plan(self, spec: LoadBalancerSpec, ips: tuple[str, ...]) -> list[str]:
        body = balancer_body(spec, ips, self.options)
        out = []
        for daemon in self.daemons:
            with self._lock:
                reports = self._known.get(daemon.name) or {}
            report = reports.get(spec.name)
            if report is None or report["balancer"].get("revision") != body["revision"]:
                out.append(f"program balancer {spec.name} on daemon {daemon.name} "
                           f"({', '.join(ips)})")
        return out

    def unprogram(self, ref: BalancerRef) -> None:
        with self._lock:
            self._expected.pop(ref.name, None)
        for daemon in self.daemons:
            try:
                code, doc = self._call(daemon, "DELETE", f"/v1/balancers/{ref.name}")
            except TransientError as exc:
                log.warning("%s; its copy of %s is collected as an orphan when it is back",
                            exc, ref.name)
                continue
            if code not in (200, 404):
                log.warning("balancer %s: DELETE %s answered %d: %s", daemon.name, ref.name,
                            code, _problems(doc))
            with self._lock:
                known = self._known.get(daemon.name)
                if known is not None:
                    known.pop(ref.name, None)

    def withdraw(self) -> None:
        """Delete this cluster's balancers from these instances (they left the config)."""
        for ref in self.programmed():
            self.unprogram(ref)
        log.info("balancers of cluster %s withdrawn from %s", self.cluster_name,
                 ", ".join(d.name for d in self.daemons))

    def programmed(self) -> Iterable[BalancerRef]:
        self.poll_once()
        refs: dict[str, BalancerRef] = {}
        with self._lock:
            for reports in self._known.values():
                for item in (reports or {}).values():
                    ref = _ref(item)
                    if ref is not None and ref.cluster == self.cluster_name:
                        refs.setdefault(ref.name, ref)
        return list(refs.values())

    def close(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=10)
        for pool in self._http.values():
            pool.clear()

    # -- status polling -----------------------------------------------------------------------
    def subscribe(self, notify: Notify) -> None:
        self._notify = notify
        self._start_poller()

    def _start_poller(self) -> None:
        with self._lock:
            if self._poller is not None or not self.daemons:
                return
            self._poller = threading.Thread(target=self._poll_loop, name="balancer-status",
                                            daemon=True)
            self._poller.start()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.options.status_poll_seconds):
            try:
                self.poll_once()
            except Exception:  # the poller must outlive any surprise
                log.exception("balancer status poll failed")

    def poll_once(self) -> None:
        """Read every instance's report; notify for each balancer whose report changed or
        that an instance lost, and for each of this cluster's balancers an instance holds
        that nothing here programs (an instance that was down while its Service was deleted
        came back with it from its state file): the controller collects those orphans."""
        touched: set[str] = set()
        strangers: dict[str, BalancerRef] = {}
        for daemon in self.daemons:
            try:
                code, doc = self._call(daemon, "GET",
                                       f"/v1/balancers?cluster={self.cluster_name}")
            except TransientError as exc:
                with self._lock:
                    was = self._known.get(daemon.name, {})
                    self._known[daemon.name] = None
                    expected_now = set(self._expected)
                if was is not None:
                    log.warning("%s", exc)
                    touched |= expected_now  # degraded now: say so on the Services
                continue
            if code != 200:
                continue
            self.bgp.sync(daemon, doc.get("bgp"))
            reports = {item["balancer"]["name"]: item for item in doc.get("balancers", [])
                       if isinstance(item, dict) and "balancer" in item}
            with self._lock:
                before = self._known.get(daemon.name)
                self._known[daemon.name] = reports
                expected = dict(self._expected)
            old = before or {}
            for name in expected:
                if name not in reports or (before is None) or \
                        _summary(reports[name]) != _summary(old.get(name, {})):
                    touched.add(name)
            for name, item in reports.items():
                if name not in expected and name not in old:
                    ref = _ref(item)
                    if ref is not None and ref.cluster == self.cluster_name:
                        strangers[name] = ref
        notify = self._notify
        if notify is None:
            return
        with self._lock:
            refs = [self._expected[n] for n in touched if n in self._expected]
        for ref in [*refs, *strangers.values()]:
            notify(ref)


def _problems(doc: Any) -> str:
    if not isinstance(doc, dict):
        return str(doc)
    items = doc.get("problems") or []
    details = "; ".join(f"{p.get('field')}: {p.get('message')}" for p in items
                        if isinstance(p, dict))
    return f"{doc.get('error', '')}{': ' + details if details else ''}"
