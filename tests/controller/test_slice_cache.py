"""The lazily started EndpointSlice cache over a stand-in API: nothing is listed before
`want()`, slices are indexed by their Service (relabelled ones move), every change names its
Service, and a list that never succeeds turns into a loud error after the patience."""

from __future__ import annotations

from typing import Any

import pytest

from lbctl.controller import slice_cache
from lbctl.controller.slice_cache import SliceCache
from providers.errors import TransientError
from tests.conftest import wait_for
from tests.controller.stub_api import StubKube

pytestmark = pytest.mark.unit


def _slice(name: str, service: str, *ips: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": "7",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": [{"name": "", "port": 8080}],
            "endpoints": [{"addresses": [ip]} for ip in ips]}


def _cache(kube: StubKube, changed: list[str]) -> SliceCache:
    return SliceCache(kube.as_kube(), changed.append)


def test_indexed_by_service_and_every_change_names_it() -> None:
    kube = StubKube([_slice("a-1", "a", "10.0.0.1"), _slice("a-2", "a", "10.0.0.2"),
                     _slice("b-1", "b", "10.0.0.3")],
                    [{"type": "MODIFIED", "object": _slice("b-1", "a", "10.0.0.3")},
                     {"type": "DELETED", "object": _slice("a-2", "a", "10.0.0.2")}])
    changed: list[str] = []
    cache = _cache(kube, changed)
    assert cache.informer is None and kube.selectors == [] and cache.synced()
    assert cache.for_service("ns", "a") is None  # asking starts it
    try:
        wait_for(lambda: cache.informer is not None and cache.informer.has_synced(), 5,
                 "the first list")
        wait_for(lambda: sorted(s.name for s in cache.for_service("ns", "a") or []) == [
            "a-1", "b-1"], 5, "b-1 relabelled to a, a-2 deleted")
        assert cache.for_service("ns", "b") == []
        assert kube.selectors == ["kubernetes.io/service-name"]
        assert changed == ["ns/a", "ns/a", "ns/b", "ns/b", "ns/a", "ns/a"]
        cache.want()  # once started, stays the one informer
        assert len(kube.selectors) == 1
    finally:
        cache.stop()


def test_a_list_that_never_succeeds_fails_loudly_after_the_patience(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _cache(StubKube([], [], refuse=True), [])
    cache.want()
    try:
        assert cache.for_service("ns", "a") is None and not cache.synced()
        monkeypatch.setattr(slice_cache, "PATIENCE_SECONDS", 0.0)
        with pytest.raises(TransientError, match=r"endpointslices\.discovery\.k8s\.io"):
            cache.for_service("ns", "a")
    finally:
        cache.stop()
