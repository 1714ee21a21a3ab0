"""The chart's two announcement modes of the balancer daemons, both off by default.

- BGP (`config.baremetal.bgp`, or `balancer.bgp.enabled` for static files): the section lands
  in the ConfigMap as written and the controller's own loader and provider accept it; the
  TCP-MD5 password comes from a Secret of the user's, mounted where the peers' `passwordFile`
  points (a passwordFile the mount cannot serve fails the render); the container gets
  NET_ADMIN, and uid 0 so the capability is effective.
- L2 (`balancer.l2`): `--interface`, `--instance-name` (the node's name), `--heartbeat-listen`,
  `--heartbeat-key-file` (mounted from the token Secret or one named) and one `--peer` per LB
  node, as `lbctl balancer serve` parses them; NET_ADMIN and NET_RAW; an init container for the
  ARP sysctls.
- `config.baremetal.bgp`'s schema (generated from lbctl.bgp_config) never refuses a section the
  parser takes, and refuses what it can say is wrong, as the parser does.
Every variant passes helm lint --strict, the 1.33 API schema and a strict apply to the sandbox.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import click
import jsonschema  # type: ignore[import-untyped]  # via kubernetes-validate
import pytest
import yaml

from lbctl.bgp_config import parse_bgp
from lbctl.cli import balancer as balancer_cli
from lbctl.controller.config import parse_config
from lbctl.controller.planning import validate_config
from lbctl.parsing import ConfigError
from lbctl.sandbox.app import Sandbox
from lbctl.sandbox.openapi.schema import validate_full

from .conftest import CHART, DEPLOY, NAMESPACE, RELEASE, Helm, Manifests, values_file
from .kubectl_sandbox import kubectl as run_kubectl
from .kubectl_sandbox import tls_sandbox

pytestmark = pytest.mark.integration

SCHEMA = json.loads((DEPLOY / "config.schema.json").read_text())
PASSWORD_DIR = "/var/run/lbctl/bgp-password"
BGP: dict[str, Any] = {"myASN": 64512, "routerID": "192.168.1.21",
       "peers": [{"name": "tor-a", "peerAddress": "192.168.1.1", "peerASN": 64500,
                  "holdTime": "3s", "passwordFile": f"{PASSWORD_DIR}/password"},
                 {"name": "tor-b", "peerAddress": "fd00::1", "peerASN": 64501, "holdTime": 9,
                  "ebgpMultiHop": True}],
       "advertisements": [{"ipAddressPools": ["default"], "communities": ["no-export"],
                           "peers": ["tor-a"]},
                          {"ipAddressPools": ["ipv6"], "aggregationLengthV6": 128}],
       "holdDownSeconds": 3, "drainSeconds": 1}
L2: dict[str, Any] = {"enabled": True, "interface": "eth0",
      "peers": [{"name": "lb-node-1", "address": "192.168.1.21"},
                {"name": "lb-node-2", "address": "192.168.1.22"},
                {"name": "lb-node-3", "address": "fd00:1::23"}]}
INSTANCES = [{"name": "lb-1", "url": "https://192.168.1.21:9450"}]


def _values(tmp: Path, name: str, doc: dict[str, Any]) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _render(helm: Helm, tmp: Path, doc: dict[str, Any], *sets: str) -> Manifests:
    return helm.template(values=[values_file("baremetal"), _values(tmp, "v", doc)], sets=sets)


def _fails(helm: Helm, tmp: Path, doc: dict[str, Any], *args: str) -> str:
    done = helm.run("template", RELEASE, str(CHART), "-f", str(values_file("baremetal")),
                    "-f", str(_values(tmp, "bad", doc)), *args, check=False)
    assert done.returncode != 0, done.stdout
    return done.stderr


def _pod(manifests: Manifests) -> dict[str, Any]:
    found: dict[str, Any] = manifests.component("balancer").one("DaemonSet")[
        "spec"]["template"]["spec"]
    return found


def _container(manifests: Manifests) -> dict[str, Any]:
    (container,) = _pod(manifests)["containers"]
    found: dict[str, Any] = container
    return found


def _volumes(manifests: Manifests) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in _pod(manifests)["volumes"]}


def _mounts(manifests: Manifests) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in _container(manifests)["volumeMounts"]}


def _serve(args: list[str]) -> dict[str, Any]:
    """The container's arguments as `lbctl balancer serve` parses them (no run)."""
    assert args[:2] == ["balancer", "serve"]
    command = click.Group()
    balancer_cli.register(command)
    group = command.commands["balancer"]
    assert isinstance(group, click.Group)
    serve = group.commands["serve"]
    context = serve.make_context("serve", list(args[2:]))
    params: dict[str, Any] = context.params
    return params


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("modes")


@pytest.fixture(scope="module")
def bgp(helm: Helm, tmp: Path) -> Manifests:
    return _render(helm, tmp, {"config": {"baremetal": {"bgp": BGP}},
                               "balancer": {"instances": INSTANCES,
                                            "bgp": {"passwordSecret": {"name": "bgp-pw"}}}})


@pytest.fixture(scope="module")
def l2(helm: Helm, tmp: Path) -> Manifests:
    return _render(helm, tmp, {"balancer": {"instances": INSTANCES, "l2": L2}})


# -- off by default ---------------------------------------------------------------------------
def test_neither_mode_by_default(helm: Helm) -> None:
    manifests = helm.template(values=[values_file("baremetal")])
    container, pod = _container(manifests), _pod(manifests)
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"],
                                                            "add": ["NET_BIND_SERVICE"]}
    assert "runAsUser" not in container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert "initContainers" not in pod and "env" not in container
    params = _serve(container["args"])
    assert params["interface"] is None and params["peers"] == ()
    assert not {"bgp-password", "heartbeat-key"} & set(_volumes(manifests))
    assert "bgp" not in yaml.safe_load(manifests.config_text())["baremetal"]


# -- BGP --------------------------------------------------------------------------------------
def test_bgp_section_reaches_the_configmap_and_the_controller_accepts_it(
        bgp: Manifests, tmp: Path) -> None:
    text = bgp.config_text()
    config = yaml.safe_load(text)
    assert config["baremetal"]["bgp"] == BGP  # as written: the provider resolves the pools
    jsonschema.validate(config, SCHEMA)
    assert parse_config(text).provider == "baremetal"
    path = tmp / "config.yaml"
    path.write_text(text)
    _, problems = validate_config(path)  # the loader and the baremetal provider's parser
    assert problems == []
    # and a section the provider refuses is refused by the same loader, naming the key
    broken = yaml.safe_load(text)
    broken["baremetal"]["bgp"]["advertisements"][0]["ipAddressPools"] = ["nowhere"]
    path.write_text(yaml.safe_dump(broken))
    _, problems = validate_config(path)
    assert any("baremetal.bgp.advertisements[0].ipAddressPools[0]" in p for p in problems), \
        problems


def test_bgp_password_secret_is_mounted_where_passwordfile_points(bgp: Manifests) -> None:
    volume = _volumes(bgp)["bgp-password"]
    assert volume["secret"] == {"secretName": "bgp-pw", "defaultMode": 0o440,
                                "items": [{"key": "password", "path": "password"}]}
    assert _mounts(bgp)["bgp-password"] == {"name": "bgp-password", "mountPath": PASSWORD_DIR,
                                            "readOnly": True}
    peers = yaml.safe_load(bgp.config_text())["baremetal"]["bgp"]["peers"]
    item = volume["secret"]["items"][0]["path"]
    assert peers[0]["passwordFile"] == f"{PASSWORD_DIR}/{item}"
    # never into the controller, never into the ConfigMap
    deployment = bgp.component("controller").one("Deployment")["spec"]["template"]["spec"]
    assert all("bgp" not in v["name"] for v in deployment["volumes"])
    assert "bgp-pw" not in bgp.config_text()


def test_bgp_password_secret_key_empty_mounts_every_key(helm: Helm, tmp: Path) -> None:
    section = json.loads(json.dumps(BGP))
    section["peers"][1]["passwordFile"] = f"{PASSWORD_DIR}/tor-b"
    manifests = _render(helm, tmp, {"config": {"baremetal": {"bgp": section}},
                                    "balancer": {"bgp": {"passwordSecret": {
                                        "name": "bgp-pw", "key": ""}}}})
    assert _volumes(manifests)["bgp-password"]["secret"] == {"secretName": "bgp-pw",
                                                             "defaultMode": 0o440}


@pytest.mark.parametrize(("balancer", "message"), [
    ({}, "config.baremetal.bgp.peers[0].passwordFile \"/var/run/lbctl/bgp-password/password\": "
         "set balancer.bgp.passwordSecret.name"),
    ({"bgp": {"passwordSecret": {"name": "bgp-pw", "key": "tor-a"}}},
     "the chart mounts key \"tor-a\" of Secret bgp-pw at /var/run/lbctl/bgp-password/tor-a"),
], ids=["no-secret", "other-key"])
def test_a_password_file_the_mount_cannot_serve_fails_the_render(
        helm: Helm, tmp: Path, balancer: dict[str, Any], message: str) -> None:
    stderr = _fails(helm, tmp, {"config": {"baremetal": {"bgp": BGP}}, "balancer": balancer})
    assert message in stderr, stderr


def test_bgp_adds_net_admin_as_uid_0_and_nothing_of_l2(bgp: Manifests) -> None:
    security = _container(bgp)["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"],
                                        "add": ["NET_BIND_SERVICE", "NET_ADMIN"]}
    # added capabilities reach the effective set of uid 0 only
    assert security["runAsUser"] == 0 and security["runAsNonRoot"] is False
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["privileged"] is False
    pod = _pod(bgp)
    assert pod["hostNetwork"] is True
    assert "initContainers" not in pod
    params = _serve(_container(bgp)["args"])
    assert params["interface"] is None and params["peers"] == ()
    assert "heartbeat-key" not in _volumes(bgp)


def test_bgp_enabled_without_a_section_for_static_files(helm: Helm) -> None:
    manifests = helm.template(values=[values_file("baremetal")],
                              sets=["balancer.bgp.enabled=true",
                                    "balancer.existingConfigMap=static"])
    assert "NET_ADMIN" in _container(manifests)["securityContext"]["capabilities"]["add"]
    assert "bgp-password" not in _volumes(manifests)  # no Secret named: nothing mounted
    # a runAsUser of the user's wins (an image that grants capabilities otherwise)
    mine = helm.template(values=[values_file("baremetal")],
                         sets=["balancer.bgp.enabled=true",
                               "balancer.securityContext.runAsUser=1000"])
    assert _container(mine)["securityContext"]["runAsUser"] == 1000
    assert "runAsNonRoot" not in _container(mine)["securityContext"]


# -- L2 ---------------------------------------------------------------------------------------
def test_l2_flags_as_the_daemon_parses_them(l2: Manifests) -> None:
    container = _container(l2)
    params = _serve(container["args"])
    assert params["interface"] == "eth0"
    assert params["instance_name"] == "$(NODE_NAME)"  # the kubelet expands it
    assert container["env"] == [{"name": "NODE_NAME", "valueFrom": {
        "fieldRef": {"fieldPath": "spec.nodeName"}}}]
    assert params["heartbeat_listen"] == "0.0.0.0:9451"
    assert str(params["heartbeat_key_file"]) == "/var/run/lbctl/heartbeat/heartbeat-key"
    assert [balancer_cli._peer(p) for p in params["peers"]] == [
        ("lb-node-1", "192.168.1.21", 9451), ("lb-node-2", "192.168.1.22", 9451),
        ("lb-node-3", "fd00:1::23", 9451)]
    assert {"name": "heartbeat", "containerPort": 9451, "protocol": "UDP"} in (
        container["ports"])


def test_l2_heartbeat_key_from_the_token_secret_or_one_named(l2: Manifests,
                                                             helm: Helm, tmp: Path) -> None:
    assert _volumes(l2)["heartbeat-key"]["secret"] == {
        "secretName": f"{RELEASE}-balancer-token", "defaultMode": 0o440,
        "items": [{"key": "heartbeat-key", "path": "heartbeat-key"}]}
    assert _mounts(l2)["heartbeat-key"] == {"name": "heartbeat-key",
                                            "mountPath": "/var/run/lbctl/heartbeat",
                                            "readOnly": True}
    # the generated Secret holds the key
    secret = next(d for d in l2.all("Secret")
                  if d["metadata"]["name"] == f"{RELEASE}-balancer-token")
    assert "heartbeat-key" in secret["data"]
    named = _render(helm, tmp, {"balancer": {"l2": {
        **L2, "heartbeatKey": {"existingSecret": "hb", "key": "key"}}}})
    assert _volumes(named)["heartbeat-key"]["secret"]["secretName"] == "hb"
    assert _volumes(named)["heartbeat-key"]["secret"]["items"] == [
        {"key": "key", "path": "heartbeat-key"}]
    mine = _render(helm, tmp, {"balancer": {"l2": L2, "token": {"existingSecret": "tok"}}})
    assert _volumes(mine)["heartbeat-key"]["secret"]["secretName"] == "tok"


def test_l2_capabilities_and_the_sysctl_init_container(l2: Manifests, helm: Helm,
                                                       tmp: Path) -> None:
    security = _container(l2)["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"],
                                        "add": ["NET_BIND_SERVICE", "NET_ADMIN", "NET_RAW"]}
    assert security["runAsUser"] == 0 and security["privileged"] is False
    assert security["allowPrivilegeEscalation"] is False
    (init,) = _pod(l2)["initContainers"]
    assert init["name"] == "arp-sysctls" and init["securityContext"]["privileged"] is True
    assert init["env"] == [{"name": "IFACE", "value": "eth0"}]
    script = init["command"][2]
    assert "/proc/sys/net/ipv4/conf/$IFACE/arp_ignore" in script
    assert "/proc/sys/net/ipv4/conf/$IFACE/arp_announce" in script
    # the workaround while the daemon writes the sysctls itself: the container privileged
    privileged = _render(helm, tmp, {"balancer": {"l2": {**L2, "privileged": True}}})
    assert _container(privileged)["securityContext"]["privileged"] is True
    assert "initContainers" not in _pod(privileged)


@pytest.mark.parametrize(("l2", "message"), [
    ({"enabled": True, "peers": L2["peers"]}, "balancer.l2.interface is required"),
    ({"enabled": True, "interface": "eth0"}, "balancer.l2.peers is required"),
], ids=["interface", "peers"])
def test_l2_needs_an_interface_and_peers(helm: Helm, tmp: Path, l2: dict[str, Any],
                                         message: str) -> None:
    assert message in _fails(helm, tmp, {"balancer": {"l2": l2}})


@pytest.mark.parametrize("l2", [
    {**L2, "interface": "eth0; reboot"},
    {**L2, "peers": [{"name": "a", "address": "lb-node-1.example.net"}]},
    {**L2, "peers": [{"name": "a=b", "address": "10.0.0.1"}]},
    {**L2, "heartbeatPort": 0},
], ids=["interface", "address-is-a-name", "name-with-equals", "port"])
def test_l2_values_the_daemon_would_refuse_are_refused(helm: Helm, tmp: Path,
                                                       l2: dict[str, Any]) -> None:
    stderr = _fails(helm, tmp, {"balancer": {"l2": l2}})
    assert "values don't meet the specifications of the schema" in stderr, stderr


# -- the deploy checks ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def both(helm: Helm, tmp: Path) -> Manifests:
    return _render(helm, tmp, {"config": {"baremetal": {"bgp": BGP}},
                               "balancer": {"instances": INSTANCES, "l2": L2, "bgp": {
                                   "passwordSecret": {"name": "bgp-pw"}}}})


def test_modes_pass_lint_and_the_api_schema(helm: Helm, tmp: Path, bgp: Manifests,
                                            l2: Manifests, both: Manifests) -> None:
    values = _values(tmp, "lint", {"config": {"baremetal": {"bgp": BGP}},
                                   "balancer": {"instances": INSTANCES, "l2": L2,
                                                "bgp": {"passwordSecret": {"name": "pw"}}}})
    done = helm.run("lint", "--strict", str(CHART), "-f", str(values_file("baremetal")),
                    "-f", str(values))
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout
    assert "[ERROR]" not in done.stdout and "[WARNING]" not in done.stdout, done.stdout
    for manifests in (bgp, l2, both):
        for doc in manifests.docs:
            assert validate_full(doc) == [], (doc["kind"], doc["metadata"]["name"])
    security = _container(both)["securityContext"]
    assert security["capabilities"]["add"] == ["NET_BIND_SERVICE", "NET_ADMIN", "NET_RAW"]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    tmp = tmp_path_factory.mktemp("modes-sandbox")
    with tls_sandbox(tmp) as box:
        yield box, tmp


def test_both_modes_apply_strictly(sandbox: tuple[Sandbox, Path], both: Manifests) -> None:
    box, tmp = sandbox
    admin = box.write_kubeconfig(tmp / "admin.kc")

    kubectl = partial(run_kubectl, tmp, admin)

    assert kubectl("create", "namespace", NAMESPACE).returncode == 0
    done = kubectl("apply", "--validate=strict", "-f", "-", stdin=both.yaml())
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    stored = kubectl("-n", NAMESPACE, "get", "daemonset", f"{RELEASE}-balancer", "-o", "json")
    pod = json.loads(stored.stdout)["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["securityContext"]["privileged"] is True
    assert pod["containers"][0]["securityContext"]["capabilities"]["add"] == [
        "NET_BIND_SERVICE", "NET_ADMIN", "NET_RAW"]


# -- the schema of baremetal.bgp against the parser -------------------------------------------
def _schema_errors(section: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return ["/".join(map(str, e.absolute_path)) or e.message
            for e in validator.iter_errors({"baremetal": {"bgp": section}})]


def _parses(section: Any) -> bool:
    try:
        parse_bgp(section)
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize(("change", "where"), [
    ({"myASN": 0}, "baremetal/bgp/myASN"),
    ({"myASN": "64512"}, "baremetal/bgp/myASN"),
    ({"peers": []}, "baremetal/bgp/peers"),
    ({"peers": [{**BGP["peers"][0], "holdTime": 1}]}, "baremetal/bgp/peers/0/holdTime"),
    ({"peers": [{**BGP["peers"][0], "holdTime": "soon"}]}, "baremetal/bgp/peers/0/holdTime"),
    ({"peers": [{**BGP["peers"][0], "passwordFile": "pw"}]},
     "baremetal/bgp/peers/0/passwordFile"),
    ({"peers": [{**BGP["peers"][0], "password": "x"}]}, "baremetal/bgp/peers/0"),
    ({"peers": [{**BGP["peers"][0], "peerPort": 70000}]}, "baremetal/bgp/peers/0/peerPort"),
    ({"peers": [{**BGP["peers"][0], "ebgpMultiHop": "yes"}]},
     "baremetal/bgp/peers/0/ebgpMultiHop"),
    ({"advertisements": [{"aggregationLength": 33}]},
     "baremetal/bgp/advertisements/0/aggregationLength"),
    ({"drainSeconds": 60}, "baremetal/bgp/drainSeconds"),
    ({"holdTime": "3s"}, "baremetal/bgp"),  # a peer's key at the section's level
])
def test_the_schema_refuses_what_the_parser_refuses(change: dict[str, Any],
                                                    where: str) -> None:
    section = {**BGP, "advertisements": [], **change}
    assert not _parses(section)
    errors = _schema_errors(section)
    assert errors and any(e.startswith(where) for e in errors), errors


def test_the_schema_never_refuses_a_section_the_parser_takes() -> None:
    """Random sections around the valid one (each field from good and bad values): whatever
    the parser accepts, the schema accepts; and the schema refuses many of the others (the
    rest need what a schema cannot say: unique peers, routerID or a sourceAddress, a duration
    string's bounds, addresses and community syntax)."""
    rng = random.Random(18)  # noqa: S311  (test documents, not secrets)
    peer_values: dict[str, list[Any]] = {
        "name": ["", "tor-a", "a b", 3], "peerAddress": ["192.168.1.1", "fd00::1", "x", 1],
        "peerASN": [1, 64500, 4_294_967_294, 0, 4_294_967_295, "64500", True, 1.5],
        "myASN": [None, 65000, 0], "peerPort": [179, 1, 65535, 0, 65536, "179"],
        "holdTime": [0, 3, 90, "3s", "90s", "1m", " 3s ", "500ms", "3000ms", 1, "2s", "x",
                     70000, True, -3, 3.5, "3.5s"],
        "passwordFile": ["", "/p/w", "p/w", 5], "sourceAddress": ["", "192.168.1.21", "x"],
        "ebgpMultiHop": [True, False, "true", 1], "instances": [[], ["lb-1"], "lb-1"],
        "password": ["x"], "nodeSelectors": [[]]}
    advert_values: dict[str, list[Any]] = {
        "addresses": [[], ["10.0.0.0/24"], ["10.0.0.1-10.0.0.9"], ["x"]],
        "ipAddressPools": [[], ["default"]], "aggregationLength": [32, 24, 0, 33, -1],
        "aggregationLengthV6": [128, 64, 129], "localPref": [None, 100, -1],
        "communities": [[], ["no-export"], ["64512:100"], ["large:1:2:3"], ["nope"]],
        "peers": [[], ["tor-a"], ["ghost"]]}
    top_values: dict[str, list[Any]] = {
        "myASN": [64512, 0, "64512"], "routerID": ["", "10.0.0.2", "fd00::2", "x"],
        "holdDownSeconds": [0, 3, 600, 601, "3"], "drainSeconds": [0, 1.5, 31],
        "extra": [1]}

    def mutate(base: dict[str, Any], values: dict[str, list[Any]], rate: float) -> Any:
        out = dict(base)
        for key, choices in values.items():
            if rng.random() < rate:
                out[key] = rng.choice(choices)
        return out

    base_peer = {"name": "tor-a", "peerAddress": "192.168.1.1", "peerASN": 64500}
    accepted = refused_by_both = 0
    for _ in range(3000):
        peers = [mutate(base_peer, peer_values, 0.15) for _ in range(rng.choice([0, 1, 1, 2]))]
        adverts = [mutate({}, advert_values, 0.3) for _ in range(rng.choice([0, 1, 2]))]
        section = mutate({"myASN": 64512, "routerID": "10.0.0.2", "peers": peers,
                          "advertisements": adverts}, top_values, 0.1)
        parsed, errors = _parses(section), _schema_errors(section)
        if parsed:
            assert errors == [], section
            accepted += 1
        elif errors:
            refused_by_both += 1
    assert accepted > 200 and refused_by_both > 1000, (accepted, refused_by_both)
