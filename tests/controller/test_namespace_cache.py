"""The lazily started Namespace cache over a stand-in API: nothing is listed before the first
question, the first question waits for the first list, labels come back read-only, only a
change of labels (or a Namespace appearing later) is reported, and a list that never succeeds
answers "unknown" and then fails loudly after the patience."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from lbctl.controller import namespace_cache
from lbctl.controller.namespace_cache import NamespaceCache
from lbctl.kube import ApiError, Kube
from providers.errors import TransientError
from tests.conftest import wait_for

pytestmark = pytest.mark.unit


def _ns(name: str, rv: str = "7", annotations: dict[str, str] | None = None,
        **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv, "annotations": annotations or {},
                         "labels": {"kubernetes.io/metadata.name": name, **labels}}}


class _Watch:
    def __init__(self, events: list[dict[str, Any]], go: threading.Event) -> None:
        self.events, self.go = events, go
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.go.wait(5)
        yield from self.events
        self.events = []
        self.closed.wait(5)

    def close(self) -> None:
        self.closed.set()


class _Kube:
    """Answers one list page and one watch (its events once `go` is set); or refuses."""

    def __init__(self, items: list[dict[str, Any]], events: list[dict[str, Any]],
                 refuse: bool = False) -> None:
        self.items, self.events, self.refuse = items, events, refuse
        self.lists: list[str] = []
        self.go = threading.Event()

    def list_page(self, resource: Any, **_kw: Any) -> dict[str, Any]:
        self.lists.append(resource.plural)
        if self.refuse:
            raise ApiError(403, "Forbidden", "namespaces is forbidden")
        return {"items": self.items, "metadata": {"resourceVersion": "7"}}

    def watch(self, _resource: Any, _rv: str, **_kw: Any) -> _Watch:
        watch = _Watch(self.events, self.go)
        self.events = []
        return watch


def _cache(kube: _Kube, changed: list[str]) -> NamespaceCache:
    fake: Any = kube
    real: Kube = fake
    return NamespaceCache(real, changed.append)


def test_labels_after_the_first_list_and_only_label_changes_reported() -> None:
    kube = _Kube([_ns("shop", foo="bar"), _ns("dev")], [
        {"type": "MODIFIED", "object": _ns("dev", "8", foo="bar")},
        {"type": "MODIFIED", "object": _ns("shop", "9", {"note": "x"}, foo="bar")},
        {"type": "ADDED", "object": _ns("late", "10", team="x")},
        {"type": "DELETED", "object": _ns("dev", "11", foo="bar")},
    ])
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
    cache = _cache(_Kube([], [], refuse=True), [])
    try:
        assert cache.labels("shop") is None and not cache.synced()
        monkeypatch.setattr(namespace_cache, "PATIENCE_SECONDS", 0.0)
        with pytest.raises(TransientError, match="list and watch on namespaces"):
            cache.labels("shop")
    finally:
        cache.stop()
