"""The `azure` provider: the cluster's shared Standard Load Balancers (one per scheme), a
frontend, rules and probes per LoadBalancer Service in them, written whole in batched,
etag-guarded PUTs (azure-mgmt-network + azure-identity, optional extra `lbctl[azure]`, imported
only when a client is built). Tested against the ARM emulator (`lbctl emulator azure`) through
the real SDK.

Public interface:
- `create(settings, cluster_name, cluster) -> AzureProvider`: the registry's factory
  (`provider: azure`); a bad section is a ConfigError naming the keys.
- `validate_settings(raw) -> problems`: the `azure:` section's parser, for
  `lbctl config validate`.

Module map (pure modules marked *):
- `settings`*: the `azure:` config section (subscription, resource groups, location, virtual
  network, subnet, security group, load balancer name, emulator endpoint, rates, tags, batch
  window, idle timeout); credentials refused.
- `names`*: deterministic ARM names and IDs (never upstream's), ownership tags and NSG
  descriptions, which parts of a shared LB are one balancer's, NSG priorities.
- `annotations`*: cloud-provider-azure's Service annotations -> `AzureOptions`, every problem
  named by its annotation.
- `desired`*: spec + options + settings -> the Service's frontend, rules and probes, pool
  addresses, public IP and NSG rules as ARM REST bodies (golden-tested, each body checked
  against azure-mgmt-network's models and accepted by the ARM emulator in the tests).
- `merge`*: `merge` / `remove` fold one Service's parts into / out of the whole shared LB
  body, other Services' parts untouched, no change when ARM already holds them.
- `coalesce`: many Services' changes to one shared object folded into one etag-guarded PUT.
- `client`, `errors`: azure-mgmt-network behind rate limits, bounded retries and one error
  taxonomy.
- `changes`: one Service's changes to the shared LB (its parts, the pool) and NSG (its rules,
  priorities kept) as pure functions of their bodies; `ArmObject`, the coalescer's store.
- `public_ips`: ours created, tagged and released; the user's found by name or address.
- `health`: target counts from one load-balancing rule's health action, on the resync only.
- `provider`: `AzureProvider` (the Provider protocol over one coalescer per shared object).
"""

from .provider import CAPABILITIES, AzureProvider, create
from .settings import validate_settings

__all__ = ["CAPABILITIES", "AzureProvider", "create", "validate_settings"]
