"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Only the leader runs the controller; a standby replica stays ready and takes over when the
Lease expires (15 s after the last renewal it saw), or at once when the leader releases it on
shutdown. Timings are upstream's: lease 15 s, renew deadline 10 s, retry 2 s.

Why not the client's `kubernetes.leaderelection` (37.x): it calls `sys.exit` on a bad config and
a missing lock; its `LeaseLock` builds `CoordinationV1Api()` on the global default client (no
way to pass ours, its limits or its kubeconfig); `run()` blocks forever with no way to stop a
candidate; there is no release on shutdown (a standby then waits out the full 15 s); the renew
loop GETs before every PUT; and `on_started_leading` runs in a daemon thread racing
`on_stopped_leading`. So this module keeps its algorithm and fixes those:

- acquire/renew is compare-and-swap on the Lease's resourceVersion: a 409 means someone else
  wrote first, never two leaders. The leader renews with a PUT on the resourceVersion of its last
  write and only reads the Lease when that conflicts;
- expiry is judged on this process's monotonic clock from when the record last changed (not the
  timestamps written in it), so clock skew between replicas cannot shorten a lease;
- the leader steps down when `renew_deadline` passes without a successful renewal (counted from
  when the last good renewal was sent, so it is always before any standby may take over), or at
  once when it sees another holder;
- `release()` writes holderIdentity "" with leaseDurationSeconds 1, so a standby acquires at its
  next try; it never exits the process; after losing the lease the elector goes back to standby;
- callbacks run on the elector's thread in order (start, then stop): they must return quickly,
  starting and stopping the controller's own threads.

Give the elector a Kube of its own (`Kube.with_limits`) so a busy controller's rate limiter can
never delay a renewal: upstream's controller-manager uses a separate client for the same reason.
"""

from __future__ import annotations

import enum
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .client import LEASES, ApiError, Kube

log = logging.getLogger("lbctl.kube.leader")
JITTER = 0.2
"""Standby retries every retry_period * (1 .. 1.2): client-go's 1.2 would allow 4.4 s."""


@dataclass(frozen=True)
class LeaderConfig:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("leader election: identity must not be empty")
        if not self.lease_duration > self.renew_deadline > self.retry_period * (1 + JITTER) > 0:
            raise ValueError("leader election: need lease_duration > renew_deadline > "
                             f"retry_period * {1 + JITTER} > 0")


class _Try(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    TAKEN = "taken"  # another holder has a valid lease


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(lease: dict[str, Any]) -> tuple[Any, ...]:
    spec = lease.get("spec") or {}
    return tuple(spec.get(k) for k in ("holderIdentity", "leaseDurationSeconds", "acquireTime",
                                       "renewTime", "leaseTransitions"))


class LeaderElector:
    """One candidate: `start()` campaigns on a thread; `release()` on shutdown."""

    def __init__(self, kube: Kube, config: LeaderConfig, *,
                 on_started_leading: Callable[[], None],
                 on_stopped_leading: Callable[[], None],
                 on_new_leader: Callable[[str], None] | None = None) -> None:
        self.kube, self.config = kube, config
        self.on_started_leading, self.on_stopped_leading = on_started_leading, on_stopped_leading
        self.on_new_leader = on_new_leader
        self._leading = False
        self._lease: dict[str, Any] | None = None  # as we last wrote or read it
        self._observed: tuple[Any, ...] = ()
        self._observed_at = 0.0
        self._holder = ""
        self._last_ok = 0.0
        self._stop = threading.Event()
        self._release_on_stop = True
        self._thread: threading.Thread | None = None

    # -- public -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"leader-{self.config.identity}")
            self._thread.start()

    def is_leader(self) -> bool:
        return self._leading

    @property
    def leader(self) -> str:
        """The holder seen last ("" when none, or the Lease was released)."""
        return self._holder

    def release(self, timeout: float = 15.0) -> None:
        """Stop campaigning and give the Lease up if held, so a standby takes over at once."""
        self.stop(release=True, timeout=timeout)

    def stop(self, release: bool = True, timeout: float = 15.0) -> None:
        """Stop campaigning; a leader steps down (releasing the Lease unless told not to)."""
        self._release_on_stop = release
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        cfg = self.config
        while not self._stop.is_set():
            if self._try(cfg.renew_deadline) is _Try.OK:
                if self._stop.is_set():  # acquired while being stopped: hand it back
                    self._release()
                    return
                self._lead()
            else:
                self._stop.wait(cfg.retry_period * random.uniform(1, 1 + JITTER))  # noqa: S311

    def _lead(self) -> None:
        cfg = self.config
        self._leading = True
        log.info("%s: became leader of %s/%s", cfg.identity, cfg.namespace, cfg.name)
        if not self._callback(self.on_started_leading):
            self._release()
            self._step_down("on_started_leading failed")
            return
        while not self._stop.wait(cfg.retry_period):
            deadline = self._last_ok + cfg.renew_deadline
            outcome = _Try.FAILED
            while not self._stop.is_set() and time.monotonic() < deadline:
                outcome = self._try(deadline - time.monotonic())
                if outcome is not _Try.FAILED:
                    break
                self._stop.wait(min(cfg.retry_period / 4, max(0.0, deadline - time.monotonic())))
            if outcome is _Try.OK or self._stop.is_set():
                continue
            self._step_down("the Lease was taken over" if outcome is _Try.TAKEN
                            else "no renewal within the renew deadline")
            return
        if self._release_on_stop:
            self._release()
        self._step_down("stopped")

    def _step_down(self, why: str) -> None:
        self._leading = False
        log.info("%s: stopped leading: %s", self.config.identity, why)
        self._callback(self.on_stopped_leading)

    def _callback(self, callback: Callable[[], None]) -> bool:
        try:
            callback()
        except Exception:
            log.exception("%s: leader election callback failed", self.config.identity)
            return False
        return True

    # -- one attempt --------------------------------------------------------------------------
    def _try(self, budget: float) -> _Try:
        """Acquire or renew once, within `budget` seconds of request time."""
        cfg = self.config
        timeout = (min(5.0, max(0.1, budget)), max(0.1, budget))
        sent = time.monotonic()
        if self._leading and self._lease is not None:
            try:  # fast path: compare-and-swap on our own last write
                self._wrote(self._put(self._spec(self._lease, acquire=False), timeout), sent)
                return _Try.OK
            except ApiError as err:
                if not err.conflict:
                    return _Try.FAILED
        path = LEASES.path(cfg.namespace, cfg.name)
        try:
            lease = self.kube.request("GET", path, timeout=timeout)
        except ApiError as err:
            if not err.not_found:
                return _Try.FAILED
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": cfg.name, "namespace": cfg.namespace},
                    "spec": self._spec({}, acquire=True)["spec"]}
            try:
                created = self.kube.request("POST", LEASES.path(cfg.namespace), body=body,
                                            timeout=timeout)
            except ApiError:
                return _Try.FAILED
            self._wrote(created, sent)
            return _Try.OK
        self._observe(lease)
        holder = (lease.get("spec") or {}).get("holderIdentity") or ""
        if holder and holder != cfg.identity and not self._expired(lease):
            return _Try.TAKEN if self._leading else _Try.FAILED
        try:  # as upstream, taking over our own old Lease after a restart is an acquisition
            self._wrote(self._put(self._spec(lease, acquire=not self._leading), timeout), sent)
        except ApiError:
            return _Try.FAILED
        return _Try.OK

    def _spec(self, lease: dict[str, Any], *, acquire: bool) -> dict[str, Any]:
        """`lease` with this candidate as holder, renewed now (acquired now if `acquire`)."""
        old = lease.get("spec") or {}
        now = _micro_time()
        spec = {"holderIdentity": self.config.identity,
                "leaseDurationSeconds": max(1, math.ceil(self.config.lease_duration)),
                "acquireTime": now if acquire else old.get("acquireTime", now),
                "renewTime": now,
                "leaseTransitions": int(old.get("leaseTransitions") or 0) + (
                    1 if acquire and lease else 0)}  # as upstream: every acquisition counts
        return {**lease, "spec": spec}

    def _put(self, lease: dict[str, Any], timeout: tuple[float, float]) -> dict[str, Any]:
        return self.kube.request("PUT", LEASES.path(self.config.namespace, self.config.name),
                                 body=lease, timeout=timeout)

    def _wrote(self, lease: dict[str, Any], sent: float) -> None:
        self._lease = lease
        self._last_ok = sent
        self._observe(lease)

    def _observe(self, lease: dict[str, Any]) -> None:
        record = _record(lease)
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        holder = record[0] or ""
        if holder != self._holder:
            self._holder = holder
            callback = self.on_new_leader
            if callback is not None and holder:
                self._callback(lambda: callback(holder))

    def _expired(self, lease: dict[str, Any]) -> bool:
        seconds = (lease.get("spec") or {}).get("leaseDurationSeconds")
        duration = seconds if isinstance(seconds, int) and seconds > 0 else (
            self.config.lease_duration)
        return time.monotonic() >= self._observed_at + duration

    def _release(self) -> None:
        """Give the Lease up: holder "", 1 s duration, so a standby acquires at its next try."""
        for _ in range(3):
            lease = self._lease
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != (
                    self.config.identity):
                return
            now = _micro_time()
            spec = {**(lease.get("spec") or {}), "holderIdentity": "",
                    "leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now}
            try:
                self._lease = self._put({**lease, "spec": spec}, (5.0, 5.0))
                log.info("%s: released the Lease", self.config.identity)
                return
            except ApiError as err:
                if not err.conflict:
                    log.warning("%s: could not release the Lease: %s", self.config.identity,
                                err)
                    return
            try:  # written meanwhile (an injected 409, or a takeover): look again
                self._lease = self.kube.request("GET", LEASES.path(self.config.namespace,
                                                                   self.config.name))
            except ApiError:
                return
