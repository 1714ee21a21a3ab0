"""`baremetal.bgp`: the BGP section the provider pushes to its balancer daemons.

Operators write it once in the controller's config, with MetalLB's names (`myASN`, `peers`,
`advertisements[].ipAddressPools`, ...; see `lbctl.bgp_config`), instead of one static file per
balancer host. Two things only the provider can check or resolve, because only it knows the
pools and the daemons: an advertisement's `ipAddressPools` must name configured pools (they
become the `addresses` a daemon matches VIPs against: the daemon knows VIPs, not pools), and a
peer's `instances` must name configured `baremetal.balancers`. Each daemon then receives the
section narrowed to its own peers (`BgpConfig.for_instance`).

A bad section is reported (every problem, each naming its key) and NOT pushed: daemons keep
announcing with the last good one they hold (persisted in their state file); only a section
that is absent from the config makes the provider withdraw it from the daemons.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lbctl.bgp_config import BgpConfig, parse_bgp
from lbctl.parsing import ConfigError, Problems

from .pools import Pool

PATH = "baremetal.bgp"


@dataclass(frozen=True, slots=True)
class BgpSettings:
    """`config` None with `present`: the section is there but bad (keep the daemons' own)."""

    config: BgpConfig | None = None
    present: bool = False

    @property
    def managed(self) -> bool:
        """Whether the provider should make the daemons' pushed section match `config`."""
        return self.config is not None or not self.present


def parse_bgp_settings(raw: Any, pools: Iterable[Pool], balancers: Iterable[str],
                       problems: Problems) -> BgpSettings:
    if raw is None:
        return BgpSettings()
    try:
        config = parse_bgp(raw, PATH)
    except ConfigError as exc:
        problems += [(f"{PATH}.{path}" if path else PATH, message)
                     for path, message in exc.problems]
        return BgpSettings(present=True)
    ranges = {p.name: tuple(r.text for r in p.ranges) for p in pools}
    names = set(balancers)
    found: Problems = []
    adverts = []
    for i, adv in enumerate(config.advertisements):
        addresses = list(adv.addresses)
        for j, pool in enumerate(adv.ip_address_pools):
            if pool not in ranges:
                found.append((f"{PATH}.advertisements[{i}].ipAddressPools[{j}]",
                              f"no pool named {pool!r} (pools: "
                              f"{', '.join(sorted(ranges)) or 'none'})"))
            else:
                addresses += ranges[pool]
        if adv.ip_address_pools and not addresses:
            continue  # every pool it names is missing: reported above
        adverts.append(adv.model_copy(update={"addresses": tuple(addresses),
                                              "ip_address_pools": ()}))
    for i, peer in enumerate(config.peers):
        for j, instance in enumerate(peer.instances):
            if instance not in names:
                found.append((f"{PATH}.peers[{i}].instances[{j}]",
                              f"no balancer named {instance!r} in baremetal.balancers "
                              f"({', '.join(sorted(names)) or 'none'})"))
    if found:
        problems += found
        return BgpSettings(present=True)
    return BgpSettings(config.model_copy(update={"advertisements": tuple(adverts)}), True)


def body_for(settings: BgpSettings, instance: str) -> dict[str, Any] | None:
    """What daemon `instance` should hold: its peers' section as JSON, or None (nothing)."""
    if settings.config is None:
        return None
    mine = settings.config.for_instance(instance)
    if not mine.peers:
        return None
    doc: dict[str, Any] = mine.model_dump(mode="json", by_alias=True)
    return doc
