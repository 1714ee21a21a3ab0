"""Node port and cluster IP pools: ranges, reserved addresses, kube's error texts, scale."""

from __future__ import annotations

import ipaddress
import time

import pytest

from lbctl.sandbox.admission.allocators import (
    AlreadyAllocatedError,
    IPAllocator,
    NotInRangeError,
    PortAllocator,
    RangeFullError,
    parse_cidr,
    parse_ip,
)

pytestmark = pytest.mark.unit


# --- ports ------------------------------------------------------------------------------------


def test_port_allocate_and_release() -> None:
    ports = PortAllocator(30000, 32767, seed=1)
    ports.allocate(30008)
    assert ports.has(30008)
    assert (ports.used, ports.free, ports.size) == (1, 2767, 2768)
    ports.release(30008)
    assert not ports.has(30008)
    assert ports.used == 0


@pytest.mark.parametrize(("port", "error", "message"), [
    (29999, NotInRangeError,
     "provided port is not in the valid range. The range of valid ports is 30000-32767"),
    (32768, NotInRangeError,
     "provided port is not in the valid range. The range of valid ports is 30000-32767"),
    (30008, AlreadyAllocatedError, "provided port is already allocated"),
])
def test_port_refusals_use_kube_texts(port: int, error: type[Exception], message: str) -> None:
    ports = PortAllocator(30000, 32767)
    ports.allocate(30008)
    with pytest.raises(error) as caught:
        ports.allocate(port)
    assert str(caught.value) == message
    assert ports.used == 1


def test_port_release_of_free_or_foreign_port_is_a_no_op() -> None:
    ports = PortAllocator(30000, 30010)
    ports.release(30001)
    ports.release(80)
    assert ports.used == 0


def test_port_allocate_next_hands_out_every_port_once_then_is_full() -> None:
    ports = PortAllocator(30000, 32767, seed=7)
    seen = {ports.allocate_next() for _ in range(2768)}
    assert seen == set(range(30000, 32768))
    with pytest.raises(RangeFullError, match=r"^range is full$"):
        ports.allocate_next()


def test_port_allocate_next_prefers_the_upper_band() -> None:
    """ServiceNodePortStaticSubrange: the lowest min(max(16, 2768/32), 128) = 86 ports are kept
    for explicit requests while the rest has room."""
    ports = PortAllocator(30000, 32767, seed=3)
    drawn = [ports.allocate_next() for _ in range(2768 - 86)]
    assert min(drawn) == 30086
    assert ports.allocate_next() < 30086


def test_port_allocate_next_skips_taken_ports() -> None:
    ports = PortAllocator(30000, 30004, seed=0)
    for port in (30000, 30001, 30003, 30004):
        ports.allocate(port)
    assert ports.allocate_next() == 30002


def test_port_seeded_allocation_is_deterministic() -> None:
    one, two = PortAllocator(30000, 32767, seed=42), PortAllocator(30000, 32767, seed=42)
    assert [one.allocate_next() for _ in range(20)] == [two.allocate_next() for _ in range(20)]


@pytest.mark.parametrize(("first", "last"), [(0, 10), (100, 99), (30000, 70000)])
def test_port_range_must_be_sane(first: int, last: int) -> None:
    with pytest.raises(ValueError, match="invalid port range"):
        PortAllocator(first, last)


# --- IPs ----------------------------------------------------------------------------------------


def test_ipv4_small_range_never_hands_out_network_broadcast_or_first_ip() -> None:
    ips = IPAllocator("10.0.0.0/28", seed=5)
    assert ips.size == 14
    drawn = {ips.allocate_next() for _ in range(13)}
    assert drawn == {f"10.0.0.{i}" for i in range(2, 15)}
    with pytest.raises(RangeFullError):
        ips.allocate_next()
    ips.allocate("10.0.0.1")  # the first IP can still be asked for (kubernetes.default)
    assert ips.used == 14


@pytest.mark.parametrize(("ip", "error", "message"), [
    ("10.96.0.0", NotInRangeError, "provided IP 10.96.0.0 is not in the valid range"),
    ("10.111.255.255", NotInRangeError, "provided IP 10.111.255.255 is not in the valid range"),
    ("10.112.0.1", NotInRangeError, "the provided network does not match the current range"),
    ("fd00::1", NotInRangeError, "the provided network does not match the current range"),
    ("10.96.0.10", AlreadyAllocatedError, "provided IP is already allocated"),
])
def test_ip_refusals_use_kube_texts(ip: str, error: type[Exception], message: str) -> None:
    ips = IPAllocator("10.96.0.0/12")
    ips.allocate("10.96.0.10")
    with pytest.raises(error) as caught:
        ips.allocate(ip)
    assert str(caught.value) == message
    assert ips.used == 1


def test_ip_sloppy_ipv4_text_is_the_same_address() -> None:
    ips = IPAllocator("10.96.0.0/12")
    ips.allocate("010.096.000.005")
    assert ips.has("10.96.0.5")
    with pytest.raises(AlreadyAllocatedError):
        ips.allocate("10.96.0.5")
    ips.release("10.96.0.5")
    assert ips.used == 0


def test_ipv6_range_excludes_only_the_subnet_address() -> None:
    ips = IPAllocator("fd00:10:96::/120", seed=2)
    assert (ips.family, ips.size) == ("IPv6", 255)
    drawn = {ips.allocate_next() for _ in range(254)}
    assert "fd00:10:96::1" not in drawn
    assert "fd00:10:96::ff" in drawn
    with pytest.raises(RangeFullError):
        ips.allocate_next()
    with pytest.raises(NotInRangeError, match="not in the valid range"):
        ips.allocate("fd00:10:96::")


def test_ipv6_service_cidr_must_be_at_least_a_slash_64() -> None:
    with pytest.raises(ValueError, match="shortest allowed prefix length"):
        IPAllocator("fd00::/48")


def test_ip_allocate_next_prefers_the_upper_band() -> None:
    ips = IPAllocator("10.0.0.0/24", seed=9)  # band = max(16, 256/16) = 16
    drawn = [int(ipaddress.IPv4Address(ips.allocate_next())) for _ in range(254 - 16)]
    assert min(drawn) == int(ipaddress.IPv4Address("10.0.0.17"))


def test_ten_thousand_cluster_ips_are_unique_in_range_and_fast() -> None:
    ips = IPAllocator("10.96.0.0/12", seed=11)
    network = ipaddress.ip_network("10.96.0.0/12")
    start = time.perf_counter()
    drawn = [ips.allocate_next() for _ in range(10_000)]
    elapsed = time.perf_counter() - start
    assert len(set(drawn)) == 10_000
    assert all(ipaddress.ip_address(ip) in network for ip in drawn)
    assert "10.96.0.1" not in drawn
    assert ips.used == 10_000
    assert elapsed < 2.0
    for ip in drawn:
        ips.release(ip)
    assert ips.used == 0


def test_ip_in_range_and_allocated_listing() -> None:
    ips = IPAllocator("10.0.0.0/29")
    assert ips.in_range("10.0.0.6") and ips.in_range("10.0.0.1")
    assert not ips.in_range("10.0.0.7") and not ips.in_range("10.0.0.0")
    assert not ips.in_range("fd00::1")
    ips.allocate("10.0.0.3")
    ips.allocate("10.0.0.2")
    assert ips.allocated() == ["10.0.0.2", "10.0.0.3"]
    with pytest.raises(ValueError, match="invalid IP"):
        ips.allocate("not-an-ip")


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.1", "10.0.0.1"),
    ("010.000.000.001", "10.0.0.1"),
    ("256.0.0.1", None),
    ("10.0.0", None),
    ("::1", "::1"),
    ("::ffff:10.0.0.1", "10.0.0.1"),
    ("fe80::1%eth0", None),
    ("example.com", None),
    ("", None),
])
def test_parse_ip_is_go_sloppy(text: str, expected: str | None) -> None:
    parsed = parse_ip(text)
    assert (str(parsed) if parsed else None) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.0/8", "10.0.0.0/8"),
    ("10.1.2.3/8", "10.0.0.0/8"),
    ("010.0.0.0/08", "10.0.0.0/8"),
    ("10.0.0.0/33", None),
    ("10.0.0.0", None),
    ("2001:db8::/64", "2001:db8::/64"),
    ("2001:db8::/129", None),
    ("10.0.0.0/-1", None),
])
def test_parse_cidr_is_go_sloppy(text: str, expected: str | None) -> None:
    parsed = parse_cidr(text)
    assert (str(parsed) if parsed else None) == expected
