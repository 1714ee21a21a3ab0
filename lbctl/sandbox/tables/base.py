"""What a printer is: columns, how a row's cells are filled, and the apiserver's default table.

Kept apart from `table` (which registers the per-resource printers) so the printers in `core`,
`pods` and `workloads` import these types without an import circle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..openapi import spec as openapi
from ..storage.store import Obj
from .durations import parse_time

META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
INCLUDE_OBJECT = ("Metadata", "Object", "None")


@dataclass(frozen=True)
class Column:
    """One `TableColumnDefinition`; `doc` names the schema field whose description it shows."""

    name: str
    type: str = "string"
    doc: tuple[str, str] | str = ""
    priority: int = 0
    format: str = ""

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": describe(self.doc), "priority": self.priority}


def describe(doc: tuple[str, str] | str) -> str:
    """A column's description: literal text, or the description of (definition, field)."""
    if isinstance(doc, str):
        return doc
    definition, field = doc
    try:
        return str(openapi.definition(definition)["properties"][field].get("description", ""))
    except KeyError:
        return ""


NAME = Column("Name", format="name", doc=(META, "name"))
AGE = Column("Age", doc=(META, "creationTimestamp"))

Cells = Callable[[Obj], list[Any]]
Conditions = Callable[[Obj], list[dict[str, str]]]


@dataclass(frozen=True)
class Printer:
    """The columns of one resource and how to fill a row's cells from an object."""

    columns: tuple[Column, ...]
    cells: Cells
    conditions: Conditions | None = None
    adapt: Callable[[Obj], Obj] | None = None
    """Turns the served shape into the one the cells read (events.k8s.io -> core Event)."""


def _created_at(obj: Obj) -> list[Any]:
    stamp = parse_time(obj.get("metadata", {}).get("creationTimestamp"))
    shown = (stamp or datetime(1, 1, 1, tzinfo=UTC)).astimezone(UTC)
    return [obj["metadata"].get("name", ""), shown.strftime("%Y-%m-%dT%H:%M:%SZ")]


DEFAULT = Printer((NAME, Column("Created At", type="date", doc=(META, "creationTimestamp"))),
                  _created_at)
"""rest.NewDefaultTableConvertor: what the apiserver prints for types without printers."""

