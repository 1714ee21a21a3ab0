"""List and watch: selectors, resourceVersion semantics, pagination and watch start-up.

A paginated list is a consistent snapshot: every page of one list shows the objects as they
were at the first page's resourceVersion, which the `continue` token carries, or the client gets
410 Expired once that version has been compacted, exactly as with kube-apiserver and etcd.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Callable

import orjson

from .. import errors
from .registry import Registry, list_object
from .resources import Resource
from .selectors import field_set, parse_field_selector, parse_label_selector, supported_fields
from .store import Key, Obj
from .watch import INITIAL_EVENTS_END, Watcher

CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list.")


def predicate(res: Resource, label: str, field: str) -> Callable[[Obj], bool]:
    """One function deciding whether an object matches the request's selectors."""
    labels = parse_label_selector(label) if label else None
    fields = parse_field_selector(field, supported_fields(res.key)) if field else None
    if labels is None and fields is None:
        return lambda _obj: True

    def matches(obj: Obj) -> bool:
        if labels is not None and not labels.matches(obj["metadata"].get("labels") or {}):
            return False
        return fields is None or fields.matches(field_set(res.key, obj))

    return matches


def _encode_continue(rv: int, key: Key) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": f"{key[0]}/{key[1]}\x00"})
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str) -> tuple[int, Key]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        ns, _, name = data["start"].rstrip("\x00").partition("/")
        return int(data["rv"]), (ns, name)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from exc


def _parse_rv(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise errors.bad_request(f'invalid resource version "{text}"') from exc
    if value < 0:
        raise errors.bad_request(f'invalid resource version "{text}"')
    return value


def list_objects(reg: Registry, res: Resource, ns: str | None, *, label: str = "",
                 field: str = "", limit: int = 0, cont: str = "", rv: str = "",
                 rv_match: str = "") -> Obj:
    store = reg.store
    matches = predicate(res, label, field)
    start: Key | None = None
    if cont:
        if rv:
            raise errors.bad_request("specifying resource version is not allowed when using "
                                     "continue")
        at, start = _decode_continue(cont)
    elif rv and rv_match == "Exact":
        at = _parse_rv(rv)
    else:
        if rv:
            wanted = _parse_rv(rv)
            if wanted > store.rv:
                raise errors.ApiError(504, "Timeout", f"Too large resource version: {wanted}, "
                                      f"current: {store.rv}",
                                      {"causes": [{"reason": "ResourceVersionTooLarge",
                                                   "message": "Too large resource version"}],
                                       "retryAfterSeconds": 1})
        at = store.rv
    if at == store.rv:
        pairs = store.items(res.storage_key, ns)
    else:
        snap = store.snapshot(res.storage_key, at)
        if snap is None:
            if cont:
                raise errors.gone(CONTINUE_EXPIRED)
            raise errors.gone(f"too old resource version: {at} ({store.compacted_rv})")
        pairs = sorted((k, o) for k, o in snap.items() if ns is None or k[0] == ns)
    if start is not None:
        pairs = pairs[bisect.bisect_right(pairs, start, key=lambda pair: pair[0]):]
    picked: list[Obj] = []
    last: Key | None = None
    more = False
    for k, obj in pairs:
        if not matches(obj):
            continue
        if limit and len(picked) == limit:
            more = True
            break
        picked.append(reg.outward(res, obj))
        last = k
    token = _encode_continue(at, last) if more and last is not None else ""
    remaining = None
    if more and not label and not field and last is not None:
        remaining = len(pairs) - bisect.bisect_right(pairs, last, key=lambda pair: pair[0])
    return list_object(res, picked, at, token, remaining)


def open_watch(reg: Registry, res: Resource, ns: str | None, *, label: str = "",
               field: str = "", rv: str = "", send_initial: bool = False) -> Watcher:
    """Start a watch: initial state or replay from `rv`, then live changes, with no gap.

    Raises ApiError 410 when `rv` is older than the log keeps (sent as an ERROR event).
    """
    store = reg.store
    watcher = Watcher(res.storage_key, ns, predicate(res, label, field))
    if rv in ("", "0") or send_initial:
        for _, obj in store.items(res.storage_key, ns):
            watcher.initial(obj)
        since = store.rv
        if send_initial:
            watcher.queue.put_nowait((INITIAL_EVENTS_END, {}, None))
    else:
        since = _parse_rv(rv)
    changes = store.changes_since(res.storage_key, since)
    if changes is None:
        raise errors.gone(f"too old resource version: {since} ({store.compacted_rv})")
    for change in changes:
        watcher.offer(change)
    store.subscribe(res.storage_key, watcher.offer)
    return watcher
