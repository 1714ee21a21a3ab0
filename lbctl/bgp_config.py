"""The `bgp:` section of a balancer daemon's config: peers and advertisements, MetalLB's names.

Operators who move from MetalLB's BGP mode bring `BGPPeer` and `BGPAdvertisement` objects; the
fields they know keep their names here (`myASN`, `peerASN`, `peerAddress`, `peerPort`,
`holdTime`, `sourceAddress`, `ebgpMultiHop`, `aggregationLength`, `localPref`, `communities`,
`peers`), so a migration is a copy. What differs, and why:
- `passwordFile`, not `password`: a TCP-MD5 secret never sits in a config file or a ConfigMap;
  the daemon reads it from a mounted Secret (and re-reads it when it changes).
- `instances` on a peer (MetalLB: `nodeSelectors`): the balancer instances, by the names the
  `baremetal` provider gives them, that open this session; the provider filters before it
  pushes, a static file simply lists the peers of its own host.
- `addresses` on an advertisement: the daemon knows VIPs, not pools; the provider turns
  `ipAddressPools: [names]` into the pools' ranges. With no advertisement every served VIP is
  announced as a /32 (/128) to every peer.
- `holdDownSeconds`: how long a VIP whose targets came back must stay healthy before it is
  announced again (no flapping); a withdrawal is never delayed.
The same model reads the static file's section, the daemon's `PUT /v1/bgp` body and the
`baremetal` provider's `baremetal.bgp` (which pushes it), so every way in agrees on what is
valid and every error names the key; that is why it sits beside `lbctl.parsing`, neutral,
importing nothing of lbctl but it, where both the daemon and the providers may use it.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lbctl.parsing import Bool, Float, Int, parse_model

_MODEL = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)
ASN = Field(ge=1, le=4_294_967_294)
WELL_KNOWN = {
    "graceful-shutdown": "65535:0", "accept-own": "65535:1", "blackhole": "65535:666",
    "no-export": "65535:65281", "no-advertise": "65535:65282",
    "no-export-subconfed": "65535:65283", "local-as": "65535:65283", "no-peer": "65535:65284",
}
"""RFC 1997 / 7999 / 8326 / 3765 names, as MetalLB accepts them, to the numbers sent."""
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")
_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _seconds(value: Any) -> float:
    """`3s`, `90s`, `1m`, `500ms` or a number of seconds (Kubernetes durations, as MetalLB)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"must be a duration like 3s or 90s, not {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"must be a duration like 3s or 90s, not {value!r}")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]


def community(value: str) -> tuple[str, str]:
    """("standard" | "large", the number form ExaBGP sends): `no-export`, `64512:100`,
    `large:64512:1:2`; ValueError naming what is wrong."""
    text = value.strip().lower()
    if text in WELL_KNOWN:
        return "standard", WELL_KNOWN[text]
    parts = text.split(":")
    if parts[0] == "large":
        if len(parts) != 4 or not all(p.isdigit() and int(p) < 2**32 for p in parts[1:]):
            raise ValueError(f"{value!r}: a large community is large:A:B:C, each < 2^32")
        return "large", ":".join(parts[1:])
    if len(parts) != 2 or not all(p.isdigit() and int(p) < 2**16 for p in parts):
        raise ValueError(f"{value!r} is not a community: give A:B (each 0-65535), "
                         f"large:A:B:C or one of {', '.join(sorted(WELL_KNOWN))}")
    return "standard", text


def address_range(value: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address,
                                       ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """A CIDR (`10.0.0.0/24`) or a range (`10.0.0.10-10.0.0.20`) as (first, last)."""
    try:
        if "-" in value:
            start, _, end = value.partition("-")
            first, last = ipaddress.ip_address(start.strip()), ipaddress.ip_address(end.strip())
            if first.version != last.version or int(first) > int(last):
                raise ValueError
            return first, last
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not a CIDR or an address range (a-b)") from None
    return net.network_address, net.broadcast_address


class PeerConfig(BaseModel):
    """One BGP session (MetalLB's `BGPPeer` spec)."""

    model_config = _MODEL
    name: str = ""
    """What advertisements' `peers` name it by; defaults to `peerAddress`."""
    peer_address: str = Field(alias="peerAddress")
    peer_asn: Int = Field(alias="peerASN", ge=1, le=4_294_967_294)
    my_asn: Int | None = Field(None, alias="myASN", ge=1, le=4_294_967_294)
    """Defaults to the section's `myASN`."""
    peer_port: Int = Field(179, alias="peerPort", ge=1, le=65535)
    hold_time: float = Field(90.0, alias="holdTime")
    """0 (no keepalives) or 3 s and more (RFC 4271); keepalives go every third of it."""
    password_file: str = Field("", alias="passwordFile")
    source_address: str = Field("", alias="sourceAddress")
    ebgp_multi_hop: Bool = Field(False, alias="ebgpMultiHop")
    instances: tuple[str, ...] = ()
    """Balancer instances that open this session; empty = every one (the provider filters)."""

    @model_validator(mode="before")
    @classmethod
    def _no_secret(cls, value: Any) -> Any:
        if isinstance(value, dict) and "password" in value:
            raise ValueError("password: a TCP-MD5 secret is never written in config; put it "
                             "in a file (a mounted Secret) and give passwordFile")
        return value

    @field_validator("hold_time", mode="before")
    @classmethod
    def _hold(cls, value: Any) -> float:
        seconds = _seconds(value)
        if seconds != 0 and not 3 <= seconds <= 65535:
            raise ValueError(f"must be 0 or between 3s and 65535s (RFC 4271), not {value!r}")
        return seconds

    @field_validator("peer_address", "source_address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value == "":
            return value
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None

    @field_validator("password_file")
    @classmethod
    def _password_file(cls, value: str) -> str:
        if value and not Path(value).is_absolute():
            raise ValueError(f"{value!r} must be an absolute path (a mounted Secret's file)")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value and not _NAME.fullmatch(value):
            raise ValueError(f"{value!r}: letters, digits, '-', '_' and '.'")
        return value

    @property
    def key(self) -> str:
        return self.name or self.peer_address

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.peer_address).version


class AdvertisementConfig(BaseModel):
    """How (and to whom) some VIPs are announced (MetalLB's `BGPAdvertisement` spec)."""

    model_config = _MODEL
    addresses: tuple[str, ...] = ()
    """CIDRs or ranges of the VIPs this advertisement is for; empty = every VIP."""
    ip_address_pools: tuple[str, ...] = Field((), alias="ipAddressPools")
    """Pool names: the provider's form; the daemon needs `addresses` (the provider fills it)."""
    aggregation_length: Int = Field(32, alias="aggregationLength", ge=0, le=32)
    aggregation_length_v6: Int = Field(128, alias="aggregationLengthV6", ge=0, le=128)
    local_pref: Int | None = Field(None, alias="localPref", ge=0, le=4_294_967_295)
    """Sent to iBGP peers only (a LOCAL_PREF never crosses an AS boundary), as MetalLB does."""
    communities: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()
    """Peer names (or addresses) this goes to; empty = every peer."""

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            address_range(item)
        return value

    @field_validator("communities")
    @classmethod
    def _communities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            community(item)
        return value

    @cached_property
    def ranges(self) -> tuple[tuple[Any, Any], ...]:
        return tuple(address_range(a) for a in self.addresses)

    def covers(self, vip: str) -> bool:
        if not self.addresses:
            return True
        ip = ipaddress.ip_address(vip)
        return any(first.version == ip.version and first <= ip <= last
                   for first, last in self.ranges)

    def prefix(self, vip: str) -> str:
        """The prefix announced for `vip`: /32 (/128) or the aggregate that holds it."""
        ip = ipaddress.ip_address(vip)
        length = self.aggregation_length if ip.version == 4 else self.aggregation_length_v6
        return str(ipaddress.ip_network(f"{vip}/{length}", strict=False))


class BgpConfig(BaseModel):
    """The whole section."""

    model_config = _MODEL
    my_asn: Int = Field(alias="myASN", ge=1, le=4_294_967_294)
    router_id: str = Field("", alias="routerID")
    """An IPv4 address (BGP identifier); defaults to the first IPv4 `sourceAddress`, else to
    the address this host reaches its first peer from (see `identifier`)."""
    peers: tuple[PeerConfig, ...] = Field(max_length=64)
    advertisements: tuple[AdvertisementConfig, ...] = ()
    hold_down_seconds: Float = Field(3.0, alias="holdDownSeconds", ge=0, le=600)
    drain_seconds: Float = Field(1.0, alias="drainSeconds", ge=0, le=30)
    """SIGTERM: how long after the withdrawal the listeners stay open (routers converge)."""

    @field_validator("router_id")
    @classmethod
    def _router_id(cls, value: str) -> str:
        if value and not isinstance(_maybe_ip(value), ipaddress.IPv4Address):
            raise ValueError(f"{value!r} must be an IPv4 address (the BGP identifier)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> BgpConfig:
        if not self.peers:
            raise ValueError("peers: give at least one peer (peerAddress, peerASN)")
        keys = [p.key for p in self.peers]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"peers: {', '.join(dup)} defined more than once")
        addresses = [p.peer_address for p in self.peers]
        dup = sorted({a for a in addresses if addresses.count(a) > 1})
        if dup:
            raise ValueError(f"peers: more than one session to {', '.join(dup)}")
        known = set(keys) | set(addresses)
        for i, adv in enumerate(self.advertisements):
            unknown = [p for p in adv.peers if p not in known]
            if unknown:
                raise ValueError(f"advertisements[{i}].peers: no peer named "
                                 f"{', '.join(unknown)} (peers: {', '.join(keys)})")
        return self

    @property
    def identifier(self) -> str:
        """`routerID`, else the first IPv4 `sourceAddress`, else "": each daemon then takes
        its own host's address (what the `baremetal` provider's one section for every host
        wants: two hosts must never share a BGP identifier)."""
        return self.router_id or next((p.source_address for p in self.peers
                                       if isinstance(_maybe_ip(p.source_address),
                                                     ipaddress.IPv4Address)), "")

    def for_instance(self, instance: str) -> BgpConfig:
        """The peers `instance` opens (those with no `instances`, or naming it)."""
        mine = tuple(p for p in self.peers if not p.instances or instance in p.instances)
        return self.model_copy(update={"peers": mine})


def _maybe_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def parse_bgp(doc: Any, source: str = "bgp") -> BgpConfig:
    """The section from a decoded object; ConfigError names every bad key."""
    return parse_model(BgpConfig, doc, source, "must be a mapping with myASN and peers")
