"""A stand-in API server for one lazily started informer (`slice_cache`, `namespace_cache`): one
list page, then one watch that yields its events and stays open until closed; or a refusal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from lbctl.kube import ApiError, Kube


class StubWatch:
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


class StubKube:
    """Answers one list page and one watch with the given events (`gated`: only once `go` is
    set); or refuses every list (403). Records each list's resource and label selector."""

    def __init__(self, items: list[dict[str, Any]], events: list[dict[str, Any]],
                 refuse: bool = False, gated: bool = False) -> None:
        self.items, self.events, self.refuse = items, events, refuse
        self.lists: list[str] = []
        self.selectors: list[str | None] = []
        self.go = threading.Event()
        if not gated:
            self.go.set()

    def list_page(self, resource: Any, **kw: Any) -> dict[str, Any]:
        self.lists.append(resource.plural)
        self.selectors.append(kw.get("label_selector"))
        if self.refuse:
            raise ApiError(403, "Forbidden", f"{resource.plural} is forbidden")
        return {"items": self.items, "metadata": {"resourceVersion": "7"}}

    def watch(self, _resource: Any, _rv: str, **_kw: Any) -> StubWatch:
        watch = StubWatch(self.events, self.go)
        self.events = []
        return watch

    def as_kube(self) -> Kube:
        """Itself, typed as the client it stands in for."""
        fake: Any = self
        real: Kube = fake
        return real
