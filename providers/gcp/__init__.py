"""The `gcp` provider: a regional passthrough Network Load Balancer per LoadBalancer Service
on a backend service (google-cloud-compute, optional extra `lbctl[gcp]`, imported only when a
client is built). Tested against the GCE emulator (`lbctl emulator gcp`) through the real SDK,
by itself and through the controller; `iam` lists the permissions its calls need.

Public interface:
- `create(settings, cluster_name, cluster) -> GcpProvider`: the registry's factory
  (`provider: gcp`); a missing project or bad section is a ConfigError naming the keys.
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
  firewall); a forwarding rule is replaced on the same address; other owners' objects refused;
  `remove`: delete in reverse, by name and description, not-found is success; the shared
  objects with the last Service. `groups`: the per-zone instance groups, membership remembered.
- `provider`: `GcpProvider` (the Provider protocol, per-balancer locks, a lock for the
  cluster's shared objects, node tags read once per instance, a nodes-only change costing the
  groups alone).
- `iam`*: the IAM permissions the calls need (`python -m providers.gcp.iam`).
"""

from __future__ import annotations

from .provider import CAPABILITIES, GcpProvider, create
from .settings import validate_settings

__all__ = ["CAPABILITIES", "GcpProvider", "create", "validate_settings"]
