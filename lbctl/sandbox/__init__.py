"""The sandbox: an embedded Kubernetes API server for tests and the demo.

lbctl is tested without a cluster, so this package serves the slice of kube-apiserver a
LoadBalancer controller touches, faithfully enough that the official Python client and kubectl
cannot tell the difference: admission, allocation, validation, optimistic concurrency, watches
with 410, finalizers and the status subresource.
"""
