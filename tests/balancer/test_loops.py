"""`loops`: which connections are our own coming back, decided by addresses the kernel reports.

Sockets on loopback: two connections are made to share one local address and port (the kernel
allows it when their destinations differ), so a client that happens to share its source with
one of our sockets to a target is told apart from that socket coming back.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from lbctl.balancer import loops


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.create_server(("127.0.107.1", 0))
    yield sock
    sock.close()


def _from(local: tuple[str, int], to: tuple[str, int]) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(local)
    sock.connect(to)
    return sock


def test_a_client_sharing_our_source_is_not_a_loop_but_our_own_socket_is(
        listener: socket.socket) -> None:
    vip = listener.getsockname()[:2]
    other = socket.create_server(("127.0.107.2", 0))
    ours = _from(("127.0.0.1", 0), other.getsockname()[:2])  # our socket to a target
    end = loops.track(ours, other.getsockname()[:2])
    assert end is not None
    try:
        client = _from(end, vip)  # a client on this host with the very same source
        accepted, peer = listener.accept()
        assert (peer[0], peer[1]) == end
        assert not loops.tcp_loop((peer[0], peer[1]), accepted)
        assert loops.came_back(end)  # UDP's test would say yes: TCP needs the destination
        accepted.close()
        client.close()
        # Our socket's target IS this listener (a loop the model missed): refused.
        loops.forget(end)
        mine = socket.create_connection(vip)
        end = loops.track(mine, vip)
        assert end is not None
        accepted, peer = listener.accept()
        assert loops.tcp_loop((peer[0], peer[1]), accepted)
        accepted.close()
        mine.close()
    finally:
        loops.forget(end)
        ours.close()
        other.close()
    assert not loops.came_back(end)
