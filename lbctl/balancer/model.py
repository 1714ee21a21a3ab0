"""What a balancer daemon serves: one schema for the static file and the HTTP API.

`lbctl balancer serve --config FILE` reads `balancers:` from a YAML file (LB hosts without a
controller, benchmarks); the `baremetal` provider PUTs the same objects, as JSON, one balancer
per request. Both go through `parse_balancer` / `parse_file`, so the two ways in can never
disagree about what is valid, and every error names the key (`balancers[0].listeners[1].port:
...`). A target is `"host:port"` (the design contract) or `{name, address, port}` when the
caller wants health reported per node name.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lbctl.bgp_config import BgpConfig
from lbctl.parsing import Float, Int, parse_model, parse_yaml_model

_MODEL = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)
MAX_LISTENERS = 256
"""Listeners of one balancer (a PUT with 10,000 took 59 s and failed most of them)."""
MAX_TARGETS = 10_000
"""Targets of one listener."""
MAX_VIPS = 8
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class HealthCheckConfig(BaseModel):
    """Active checks per target. `port` None: the target's own port (TCP connect on the
    nodePort); set with `type: http` for Local policy (`/healthz` on healthCheckNodePort)."""

    model_config = _MODEL
    type: Literal["tcp", "http", "none"] = "tcp"
    port: Int | None = Field(None, ge=1, le=65535)
    path: str = Field("/healthz", pattern=r"^/")
    interval_seconds: Float = Field(1.0, alias="intervalSeconds", ge=0.05, le=300)
    timeout_seconds: Float = Field(1.0, alias="timeoutSeconds", gt=0, le=60)
    healthy_threshold: Int = Field(2, alias="healthyThreshold", ge=1, le=10)
    unhealthy_threshold: Int = Field(2, alias="unhealthyThreshold", ge=1, le=10)


class TargetConfig(BaseModel):
    """One backend: a node's address and port (its nodePort)."""

    model_config = _MODEL
    address: str
    port: Int = Field(ge=1, le=65535)
    name: str = ""
    """The node's name, for health reports; defaults to `address:port`."""

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return _target_address(value)

    @property
    def endpoint(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    @property
    def label(self) -> str:
        return self.name or self.endpoint


def _target(value: Any) -> Any:
    """`"10.0.0.1:30080"` / `"[fd00::1]:30080"` -> {address, port}; objects pass through."""
    if not isinstance(value, str):
        return value
    match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d{1,5})|([0-9.]+):(\d{1,5})", value.strip())
    if not match:
        raise ValueError(f"target {value!r} must be HOST:PORT (IPv6 as [ADDR]:PORT)")
    address = match.group(1) or match.group(3)
    return {"address": address, "port": int(match.group(2) or match.group(4))}


DEFAULT_CONNECT_TIMEOUT = 2.0
"""Seconds a TCP connect to a target may take on a listener without active health checks."""
MIN_DEFAULT_CONNECT_TIMEOUT = 1.25
"""The floor of the default taken from the health check: a lost SYN is sent again after 1 s,
and one lost SYN must not count as a dead target (passive ejection has no threshold)."""


class ListenerConfig(BaseModel):
    """One front-end port on the VIP(s) and the targets it forwards to."""

    model_config = _MODEL
    protocol: Literal["TCP", "UDP"] = "TCP"
    port: Int = Field(ge=1, le=65535)
    targets: tuple[TargetConfig, ...] = Field((), max_length=MAX_TARGETS)
    health_check: HealthCheckConfig = Field(HealthCheckConfig(), alias="healthCheck")
    algorithm: Literal["roundRobin", "leastConnections", "maglev"] = "roundRobin"
    proxy_protocol: Literal["none", "v2"] = Field("none", alias="proxyProtocol")
    """Prepend a PROXY protocol v2 header to each TCP connection (targets must expect it)."""
    idle_timeout_seconds: Float = Field(60.0, alias="idleTimeoutSeconds", gt=0, le=86400)
    """UDP: a flow's session is closed after this long without traffic."""
    connect_timeout_seconds: Float | None = Field(None, alias="connectTimeoutSeconds", gt=0,
                                                  le=60)
    """TCP: how long a connect to a target may take before the client's connection is retried
    on another target and the target ejected (passive ejection of a dead host, whose SYNs go
    unanswered). Default: the health check's timeoutSeconds, since a target that slow to
    accept fails its checks too, but at least 1.25 s, so that one lost SYN (sent again after
    1 s) is not taken for a dead host; 2 s for a listener without active checks."""

    upstream_congestion_control: str | None = Field(
        None, alias="upstreamCongestionControl", pattern=r"^[a-z][a-z0-9_]{0,14}$")
    """TCP: the congestion control of the connections to the targets (`TCP_CONGESTION`, e.g.
    `cubic` or `reno`); default: the host's. The hop to a node is short and inside one
    network: a pacing algorithm (bbr) paces it with kernel timers and held a proxied stream
    to ~0.75x of what the same hop carries with reno or cubic (bench/balancer.py). An
    unprivileged daemon may only pick names in net.ipv4.tcp_allowed_congestion_control."""

    @property
    def connect_timeout(self) -> float:
        if self.connect_timeout_seconds is not None:
            return self.connect_timeout_seconds
        if self.health_check.type == "none":
            return DEFAULT_CONNECT_TIMEOUT
        return max(self.health_check.timeout_seconds, MIN_DEFAULT_CONNECT_TIMEOUT)

    @field_validator("targets", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [_target(v) for v in value]
        return value

    @model_validator(mode="after")
    def _unique_targets(self) -> ListenerConfig:
        seen = Counter(t.endpoint for t in self.targets)  # O(targets): lists reach 10,000
        dup = sorted(e for e, n in seen.items() if n > 1)
        if dup:
            raise ValueError(f"targets: {', '.join(dup)} listed more than once")
        if self.protocol == "UDP" and self.proxy_protocol != "none":
            raise ValueError("proxyProtocol: only TCP listeners can send a PROXY header")
        if self.protocol == "UDP" and self.upstream_congestion_control:
            raise ValueError("upstreamCongestionControl: only TCP listeners have one")
        return self


class OwnerConfig(BaseModel):
    """Who programmed a balancer (the `baremetal` provider sets it; static files need not)."""

    model_config = _MODEL
    cluster: str
    namespace: str
    name: str
    uid: str


class BalancerConfig(BaseModel):
    """One balancer: VIP(s), listeners, who may connect."""

    model_config = _MODEL
    name: str = Field(min_length=1, max_length=253)
    vip: str = ""
    vips: tuple[str, ...] = Field((), max_length=MAX_VIPS)
    """Several addresses (dual stack); `vip` is the single-address shorthand."""
    dataplane: Literal["userspace", "nftables"] = "userspace"
    source_ranges: tuple[str, ...] = Field((), alias="sourceRanges")
    """CIDRs allowed to connect; empty = everyone."""
    session_affinity: Literal["None", "ClientIP"] = Field("None", alias="sessionAffinity")
    """ClientIP: every listener hashes the client address onto the targets (Maglev)."""
    drain_seconds: Float = Field(30.0, alias="drainSeconds", ge=0, le=3600)
    """How long connections to a target that left may finish before they are cut."""
    listeners: tuple[ListenerConfig, ...] = Field((), max_length=MAX_LISTENERS)
    owner: OwnerConfig | None = None
    revision: str = Field("", max_length=128)
    """Opaque to the daemon: the programmer's digest of what it sent, so it can tell without
    comparing documents whether an instance already serves the latest version."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(f"{value!r} must be lowercase letters, digits, '-' and '.'")
        return value

    @field_validator("vip")
    @classmethod
    def _vip(cls, value: str) -> str:
        return _unicast(_ip(value), "a VIP") if value else value

    @field_validator("vips")
    @classmethod
    def _vips(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_unicast(_ip(v), "a VIP") for v in value)

    @field_validator("source_ranges")
    @classmethod
    def _ranges(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for cidr in value:
            try:
                out.append(str(ipaddress.ip_network(cidr.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR") from None
        return tuple(out)

    @model_validator(mode="after")
    def _shape(self) -> BalancerConfig:
        if not self.vip and not self.vips:
            raise ValueError("vip: required (or vips)")
        if not self.listeners:
            raise ValueError("listeners: at least one is required")
        ports = [(li.protocol, li.port) for li in self.listeners]
        dup = sorted({f"{p}/{n}" for p, n in ports if ports.count((p, n)) > 1})
        if dup:
            raise ValueError(f"listeners: {', '.join(dup)} listed more than once")
        return self

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every VIP, `vip` first."""
        return tuple(dict.fromkeys(([self.vip] if self.vip else []) + list(self.vips)))

    def frontends(self) -> list[tuple[str, str, int]]:
        """(protocol, vip, port) this balancer binds."""
        return [(li.protocol, vip, li.port) for vip in self.addresses for li in self.listeners]


class BalancerFile(BaseModel):
    """The static file: `balancers:` and nothing else required; `bgp:` announces them."""

    model_config = _MODEL
    balancers: tuple[BalancerConfig, ...] = ()
    bgp: BgpConfig | None = None

    @field_validator("balancers", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return () if value is None else value  # `balancers:` with every entry commented out

    @model_validator(mode="after")
    def _unique(self) -> BalancerFile:
        names = [b.name for b in self.balancers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"balancers: {', '.join(dup)} defined more than once")
        clash = frontend_clash(self.balancers)
        if clash:
            raise ValueError(clash)
        fronts = {f: b.name for b in self.balancers for f in b.frontends()}
        for b in self.balancers:
            for li in b.listeners:
                for t in li.targets:
                    owner = fronts.get((li.protocol, t.address, t.port))
                    if owner is not None:
                        raise ValueError(f'balancer "{b.name}": target {t.endpoint} is a '
                                         f'frontend of balancer "{owner}": traffic would loop')
        return self


@functools.lru_cache(maxsize=65536)
def _target_address(value: str) -> str:
    """A target's address, normalised and checked; cached: a cluster has a few thousand node
    addresses at most, and a re-PUT of 500 targets parsed them all again (9 ms of the GIL,
    the traffic loop's GIL, per PUT: 2 ms now)."""
    try:
        address = str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None
    return _unicast(address, "a target")


_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_RESERVED = ipaddress.IPv4Network("240.0.0.0/4")


def _unicast(address: str, what: str) -> str:
    """`address` if it can be `what` (one host's unicast address; loopback is allowed for
    demos and tests), else ValueError saying why not."""
    ip = ipaddress.ip_address(address)
    if ip.is_unspecified:
        raise ValueError(f"{address} is the unspecified address (every local address), not "
                         f"{what}")
    if ip.is_multicast:
        raise ValueError(f"{address} is a multicast address, not {what}")
    if ip.version == 4 and ip == _BROADCAST:
        raise ValueError(f"{address} is the broadcast address, not {what}")
    if ip.version == 4 and ip in _RESERVED:
        raise ValueError(f"{address} is reserved (240.0.0.0/4), not {what}")
    return address


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def frontend_clash(balancers: tuple[BalancerConfig, ...] | list[BalancerConfig]) -> str | None:
    """Why two balancers cannot both be served (same protocol, VIP and port), or None."""
    owner: dict[tuple[str, str, int], str] = {}
    for b in balancers:
        for front in b.frontends():
            if front in owner and owner[front] != b.name:
                proto, vip, port = front
                return (f"{f'[{vip}]' if ':' in vip else vip}:{port}/{proto} is served by "
                        f'both balancer "{owner[front]}" and "{b.name}"')
            owner[front] = b.name
    return None


def parse_balancer(doc: Any, source: str = "body") -> BalancerConfig:
    """One balancer from a decoded JSON/YAML object; ConfigError names every bad key."""
    return parse_model(BalancerConfig, doc, source, "must be an object")


def parse_file(text: str, source: str = "balancers.yaml") -> BalancerFile:
    """The static file; ConfigError names every bad key."""
    return parse_yaml_model(BalancerFile, text, source,
                            "must be a mapping with a `balancers:` list")


def to_json(balancer: BalancerConfig) -> dict[str, Any]:
    """The wire/stored form (aliases, no defaults dropped: explicit is easier to diff)."""
    out: dict[str, Any] = balancer.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out
