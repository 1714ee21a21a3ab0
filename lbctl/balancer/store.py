"""What the daemon should serve: static balancers from a file plus those programmed over the API.

Why a store of its own: the daemon must come back from a restart serving what it served before,
without waiting for a controller (which may itself be down). Programmed balancers are written to
`--state-file` atomically (temp file, fsync, rename) by `persist()` after accepted changes, and read
back on start; the daemon calls `persist` in a thread, never on the loop that carries traffic
(10,000 targets are ~70 ms of encoding and an fsync). Each balancer's JSON form is kept from its
`put`, so a write costs one orjson encode, not a model dump of everything. A state file that cannot
be written (a read-only directory, a full disk) never undoes or refuses a change: the daemon serves
from memory and says so (`persist_error`, in every programmed balancer's status) until a write
succeeds; a corrupt or unreadable file costs only what it held, never the static balancers, and the
controller's next poll re-programs anything missing anyway. Static balancers (the operator's file)
always win over programmed ones of the same name, and no change is accepted that would make two
balancers claim one VIP:port/protocol: such a request is refused naming both.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import orjson

from lbctl.bgp_config import BgpConfig, parse_bgp
from lbctl.parsing import ConfigError

from .model import BalancerConfig, frontend_clash, parse_balancer, to_json

log = logging.getLogger(__name__)


MAX_FRONTENDS = 4096
"""Listening sockets one daemon serves (each VIP x port), refused before any work."""


class Refused(ValueError):
    """A change the store will not take; `status` is the HTTP answer (404, 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Store:
    """Thread-safe; `generation` grows with every change so appliers can tell what is new."""

    def __init__(self, state_file: Path | None = None) -> None:
        self._state_file = state_file
        self._lock = threading.Lock()
        self._static: dict[str, BalancerConfig] = {}
        self._programmed: dict[str, BalancerConfig] = {}
        self._docs: dict[str, dict[str, Any]] = {}
        """The wire form of every balancer, made once per change (API answers, state file)."""
        self.generation = 0
        self._persisted = 0
        self._write_lock = threading.Lock()
        self._reserved: set[tuple[str, str, int]] = set()
        self.persist_error: str | None = None
        """Why the last write of the state file failed; None once one succeeds."""
        self._bgp_static: BgpConfig | None = None
        self._bgp_programmed: BgpConfig | None = None

    # -- BGP: the static file's section wins over the provider's (like balancers) -------------
    def bgp(self) -> BgpConfig | None:
        with self._lock:
            return self._bgp_static or self._bgp_programmed

    def bgp_source(self) -> str:
        with self._lock:
            return ("static" if self._bgp_static else
                    "programmed" if self._bgp_programmed else "none")

    def set_static_bgp(self, config: BgpConfig | None) -> bool:
        with self._lock:
            changed = config != self._bgp_static
            self._bgp_static = config
            return changed

    def put_bgp(self, config: BgpConfig | None) -> bool:
        """The provider's section (None: removed); answers whether it changed."""
        with self._lock:
            if config == self._bgp_programmed:
                return False
            self._bgp_programmed = config
            self.generation += 1
            return True

    # -- reading ---------------------------------------------------------------------------------
    def desired(self) -> list[BalancerConfig]:
        """Everything to serve, static first, each name once."""
        with self._lock:
            merged = dict(self._static)
            merged.update({n: b for n, b in self._programmed.items() if n not in merged})
            return list(merged.values())

    def get(self, name: str) -> tuple[BalancerConfig, bool] | None:
        """The balancer and whether it is static."""
        with self._lock:
            if name in self._static:
                return self._static[name], True
            if name in self._programmed:
                return self._programmed[name], False
            return None

    def programmed(self) -> list[BalancerConfig]:
        with self._lock:
            return list(self._programmed.values())

    def doc(self, name: str) -> dict[str, Any] | None:
        """The balancer's wire form (`to_json`), made when it was stored; do not modify."""
        with self._lock:
            return self._docs.get(name)

    # -- writing ---------------------------------------------------------------------------------
    def set_static(self, balancers: tuple[BalancerConfig, ...]) -> list[str]:
        """Replace the static set. Programmed balancers that now clash with it are dropped
        (the operator's file wins); answers their names."""
        with self._lock:
            self._static = {b.name: b for b in balancers}
            dropped = []
            for name, b in list(self._programmed.items()):
                if name in self._static or frontend_clash([*self._static.values(), b]):
                    dropped.append(name)
                    del self._programmed[name]
            self._docs = {n: d for n, d in self._docs.items() if n in self._programmed}
            self._docs.update({b.name: to_json(b) for b in balancers})
            was_current = self._persisted == self.generation
            self.generation += 1
            if was_current and not dropped:
                self._persisted = self.generation  # static ones are never saved: still current
            return dropped

    def put(self, balancer: BalancerConfig) -> bool:
        """Program a balancer; answers whether anything changed. Raises Refused."""
        with self._lock:
            if balancer.name in self._static:
                raise Refused(409, f'balancer "{balancer.name}" is defined in the static file '
                                   "and cannot be programmed over the API")
            others = [b for n, b in {**self._programmed, **self._static}.items()
                      if n != balancer.name]
            clash = frontend_clash([*others, balancer])
            if clash:
                raise Refused(409, clash)
            loop = self._loop([*others, balancer], balancer)
            if loop:
                raise Refused(422, loop)
            fronts = sum(len(b.frontends()) for b in others) + len(balancer.frontends())
            if fronts > MAX_FRONTENDS:
                raise Refused(422, f"this daemon would serve {fronts} frontends (VIP x port); "
                                   f"at most {MAX_FRONTENDS}: spread the balancers over more "
                                   "daemons")
            if self._programmed.get(balancer.name) == balancer:
                return False
            self._programmed[balancer.name] = balancer
            self._docs[balancer.name] = to_json(balancer)
            self.generation += 1
            return True

    def reserve(self, protocol: str, address: str, port: int) -> None:
        """A socket of the daemon's own (its API, metrics, heartbeats) that no target may
        point at; `address` "0.0.0.0" or "::" (a wildcard bind) reserves the port on loopback
        and on every VIP the daemon serves."""
        with self._lock:
            self._reserved.add((protocol, address, port))

    def _loop(self, balancers: list[BalancerConfig], new: BalancerConfig) -> str | None:
        """Why `new` would make traffic loop inside this daemon, or None: a target that is
        one of the daemon's frontends or reserved sockets, or a frontend of `new` that another
        balancer already targets."""
        fronts = {(proto, vip, port): b.name for b in balancers
                  for proto, vip, port in b.frontends()}
        vips = {vip for _, vip, _ in fronts}
        for i, li in enumerate(new.listeners):
            for j, t in enumerate(li.targets):
                where = f"listeners[{i}].targets[{j}]: {t.endpoint}"
                owner = fronts.get((li.protocol, t.address, t.port))
                if owner is not None:
                    return (f'{where} is {"its own" if owner == new.name else "a"} frontend '
                            f'(balancer "{owner}") on this daemon: traffic would loop')
                if self._reserved_hit(li.protocol, t.address, t.port, vips):
                    return f"{where} is one of this balancer daemon's own ports"
        mine = set(new.frontends())
        for b in balancers:
            if b.name == new.name:
                continue
            for li in b.listeners:
                for t in li.targets:
                    if (li.protocol, t.address, t.port) in mine:
                        return (f'frontend {t.endpoint}/{li.protocol} is a target of balancer '
                                f'"{b.name}" on this daemon: traffic would loop')
        return None

    def _reserved_hit(self, protocol: str, address: str, port: int, vips: set[str]) -> bool:
        for r_proto, r_address, r_port in self._reserved:
            if r_proto != protocol or r_port != port:
                continue
            if address == r_address:
                return True
            if r_address in ("0.0.0.0", "::") and (ipaddress.ip_address(address).is_loopback
                                                    or address in vips):
                return True
        return False

    def delete(self, name: str) -> None:
        """Forget a programmed balancer. Raises Refused (404 unknown, 409 static)."""
        with self._lock:
            if name in self._static:
                raise Refused(409, f'balancer "{name}" is defined in the static file')
            if name not in self._programmed:
                raise Refused(404, f'balancer "{name}" not found')
            del self._programmed[name]
            del self._docs[name]
            self.generation += 1

    # -- persistence -----------------------------------------------------------------------------
    def load(self) -> int:
        """Read programmed balancers back from the state file; answers how many. Bad entries
        are skipped with a log line naming them."""
        if self._state_file is None or not self._state_file.exists():
            return 0
        try:
            doc = json.loads(self._state_file.read_text())
            items: list[Any] = list(doc["balancers"] or [])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("state file %s unreadable, starting without programmed balancers: %s",
                      self._state_file, exc)
            return 0
        loaded = 0
        if isinstance(doc, dict) and doc.get("bgp") is not None:
            try:
                self.put_bgp(parse_bgp(doc["bgp"], f"{self._state_file}: bgp"))
            except ConfigError as exc:
                log.error("state file's bgp section skipped: %s", exc)
        for i, raw in enumerate(items):
            try:
                balancer = parse_balancer(raw, f"{self._state_file}: balancers[{i}]")
                self.put(balancer)
                loaded += 1
            except (ConfigError, Refused) as exc:
                log.error("state file entry skipped: %s", exc)
        return loaded

    def persist(self) -> bool:
        """Write the programmed balancers to the state file if anything changed since the last
        write; answers whether the file holds the latest generation. Thread-safe and meant for
        a worker thread. Atomic: a crash leaves the old file or the new one, never half."""
        if self._state_file is None:
            return True
        with self._write_lock:
            with self._lock:
                generation = self.generation
                if generation == self._persisted:
                    return True
                docs = [self._docs[name] for name in self._programmed]
                bgp = (self._bgp_programmed.model_dump(mode="json", by_alias=True)
                       if self._bgp_programmed is not None else None)
            body: dict[str, Any] = {"balancers": docs}
            if bgp is not None:
                body["bgp"] = bgp
            error = self._write(orjson.dumps(body,
                                             option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
            with self._lock:
                self.persist_error = error
                if error is None:
                    self._persisted = max(self._persisted, generation)
                return error is None and self._persisted == self.generation

    def _write(self, body: bytes) -> str | None:
        assert self._state_file is not None
        tmp: Path | None = None
        try:
            directory = self._state_file.parent
            directory.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=directory, prefix=".state-")
            tmp = Path(name)
            with os.fdopen(fd, "wb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(self._state_file)
            return None
        except OSError as exc:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            message = (f"cannot write the state file {self._state_file} "
                       f"({exc.strerror or exc}): serving from memory, a restart forgets "
                       "programmed balancers until the controller programs them again")
            log.error("%s", message)
            return message
