"""Which pods back a Service and on which ports: shared by the EndpointSlice and Endpoints
controllers, so the two views of one Service never disagree.

Ported from upstream's helpers: `ShouldPodBeInEndpoints` (no terminal pods, no pods without an
IP, terminating ones only where asked), `podutil.FindPort` (a named targetPort resolves to the
container port of that name and protocol, sidecars included; a pod without it has no such port)
and the Service-to-pods selection (a nil or empty selector selects nothing: such Services'
endpoints are managed by hand). A pod change re-queues exactly the Services whose selector
matched the pod before or after, and only when something an endpoint shows has changed.
`ServiceEndpointsController` is what the two controllers share: keys are Services, queued by
changes to Services, to the pods they select and to the objects the controller writes.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable

from ..storage.store import Change, Key, Obj
from .cache import Cache
from .controller import Controller
from .objects import PODS, SERVICES, labels_of, ns_name, pod_containers, pod_ready

Port = tuple[str, int, str, str | None]
"""(name, port, protocol, appProtocol) as both endpoint kinds list them."""


def service_selector(svc: Obj | None) -> dict[str, str] | None:
    """The selector the controllers act on, None when they must leave the Service alone."""
    if svc is None:
        return None
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName" or not spec.get("selector"):
        return None
    return dict(spec["selector"])


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """endpointsliceutil.ShouldPodBeInEndpoints."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Failed", "Succeeded"):
        return False
    if not status.get("podIP") and not status.get("podIPs"):
        return False
    return include_terminating or not pod["metadata"].get("deletionTimestamp")


def find_port(pod: Obj, port: Obj) -> int | None:
    """podutil.FindPort: the pod's port for a Service port's targetPort."""
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = port.get("protocol") or "TCP"
    for container in pod_containers(pod):
        for cport in container.get("ports") or ():
            if cport.get("name") == target and (cport.get("protocol") or "TCP") == protocol:
                return int(cport["containerPort"])
    return None


def pod_ports(svc: Obj, pod: Obj) -> tuple[Port, ...]:
    """The Service's ports as `pod` serves them; ports it cannot resolve are left out."""
    found = []
    for port in (svc.get("spec") or {}).get("ports") or ():
        number = find_port(pod, port)
        if number is not None:
            found.append((str(port.get("name") or ""), number, str(port.get("protocol") or "TCP"),
                          port.get("appProtocol")))
    return tuple(found)


def hostname(svc: Obj, pod: Obj) -> str | None:
    """The pod's hostname when it lives under this Service's subdomain."""
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
        return str(spec["hostname"])
    return None


def pod_ip(pod: Obj) -> str:
    """The pod's IP as its endpoints list it (a pod `in_endpoints` has one)."""
    status = pod.get("status") or {}
    ip: str = status.get("podIP") or status["podIPs"][0]["ip"]
    return ip


def pod_reference(pod: Obj) -> Obj:
    """The `targetRef` an endpoint of the pod carries."""
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
            "uid": meta["uid"]}


def selected_pods(cache: Cache, svc: Obj, selector: dict[str, str]) -> list[Obj]:
    return [p for p in cache.in_namespace(PODS.key, svc["metadata"]["namespace"])
            if selects(selector, labels_of(p))]


def _endpoint_view(pod: Obj | None) -> object:
    """What about a pod an endpoint shows; changes elsewhere do not touch endpoints."""
    if pod is None:
        return None
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    return (labels_of(pod), status.get("podIP"), status.get("podIPs"), status.get("phase"),
            pod_ready(pod), spec.get("nodeName"), pod["metadata"].get("deletionTimestamp"),
            spec.get("hostname"), spec.get("subdomain"),
            [c.get("ports") for c in pod_containers(pod)])


def services_for(cache: Cache, change: Change) -> set[Key]:
    """The Services whose endpoints a pod change may alter."""
    new = None if change.type == "DELETED" else change.obj
    if change.type == "MODIFIED" and _endpoint_view(change.old) == _endpoint_view(new):
        return set()
    ns = change.obj["metadata"]["namespace"]
    labels = [labels_of(p) for p in (change.old, new) if p is not None]
    found = set()
    for svc in cache.in_namespace(SERVICES.key, ns):
        selector = service_selector(svc)
        if selector is not None and any(selects(selector, lab) for lab in labels):
            found.add((ns, svc["metadata"]["name"]))
    return found


def service_labels(svc: Obj, *reserved: str) -> dict[str, str]:
    """The Service's labels as its endpoint objects carry them (plus the headless mark)."""
    labels = {k: v for k, v in labels_of(svc).items() if k not in reserved}
    if (svc.get("spec") or {}).get("clusterIP") == "None":
        labels["service.kubernetes.io/headless"] = ""
    return labels


class ServiceEndpointsController(Controller[Key]):
    """A controller of the objects listing a Service's endpoints, keyed by Service."""

    def on_change(self, change: Change) -> None:
        if change.key == SERVICES.key:
            self.queue.add(ns_name(change.obj))
        elif change.key == PODS.key:
            for key in services_for(self.cache, change):
                self.queue.add(key)
        else:
            self.on_other_change(change)

    def resync(self) -> None:
        for svc in self.cache.all(SERVICES.key):
            self.queue.add(ns_name(svc))
        for key in self.written_keys():
            self.queue.add(key)

    @abstractmethod
    def on_other_change(self, change: Change) -> None:
        """Queue the Services a change to another watched kind affects."""

    @abstractmethod
    def written_keys(self) -> Iterable[Key]:
        """The Services of every object this controller has written (start-up)."""
