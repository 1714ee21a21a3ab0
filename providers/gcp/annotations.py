"""The Service annotations lbctl's GCP provider honours, parsed into `GcpOptions`.

Services written for GKE keep meaning what they meant, or are refused with a message naming
the annotation: `networking.gke.io/load-balancer-type: Internal` (and the older
`cloud.google.com/load-balancer-type`, honoured alike; both present and different is an error
naming both), the internal balancer's subnet and global access, `cloud.google.com/network-tier`,
and `networking.gke.io/load-balancer-ip-addresses` (the names of reserved addresses, GKE's way
to pin an address besides `spec.loadBalancerIP`). Values are checked where GCE would refuse
them later, so a typo shows in `lbctl plan` and in an event, not in a half-built balancer.
Unknown annotations under these prefixes are ignored, as GKE's controllers do; ones that ask for
something lbctl does not build (a target-pool balancer, weighted load balancing) are refused.

`problems(annotations)` returns every problem; `parse_annotations(spec)` raises the first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lbctl.parsing import Problems
from providers.errors import PermanentError
from providers.spec import LoadBalancerSpec

LB_TYPE = "networking.gke.io/load-balancer-type"
LEGACY_LB_TYPE = "cloud.google.com/load-balancer-type"
SUBNET = "networking.gke.io/internal-load-balancer-subnet"
GLOBAL_ACCESS = "networking.gke.io/internal-load-balancer-allow-global-access"
NETWORK_TIER = "cloud.google.com/network-tier"
IP_ADDRESSES = "networking.gke.io/load-balancer-ip-addresses"
L4_RBS = "cloud.google.com/l4-rbs"
WEIGHTED = "networking.gke.io/weighted-load-balancing"
TIERS = {"premium": "PREMIUM", "standard": "STANDARD"}
_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_TRUE = ("true", "True", "TRUE", "t", "T", "1")
_FALSE = ("false", "False", "FALSE", "f", "F", "0")


@dataclass(frozen=True, slots=True)
class GcpOptions:
    internal: bool = False
    subnetwork: str | None = None
    global_access: bool = False
    network_tier: str | None = None
    """PREMIUM | STANDARD for an external balancer; None: the project's default tier."""
    address_names: tuple[str, ...] = ()
    """Reserved addresses (by name) the Service asks for; they stay when it goes."""


def field(key: str) -> str:
    return f"metadata.annotations[{key}]"


def _bool(value: str, key: str, problems: Problems) -> bool:
    if value in _TRUE:
        return True
    if value not in _FALSE:
        problems.append((field(key), f"must be true or false, not {value!r}"))
    return False


def _lb_type(annotations: Mapping[str, str], problems: Problems) -> bool:
    new, old = annotations.get(LB_TYPE), annotations.get(LEGACY_LB_TYPE)
    if new is not None and old is not None and new.lower() != old.lower():
        problems.append((field(LB_TYPE), f"says {new!r} but {LEGACY_LB_TYPE} says {old!r}: "
                                         "keep one of them"))
        return False
    value, key = (new, LB_TYPE) if new is not None else (old, LEGACY_LB_TYPE)
    if value is None:
        return False
    if value.lower() == "internal":
        return True
    if value.lower() == "external":
        return False
    problems.append((field(key), f"must be Internal or External, not {value!r}"))
    return False


def problems(annotations: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every problem with the GCP annotations, as (field, message)."""
    found: Problems = []
    options_from(annotations, found)
    return found


def options_from(annotations: Mapping[str, str], found: Problems) -> GcpOptions:
    internal = _lb_type(annotations, found)
    subnet = annotations.get(SUBNET)
    if subnet is not None and not _NAME.fullmatch(subnet):
        found.append((field(SUBNET), f"must be a subnetwork name (lower-case letters, digits "
                                     f"and -), not {subnet!r}"))
        subnet = None
    if subnet is not None and not internal:
        found.append((field(SUBNET), f"applies to internal balancers only ({LB_TYPE}: "
                                     "Internal)"))
    access = annotations.get(GLOBAL_ACCESS)
    global_access = _bool(access, GLOBAL_ACCESS, found) if access is not None else False
    if global_access and not internal:
        found.append((field(GLOBAL_ACCESS), f"applies to internal balancers only ({LB_TYPE}: "
                                            "Internal)"))
    tier_text = annotations.get(NETWORK_TIER)
    tier = None
    if tier_text is not None:
        tier = TIERS.get(tier_text.lower())
        if tier is None:
            found.append((field(NETWORK_TIER), f"must be Premium or Standard, not "
                                               f"{tier_text!r}"))
        elif internal:
            found.append((field(NETWORK_TIER), "applies to external balancers only: internal "
                                               "ones are always Premium"))
    names: list[str] = []
    raw_names = annotations.get(IP_ADDRESSES, "").strip()
    for i, name in enumerate(part.strip() for part in raw_names.split(",") if raw_names):
        if _NAME.fullmatch(name):
            names.append(name)
        else:
            found.append((field(IP_ADDRESSES), f"entry {i} must be the name of a reserved "
                                               f"address (lower-case letters, digits and -), "
                                               f"not {name!r}"))
    if len(names) > 2:
        found.append((field(IP_ADDRESSES), "names at most two addresses (one per IP family)"))
    rbs = annotations.get(L4_RBS)
    if rbs is not None and rbs.lower() not in ("enabled", ""):
        found.append((field(L4_RBS), "lbctl builds backend-service balancers only (enabled), "
                                     f"not {rbs!r}"))
    if annotations.get(WEIGHTED, "").lower() in ("pods-per-node",):
        found.append((field(WEIGHTED), "weighted load balancing is not supported by lbctl"))
    return GcpOptions(internal=internal, subnetwork=subnet, global_access=global_access,
                      network_tier=None if internal else tier,
                      address_names=tuple(dict.fromkeys(names)))


def parse_annotations(spec: LoadBalancerSpec) -> GcpOptions:
    """The options, or PermanentError naming the first bad annotation."""
    found: Problems = []
    options = options_from(dict(spec.annotations), found)
    if found:
        raise PermanentError(*found[0])
    return options
