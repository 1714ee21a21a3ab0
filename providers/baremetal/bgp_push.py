"""Keeping every balancer daemon's BGP section equal to `baremetal.bgp`, and reading it back.

Why beside the balancer programming and not in it: the section is per daemon, not per Service.
Each status poll's listing (`GET /v1/balancers`) carries the daemon's section (`bgp`: source
and config); the provider writes (`PUT /v1/bgp`, or `DELETE` when the config has none for that
daemon) only when it differs from what the daemon should hold, so a daemon that restarted
without its state file, or a config reload, converges within one poll at no extra request. The
first `program` of a process with a section to push reads `GET /v1/bgp` once per daemon, so the
first Service is announced without waiting for a poll.

From the same reads: whether any daemon announces a Service's VIP. "Announced" is per daemon
(its targets healthy, a session up, not draining); the Service is degraded only when NO daemon
announces it (one host withdrawing because its targets went bad is what ECMP is for), and the
reason names what each daemon said.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from providers.errors import TransientError

from .bgp_settings import BgpSettings, body_for
from .settings import BalancerDaemon

log = logging.getLogger(__name__)
NEW = "new:"
"""How a daemon's reason starts for a VIP waiting out its targets' first checks."""
Call = Callable[[BalancerDaemon, str, str, "dict[str, Any] | None"], "tuple[int, Any]"]


class BgpPusher:
    """Thread-safe; `sync(daemon)` from the poller, `unannounced(...)` from `program`."""

    def __init__(self, settings: BgpSettings, call: Call) -> None:
        self.settings = settings
        self._call = call
        self._lock = threading.Lock()
        self._synced: set[str] = set()

    @property
    def active(self) -> bool:
        return self.settings.config is not None

    def sync_once(self, daemon: BalancerDaemon) -> None:
        """With a section to push: `sync` the first time a daemon is programmed in this
        process (the poll may be seconds away). Without one, the poll's listing suffices."""
        with self._lock:
            if not self.active or daemon.name in self._synced:
                return
        try:
            code, doc = self._call(daemon, "GET", "/v1/bgp", None)
        except TransientError as exc:
            log.debug("BGP sync skipped: %s", exc)
            return
        if code == 200 and isinstance(doc, dict):
            self.sync(daemon, doc)

    def sync(self, daemon: BalancerDaemon, doc: Any) -> None:
        """`doc`: the daemon's section as its listing (or `GET /v1/bgp`) reports it, `source`
        and `config`; written when it differs. Errors are logged, never raised: BGP must not
        hold up programming balancers. A listing without `bgp`: the daemon holds none."""
        if doc is None:
            doc = {"source": "none", "config": None}  # listings carry `bgp` only when set
        if not isinstance(doc, dict):
            return
        try:
            if self.settings.managed and doc.get("source") != "static":
                self._converge(daemon, doc)
            with self._lock:
                self._synced.add(daemon.name)
        except TransientError as exc:
            log.debug("BGP sync skipped: %s", exc)

    def _converge(self, daemon: BalancerDaemon, doc: dict[str, Any]) -> None:
        want = body_for(self.settings, daemon.name)
        if want == doc.get("config"):
            return
        if want is None:
            code, answer = self._call(daemon, "DELETE", "/v1/bgp", None)
            what = "withdrawn"
        else:
            code, answer = self._call(daemon, "PUT", "/v1/bgp", want)
            what = f"programmed ({len(want['peers'])} peers)"
        if code != 200:
            log.warning("balancer %s refused the BGP section (%d): %s", daemon.name, code,
                        answer.get("error") if isinstance(answer, dict) else answer)
            return
        log.info("balancer %s: BGP section %s", daemon.name, what)

    def unannounced(self, ips: tuple[str, ...], reports: dict[str, dict[str, Any]]
                    ) -> list[str]:
        """For each VIP that BGP carries and no daemon announces: why, per daemon. `reports`
        is daemon -> that daemon's report of the balancer (its status has `bgp` per VIP)."""
        if not self.active:
            return []
        out = []
        for vip in ips:
            seen: dict[str, dict[str, Any]] = {}
            for name, report in reports.items():
                view = (report.get("status", {}).get("bgp") or {}).get(vip)
                if isinstance(view, dict):
                    seen[name] = view
            if not seen or any(v.get("announced") for v in seen.values()):
                continue  # not a BGP VIP (or not reported yet), or announced somewhere
            if all(str(v.get("reason", "")).startswith(NEW) for v in seen.values()):
                continue  # new: waiting out its targets' first checks, not a problem yet
            why = "; ".join(f"{name}: {view.get('reason') or 'no session up'}"
                            for name, view in sorted(seen.items()))
            out.append(f"VIP {vip} is announced over BGP by no balancer host ({why})")
        return out
