"""Cell formatting shared by the printers, as apimachinery and kube's printers spell it.

Label maps print as `labels.FormatLabels` (`a=1,b=2`, `<none>`), label selectors as
`metav1.FormatLabelSelector` (`app=web,tier in (a,b),!legacy`), container lists as
`layoutContainerCells`, and long lists as `listWithMoreString` (`a,b,c + 2 more...`).
"""

from __future__ import annotations

import ipaddress
from typing import Any

NONE = "<none>"


def format_labels(labels: Any) -> str:
    """`labels.FormatLabels`: sorted `k=v` pairs joined by commas, `<none>` when empty."""
    if not isinstance(labels, dict) or not labels:
        return NONE
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(selector: Any) -> str | None:
    """`LabelSelectorAsSelector(s).String()`; None where Go returns an error."""
    if not isinstance(selector, dict):
        return ""
    parts: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        parts.append((key, f"{key}={value}"))
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key", ""), expr.get("operator", "")
        values = sorted(set(expr.get("values") or []))
        if op == "In":
            parts.append((key, f"{key} in ({','.join(values)})"))
        elif op == "NotIn":
            parts.append((key, f"{key} notin ({','.join(values)})"))
        elif op == "Exists":
            parts.append((key, key))
        elif op == "DoesNotExist":
            parts.append((key, f"!{key}"))
        else:
            return None
    return ",".join(text for _, text in sorted(parts, key=lambda p: p[0]))


def format_label_selector(selector: Any) -> str:
    """`metav1.FormatLabelSelector`: `<none>` for an empty selector, `<error>` for a bad one."""
    text = selector_string(selector)
    if text is None:
        return "<error>"
    return text or NONE


def layout_containers(containers: Any) -> tuple[str, str]:
    """`layoutContainerCells`: container names and images, each comma-joined."""
    items = containers if isinstance(containers, list) else []
    names = ",".join(str(c.get("name", "")) for c in items)
    images = ",".join(str(c.get("image", "")) for c in items)
    return names, images


def list_with_more(items: list[str], total: int, limit: int = 3) -> str:
    """`listWithMoreString`: the first `limit` items, `+ N more...`, `<unset>` when empty."""
    text = ",".join(items[:limit])
    if total > limit:
        return f"{text} + {total - limit} more..."
    return text or "<unset>"


def join_host_port(host: str, port: Any) -> str:
    """Go's `net.JoinHostPort`: IPv6 hosts in brackets."""
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = ":" in host
    return f"[{host}]:{port}" if is_v6 else f"{host}:{port}"


def int_or_string(value: Any) -> str:
    """`intstr.IntOrString.String()`."""
    return str(value)
