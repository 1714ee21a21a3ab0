"""What kube-controller-manager, kube-scheduler and the kubelets do, in-process: workloads run.

The sandbox's API server alone stores Deployments and Services; these controllers turn them into
ReplicaSets, scheduled and Running pods with IPs, EndpointSlices and Endpoints, a `default`
ServiceAccount per namespace, and garbage-collect dependents, so clients see a living cluster.
`WorkloadControllers` is the one entry point.
"""

from .manager import WorkloadControllers

__all__ = ["WorkloadControllers"]
