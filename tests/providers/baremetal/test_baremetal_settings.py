"""The `baremetal:` config section: defaults, golden problem messages, bad pools frozen alone."""

from __future__ import annotations

from typing import Any

import pytest

from providers.baremetal import BalancerDaemon, parse_settings, validate_settings
from providers.registry import settings_validator

pytestmark = pytest.mark.unit

DESIGN_EXAMPLE: dict[str, Any] = {
    "pools": [{
        "name": "default",
        "addresses": ["192.168.10.0/24", "10.0.0.10-10.0.0.20", "fd00::/120"],
        "autoAssign": True,
        "avoidBuggyIPs": False,
        "serviceAllocation": {"priority": 0, "namespaces": [], "serviceSelectors": []},
    }],
    "balancers": [],
}


def test_design_example_is_valid() -> None:
    settings, problems = parse_settings(DESIGN_EXAMPLE)
    assert problems == []
    (pool,) = settings.pools.active
    assert pool.name == "default" and pool.auto_assign and not pool.avoid_buggy_ips
    assert [r.size for r in pool.ranges] == [256, 11, 256]
    assert pool.families == {"IPv4", "IPv6"}
    assert settings.cooldown_seconds == 30.0 and settings.balancers == ()


@pytest.mark.parametrize("raw", [None, {}])
def test_empty_is_defaults(raw: Any) -> None:
    settings, problems = parse_settings(raw)
    assert problems == [] and settings.pools.active == () and settings.cooldown_seconds == 30


def test_full_settings() -> None:
    settings, problems = parse_settings({
        "pools": [{"name": "a", "addresses": ["10.0.0.0/28"], "autoAssign": False,
                   "avoidBuggyIPs": True,
                   "serviceAllocation": {
                       "priority": 5, "namespaces": ["web", "api"],
                       "namespaceSelectors": [
                           {"matchLabels": {"kubernetes.io/metadata.name": "web"}}],
                       "serviceSelectors": [{"matchExpressions": [
                           {"key": "tier", "operator": "In", "values": ["edge"]}]}]}}],
        "balancers": [{"name": "lb-1", "url": "https://10.0.0.2:9443",
                       "tokenFile": "/var/run/secrets/lbctl/token"}],
        "cooldownSeconds": 0,
    })
    assert problems == []
    (pool,) = settings.pools.active
    assert pool.allocation is not None and pool.allocation.priority == 5
    assert pool.allocation.namespaces == {"web", "api"}
    assert settings.balancers == (BalancerDaemon("lb-1", "https://10.0.0.2:9443",
                                                 "/var/run/secrets/lbctl/token"),)
    assert settings.cooldown_seconds == 0.0


P = "baremetal.pools"


@pytest.mark.parametrize(("pools", "expected"), [
    ([{"name": "a", "addresses": ["10.0.0.0/24"]}, {"name": "b", "addresses": ["10.0.0.300/24"]}],
     [(f'{P}[1] "b".addresses[0]', '"10.0.0.300/24" is not a CIDR or range')]),
    ([{"name": "a", "addresses": ["192.168.10.0/24"]},
      {"name": "b", "addresses": ["192.168.10.100/32"]}],
     [(f'{P}[1] "b".addresses[0]', '"192.168.10.100/32" in pool "b" overlaps with already defined '
                               f'"192.168.10.0/24" of pool "a" ({P}[0].addresses[0])')]),
    ([{"name": "a", "addresses": ["10.0.0.0/28", "10.0.0.8-10.0.0.20"]}],
     [(f'{P}[0] "a".addresses[1]', '"10.0.0.8-10.0.0.20" in pool "a" overlaps with already '
                               f'defined "10.0.0.0/28" of this pool ({P}[0].addresses[0])')]),
    ([{"name": "a", "addresses": ["10.0.0.20-10.0.0.10"]}],
     [(f'{P}[0] "a".addresses[0]', 'invalid IP range "10.0.0.20-10.0.0.10": start IP 10.0.0.20 '
                               "is after the end IP 10.0.0.10")]),
    ([{"name": "a", "addresses": ["10.0.0.1-fd00::1"]}],
     [(f'{P}[0] "a".addresses[0]', 'invalid IP range "10.0.0.1-fd00::1": start and end are of '
                               "different IP families")]),
    ([{"name": "a", "addresses": []}],
     [(f'{P}[0] "a".addresses', "pool has no addresses defined")]),
    ([{"name": "a"}], [(f'{P}[0] "a".addresses', "pool has no addresses defined")]),
    ([{"name": "a", "addresses": "10.0.0.0/24"}],
     [(f'{P}[0] "a".addresses', "must be a list of strings")]),
    ([{"name": "a", "addresses": [7]}], [(f'{P}[0] "a".addresses[0]', "must be a string, not 7")]),
    ([{"name": "x", "addresses": ["10.0.0.0/30"]}, {"name": "x", "addresses": ["10.0.1.0/30"]}],
     [(f"{P}[1].name", f'duplicate definition of pool "x" (first at {P}[0])')]),
    ([{"addresses": ["10.0.0.0/30"]}], [(f"{P}[0].name", "required: a pool needs a name")]),
    ([{"name": "Bad_Name", "addresses": ["10.0.0.0/30"]}],
     [(f"{P}[0].name", '"Bad_Name" is not a valid pool name (lowercase alphanumerics, \'-\' '
                       "and '.', as Kubernetes names)")]),
    ([{"name": "a", "addresses": ["10.0.0.0/30"], "autoassign": False}],
     [(f'{P}[0] "a".autoassign', "unknown key")]),
    ([{"name": "a", "addresses": ["10.0.0.0/30"], "autoAssign": "yes"}],
     [(f'{P}[0] "a".autoAssign', "must be true or false, not 'yes'")]),
    ([{"name": "a", "addresses": ["10.0.0.0/30"], "avoidBuggyIPs": 1}],
     [(f'{P}[0] "a".avoidBuggyIPs', "must be true or false, not 1")]),
    ([{"name": "a", "addresses": ["10.0.0.0/30"], "serviceAllocation": {"priority": -1}}],
     [(f'{P}[0] "a".serviceAllocation.priority', "must be a non-negative integer, not -1")]),
    ([{"name": "a", "addresses": ["10.0.0.0/30"], "serviceAllocation": {"namespaces": ["A_b"]}}],
     [(f'{P}[0] "a".serviceAllocation.namespaces[0]',
       '"A_b" is not a valid namespace name (a DNS-1123 label)')]),
    ([{"name": "a", "addresses": ["10.0.0.0/30"], "serviceAllocation": "all"}],
     [(f'{P}[0] "a".serviceAllocation', "must be a mapping (priority, namespaces, "
                                    "namespaceSelectors, serviceSelectors)")]),
    ([{"name": "a", "addresses": ["10.0.0.0/30"],
       "serviceAllocation": {"serviceSelectors": [{"matchLabels": {"a": "-"}}]}}],
     [(f'{P}[0] "a".serviceAllocation.serviceSelectors[0].matchLabels[a]',
       '"-" is not a valid label value: it must be 63 characters or less, consist of '
       "alphanumerics, '-', '_' or '.', and start and end with an alphanumeric")]),
    ([{"name": "a", "addresses": ["10.0.0.0/30"],
       "serviceAllocation": {"namespaceSelectors": [{"matchLabels": {"team": "x"}}]}}], []),
    ([{"name": "a", "addresses": ["10.0.0.0/30"],
       "serviceAllocation": {"namespaceSelectors": [{"matchLabels": {"team/": "x"}}]}}],
     [(f'{P}[0] "a".serviceAllocation.namespaceSelectors[0].matchLabels[team/]',
       '"team/" is not a valid label key: the name must be 63 characters or less, consist of '
       "alphanumerics, '-', '_' or '.', and start and end with an alphanumeric")]),
    ([{"name": "a", "addresses": ["10.0.0.0/30"], "serviceAllocation": {
        "namespaceSelectors": [{"matchExpressions": [{"key": "team", "operator": "In"}]}]}}],
     [(f'{P}[0] "a".serviceAllocation.namespaceSelectors[0].matchExpressions[0].values',
       "must be specified when operator is In")]),
    (["10.0.0.0/24"], [(f"{P}[0]", "must be a mapping (name, addresses, ...)")]),
])
def test_pool_problems_golden(pools: list[Any], expected: list[tuple[str, str]]) -> None:
    assert parse_settings({"pools": pools})[1] == expected


def test_bad_pool_is_frozen_and_good_ones_work() -> None:
    settings, problems = parse_settings({"pools": [
        {"name": "good", "addresses": ["10.0.0.0/29"]},
        {"name": "typo", "addresses": ["10.0.1.0/29", "10.0.2.300/29"]},
        {"name": "late", "addresses": ["10.0.3.0/29"]},
    ]})
    assert [p for p, _ in problems] == [f'{P}[1] "typo".addresses[1]']  # by position and name
    assert [p.name for p in settings.pools.active] == ["good", "late"]
    (typo,) = settings.pools.frozen
    assert typo.frozen and typo.name == "typo" and [r.text for r in typo.ranges] == [
        "10.0.1.0/29"]  # what parsed is kept: its holders keep their addresses


def test_problems_in_document_order_all_at_once() -> None:
    _, problems = parse_settings({
        "pool": [],
        "pools": [{"name": "a", "addresses": ["10.0.0.0/24"]},
                  {"name": "b", "addresses": ["10.0.0.300/24", "10.0.0.8/29"]},
                  {"name": "a", "addresses": ["10.9.0.0/24"], "autoassign": True}],
        "cooldownSeconds": -1,
    })
    assert problems == [
        ("baremetal.pool", "unknown key"),
        (f'{P}[1] "b".addresses[0]', '"10.0.0.300/24" is not a CIDR or range'),
        (f'{P}[1] "b".addresses[1]', '"10.0.0.8/29" in pool "b" overlaps with already defined '
                                     f'"10.0.0.0/24" of pool "a" ({P}[0].addresses[0])'),
        (f'{P}[2] "a".autoassign', "unknown key"),
        (f"{P}[2].name", f'duplicate definition of pool "a" (first at {P}[0])'),
        ("baremetal.cooldownSeconds", "must be a number of seconds from 0 to 86400, not -1"),
    ]


@pytest.mark.parametrize(("raw", "expected"), [
    ("pools: []", [("baremetal", "must be a mapping (pools, balancers, cooldownSeconds)")]),
    ({"pools": {"name": "a"}}, [(f"{P}", "must be a list of pools")]),
    ({"cooldownSeconds": True},
     [("baremetal.cooldownSeconds", "must be a number of seconds from 0 to 86400, not True")]),
    ({"cooldownSeconds": "30s"},
     [("baremetal.cooldownSeconds", "must be a number of seconds from 0 to 86400, not '30s'")]),
    ({"balancers": {"name": "a"}},
     [("baremetal.balancers", "must be a list of {name, url, tokenFile, caFile}")]),
    ({"balancers": ["a"]},
     [("baremetal.balancers[0]", "must be a mapping with name, url and tokenFile")]),
    ({"balancers": [{"name": "a", "url": "ftp://x", "tokenFile": "/t"}]},
     [("baremetal.balancers[0].url", "must be an http:// or https:// URL, not 'ftp://x'")]),
    ({"balancers": [{"name": "a", "url": "http://x", "tokenFile": "token"}]},
     [("baremetal.balancers[0].tokenFile",
       "must be the absolute path of a mounted token file, not 'token'")]),
    ({"balancers": [{"name": "A", "url": "http://x", "tokenFile": "/t"}]},
     [("baremetal.balancers[0].name", "must be a DNS-1123 label, not 'A'")]),
    ({"balancers": [{"name": "a", "url": "http://x", "tokenFile": "/t"},
                    {"name": "a", "url": "http://y", "tokenFile": "/t"}]},
     [("baremetal.balancers[1].name", 'duplicate balancer "a"')]),
    ({"balancers": [{"name": "a", "url": "http://admin:pw@x:9450", "tokenFile": "/t"}]},
     [("baremetal.balancers[0].url", "must not carry a user or password (user:pass@): the "
                                     "daemon authenticates with the token in tokenFile")]),
    ({"balancers": [{"name": "a\n", "url": "http://x", "tokenFile": "/t"}]},
     [("baremetal.balancers[0].name", "must be a DNS-1123 label, not 'a\\n'")]),
    ({"balancers": [{"name": "a", "url": "http://x", "tokenFile": "/t", "token": "s3cret"}]},
     [("baremetal.balancers[0].token", "unknown key: credentials are never read from config, "
                                       "put the token in a mounted file and name it in "
                                       "tokenFile")]),
])
def test_top_level_and_balancer_problems(raw: Any, expected: list[tuple[str, str]]) -> None:
    assert parse_settings(raw)[1] == expected


def test_upstream_congestion_control() -> None:
    assert parse_settings({"upstreamCongestionControl": "reno"})[0].daemon \
        .upstream_congestion_control == "reno"
    assert parse_settings({})[0].daemon.upstream_congestion_control == ""
    settings, problems = parse_settings({"upstreamCongestionControl": "BBR!"})
    assert problems == [("baremetal.upstreamCongestionControl",
                         "must be a congestion control name such as cubic or reno, not 'BBR!'")]
    assert settings.daemon.upstream_congestion_control == ""


def test_bad_balancer_dropped_good_kept() -> None:
    settings, problems = parse_settings({"balancers": [
        {"name": "a", "url": "http://10.0.0.1:8080", "tokenFile": "/t"},
        {"name": "b", "url": "nope", "tokenFile": "/t"}]})
    assert [b.name for b in settings.balancers] == ["a"] and len(problems) == 1


def test_bad_cooldown_falls_back_to_default() -> None:
    settings, _ = parse_settings({"cooldownSeconds": 10**9})
    assert settings.cooldown_seconds == 30.0


def test_validate_settings_is_the_registry_validator_with_section_relative_keys(
        tmp_path: Any) -> None:
    raw = {"pools": [{"name": "a", "addresses": ["10.0.0.0/24"]},
                     {"name": "b", "addresses": ["10.0.0.300/24"]}], "x": 1}
    validator = settings_validator("baremetal")
    assert validator is not None
    assert validator(raw) == validate_settings(raw) == [
        ("x", "unknown key"),
        ("pools[1] \"b\".addresses[0]", '"10.0.0.300/24" is not a CIDR or range')]
    assert validate_settings("nonsense") == [
        ("", "must be a mapping (pools, balancers, cooldownSeconds)")]


def test_config_validate_names_the_full_path(tmp_path: Any) -> None:
    from lbctl.controller.planning import validate_config

    path = tmp_path / "config.yaml"
    path.write_text('baremetal:\n  pools:\n  - {name: a, addresses: ["10.0.0.0/24"]}\n'
                    '  - {name: b, addresses: ["10.0.0.300/24"]}\n')
    _, problems = validate_config(path)
    assert problems == [f'{path}: baremetal.pools[1] "b".addresses[0]: "10.0.0.300/24" is not a '
                        "CIDR or range"]


@pytest.mark.parametrize(("allocation", "frozen", "reads"), [
    ({"namespaceSelectors": [{"matchLabels": {"foo": "bar"}}]}, False, True),
    ({"namespaceSelectors": [{"matchExpressions": [
        {"key": "foo", "operator": "DoesNotExist"}]}]}, False, True),
    ({"namespaceSelectors": [{"matchLabels": {"kubernetes.io/metadata.name": "a"}}]},
     False, False),
    ({"namespaceSelectors": [{}]}, False, False),
    ({"namespaces": ["a"], "serviceSelectors": [{"matchLabels": {"foo": "bar"}}]}, False, False),
    ({"namespaceSelectors": [{"matchLabels": {"foo": "bar"}}]}, True, False),
])
def test_reads_namespace_labels_only_when_an_allocating_pool_selects_on_them(
        allocation: dict[str, Any], frozen: bool, reads: bool) -> None:
    """The provider asks the cluster for namespace labels (and the controller then watches
    Namespaces) only for a pool that allocates and selects on a label other than the name."""
    pool: dict[str, Any] = {"name": "a", "addresses": ["10.0.0.0/30"],
                            "serviceAllocation": allocation}
    if frozen:
        pool["autoAssign"] = "not a bool"
    settings, problems = parse_settings({"pools": [pool]})
    assert bool(problems) == frozen
    assert settings.reads_namespace_labels is reads
