"""Ages as kubectl shows them: apimachinery's `duration.HumanDuration`, and "age of a timestamp".

The AGE column of `kubectl get` is computed by the server (the printers' `translateTimestampSince`)
and printed by kubectl verbatim, so the sandbox must round and abbreviate exactly like Go does:
`45s`, `3m20s`, `15m`, `5h2m`, `2d3h`, `3y12d`.
"""

from __future__ import annotations

from datetime import UTC, datetime

UNKNOWN = "<unknown>"


def human_duration(seconds: float) -> str:
    """`duration.HumanDuration`: ~2-3 significant figures, for consumption by humans."""
    whole = int(seconds)  # Go's int(d.Seconds()) truncates toward zero
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 60 * 2:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp (`v1.Time` or `v1.MicroTime`) as an aware datetime, or None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def since(value: object, now: datetime | None = None) -> str:
    """`translateTimestampSince`: the age of a timestamp (text or datetime), `<unknown>` when
    unset."""
    stamp = parse_time(value)
    if stamp is None:
        return UNKNOWN
    return human_duration(((now or datetime.now(UTC)) - stamp).total_seconds())
