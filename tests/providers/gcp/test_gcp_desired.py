"""The desired GCE balancer (`providers.gcp.desired`): pure, golden-tested as JSON; set
LBCTL_UPDATE_GOLDEN=1 to rewrite the documents.

The goldens have an outside reference: every body is parsed by the SDK's own message type
(`google.cloud.compute_v1.<Type>.from_json`, strict: an unknown field or a wrong JSON type is a
ParseError), so a golden cannot drift from what the Compute API takes; GCE's own rules that the
SDK does not check (names, at most 5 listed ports) are asserted here too.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from providers.errors import PermanentError
from providers.gcp import names
from providers.gcp.annotations import GcpOptions
from providers.gcp.desired import Desired, desired
from providers.gcp.settings import GcpSettings
from providers.spec import (
    BalancerRef,
    HealthCheck,
    Listener,
    LoadBalancerSpec,
    ServiceRef,
    Target,
)

GOLDEN = Path(__file__).parent / "golden"
SETTINGS = GcpSettings(project="lbctl-test", region="us-central1", network="prod",
                       subnetwork="nodes", labels=(("team", "web"),))
TAGS = ("gke-prod-node",)
REF = BalancerRef("lb-default-web-abcdefghij", "prod",
                  ServiceRef("default", "web", "0f9c2f4e-1111-2222-3333-444455556666"))
NODES = (Target("node-a", "gce://lbctl-test/us-central1-a/node-a", ("10.0.0.2",)),
         Target("node-b", "gce://lbctl-test/us-central1-b/node-b", ("10.0.0.3",)),
         Target("node-c", "gce://lbctl-test/us-central1-a/node-c", ("10.0.0.4",)))
CLUSTER = HealthCheck("TCP", None)
LOCAL = HealthCheck("HTTP", 31999, "/healthz")


def _spec(listeners: tuple[Listener, ...], **kw: Any) -> LoadBalancerSpec:
    return LoadBalancerSpec(ref=REF, listeners=listeners, targets=kw.pop("targets", NODES),
                            health_check=kw.pop("health_check", CLUSTER), **kw)


WEB = (Listener("http", "TCP", 80, 30080),)
MANY = (*(Listener(f"p{i}", "TCP", 8000 + i, 30100 + i) for i in range(7)),
        Listener("dns", "UDP", 53, 30053))
CASES: dict[str, tuple[LoadBalancerSpec, GcpOptions, GcpSettings]] = {
    "cluster-one-port": (_spec(WEB), GcpOptions(), SETTINGS),
    "local-mixed-many-ports": (
        _spec(MANY, health_check=LOCAL, session_affinity="ClientIP",
              source_ranges=("203.0.113.0/24", "198.51.100.7/32"),
              requested_ips=("34.1.2.3",), external_traffic_policy="Local"),
        GcpOptions(network_tier="STANDARD"), SETTINGS),
    "internal-all-ports": (_spec(MANY), GcpOptions(internal=True, subnetwork="nodes-2",
                                                   global_access=True), SETTINGS),
    "user-address-nodeport-check": (
        _spec(WEB, targets=(*NODES, Target("metal-1", "metal://rack/1", ("10.9.0.1",)),
                            Target("x", "gce://another-project/us-central1-a/x", ("10.0.0.9",)))),
        GcpOptions(address_names=("web-reserved",)),
        dataclasses.replace(SETTINGS, cluster_health_check="nodePort")),
}
TYPES = {"address": "Address", "health_check": "HealthCheck",
         "backend_services": "BackendService", "forwarding_rules": "ForwardingRule",
         "firewalls": "Firewall", "health_firewall": "Firewall"}


def _doc(made: Desired) -> dict[str, Any]:
    doc = dataclasses.asdict(made)
    doc["zones"] = list(made.zones)
    out: dict[str, Any] = json.loads(json.dumps(doc))
    return out


def _bodies(made: Desired) -> Iterator[tuple[str, dict[str, Any]]]:
    if made.address is not None:
        yield "Address", made.address
    yield "HealthCheck", made.health_check.body
    for _, body in made.backend_services:
        yield "BackendService", body
    for _, body in made.forwarding_rules:
        yield "ForwardingRule", {**body, "IPAddress": "203.0.113.10"}  # set at deploy
    for _, body in made.firewalls:
        yield "Firewall", {**body, "destinationRanges": ["203.0.113.10/32"]}
    yield "Firewall", made.health_firewall[1]


@pytest.fixture(scope="module")
def compute() -> ModuleType:
    """The SDK (the gcp extra, always installed for the tests): 2-4 s to import, once."""
    import google.cloud.compute_v1 as sdk

    return sdk


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str, compute: ModuleType) -> None:
    spec, options, settings = CASES[case]
    made = desired(spec, options, settings, TAGS)
    doc = _doc(made)
    path = GOLDEN / f"{case}.json"
    if os.environ.get("LBCTL_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    assert doc == json.loads(path.read_text()), f"{case}: rerun with LBCTL_UPDATE_GOLDEN=1"
    for kind, body in _bodies(made):  # the outside reference: the SDK's own message types
        message = getattr(compute, kind).from_json(json.dumps(body))
        assert message.name == body["name"]
        assert names.NAME.fullmatch(body["name"]), body["name"]
        assert len(body.get("ports", [])) <= 5


def test_the_sdk_reference_catches_a_broken_body(compute: ModuleType) -> None:
    made = desired(*CASES["cluster-one-port"], TAGS)
    rule = dict(made.forwarding_rules[0][1])
    compute.ForwardingRule.from_json(json.dumps(rule))

    def refused(body: dict[str, Any]) -> str:
        try:
            compute.ForwardingRule.from_json(json.dumps(body))
        except Exception as exc:  # protobuf's json_format.ParseError (untyped module)
            return type(exc).__name__
        return ""

    assert refused(rule) == ""
    for broken in ({**rule, "ipProtocol": "TCP"}, {**rule, "ports": 80},
                   {**rule, "allowGlobalAccess": "yes"}):
        assert refused(broken) == "ParseError", broken


def test_what_each_case_means() -> None:
    one = desired(*CASES["cluster-one-port"], TAGS)
    assert one.zones == ("us-central1-a", "us-central1-b")
    assert one.health_check.shared and one.health_check.port == 10256
    assert one.health_firewall[2] and one.health_firewall[0] == "lbctl-prod-node-hc-fw"
    assert [n for n, _ in one.forwarding_rules] == [f"{REF.name}-tcp"]
    assert one.forwarding_rules[0][1]["ports"] == ["80"]

    mixed = desired(*CASES["local-mixed-many-ports"], TAGS)
    assert [n for n, _ in mixed.backend_services] == [f"{REF.name}-tcp", f"{REF.name}-udp"]
    tcp = dict(mixed.forwarding_rules)[f"{REF.name}-tcp"]
    assert tcp["portRange"] == "8000-8006" and "ports" not in tcp
    assert dict(mixed.backend_services)[f"{REF.name}-udp"]["sessionAffinity"] == "CLIENT_IP"
    # an external loadBalancerIP is the user's reserved address, found by IP at deploy
    assert (mixed.address, mixed.address_ours, mixed.reserved_ip) == (None, False, "34.1.2.3")
    assert mixed.health_check.body["httpHealthCheck"] == {"port": 31999,
                                                         "requestPath": "/healthz"}
    assert mixed.firewalls[0][1]["sourceRanges"] == ["198.51.100.7/32", "203.0.113.0/24"]

    internal = desired(*CASES["internal-all-ports"], TAGS)
    rule = internal.forwarding_rules[0][1]
    assert rule["allPorts"] is True and rule["allowGlobalAccess"] is True
    assert rule["subnetwork"].endswith("/subnetworks/nodes-2")
    assert internal.health_check.scope == "global"
    # the shared check's prober rule is the same for internal and external balancers
    assert internal.health_firewall[1]["sourceRanges"] == one.health_firewall[1]["sourceRanges"]
    spec, options, settings = CASES["internal-all-ports"]
    pinned = desired(dataclasses.replace(spec, requested_ips=("10.0.2.9",)), options, settings,
                     TAGS)  # an internal loadBalancerIP: ours, reserved at that IP
    assert pinned.address is not None and pinned.address["address"] == "10.0.2.9"
    assert (pinned.address_ours, pinned.reserved_ip) == (True, None)

    user = desired(*CASES["user-address-nodeport-check"], TAGS)
    assert (user.address, user.address_ours, user.address_name) == (None, False, "web-reserved")
    assert user.health_check.body["tcpHealthCheck"] == {"port": 30080}
    assert [n for n, _ in user.skipped] == ["metal-1", "x"]


def test_refusals_name_the_field() -> None:
    spec, options, settings = CASES["cluster-one-port"]
    with pytest.raises(PermanentError) as info:
        desired(spec, options, settings, ())
    assert info.value.field == "gcp.nodeTags"
    with pytest.raises(PermanentError) as info:
        desired(dataclasses.replace(spec, source_ranges=("2001:db8::/32",)), options, settings,
                TAGS)
    assert info.value.field == "spec.loadBalancerSourceRanges"
