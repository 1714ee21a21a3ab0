"""`Coalescer`: many changes to one shared object folded into few guarded writes, with nothing
lost to a concurrent writer (412 -> re-read, re-apply), a bad change failing only its own
submitter, a failed write failing its whole batch, and no write when nothing changed.

The store is an in-memory object with ARM's etag rules (every write changes the etag; a write
or delete with a stale etag is refused), a latency per write, and a hook that lets another
writer slip in between a read and a write."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from providers.azure.coalesce import Body, Coalescer, PreconditionFailed
from providers.errors import TransientError


class FakeStore:
    def __init__(self, latency: float = 0.0) -> None:
        self.body: Body | None = None
        self.etag = 0
        self.latency = latency
        self.writes: list[Body | None] = []
        self.before_write: Callable[[], None] | None = None
        self.fail_next: Exception | None = None
        self._lock = threading.Lock()

    def read(self) -> tuple[Body | None, str | None]:
        with self._lock:
            return self.body, (None if self.body is None else f'W/"{self.etag}"')

    def _check(self, etag: str | None) -> None:
        current = None if self.body is None else f'W/"{self.etag}"'
        if etag != current:
            raise PreconditionFailed(f"etag {etag} is not {current}")

    def write(self, body: Body, etag: str | None) -> Body:
        if self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook()
        time.sleep(self.latency)
        with self._lock:
            if self.fail_next is not None:
                exc, self.fail_next = self.fail_next, None
                raise exc
            self._check(etag)
            self.body, self.etag = body, self.etag + 1
            self.writes.append(body)
            return {**body, "etag": self.etag}

    def delete(self, etag: str) -> None:
        with self._lock:
            self._check(etag)
            self.body, self.etag = None, self.etag + 1
            self.writes.append(None)

    def bump(self, key: str, value: Any) -> None:
        """Another writer: changes the object (and so its etag)."""
        with self._lock:
            self.body = {**(self.body or {}), key: value}
            self.etag += 1


def add(name: str) -> Callable[[Body | None], Body | None]:
    def change(body: Body | None) -> Body | None:
        frontends = dict((body or {}).get("frontends", {}))
        frontends[name] = {"port": 80}
        return {**(body or {}), "frontends": frontends}
    return change


def drop(name: str) -> Callable[[Body | None], Body | None]:
    def change(body: Body | None) -> Body | None:
        frontends = {k: v for k, v in (body or {}).get("frontends", {}).items() if k != name}
        return {**(body or {}), "frontends": frontends} if frontends else None
    return change


def test_a_wave_of_changes_costs_few_writes_and_loses_none() -> None:
    store = FakeStore(latency=0.02)
    writer = Coalescer(store, "lb", window=0.05)
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda i: writer.submit(f"s{i}", add(f"s{i}")), range(200)))
    assert store.body is not None and sorted(store.body["frontends"]) == sorted(
        f"s{i}" for i in range(200))
    assert all(r is not None for r in results)
    assert writer.stats.changes == 200
    assert len(store.writes) == writer.stats.writes <= 10, writer.stats  # not 200
    assert writer.stats.conflicts == 0


def test_nothing_to_change_reads_and_writes_nothing() -> None:
    store = FakeStore()
    writer = Coalescer(store, "lb", window=0)
    writer.submit("a", add("a"))
    assert writer.stats.writes == 1
    again = writer.submit("a", add("a"))  # the same state again: a read, no write
    assert (writer.stats.reads, writer.stats.writes) == (2, 1)
    assert again == store.body


def test_a_concurrent_writer_is_not_overwritten() -> None:
    store = FakeStore()
    writer = Coalescer(store, "lb", window=0)
    writer.submit("a", add("a"))
    store.before_write = lambda: store.bump("owner", "someone-else")  # between read and write
    writer.submit("b", add("b"))
    assert writer.stats.conflicts == 1  # the first write was refused ...
    assert store.body is not None and store.body["owner"] == "someone-else"  # ... theirs kept
    assert sorted(store.body["frontends"]) == ["a", "b"]  # ... and ours re-applied


def test_a_writer_that_never_stops_is_a_transient_error() -> None:
    store = FakeStore()
    writer = Coalescer(store, "lb", window=0, max_attempts=3)
    writer.submit("a", add("a"))

    def always() -> None:
        store.bump("n", store.etag)
        store.before_write = always

    store.before_write = always
    with pytest.raises(TransientError, match="changed under every one of 3 writes"):
        writer.submit("b", add("b"))
    assert writer.stats.conflicts == 3


def test_a_bad_change_fails_alone_a_failed_write_fails_the_batch() -> None:
    store = FakeStore(latency=0.01)
    writer = Coalescer(store, "lb", window=0.1)

    def bad(body: Body | None) -> Body | None:
        raise ValueError("frontend port out of range")

    with ThreadPoolExecutor(4) as pool:
        good = pool.submit(writer.submit, "good", add("good"))
        time.sleep(0.01)  # the two land in one window (the test passes either way)
        wrong = pool.submit(writer.submit, "bad", bad)
        assert good.result() is not None
        with pytest.raises(ValueError, match="out of range"):
            wrong.result()
    assert store.body is not None and list(store.body["frontends"]) == ["good"]

    store.fail_next = RuntimeError("503 from ARM")
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(writer.submit, k, add(k)) for k in ("x", "y")]
        for future in futures:
            with pytest.raises(RuntimeError, match="503"):
                future.result()
    writer.submit("z", add("z"))  # the writer goes on after a failure
    assert sorted(store.body["frontends"]) == ["good", "z"]


def test_the_last_change_deletes_and_an_absent_object_stays_absent() -> None:
    store = FakeStore()
    writer = Coalescer(store, "lb", window=0)
    writer.submit("a", add("a"))
    assert writer.submit("a", drop("a")) is None
    assert store.body is None and writer.stats.deletes == 1
    assert writer.submit("a", drop("a")) is None  # already absent: a read, no write
    assert (writer.stats.deletes, writer.stats.writes) == (1, 1)
