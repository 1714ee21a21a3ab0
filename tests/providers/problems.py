"""What the providers' settings and annotation tests share: a list of (path, message) problems
that must hold exactly one, at the path, saying the words."""

from __future__ import annotations

from collections.abc import Sequence


def assert_one_problem(found: Sequence[tuple[str, str]], path: str, words: str) -> None:
    """`found` is exactly one problem, at `path`, its message containing `words`."""
    assert len(found) == 1, found
    assert found[0][0] == path and words in found[0][1], found
