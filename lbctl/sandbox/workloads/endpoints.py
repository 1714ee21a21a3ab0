"""The Endpoints controller: the legacy core/v1 Endpoints of every Service with a selector.

Older clients and controllers still read Endpoints, so kube-controller-manager still writes them,
and so does this: an object named like the Service, labelled with the Service's labels and
`endpointslice.kubernetes.io/skip-mirror: "true"` (which also marks it as ours), whose subsets
group pods by the ports they resolve, ready ones in `addresses` and the rest in
`notReadyAddresses`, sorted as upstream's RepackSubsets sorts them. Terminating pods are left
out unless the Service publishes not-ready addresses. Written only when it changes; deleted with
its Service or when the Service loses its selector. Endpoints without our label, for Services
without a selector, are the user's and never touched.
"""

from __future__ import annotations

from collections.abc import Iterable

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
from .objects import ENDPOINTS, PODS, SERVICES, labels_of, ns_name, pod_ready

SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"


def _ours(endpoints: Obj | None) -> bool:
    return endpoints is not None and labels_of(endpoints).get(SKIP_MIRROR) == "true"


def _port(port: Port) -> Obj:
    name, number, protocol, app = port
    out: Obj = {"port": number, "protocol": protocol}
    if name:
        out["name"] = name
    if app:
        out["appProtocol"] = app
    return out


class EndpointsController(ServiceEndpointsController):
    name = "endpoints"
    watches = (SERVICES.key, PODS.key, ENDPOINTS.key)

    def on_other_change(self, change: Change) -> None:
        if _ours(change.old) or _ours(change.obj) or change.type == "DELETED":
            self.queue.add(ns_name(change.obj))

    def written_keys(self) -> Iterable[Key]:
        return [ns_name(ep) for ep in self.cache.all(ENDPOINTS.key) if _ours(ep)]

    def reconcile(self, key: Key) -> float | None:
        ns, name = key
        svc = self.cache.get(SERVICES.key, ns, name)
        current = self.cache.get(ENDPOINTS.key, ns, name)
        selector = service_selector(svc)
        if svc is None or selector is None:
            if current is not None and _ours(current):
                self.registry.delete(ENDPOINTS, ns, name)
            return None
        labels = {**service_labels(svc), SKIP_MIRROR: "true"}
        subsets = self._subsets(svc, selector)
        if current is None:
            body: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                         "metadata": {"name": name, "labels": labels}}
            if subsets:
                body["subsets"] = subsets
            self.registry.create(ENDPOINTS, ns, body)
        elif labels_of(current) != labels or (current.get("subsets") or []) != subsets:
            def change(o: Obj) -> Obj:
                out = {k: v for k, v in o.items() if k != "subsets"}
                out["metadata"] = {**o["metadata"], "labels": labels}
                if subsets:
                    out["subsets"] = subsets
                return out

            self.registry.update_with(ENDPOINTS, ns, name, "", change)
        return None

    def _subsets(self, svc: Obj, selector: dict[str, str]) -> list[Obj]:
        spec = svc.get("spec") or {}
        publish = bool(spec.get("publishNotReadyAddresses"))
        has_ports = bool(spec.get("ports"))
        groups: dict[tuple[Port, ...], tuple[list[Obj], list[Obj]]] = {}
        for pod in selected_pods(self.cache, svc, selector):
            if not in_endpoints(pod, include_terminating=publish):
                continue
            ports = pod_ports(svc, pod)
            if has_ports and not ports:
                continue
            ready, not_ready = groups.setdefault(ports, ([], []))
            (ready if publish or pod_ready(pod) else not_ready).append(self._address(svc, pod))
        subsets = []
        for ports in sorted(groups, key=repr):
            ready, not_ready = groups[ports]
            subset: Obj = {}
            for field, addrs in (("addresses", ready), ("notReadyAddresses", not_ready)):
                if addrs:
                    subset[field] = sorted(addrs, key=lambda a: (a["ip"], a["targetRef"]["uid"]))
            if ports:
                subset["ports"] = sorted((_port(p) for p in ports),
                                         key=lambda p: (p.get("name", ""), p["port"]))
            subsets.append(subset)
        return subsets

    @staticmethod
    def _address(svc: Obj, pod: Obj) -> Obj:
        address: Obj = {"ip": pod_ip(pod), "targetRef": pod_reference(pod)}
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            address["nodeName"] = node_name
        host = hostname(svc, pod)
        if host:
            address["hostname"] = host
        return address
