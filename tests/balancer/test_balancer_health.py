"""The balancer's active health checker against real loopback sockets: thresholds counted in
probes, HTTP status semantics (kube-proxy's 200/503), passive ejection, de-duplication across
owners, bounded concurrency, and no task left behind — under asyncio's loop and uvloop."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from lbctl.balancer.health import HealthChecker, TargetHealth, TargetKey
from lbctl.balancer.model import HealthCheckConfig

pytestmark = pytest.mark.integration

LOOPS = ["asyncio", "uvloop"]
Main = Callable[[], Coroutine[Any, Any, None]]


def run(loop: str, main: Main) -> None:
    if loop == "uvloop":
        uvloop.run(main())
    else:
        asyncio.run(main())


def check(**kw: Any) -> HealthCheckConfig:
    base: dict[str, Any] = {"interval_seconds": 0.05, "timeout_seconds": 1.0,
                            "healthy_threshold": 2, "unhealthy_threshold": 2}
    return HealthCheckConfig(**(base | kw))


def free_port(host: str) -> int:
    """A port nothing listens on (bound then released; the 127.0.103.x address is ours)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def until(cond: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class Listener:
    """A TCP or tiny HTTP server counting connections; `status` is the HTTP answer."""

    def __init__(self, host: str, *, http: bool = False, port: int = 0) -> None:
        self.host, self.port, self.http = host, port, http
        self.status = 200
        self.hold = 0.0
        self.answer = True
        self.accepted = self.open_now = self.max_open = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> Listener:
        self.server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        try:
            if self.http:
                self.requests.append(await reader.readuntil(b"\r\n\r\n"))
                if self.hold:
                    await asyncio.sleep(self.hold)
                if not self.answer:
                    return
                writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 2\r\n"
                             "Connection: close\r\n\r\n{}".encode())
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a cancelled handler is the test ending: keep 3.11's streams callback quiet
        finally:
            self.open_now -= 1
            writer.close()


class Events:
    """on_change recorder keeping the status snapshot seen at each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[TargetKey, bool, str, TargetHealth]] = []
        self.checker: HealthChecker | None = None

    def __call__(self, key: TargetKey, up: bool, reason: str) -> None:
        assert self.checker is not None
        self.calls.append((key, up, reason, self.checker.status()[key]))

    def make(self, **kw: Any) -> HealthChecker:
        self.checker = HealthChecker(self, **kw)
        return self.checker

    def transitions(self) -> list[tuple[bool, str]]:
        return [(up, reason) for _, up, reason, _ in self.calls]


@pytest.mark.parametrize("loop", LOOPS)
def test_tcp_down_after_unhealthy_threshold_and_back(loop: str) -> None:
    async def main() -> None:
        host = "127.0.103.1"
        srv = await Listener(host).start()
        key = (host, srv.port)
        events = Events()
        async with events.make() as hc:
            hc.watch(key, check(unhealthy_threshold=3, healthy_threshold=2), owner="lb1")
            await until(lambda: srv.accepted >= 3)
            assert events.calls == []
            assert hc.status()[key].up and hc.status()[key].failures == 0

            await srv.stop()
            await until(lambda: len(events.calls) == 1)
            _, up, reason, seen = events.calls[0]
            assert (up, reason) == (False, f"TCP connect to {host}:{srv.port} refused")
            assert (seen.failures, seen.consecutive_failures) == (3, 3)

            await srv.start()
            await until(lambda: len(events.calls) == 2)
            _, up, reason, seen = events.calls[1]
            assert (up, reason) == (True, "2 checks passed")
            assert seen.consecutive_successes == 2 and seen.failures >= 3
            await until(lambda: srv.accepted >= 2)

            hc.unwatch(key, "lb1")
            await asyncio.sleep(0.05)
            # Every successful probe was one accepted connection, no more.
            assert hc.probes_total - hc.probe_failures_total == srv.accepted
            assert hc.transitions_total == 2 and hc.ejections_total == 0
        await srv.stop()

    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_http_check_follows_200_503_200(loop: str) -> None:
    async def main() -> None:
        host = "127.0.103.2"
        srv = await Listener(host, http=True).start()
        key = (host, free_port(host))  # the data port is not what an HTTP check probes
        events = Events()
        async with events.make() as hc:
            hc.watch(key, check(type="http", port=srv.port), owner="lb1")
            await until(lambda: len(srv.requests) >= 2)
            assert events.calls == []
            head = srv.requests[0]
            assert head.startswith(b"GET /healthz HTTP/1.1\r\n")
            assert f"Host: {host}:{srv.port}\r\n".encode() in head
            assert b"Connection: close\r\n" in head

            srv.status = 503
            await until(lambda: len(events.calls) == 1)
            assert events.transitions() == [
                (False, f"HTTP /healthz on {host}:{srv.port} answered 503")]
            assert events.calls[0][3].consecutive_failures == 2

            srv.status = 200
            await until(lambda: len(events.calls) == 2)
            assert events.transitions()[1] == (True, "2 checks passed")
            assert events.calls[1][3].consecutive_successes == 2
        await srv.stop()

    run(loop, main)


def test_http_timeout_and_garbage_are_failures() -> None:
    async def main() -> None:
        host = "127.0.103.3"
        slow = await Listener(host, http=True).start()
        slow.hold = 2.0
        events = Events()
        async with events.make() as hc:
            key = (host, free_port(host))
            hc.watch(key, check(type="http", port=slow.port, timeout_seconds=0.1,
                                unhealthy_threshold=1), owner="lb1")
            await until(lambda: len(events.calls) == 1)
            assert events.transitions() == [
                (False, f"HTTP /healthz on {host}:{slow.port} timed out after 0.1s")]

            raw = await Listener(host, http=True).start()
            raw.answer = False  # reads the request, then closes without answering
            key2 = (host, free_port(host))
            hc.watch(key2, check(type="http", port=raw.port, path="/x",
                                 unhealthy_threshold=1), owner="lb1")
            await until(lambda: len(events.calls) == 2)
            assert events.calls[1][0] == key2
            assert events.calls[1][2] == (f"HTTP /x on {host}:{raw.port} closed the connection "
                                          "without answering")
        await slow.stop()
        await raw.stop()

    run("asyncio", main)


@pytest.mark.parametrize("loop", LOOPS)
def test_passive_failure_ejects_at_once_and_needs_active_recovery(loop: str) -> None:
    async def main() -> None:
        host = "127.0.103.4"
        srv = await Listener(host).start()
        key = (host, srv.port)
        events = Events()
        async with events.make() as hc:
            hc.watch(key, check(healthy_threshold=3), owner="lb1")
            await until(lambda: hc.status()[key].probes >= 2)
            why = f"connection to {host}:{srv.port} failed (passive)"
            hc.report_failure(key, why)
            probed = srv.accepted  # every probe up to now was started before the failure
            assert events.transitions() == [(False, f"ejected: {why}")]  # synchronously
            assert not hc.is_up(key) and hc.ejections_total == 1
            hc.report_failure(key, why)  # already out: no second ejection
            assert hc.ejections_total == 1 and len(events.calls) == 1

            await until(lambda: len(events.calls) == 2)
            assert events.transitions()[1] == (True, "3 checks passed")
            assert srv.accepted >= probed + 3  # three probes started after the failure
            assert hc.is_up(key)
        await srv.stop()

    run(loop, main)


def test_ejection_reprobes_immediately() -> None:
    async def main() -> None:
        host = "127.0.103.5"
        srv = await Listener(host).start()
        key = (host, srv.port)
        events = Events()
        async with events.make() as hc:
            hc.watch(key, check(interval_seconds=3.0, healthy_threshold=1), owner="lb1")
            await until(lambda: srv.accepted == 1, within=1.0)  # first probe within 10%
            ejected = time.monotonic()
            hc.report_failure(key, "reset by peer")
            await until(lambda: len(events.calls) == 2, within=2.0)
            assert time.monotonic() - ejected < 1.0  # not the 3 s interval
            assert events.transitions() == [(False, "ejected: reset by peer"),
                                            (True, "1 check passed")]
        await srv.stop()

    run("asyncio", main)


@pytest.mark.parametrize("loop", LOOPS)
def test_owners_share_one_probe_stream(loop: str) -> None:
    async def main() -> None:
        host = "127.0.103.6"
        srv = await Listener(host).start()
        key = (host, srv.port)
        events = Events()
        async with events.make() as hc:
            hc.watch(key, check(), owner="lb1")
            hc.watch(key, check(), owner="lb2")
            hc.watch(key, check(port=srv.port), owner="lb3")  # same effective port
            assert hc.probe_streams == 1
            assert hc.status()[key].owners == ("lb1", "lb2", "lb3")
            await until(lambda: srv.accepted >= 1)
            before = srv.accepted
            await asyncio.sleep(0.5)
            window = srv.accepted - before
            assert 3 <= window <= 0.5 / 0.05 + 3  # three owners would be ~30

            hc.unwatch(key, "lb1")
            hc.unwatch(key, "lb2")
            assert hc.probe_streams == 1
            before = srv.accepted
            await asyncio.sleep(0.2)
            assert srv.accepted > before
            hc.unwatch(key, "lb3")
            assert hc.probe_streams == 0 and hc.status() == {}
            await asyncio.sleep(0.05)
            before = srv.accepted
            await asyncio.sleep(0.2)
            assert srv.accepted == before
            assert asyncio.all_tasks() - {asyncio.current_task()} <= _server_tasks()
        await srv.stop()
        assert events.calls == []

    run(loop, main)


def _server_tasks() -> set[asyncio.Task[Any]]:
    """Connection handlers of the test's own servers (not the checker's)."""
    return {t for t in asyncio.all_tasks() if not t.get_name().startswith("health")}


def test_different_checks_on_one_endpoint_are_all_required() -> None:
    async def main() -> None:
        host = "127.0.103.7"
        data = await Listener(host).start()
        healthz = await Listener(host, http=True).start()
        healthz.status = 503
        key = (host, data.port)
        events = Events()
        async with events.make() as hc:
            hc.watch(key, check(), owner="lb1")
            hc.watch(key, check(type="http", port=healthz.port), owner="lb2")
            assert hc.probe_streams == 2
            await until(lambda: len(events.calls) == 1)
            assert events.transitions() == [
                (False, f"HTTP /healthz on {host}:{healthz.port} answered 503")]
            hc.unwatch(key, "lb2")  # the failing check goes away: the TCP one alone decides
            assert events.transitions()[1] == (
                True, f"no longer checked: HTTP /healthz on {host}:{healthz.port}")
            assert hc.probe_streams == 1
        await data.stop()
        await healthz.stop()

    run("asyncio", main)


def test_changing_a_check_keeps_the_state() -> None:
    async def main() -> None:
        host = "127.0.103.8"
        key = (host, free_port(host))
        events = Events()
        async with events.make() as hc:
            hc.watch(key, check(unhealthy_threshold=1), owner="lb1")
            await until(lambda: len(events.calls) == 1)
            hc.watch(key, check(unhealthy_threshold=1, interval_seconds=0.07), owner="lb1")
            assert hc.probe_streams == 1
            hc.watch(key, check(type="tcp", port=free_port(host)), owner="lb1")  # new stream
            assert hc.probe_streams == 1 and not hc.is_up(key)
            await asyncio.sleep(0.2)
            assert len(events.calls) == 1  # no flap through the change
            hc.watch(key, check(type="none"), owner="lb1")
            assert hc.probe_streams == 0 and hc.is_up(key)
            assert events.calls[-1][1] is True

    run("asyncio", main)


def test_set_owner_targets_watches_and_unwatches() -> None:
    async def main() -> None:
        host = "127.0.103.9"
        srv = await Listener(host).start()
        k1, k2 = (host, srv.port), (host, free_port(host))
        events = Events()
        async with events.make() as hc:
            hc.set_owner_targets("lb1", [(k1, check()), (k2, check())])
            hc.set_owner_targets("lb2", [(k1, check())])
            assert set(hc.status()) == {k1, k2} and hc.probe_streams == 2
            hc.set_owner_targets("lb1", [(k1, check())])
            assert set(hc.status()) == {k1} and hc.status()[k1].owners == ("lb1", "lb2")
            hc.set_owner_targets("lb1", [])
            hc.set_owner_targets("lb2", [])
            assert hc.status() == {} and hc.probe_streams == 0
        await srv.stop()

    run("asyncio", main)


def test_type_none_is_always_up_and_never_probed() -> None:
    async def main() -> None:
        host = "127.0.103.10"
        key = (host, free_port(host))  # nothing listens: a probe would fail
        events = Events()
        async with events.make() as hc:
            hc.watch(key, check(type="none"), owner="lb1")
            await asyncio.sleep(0.2)
            hc.report_failure(key, "ignored")
            status = hc.status()[key]
            assert status.up and status.probes == 0 and hc.probe_streams == 0
            assert events.calls == [] and hc.probes_total == 0
            assert hc.is_up(("127.0.103.99", 1))  # unknown endpoints count as up

    run("asyncio", main)


def test_probes_are_bounded_and_first_probes_prompt() -> None:
    async def main() -> None:
        host = "127.0.103.11"
        srv = await Listener(host, http=True).start()
        srv.hold = 0.03
        events = Events()
        async with events.make(max_concurrency=2) as hc:
            keys = [(host, 40000 + i) for i in range(8)]
            for key in keys:
                hc.watch(key, check(type="http", port=srv.port), owner="lb1")
            await until(lambda: len(srv.requests) >= 24)
            assert srv.max_open <= 2
            assert events.calls == []

        srv.hold = 0.0
        async with events.make() as hc:
            started = time.monotonic()
            for i in range(50):
                hc.watch((host, 41000 + i), check(type="tcp", port=srv.port,
                                                  interval_seconds=2.0), owner="lb1")
            await until(lambda: all(h.probes for h in hc.status().values()), within=1.5)
            assert time.monotonic() - started < 0.2 + 0.5  # 10% of 2 s, plus slack
        await srv.stop()

    run("asyncio", main)


@pytest.mark.parametrize("loop", LOOPS)
def test_close_leaves_no_tasks(loop: str) -> None:
    async def main() -> None:
        host = "127.0.103.12"
        srv = await Listener(host, http=True).start()
        srv.hold = 5.0  # probes in flight when close() runs
        hc = HealthChecker(lambda *_: None)
        for i in range(20):  # a path each: 20 probes (one path would be one shared probe)
            hc.watch((host, 42000 + i), check(type="http", port=srv.port, path=f"/hz{i}"),
                     owner="lb1")
            hc.watch((host, free_port(host)), check(), owner="lb2")
        await until(lambda: srv.open_now >= 20)
        await hc.close()
        assert asyncio.all_tasks() - {asyncio.current_task()} <= _server_tasks()
        assert not any(t.get_name().startswith("health") for t in asyncio.all_tasks())
        with pytest.raises(RuntimeError, match="closed"):
            hc.watch((host, 1), check(), owner="lb1")
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()
        await asyncio.sleep(0.01)
        await srv.stop()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_targets_of_one_node_share_its_node_check_but_not_their_ejections(loop: str) -> None:
    """A check with a port of its own (kube-proxy's /healthz) probes the node once for every
    target on it; a passive failure of one target takes out that target alone."""

    async def main() -> None:
        host = "127.0.103.13"
        healthz = await Listener(host, http=True).start()
        keys = [(host, 30000 + i) for i in range(50)]
        events = Events()
        async with events.make() as hc:
            node = check(type="http", port=healthz.port, healthy_threshold=1)
            for i, key in enumerate(keys):
                hc.watch(key, node, owner=f"svc-{i % 5}")
            assert hc.probe_streams == 1
            await until(lambda: healthz.accepted >= 3)
            assert hc.probes_total <= healthz.accepted + 1  # one probe per round, not 50
            hc.report_failure(keys[0], "reset")
            assert [k for k in keys if not hc.is_up(k)] == [keys[0]]
            assert events.transitions() == [(False, "ejected: reset")]
            await until(lambda: hc.is_up(keys[0]))
            assert events.transitions()[1] == (True, "1 check passed")
            healthz.status = 503  # the node fails: every target on it goes, in one round
            await until(lambda: not any(hc.is_up(k) for k in keys))
            downs = [(k, r) for k, up, r, _ in events.calls[2:] if not up]
            assert sorted(k for k, _ in downs) == sorted(keys)
            assert {r for _, r in downs} == {
                f"HTTP /healthz on {host}:{healthz.port} answered 503"}
            for i, key in enumerate(keys[:10]):
                hc.unwatch(key, f"svc-{i % 5}")
            assert hc.probe_streams == 1 and len(hc.status()) == 40
        await healthz.stop()

    run(loop, main)
