"""What the IAM tests' code scans share: a provider package's syntax trees, every call with its
enclosing scopes (module, classes, functions), every function and class by name, and what each
call of a function passes for one of its parameters (to follow a name passed down)."""

from __future__ import annotations

import ast
from pathlib import Path

Scopes = tuple[ast.AST, ...]


class SourceTree:
    """The syntax trees of the `*.py` files in `source`."""

    def __init__(self, source: Path) -> None:
        self.calls: list[tuple[str, ast.Call, Scopes]] = []
        self.functions: dict[str, list[tuple[ast.FunctionDef, Scopes]]] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        self.files: dict[str, ast.Module] = {}
        for path in sorted(source.glob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            self.files[path.name] = tree
            self._visit(path.name, tree, (tree,))

    def _visit(self, file: str, node: ast.AST, scopes: Scopes) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scopes
            if isinstance(child, ast.FunctionDef):
                self.functions.setdefault(child.name, []).append((child, scopes))
            if isinstance(child, ast.ClassDef):
                self.classes[child.name] = child
            if isinstance(child, (ast.ClassDef, ast.FunctionDef)):
                inner = (*scopes, child)
            if isinstance(child, ast.Call):
                self.calls.append((file, child, scopes))
            self._visit(file, child, inner)

    def passed(self, callee: str, params: list[str], param: str) -> list[tuple[ast.expr, Scopes]]:
        """What every call of `callee` (a function or a class) passes for `param`."""
        out: list[tuple[ast.expr, Scopes]] = []
        index = params.index(param) - (1 if params and params[0] == "self" else 0)
        for _, call, where in self.calls:
            name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
            if name != callee:
                continue
            passed = next((k.value for k in call.keywords if k.arg == param), None)
            if passed is None and 0 <= index < len(call.args):
                passed = call.args[index]
            if passed is not None:
                out.append((passed, where))
        return out
