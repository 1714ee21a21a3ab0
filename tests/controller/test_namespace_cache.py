"""The lazily started Namespace cache over a stand-in API: nothing is listed before the first
question, the first question waits for the first list, labels come back read-only, only a
change of labels (or a Namespace appearing later) is reported, and a list that never succeeds
answers "unknown" and then fails loudly after the patience."""

from __future__ import annotations

from typing import Any

import pytest

from lbctl.controller import namespace_cache
from lbctl.controller.namespace_cache import NamespaceCache
from providers.errors import TransientError
from tests.conftest import wait_for
from tests.controller.stub_api import StubKube

pytestmark = pytest.mark.unit


def _ns(name: str, rv: str = "7", annotations: dict[str, str] | None = None,
        **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv, "annotations": annotations or {},
                         "labels": {"kubernetes.io/metadata.name": name, **labels}}}


def _cache(kube: StubKube, changed: list[str]) -> NamespaceCache:
    return NamespaceCache(kube.as_kube(), changed.append)


def test_labels_after_the_first_list_and_only_label_changes_reported() -> None:
    kube = StubKube([_ns("shop", foo="bar"), _ns("dev")], [
        {"type": "MODIFIED", "object": _ns("dev", "8", foo="bar")},
        {"type": "MODIFIED", "object": _ns("shop", "9", {"note": "x"}, foo="bar")},
        {"type": "ADDED", "object": _ns("late", "10", team="x")},
        {"type": "DELETED", "object": _ns("dev", "11", foo="bar")},
    ], gated=True)
    changed: list[str] = []
    cache = _cache(kube, changed)
    assert cache.informer is None and kube.lists == [] and cache.synced() and len(cache) == 0
    try:
        labels = cache.labels("shop")  # asking starts it, and waits for the first list
        assert labels == {"kubernetes.io/metadata.name": "shop", "foo": "bar"}
        assert kube.lists == ["namespaces"] and cache.synced()
        with pytest.raises(TypeError):
            labels["foo"] = "baz"  # type: ignore[index]
        assert cache.labels("nope") is None
        assert changed == []  # the first list's adds are no change
        kube.go.set()
        wait_for(lambda: cache.labels("late") is not None and cache.labels("dev") is None, 5,
                 "the watch's events")
        assert changed == ["dev", "late"]  # an annotation is no label change; a delete neither
        cache.want()  # once started, stays the one informer
        assert kube.lists == ["namespaces"]
    finally:
        cache.stop()


def test_a_list_that_never_succeeds_is_unknown_then_fails_loudly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(namespace_cache, "FIRST_LIST_WAIT_SECONDS", 0.05)
    cache = _cache(StubKube([], [], refuse=True), [])
    try:
        assert cache.labels("shop") is None and not cache.synced()
        monkeypatch.setattr(namespace_cache, "PATIENCE_SECONDS", 0.0)
        with pytest.raises(TransientError, match="list and watch on namespaces"):
            cache.labels("shop")
    finally:
        cache.stop()
