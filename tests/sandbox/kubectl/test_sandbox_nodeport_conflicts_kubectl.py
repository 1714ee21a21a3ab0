"""Service writes asking for a taken or invalid nodePort, healthCheckNodePort or clusterIP, through
real kubectl binaries: what kubectl prints is built from the Status (`The Service "b" is invalid:
<field>: <message>` needs code 422, reason Invalid and the causes; `Error from server
(InternalError): ...` a 500 InternalError; `Error from server: ...` a 500 without a reason), and a
refused write changes no Service and no allocation. The status codes and bodies themselves are
asserted through the Python client in tests/sandbox/test_sandbox_nodeport_conflicts.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbctl.sandbox.app import Sandbox
from lbctl.sandbox.storage.resources import by_key
from lbctl.sandbox.storage.strategies import ServiceStrategy
from tests.sandbox.kubectl.conftest import Binaries, make_kubectl
from tests.sandbox.kubectl.runner import Kubectl

pytestmark = pytest.mark.kubectl

VERSIONS = ("1.20", "1.33", "1.35")
TAKEN = "provided port is already allocated"
OUT_OF_RANGE = "provided port is not in the valid range. The range of valid ports is 30000-32767"


def manifest(name: str, kind: str = "NodePort", ports: tuple[int, ...] = (30081, 30082),
             extra: str = "") -> str:
    names = ("http", "https")
    numbers = (80, 443)
    listed = ", ".join(f"{{name: {names[i]}, port: {numbers[i]}, nodePort: {p}}}"
                       for i, p in enumerate(ports))
    return (f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\n"
            f"spec: {{type: {kind}, selector: {{app: {name}}}, ports: [{listed}]{extra}}}\n")


@pytest.fixture(params=VERSIONS)
def kubectl(request: pytest.FixtureRequest, kubectl_binaries: Binaries, own_sandbox: Sandbox,
            kubectl_home: Path) -> Kubectl:
    """One kubectl version against a sandbox of the test's own (fixed ports are the test's)."""
    return make_kubectl(str(request.param), kubectl_binaries, own_sandbox, kubectl_home,
                        "default")


def allocations(box: Sandbox) -> tuple[list[int], dict[str, list[str]]]:
    strategy = box.registry.strategy(by_key("services"))
    assert isinstance(strategy, ServiceStrategy)
    return (strategy.admission.node_ports.allocated(),
            {family: pool.allocated()
             for family, pool in strategy.admission.ip_allocators.items()})


def state(k: Kubectl, name: str) -> str:
    return k.ok("get", "svc", name, "-o",
                "jsonpath={.metadata.resourceVersion} {.spec.type} {.spec.clusterIPs} "
                "{.spec.ports[*].nodePort} {.spec.healthCheckNodePort}")


@contextlib.contextmanager
def unchanged(k: Kubectl, box: Sandbox, *names: str) -> Iterator[None]:
    """The block changes neither the allocators nor the named Services."""
    before = allocations(box), [state(k, name) for name in names]
    yield
    assert (allocations(box), [state(k, name) for name in names]) == before


def last_line(stderr: str) -> str:
    """kubectl's error (kubectl apply may warn about the last-applied annotation first)."""
    return stderr.strip().splitlines()[-1]


def port_is_taken(k: Kubectl, port: int) -> bool:
    done = k.run("create", "-f", "-", stdin=manifest("probe", ports=(port,)))
    if done.returncode:
        assert last_line(done.stderr) == (
            f'The Service "probe" is invalid: spec.ports[0].nodePort: Invalid value: {port}: '
            f"{TAKEN}")
        return True
    k.ok("delete", "svc", "probe")
    return False


def test_every_write_verb_to_a_taken_node_port(kubectl: Kubectl, own_sandbox: Sandbox) -> None:
    k = kubectl
    k.ok("create", "-f", "-", stdin=manifest("a", ports=(30080,)))
    k.ok("apply", "-f", "-", stdin=manifest("b"))
    writes = {
        "patch": ("patch", "svc", "b", "-p", '{"spec":{"ports":[{"port":443,"nodePort":30080}]}}'),
        "merge": ("patch", "svc", "b", "--type", "merge", "-p",
                  '{"spec":{"ports":[{"name":"http","port":80,"nodePort":30081},'
                  '{"name":"https","port":443,"nodePort":30080}]}}'),
        "json": ("patch", "svc", "b", "--type", "json", "-p",
                 '[{"op":"replace","path":"/spec/ports/1/nodePort","value":30080}]'),
        "replace": ("replace", "-f", "-"),
        "apply": ("apply", "-f", "-"),
    }
    for verb, args in writes.items():
        stdin = manifest("b", ports=(30081, 30080)) if verb in ("replace", "apply") else None
        with unchanged(k, own_sandbox, "a", "b"):
            stderr = k.fails(*args, stdin=stdin)
        assert last_line(stderr) == ('The Service "b" is invalid: spec.ports[1].nodePort: '
                                     f"Invalid value: 30080: {TAKEN}"), verb
    assert port_is_taken(k, 30080)
    assert port_is_taken(k, 30081)
    assert port_is_taken(k, 30082)


def test_refused_update_frees_what_it_reserved(kubectl: Kubectl, own_sandbox: Sandbox) -> None:
    k = kubectl
    k.ok("create", "-f", "-", stdin=manifest("a", ports=(30080,)))
    k.ok("apply", "-f", "-", stdin=manifest("b"))
    for second, why in ((30080, TAKEN), (32768, OUT_OF_RANGE)):
        with unchanged(k, own_sandbox, "a", "b"):
            stderr = k.fails("apply", "-f", "-", stdin=manifest("b", ports=(30090, second)))
        assert last_line(stderr) == ('The Service "b" is invalid: spec.ports[1].nodePort: '
                                     f"Invalid value: {second}: {why}")
        assert not port_is_taken(k, 30090)
    assert port_is_taken(k, 30081)
    assert port_is_taken(k, 30082)


def test_health_check_duplicate_and_cluster_ip_answers(kubectl: Kubectl,
                                                      own_sandbox: Sandbox) -> None:
    k = kubectl
    k.ok("create", "-f", "-", stdin=manifest("a", ports=(30080,)))
    k.ok("create", "-f", "-", stdin=manifest("b"))
    for port, why in ((30080, TAKEN), (32768, OUT_OF_RANGE)):
        with unchanged(k, own_sandbox, "a", "b"):
            stderr = k.fails("patch", "svc", "b", "--type", "merge", "-p",
                             '{"spec":{"type":"LoadBalancer","externalTrafficPolicy":"Local",'
                             f'"healthCheckNodePort":{port}}}}}')
        assert last_line(stderr) == (
            "Error from server (InternalError): Internal error occurred: failed to allocate "
            f"requested HealthCheck NodePort {port}: {why}")
    with unchanged(k, own_sandbox, "a", "b"):
        stderr = k.fails("create", "-f", "-", stdin=manifest(
            "lb", kind="LoadBalancer", ports=(30090,),
            extra=", externalTrafficPolicy: Local, healthCheckNodePort: 30080"))
    assert last_line(stderr) == (
        'Error from server (InternalError): error when creating "STDIN": Internal error '
        f"occurred: failed to allocate requested HealthCheck NodePort 30080: {TAKEN}")
    assert not port_is_taken(k, 30090)
    with unchanged(k, own_sandbox, "b"):
        stderr = k.fails("patch", "svc", "b", "--type", "json", "-p",
                         '[{"op":"replace","path":"/spec/ports/1/nodePort","value":30081}]')
    assert last_line(stderr) == "Error from server: duplicate nodePort: {TCP 30081}"
    ip = k.ok("get", "svc", "a", "-o", "jsonpath={.spec.clusterIP}")
    k.ok("create", "service", "externalname", "en", "--external-name", "db.example.com")
    with unchanged(k, own_sandbox, "a", "en"):
        stderr = k.fails("patch", "svc", "en", "--type", "merge", "-p",
                         f'{{"spec":{{"type":"ClusterIP","clusterIP":"{ip}",'
                         '"ports":[{"port":80}]}}')
    assert last_line(stderr) == (
        f'The Service "en" is invalid: spec.clusterIPs: Invalid value: []string{{"{ip}"}}: '
        f"failed to allocate IP {ip}: provided IP is already allocated")


def test_server_side_dry_run_patch_changes_nothing(kubectl: Kubectl,
                                                   own_sandbox: Sandbox) -> None:
    k = kubectl
    k.ok("create", "-f", "-", stdin=manifest("b"))
    with unchanged(k, own_sandbox, "b"):
        out = k.ok("patch", "svc", "b", "--dry-run=server", "-p",
                   '{"spec":{"ports":[{"port":443,"nodePort":30090}]}}', "-o",
                   "jsonpath={.spec.ports[*].nodePort}")
    assert out == "30081 30090"
    assert not port_is_taken(k, 30090)
    assert port_is_taken(k, 30082)
