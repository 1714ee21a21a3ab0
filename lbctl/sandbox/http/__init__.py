"""The sandbox's HTTP layer: what kube-apiserver's handler chain does before and after storage.

`server` maps a URL to a target (group, version, resource, namespace, name, subresource),
authenticates and authorises (`..auth`), applies the test hooks (`faults`) and dispatches the
verb; `requests` decodes bodies and query parameters, `negotiation` picks JSON, protobuf or a
Table for the answer, `watch_stream` streams watch events, `scale` serves the scale
subresource; `tls` and `kubeconfig` are what a client needs to connect.
"""
