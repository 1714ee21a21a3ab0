"""The targets of one listener and how a new connection or flow picks one.

Why a long-lived `Backend` object per endpoint: health verdicts, connection counts and the
closers of open connections must survive a config update that keeps the endpoint, or least-
connections would forget load and a re-sent config would resurrect a target health checks had
ejected. An endpoint that leaves is marked draining: it gets no new traffic, its open
connections may finish for `drain_seconds`, then they are cut. The pick structure (round-robin
list or Maglev table) is rebuilt only when the set of eligible backends changes, so a burst of
identical updates costs nothing.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from lbctl.balancer.maglev import MaglevTable
from lbctl.balancer.model import ListenerConfig, TargetConfig

Algorithm = Literal["roundRobin", "leastConnections", "maglev"]
Affinity = Literal["None", "ClientIP"]

EndpointKey = tuple[str, int]
"""(address, port) of a target: how health checks and the API name a backend."""

_tokens = itertools.count(1)


def endpoint(address: str, port: int) -> str:
    """`10.0.0.1:30080` / `[fd00::1]:30080`, the same form as TargetConfig.endpoint."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(slots=True)
class ListenerStats:
    """Counters of one frontend. Plain ints without locks: a frontend lives on one event loop
    thread, so increments never race, and a metrics scrape only needs a recent value. TCP
    connections and UDP flows share `connections`/`active`; `bytes_in` is client -> target."""

    connections: int = 0
    active: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    refused_acl: int = 0
    """TCP connections closed / UDP datagrams dropped because the source is not allowed."""
    refused_no_target: int = 0
    """Connections or flows turned away because no target was eligible."""
    refused_loop: int = 0
    """Connections / datagrams that came from this process's own sockets to targets: a
    forwarding loop the model could not see (a NAT, a name, another host's rule)."""
    connect_failures: int = 0
    """Connects to a target that failed or timed out (each attempt counts)."""
    local_failures: int = 0
    """Of those, the ones this host caused (no ephemeral port or fd left): no ejection."""
    datagrams_in: int = 0
    datagrams_out: int = 0
    dropped: int = 0
    """UDP datagrams lost (full buffer, unreachable target, no target)."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Backend:
    """One target endpoint: its health verdict, drain state and open connections/flows."""

    __slots__ = ("_closers", "active", "address", "draining", "failures", "label", "port",
                 "total", "up")

    def __init__(self, address: str, port: int, label: str = "") -> None:
        self.address = address
        self.port = port
        self.label = label or endpoint(address, port)
        self.up = True
        """The health verdict (active checks, passive ejection)."""
        self.draining = False
        """The endpoint left the config: no new traffic, open connections cut after a while."""
        self.active = 0
        """Open TCP connections (including ones still connecting) or UDP flows."""
        self.total = 0
        self.failures = 0
        """Connect failures seen by the data plane."""
        self._closers: dict[int, Callable[[], None]] = {}

    @property
    def key(self) -> EndpointKey:
        return (self.address, self.port)

    @property
    def endpoint(self) -> str:
        return endpoint(self.address, self.port)

    @property
    def eligible(self) -> bool:
        return self.up and not self.draining

    def __repr__(self) -> str:
        state = "up" if self.up else "down"
        if self.draining:
            state += ",draining"
        return f"Backend({self.endpoint} {state} active={self.active})"

    def attach(self, closer: Callable[[], None]) -> int:
        """Count a connection/flow; `closer` cuts it when draining ends. Returns a token."""
        token = next(_tokens)
        self._closers[token] = closer
        self.active += 1
        self.total += 1
        return token

    def detach(self, token: int) -> None:
        """The connection/flow ended (idempotent)."""
        if self._closers.pop(token, None) is not None:
            self.active -= 1

    def cut(self) -> int:
        """Close every open connection/flow now; returns how many were cut."""
        closers = list(self._closers.values())
        for close in closers:
            close()  # each closer detaches itself
        self._closers.clear()
        self.active = 0
        return len(closers)


class BackendSet:
    """The backends of one listener and the algorithm that picks among the eligible ones."""

    def __init__(self, targets: tuple[TargetConfig, ...] = (),
                 algorithm: Algorithm = "roundRobin", session_affinity: Affinity = "None") -> None:
        self.configured_algorithm: Algorithm = algorithm
        self.session_affinity: Affinity = session_affinity
        self.algorithm: Algorithm = "maglev" if session_affinity == "ClientIP" else algorithm
        self._backends: dict[EndpointKey, Backend] = {}
        self._drain_timers: dict[EndpointKey, asyncio.TimerHandle] = {}
        self._eligible: list[Backend] = []
        self._eligible_keys: frozenset[EndpointKey] = frozenset()
        self._by_endpoint: dict[str, Backend] = {}
        self._maglev = MaglevTable(())
        self._rr = 0
        self.rebuilds = 0
        """How many times the pick structure was rebuilt (tests check no-op updates)."""
        for target in targets:
            self._backends[(target.address, target.port)] = Backend(target.address, target.port,
                                                                     target.label)
        self._rebuild()

    @classmethod
    def for_listener(cls, listener: ListenerConfig,
                     session_affinity: Affinity = "None") -> BackendSet:
        return cls(listener.targets, listener.algorithm, session_affinity)

    @property
    def backends(self) -> tuple[Backend, ...]:
        """Every backend, including draining ones that still hold connections."""
        return tuple(self._backends.values())

    @property
    def eligible(self) -> tuple[Backend, ...]:
        return tuple(self._eligible)

    def get(self, key: EndpointKey) -> Backend | None:
        return self._backends.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._backends

    @property
    def size(self) -> int:
        """How many backends (draining ones included); no __len__: a set is never falsy."""
        return len(self._backends)

    def _rebuild(self) -> None:
        eligible = [b for b in self._backends.values() if b.eligible]
        keys = frozenset(b.key for b in eligible)
        self._eligible = eligible
        if keys == self._eligible_keys:
            return
        self._eligible_keys = keys
        self._by_endpoint = {b.endpoint: b for b in eligible}
        if self.algorithm == "maglev":
            self._maglev = MaglevTable(list(self._by_endpoint))
        self.rebuilds += 1

    def pick(self, client_ip: str, *, client_port: int | None = None,
             exclude: Backend | None = None) -> Backend | None:
        """An eligible backend for a new connection/flow, or None when there is none.

        Maglev hashes the client IP (ClientIP affinity) or, without affinity, IP:port when the
        port is given. `exclude` skips a backend that just failed to connect."""
        eligible = self._eligible
        if not eligible:
            return None
        if self.algorithm == "maglev":
            key = client_ip
            if client_port is not None and self.session_affinity != "ClientIP":
                key = f"{client_ip}:{client_port}"
            if exclude is None:
                found = self._maglev.lookup(key)
            else:
                found = self._maglev.lookup_excluding(key, exclude.endpoint)
            return self._by_endpoint[found] if found is not None else None
        n = len(eligible)
        start = self._rr % n
        self._rr = start + 1
        if self.algorithm == "leastConnections":
            best: Backend | None = None
            for i in range(n):
                candidate = eligible[(start + i) % n]
                if candidate is not exclude and (best is None or candidate.active < best.active):
                    best = candidate
            return best
        for i in range(n):
            candidate = eligible[(start + i) % n]
            if candidate is not exclude:
                self._rr = start + i + 1
                return candidate
        return None

    def set_up(self, key: EndpointKey, up: bool) -> bool:
        """Record a health verdict for an endpoint; returns whether anything changed."""
        backend = self._backends.get(key)
        if backend is None or backend.up == up:
            return False
        backend.up = up
        self._rebuild()
        return True

    def set_many(self, verdicts: Iterable[tuple[EndpointKey, bool]]) -> bool:
        """Record many verdicts with one rebuild (a new frontend taking over thousands of
        verdicts must not rebuild the picking tables once per target)."""
        changed = False
        for key, up in verdicts:
            backend = self._backends.get(key)
            if backend is not None and backend.up != up:
                backend.up = up
                changed = True
        if changed:
            self._rebuild()
        return changed

    def update(self, targets: tuple[TargetConfig, ...], drain_seconds: float) -> None:
        """Apply a new target list: keep the Backend of every endpoint that stays (health,
        counters), add new ones up, drain the ones that left and cut them after
        `drain_seconds` (on the running loop; at once when there is no loop to wait on)."""
        wanted = {(t.address, t.port): t for t in targets}
        for key, target in wanted.items():
            backend = self._backends.get(key)
            if backend is None:
                self._backends[key] = Backend(target.address, target.port, target.label)
                continue
            backend.label = target.label
            if backend.draining:
                backend.draining = False
                timer = self._drain_timers.pop(key, None)
                if timer is not None:
                    timer.cancel()
        leaving = [b for key, b in self._backends.items() if key not in wanted and not b.draining]
        for backend in leaving:
            backend.draining = True
        self._rebuild()
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for backend in leaving:
            if loop is None or drain_seconds <= 0 or backend.active == 0:
                self._finish_drain(backend.key)
            else:
                self._drain_timers[backend.key] = loop.call_later(
                    drain_seconds, self._finish_drain, backend.key)

    def _finish_drain(self, key: EndpointKey) -> None:
        self._drain_timers.pop(key, None)
        backend = self._backends.get(key)
        if backend is None or not backend.draining:
            return
        backend.cut()
        del self._backends[key]

    def close_all(self) -> None:
        """Cut every connection of every backend and cancel pending drains."""
        for timer in self._drain_timers.values():
            timer.cancel()
        self._drain_timers.clear()
        for backend in list(self._backends.values()):
            backend.cut()
        for key in [k for k, b in self._backends.items() if b.draining]:
            del self._backends[key]
