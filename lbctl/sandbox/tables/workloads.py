"""Printers for the non-core resources the sandbox serves.

Ports of kube's `printDeployment`, `printReplicaSet`, `printDaemonSet`, `printPodDisruptionBudget`,
`printEndpointSlice`, `printLease`, `printRoleBinding` and `printClusterRoleBinding`. Roles and
ClusterRoles have no printer upstream either: they get the default NAME / CREATED AT table.
"""

from __future__ import annotations

from typing import Any

from ..storage.store import Obj
from .base import AGE, NAME, Column, Printer
from .durations import since
from .format import (
    format_label_selector,
    format_labels,
    int_or_string,
    layout_containers,
    list_with_more,
    selector_string,
)

APPS = "io.k8s.api.apps.v1."
CONTAINERS = Column("Containers", doc="Names of each container in the template.", priority=1)
IMAGES = Column("Images", doc="Images referenced by each container in the template.", priority=1)


def _meta(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("name", "")), since(meta.get("creationTimestamp"))


def _template_containers(obj: Obj) -> Any:
    return (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")


def _deployment(obj: Obj) -> list[Any]:
    name, age = _meta(obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = layout_containers(_template_containers(obj))
    selector = selector_string(spec.get("selector"))
    return [name, f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), age,
            names, images, "<invalid>" if selector is None else selector]


_DEPLOYMENT_STATUS = APPS + "DeploymentStatus"
DEPLOYMENT = Printer((
    NAME, Column("Ready", doc="Number of the pod with ready state"),
    Column("Up-to-date", doc=(_DEPLOYMENT_STATUS, "updatedReplicas")),
    Column("Available", doc=(_DEPLOYMENT_STATUS, "availableReplicas")), AGE,
    CONTAINERS, IMAGES,
    Column("Selector", doc=(APPS + "DeploymentSpec", "selector"), priority=1)), _deployment)


def _replicaset(obj: Obj) -> list[Any]:
    name, age = _meta(obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = layout_containers(_template_containers(obj))
    return [name, spec.get("replicas", 1), status.get("replicas", 0),
            status.get("readyReplicas", 0), age, names, images,
            format_label_selector(spec.get("selector"))]


REPLICASET = Printer((
    NAME, Column("Desired", "integer", (APPS + "ReplicaSetSpec", "replicas")),
    Column("Current", "integer", (APPS + "ReplicaSetStatus", "replicas")),
    Column("Ready", "integer", (APPS + "ReplicaSetStatus", "readyReplicas")), AGE,
    CONTAINERS, IMAGES,
    Column("Selector", doc=(APPS + "ReplicaSetSpec", "selector"), priority=1)), _replicaset)


def _daemonset(obj: Obj) -> list[Any]:
    name, age = _meta(obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    template_spec = (spec.get("template") or {}).get("spec") or {}
    names, images = layout_containers(template_spec.get("containers"))
    return [name, status.get("desiredNumberScheduled", 0),
            status.get("currentNumberScheduled", 0), status.get("numberReady", 0),
            status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0),
            format_labels(template_spec.get("nodeSelector")), age, names, images,
            format_label_selector(spec.get("selector"))]


_DS_STATUS = APPS + "DaemonSetStatus"
DAEMONSET = Printer((
    NAME, Column("Desired", "integer", (_DS_STATUS, "desiredNumberScheduled")),
    Column("Current", "integer", (_DS_STATUS, "currentNumberScheduled")),
    Column("Ready", "integer", (_DS_STATUS, "numberReady")),
    Column("Up-to-date", "integer", (_DS_STATUS, "updatedNumberScheduled")),
    Column("Available", "integer", (_DS_STATUS, "numberAvailable")),
    Column("Node Selector", doc=("io.k8s.api.core.v1.PodSpec", "nodeSelector")), AGE,
    CONTAINERS, IMAGES,
    Column("Selector", doc=(APPS + "DaemonSetSpec", "selector"), priority=1)), _daemonset)


def _pdb(obj: Obj) -> list[Any]:
    name, age = _meta(obj)
    spec = obj.get("spec") or {}
    low, high = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [name, "N/A" if low is None else int_or_string(low),
            "N/A" if high is None else int_or_string(high),
            (obj.get("status") or {}).get("disruptionsAllowed", 0), age]


PDB = Printer((
    NAME, Column("Min Available", doc="The minimum number of pods that must be available."),
    Column("Max Unavailable", doc="The maximum number of pods that may be unavailable."),
    Column("Allowed Disruptions", "integer",
           "Calculated number of pods that may be disrupted at this time."), AGE), _pdb)


def _slice(obj: Obj) -> list[Any]:
    name, age = _meta(obj)
    ports = obj.get("ports") or []
    port_texts = [str(p["port"]) if p.get("port") is not None else (p.get("name") or "*")
                  for p in ports]
    addresses = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    return [name, obj.get("addressType", ""), list_with_more(port_texts, len(port_texts)),
            list_with_more(addresses, len(addresses)), age]


_SLICE = "io.k8s.api.discovery.v1.EndpointSlice"
ENDPOINT_SLICE = Printer((
    NAME, Column("AddressType", doc=(_SLICE, "addressType")),
    Column("Ports", doc=(_SLICE, "ports")), Column("Endpoints", doc=(_SLICE, "endpoints")),
    AGE), _slice)


def _lease(obj: Obj) -> list[Any]:
    name, age = _meta(obj)
    return [name, (obj.get("spec") or {}).get("holderIdentity") or "", age]


LEASE = Printer((
    NAME, Column("Holder", doc=("io.k8s.api.coordination.v1.LeaseSpec", "holderIdentity")), AGE),
    _lease)


def _subjects(obj: Obj) -> tuple[str, str, str]:
    """`rbac.SubjectsStrings`: users, groups and `namespace/name` service accounts."""
    users, groups, accounts = [], [], []
    for subject in obj.get("subjects") or []:
        kind, name = subject.get("kind"), subject.get("name", "")
        if kind == "ServiceAccount":
            accounts.append(f"{subject.get('namespace', '')}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return ", ".join(users), ", ".join(groups), ", ".join(accounts)


def _binding(obj: Obj) -> list[Any]:
    name, age = _meta(obj)
    ref = obj.get("roleRef") or {}
    return [name, f"{ref.get('kind', '')}/{ref.get('name', '')}", age, *_subjects(obj)]


def _binding_printer(kind: str) -> Printer:
    noun = kind[0].lower() + kind[1:]
    return Printer((
        NAME, Column("Role", doc=(f"io.k8s.api.rbac.v1.{kind}", "roleRef")), AGE,
        Column("Users", doc=f"Users in the {noun}", priority=1),
        Column("Groups", doc=f"Groups in the {noun}", priority=1),
        Column("ServiceAccounts", doc=f"ServiceAccounts in the {noun}", priority=1)), _binding)


PRINTERS: dict[str, Printer] = {
    "deployments.apps": DEPLOYMENT, "replicasets.apps": REPLICASET,
    "daemonsets.apps": DAEMONSET,
    "poddisruptionbudgets.policy": PDB, "endpointslices.discovery.k8s.io": ENDPOINT_SLICE,
    "leases.coordination.k8s.io": LEASE,
    "rolebindings.rbac.authorization.k8s.io": _binding_printer("RoleBinding"),
    "clusterrolebindings.rbac.authorization.k8s.io": _binding_printer("ClusterRoleBinding"),
}
