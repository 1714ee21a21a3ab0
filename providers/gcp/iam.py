"""The IAM permissions the controller's Google service account needs for the `gcp` provider
(Workload Identity, or a key in GOOGLE_APPLICATION_CREDENTIALS). Print them with:

    python -m providers.gcp.iam               # one permission a line
    python -m providers.gcp.iam --role-yaml > lbctl-role.yaml
    gcloud iam roles create lbctl --project PROJECT --file lbctl-role.yaml

Why a module and not a document: a unit test scans the provider's code for every Compute
method it calls (`GceClient.get / list / write(collection, method, ...)` and the operation
waits they imply) and runs a whole lifecycle against the GCE emulator, requiring every API
method GCE saw to be in `METHODS` and the list to hold exactly what those methods need. A new
call cannot ship without its permissions, and no permission outlives the call that needed it.

How to read `METHODS`: GCE checks one permission per REST method on the object it names
(`forwardingRules.insert` -> `compute.forwardingRules.create`; `*.patch` -> `*.update`;
`listInstances` and `aggregatedList` -> `list`; an operation's `wait` -> its `get`), and one
more on every other object the request body *references*: a forwarding rule uses its backend
service (`compute.regionBackendServices.use`), its reserved address (`compute.addresses.use`,
or `useInternal` for an internal one) and, internal, the network and subnetwork
(`compute.networks.use`, `compute.subnetworks.use`); a backend service reads its health check
(`compute.regionHealthChecks.useReadOnly` for the external balancer's regional check,
`compute.healthChecks.useReadOnly` for the internal one's global check) and uses its instance
groups (`compute.instanceGroups.use`); adding or removing a group's instances uses them
(`compute.instances.use`); every firewall rule write changes the network's policy
(`compute.networks.updatePolicy`). A create that carries lbctl's labels lists `*.setLabels`
too (GCE documents that check for labelled instances and disks; release needs it anyway).
Where a permission depends on the request (internal vs external) it is listed under the method
anyway: the role must allow both kinds of Service.

Sources: the Compute Engine REST reference (each method's "Authorization" section), the IAM
permissions reference (cloud.google.com/iam/docs/permissions-reference), the Compute Engine
IAM guide (cloud.google.com/compute/docs/access/iam) and gcloud's reference pages ("The
required permission to execute this command is ...", e.g. `instance-groups list-instances`
-> `compute.instanceGroups.list`).

The role is project-wide (GCE has no tag conditions on most of these); lbctl recognises its
objects by name and description and never touches others, and predefined roles that hold all
of this (`roles/compute.loadBalancerAdmin` plus `roles/compute.securityAdmin` for the firewall
rules) grant far more.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

METHODS: dict[str, tuple[str, ...]] = {
    # -- addresses (regional) -----------------------------------------------------------------
    "compute.addresses.get": ("compute.addresses.get",),
    "compute.addresses.list": ("compute.addresses.list",),
    "compute.addresses.insert": (
        "compute.addresses.create",
        "compute.addresses.createInternal",   # an internal balancer's address
        "compute.subnetworks.use",            # ... reserved in a subnetwork
        "compute.addresses.setLabels"),       # created with lbctl's labels
    "compute.addresses.setLabels": ("compute.addresses.setLabels",),
    "compute.addresses.delete": ("compute.addresses.delete",
                                 "compute.addresses.deleteInternal"),
    # -- forwarding rules (regional) ------------------------------------------------------------
    "compute.forwardingRules.get": ("compute.forwardingRules.get",),
    "compute.forwardingRules.list": ("compute.forwardingRules.list",),
    "compute.forwardingRules.insert": (
        "compute.forwardingRules.create",
        "compute.regionBackendServices.use",  # backendService
        "compute.addresses.use",              # IPAddress of a reserved external address
        "compute.addresses.useInternal",      # ... of a reserved internal address
        "compute.networks.use",               # internal: network
        "compute.subnetworks.use",            # internal: subnetwork
        "compute.forwardingRules.setLabels"),  # created with lbctl's labels
    "compute.forwardingRules.setLabels": ("compute.forwardingRules.setLabels",),
    "compute.forwardingRules.delete": ("compute.forwardingRules.delete",),
    # -- backend services (regional) -----------------------------------------------------------
    "compute.regionBackendServices.get": ("compute.regionBackendServices.get",),
    "compute.regionBackendServices.list": ("compute.regionBackendServices.list",),
    "compute.regionBackendServices.insert": (
        "compute.regionBackendServices.create",
        "compute.regionHealthChecks.useReadOnly",  # external: the regional check
        "compute.healthChecks.useReadOnly",        # internal: the global check
        "compute.instanceGroups.use"),             # backends[].group
    "compute.regionBackendServices.patch": (
        "compute.regionBackendServices.update",
        "compute.regionHealthChecks.useReadOnly",
        "compute.healthChecks.useReadOnly",
        "compute.instanceGroups.use"),
    "compute.regionBackendServices.delete": ("compute.regionBackendServices.delete",),
    "compute.regionBackendServices.getHealth": ("compute.regionBackendServices.get",),
    # -- health checks: regional (external balancers), global (internal ones) -------------------
    "compute.regionHealthChecks.get": ("compute.regionHealthChecks.get",),
    "compute.regionHealthChecks.insert": ("compute.regionHealthChecks.create",),
    "compute.regionHealthChecks.patch": ("compute.regionHealthChecks.update",),
    "compute.regionHealthChecks.delete": ("compute.regionHealthChecks.delete",),
    "compute.healthChecks.get": ("compute.healthChecks.get",),
    "compute.healthChecks.insert": ("compute.healthChecks.create",),
    "compute.healthChecks.patch": ("compute.healthChecks.update",),
    "compute.healthChecks.delete": ("compute.healthChecks.delete",),
    # -- firewall rules (global; each write changes the network's policy) ----------------------
    "compute.firewalls.get": ("compute.firewalls.get",),
    "compute.firewalls.list": ("compute.firewalls.list",),
    "compute.firewalls.insert": ("compute.firewalls.create", "compute.networks.updatePolicy"),
    "compute.firewalls.patch": ("compute.firewalls.update", "compute.networks.updatePolicy"),
    "compute.firewalls.delete": ("compute.firewalls.delete", "compute.networks.updatePolicy"),
    # -- the cluster's unmanaged instance groups (zonal) ----------------------------------------
    "compute.instanceGroups.get": ("compute.instanceGroups.get",),
    "compute.instanceGroups.insert": ("compute.instanceGroups.create",),
    "compute.instanceGroups.listInstances": ("compute.instanceGroups.list",),
    "compute.instanceGroups.aggregatedList": ("compute.instanceGroups.list",),
    "compute.instanceGroups.addInstances": ("compute.instanceGroups.update",
                                            "compute.instances.use"),
    "compute.instanceGroups.removeInstances": ("compute.instanceGroups.update",
                                               "compute.instances.use"),
    "compute.instanceGroups.delete": ("compute.instanceGroups.delete",),
    # -- the nodes' instances: their network tags, read once ------------------------------------
    "compute.instances.get": ("compute.instances.get",),
    # -- waiting for a write's operation ----------------------------------------------------------
    "compute.regionOperations.wait": ("compute.regionOperations.get",),
    "compute.zoneOperations.wait": ("compute.zoneOperations.get",),
    "compute.globalOperations.wait": ("compute.globalOperations.get",),
}
"""Compute API method id (the REST name, as GCE's audit logs and the emulator's call counts
spell it) -> the permissions it needs, the object's own first."""

OPERATIONS = {
    "addresses": "regionOperations", "forwardingRules": "regionOperations",
    "regionBackendServices": "regionOperations", "regionHealthChecks": "regionOperations",
    "healthChecks": "globalOperations", "firewalls": "globalOperations",
    "instanceGroups": "zoneOperations",
}
"""Where a write on each collection's objects is waited for (the scope of its operation)."""

ROLE_ID = "lbctl"
ROLE_TITLE = "lbctl load balancer controller"


def api_id(collection: str, method: str) -> str:
    """`GceClient`'s `<collection>` and SDK method (`add_instances`) -> the Compute API method
    id (`compute.instanceGroups.addInstances`)."""
    head, *rest = method.split("_")
    return f"compute.{collection}.{head}{''.join(w.title() for w in rest)}"


def permissions(methods: Iterable[str] | None = None) -> set[str]:
    """Every permission the API methods need (default: every method in `METHODS`); a method
    not in the table is a KeyError."""
    chosen = METHODS.keys() if methods is None else methods
    return {p for method in chosen for p in METHODS[method]}


def role_yaml(project_role_id: str = ROLE_ID) -> str:
    """A custom role for `gcloud iam roles create ID --project P --file FILE`."""
    lines = [f"# gcloud iam roles create {project_role_id} --project PROJECT --file THIS_FILE",
             f"title: {ROLE_TITLE}",
             "description: What lbctl's gcp provider calls (python -m providers.gcp.iam).",
             "stage: GA",
             "includedPermissions:"]
    lines += [f"- {p}" for p in sorted(permissions())]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv[1:] == ["--role-yaml"]:
        sys.stdout.write(role_yaml())
        return 0
    if argv[1:]:
        sys.stderr.write("usage: python -m providers.gcp.iam [--role-yaml]\n")
        return 2
    sys.stdout.write("".join(f"{p}\n" for p in sorted(permissions())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
