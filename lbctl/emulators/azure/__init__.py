"""Azure without Azure: lbctl's own ARM emulator for Microsoft.Network, driven by the real SDK.

A plain aiohttp server (`server`) speaking the ARM subset a cluster's Standard Load Balancer
needs, as azure-mgmt-network sends and reads it, and strict where ARM is strict, so that a
provider tested here meets the same refusals in Azure:
- `arm`: routing, the call log, auth, faults and rate limits in front of every call; `writes`:
  PUT / PATCH tags / DELETE, child writes, etags and If-Match / If-None-Match;
- resources: `load_balancers` (+ `lb_parts`: pools, probes, rules), `public_ips`,
  `security_groups` (+ security rules), `networks` (virtual networks, subnets, private IPs), on
  the shared envelope, children and reference checks of `kinds` and the state of `store`;
- `rule_health`: a load-balancing rule's `health` action (202, then `Location` answers the
  per-address Up/Down the admin API set; all Up by default);
- `operations` (Azure-AsyncOperation: InProgress, then Succeeded or Failed), `errors` (ARM's
  error bodies and codes), `ids` (resource ids and names), `faults` (call log, faults, 429s);
- `admin`: the `/_emulator/` control API for tests; `world`: the seeded world, the sandbox's
  nodes file and the config for `lbctl run`; `client`: how azure-mgmt-network reaches it.

It imports no Azure library (an import-linter contract keeps lbctl free of them): only tests
and providers talk to it through `azure.mgmt.network`.
"""
