"""Flag parsers the command groups share, each failing with click's message naming the flag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

NEEDS_SANDBOX_EXTRA = ("lbctl {command} needs the `sandbox` extra (the embedded API server and "
                       "the cloud emulators): pip install 'lbctl[sandbox]' ({error})")


def import_or_explain(command: str, load: Callable[[], Any]) -> Any:
    """`load()` (a command's lazy import), or a ClickException naming the missing extra: the
    base install (the controller's image) carries no sandbox or emulator dependencies."""
    try:
        return load()
    except ImportError as exc:
        raise click.ClickException(NEEDS_SANDBOX_EXTRA.format(command=command,
                                                              error=exc)) from exc


def listen(value: str, flag: str = "--listen", *, default_host: str = "127.0.0.1",
           free_port: bool = True) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:80` for IPv6; with `free_port`, port 0 picks a free one) ->
    (host, port); an empty host is `default_host`."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not (0 if free_port else 1) <= int(port) <= 65535:
        hint = " (port 0 picks a free one)" if free_port else ""
        raise click.BadParameter(f"{value!r} is not HOST:PORT{hint}", param_hint=flag)
    return host.strip("[]") or default_host, int(port)
