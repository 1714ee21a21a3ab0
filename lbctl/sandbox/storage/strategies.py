"""Which admission rules apply to which resource (kube's per-resource registry strategies)."""

from __future__ import annotations

from ..admission.nodes import validate_node, validate_node_update
from ..admission.services import ServiceAdmission
from ..errors import FieldError
from .registry import Strategy, refuse
from .resources import Resource
from .store import Obj


class ServiceStrategy:
    """Services: defaulting, validation and ClusterIP/nodePort allocation."""

    def __init__(self, admission: ServiceAdmission) -> None:
        self.admission = admission

    def create(self, res: Resource, obj: Obj, problems: list[FieldError],
               dry_run: bool) -> Obj:
        return self.admission.create(obj, meta_errors=problems, dry_run=dry_run)

    def update(self, res: Resource, old: Obj, new: Obj, problems: list[FieldError],
               dry_run: bool) -> Obj:
        return self.admission.update(old, new, meta_errors=problems, dry_run=dry_run)

    def update_status(self, res: Resource, old: Obj, new: Obj,
                      problems: list[FieldError]) -> Obj:
        return self.admission.update_status(old, new, meta_errors=problems)

    def release(self, res: Resource, obj: Obj) -> None:
        self.admission.release(obj)


class NodeStrategy:
    """Nodes: spec validation; providerID may only change from empty."""

    def create(self, res: Resource, obj: Obj, problems: list[FieldError],
               dry_run: bool) -> Obj:
        refuse(res, obj, problems + validate_node(obj))
        return obj

    def update(self, res: Resource, old: Obj, new: Obj, problems: list[FieldError],
               dry_run: bool) -> Obj:
        refuse(res, new, problems + validate_node(new) + validate_node_update(old, new))
        return new

    def update_status(self, res: Resource, old: Obj, new: Obj,
                      problems: list[FieldError]) -> Obj:
        refuse(res, new, problems + validate_node_update(old, new))
        return new

    def release(self, res: Resource, obj: Obj) -> None:
        return None


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _name_labelled(obj: Obj) -> Obj:
    """The namespace strategy's Canonicalize: the label `kubernetes.io/metadata.name` always
    equals the name (set on create, put back on every update that drops or changes it)."""
    meta = dict(obj.get("metadata") or {})
    labels = meta.get("labels")
    meta["labels"] = {**(labels if isinstance(labels, dict) else {}),
                      NAMESPACE_NAME_LABEL: meta.get("name", "")}
    return {**obj, "metadata": meta}


class NamespaceStrategy:
    """Namespaces start Active with the `kubernetes` finalizer (the namespace controller's),
    and carry `kubernetes.io/metadata.name` set to their name, as kube-apiserver does."""

    def create(self, res: Resource, obj: Obj, problems: list[FieldError],
               dry_run: bool) -> Obj:
        refuse(res, obj, problems)
        spec = dict(obj.get("spec") or {})
        spec.setdefault("finalizers", ["kubernetes"])
        return _name_labelled({**obj, "spec": spec, "status": {"phase": "Active"}})

    def update(self, res: Resource, old: Obj, new: Obj, problems: list[FieldError],
               dry_run: bool) -> Obj:
        refuse(res, new, problems)
        # spec.finalizers change only via /finalize
        return _name_labelled({**new, "spec": old.get("spec", {})})

    def update_status(self, res: Resource, old: Obj, new: Obj,
                      problems: list[FieldError]) -> Obj:
        refuse(res, new, problems)
        return _name_labelled(new)

    def release(self, res: Resource, obj: Obj) -> None:
        return None


def default_strategies(service_cidr: str = "10.96.0.0/12",
                       node_port_range: tuple[int, int] = (30000, 32767)) -> dict[str, Strategy]:
    return {
        "services": ServiceStrategy(ServiceAdmission(service_cidr=service_cidr,
                                                     node_port_range=node_port_range)),
        "nodes": NodeStrategy(),
        "namespaces": NamespaceStrategy(),
    }
