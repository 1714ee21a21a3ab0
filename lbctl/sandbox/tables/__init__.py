"""Server-side printing for `kubectl get`: objects and lists as `meta.k8s.io/v1` Tables.

`base` holds the column and printer types (and the default table), `table` turns objects into
Tables with the printer registered for their resource, `core`, `pods` and `workloads` are the
per-resource printers ported from kube's, `format` and `durations` format cells as kubectl
shows them.
"""
