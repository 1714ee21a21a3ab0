"""lbctl's Kubernetes machinery: the only package that imports the `kubernetes` client.

Everything else in lbctl talks to the API server through here, so the client's quirks (pydantic
models that cost ~2.5x the memory of what we keep, `Watch.stream(deserialize=False)` losing the
resourceVersion and 410s) stay in one place, and the rest of the code sees plain JSON dicts,
slim frozen records and one exception type, `ApiError`.

- `client`: an ApiClient from a kubeconfig or in-cluster config behind a QPS/burst token bucket;
  raw JSON requests, paged lists and chunked watch streams (nothing decoded into client models);
  the Service writes the reconciler makes (status, finalizers).
- `events`: Events aggregated like upstream's recorder, under names that survive restarts.
- `informer`: list in pages + watch the raw stream into a dict of slim records, with handlers.
- `leader`: Lease-based leader election that releases on shutdown and never exits the process.

The work queue lives in `lbctl.controller.workqueue`: it knows nothing of Kubernetes.
"""

from __future__ import annotations

from lbctl.ratelimit import TokenBucket

from .client import (
    ENDPOINTSLICES,
    EVENTS,
    LEASES,
    NAMESPACES,
    NODES,
    SERVICES,
    ApiError,
    Kube,
    RawWatch,
    Resource,
    new_api_client,
)
from .events import EventRecorder, ObjectRef
from .informer import Handlers, Informer, key_of
from .leader import LeaderConfig, LeaderElector

__all__ = [
    "ENDPOINTSLICES",
    "EVENTS",
    "LEASES",
    "NAMESPACES",
    "NODES",
    "SERVICES",
    "ApiError",
    "EventRecorder",
    "Handlers",
    "Informer",
    "Kube",
    "LeaderConfig",
    "LeaderElector",
    "ObjectRef",
    "RawWatch",
    "Resource",
    "TokenBucket",
    "key_of",
    "new_api_client",
]
