"""`lbctl status` rows, built from raw Service and Event dicts with no I/O.

What the controller writes back is all an operator's tool can read from the cluster: the
ingress, the `LoadBalancer*` conditions (`conditions`), the cleanup finalizer (`decisions`) and
Warning Events. This module turns those into one `Row` per Service, so every rule below is
table-tested without a cluster and `lbctl status` only fetches and prints.

- PROVIDER: the config's provider when `--config` says the controller owns the Service's class;
  else what the Service itself tells: an `lbctl.io/<provider>` class (the deploy overlays' and
  the chart's convention), then, for a Service lbctl marks as its own (our finalizer or
  conditions), a provider's annotation prefix or an ELB hostname; `lbctl` when it is ours but
  nothing names the provider, none when it is not ours.
- READY: the `LoadBalancerServing` condition's status (`Unknown` while lbctl has not written
  it yet, none for a Service lbctl does not handle).
- TARGETS: the healthy/total counts the provider reported (`LoadBalancerStatus.targets`),
  which the controller writes at the end of the `LoadBalancerServing` message in one fixed form
  (`conditions.targets_of` reads it). A provider without an honest source (see its module)
  reports none, and TARGETS is "-": unknown, never a guess. A Service last written by an lbctl
  that published counts only in words falls back to those words in `LoadBalancerDegraded` (or
  the serving condition's NoHealthyTargets message): the balancer daemon's "2 of 3 targets
  healthy", AWS's "1 of 3 targets unhealthy in <group>", "no targets"; the worst such report
  wins (each daemon and each target group sees the same nodes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .conditions import DEGRADED, OURS, SERVING, targets_of
from .config import Config
from .decisions import LBCTL_FINALIZER

Obj = Mapping[str, Any]
KNOWN_PROVIDERS = ("aws", "gcp", "azure", "baremetal", "fake")
ANNOTATION_HINTS = (("service.beta.kubernetes.io/aws-load-balancer-", "aws"),
                    ("networking.gke.io/", "gcp"), ("cloud.google.com/", "gcp"),
                    ("service.beta.kubernetes.io/azure-", "azure"),
                    ("metallb.universe.tf/", "baremetal"), ("metallb.io/", "baremetal"),
                    ("fake.lbctl.io/", "fake"))
_HEALTHY = re.compile(r"(\d+) of (\d+) targets healthy")
_UNHEALTHY = re.compile(r"(\d+) of (\d+) targets unhealthy")
_NO_TARGETS = ("no targets", "no backend nodes")


@dataclass(frozen=True, slots=True)
class Targets:
    """Healthy and total targets; None where the provider reported no count."""

    healthy: int | None = None
    total: int | None = None

    def cell(self) -> str:
        return "-" if self.healthy is None or self.total is None else \
            f"{self.healthy}/{self.total}"


@dataclass(frozen=True, slots=True)
class Row:
    """One LoadBalancer Service as `lbctl status` shows it."""

    namespace: str
    name: str
    load_balancer_class: str | None
    addresses: tuple[str, ...]
    ports: tuple[Mapping[str, Any], ...]
    provider: str | None
    provider_source: str
    """Where PROVIDER came from: config, class, annotations, ingress, finalizer or none."""
    ready: str | None
    targets: Targets
    created: str
    conditions: tuple[Mapping[str, Any], ...]
    last_warning: Mapping[str, Any] | None


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp (v1.Time or MicroTime) as an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def human_duration(seconds: float) -> str:
    """apimachinery's `HumanDuration`, as kubectl's AGE column prints it (`45s`, `3m20s`,
    `5h2m`, `2d3h`); the sandbox's printers have the same port, which the CLI may not load."""
    whole, minutes, hours = int(seconds), int(seconds) // 60, int(seconds) // 3600
    if whole < -1:
        return "<invalid>"  # a creation time ahead of this clock, as kubectl says it
    if whole < 120:
        return f"{max(whole, 0)}s"
    if minutes < 10:
        return f"{minutes}m" + (f"{whole % 60}s" if whole % 60 else "")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h" + (f"{minutes % 60}m" if minutes % 60 else "")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" + (f"{hours % 24}h" if hours % 24 else "")
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" + (f"{days}d" if days else "")
    return f"{hours // 24 // 365}y"


def addresses(svc: Obj) -> tuple[str, ...]:
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return tuple(a for i in ingress for a in (i.get("ip"), i.get("hostname")) if a)


def ports(svc: Obj) -> tuple[dict[str, Any], ...]:
    return tuple({"name": p.get("name") or "", "port": p.get("port"),
                  "protocol": p.get("protocol") or "TCP", "nodePort": p.get("nodePort")}
                 for p in (svc.get("spec") or {}).get("ports") or [])


def port_string(items: Iterable[Mapping[str, Any]]) -> str:
    """kubectl's `makePortString`: `80:30080/TCP`, or `80/TCP` without a nodePort."""
    return ",".join(f"{p['port']}:{p['nodePort']}/{p['protocol']}" if p.get("nodePort")
                    else f"{p['port']}/{p['protocol']}" for p in items) or "<none>"


def ours(svc: Obj) -> bool:
    """lbctl marks the Service as its own: its finalizer, or a condition only lbctl writes.
    (The standard finalizer alone is no proof: the upstream cloud controllers use it too.)"""
    meta, status = svc.get("metadata") or {}, svc.get("status") or {}
    return LBCTL_FINALIZER in (meta.get("finalizers") or []) or any(
        c.get("type") in OURS for c in status.get("conditions") or [])


def provider_of(svc: Obj, config: Config | None) -> tuple[str | None, str]:
    """(provider, where that came from); see the module's docstring for the order."""
    class_ = (svc.get("spec") or {}).get("loadBalancerClass")
    if config is not None and config.owns_class(class_):
        return config.provider, "config"
    if class_ and class_.startswith("lbctl.io/") and \
            class_.removeprefix("lbctl.io/") in KNOWN_PROVIDERS:
        return class_.removeprefix("lbctl.io/"), "class"
    if not ours(svc):
        return None, "none"
    annotations = (svc.get("metadata") or {}).get("annotations") or {}
    for prefix, name in ANNOTATION_HINTS:
        if any(key.startswith(prefix) for key in annotations):
            return name, "annotations"
    if any(a.endswith(".amazonaws.com") for a in addresses(svc)):
        return "aws", "ingress"
    return "lbctl", "finalizer"


def condition(svc: Obj, kind: str) -> Mapping[str, Any] | None:
    found: Mapping[str, Any] | None = next(
        (c for c in (svc.get("status") or {}).get("conditions") or [] if c.get("type") == kind),
        None)
    return found


def target_health(svc: Obj) -> Targets:
    """The counts the serving condition carries, else the worst count the provider reported
    in words (module docstring), else unknown."""
    serving = condition(svc, SERVING)
    published = targets_of(str(serving.get("message") or "")) if serving is not None else None
    if published is not None:
        return Targets(published.healthy, published.total)
    texts = [str(c.get("message") or "") for c, bad in ((condition(svc, DEGRADED), "True"),
                                                        (condition(svc, SERVING), "False"))
             if c is not None and c.get("status") == bad]
    seen: list[tuple[int, int]] = []
    for text in texts:
        seen += [(int(h), int(t)) for h, t in _HEALTHY.findall(text)]
        seen += [(int(t) - int(n), int(t)) for n, t in _UNHEALTHY.findall(text)]
        if any(phrase in text for phrase in _NO_TARGETS):
            seen.append((0, 0))
    if not seen:
        return Targets()
    healthy, total = min(seen, key=lambda p: (p[0] / p[1] if p[1] else 0.0, p[0]))
    return Targets(healthy, total)


def _event_time(event: Obj) -> datetime:
    for value in (event.get("lastTimestamp"), (event.get("series") or {}).get(
            "lastObservedTime"), event.get("eventTime"), event.get("firstTimestamp"),
                  (event.get("metadata") or {}).get("creationTimestamp")):
        stamp = parse_time(value)
        if stamp is not None:
            return stamp
    return datetime.min.replace(tzinfo=UTC)


def last_warnings(events: Iterable[Obj]) -> dict[tuple[str, str, str], Obj]:
    """The latest Warning per involved Service, by (namespace, name, uid)."""
    latest: dict[tuple[str, str, str], Obj] = {}
    for event in events:
        about = event.get("involvedObject") or {}
        if event.get("type") != "Warning" or about.get("kind") != "Service":
            continue
        key = (about.get("namespace") or (event.get("metadata") or {}).get("namespace") or "",
               about.get("name") or "", about.get("uid") or "")
        if key not in latest or _event_time(event) >= _event_time(latest[key]):
            latest[key] = event
    return latest


def _warning(svc: Obj, warnings: Mapping[tuple[str, str, str], Obj]) -> dict[str, Any] | None:
    """A Service's last Warning: its own uid's, or one recorded without a uid (never one
    about an earlier Service of the same name)."""
    meta = svc.get("metadata") or {}
    ns, name = meta.get("namespace") or "", meta.get("name") or ""
    found = [e for e in (warnings.get((ns, name, meta.get("uid") or "")),
                         warnings.get((ns, name, ""))) if e is not None]
    if not found:
        return None
    event = max(found, key=_event_time)
    stamp = _event_time(event)
    return {"reason": event.get("reason") or "", "message": event.get("message") or "",
            "count": int(event.get("count") or (event.get("series") or {}).get("count") or 1),
            "lastSeen": None if stamp.year == 1 else stamp.strftime("%Y-%m-%dT%H:%M:%SZ")}


def build_rows(services: Iterable[Obj], events: Iterable[Obj],
               config: Config | None = None) -> list[Row]:
    """One Row per LoadBalancer Service, sorted by namespace and name."""
    warnings = last_warnings(events)
    rows = []
    for svc in services:
        if (svc.get("spec") or {}).get("type") != "LoadBalancer":
            continue
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        provider, source = provider_of(svc, config)
        serving = condition(svc, SERVING)
        ready = str(serving.get("status") or "Unknown") if serving is not None else (
            "Unknown" if ours(svc) or provider is not None else None)
        rows.append(Row(
            namespace=meta.get("namespace") or "", name=meta.get("name") or "",
            load_balancer_class=spec.get("loadBalancerClass"), addresses=addresses(svc),
            ports=ports(svc), provider=provider, provider_source=source, ready=ready,
            targets=target_health(svc), created=meta.get("creationTimestamp") or "",
            conditions=tuple((svc.get("status") or {}).get("conditions") or []),
            last_warning=_warning(svc, warnings)))
    return sorted(rows, key=lambda r: (r.namespace, r.name))


# -- output ------------------------------------------------------------------------------------
HEADERS = ("NAMESPACE", "NAME", "CLASS", "ADDRESS", "PORTS", "PROVIDER", "READY", "TARGETS",
           "AGE", "WARNING")
WIDE = ("CONDITIONS", "MESSAGE")
_BAD = {"LoadBalancerProvisioning": "True", SERVING: "False", DEGRADED: "True"}
"""The status in which each of our conditions has something to say (its message)."""


def _short(kind: str) -> str:
    return kind.removeprefix("LoadBalancer") if kind in OURS else kind


def cells(row: Row, now: datetime, wide: bool = False) -> list[str]:
    """One table line: kubectl's `<none>` and `<pending>`, `-` where lbctl knows nothing; the
    last Warning's reason only while the Service is not ready (else it is history)."""
    created = parse_time(row.created)
    warning = row.last_warning["reason"] if row.last_warning and row.ready != "True" else "-"
    line = [row.namespace, row.name, row.load_balancer_class or "<none>",
            ",".join(row.addresses) or "<pending>", port_string(row.ports),
            row.provider or "-", row.ready or "-", row.targets.cell(),
            human_duration((now - created).total_seconds()) if created else "<unknown>",
            warning]
    if wide:
        conds = ",".join(f"{_short(c.get('type', ''))}={c.get('status', '')}"
                         for c in row.conditions if c.get("type") in OURS)
        said = "; ".join(f"{_short(c['type'])}: {c['message']}" for c in row.conditions
                         if _BAD.get(c.get("type", "")) == c.get("status") and c.get("message"))
        line += [conds or "<none>", said or "-"]
    return line


def table(rows: Iterable[Row], now: datetime, *, wide: bool = False,
          namespace_column: bool = True) -> list[str]:
    """kubectl's layout: columns padded to their widest cell, three spaces apart."""
    lines = [list(HEADERS + (WIDE if wide else ()))]
    lines += [cells(r, now, wide) for r in rows]
    if not namespace_column:
        lines = [line[1:] for line in lines]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return ["   ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in lines]


def document(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """The `-o json`/`-o yaml` form: fixed keys, nulls where unknown, conditions in full."""
    return [{"namespace": r.namespace, "name": r.name, "class": r.load_balancer_class,
             "addresses": list(r.addresses), "ports": [dict(p) for p in r.ports],
             "provider": r.provider, "providerSource": r.provider_source, "ready": r.ready,
             "targets": {"healthy": r.targets.healthy, "total": r.targets.total},
             "creationTimestamp": r.created or None,
             "conditions": [dict(c) for c in r.conditions],
             "lastWarning": dict(r.last_warning) if r.last_warning else None} for r in rows]
