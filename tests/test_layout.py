"""The tree explains itself: no import circle anywhere, and no long module without a reason.

import-linter's layers contract (`make lint`) keeps the packages in order; this test covers
every module, so a circle inside a package (two printers importing each other, a story and its
helper) fails too. Function-level imports count: a circle hidden in a function is still one.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]
LONG = 400
"""Lines past which a module's docstring must say why it is not split (`Not split: ...`)."""


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph.modules:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(
                        child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycles_finds_a_circle() -> None:
    """The detector itself: a graph with a circle and a chain gives exactly the circle."""
    graph = grimp.ImportGraph()
    for name in ("a", "b", "c", "d"):
        graph.add_module(name)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    graph.add_import(importer="c", imported="d")
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_circle_in_lbctl_or_providers() -> None:
    graph = grimp.build_graph("lbctl", "providers", cache_dir=None)
    assert len(graph.modules) > 200  # the whole tree was read
    assert "lbctl.cli.root" in graph.find_modules_directly_imported_by("lbctl.cli")
    assert cycles(graph) == []


def test_long_modules_say_why() -> None:
    long = []
    for package in ("lbctl", "providers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            if text.count("\n") > LONG and "Not split:" not in text.split('"""')[1]:
                long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert long == []
