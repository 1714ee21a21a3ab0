"""The provider interface and the provider implementations (one package each).

The interface is what the controller and every provider share, and nothing else:

- `providers.spec`: `LoadBalancerSpec` (desired) and `LoadBalancerStatus` (reported),
- `providers.cluster`: slim read-only views of Services and Nodes,
- `providers.interface`: `Provider`, `Capabilities`, `ProviderFactory`,
- `providers.errors`: the error taxonomy that drives retries,
- `providers.registry`: lookup by name, built-ins lazily, plugins by entry point.

Implementations (`providers.aws`, `.gcp`, `.azure`, `.baremetal`) import only these modules and
their own SDK, lazily.
"""
