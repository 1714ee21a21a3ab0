"""The sandbox: an embedded Kubernetes API server for tests and the demo.

lbctl is tested without a cluster, so this package serves the slice of kube-apiserver a
LoadBalancer controller touches, faithfully enough that the official Python client and kubectl
cannot tell the difference: admission, allocation, validation, optimistic concurrency, watches
with 410, finalizers and the status subresource.

Grouped by what each part holds: `app` (the server assembled, `SandboxThread`) and `nodes`
(simulated nodes, the nodes file); `http` (routing, bodies, content negotiation, watch streams,
test hooks), `storage` (objects, resourceVersions, lists, watches, selectors), `auth`
(tokens, RBAC, impersonation), `openapi` (schemas, discovery, OpenAPI documents), `encoding`
(protobuf, patches), `tables` (kubectl's printers), `admission` (defaulting, validation,
allocation), `workloads` (in-process controllers), `traffic` (pods and NodePorts on loopback);
`errors` (Status errors) and `name_formats` (Kubernetes' name and label rules) serve them all.

It imports nothing of the controller, the providers or the Kubernetes client (an import-linter
contract says so), and comes with the `lbctl[sandbox]` extra.
"""
