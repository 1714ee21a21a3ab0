"""The EndpointSlice controller: the endpoints of every Service with a selector, as slices.

As kube-controller-manager's endpointslice-controller, which is what kube-proxy and every
LoadBalancer controller read: slices named `<service>-<5 random>`, labelled
`kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`, owned by the Service;
one endpoint per pod with an IP (ready / serving / terminating, nodeName, zone from the node's
`topology.kubernetes.io/zone`, targetRef), pods grouped by the ports they resolve (named
targetPorts may differ per pod) and at most 100 endpoints per slice; an empty placeholder slice
when nothing backs the Service. A slice is written only when its content changes, reusing the
slices that exist, so watchers see no churn. Slices go when the Service goes or loses its
selector. Other managers' slices (no managed-by label of ours) are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..storage.store import Change, Key, Obj
from .backends import (
    Port,
    ServiceEndpointsController,
    hostname,
    in_endpoints,
    pod_ip,
    pod_ports,
    pod_reference,
    selected_pods,
    service_labels,
    service_selector,
)
from .objects import (
    NODES,
    PODS,
    SERVICES,
    SLICES,
    labels_of,
    node_zone,
    ns_name,
    owner_reference,
    pod_ready,
)

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS = 100
_CONTENT = ("addressType", "endpoints", "ports")


def _ports(ports: tuple[Port, ...]) -> list[Obj]:
    out = []
    for name, port, protocol, app in ports:
        entry: Obj = {"name": name, "protocol": protocol, "port": port}
        if app:
            entry["appProtocol"] = app
        out.append(entry)
    return out


def _rewrite(body: Obj, labels: dict[str, str], owners: list[Obj]) -> Callable[[Obj], Obj]:
    """The update turning an existing slice into `body` with our labels and owner."""
    def change(old: Obj) -> Obj:
        kept = {k: v for k, v in old.items() if k not in _CONTENT}
        meta = {**old["metadata"], "labels": labels, "ownerReferences": owners}
        return {**kept, "metadata": meta, **body}

    return change


def _ours(slice_: Obj) -> bool:
    return labels_of(slice_).get(MANAGED_BY) == CONTROLLER_NAME


def _service_key(slice_: Obj | None) -> Key | None:
    """The Service a slice of ours is for (None for other managers' slices)."""
    if slice_ is None or not _ours(slice_) or not labels_of(slice_).get(SERVICE_NAME):
        return None
    return slice_["metadata"]["namespace"], labels_of(slice_)[SERVICE_NAME]


class EndpointSliceController(ServiceEndpointsController):
    name = "endpointslices"
    watches = (SERVICES.key, PODS.key, NODES.key, SLICES.key)

    def on_other_change(self, change: Change) -> None:
        if change.key == NODES.key:
            if node_zone(change.old) != node_zone(change.obj) or change.type == "DELETED":
                self.resync()
            return
        for obj in (change.old, change.obj):
            if (key := _service_key(obj)) is not None:
                self.queue.add(key)

    def written_keys(self) -> Iterable[Key]:
        return [key for s in self.cache.all(SLICES.key) if (key := _service_key(s)) is not None]

    def reconcile(self, key: Key) -> float | None:
        ns, name = key
        existing = [s for s in self.cache.in_namespace(SLICES.key, ns)
                    if _ours(s) and labels_of(s).get(SERVICE_NAME) == name]
        svc = self.cache.get(SERVICES.key, ns, name)
        selector = service_selector(svc)
        if svc is None or selector is None:
            for slice_ in existing:
                self.registry.delete(SLICES, *ns_name(slice_))
            return None
        self._apply(svc, existing, self._desired(svc, selector))
        return None

    def _desired(self, svc: Obj, selector: dict[str, str]) -> list[Obj]:
        """The content (addressType, endpoints, ports) of every slice the Service should have."""
        publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
        groups: dict[tuple[Port, ...], list[Obj]] = {}
        for pod in selected_pods(self.cache, svc, selector):
            if in_endpoints(pod, include_terminating=True):
                groups.setdefault(pod_ports(svc, pod), []).append(self._endpoint(svc, pod,
                                                                                 publish))
        if not groups:
            return [{"addressType": "IPv4", "endpoints": []}]
        out = []
        for ports in sorted(groups, key=repr):
            endpoints = sorted(groups[ports], key=lambda e: (e["addresses"][0],
                                                             e["targetRef"]["name"]))
            for i in range(0, len(endpoints), MAX_ENDPOINTS):
                out.append({"addressType": "IPv4", "endpoints": endpoints[i:i + MAX_ENDPOINTS],
                            "ports": _ports(ports)})
        return out

    def _endpoint(self, svc: Obj, pod: Obj, publish: bool) -> Obj:
        serving = publish or pod_ready(pod)
        term = bool(pod["metadata"].get("deletionTimestamp"))
        endpoint: Obj = {
            "addresses": [pod_ip(pod)],
            "conditions": {"ready": publish or (serving and not term), "serving": serving,
                           "terminating": term},
            "targetRef": pod_reference(pod)}
        host = hostname(svc, pod)
        if host:
            endpoint["hostname"] = host
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            endpoint["nodeName"] = node_name
            zone = node_zone(self.cache.get(NODES.key, "", node_name))
            if zone:
                endpoint["zone"] = zone
        return endpoint

    def _apply(self, svc: Obj, existing: list[Obj], desired: list[Obj]) -> None:
        ns, name = ns_name(svc)
        labels = {**service_labels(svc, SERVICE_NAME, MANAGED_BY), SERVICE_NAME: name,
                  MANAGED_BY: CONTROLLER_NAME}
        owners = [owner_reference(SERVICES, svc)]

        def same_meta(s: Obj) -> bool:
            return labels_of(s) == labels and s["metadata"].get("ownerReferences") == owners

        def content(s: Obj) -> Obj:
            return {k: s[k] for k in _CONTENT if k in s}

        todo = list(desired)
        spare = []
        for slice_ in sorted(existing, key=lambda s: s["metadata"]["name"]):
            body = content(slice_)
            if body in todo and same_meta(slice_):
                todo.remove(body)  # already exactly right: not a single write
            else:
                spare.append(slice_)
        for body in todo:
            # Reuse a slice with the same ports if there is one, so endpoints move in place.
            reuse = next((s for s in spare if s.get("ports") == body.get("ports")),
                         spare[0] if spare else None)
            if reuse is None:
                self.registry.create(SLICES, ns, {
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"generateName": f"{name}-", "labels": labels,
                                 "ownerReferences": owners}, **body})
                continue
            spare.remove(reuse)
            self.registry.update_with(SLICES, *ns_name(reuse), "", _rewrite(body, labels, owners))
        for slice_ in spare:
            self.registry.delete(SLICES, *ns_name(slice_))
