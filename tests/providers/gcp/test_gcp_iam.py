"""The permission list (`providers.gcp.iam`) is exactly what the provider needs, proved twice:

- against the code: every `gce.get / list / write(collection, method, ...)` in providers/gcp
  (found in the syntax tree; a collection passed as a variable resolves to the collection names
  written in the same function, else the same class), plus the operation wait each write
  implies, is a method of `iam.METHODS`, a real method of the SDK's client, and the table holds
  no other method;
- against GCE: a whole lifecycle through `GcpProvider` on the emulator (external, internal,
  Local and mixed TCP/UDP Services, a port change, a node added, `loadBalancerIP` on a reserved
  address, a release, then every delete) and every API method id in the emulator's
  `counts()` must be in the table (and among the code's).
The list is then the table's permissions: nothing without a method that needs it.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from lbctl.emulators.gcp.server import GceEmulator
from lbctl.emulators.gcp.world import World, provider_id
from providers.cluster import StaticView
from providers.gcp import iam
from providers.gcp.annotations import LB_TYPE, SUBNET
from providers.gcp.client import CLIENTS, GceClient
from providers.gcp.provider import GcpProvider
from providers.spec import BalancerRef, HealthCheck, Listener, LoadBalancerSpec, ServiceRef, Target
from tests.providers.source_tree import Scopes, SourceTree

SOURCE = Path(iam.__file__).parent
COLLECTIONS = frozenset(CLIENTS) - {"regionOperations", "zoneOperations", "globalOperations"}
PERMISSION = re.compile(r"compute\.[a-z][A-Za-z]+\.[a-z][A-Za-z]+")
NOT_IN_LIFECYCLE: frozenset[str] = frozenset()
"""Methods the code calls that the lifecycle below cannot reach, each with its reason (none
today: the lifecycle exercises every one)."""


# -- the code ----------------------------------------------------------------------------------
KINDS = {"get": "get", "list": "list", "aggregated": "aggregated_list", "write": "",
         "read": ""}
"""`GceClient`'s request methods -> the SDK method (write's and read's is their second
argument)."""


def _is_gce(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "gce") or (
        isinstance(node, ast.Attribute) and node.attr == "gce")


def _literals(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in COLLECTIONS}


class Source(SourceTree):
    """providers/gcp's syntax trees: every call with its enclosing scopes (module, classes,
    functions), and every function by name, to follow a collection passed as an argument."""

    def __init__(self) -> None:
        super().__init__(SOURCE)

    def collections(self, arg: ast.expr, scopes: Scopes, depth: int = 0) -> set[str]:
        """The collections an argument may name: a literal; a parameter -> what the
        function's callers pass; a local (a loop over a table) -> the collection names written
        in its function, else its class."""
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return {arg.value}
        function = next((s for s in reversed(scopes) if isinstance(s, ast.FunctionDef)), None)
        if isinstance(arg, ast.Name) and function is not None and depth < 4:
            params = [a.arg for a in function.args.args]
            if arg.id in params:
                found: set[str] = set()
                for passed, where in self.passed(function.name, params, arg.id):
                    found |= self.collections(passed, where, depth + 1)
                if found:
                    return found
        for scope in reversed(scopes):
            found = _literals(scope)
            if found:
                return found
        return set()


def called() -> dict[str, str]:
    """Compute API method id -> where in providers/gcp it is called (or implied)."""
    source = Source()
    out: dict[str, str] = {}
    for file, call, scopes in source.calls:
        func = call.func
        if not (isinstance(func, ast.Attribute) and func.attr in KINDS and _is_gce(func.value)
                and call.args):
            continue
        where = f"{file}:{call.lineno}"
        method = KINDS[func.attr]
        if func.attr in ("list", "write", "read") and len(call.args) > 1:
            second = call.args[1]
            assert isinstance(second, ast.Constant) and isinstance(second.value, str), \
                f"{where}: the method must be a literal"
            method = second.value
        assert method, f"{where}: a write without a method"
        collections = source.collections(call.args[0], scopes)
        assert collections, f"{where}: a GCE call whose collection is unknown"
        for collection in collections:
            assert collection in COLLECTIONS, (where, collection)
            out.setdefault(iam.api_id(collection, method), where)
            if func.attr == "write":  # and the wait for its operation
                out.setdefault(f"compute.{iam.OPERATIONS[collection]}.wait",
                               f"{where} (its operation)")
    return out


@pytest.mark.unit
def test_the_table_lists_exactly_the_methods_the_code_calls() -> None:
    calls = called()
    assert {"compute.forwardingRules.insert", "compute.instanceGroups.addInstances",
            "compute.addresses.setLabels", "compute.regionOperations.wait"} <= set(calls)
    missing = sorted(f"{m} ({calls[m]})" for m in set(calls) - set(iam.METHODS))
    assert not missing, f"called without permissions in providers/gcp/iam.py: {missing}"
    unused = sorted(set(iam.METHODS) - set(calls))
    assert not unused, f"iam.METHODS lists methods providers/gcp never calls: {unused}"


@pytest.mark.unit
def test_every_method_is_a_real_sdk_method_and_every_permission_well_formed() -> None:
    from google.cloud import compute_v1  # the SDK: every method id is one of its clients'

    for method_id, needed in iam.METHODS.items():
        _, collection, method = method_id.split(".")
        client = getattr(compute_v1, CLIENTS[collection])
        snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), method)
        assert callable(getattr(client, snake, None)), method_id
        assert iam.api_id(collection, snake) == method_id
        assert needed and all(PERMISSION.fullmatch(p) for p in needed), method_id
        assert len(set(needed)) == len(needed), method_id
    for collection, operations in iam.OPERATIONS.items():
        assert collection in COLLECTIONS and operations in CLIENTS


@pytest.mark.unit
def test_the_module_prints_the_list_and_a_custom_role() -> None:
    run = [sys.executable, "-m", "providers.gcp.iam"]
    listed = subprocess.run(run, capture_output=True, text=True, check=True,
                            cwd=SOURCE.parents[1]).stdout.split()
    assert listed == sorted(iam.permissions())
    assert {"compute.forwardingRules.create", "compute.addresses.use",
            "compute.instanceGroups.update", "compute.healthChecks.useReadOnly",
            "compute.regionBackendServices.use", "compute.networks.updatePolicy"} <= set(listed)
    role = subprocess.run([*run, "--role-yaml"], capture_output=True, text=True, check=True,
                          cwd=SOURCE.parents[1]).stdout
    yaml = pytest.importorskip("yaml")
    document = yaml.safe_load(role)
    assert document["stage"] == "GA" and document["title"]
    assert document["includedPermissions"] == listed
    bad = subprocess.run([*run, "--bogus"], capture_output=True, text=True, check=False,
                         cwd=SOURCE.parents[1])
    assert bad.returncode == 2 and "usage" in bad.stderr


# -- GCE ------------------------------------------------------------------------------------------
CLUSTER = "prod"


def _ref(name: str) -> BalancerRef:
    uid = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.default.{CLUSTER}"))
    return BalancerRef(f"lb-default-{name}-abcdefghij", CLUSTER,
                       ServiceRef("default", name, uid))


def _spec(world: World, name: str, listeners: tuple[Listener, ...] = (), nodes: int = 3,
          check: HealthCheck | None = None, annotations: tuple[tuple[str, str], ...] = (),
          requested_ips: tuple[str, ...] = ()) -> LoadBalancerSpec:
    targets = tuple(Target(n.name, provider_id(world.project, n), (n.ip,))
                    for n in world.nodes[:nodes])
    return LoadBalancerSpec(
        ref=_ref(name), listeners=listeners or (Listener("http", "TCP", 80, 30080),),
        targets=targets, health_check=check or HealthCheck("TCP", None),
        external_traffic_policy="Local" if check else "Cluster", annotations=annotations,
        requested_ips=requested_ips)


@pytest.mark.integration
def test_a_lifecycle_calls_only_methods_the_list_allows(
        emulator: GceEmulator, gce: GceClient, world: World) -> None:
    # the user's reserved address for loadBalancerIP, made before counting
    where = {"project": world.project, "region": world.region}
    gce.write("addresses", "insert", scope=("region", world.region), **where,
              address_resource=gce.compute.Address(name="users-ip"))
    user_ip = str((gce.get("addresses", **where, address="users-ip") or {})["address"])
    emulator.settings(operationDelay=0.02)  # writes answer PENDING: their waits are counted
    emulator.clear_calls()
    provider = GcpProvider(gce.settings, CLUSTER, StaticView(), client=gce)
    http, dns = (Listener("http", "TCP", 80, 30080),), (
        Listener("dns", "UDP", 53, 30053), Listener("dns-tcp", "TCP", 53, 30054))
    internal = ((LB_TYPE, "Internal"), (SUBNET, world.subnetwork))
    try:
        specs = [
            _spec(world, "web", http, nodes=1),  # zone a only
            _spec(world, "internal", http, annotations=internal),
            _spec(world, "local", http, check=HealthCheck("HTTP", 31234, "/healthz")),
            _spec(world, "ilocal", http, check=HealthCheck("HTTP", 31235, "/healthz"),
                  annotations=internal),
            _spec(world, "mixed", dns),
            _spec(world, "pinned", http, requested_ips=(user_ip,)),
        ]
        for spec in specs:
            assert provider.ensure(spec).ingress[0].ip
        assert provider.ensure(specs[-1]).ingress[0].ip == user_ip  # a steady state
        moved = (Listener("http", "TCP", 8080, 30080),)
        provider.ensure(_spec(world, "web", moved, nodes=1))  # a port change
        provider.ensure(_spec(world, "local", http, check=HealthCheck("HTTP", 31236, "/hz")))
        provider.ensure(_spec(world, "ilocal", http, check=HealthCheck("HTTP", 31237, "/hz"),
                              annotations=internal))
        emulator.add_instances([{"name": f"{CLUSTER}-node-4", "zone": world.zones[0],
                                 "tags": [world.node_tag]}])
        grown = emulator.read_world(CLUSTER)
        provider.ensure(_spec(grown, "web", moved, nodes=4))  # a node, and a zone, more
        provider.ensure(_spec(grown, "mixed", dns, nodes=4))
        assert {r.name for r in provider.list_owned()} >= {_ref("web").name}
        assert provider.observe(_ref("web")) is not None
        provider.release(_ref("pinned"))  # labels off its rule (the address is the user's)
        provider.release(_ref("mixed"))  # ... and off our address
        for spec in specs:
            provider.delete(spec.ref)
    finally:
        provider.close()
    seen = emulator.counts()
    assert seen.get("compute.forwardingRules.insert") and seen.get(
        "compute.instanceGroups.addInstances")
    unlisted = sorted(set(seen) - set(iam.METHODS))
    assert not unlisted, f"GCE saw methods without permissions in the list: {unlisted}"
    code = called()
    assert set(seen) <= set(code), sorted(set(seen) - set(code))
    assert set(code) - set(seen) <= NOT_IN_LIFECYCLE, sorted(set(code) - set(seen))
