"""The controller: LoadBalancer Services in, provider calls and status out.

The pure core decides (nothing here does I/O): `spec_builder.build_spec(service, nodes, config)`
-> a frozen `LoadBalancerSpec`; `decisions` (ownership, finalizers, cleanup, sync triggers),
`node_selection`, `meltdown`, `conditions`; `records` turns raw API objects into slim frozen
records. Around it: `reconciler` runs one Service's sync in upstream's order, `controller` feeds
it from informers through the `workqueue` (node sync, drift resync, orphans), `events`,
`kube_writes` and `metrics` carry what it learns out. Wiring: `config` (the operator's file),
`runner` (`lbctl run`: reload, leader election, health server), `embedded` (the same controller
in-process, for the demo and tests), `planning` (`lbctl plan`, `lbctl config validate`).

It imports the provider interface and registry, never an implementation, a cloud SDK or the
sandbox; the Kubernetes client only through `lbctl.kube`.
"""
