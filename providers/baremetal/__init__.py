"""The `baremetal` provider: IP address pools (MetalLB's job, done better) and lbctl's own
balancer daemons, which it programs over their authenticated API.

Public interface:

- `create(settings, cluster_name, cluster) -> BaremetalProvider`: the registry's factory
  (`provider: baremetal`); `settings` is the config's `baremetal:` section.
- `parse_settings(raw) -> (Settings, problems)` and `validate_settings(raw) -> problems`:
  the one parser for that section, for the provider and `lbctl config validate`; problems are
  `(key path, message)` pairs such as
  `('baremetal.pools[1] "edge".addresses[0]', '"10.0.0.300/24" is not a CIDR or range')`.
- `Programmer` / `NoProgramming`: the seam where programming balancer daemons plugs in.

Inside: `addresses` (ranges), `selectors` (label selectors), `pools` (pools and their order),
`settings` (parsing), `claims` (Services as claimants, sharing rules), `intake` (spec ->
request), `ledger` (holdings rebuilt from Service status, cool-down), `allocator` (the pure
decision), `programming` (the daemon seam), `daemons` and `daemon_options` (programming the
balancer daemons, polling their status), `provider` (the Provider, locking).
"""

from __future__ import annotations

from .programming import NoProgramming, Programmer
from .provider import CAPABILITIES, BaremetalProvider, create
from .settings import BalancerDaemon, Settings, parse_settings, validate_settings

__all__ = [
    "CAPABILITIES",
    "BalancerDaemon",
    "BaremetalProvider",
    "NoProgramming",
    "Programmer",
    "Settings",
    "create",
    "parse_settings",
    "validate_settings",
]
