"""The action list (`providers.azure.iam`) is exactly what the provider needs, proved twice:

- against the code: every `arm.get / list / put / delete(kind, ...)` in providers/azure (found
  in the syntax tree; a kind held in an attribute or passed as a parameter is followed to the
  literals its constructors and callers pass), plus the operation poll each write implies, and
  every `arm.health(...)` (a rule's health action and its Location poll), is a
  call of `iam.CALLS`, and the table holds no other call. The one request the code could make
  but never does (`networkSecurityGroups.delete`: the NSG's changes never ask for it) is named
  with its reason and proved unreachable here;
- against ARM: a whole lifecycle through `AzureProvider` on the ARM emulator (external,
  internal, the user's public IP by address and by name, a node added, observe, list_owned, a
  release, a resync reading the targets' health, then every delete) and every `<kind>.<verb>`
  the emulator counted (and the client counted: the same) must be in the table and among the
  code's, and the code's calls all seen.
  The LB bodies written carried each reference the `join` actions are listed for.
The list is then the table's actions: nothing without a call that needs it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lbctl.emulators.azure.client import network_client
from lbctl.emulators.azure.server import AzureEmulator
from providers.azure import iam, names
from providers.azure.annotations import INTERNAL, PIP_NAME, parse_annotations
from providers.azure.changes import nsg_change, nsg_removal
from providers.azure.client import OPERATIONS, ArmClient
from providers.azure.coalesce import Coalescer
from providers.azure.desired import desired
from providers.azure.provider import AzureProvider
from providers.azure.settings import AzureSettings
from providers.cluster import StaticView
from providers.errors import PermanentError
from providers.spec import BalancerRef, HealthCheck, Listener, LoadBalancerSpec, ServiceRef, Target
from tests.providers.source_tree import Scopes, SourceTree

SOURCE = Path(iam.__file__).parent
KINDS = frozenset(OPERATIONS)
VERBS = {"get": "get", "list": "list", "put": "put", "delete": "delete", "health": "health"}
"""`ArmClient`'s request methods -> the verb its counts use."""
FIXED = {"health": "loadBalancingRules"}
"""Request methods of one kind, which they do not take as an argument."""
POLL = "operations.get"
RESULT = "operationResults.get"
"""An action's Location poll (the health read's only poll)."""
ACTION = re.compile(
    r"Microsoft\.Network/([a-z][A-Za-z]*/)+(read|write|delete|[a-z][A-Za-z]*/action)")
UNREACHABLE = {
    "networkSecurityGroups.delete": (
        "ArmObject deletes whatever object a change empties, but the NSG's changes never empty "
        "it: nsg_change refuses an absent NSG, nsg_removal keeps the NSG without lbctl's rules, "
        "and on an absent NSG answers None for None, which the coalescer leaves alone "
        "(test_the_nsg_is_never_deleted)"),
}
"""Calls the code could make syntactically that no path reaches, each with its reason."""



# -- the code ------------------------------------------------------------------------------------
def _is_arm(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "arm") or (
        isinstance(node, ast.Attribute) and node.attr == "arm")


class Source(SourceTree):
    """providers/azure's syntax trees: every call with its enclosing scopes, every function and
    class by name, to follow a kind passed down as an argument or kept in an attribute."""

    def __init__(self) -> None:
        super().__init__(SOURCE)

    def kinds(self, arg: ast.expr, scopes: Scopes, depth: int = 0) -> set[str]:
        """The kinds an argument may name: a literal; a parameter -> what the function's
        callers pass; `self.X` -> what the class's constructor was given for X."""
        if depth > 6:
            return set()
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return {arg.value}
        function = next((s for s in reversed(scopes) if isinstance(s, ast.FunctionDef)), None)
        if isinstance(arg, ast.Name) and function is not None:
            params = [a.arg for a in function.args.args]
            if arg.id in params:
                found: set[str] = set()
                callee = function.name
                if callee == "__init__":
                    made = next(s for s in reversed(scopes) if isinstance(s, ast.ClassDef))
                    callee = made.name  # a constructor: the class's calls pass it
                for passed, where in self.passed(callee, params, arg.id):
                    found |= self.kinds(passed, where, depth + 1)
                return found
        if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) \
                and arg.value.id == "self":
            owner = next((s for s in reversed(scopes) if isinstance(s, ast.ClassDef)), None)
            assert owner is not None, f"self.{arg.attr} outside a class"
            return self._attribute(owner, arg.attr, depth)
        return set()

    def _attribute(self, owner: ast.ClassDef, attr: str, depth: int) -> set[str]:
        found: set[str] = set()
        for method in (n for n in owner.body if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(method):
                if not isinstance(node, ast.Assign):
                    continue
                for target in node.targets:
                    pairs: list[tuple[ast.expr, ast.expr]] = [(target, node.value)]
                    if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        pairs = list(zip(target.elts, node.value.elts, strict=True))
                    for left, right in pairs:
                        if isinstance(left, ast.Attribute) and left.attr == attr \
                                and isinstance(left.value, ast.Name) and left.value.id == "self":
                            found |= self.kinds(right, (owner, method), depth + 1)
        return found


def called() -> dict[str, str]:
    """`<kind>.<verb>` -> where in providers/azure it is called (or implied)."""
    source = Source()
    out: dict[str, str] = {}
    for file, call, scopes in source.calls:
        func = call.func
        if not (isinstance(func, ast.Attribute) and func.attr in VERBS and _is_arm(func.value)):
            continue
        where = f"{file}:{call.lineno}"
        if func.attr in FIXED:  # its kind is the method's; its result is at Location
            out.setdefault(f"{FIXED[func.attr]}.{VERBS[func.attr]}", where)
            out.setdefault(RESULT, f"{where} (its Location)")
            continue
        assert call.args, f"{where}: an ARM call without its kind"
        kinds = source.kinds(call.args[0], scopes)
        assert kinds, f"{where}: an ARM call whose kind is unknown"
        for kind in kinds:
            assert kind in KINDS, (where, kind)
            out.setdefault(f"{kind}.{VERBS[func.attr]}", where)
            if func.attr in ("put", "delete"):  # and the poll of its operation
                out.setdefault(POLL, f"{where} (its operation)")
    return out


@pytest.mark.unit
def test_the_table_lists_exactly_the_calls_the_code_makes() -> None:
    calls = called()
    assert {"loadBalancers.put", "loadBalancers.get", "networkSecurityGroups.put",
            "publicIPAddresses.list", POLL, "loadBalancingRules.health", RESULT} <= set(calls)
    assert set(UNREACHABLE) <= set(calls), "an exclusion no code path could make: drop it"
    missing = sorted(f"{c} ({calls[c]})" for c in set(calls) - set(iam.CALLS) - set(UNREACHABLE))
    assert not missing, f"called without actions in providers/azure/iam.py: {missing}"
    unused = sorted(set(iam.CALLS) - set(calls))
    assert not unused, f"iam.CALLS lists calls providers/azure never makes: {unused}"
    assert not set(UNREACHABLE) & set(iam.CALLS)


@pytest.mark.unit
def test_the_scan_sees_every_request_path() -> None:
    """The scan is complete only if requests go through ArmClient's five methods: nothing in
    providers/azure but client.py touches the SDK, and those five are all that send."""
    source = Source()
    for name, tree in source.files.items():
        if name == "client.py":
            continue
        sdk = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute)
               and n.attr in ("sdk", "_ops", "_attempts")]
        assert not sdk, f"{name}:{sdk}: ARM reached around ArmClient's counted methods"
    senders = {name for name, member in inspect.getmembers(ArmClient, inspect.isfunction)
               if "self._attempts(" in inspect.getsource(member) and not name.startswith("_")}
    assert senders == set(VERBS)


@pytest.mark.unit
def test_every_call_and_action_is_well_formed() -> None:
    for call, needed in iam.CALLS.items():
        kind, verb = call.split(".")
        assert (kind in KINDS or kind in FIXED.values() or call in (POLL, RESULT)) \
            and verb in VERBS.values(), call
        assert needed and all(ACTION.fullmatch(a) for a in needed), call
        assert len(set(needed)) == len(needed), call
        own = needed[0]
        if kind in FIXED.values():  # a child's action, checked on the load balancer's child
            assert own == f"Microsoft.Network/loadBalancers/{kind}/{verb}/action", call
        elif call not in (POLL, RESULT):
            assert own.startswith(f"Microsoft.Network/{kind}/"), call
            assert own.endswith({"get": "/read", "list": "/read", "put": "/write",
                                 "delete": "/delete"}[verb]), call
    joins = {a for a in iam.actions() if a.endswith("/join/action")
             or a.endswith("/joinLoadBalancer/action")}
    assert joins == {"Microsoft.Network/publicIPAddresses/join/action",
                     "Microsoft.Network/virtualNetworks/subnets/join/action",
                     "Microsoft.Network/virtualNetworks/joinLoadBalancer/action"}
    assert joins <= set(iam.CALLS["loadBalancers.put"])  # the LB's references, checked on it


@pytest.mark.unit
def test_the_module_prints_the_list_and_a_custom_role() -> None:
    run = [sys.executable, "-m", "providers.azure.iam"]
    cwd = SOURCE.parents[1]
    listed = subprocess.run(run, capture_output=True, text=True, check=True,
                            cwd=cwd).stdout.split()
    assert listed == sorted(iam.actions())
    assert {"Microsoft.Network/loadBalancers/write", "Microsoft.Network/loadBalancers/delete",
            "Microsoft.Network/publicIPAddresses/join/action",
            "Microsoft.Network/networkSecurityGroups/write",
            "Microsoft.Network/locations/operations/read",
            "Microsoft.Network/loadBalancers/loadBalancingRules/health/action",
            "Microsoft.Network/locations/operationResults/read"} <= set(listed)
    assert "Microsoft.Network/networkSecurityGroups/delete" not in listed
    role = json.loads(subprocess.run([*run, "--role-json"], capture_output=True, text=True,
                                     check=True, cwd=cwd).stdout)
    assert role["IsCustom"] is True and role["Name"] == iam.ROLE_NAME
    assert role["Actions"] == listed and role["NotActions"] == role["DataActions"] == []
    assert role["AssignableScopes"] == [iam.DEFAULT_SCOPE]
    scopes = ["/subscriptions/s/resourceGroups/a", "/subscriptions/s/resourceGroups/b"]
    scoped = json.loads(subprocess.run(
        [*run, "--role-json", "--scope", scopes[0], "--scope", scopes[1]],
        capture_output=True, text=True, check=True, cwd=cwd).stdout)
    assert scoped["AssignableScopes"] == scopes
    for bad in (["--bogus"], ["--role-json", "--scope"], ["--role-json", "--scope", "rg"]):
        answer = subprocess.run([*run, *bad], capture_output=True, text=True, check=False,
                                cwd=cwd)
        assert answer.returncode == 2 and "usage" in answer.stderr, bad


# -- the one unreachable call ---------------------------------------------------------------------
class _Nsg:
    """A Coalescer store that records what it was asked to do."""

    def __init__(self, body: dict[str, Any] | None) -> None:
        self.body = body
        self.done: list[str] = []

    def read(self) -> tuple[dict[str, Any] | None, str | None]:
        return self.body, ("etag" if self.body is not None else None)

    def write(self, body: dict[str, Any], etag: str | None) -> dict[str, Any]:
        self.done.append("write")
        self.body = body
        return body

    def delete(self, etag: str) -> None:
        self.done.append("delete")


@pytest.mark.unit
def test_the_nsg_is_never_deleted() -> None:
    settings = AzureSettings(subscription_id="00000000-0000-0000-0000-000000000001",
                             resource_group="rg", location="eastus", vnet_name="vnet",
                             subnet_name="nodes", security_group_name="nsg")
    spec = _spec(("n1", "10.0.0.4"), n=1)
    want = desired(spec, parse_annotations(spec), settings)
    with pytest.raises(PermanentError):  # an absent NSG is refused, never created
        nsg_change(want, CLUSTER, "20.0.0.1")(None)
    absent = _Nsg(None)
    assert Coalescer(absent, "nsg", window=0).submit("b", nsg_removal(CLUSTER, spec.name)) is None
    assert absent.done == []  # None for None: nothing to do
    ours_only = _Nsg({"name": "nsg", "properties": {"securityRules": []}})
    written = Coalescer(ours_only, "nsg", window=0).submit(
        "b", nsg_change(want, CLUSTER, "20.0.0.1"))
    assert written is not None and any(
        names.owns_part(spec.name, str(r["name"])) for r in written["properties"]["securityRules"])
    emptied = Coalescer(ours_only, "nsg", window=0).submit("b", nsg_removal(CLUSTER, spec.name))
    assert emptied is not None and emptied["properties"]["securityRules"] == []
    assert ours_only.done == ["write", "write"]  # emptied of lbctl's rules, kept


# -- ARM ------------------------------------------------------------------------------------------
CLUSTER = "prod"
VM = "azure:///subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Compute/virtualMachines/"


def _ref(n: int) -> BalancerRef:
    return BalancerRef(f"lb-default-svc{n}-abcdefghij", CLUSTER,
                       ServiceRef("default", f"svc{n}", f"00000000-0000-0000-0000-{n:012d}"))


def _spec(*nodes: tuple[str, str], n: int, subscription: str = "s", group: str = "rg",
          **kw: Any) -> LoadBalancerSpec:
    vm = VM.format(s=subscription, g=group)
    return LoadBalancerSpec(
        ref=_ref(n), listeners=(Listener("http", "TCP", 80, 30080 + n),),
        targets=tuple(Target(name, vm + name, (ip,)) for name, ip in nodes),
        health_check=HealthCheck("TCP", None), **kw)


@pytest.fixture(scope="module")
def emulator() -> Iterator[AzureEmulator]:
    with AzureEmulator(operation_delay=0.02) as emu:  # writes stay InProgress: polls counted
        yield emu


def _references(lb: dict[str, Any] | None) -> set[str]:
    """Which kinds of linked resource an LB body refers to."""
    props = (lb or {}).get("properties") or {}
    found: set[str] = set()
    for frontend in props.get("frontendIPConfigurations", []):
        fp = frontend.get("properties") or {}
        found |= {"publicIPAddress"} if fp.get("publicIPAddress") else set()
        found |= {"subnet"} if fp.get("subnet") else set()
    for pool in props.get("backendAddressPools", []):
        for address in (pool.get("properties") or {}).get("loadBalancerBackendAddresses", []):
            ap = address.get("properties") or {}
            found |= {"pool.virtualNetwork"} if ap.get("virtualNetwork") else set()
            found |= {"pool.subnet"} if ap.get("subnet") else set()
    return found


@pytest.mark.integration
def test_a_lifecycle_calls_only_what_the_list_allows(emulator: AzureEmulator) -> None:
    emulator.reset(keep_world=False)
    world = emulator.seed(CLUSTER, 3)
    net = network_client(importlib.import_module("azure.mgmt.network").NetworkManagementClient,
                         emulator.endpoint, emulator.subscription, polling_interval=0.01)
    theirs: dict[str, str] = {}
    for name in ("by-address", "by-name"):  # the user's public IPs, made before counting
        theirs[name] = net.public_ip_addresses.begin_create_or_update(
            world.resource_group, name, {"location": world.location, "sku": {"name": "Standard"},
                                         "properties": {"publicIPAllocationMethod": "Static"}},
        ).result().ip_address
    settings = AzureSettings(
        subscription_id=world.subscription, resource_group=world.resource_group,
        location=world.location, vnet_name=world.vnet, subnet_name=world.subnet,
        security_group_name=world.nsg, endpoint=emulator.endpoint, batch_window_seconds=0.02,
        rate_limits={"read": 1000.0, "write": 1000.0, "operations": 1000.0})
    arm = ArmClient(settings, polling_interval=0.01, max_wait=0.05)
    provider = AzureProvider(settings, CLUSTER, StaticView(), client=arm)
    emulator.clear_calls()

    def spec(n: int, **kw: Any) -> LoadBalancerSpec:
        nodes = [(v.name, v.ip) for v in emulator.read_world().nodes]
        return _spec(*nodes, n=n, subscription=world.subscription, group=world.resource_group,
                     **kw)

    internal = ((INTERNAL, "true"),)
    try:
        kinds: dict[int, dict[str, Any]] = {
            1: {}, 2: {"annotations": internal},
            3: {"requested_ips": (theirs["by-address"],)},  # the user's, found by address
            4: {"annotations": ((PIP_NAME, "by-name"),)}, 5: {}}  # ... and by name
        specs = {n: spec(n, **kw) for n, kw in kinds.items()}
        for one in specs.values():
            assert provider.ensure(one).ingress[0].ip
        steady = provider.ensure(specs[3])  # the resync: its targets' health read
        assert steady.ingress[0].ip == theirs["by-address"] and steady.targets is not None
        before = Counter(emulator.counts())
        external = net.load_balancers.get(world.resource_group,
                                          names.load_balancer(CLUSTER, False)).as_dict()
        inside = net.load_balancers.get(world.resource_group,
                                        names.load_balancer(CLUSTER, True)).as_dict()
        ours = Counter(emulator.counts()) - before  # this test's own reads, not lbctl's
        # what the join actions are listed for, in the bodies lbctl wrote
        assert _references(external) >= {"publicIPAddress", "pool.virtualNetwork"}
        assert _references(inside) >= {"subnet", "pool.virtualNetwork"}
        assert "pool.subnet" not in _references(external) | _references(inside)
        emulator.add_nodes(1)  # a node: every Service ensured again, the pool changes
        specs = {n: spec(n, **kw) for n, kw in kinds.items()}
        for one in specs.values():
            provider.ensure(one)
        assert provider.observe(_ref(1)) is not None and provider.observe(_ref(2)) is not None
        assert {r.service.uid for r in provider.list_owned()} >= {_ref(1).service.uid}
        provider.release(_ref(1))  # our public IP handed over: its tags off
        for n in specs:
            provider.delete(_ref(n))
    finally:
        provider.close()
        net.close()
    seen = dict(Counter(emulator.counts()) - ours)
    # the client's count is ARM's, but for a list, which ArmClient counts as its kind's `get`
    # (a list URL ends at the kind): both need the same `read`
    folded: Counter[str] = Counter()
    for call, n in seen.items():
        folded[call.replace(".list", ".get")] += n
    assert set(seen) - set(folded) == {"publicIPAddresses.list"}
    assert Counter(arm.calls) == folded
    assert seen.get("loadBalancers.delete") and seen.get("publicIPAddresses.delete")
    unlisted = sorted(set(seen) - set(iam.CALLS))
    assert not unlisted, f"ARM saw calls without actions in the list: {unlisted}"
    code = called()
    assert set(seen) <= set(code), sorted(set(seen) - set(code))
    assert set(code) - set(seen) == set(UNREACHABLE), sorted(set(code) - set(seen))
    assert iam.actions(seen) == iam.actions()  # every action needed by a call ARM saw
