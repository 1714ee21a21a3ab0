"""The `gcp` provider: a regional passthrough Network Load Balancer per LoadBalancer Service
on a backend service (google-cloud-compute, optional extra `lbctl[gcp]`, imported only when a
client is built). Being built in slices (issue 15); this slice holds its pure parts.

Public interface:
- `create(settings, cluster_name, cluster)`: the registry's factory (`provider: gcp`); refuses
  with a clear message until the deploy slice lands.
- `validate_settings(raw) -> problems`: the `gcp:` section's parser, for `lbctl config validate`.

Module map (pure modules marked *):
- `settings`*: the `gcp:` config section (project, region, network, endpoint, tags, rates).
- `names`*: deterministic GCE names, ownership descriptions and labels.
- `annotations`*: GKE's Service annotations -> `GcpOptions` (internal, subnet, global access,
  network tier, reserved address names), every problem named.
- `desired`*: spec + options + settings + node tags -> the desired address, health check,
  backend services, forwarding rules and firewall rules as Compute REST bodies (golden-tested,
  each body parsed by the SDK's own message type in the tests).
- `client`: google-cloud-compute's REST clients (lazily), token buckets per family, bounded
  tenacity retries (the SDK's off), writes waited for on the same endpoint's operations,
  HTTP errors and failed operations mapped to one taxonomy, call counting, a crash hook.
- `deploy`: observe by name, write only differences, in GCE's crash-safe order (health check,
  prober firewall, instance groups, backend services, address, forwarding rules, clients'
  firewall); a forwarding rule is replaced on the same address; other owners' objects refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from lbctl.parsing import ConfigError
from providers.cluster import ClusterView

from .settings import validate_settings


def create(settings: Mapping[str, Any], cluster_name: str, cluster: ClusterView) -> NoReturn:
    """Not available yet: say so instead of failing on a missing module."""
    del settings, cluster_name, cluster
    raise ConfigError("provider", [("", "gcp is not available in this version yet: its config "
                                        "section validates (lbctl config validate), the GCE "
                                        "client and deploy are still being built (issue 15)")])


__all__ = ["create", "validate_settings"]
