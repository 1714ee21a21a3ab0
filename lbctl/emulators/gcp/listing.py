"""List answers: filter, order, pages of `maxResults`, `nextPageToken`, aggregated lists by scope.

As GCE: `maxResults` 0-500 (0 or absent: 500; more: 400), items by name unless `orderBy` says
`creationTimestamp desc` (anything else: 400), no `items` key when nothing matched, a
`nextPageToken` while more remain. A page token belongs to its filter and order: reusing it
with another answers 400. Aggregated lists key their `items` by scope (`regions/R`, `zones/Z`,
`global`), every scope present, an empty one carrying GCE's `NO_RESULTS_ON_PAGE` warning.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection, Mapping
from itertools import groupby
from typing import Any

from . import filters
from .errors import invalid

MAX_RESULTS = 500


def page(items: list[dict[str, Any]], query: Mapping[str, str], fields: Collection[str],
         ) -> tuple[list[dict[str, Any]], str | None]:
    """The page of `items` (rendered resources) the query asks for, and the next token."""
    text = query.get("filter", "")
    keep = filters.parse(text, fields)
    order = query.get("orderBy", "")
    if order not in ("", "name", "creationTimestamp desc"):
        raise invalid("orderBy", order, "Supported: 'name', 'creationTimestamp desc'.")
    found = [item for item in items if keep(item)]
    if order == "creationTimestamp desc":
        found.sort(key=lambda i: (str(i.get("creationTimestamp", "")), str(i.get("name", ""))),
                   reverse=True)
    size = _max_results(query.get("maxResults", ""))
    digest = hashlib.sha256(f"{text}\0{order}".encode()).hexdigest()[:12]
    start = _offset(query.get("pageToken", ""), digest)
    end = start + size
    token = None
    if end < len(found):
        token = base64.urlsafe_b64encode(json.dumps({"o": end, "q": digest}).encode()).decode()
    return found[start:end], token


def answer(kind: str, link: str, items: list[dict[str, Any]], token: str | None
           ) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "id": link.partition("/compute/v1/")[2],
                            "selfLink": link}
    if items:
        body["items"] = items
    if token:
        body["nextPageToken"] = token
    return body


def aggregated(kind: str, link: str, collection: str, scopes: list[str],
               scoped: list[tuple[str, dict[str, Any]]], query: Mapping[str, str],
               fields: Collection[str]) -> dict[str, Any]:
    """`scoped`: (scope, rendered item) pairs; the answer's items keyed by every scope."""
    flat = [{**item, "__scope": scope} for scope, item in sorted(
        scoped, key=lambda pair: (pair[0], str(pair[1].get("name", ""))))]
    chosen, token = page(flat, query, fields)
    by_scope = {scope: [{k: v for k, v in i.items() if k != "__scope"} for i in group]
                for scope, group in groupby(chosen, key=lambda i: str(i["__scope"]))}
    items: dict[str, Any] = {}
    for scope in scopes:
        if by_scope.get(scope):
            items[scope] = {collection: by_scope[scope]}
        else:
            items[scope] = {"warning": {
                "code": "NO_RESULTS_ON_PAGE",
                "message": f"There are no results for scope '{scope}' on this page.",
                "data": [{"key": "scope", "value": scope}]}}
    body: dict[str, Any] = {"kind": kind, "id": link.partition("/compute/v1/")[2],
                            "items": items, "selfLink": link}
    if token:
        body["nextPageToken"] = token
    return body


def _max_results(value: str) -> int:
    if not value:
        return MAX_RESULTS
    if not value.isdigit():
        raise invalid("maxResults", value, "Expected an integer.")
    size = int(value)
    if size > MAX_RESULTS:
        raise invalid("maxResults", value, f"Must be less than or equal to {MAX_RESULTS}")
    return size or MAX_RESULTS


def _offset(token: str, digest: str) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        if data["q"] != digest or not isinstance(data["o"], int) or data["o"] < 0:
            raise ValueError(token)
        return int(data["o"])
    except (ValueError, KeyError, TypeError):
        raise invalid("pageToken", token, "The page token is invalid for this "
                                          "request.") from None
