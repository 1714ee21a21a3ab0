"""The balancer daemon's API end to end on loopback: auth, validation, traffic, restarts.

Backends are small HTTP servers on 127.0.104.x naming themselves; VIPs are on 127.0.105.x.
Each test runs its own daemon (`DaemonThread`) with a token file and a state file in tmp_path.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lbctl.balancer.daemon import DaemonThread, ServeOptions
from tests.helpers import named_backend

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def backends() -> Iterator[list[ThreadingHTTPServer]]:
    servers = [named_backend(f"127.0.104.{i}") for i in (1, 2, 3)]
    yield servers
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def _start(tmp_path: Path, token_file: Path, config: Path | None = None) -> DaemonThread:
    thread = DaemonThread(ServeOptions(config=config, api_listen="127.0.0.1:0",
                                       token_file=token_file,
                                       state_file=tmp_path / "state" / "balancers.json",
                                       reload_seconds=0.1))
    thread.start()
    return thread


def _call(url: str, method: str = "GET", body: Any = None, token: str | None = TOKEN,
          content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else (json.dumps(body).encode()
                                                 if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _balancer(name: str, vip: str, port: int, servers: list[ThreadingHTTPServer],
              **extra: Any) -> dict[str, Any]:
    return {"name": name, "vip": vip, **extra, "listeners": [{
        "protocol": "TCP", "port": port,
        "targets": [f"{s.server_address[0]!s}:{s.server_address[1]}" for s in servers],
        "healthCheck": {"type": "tcp", "intervalSeconds": 0.2, "timeoutSeconds": 0.5,
                        "healthyThreshold": 1, "unhealthyThreshold": 1}}]}


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text: str = resp.read().decode().strip()
        return text


def _wait(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_unauthenticated_and_wrong_token_are_refused_and_change_nothing(
        tmp_path: Path, token_file: Path, backends: list[ThreadingHTTPServer]) -> None:
    d = _start(tmp_path, token_file)
    try:
        body = _balancer("web", "127.0.105.1", 18080, backends)
        for token in (None, "wrong", TOKEN + "x", ""):
            code, doc = _call(f"{d.url}/v1/balancers/web", "PUT", body, token=token)
            assert code == 401, token
            assert "bearer token" in doc["error"]
            assert _call(f"{d.url}/v1/balancers", token=token)[0] == 401
        assert _call(f"{d.url}/v1/balancers")[1] == {"balancers": []}
        with pytest.raises(OSError):
            _get("http://127.0.105.1:18080/")
        # health and metrics are for probes and scrapers: no token needed
        assert _get(f"{d.url}/healthz") == "ok"
        assert _get(f"{d.url}/readyz") == "ok"
    finally:
        d.stop()


def _key(labels: dict[str, str], **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({**labels, **more}.items()))


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The exposition parsed by prometheus_client: (sample name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, _key(s.labels)): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_put_serves_traffic_and_reports_target_health(
        tmp_path: Path, token_file: Path, backends: list[ThreadingHTTPServer]) -> None:
    d = _start(tmp_path, token_file)
    try:
        code, doc = _call(f"{d.url}/v1/balancers/web", "PUT",
                          _balancer("web", "127.0.105.2", 18080, backends))
        assert code == 200, doc
        assert doc["changed"] is True
        assert doc["balancer"]["vip"] == "127.0.105.2"
        answers = Counter(_get("http://127.0.105.2:18080/") for _ in range(30))
        assert set(answers) == {f"backend 127.0.104.{i}" for i in (1, 2, 3)}
        assert max(answers.values()) - min(answers.values()) <= 1  # round robin
        # the same body again changes nothing
        code, doc = _call(f"{d.url}/v1/balancers/web", "PUT",
                          _balancer("web", "127.0.105.2", 18080, backends))
        assert (code, doc["changed"]) == (200, False)
        # a backend dies: reported down, traffic keeps flowing to the others
        backends[2].shutdown()
        backends[2].server_close()
        _wait(lambda: _call(f"{d.url}/v1/balancers/web")[1]["status"]["healthyTargets"] == 2)
        status = _call(f"{d.url}/v1/balancers/web")[1]["status"]
        assert status["serving"] is True
        assert any("2 of 3 targets healthy" in p for p in status["problems"])
        answers = Counter(_get("http://127.0.105.2:18080/") for _ in range(20))
        assert set(answers) == {"backend 127.0.104.1", "backend 127.0.104.2"}
        web = {"balancer": "web", "protocol": "TCP", "port": "18080"}
        # the proxy closes its side once it has read the client's FIN: a moment after the
        # client has its answer, so wait for the gauge to drain rather than race it
        def drained() -> dict[Any, float] | None:
            got = _samples(_get(f"{d.url}/metrics"))
            return got if got[("lbctl_balancer_active_connections", _key(web))] == 0 else None

        samples = _wait(drained)
        assert samples is not None
        assert samples[("lbctl_balancer_connections_total", _key(web))] == 50
        # every request and every answer went through, counted once
        assert samples[("lbctl_balancer_bytes_total", _key(web, direction="in"))] >= 50 * 14
        assert samples[("lbctl_balancer_bytes_total", _key(web, direction="out"))] >= 50 * 19
        ups = {dict(labels)["target"]: value for (name, labels), value in samples.items()
               if name == "lbctl_balancer_target_up"}
        assert sorted(ups.values()) == [0.0, 1.0, 1.0]
        assert samples[("lbctl_balancer_health_transitions_total", ())] >= 1
        # the checker's process reports its counters with each verdict and once a second
        _wait(lambda: _samples(_get(f"{d.url}/metrics"))[
            ("lbctl_balancer_health_probes_total", ())] >= 3)
        # no per-connection labels: every series is labelled by listener (and a bounded kind)
        allowed = {"balancer", "protocol", "port", "target", "direction", "reason",
                   "dataplane"}
        assert all(set(dict(labels)) <= allowed for _name, labels in samples)
    finally:
        d.stop()


def test_bad_bodies_are_refused_naming_the_field(
        tmp_path: Path, token_file: Path, backends: list[ThreadingHTTPServer]) -> None:
    d = _start(tmp_path, token_file)
    try:
        url = f"{d.url}/v1/balancers/web"
        bad = _balancer("web", "not-an-ip", 0, backends)
        code, doc = _call(url, "PUT", bad)
        assert code == 422
        fields = {p["field"] for p in doc["problems"]}
        assert {"vip", "listeners[0].port"} <= fields
        assert _call(url, "PUT", b"{nope", content_type="application/json")[0] == 400
        assert _call(url, "PUT", b"{}", content_type="text/plain")[0] == 415
        assert _call(url, "PUT", [1, 2])[0] == 422
        code, doc = _call(url, "PUT", _balancer("other", "127.0.105.3", 18080, backends))
        assert code == 422 and doc["problems"][0]["field"] == "name"
        assert _call(url, "PUT", _balancer("web", "127.0.105.3", 18080, backends))[0] == 200
        code, doc = _call(f"{d.url}/v1/balancers/web2", "PUT",
                          _balancer("web2", "127.0.105.3", 18080, backends))
        assert code == 409
        assert doc["error"] == ('127.0.105.3:18080/TCP is served by both balancer "web" '
                                'and "web2"')
        assert [b["balancer"]["name"] for b in _call(f"{d.url}/v1/balancers")[1]["balancers"]
                ] == ["web"]
        assert _call(f"{d.url}/v1/balancers/nope", "DELETE")[0] == 404
        assert _call(url, "DELETE")[0] == 200
        assert _call(url)[0] == 404
        with pytest.raises(OSError):
            _get("http://127.0.105.3:18080/")
    finally:
        d.stop()


def test_restart_rebuilds_state_from_the_state_file(
        tmp_path: Path, token_file: Path, backends: list[ThreadingHTTPServer]) -> None:
    d = _start(tmp_path, token_file)
    owner = {"cluster": "c1", "namespace": "default", "name": "web", "uid": "u-1"}
    try:
        assert _call(f"{d.url}/v1/balancers/web", "PUT",
                     _balancer("web", "127.0.105.4", 18080, backends, owner=owner))[0] == 200
        assert _call(f"{d.url}/v1/balancers/gone", "PUT",
                     _balancer("gone", "127.0.105.5", 18080, backends))[0] == 200
        assert _call(f"{d.url}/v1/balancers/gone", "DELETE")[0] == 200
    finally:
        d.stop()
    with pytest.raises(OSError):
        _get("http://127.0.105.4:18080/")
    d = _start(tmp_path, token_file)
    try:
        # serving before anyone programs it again
        assert _get("http://127.0.105.4:18080/").startswith("backend 127.0.104.")
        listed = _call(f"{d.url}/v1/balancers?cluster=c1")[1]["balancers"]
        assert [b["balancer"]["name"] for b in listed] == ["web"]
        assert listed[0]["balancer"]["owner"] == owner
        assert _call(f"{d.url}/v1/balancers?cluster=other")[1]["balancers"] == []
        with pytest.raises(OSError):
            _get("http://127.0.105.5:18080/")
    finally:
        d.stop()


def test_deeply_nested_body_is_a_400(tmp_path: Path, token_file: Path) -> None:
    d = _start(tmp_path, token_file)
    try:
        code, doc = _call(f"{d.url}/v1/balancers/web", "PUT", b"[" * 100_000)
        assert code == 400 and doc["error"].startswith("body is not JSON")
        with urllib.request.urlopen(f"{d.url}/healthz", timeout=5) as resp:
            assert resp.status == 200
    finally:
        d.stop()


def test_targets_that_would_loop_are_refused_and_the_daemon_stays_well(
        tmp_path: Path, token_file: Path, backends: list[ThreadingHTTPServer]) -> None:
    """A balancer targeting its own VIP:port used to be accepted: its probe alone took every
    file descriptor, and the state file carried it into every restart. Now: 422 naming the
    target, for its own frontend and for the daemon's API port alike; nothing is stored."""
    d = _start(tmp_path, token_file)
    try:
        code, doc = _call(f"{d.url}/v1/balancers/self", "PUT", {
            "name": "self", "vip": "127.0.105.11", "listeners": [
                {"protocol": "TCP", "port": 18080, "targets": ["127.0.105.11:18080"]}]})
        assert code == 422
        assert doc["error"] == ('listeners[0].targets[0]: 127.0.105.11:18080 is its own '
                                'frontend (balancer "self") on this daemon: traffic would loop')
        api = d.url.rsplit(":", 1)[1]
        code, doc = _call(f"{d.url}/v1/balancers/api", "PUT", {
            "name": "api", "vip": "127.0.105.12", "listeners": [
                {"protocol": "TCP", "port": 18080, "targets": [f"127.0.0.1:{api}"]}]})
        assert (code, doc["error"]) == (422, f"listeners[0].targets[0]: 127.0.0.1:{api} is one "
                                             "of this balancer daemon's own ports")
        assert _call(f"{d.url}/v1/balancers")[1]["balancers"] == []
        assert not (tmp_path / "state" / "balancers.json").exists()
        with urllib.request.urlopen(f"{d.url}/healthz", timeout=5) as resp:
            assert resp.status == 200
    finally:
        d.stop()


def test_an_unwritable_state_directory_serves_from_memory_and_says_so(
        tmp_path: Path, token_file: Path, backends: list[ThreadingHTTPServer]) -> None:
    """The chart's "serves but cannot persist" case: the state directory is a file (so even
    root cannot create the state file in it). A PUT is taken and served, its status says the
    state is not persisted, the next identical PUT changes nothing, and a DELETE unbinds."""
    (tmp_path / "state").write_text("not a directory")
    d = _start(tmp_path, token_file)
    try:
        code, doc = _call(f"{d.url}/v1/balancers/web", "PUT",
                          _balancer("web", "127.0.105.9", 18080, backends))
        assert (code, doc["changed"]) == (200, True)
        assert _get("http://127.0.105.9:18080/").startswith("backend 127.0.104.")
        problems = doc["status"]["problems"]
        assert any("cannot write the state file" in p and "serving from memory" in p
                   for p in problems), problems
        code, again = _call(f"{d.url}/v1/balancers/web", "PUT",
                            _balancer("web", "127.0.105.9", 18080, backends))
        assert (code, again["changed"]) == (200, False)
        assert _call(f"{d.url}/v1/balancers/web", "DELETE")[0] == 200
        with pytest.raises(OSError):
            _get("http://127.0.105.9:18080/")
        assert _call(f"{d.url}/v1/balancers/web")[0] == 404
    finally:
        d.stop()


def test_static_file_serves_reloads_and_keeps_the_last_good_one(
        tmp_path: Path, token_file: Path, backends: list[ThreadingHTTPServer]) -> None:
    static = tmp_path / "balancers.yaml"
    static.write_text(json.dumps({"balancers": [
        _balancer("static", "127.0.105.6", 18080, backends[:1])]}))
    d = _start(tmp_path, token_file, config=static)
    try:
        assert _get("http://127.0.105.6:18080/") == "backend 127.0.104.1"
        code, doc = _call(f"{d.url}/v1/balancers/static", "PUT",
                          _balancer("static", "127.0.105.7", 18080, backends))
        assert code == 409 and "static file" in doc["error"]
        assert _call(f"{d.url}/v1/balancers/static", "DELETE")[0] == 409
        static.write_text("balancers: [{name: static, vip: nope}]")
        time.sleep(0.5)  # several reload periods: the bad file is refused
        assert _get("http://127.0.105.6:18080/") == "backend 127.0.104.1"
        static.write_text(json.dumps({"balancers": [
            _balancer("static", "127.0.105.6", 18080, backends[1:2])]}))
        _wait(lambda: _get("http://127.0.105.6:18080/") == "backend 127.0.104.2")
    finally:
        d.stop()
