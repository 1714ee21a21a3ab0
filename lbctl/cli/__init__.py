"""The `lbctl` command line, one module per command group.

`root.main` holds the group and registers the others; each group's module imports only click at load
time and what its command runs inside the command, so `lbctl --help` stays fast and `lbctl run`
(the production controller) never loads the sandbox, the emulators or the demo (a test says so).

- `controller`: `lbctl run`, `lbctl config validate`, `lbctl plan`
- `balancer`: `lbctl balancer serve|validate`
- `sandbox`: `lbctl sandbox` (the embedded Kubernetes API)
- `emulator`: `lbctl emulator aws|gcp|azure` (local stand-ins for the clouds' APIs)
- `demo`: `lbctl demo [--provider baremetal|aws|gcp|azure]`
- `status`: `lbctl status` (each LoadBalancer Service: address, provider, readiness, targets)
"""

from .root import main

__all__ = ["main"]
