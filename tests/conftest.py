"""Shared fixtures: a sandbox in a thread and the official Kubernetes client pointed at it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from kubernetes import client, config

from lbctl.sandbox.app import Sandbox, SandboxOptions, SandboxThread
from lbctl.sandbox.nodes import simulated

TRAFFIC_LOCK = Path(tempfile.gettempdir()) / "lbctl-sandbox-traffic.lock"
"""Held by whoever runs a traffic-enabled sandbox on the fixed 127.0.10.x / 127.0.20.x (the
sandbox's traffic side, the demo): only one may run on this machine at a time."""


@contextlib.contextmanager
def traffic_lock(wait: float = 300.0) -> Iterator[None]:
    with TRAFFIC_LOCK.open("a") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another traffic sandbox held {TRAFFIC_LOCK} for {wait}s")
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def unavailable(reason: str) -> NoReturn:
    """Skip on a developer machine, fail under CI (`CI=true`): CI installs everything a test
    needs, so a missing tool there is a broken install step, never a green skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "",
             interval: float = 0.05) -> Any:
    """Poll until `check()` is truthy and answer that value; fail naming `what` after
    `timeout` seconds. A generous safety net for tests, never a measurement."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or check}")
        time.sleep(interval)


def running_sandbox(tmp: Path, nodes: int = 3, **kw: Any) -> Iterator[Sandbox]:
    """A fixture's body: a sandbox in a thread with `nodes` simulated nodes and its kubeconfig
    in `tmp`, stopped when the fixture is torn down."""
    thread = SandboxThread(SandboxOptions(nodes=simulated(nodes), kubeconfig=tmp / "kubeconfig",
                                          **kw))
    thread.start()
    assert thread.sandbox is not None
    yield thread.sandbox
    thread.stop()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One sandbox for the session: tests isolate themselves by namespace."""
    yield from running_sandbox(tmp_path_factory.mktemp("sandbox"), bookmark_interval=0.5)


@pytest.fixture
def own_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox of the test's own, for tests that break things (faults, compaction)."""
    yield from running_sandbox(tmp_path, bookmark_interval=0.5, history=1000)


def client_for(box: Sandbox) -> client.ApiClient:
    assert box.options.kubeconfig is not None
    return config.new_client_from_config(config_file=str(box.options.kubeconfig))


def open_client(box: Sandbox) -> Iterator[client.ApiClient]:
    """A fixture's body: the official client for `box`, closed at teardown."""
    api = client_for(box)
    yield api
    api.close()


@pytest.fixture(scope="session")
def api(sandbox: Sandbox) -> Iterator[client.ApiClient]:
    yield from open_client(sandbox)


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def namespace(core: client.CoreV1Api, name: str) -> Iterator[str]:
    """A fixture's body: the namespace `name`, created, and deleted at teardown."""
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture
def ns(core: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace per test."""
    yield from namespace(core, f"t-{uuid.uuid4().hex[:10]}")


Admin = Callable[..., Any]


def admin_call(box: Sandbox, method: str, path: str, body: Any = None,
               raw: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    """A raw HTTP call with the admin token; returns (status, parsed JSON body)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(box.url + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {box.token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null"), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), dict(err.headers)


@pytest.fixture
def admin(sandbox: Sandbox) -> Admin:
    def call(method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return admin_call(sandbox, method, path, body, **kw)

    return call


def svc(name: str, **spec: Any) -> dict[str, Any]:
    """A Service body as a user would write it."""
    spec.setdefault("ports", [{"port": 80, "targetPort": 8080}])
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, **spec}}
