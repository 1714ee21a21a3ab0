"""What the API says about one balancer: per target up/down, why, active connections, and the
balancer's problems in words.

Apart from the data plane because it is read-only and hot in its own way: the provider polls
every instance's list every 2 s, 10,000 targets included, on the loop that carries traffic, so
this loop is kept lean (locals, one dictionary per target, no property called twice).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .model import BalancerConfig


class Served(Protocol):
    """What status reads of the data plane (`Dataplane` is one; no import of it here)."""

    @property
    def desired(self) -> Mapping[str, BalancerConfig]: ...
    @property
    def in_kernel(self) -> Mapping[str, BalancerConfig]: ...
    @property
    def running(self) -> Mapping[Any, Any]: ...
    @property
    def health(self) -> Any: ...
    @property
    def workers(self) -> Any: ...
    @property
    def problems(self) -> Any: ...
    @property
    def kernel_error(self) -> str | None: ...
    @property
    def kernel_applied(self) -> bool: ...


def balancer_status(dp: Served, name: str) -> dict[str, Any]:
    """Target health and problems of balancer `name`, as the API reports it."""
    b = dp.desired.get(name)
    if b is None:
        return {"serving": False, "message": "not served"}
    listeners: list[dict[str, Any]] = []
    down: set[str] = set()
    healthy = total = 0
    in_kernel = name in dp.in_kernel
    reason, is_up, workers = dp.health.reason, dp.health.is_up, dp.workers
    for li in b.listeners:
        front = (li.protocol, b.addresses[0], li.port)
        run = dp.running.get(front)
        get = run.backends.get if run is not None else None
        targets: list[dict[str, Any]] = []
        for t in li.targets:  # 10,000 targets are polled every 2 s: keep this loop lean
            key = (t.address, t.port)
            label = t.name or t.endpoint
            backend = get(key) if get is not None else None
            up = is_up(key) if in_kernel else (backend is not None and backend.up)
            active = backend.active if backend is not None else 0
            if workers is not None:
                active += workers.target_active(front, key)
            targets.append({"name": label, "address": t.address, "port": t.port,
                            "up": up, "active": active, "reason": reason(key)})
            healthy += up
            total += 1
            if not up:
                down.add(label)
        listeners.append({"protocol": li.protocol, "port": li.port,
                          "bound": run is not None or (in_kernel and dp.kernel_applied),
                          "targets": targets})
    problems = list(dp.problems.by_balancer.get(name, []))
    if in_kernel and dp.kernel_error:
        problems.append(dp.kernel_error)
    if down:
        problems.append(f"{healthy} of {total} targets healthy; down: "
                        f"{', '.join(sorted(down))}")
    if total == 0:
        problems.append("no targets")
    serving = any(li["bound"] for li in listeners) and healthy > 0
    return {"serving": serving, "dataplane": "nftables" if in_kernel else "userspace",
            "healthyTargets": healthy,
            "totalTargets": total, "problems": problems, "listeners": listeners}
