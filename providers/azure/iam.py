"""The Azure RBAC actions the controller's identity needs for the `azure` provider (workload
identity or a managed identity, through `DefaultAzureCredential`). Print them with:

    python -m providers.azure.iam                 # one action a line
    python -m providers.azure.iam --role-json [--scope /subscriptions/S/resourceGroups/G ...] \\
        > lbctl-role.json
    az role definition create --role-definition @lbctl-role.json
    az role assignment create --assignee IDENTITY --role "lbctl load balancer controller" \\
        --scope /subscriptions/S/resourceGroups/G          # each group of the next paragraph

Why a module and not a document: a unit test scans the provider's code for every request it
makes (`ArmClient.get / list / put / delete(kind, ...)`, counted by the client as `<kind>.<verb>`,
and the operation poll each write implies) and runs a whole lifecycle against the ARM emulator,
requiring every `<kind>.<verb>` ARM saw to be in `CALLS` and the list to hold exactly what those
calls need. A new call cannot ship without its actions, and no action outlives the call that
needed it.

How to read `CALLS`: ARM checks one action per request on the resource its URL names (GET ->
`read`, list -> `read`, PUT -> `write`, DELETE -> `delete`), and a *linked access check* (the
`join` actions) on every other resource the request body references, on that resource's scope
("... does not have permission to perform action 'Microsoft.Network/virtualNetworks/subnets/
join/action' on the linked scope(s) ..."). lbctl writes the cluster's load balancer whole, so
its PUT carries every reference the LB holds:
- a public frontend's public IP -> `Microsoft.Network/publicIPAddresses/join/action` (ours and
  the user's, which may live in another resource group);
- an internal frontend's subnet -> `Microsoft.Network/virtualNetworks/subnets/join/action`;
- the IP-based backend pool's addresses name the cluster's virtual network ->
  `Microsoft.Network/virtualNetworks/joinLoadBalancer/action` (not the subnet's
  `subnets/joinLoadBalancer/action`: the addresses carry `virtualNetwork`, never `subnet`);
- rules and probes reference parts of the same LB: nothing more. NSG rules reference nothing
  (addresses, ranges and service tags are values), so the NSG needs `read` and `write` only
  (its rules are written inside the NSG's PUT, not as `securityRules` children), and no
  `join/action`: lbctl never attaches the NSG to a subnet or NIC.
Long-running writes answer `Azure-AsyncOperation`, polled at
`/subscriptions/S/providers/Microsoft.Network/locations/L/operations/ID` ->
`Microsoft.Network/locations/operations/read` (a subscription-level URL: assign that much at
the subscription if a resource-group assignment is refused there). The writes never read the
`Location` URL a DELETE also answers (the SDK polls `Azure-AsyncOperation` when both are given,
and azure-mgmt-network's deletes ask for no final GET). The resync's target-health read does:
a rule's health is an action (`Microsoft.Network/loadBalancers/loadBalancingRules/health/
action`, "Get Health Details of Load Balancing Rule") whose result ARM serves at its
`Location`, `.../locations/L/operationResults/ID` ->
`Microsoft.Network/locations/operationResults/read` (subscription-level too), the only URL the
client polls for it.
Where an action depends on the Service (internal vs external), it is listed under the call
anyway: the role must allow both kinds of Service.

Never needed, so never listed: `networkSecurityGroups/delete` (the cluster's NSG is the
user's; lbctl edits its own rules in it), `virtualNetworks/read` and `subnets/read` (the
subnet and network are named by ID, never read), any `Microsoft.Compute` action (node
addresses come from Kubernetes), `backendAddressPools/*` (the pool travels inside the LB PUT).

Scopes: assign the role on the cluster's resource group (public IPs, NSG), the load
balancer's (`loadBalancerResourceGroup`), the virtual network's (`vnetResourceGroup`: the join
checks run there) and any group a user's public IP lives in
(`azure-load-balancer-resource-group`).

Sources: Azure's resource provider operations reference for Microsoft.Network (each action
and its description: "Joins a load balancer to virtual networks", "Gets operation resource that
represents status of an asynchronous operation"), AKS's cluster identity permissions (the
same LB / public IP / NSG actions, `subnets/join/action` for internal load balancers,
`virtualNetworks/joinLoadBalancer/action` for IP-based backend pools) and ARM's linked access
check errors as users report them. Built-in roles that hold all of this (Network Contributor)
grant far more.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable

NETWORK = "Microsoft.Network"
LB = f"{NETWORK}/loadBalancers"
PIP = f"{NETWORK}/publicIPAddresses"
NSG = f"{NETWORK}/networkSecurityGroups"

CALLS: dict[str, tuple[str, ...]] = {
    # -- the cluster's shared load balancers (written whole) -----------------------------------
    "loadBalancers.get": (f"{LB}/read",),
    "loadBalancers.put": (
        f"{LB}/write",
        f"{PIP}/join/action",                                  # a public frontend's IP
        f"{NETWORK}/virtualNetworks/subnets/join/action",      # an internal frontend's subnet
        f"{NETWORK}/virtualNetworks/joinLoadBalancer/action"),  # the IP-based pool's network
    "loadBalancers.delete": (f"{LB}/delete",),                 # with its last frontend
    # -- public IPs: ours (created, retagged on release, deleted), the user's (read) ---------
    "publicIPAddresses.get": (f"{PIP}/read",),
    "publicIPAddresses.list": (f"{PIP}/read",),                # the user's by address; orphans
    "publicIPAddresses.put": (f"{PIP}/write",),
    "publicIPAddresses.delete": (f"{PIP}/delete",),
    # -- the cluster's NSG: lbctl's rules inside it ------------------------------------------
    "networkSecurityGroups.get": (f"{NSG}/read",),
    "networkSecurityGroups.put": (f"{NSG}/write",),
    # -- the resync's target counts: one rule's health per Service ---------------------------
    "loadBalancingRules.health": (f"{LB}/loadBalancingRules/health/action",),
    # -- polling a write's Azure-AsyncOperation, an action's Location ------------------------
    "operations.get": (f"{NETWORK}/locations/operations/read",),
    "operationResults.get": (f"{NETWORK}/locations/operationResults/read",),
}
"""`<kind>.<verb>` (as `ArmClient.calls` and the ARM emulator's call counts spell a request)
-> the actions it needs, the resource's own first."""

ROLE_NAME = "lbctl load balancer controller"
DEFAULT_SCOPE = "/subscriptions/SUBSCRIPTION_ID"


def actions(calls: Iterable[str] | None = None) -> set[str]:
    """Every action the calls need (default: every call in `CALLS`); a call not in the table
    is a KeyError."""
    chosen = CALLS.keys() if calls is None else calls
    return {a for call in chosen for a in CALLS[call]}


def role_definition(scopes: Iterable[str] = (DEFAULT_SCOPE,)) -> dict[str, object]:
    """A custom role for `az role definition create --role-definition @FILE`, assignable at
    `scopes` (a subscription, or resource groups)."""
    return {
        "Name": ROLE_NAME,
        "IsCustom": True,
        "Description": "What lbctl's azure provider calls (python -m providers.azure.iam).",
        "Actions": sorted(actions()),
        "NotActions": [],
        "DataActions": [],
        "NotDataActions": [],
        "AssignableScopes": list(scopes),
    }


USAGE = "usage: python -m providers.azure.iam [--role-json [--scope SCOPE]...]\n"


def main(argv: list[str]) -> int:
    args = argv[1:]
    if not args:
        sys.stdout.write("".join(f"{a}\n" for a in sorted(actions())))
        return 0
    if args[0] != "--role-json":
        sys.stderr.write(USAGE)
        return 2
    rest, scopes = args[1:], []
    while rest:
        if rest[0] != "--scope" or len(rest) < 2 or not rest[1].startswith("/subscriptions/"):
            sys.stderr.write(USAGE)
            return 2
        scopes.append(rest[1])
        rest = rest[2:]
    document = role_definition(scopes or (DEFAULT_SCOPE,))
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
