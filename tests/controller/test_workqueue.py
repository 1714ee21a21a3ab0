"""The work queue's guarantees: order, dedupe, per-key serialisation, backoff, delays, shutdown."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from lbctl.controller.workqueue import WorkQueue

pytestmark = pytest.mark.unit


def _drain(q: WorkQueue[str]) -> list[str]:
    out: list[str] = []
    while (key := q.get(timeout=0)) is not None:
        out.append(key)
        q.done(key)
    return out


def _wait_idle(q: WorkQueue[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while q.depth() or q.in_flight() or q.delayed():
        assert time.monotonic() < deadline, "the queue never went idle"
        time.sleep(0.01)


def test_keys_come_out_in_the_order_they_were_added() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "c", "d"):
        q.add(key)
    assert _drain(q) == ["a", "b", "c", "d"]


def test_a_key_queued_twice_is_processed_once_in_its_first_place() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "a", "c", "a", "b"):
        q.add(key)
    assert q.depth() == 3
    assert _drain(q) == ["a", "b", "c"]


def test_a_key_re_added_while_processing_waits_and_runs_again_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get(timeout=0) == "a"
    q.add("a")
    q.add("a")
    assert q.depth() == 0, "never handed to a second worker while in flight"
    assert q.get(timeout=0) is None
    q.done("a")
    assert q.depth() == 1
    assert _drain(q) == ["a"]


def test_eight_workers_never_process_one_key_at_once_and_never_lose_an_add() -> None:
    q: WorkQueue[str] = WorkQueue("serial")
    keys = [f"ns/svc-{i}" for i in range(10)]
    lock = threading.Lock()
    version: Counter[str] = Counter()   # bumped before every add: the "change" to reconcile
    seen: dict[str, int] = {}          # the version a finished run started from
    active: Counter[str] = Counter()
    overlaps: list[str] = []
    runs = 0

    def process(key: str) -> None:
        nonlocal runs
        with lock:
            active[key] += 1
            if active[key] > 1:
                overlaps.append(key)
            start = version[key]
            runs += 1
        time.sleep(random.uniform(0, 0.002))  # noqa: S311
        with lock:
            active[key] -= 1
            seen[key] = start

    def adder(seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311
        for _ in range(500):
            key = rng.choice(keys)
            with lock:
                version[key] += 1
            q.add(key)
            if rng.random() < 0.1:
                time.sleep(0.0005)

    q.start(process, workers=8)
    adders = [threading.Thread(target=adder, args=(i,)) for i in range(4)]
    for thread in adders:
        thread.start()
    for thread in adders:
        thread.join()
    _wait_idle(q)
    assert q.shutdown(timeout=5)
    assert overlaps == []
    assert seen == dict(version), "every key's last run saw its last change"
    assert runs < sum(version.values()), "queued duplicates were folded together"


def test_backoff_doubles_from_5s_to_a_300s_ceiling_with_jitter_and_forget_resets() -> None:
    q: WorkQueue[str] = WorkQueue(rng=random.Random(7))  # noqa: S311
    nominal = [5, 10, 20, 40, 80, 160, 300, 300, 300]
    delays = [q.backoff("a") for _ in nominal]
    for got, want in zip(delays, nominal, strict=True):
        assert want * 0.9 <= got <= want * 1.1
    assert len({round(d, 6) for d in delays[-3:]}) == 3, "jittered, not lockstep"
    assert q.num_requeues("a") == len(nominal)
    assert 4.5 <= q.backoff("b") <= 5.5, "per key"
    q.forget("a")
    assert q.num_requeues("a") == 0
    assert 4.5 <= q.backoff("a") <= 5.5


def test_add_rate_limited_adds_after_the_backoff_delay() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.2, max_delay=1.0)
    start = time.monotonic()
    delay = q.add_rate_limited("a")
    assert 0.18 <= delay <= 0.22
    assert q.depth() == 0 and q.delayed() == 1
    assert q.get(timeout=10) == "a"
    assert time.monotonic() - start >= delay - 0.01
    q.done("a")
    assert 0.36 <= q.add_rate_limited("a") <= 0.44
    q.shutdown()


def test_add_after_waits_and_the_earliest_pending_time_wins() -> None:
    q: WorkQueue[str] = WorkQueue()
    start = time.monotonic()
    q.add_after("late", 0.3)
    q.add_after("soon", 30)
    q.add_after("soon", 0.1)     # earlier: replaces
    q.add_after("late", 30)      # later: ignored
    first = q.get(timeout=10)
    t_first = time.monotonic() - start
    q.done("soon")
    second = q.get(timeout=10)
    t_second = time.monotonic() - start
    assert (first, second) == ("soon", "late")
    assert 0.09 <= t_first < 3 and 0.29 <= t_second < 3  # generous: only a safety net
    q.done("late")
    assert q.delayed() == 0
    q.add_after("now", 0)
    assert q.depth() == 1
    q.shutdown()


def test_a_failing_process_is_requeued_with_backoff() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.05, max_delay=0.1)
    calls: list[float] = []
    done = threading.Event()

    def process(key: str) -> None:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise RuntimeError("cloud said no")
        q.forget(key)
        done.set()

    q.start(process, workers=2)
    q.add("a")
    assert done.wait(10)
    assert len(calls) == 3 and calls[1] - calls[0] >= 0.04
    assert q.num_requeues("a") == 0
    q.shutdown()


def test_shutdown_lets_in_flight_keys_finish_and_drops_the_rest() -> None:
    q: WorkQueue[str] = WorkQueue()
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def process(key: str) -> None:
        if key == "slow":
            started.set()
            release.wait(10)
        finished.append(key)

    q.add("slow")
    q.start(process, workers=1)
    assert started.wait(5)
    q.add("queued")
    q.add_after("delayed", 0.05)
    result: list[bool] = []
    stopper = threading.Thread(target=lambda: result.append(q.shutdown(timeout=10)))
    stopper.start()
    time.sleep(0.2)
    assert stopper.is_alive(), "shutdown waits for the key in flight"
    q.add("after-shutdown")
    release.set()
    stopper.join(10)
    assert result == [True]
    assert finished == ["slow"]
    assert q.shutting_down and q.get(timeout=0) is None
    assert q.depth() == 0 and q.delayed() == 0


def test_shutdown_with_a_timeout_reports_work_still_in_flight() -> None:
    q: WorkQueue[str] = WorkQueue()
    release = threading.Event()

    def stuck(_key: str) -> None:
        release.wait(10)

    q.start(stuck, workers=1)
    q.add("stuck")
    deadline = time.monotonic() + 5
    while q.in_flight() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert q.shutdown(timeout=0.1) is False
    release.set()
    assert q.shutdown(timeout=5) is True
