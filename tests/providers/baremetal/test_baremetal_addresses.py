"""Pool address entries and label selectors: parsing, edges, membership, golden messages."""

from __future__ import annotations

import ipaddress

import pytest

from providers.baremetal.addresses import (
    AddressRange,
    RangeError,
    confuses_buggy_firmware,
    parse_range,
)
from providers.baremetal.selectors import LabelSelector, Requirement, parse_selector

pytestmark = pytest.mark.unit


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(("text", "first", "last", "size"), [
    ("192.168.10.0/24", "192.168.10.0", "192.168.10.255", 256),
    ("10.0.0.7/32", "10.0.0.7", "10.0.0.7", 1),
    ("10.0.0.10-10.0.0.20", "10.0.0.10", "10.0.0.20", 11),
    (" 10.0.0.10 - 10.0.0.10 ", "10.0.0.10", "10.0.0.10", 1),
    ("10.0.0.254-10.0.1.1", "10.0.0.254", "10.0.1.1", 4),
    ("1.0.0.0-223.255.255.255", "1.0.0.0", "223.255.255.255", 223 * 2**24),
    ("127.0.100.0/24", "127.0.100.0", "127.0.100.255", 256),  # loopback: demos and tests
    ("fd00::/120", "fd00::", "fd00::ff", 256),
    ("fd00::1/128", "fd00::1", "fd00::1", 1),
    ("fd00::1-fd00::a", "fd00::1", "fd00::a", 10),
    ("2001:db8::/64", "2001:db8::", "2001:db8::ffff:ffff:ffff:ffff", 2**64),
])
def test_ranges(text: str, first: str, last: str, size: int) -> None:
    rng = parse_range(text)
    assert (rng.first, rng.last, rng.size) == (int(ip(first)), int(ip(last)), size)
    assert rng.contains(ip(first)) and rng.contains(ip(last))
    assert rng.text == text.strip()


@pytest.mark.parametrize(("text", "message"), [
    ("10.0.0.300/24", '"10.0.0.300/24" is not a CIDR or range'),
    ("10.0.0.0/33", '"10.0.0.0/33" is not a CIDR or range'),
    ("banana", '"banana" is not a CIDR or range'),
    ("", '"" is not a CIDR or range'),
    ("10.0.0.1", '"10.0.0.1" is not a CIDR or range (write "10.0.0.1/32" for one address)'),
    ("fd00::1", '"fd00::1" is not a CIDR or range (write "fd00::1/128" for one address)'),
    ("10.0.0.5/24", '"10.0.0.5/24" has host bits set: the network is "10.0.0.0/24", the one '
                    'address is "10.0.0.5/32"'),
    ("10.0.0.20-10.0.0.10", 'invalid IP range "10.0.0.20-10.0.0.10": start IP 10.0.0.20 is '
                            "after the end IP 10.0.0.10"),
    ("10.0.0.1-fd00::1", 'invalid IP range "10.0.0.1-fd00::1": start and end are of '
                         "different IP families"),
    ("10.0.0.1-", '"10.0.0.1-" is not a CIDR or range'),
    ("10.0.0.1-10.0.0.x", '"10.0.0.1-10.0.0.x" is not a CIDR or range'),
    ("fe80::1%eth0/64", '"fe80::1%eth0/64" is not a CIDR or range'),
    ("fe80::1%eth0-fe80::2", '"fe80::1%eth0-fe80::2" is not a CIDR or range'),
    # what a Service can never be given (issue 14: these validated and `lbctl plan` handed
    # out 0.0.0.0)
    ("0.0.0.0/0", '"0.0.0.0/0" includes the unspecified address 0.0.0.0, which cannot be a '
                  "Service's address"),
    ("::/0", '"::/0" includes the unspecified address ::, which cannot be a Service\'s address'),
    ("0.0.0.0/32", '"0.0.0.0/32" includes the unspecified address 0.0.0.0, which cannot be a '
                   "Service's address"),
    ("224.0.0.1/32", '"224.0.0.1/32" includes multicast addresses (224.0.0.0/4), which cannot '
                     "be a Service's address"),
    ("223.255.255.250-224.0.0.5", '"223.255.255.250-224.0.0.5" includes multicast addresses '
                                  "(224.0.0.0/4), which cannot be a Service's address"),
    ("255.255.255.255/32", '"255.255.255.255/32" includes reserved addresses and the broadcast '
                           "address (240.0.0.0/4), which cannot be a Service's address"),
    ("ff02::1/128", '"ff02::1/128" includes multicast addresses (ff00::/8), which cannot be a '
                    "Service's address"),
])
def test_bad_ranges_say_why(text: str, message: str) -> None:
    with pytest.raises(RangeError) as info:
        parse_range(text)
    assert str(info.value) == message


@pytest.mark.parametrize(("a", "b", "overlap"), [
    ("10.0.0.0/24", "10.0.0.255/32", True),
    ("10.0.0.0/24", "10.0.1.0/32", False),
    ("10.0.0.10-10.0.0.20", "10.0.0.20-10.0.0.30", True),
    ("10.0.0.10-10.0.0.20", "10.0.0.21-10.0.0.30", False),
    ("10.0.0.0/8", "10.200.0.0/16", True),
    ("10.0.0.0/8", "fd00::/8", False),  # families never overlap
    ("fd00::/120", "fd00::ff/128", True),
])
def test_overlap_is_symmetric(a: str, b: str, overlap: bool) -> None:
    ra, rb = parse_range(a), parse_range(b)
    assert ra.overlaps(rb) is overlap and rb.overlaps(ra) is overlap


def test_iteration_is_lazy_and_ordered() -> None:
    huge = parse_range("2001:db8::/64").addresses()
    assert [str(next(huge)) for _ in range(3)] == ["2001:db8::", "2001:db8::1", "2001:db8::2"]
    assert [str(a) for a in parse_range("10.0.0.254-10.0.1.1").addresses()] == [
        "10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1"]


@pytest.mark.parametrize(("text", "buggy"), [
    ("10.0.0.0", True), ("10.0.0.255", True), ("10.0.1.0", True), ("10.0.0.1", False),
    ("10.0.0.254", False), ("fd00::", False), ("fd00::ff", False),
])
def test_buggy_firmware_addresses(text: str, buggy: bool) -> None:
    assert confuses_buggy_firmware(ip(text)) is buggy


def test_range_family() -> None:
    assert parse_range("10.0.0.0/31").family == "IPv4"
    assert parse_range("fd00::/127").family == "IPv6"
    assert AddressRange(4, 1, 2).contains(ip("::1")) is False


# -- label selectors ----------------------------------------------------------------------------

SEL = {"matchLabels": {"team": "a"},
       "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]},
                            {"key": "legacy", "operator": "DoesNotExist"}]}


@pytest.mark.parametrize(("labels", "matches"), [
    ({"team": "a", "tier": "web"}, True),
    ({"team": "a", "tier": "api", "x": "y"}, True),
    ({"team": "b", "tier": "web"}, False),
    ({"team": "a"}, False),
    ({"team": "a", "tier": "web", "legacy": ""}, False),
])
def test_selector_matching(labels: dict[str, str], matches: bool) -> None:
    problems: list[tuple[str, str]] = []
    selector = parse_selector(SEL, "s", problems)
    assert problems == [] and selector is not None
    assert selector.matches(labels) is matches


@pytest.mark.parametrize(("operator", "values", "labels", "matches"), [
    ("NotIn", ("a",), {}, True),  # as in Kubernetes: an absent key is "not in"
    ("NotIn", ("a",), {"k": "a"}, False),
    ("NotIn", ("a",), {"k": "b"}, True),
    ("Exists", (), {"k": ""}, True),
    ("Exists", (), {}, False),
    ("DoesNotExist", (), {}, True),
    ("In", ("a", "b"), {"k": "b"}, True),
])
def test_requirement_operators(operator: str, values: tuple[str, ...],
                               labels: dict[str, str], matches: bool) -> None:
    assert Requirement("k", operator, frozenset(values)).matches(labels) is matches


def test_empty_selector_matches_everything() -> None:
    assert LabelSelector().matches({}) and LabelSelector().matches({"a": "b"})


@pytest.mark.parametrize(("raw", "expected"), [
    ("team=a", [("s", "must be a label selector (matchLabels / matchExpressions)")]),
    ({"matchLabel": {"a": "b"}}, [("s.matchLabel", "unknown key")]),
    ({"matchLabels": ["a"]}, [("s.matchLabels", "must be a mapping of label keys to values")]),
    ({"matchLabels": {"a b": "c"}},
     [("s.matchLabels[a b]", '"a b" is not a valid label key: the name must be 63 characters '
                             "or less, consist of alphanumerics, '-', '_' or '.', and start and "
                             "end with an alphanumeric")]),
    ({"matchLabels": {"Example.com/a": "c"}},
     [("s.matchLabels[Example.com/a]", '"Example.com/a" is not a valid label key: the prefix '
                                       "must be a DNS subdomain (lowercase alphanumerics, '-' "
                                       "and '.')")]),
    ({"matchLabels": {"a": "-x"}},
     [("s.matchLabels[a]", '"-x" is not a valid label value: it must be 63 characters or '
                           "less, consist of alphanumerics, '-', '_' or '.', and start and end "
                           "with an alphanumeric")]),
    ({"matchExpressions": [{"key": "a", "operator": "In"}]},
     [("s.matchExpressions[0].values", "must be specified when operator is In")]),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     [("s.matchExpressions[0].values", "may not be specified when operator is Exists")]),
    ({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
     [("s.matchExpressions[0].operator",
       "must be one of In, NotIn, Exists, DoesNotExist, not 'Equals'")]),
    ({"matchExpressions": {"key": "a"}}, [("s.matchExpressions", "must be a list")]),
    ({"matchExpressions": ["a"]},
     [("s.matchExpressions[0]", "must be a mapping with key, operator and values")]),
])
def test_selector_problems(raw: object, expected: list[tuple[str, str]]) -> None:
    problems: list[tuple[str, str]] = []
    assert parse_selector(raw, "s", problems) is None
    assert problems == expected
