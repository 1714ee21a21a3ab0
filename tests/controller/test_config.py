"""The one config parser: defaults, the design's contract, and errors naming every bad key."""

from __future__ import annotations

import pytest

from lbctl.controller.config import ConfigError, load_config, parse_config

pytestmark = pytest.mark.unit

DESIGN_EXAMPLE = """
clusterName: kubernetes
provider: baremetal
loadBalancerClasses: []
handleClasslessServices: true
meltdown: {maxRemovedFraction: 0.5}
baremetal:
  pools:
  - name: default
    addresses: ["192.168.10.0/24", "10.0.0.10-10.0.0.20", "fd00::/120"]
    autoAssign: true
  balancers: []
aws: {region: us-east-1, endpointURL: ""}
gcp: {project: "", region: "", network: "", endpoint: ""}
azure: {subscriptionId: "", resourceGroup: "", location: "", endpoint: ""}
"""


def test_design_example_parses() -> None:
    cfg = parse_config(DESIGN_EXAMPLE)
    assert cfg.provider == "baremetal"
    assert cfg.meltdown.max_removed_fraction == 0.5
    assert cfg.provider_settings()["pools"][0]["name"] == "default"
    assert cfg.controller.workers == 8


def test_empty_file_is_all_defaults() -> None:
    cfg = parse_config("")
    assert (cfg.cluster_name, cfg.provider, cfg.handle_classless_services) == (
        "kubernetes", "baremetal", True)


@pytest.mark.parametrize(("text", "path"), [
    ("clusterName: " + "x" * 33, "clusterName"),
    ("clusterName: Bad_Name", "clusterName"),
    ("meltdown: {maxRemovedFraction: 0}", "meltdown.maxRemovedFraction"),
    ("meltdown: {maxRemovedFraction: 1.5}", "meltdown.maxRemovedFraction"),
    ("meltdown: {maxRemoved: 0.2}", "meltdown.maxRemoved"),
    ("loadBalancerClasses: [baremetal]", "loadBalancerClasses"),
    ("loadBalancerClasses: [a.io/x, a.io/x]", "loadBalancerClasses"),
    ("controller: {workers: 0}", "controller.workers"),
    ("handleClasslessServices: maybe", "handleClasslessServices"),
    ("provdier: aws", "provdier"),
])
def test_errors_name_the_key(text: str, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cm/config.yaml")
    assert [p for p, _ in info.value.problems] == [path]
    assert str(info.value).startswith(f"cm/config.yaml: {path}: ")


def test_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("clusterName: X\ncontroller: {workers: 0}\nfoo: 1")
    assert sorted(p for p, _ in info.value.problems) == ["clusterName", "controller.workers",
                                                         "foo"]


@pytest.mark.parametrize("text", ["[1, 2]", "a: [", "just a string"])
def test_not_a_mapping_or_not_yaml(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_config(text)


BOMB = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"b{i}: &b{i} [{','.join([f'*{p}'] * 10)}]\n"
    for i, p in enumerate(["a", "b0", "b1", "b2", "b3", "b4", "b5", "b6"]))


@pytest.mark.parametrize(("text", "message"), [
    ("[" * 100_000, "config.yaml: not valid YAML: nested too deeply"),
    (BOMB, "config.yaml: not valid YAML: more than 1,000,000 values once its aliases are "
           "expanded"),
])
def test_yaml_bombs_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert str(info.value) == message


@pytest.mark.parametrize(("text", "path"), [
    ("controller: {workers: true}", "controller.workers"),
    ('controller: {qps: "50"}', "controller.qps"),
    ('handleClasslessServices: "yes"', "handleClasslessServices"),
    ("handleClasslessServices: 1", "handleClasslessServices"),
    ("meltdown: {maxRemovedFraction: false}", "meltdown.maxRemovedFraction"),
])
def test_no_type_is_coerced(text: str, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert [p for p, _ in info.value.problems] == [path]


def test_credentials_are_refused_in_every_section_whichever_provider_is_active() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("provider: baremetal\n"
                     "aws: {secretAccessKey: abc}\n"
                     "azure: {clientSecret: s}\n"
                     "baremetal: {balancers: [{name: a, url: 'http://x:9450', token: t}]}\n"
                     "plugins: {acme: {nested: {apiToken: t}}, other.io: {passwordFile: /p}}\n")
    assert [p for p, _ in info.value.problems] == [
        "baremetal.balancers[0].token", "aws.secretAccessKey", "azure.clientSecret",
        "plugins.acme.nested.apiToken"]  # a ...File key names a mounted Secret: fine
    assert all("never from the config" in m for _, m in info.value.problems)


def test_class_ownership() -> None:
    cfg = parse_config("loadBalancerClasses: [lbctl.io/metal]\nhandleClasslessServices: false")
    assert cfg.owns_class("lbctl.io/metal")
    assert not cfg.owns_class("other.io/x")
    assert not cfg.owns_class(None)


def test_missing_file(tmp_path: object) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("/nonexistent/config.yaml")
    assert "/nonexistent/config.yaml" in str(info.value)
