"""bench/completeness.py: a bench run that did not complete what it measures gets no ratio and
no verdict, whichever side of the comparison fell short, and says what fell short."""

from __future__ import annotations

import pytest

from bench.completeness import (
    NO_RATIO,
    Judged,
    Tally,
    complete,
    ratio,
    ratio_text,
    shortfalls,
    verdict,
    wrk_errors,
)

pytestmark = pytest.mark.unit


def test_a_tally_is_complete_only_when_every_wanted_one_was_done() -> None:
    assert Tally("Services got an address", 500, 500).complete
    short = Tally("Services got an address", 500, 480)
    assert not short.complete
    assert str(short) == "INCOMPLETE: 480/500 Services got an address"
    assert not Tally("requests answered", 0).complete  # nothing measured is not complete


def test_add_counts_attempts_and_keeps_the_first_failure() -> None:
    t = Tally("requests answered", 0)
    t.add(True)
    t.add(False, "503")
    t.add(False, "timeout")
    assert (t.done, t.wanted, t.complete) == (1, 3, False)
    assert shortfalls([t]) == ["INCOMPLETE: 1/3 requests answered (503)"]


@pytest.mark.parametrize("mine_done,theirs_done", [(480, 500), (500, 480), (0, 0)])
def test_no_ratio_when_either_side_is_incomplete(mine_done: int, theirs_done: int) -> None:
    mine = Tally("requests answered", 500, mine_done)
    theirs = Tally("requests answered", 500, theirs_done)
    assert ratio(30_000.0, 20_000.0, mine, theirs) is None
    assert ratio_text(30_000.0, 20_000.0, mine, theirs) == NO_RATIO
    assert verdict(True, mine, theirs).startswith("NOT JUDGED")
    assert verdict(True, mine, theirs, yes="PASS", no="MISS") != "PASS"
    assert shortfalls([mine, theirs])


def test_a_complete_run_gets_its_ratio_and_verdict() -> None:
    mine, theirs = Tally("runs", 3, 3), Judged()
    assert ratio(30.0, 20.0, mine, theirs) == 1.5
    assert ratio_text(30.0, 20.0, mine, theirs) == "1.50x"
    assert verdict(True, mine, theirs) == "PASS"
    assert verdict(False, mine, yes="PASS", no="MISS") == "MISS"
    assert complete(mine, theirs, True)
    assert shortfalls([mine, theirs]) == []


def test_judged_and_bools_refuse_too() -> None:
    failed = Judged().failed("the tool did not run: haproxy is not installed")
    assert ratio(2.0, 1.0, failed) is None
    assert ratio(2.0, 1.0, False) is None
    assert verdict(True, complete=False) == "NOT JUDGED (the run did not complete)"
    assert shortfalls([failed, False]) == [
        "INCOMPLETE: the tool did not run: haproxy is not installed", "INCOMPLETE"]
    assert ratio(2.0, None) is None and ratio(2.0, 0.0) is None


def test_wrk_errors_name_the_unanswered_requests() -> None:
    clean = "  12345 requests in 3.00s, 1.2MB read\nRequests/sec:   4115.00\n"
    assert wrk_errors(clean) == ""
    bad = ("  Socket errors: connect 0, read 12, write 0, timeout 3\n"
           "  Non-2xx or 3xx responses: 7\nRequests/sec:   4115.00\n")
    assert wrk_errors(bad) == "socket errors connect 0, read 12, write 0, timeout 3; 7 non-2xx"
