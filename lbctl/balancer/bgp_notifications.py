"""BGP NOTIFICATIONs in words: what a peer objected to, for the daemon's status and events.

Why a module of its own: a table of RFC names, apart from the announcing logic (`bgp`) that
reports it.
"""

from __future__ import annotations

import re
from typing import Any


def notification(event: dict[str, Any]) -> str:
    body = event.get("notification")
    if isinstance(body, dict):
        code, sub = body.get("code"), body.get("subcode")
        text = body.get("message") or body.get("data") or ""
        return explain(f"({code},{sub}) {text}".strip())
    return str(body)


NOTIFICATIONS = {
    (1, 0): "Message Header Error", (2, 0): "OPEN Message Error",
    (2, 1): "OPEN Message Error: Unsupported Version Number",
    (2, 2): "OPEN Message Error: Bad Peer AS (myASN here and peerASN there must agree)",
    (2, 3): "OPEN Message Error: Bad BGP Identifier (routerID)",
    (2, 4): "OPEN Message Error: Unsupported Optional Parameter",
    (2, 6): "OPEN Message Error: Unacceptable Hold Time (holdTime)",
    (2, 7): "OPEN Message Error: Unsupported Capability",
    (3, 0): "UPDATE Message Error", (4, 0): "Hold Timer Expired",
    (5, 0): "Finite State Machine Error", (6, 0): "Cease",
    (6, 1): "Cease: Maximum Number of Prefixes Reached",
    (6, 2): "Cease: Administrative Shutdown", (6, 3): "Cease: Peer De-configured",
    (6, 4): "Cease: Administrative Reset", (6, 5): "Cease: Connection Rejected",
    (6, 6): "Cease: Other Configuration Change",
    (6, 7): "Cease: Connection Collision Resolution", (6, 8): "Cease: Out of Resources",
}
"""RFC 4271 section 4.5 and RFC 4486 names, so a status says what the peer objected to."""
CODES = re.compile(r"\((\d+), ?(\d+)\)")


def explain(text: str) -> str:
    """`notification received (2,2)` -> `... (2,2) OPEN Message Error: Bad Peer AS ...`."""
    match = CODES.search(text)
    if match is None:
        return text
    code, sub = int(match.group(1)), int(match.group(2))
    name = NOTIFICATIONS.get((code, sub)) or NOTIFICATIONS.get((code, 0), "unknown code")
    return f"{text}: {name}"
