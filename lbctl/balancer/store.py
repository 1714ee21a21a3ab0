"""What the daemon should serve: static balancers from a file plus those programmed over the API.

Why a store of its own: the daemon must come back from a restart serving what it served before,
without waiting for a controller (which may itself be down). Programmed balancers are written to
`--state-file` atomically (temp file, fsync, rename) after every accepted change and read back on
start; a corrupt or unreadable file costs only what it held, never the static balancers, and the
controller's next poll re-programs anything missing anyway. Static balancers (the operator's
file) always win over programmed ones of the same name, and no change is accepted that would
make two balancers claim one VIP:port/protocol: such a request is refused naming both.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from lbctl.parsing import ConfigError

from .model import BalancerConfig, frontend_clash, parse_balancer, to_json

log = logging.getLogger(__name__)


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
        self.generation = 0

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
            self.generation += 1
            if dropped:
                self._save()
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
            if self._programmed.get(balancer.name) == balancer:
                return False
            self._programmed[balancer.name] = balancer
            self.generation += 1
            self._save()
            return True

    def delete(self, name: str) -> None:
        """Forget a programmed balancer. Raises Refused (404 unknown, 409 static)."""
        with self._lock:
            if name in self._static:
                raise Refused(409, f'balancer "{name}" is defined in the static file')
            if name not in self._programmed:
                raise Refused(404, f'balancer "{name}" not found')
            del self._programmed[name]
            self.generation += 1
            self._save()

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
        for i, raw in enumerate(items):
            try:
                balancer = parse_balancer(raw, f"{self._state_file}: balancers[{i}]")
                self.put(balancer)
                loaded += 1
            except (ConfigError, Refused) as exc:
                log.error("state file entry skipped: %s", exc)
        return loaded

    def _save(self) -> None:
        """Lock held. Atomic: a crash leaves the old file or the new one, never half."""
        if self._state_file is None:
            return
        body = json.dumps({"balancers": [to_json(b) for b in self._programmed.values()]},
                          indent=1, sort_keys=True)
        directory = self._state_file.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".state-")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            Path(tmp).replace(self._state_file)
        except OSError as exc:
            log.error("could not write state file %s: %s", self._state_file, exc)
            Path(tmp).unlink(missing_ok=True)
