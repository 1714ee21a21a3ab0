"""GCE without GCE: lbctl's own Compute emulator (no public one exists), driven by the real SDK.

A plain aiohttp server (`server`) speaking the Compute REST subset a passthrough Network Load
Balancer needs, as google-cloud-compute's REST transport sends and reads it, and strict where
GCE is strict, so that a provider tested here meets the same refusals in the cloud:
- `compute`: routing, the call log, faults and rate limits in front of every call;
- resources: `addresses`, `forwarding_rules`, `backend_services`, `health_checks`,
  `firewalls`, `instance_groups`, `networks` (networks and subnetworks), and the seeded world
  of `topology` (the `default` network, read-only instances), on the shared verbs of `kinds`
  and the state of `store`;
- `operations` (RUNNING, then DONE or failed), `listing` (filters of `filters`, pages,
  aggregated lists), `errors` (GCE's error shapes), `links` (names and references), `ips`;
- `admin`: the `/_emulator/` control API for tests; `world`: the seeded world, the sandbox's
  nodes file and the config for `lbctl run`.

It imports no Google library (an import-linter contract keeps lbctl free of them): only tests
and providers talk to it through `google.cloud.compute_v1`.
"""
