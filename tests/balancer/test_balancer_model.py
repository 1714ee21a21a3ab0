"""The balancer daemon's schema (static file and API body) and its Store.

`parse_file` / `parse_balancer` must name every bad key with its path and say what is wrong,
all problems at once; the Store must refuse clashes, let the static file win, and survive its
own state file being damaged.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbctl.balancer.model import BalancerConfig, parse_balancer, parse_file, to_json
from lbctl.balancer.store import Refused, Store
from lbctl.controller.config import ConfigError

pytestmark = pytest.mark.unit

CONTRACT = """\
balancers:
- name: web
  vip: 10.99.0.100
  dataplane: userspace
  sourceRanges: []
  listeners:
  - protocol: TCP
    port: 80
    targets: ["10.99.1.2:30080", "10.99.2.2:30080"]
    healthCheck: {type: tcp, intervalSeconds: 1, healthyThreshold: 2, unhealthyThreshold: 2}
"""

Problems = list[tuple[str, str]]


def listener(port: Any = 80, **extra: Any) -> dict[str, Any]:
    return {"protocol": "TCP", "port": port, "targets": ["10.99.1.2:30080"], **extra}


def balancer(name: str = "web", **extra: Any) -> dict[str, Any]:
    """A sound balancer. Its second listener (443) stays valid whatever a case does to the
    first, so each case sees only its own problem."""
    doc: dict[str, Any] = {"name": name, "vip": "10.99.0.100",
                           "listeners": [listener(80), listener(443)]}
    doc.update(extra)
    return doc


def file_of(*balancers: dict[str, Any]) -> str:
    return yaml.safe_dump({"balancers": list(balancers)})


def problems(text: str) -> Problems:
    with pytest.raises(ConfigError) as info:
        parse_file(text, "balancers.yaml")
    return info.value.problems


def first_listener(**extra: Any) -> str:
    """The file with the first listener of `web` changed by `extra`."""
    return file_of(balancer(listeners=[{**listener(80), **extra}, listener(443)]))


# --- the contract example -----------------------------------------------------------------------


def test_contract_example_parses() -> None:
    parsed = parse_file(CONTRACT)
    (web,) = parsed.balancers
    assert (web.name, web.vip, web.vips, web.dataplane) == ("web", "10.99.0.100", (), "userspace")
    assert web.source_ranges == () and web.owner is None and web.revision == ""
    (li,) = web.listeners
    assert (li.protocol, li.port, li.algorithm, li.proxy_protocol) == (
        "TCP", 80, "roundRobin", "none")
    assert [t.endpoint for t in li.targets] == ["10.99.1.2:30080", "10.99.2.2:30080"]
    assert [t.label for t in li.targets] == ["10.99.1.2:30080", "10.99.2.2:30080"]
    hc = li.health_check
    assert (hc.type, hc.interval_seconds, hc.healthy_threshold, hc.unhealthy_threshold,
            hc.port, hc.path) == ("tcp", 1.0, 2, 2, None, "/healthz")
    assert web.addresses == ("10.99.0.100",)
    assert web.frontends() == [("TCP", "10.99.0.100", 80)]


def test_wire_form_round_trips_through_parse_balancer() -> None:
    (web,) = parse_file(CONTRACT).balancers
    doc = to_json(web)
    assert doc["sourceRanges"] == [] and doc["listeners"][0]["healthCheck"]["intervalSeconds"] == 1
    assert parse_balancer(json.loads(json.dumps(doc))) == web


def test_target_objects_carry_a_node_name() -> None:
    b = parse_balancer(balancer(listeners=[listener(80, targets=[
        {"name": "node-a", "address": "fd00::0:1", "port": 30080}])]))
    (t,) = b.listeners[0].targets
    assert (t.address, t.endpoint, t.label) == ("fd00::1", "[fd00::1]:30080", "node-a")


def test_parse_balancer_refuses_a_non_object() -> None:
    with pytest.raises(ConfigError) as info:
        parse_balancer([1, 2])
    assert info.value.problems == [("", "must be an object")]
    assert str(info.value) == "body: must be an object"


# --- one problem each -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(file_of(balancer(vip="10.99.0.300")),
                 [("balancers[0].vip", "'10.99.0.300' is not an IP address")], id="bad-vip"),
    pytest.param(file_of({"name": "web", "listeners": [listener()]}),
                 [("balancers[0]", "vip: required (or vips)")], id="missing-vip"),
    pytest.param(first_listener(targets=["1.2.3.4"]),
                 [("balancers[0].listeners[0].targets",
                   "target '1.2.3.4' must be HOST:PORT (IPv6 as [ADDR]:PORT)")],
                 id="target-without-port"),
    pytest.param(first_listener(targets=["host:99999"]),
                 [("balancers[0].listeners[0].targets",
                   "target 'host:99999' must be HOST:PORT (IPv6 as [ADDR]:PORT)")],
                 id="target-hostname"),
    pytest.param(first_listener(targets=["1.2.3.4:99999"]),
                 [("balancers[0].listeners[0].targets[0].port",
                   "Input should be less than or equal to 65535")], id="target-port-range"),
    pytest.param(first_listener(targets=["10.0.0.1:80", "999.1.1.1:80"]),
                 [("balancers[0].listeners[0].targets[1].address",
                   "'999.1.1.1' is not an IP address")], id="target-bad-ip"),
    pytest.param(first_listener(targets=["1.2.3.4:80", "10.0.0.1:80", "[::1]:80",
                                         "[0:0::1]:80", "1.2.3.4:80"]),
                 [("balancers[0].listeners[0]",
                   "targets: 1.2.3.4:80, [::1]:80 listed more than once")],
                 id="duplicate-targets"),
    pytest.param(file_of(balancer(listeners=[listener(80), listener(80)])),
                 [("balancers[0]", "listeners: TCP/80 listed more than once")],
                 id="duplicate-listener"),
    pytest.param(first_listener(port=0),
                 [("balancers[0].listeners[0].port",
                   "Input should be greater than or equal to 1")], id="port-0"),
    pytest.param(first_listener(port=65536),
                 [("balancers[0].listeners[0].port",
                   "Input should be less than or equal to 65535")], id="port-65536"),
    pytest.param(file_of(balancer(vipp="10.0.0.1")),
                 [("balancers[0].vipp", "unknown key")], id="unknown-balancer-key"),
    pytest.param(first_listener(healthCheck={"intervall": 1}),
                 [("balancers[0].listeners[0].healthCheck.intervall", "unknown key")],
                 id="unknown-health-check-key"),
    pytest.param(yaml.safe_dump({"balancer": []}), [("balancer", "unknown key")],
                 id="unknown-top-level-key"),
    pytest.param(file_of(balancer(sourceRanges=["10.0.0.0/8", "10.0.0.0/33"])),
                 [("balancers[0].sourceRanges", "'10.0.0.0/33' is not a CIDR")],
                 id="bad-cidr"),
    pytest.param(first_listener(protocol="UDP", proxyProtocol="v2"),
                 [("balancers[0].listeners[0]",
                   "proxyProtocol: only TCP listeners can send a PROXY header")],
                 id="udp-proxy-protocol"),
    pytest.param(first_listener(healthCheck={"intervalSeconds": 0}),
                 [("balancers[0].listeners[0].healthCheck.intervalSeconds",
                   "Input should be greater than or equal to 0.05")], id="interval-0"),
    pytest.param(first_listener(healthCheck={"unhealthyThreshold": 11}),
                 [("balancers[0].listeners[0].healthCheck.unhealthyThreshold",
                   "Input should be less than or equal to 10")], id="unhealthy-threshold-11"),
    pytest.param(file_of(balancer(), balancer(vip="10.99.0.101")),
                 [("", "balancers: web defined more than once")], id="duplicate-name"),
    pytest.param(file_of(balancer(), balancer("api", listeners=[listener(80)])),
                 [("", '10.99.0.100:80/TCP is served by both balancer "web" and "api"')],
                 id="frontend-clash"),
    pytest.param(file_of(balancer(vip="", vips=["fd00::100"]),
                         balancer("api", vip="fd00:0::100", listeners=[listener(443)])),
                 [("", '[fd00::100]:443/TCP is served by both balancer "web" and "api"')],
                 id="frontend-clash-ipv6"),
    pytest.param(file_of(balancer(name="Web")),
                 [("balancers[0].name", "'Web' must be lowercase letters, digits, '-' and '.'")],
                 id="bad-name"),
])
def test_each_problem_is_named_by_its_key(text: str, expected: Problems) -> None:
    assert problems(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("[1, 2]", [("", "must be a mapping with a `balancers:` list")]),
    ("just a string", [("", "must be a mapping with a `balancers:` list")]),
    ("balancers: 5", [("balancers", "Input should be a valid tuple")]),
])
def test_file_shape(text: str, expected: Problems) -> None:
    assert problems(text) == expected


def test_invalid_yaml_is_one_problem_saying_so() -> None:
    with pytest.raises(ConfigError) as info:
        parse_file("balancers: [{name: web", "static.yaml")
    ((path, message),) = info.value.problems
    assert path == ""
    assert message.startswith("not valid YAML: ParserError: ")
    assert str(info.value).startswith("static.yaml: not valid YAML: ParserError: ")


@pytest.mark.parametrize("text", ["", "\n", "# nothing here yet\n", "balancers: []\n"])
def test_empty_file_means_no_balancers(text: str) -> None:
    assert parse_file(text).balancers == ()


# --- what is accepted -----------------------------------------------------------------------------


def test_ipv6_target_and_whitespace_are_accepted() -> None:
    b = parse_balancer(balancer(listeners=[listener(80, targets=["[::1]:80", " 10.0.0.1:81 "])]))
    assert [(t.address, t.port) for t in b.listeners[0].targets] == [("::1", 80),
                                                                     ("10.0.0.1", 81)]


def test_source_ranges_are_normalised() -> None:
    b = parse_balancer(balancer(sourceRanges=["10.0.0.1/8", " 192.168.1.7/32", "fd00::1/64"]))
    assert b.source_ranges == ("10.0.0.0/8", "192.168.1.7/32", "fd00::/64")


def test_same_port_on_tcp_and_udp_is_allowed() -> None:
    b = parse_balancer(balancer(listeners=[listener(53), listener(53, protocol="UDP")]))
    assert b.frontends() == [("TCP", "10.99.0.100", 53), ("UDP", "10.99.0.100", 53)]
    parsed = parse_file(file_of(
        balancer(listeners=[listener(53)]),
        balancer("dns", listeners=[listener(53, protocol="UDP")])))
    assert [b.name for b in parsed.balancers] == ["web", "dns"]


def test_dual_stack_vips_with_vip_first_and_deduplicated() -> None:
    b = parse_balancer(balancer(vip="10.99.0.100", vips=["fd00::0:100", "10.99.0.100"],
                                listeners=[listener(80)]))
    assert b.vips == ("fd00::100", "10.99.0.100")
    assert b.addresses == ("10.99.0.100", "fd00::100")
    assert b.frontends() == [("TCP", "10.99.0.100", 80), ("TCP", "fd00::100", 80)]
    only_vips = parse_balancer(balancer(vip="", vips=["fd00::100"]))
    assert only_vips.addresses == ("fd00::100",)


def test_bad_vips_entry_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        parse_balancer(balancer(vips=["fd00::100", "nope"]), "PUT web")
    assert info.value.problems == [("vips", "'nope' is not an IP address")]
    assert str(info.value) == "PUT web: vips: 'nope' is not an IP address"


@pytest.mark.parametrize(("doc", "field", "message"), [
    # addresses a VIP or a target can never be (issue 14: these were bound and "serving")
    (balancer(vip="0.0.0.0"), "vip",
     "0.0.0.0 is the unspecified address (every local address), not a VIP"),
    (balancer(vip="::"), "vip", ":: is the unspecified address (every local address), not a VIP"),
    (balancer(vip="224.0.0.1"), "vip", "224.0.0.1 is a multicast address, not a VIP"),
    (balancer(vip="255.255.255.255"), "vip",
     "255.255.255.255 is the broadcast address, not a VIP"),
    (balancer(vips=["10.99.0.100", "ff02::1"]), "vips",
     "ff02::1 is a multicast address, not a VIP"),
    (balancer(listeners=[listener(80, targets=["0.0.0.0:30080"]), listener(443)]),
     "listeners[0].targets[0].address",
     "0.0.0.0 is the unspecified address (every local address), not a target"),
    # strict types: no bool, string or float becomes a port or a count
    (balancer(listeners=[listener(True), listener(443)]), "listeners[0].port",
     "Input should be a valid integer"),
    (balancer(listeners=[listener("18081"), listener(443)]), "listeners[0].port",
     "Input should be a valid integer"),
    (balancer(listeners=[listener(18081.0), listener(443)]), "listeners[0].port",
     "Input should be a valid integer"),
    (balancer(listeners=[listener(80, healthCheck={"healthyThreshold": "3"}), listener(443)]),
     "listeners[0].healthCheck.healthyThreshold", "Input should be a valid integer"),
    (balancer(drainSeconds="5"), "drainSeconds", "Input should be a valid number"),
    # a name is matched whole: "web\n" is not another balancer named web
    (balancer(name="web\n"), "name", "'web\\n' must be lowercase letters, digits, '-' and '.'"),
])
def test_nonsense_is_refused_naming_the_field(doc: dict[str, Any], field: str,
                                              message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_balancer(doc, "PUT web")
    assert info.value.problems == [(field, message)]


def test_loopback_vips_and_targets_stay_allowed_for_demos_and_tests() -> None:
    b = parse_balancer(balancer(vip="127.0.100.10", listeners=[
        listener(80, targets=["127.0.10.1:30080", "[::1]:30080"])]))
    assert b.addresses == ("127.0.100.10",)
    assert [t.address for t in b.listeners[0].targets] == ["127.0.10.1", "::1"]


def test_ten_thousand_targets_are_checked_for_duplicates_in_linear_time() -> None:
    targets = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256 or 1}:30080" for i in range(1, 10001)]
    unique = list(dict.fromkeys(targets))
    b = parse_balancer(balancer(listeners=[listener(80, targets=unique)]))
    assert len(b.listeners[0].targets) == len(unique)
    with pytest.raises(ConfigError) as info:
        parse_balancer(balancer(listeners=[listener(80, targets=[*unique, unique[5]])]))
    assert info.value.problems == [("listeners[0]", f"targets: {unique[5]} listed more than once")]


# --- every problem at once ------------------------------------------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    text = file_of(
        balancer(vip="x", bogus=True, sourceRanges=["nope"],
                 listeners=[listener(0), listener(443, targets=["a:1"]),
                            listener(8080, healthCheck={"unhealthyThreshold": 11}),
                            listener(9090)]),
        balancer("Bad", listeners=[listener(80, protocol="UDP", proxyProtocol="v2"),
                                   listener(81)]))
    assert sorted(problems(text)) == sorted([
        ("balancers[0].vip", "'x' is not an IP address"),
        ("balancers[0].sourceRanges", "'nope' is not a CIDR"),
        ("balancers[0].listeners[0].port", "Input should be greater than or equal to 1"),
        ("balancers[0].listeners[1].targets",
         "target 'a:1' must be HOST:PORT (IPv6 as [ADDR]:PORT)"),
        ("balancers[0].listeners[2].healthCheck.unhealthyThreshold",
         "Input should be less than or equal to 10"),
        ("balancers[0].bogus", "unknown key"),
        ("balancers[1].name", "'Bad' must be lowercase letters, digits, '-' and '.'"),
        ("balancers[1].listeners[0]", "proxyProtocol: only TCP listeners can send a PROXY header"),
    ])


def test_message_names_the_source_and_each_key() -> None:
    with pytest.raises(ConfigError) as info:
        parse_file(file_of(balancer(vip="x", listeners=[listener(0), listener(443)])),
                   "/etc/lbctl/balancers.yaml")
    assert str(info.value).splitlines() == [
        "/etc/lbctl/balancers.yaml: balancers[0].vip: 'x' is not an IP address",
        "/etc/lbctl/balancers.yaml: balancers[0].listeners[0].port: "
        "Input should be greater than or equal to 1"]


def test_empty_listeners_are_refused() -> None:
    assert problems(file_of(balancer(listeners=[]))) == [
        ("balancers[0]", "listeners: at least one is required")]


def test_only_listener_invalid_reports_only_its_own_problem() -> None:
    text = file_of({"name": "web", "vip": "10.99.0.100", "listeners": [listener(0)]})
    assert problems(text) == [
        ("balancers[0].listeners[0].port", "Input should be greater than or equal to 1")]


# --- the Store ------------------------------------------------------------------------------------


def cfg(name: str, vip: str = "10.99.0.100", port: int = 80, protocol: str = "TCP",
        **extra: Any) -> BalancerConfig:
    return parse_balancer({"name": name, "vip": vip, **extra,
                           "listeners": [listener(port, protocol=protocol)]})


def test_store_put_is_idempotent_and_counts_changes() -> None:
    store = Store()
    assert store.put(cfg("web")) is True
    generation = store.generation
    assert store.put(cfg("web")) is False
    assert store.generation == generation
    assert store.put(cfg("web", port=81)) is True  # the same name may move
    assert store.generation == generation + 1
    assert [b.listeners[0].port for b in store.programmed()] == [81]
    assert store.get("web") == (cfg("web", port=81), False) and store.get("nope") is None


def test_store_refuses_a_frontend_clash_naming_both() -> None:
    store = Store()
    store.put(cfg("web"))
    with pytest.raises(Refused) as info:
        store.put(cfg("api"))
    assert info.value.status == 409
    assert str(info.value) == '10.99.0.100:80/TCP is served by both balancer "web" and "api"'
    assert store.put(cfg("dns", protocol="UDP")) is True  # another protocol: no clash
    assert [b.name for b in store.desired()] == ["web", "dns"]


def test_store_static_wins() -> None:
    store = Store()
    store.put(cfg("keep", vip="10.99.0.1"))
    store.put(cfg("moved", vip="10.99.0.2"))
    store.put(cfg("web", vip="10.99.0.3"))
    dropped = store.set_static((cfg("web", vip="10.99.0.9"), cfg("static", vip="10.99.0.2")))
    assert sorted(dropped) == ["moved", "web"]  # same name / same frontend as a static one
    assert [b.name for b in store.programmed()] == ["keep"]
    assert [b.name for b in store.desired()] == ["web", "static", "keep"]
    assert store.get("web") == (cfg("web", vip="10.99.0.9"), True)
    with pytest.raises(Refused) as info:
        store.put(cfg("web", vip="10.99.0.50"))
    assert (info.value.status, str(info.value)) == (
        409, 'balancer "web" is defined in the static file and cannot be programmed over the API')
    with pytest.raises(Refused) as info:
        store.put(cfg("other", vip="10.99.0.2"))
    assert (info.value.status, str(info.value)) == (
        409, '10.99.0.2:80/TCP is served by both balancer "static" and "other"')


def test_store_delete() -> None:
    store = Store()
    store.set_static((cfg("static", vip="10.99.0.2"),))
    store.put(cfg("web"))
    with pytest.raises(Refused) as info:
        store.delete("nope")
    assert (info.value.status, str(info.value)) == (404, 'balancer "nope" not found')
    with pytest.raises(Refused) as info:
        store.delete("static")
    assert (info.value.status, str(info.value)) == (
        409, 'balancer "static" is defined in the static file')
    store.delete("web")
    assert store.programmed() == [] and [b.name for b in store.desired()] == ["static"]
    with pytest.raises(Refused) as info:
        store.delete("web")
    assert info.value.status == 404


def test_state_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "balancers.json"
    owner = {"cluster": "c1", "namespace": "default", "name": "web", "uid": "u-1"}
    first = Store(path)
    web = cfg("web", owner=owner, revision="abc", sourceRanges=["10.0.0.1/8"])
    first.put(web)
    first.put(cfg("dns", vip="fd00::53", port=53, protocol="UDP"))
    first.put(cfg("gone", vip="10.99.0.7"))
    first.delete("gone")
    first.set_static((cfg("static", vip="10.99.0.8"),))  # static balancers are never saved
    assert not path.exists()  # nothing is written on the caller's thread ...
    assert first.persist() is True  # ... until the daemon persists, in a thread of its own
    saved = json.loads(path.read_text())
    assert [b["name"] for b in saved["balancers"]] == ["web", "dns"]
    assert list(tmp_path.joinpath("state").iterdir()) == [path]  # no temp file left behind
    second = Store(path)
    assert second.load() == 2
    assert second.programmed() == [web, cfg("dns", vip="fd00::53", port=53, protocol="UDP")]
    assert second.get("web") == (web, False)


def test_a_failed_write_keeps_the_change_and_reports_it_until_a_write_succeeds(
        tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the directory should be")
    store = Store(blocker / "balancers.json")
    assert store.put(cfg("web")) is True  # in memory, whatever the disk says
    assert store.persist() is False
    assert store.persist_error is not None and "serving from memory" in store.persist_error
    assert [b.name for b in store.programmed()] == ["web"]
    assert store.put(cfg("web")) is False  # the change stands: the same body is no change
    blocker.unlink()
    assert store.persist() is True and store.persist_error is None
    assert [b["name"] for b in json.loads((blocker / "balancers.json").read_text())[
        "balancers"]] == ["web"]
    assert list(blocker.iterdir()) == [blocker / "balancers.json"]  # no temp file left


def test_persist_writes_only_when_something_changed(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "balancers.json"
    store = Store(path)
    writes: list[bytes] = []
    real = Store._write

    def counting(self: Store, body: bytes) -> str | None:
        writes.append(body)
        return real(self, body)

    monkeypatch.setattr(Store, "_write", counting)
    store.put(cfg("web"))
    assert store.persist() and store.persist()
    assert len(writes) == 1
    store.set_static((cfg("static", vip="10.99.0.8"),))  # nothing programmed dropped
    assert store.persist()
    assert len(writes) == 1
    store.delete("web")
    assert store.persist()
    assert len(writes) == 2 and json.loads(path.read_text()) == {"balancers": []}


def test_missing_state_file_or_none_loads_nothing(tmp_path: Path) -> None:
    assert Store(tmp_path / "absent.json").load() == 0
    assert Store().load() == 0


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b"[]", b'"x"', b"{}"])
def test_corrupt_state_file_is_survived(tmp_path: Path, content: bytes,
                                        caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "balancers.json"
    path.write_bytes(content)
    store = Store(path)
    with caplog.at_level(logging.ERROR, logger="lbctl.balancer.store"):
        assert store.load() == 0
    assert store.programmed() == []
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"state file {path} unreadable, starting without programmed balancers"]
    assert store.put(cfg("web")) is True  # and it works (and rewrites the file) afterwards
    assert store.persist() is True
    assert Store(path).load() == 1


@pytest.mark.parametrize("content", ['{"balancers": null}', '{"balancers": 5}'])
def test_state_file_with_a_non_list_is_survived(tmp_path: Path, content: str) -> None:
    path = tmp_path / "balancers.json"
    path.write_text(content)
    assert Store(path).load() == 0


def test_bad_state_entries_are_skipped_and_the_rest_load(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "balancers.json"
    good = [to_json(cfg("web")), to_json(cfg("api", vip="10.99.0.2"))]
    path.write_text(json.dumps({"balancers": [
        good[0], {"name": "bad", "vip": "nope", "listeners": [listener()]}, "not-an-object",
        to_json(cfg("clash")), good[1]]}))
    store = Store(path)
    with caplog.at_level(logging.ERROR, logger="lbctl.balancer.store"):
        assert store.load() == 2
    assert [b.name for b in store.programmed()] == ["web", "api"]
    assert [r.getMessage() for r in caplog.records] == [
        f"state file entry skipped: {path}: balancers[1]: vip: 'nope' is not an IP address",
        f"state file entry skipped: {path}: balancers[2]: must be an object",
        'state file entry skipped: 10.99.0.100:80/TCP is served by both balancer "web" and '
        '"clash"']


def test_balancers_key_with_every_entry_commented_out_means_none() -> None:
    assert parse_file("balancers:\n# - name: web\n").balancers == ()


# --- connect timeout ---------------------------------------------------------------------------
@pytest.mark.parametrize(("extra", "expected"), [
    ({}, 1.25),  # the check's default timeoutSeconds (1 s), raised to the floor
    ({"healthCheck": {"timeoutSeconds": 0.3}}, 1.25),  # one lost SYN is not a dead host
    ({"healthCheck": {"timeoutSeconds": 3}}, 3.0),
    ({"healthCheck": {"type": "none"}}, 2.0),  # no checks: the fixed default
    ({"healthCheck": {"timeoutSeconds": 0.3}, "connectTimeoutSeconds": 5}, 5.0),
])
def test_connect_timeout_follows_the_health_check_unless_set(extra: dict[str, Any],
                                                             expected: float) -> None:
    parsed = parse_file(first_listener(**extra), "balancers.yaml")
    assert parsed.balancers[0].listeners[0].connect_timeout == expected


@pytest.mark.parametrize(("value", "message"), [
    (0, "Input should be greater than 0"),
    (61, "Input should be less than or equal to 60"),
])
def test_connect_timeout_out_of_range_is_named(value: float, message: str) -> None:
    assert problems(first_listener(connectTimeoutSeconds=value)) == [
        ("balancers[0].listeners[0].connectTimeoutSeconds", message)]


@pytest.mark.parametrize(("extra", "key", "message"), [
    ({"upstreamCongestionControl": "Cubic"}, "balancers[0].listeners[0].upstreamCongestionControl",
     "String should match pattern"),
    ({"upstreamCongestionControl": "reno", "protocol": "UDP"}, "balancers[0].listeners[0]",
     "upstreamCongestionControl: only TCP listeners have one"),
])
def test_upstream_congestion_control_problems_are_named(extra: dict[str, Any], key: str,
                                                        message: str) -> None:
    [(where, what)] = problems(first_listener(**extra))
    assert where == key and message in what


def test_upstream_congestion_control_round_trips() -> None:
    parsed = parse_file(first_listener(upstreamCongestionControl="reno"), "balancers.yaml")
    assert parsed.balancers[0].listeners[0].upstream_congestion_control == "reno"


# --- traffic that would loop inside the daemon ----------------------------------------------------


def test_a_target_that_is_a_frontend_of_the_daemon_is_refused_with_422() -> None:
    store = Store()
    store.put(cfg("web", vip="10.99.0.1"))
    with pytest.raises(Refused) as info:  # its own VIP:port (the wedge of issue 14)
        store.put(parse_balancer({"name": "self", "vip": "10.99.0.2", "listeners": [
            listener(80, targets=["10.99.0.2:80"])]}))
    assert (info.value.status, str(info.value)) == (
        422, 'listeners[0].targets[0]: 10.99.0.2:80 is its own frontend (balancer "self") on '
             "this daemon: traffic would loop")
    with pytest.raises(Refused) as info:  # another balancer's frontend
        store.put(parse_balancer({"name": "chain", "vip": "10.99.0.3", "listeners": [
            listener(80, targets=["10.99.1.9:30080", "10.99.0.1:80"])]}))
    assert str(info.value) == ('listeners[0].targets[1]: 10.99.0.1:80 is a frontend (balancer '
                               '"web") on this daemon: traffic would loop')
    with pytest.raises(Refused) as info:  # a new frontend that another balancer targets
        store.put(parse_balancer({"name": "late", "vip": "10.99.1.2", "listeners": [
            listener(30080, targets=["10.99.1.3:30080"])]}))
    assert str(info.value) == ('frontend 10.99.1.2:30080/TCP is a target of balancer "web" on '
                               "this daemon: traffic would loop")
    assert store.put(parse_balancer({"name": "udp", "vip": "10.99.0.4", "listeners": [
        listener(80, protocol="UDP", targets=["10.99.0.1:80"])]}))  # TCP frontend, UDP target
    assert [b.name for b in store.programmed()] == ["web", "udp"]  # nothing else was taken


def test_a_target_on_the_daemons_own_ports_is_refused() -> None:
    store = Store()
    store.reserve("TCP", "0.0.0.0", 9450)  # the API on every address
    store.reserve("UDP", "10.99.0.250", 9451)  # heartbeats
    store.put(cfg("web", vip="10.99.0.1"))
    for target, protocol in (("127.0.0.1:9450", "TCP"), ("10.99.0.1:9450", "TCP"),
                             ("10.99.0.250:9451", "UDP")):
        with pytest.raises(Refused) as info:
            store.put(parse_balancer({"name": "api", "vip": "10.99.0.5", "listeners": [
                listener(81, protocol=protocol, targets=[target])]}))
        assert (info.value.status, str(info.value)) == (
            422, f"listeners[0].targets[0]: {target} is one of this balancer daemon's own "
                 "ports")
    assert store.put(parse_balancer({"name": "elsewhere", "vip": "10.99.0.5", "listeners": [
        listener(81, targets=["10.99.1.2:9450"])]}))  # another host's 9450 is fine


def test_a_static_file_that_loops_is_refused_naming_the_target() -> None:
    with pytest.raises(ConfigError) as info:
        parse_file(yaml.safe_dump({"balancers": [
            balancer("a", vip="10.99.0.1"),
            {"name": "b", "vip": "10.99.0.2", "listeners": [listener(80, targets=[
                "10.99.0.1:443"])]}]}))
    assert info.value.problems == [("", 'balancer "b": target 10.99.0.1:443 is a '
                                                 'frontend of balancer "a": traffic would loop')]


# --- limits, refused before any work -----------------------------------------------------------


def test_too_many_listeners_targets_or_vips_are_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        parse_balancer(balancer(listeners=[listener(1000 + i) for i in range(257)]))
    assert info.value.problems == [("listeners", "Tuple should have at most 256 items after "
                                                 "validation, not 257")]
    many = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}:30080" for i in range(1, 10_002)]
    with pytest.raises(ConfigError) as info:
        parse_balancer(balancer(listeners=[listener(80, targets=many)]))
    assert [p for p, _ in info.value.problems] == ["listeners[0].targets"]


def test_a_daemon_takes_at_most_max_frontends() -> None:
    from lbctl.balancer.store import MAX_FRONTENDS

    store = Store()
    per = 256
    for i in range(MAX_FRONTENDS // per):
        store.put(parse_balancer({"name": f"b{i}", "vip": f"10.99.{i}.1", "listeners": [
            listener(1000 + p, targets=["10.98.0.1:30080"]) for p in range(per)]}))
    with pytest.raises(Refused) as info:
        store.put(parse_balancer({"name": "one-more", "vip": "10.99.200.1", "listeners": [
            listener(80, targets=["10.98.0.1:30080"])]}))
    assert (info.value.status, str(info.value)) == (
        422, f"this daemon would serve {MAX_FRONTENDS + 1} frontends (VIP x port); at most "
             f"{MAX_FRONTENDS}: spread the balancers over more daemons")
    assert len(store.programmed()) == MAX_FRONTENDS // per
