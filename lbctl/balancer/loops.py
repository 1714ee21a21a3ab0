"""The runtime guard against forwarding loops the model cannot see.

The store refuses targets that are one of the daemon's own frontends (422), but a loop can also
run through what the model never sees: a DNAT rule or a port forward on the host that sends a
target's address back to a VIP. Then each proxied connection opens another one to itself until
the file descriptors run out. The guard: every socket this process opens towards a target
records its local (address, port) and the target here, and a connection or datagram that
arrives FROM one of those ends is checked: our own traffic coming back is refused and counted
(`refused{reason="loop"}`), which breaks the loop at its first turn. A TCP connect's local end
is known as soon as `connect()` is called (the kernel picks the port before the SYN leaves), so
the check cannot lose a race.

TCP needs one more test, because the kernel may give two connections the same local address
and port when they go to different destinations: a client on this host could share its source
with one of our sockets to a target. So a TCP connection from one of our ends is a loop only
when it was addressed to that socket's target: its local address is the target (no NAT), or
conntrack's original destination (`SO_ORIGINAL_DST`) is. UDP sockets never share a local port
with another unconnected-then-connected socket, so the source alone decides. A loop through
another host that rewrites the destination but keeps our source is not told apart from such a
client and is not caught here (forwards to another host are masqueraded in practice).

Per process: with `--workers N`, a loop that crosses from one worker to another is caught
when it comes back to the worker that opened it (each turn has a 1/N chance of landing
there), so it is cut within a few turns instead of at the first.
"""

from __future__ import annotations

import logging
import socket
import struct

log = logging.getLogger(__name__)

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h (and IP6T_SO_ORIGINAL_DST, linux/netfilter_ipv6)
Endpoint = tuple[str, int]

_ends: dict[Endpoint, Endpoint] = {}
"""Local end of each of our sockets towards a target -> that target."""
_refused = 0


def track(sock: socket.socket, target: Endpoint) -> Endpoint | None:
    """Record the local end of a socket just connected (or connecting) to `target`."""
    try:
        name = sock.getsockname()
    except OSError:
        return None
    end = (str(name[0]), int(name[1]))
    _ends[end] = target
    return end


def forget(end: Endpoint | None) -> None:
    if end is not None:
        _ends.pop(end, None)


def came_back(peer: Endpoint) -> bool:
    """UDP: whether a datagram's source is one of this process's own sockets to a target."""
    return peer in _ends


def tcp_loop(peer: Endpoint, conn: socket.socket) -> bool:
    """TCP: whether an accepted connection is one of our own connections to a target."""
    target = _ends.get(peer)
    if target is None:
        return False
    try:
        local = conn.getsockname()
    except OSError:
        return False
    return (str(local[0]), int(local[1])) == target or original_dst(conn) == target


def original_dst(conn: socket.socket) -> Endpoint | None:
    """Where a NATed connection was first addressed (None without conntrack NAT)."""
    try:
        if conn.family == socket.AF_INET6:
            raw = conn.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
            port = struct.unpack_from("!H", raw, 2)[0]
            return socket.inet_ntop(socket.AF_INET6, raw[8:24]), int(port)
        raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        port = struct.unpack_from("!H", raw, 2)[0]
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), int(port)
    except OSError:
        return None


def refused(where: str, peer: tuple[str, int]) -> None:
    """Log a refused loop: the first, then every 1,000th (a loop comes back fast)."""
    global _refused  # noqa: PLW0603 - one counter per process, like the set
    _refused += 1
    if _refused == 1 or _refused % 1000 == 0:
        log.warning("forwarding loop refused on %s: %s:%d is this daemon's own connection to "
                    "a target (a NAT rule that leads back to a VIP?); "
                    "%d refused so far", where, peer[0], peer[1], _refused)
