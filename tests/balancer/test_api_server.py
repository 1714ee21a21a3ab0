"""How the daemon's API listens: TLS (verified by the provider's client with a CA bundle, and
re-loaded when rotated), the connection cap, header/idle/body timeouts, and the heartbeat key
that is not the API token. Each test runs its own daemon on loopback.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from lbctl.balancer.announce import L2Options
from lbctl.balancer.api_server import ApiLimits
from lbctl.balancer.daemon import Daemon, DaemonThread, ServeOptions
from lbctl.cli import main as cli
from lbctl.parsing import ConfigError
from providers.baremetal import BalancerDaemon
from providers.baremetal.daemon_options import DaemonOptions
from providers.baremetal.daemons import DaemonProgrammer
from providers.errors import TransientError
from tests.balancer.certs import Ca
from tests.conftest import wait_for
from tests.helpers import named_backend

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture
def daemon(tmp_path: Path, token_file: Path, request: pytest.FixtureRequest
           ) -> Iterator[DaemonThread]:
    limits = getattr(request, "param", ApiLimits())
    thread = DaemonThread(ServeOptions(api_listen="127.0.0.1:0", token_file=token_file,
                                       api_limits=limits))
    thread.start()
    yield thread
    thread.stop()


def _metric(url: str, name: str, context: ssl.SSLContext | None = None) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10, context=context) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


# -- TLS ----------------------------------------------------------------------------------------
def test_tls_api_is_verified_with_the_ca_bundle_and_refuses_plain_http(
        tmp_path: Path, token_file: Path) -> None:
    ca = Ca.new()
    cert, key, _ = ca.issue("127.0.0.1", tmp_path)
    (tmp_path / "ca.crt").write_bytes(ca.pem())
    thread = DaemonThread(ServeOptions(api_listen="127.0.0.1:0", token_file=token_file,
                                       tls_cert=cert, tls_key=key))
    thread.start()
    try:
        assert thread.url.startswith("https://127.0.0.1:")
        good = BalancerDaemon("lb", thread.url, str(token_file), str(tmp_path / "ca.crt"))
        programmer = DaemonProgrammer((good,), DaemonOptions(), "c")
        status, doc = programmer._call(good, "GET", "/v1/balancers")  # the provider's client
        assert (status, doc) == (200, {"balancers": []})
        # A CA that did not sign the daemon's certificate: refused, and said so.
        (tmp_path / "other.crt").write_bytes(Ca.new("someone else").pem())
        bad = BalancerDaemon("lb", thread.url, str(token_file), str(tmp_path / "other.crt"))
        with pytest.raises(TransientError, match=r"TLS failed \(caFile .*other.crt\)"):
            DaemonProgrammer((bad,), DaemonOptions(), "c")._call(bad, "GET", "/v1/balancers")
        # Plain HTTP to the TLS port gets no answer from the API.
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(thread.url.replace("https", "http") + "/healthz", timeout=5)
    finally:
        thread.stop()


def test_a_rotated_certificate_is_served_to_new_connections(
        tmp_path: Path, token_file: Path) -> None:
    ca = Ca.new()
    cert, key, first = ca.issue("127.0.0.1", tmp_path)
    thread = DaemonThread(ServeOptions(api_listen="127.0.0.1:0", token_file=token_file,
                                       tls_cert=cert, tls_key=key, reload_seconds=0.1))
    thread.start()
    try:
        port = int(thread.url.rsplit(":", 1)[1])

        def serial() -> int:
            pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=5)
            return int(x509.load_pem_x509_certificate(pem.encode()).serial_number)

        assert serial() == first
        staging = tmp_path / "next"
        staging.mkdir()
        new_cert, new_key, second = ca.issue("127.0.0.1", staging)
        new_key.replace(key)  # the key first: a pair that does not match is kept out
        new_cert.replace(cert)
        wait_for(lambda: serial() == second, timeout=10, what="the rotated certificate")
        # A broken pair later is logged and the last good one keeps serving.
        cert.write_text("not a certificate")
        time.sleep(0.5)
        assert serial() == second
    finally:
        thread.stop()


def test_tls_flags_come_in_pairs_and_a_bad_pair_is_a_clear_error(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(cli, ["balancer", "serve", "--api-listen", "127.0.0.1:0",
                               "--tls-cert", str(tmp_path / "x.crt")])
    assert done.exit_code == 2 and "--tls-cert and --tls-key together" in done.output
    (tmp_path / "x.crt").write_text("junk")
    (tmp_path / "x.key").write_text("junk")
    with pytest.raises(ConfigError, match=r"--tls-cert/--tls-key.*cannot load"):
        Daemon(ServeOptions(api_listen="127.0.0.1:0", tls_cert=tmp_path / "x.crt",
                            tls_key=tmp_path / "x.key"))


# -- heartbeats ---------------------------------------------------------------------------------
def test_l2_needs_a_heartbeat_key_of_its_own(tmp_path: Path, token_file: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(cli, ["balancer", "serve", "--api-listen", "127.0.0.1:0",
                               "--token-file", str(token_file), "--interface", "lo"])
    assert done.exit_code == 2 and "--heartbeat-key-file" in done.output, done.output
    short = tmp_path / "short-key"
    short.write_text("tooshort\n")
    l2 = L2Options("lo", "a", ("127.0.0.1", 0), ())
    thread = DaemonThread(ServeOptions(token_file=token_file, heartbeat_key_file=short, l2=l2))
    with pytest.raises(RuntimeError, match=r"--heartbeat-key-file.*at least 16 bytes"):
        thread.start()
    thread.stop()


# -- connection cap and timeouts ------------------------------------------------------------------
def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("daemon", [ApiLimits(max_connections=8, header_timeout=30)],
                         indirect=True)
def test_past_the_connection_cap_the_api_answers_503_and_traffic_flows(
        daemon: DaemonThread) -> None:
    backend = named_backend("127.0.104.21")
    try:
        port = int(daemon.url.rsplit(":", 1)[1])
        body = {"vip": "127.0.105.21", "listeners": [{"protocol": "TCP", "port": 18121,
                "targets": [f"127.0.104.21:{backend.server_address[1]}"]}]}
        req = urllib.request.Request(f"{daemon.url}/v1/balancers/web", method="PUT",
                                     data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        idle = [_connect(port) for _ in range(8)]
        wait_for(lambda: daemon.daemon is not None and daemon.daemon._api is not None
                 and daemon.daemon._api.connections == 8, timeout=10, what="8 open")
        extra = _connect(port)
        answer = _read_all(extra)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        extra.close()
        # The data plane does not care: the VIP serves while the API is full.
        with urllib.request.urlopen("http://127.0.105.21:18121/", timeout=5) as resp:
            assert resp.read().decode() == "backend 127.0.104.21\n"
        for s in idle:
            s.close()
        wait_for(lambda: daemon.daemon is not None and daemon.daemon._api is not None
                 and daemon.daemon._api.connections == 0, timeout=10,
                 what="the idle connections to go")
        assert _metric(daemon.url, "lbctl_balancer_api_connections") == 1  # this scrape
        assert _metric(daemon.url, "lbctl_balancer_api_refused_connections_total") == 1
    finally:
        backend.shutdown()
        backend.server_close()


@pytest.mark.parametrize("daemon", [ApiLimits(header_timeout=0.5, body_timeout=0.5)],
                         indirect=True)
def test_slow_heads_idle_connections_and_slow_bodies_are_cut_off(daemon: DaemonThread) -> None:
    port = int(daemon.url.rsplit(":", 1)[1])
    idle = _connect(port)
    slow = _connect(port)
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes its head
    started = time.monotonic()
    assert _read_all(idle) == b""  # closed by the daemon, nothing answered
    assert _read_all(slow) == b""
    assert time.monotonic() - started < 10  # safety net; the limit is 0.5 s
    # A body announced but not sent: 408 and the request changes nothing.
    body = _connect(port)
    body.sendall(b"PUT /v1/balancers/web HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                 b"\r\nAuthorization: Bearer " + TOKEN.encode() +
                 b"\r\nContent-Length: 100\r\n\r\n{\"vip\":")
    answer = _read_all(body)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"body not received within 0.5 s" in answer
    with urllib.request.urlopen(urllib.request.Request(
            f"{daemon.url}/v1/balancers", headers={"Authorization": f"Bearer {TOKEN}"}),
            timeout=10) as resp:
        assert json.loads(resp.read()) == {"balancers": []}
