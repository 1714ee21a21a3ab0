"""Service writes asking for a taken or invalid nodePort, healthCheckNodePort or clusterIP, through
the official Python client: kube-apiserver's answer, and no allocation changed.

Upstream (pkg/registry/core/service/storage/alloc.go, run before validation by the generic
registry's BeginCreate/BeginUpdate) answers:

- a requested nodePort that is taken or outside `--service-node-port-range`: 422 Invalid, one
  cause on `spec.ports[i].nodePort` with the port allocator's text (`initNodePorts` on create,
  `updateNodePorts` on update);
- a requested clusterIP that is taken or outside the range (ExternalName -> ClusterIP, dual-stack
  upgrade, create): 422 Invalid on `spec.clusterIPs` ("failed to allocate IP ...");
- a healthCheckNodePort that cannot be had: 500 InternalError (`allocHealthCheckNodePort`'s error
  wrapped in `errors.NewInternalError`, on create and on update);
- two ports of one Service with the same (protocol, nodePort) on update: a bare Go error
  (`fmt.Errorf("duplicate nodePort: %v")`), which the apiserver writes as a 500 Status without a
  reason; on create the second port's `Allocate` fails first: 422 "already allocated".

Whatever the answer, a refused write takes and releases nothing: the original owners keep their
ports and IPs, and whatever the request drew or reserved on its way is free again. Each test runs
against a sandbox of its own, so fixed port numbers and the allocator's state are the test's.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from lbctl.sandbox.admission.services import ServiceAdmission
from lbctl.sandbox.app import Sandbox
from lbctl.sandbox.storage.resources import by_key
from lbctl.sandbox.storage.strategies import ServiceStrategy
from tests.conftest import client_for, svc

pytestmark = pytest.mark.integration

NS = "default"
RANGE = "30000-32767"
TAKEN = "provided port is already allocated"
IP_TAKEN = "provided IP is already allocated"
OUT_OF_RANGE = f"provided port is not in the valid range. The range of valid ports is {RANGE}"
WRITERS = ("put", "merge-patch", "strategic-merge-patch", "json-patch")
PATCH_TYPES = {"merge-patch": "application/merge-patch+json",
               "strategic-merge-patch": "application/strategic-merge-patch+json"}
Allocations = tuple[list[int], dict[str, list[str]]]


@dataclass
class Cluster:
    """The test's own sandbox and the official client pointed at it."""

    box: Sandbox
    core: client.CoreV1Api

    def create(self, name: str, **spec: Any) -> dict[str, Any]:
        return self._plain(self.core.create_namespaced_service(NS, svc(name, **spec)))

    def get(self, name: str) -> dict[str, Any]:
        return self._plain(self.core.read_namespaced_service(name, NS))

    def write(self, how: str, name: str, spec: dict[str, Any], dry_run: bool = False) -> Any:
        """Change `spec`'s keys of Service `name` with one PUT or PATCH (lists are given whole)."""
        options = {"dry_run": "All"} if dry_run else {}
        if how == "put":
            body = self.get(name)
            body["spec"].update(spec)
            return self.core.replace_namespaced_service(name, NS, body, **options)
        if how == "json-patch":
            ops = [{"op": "add", "path": f"/spec/{key}", "value": value}
                   for key, value in spec.items()]
            return self.core.patch_namespaced_service(name, NS, ops, **options)
        return self.core.patch_namespaced_service(name, NS, {"spec": spec},
                                                  _content_type=PATCH_TYPES[how], **options)

    def allocations(self) -> Allocations:
        """Every node port and cluster IP the sandbox's allocators hold right now."""
        strategy = self.box.registry.strategy(by_key("services"))
        assert isinstance(strategy, ServiceStrategy)
        admission: ServiceAdmission = strategy.admission
        return (admission.node_ports.allocated(),
                {family: pool.allocated() for family, pool in admission.ip_allocators.items()})

    def port_is_taken(self, port: int) -> bool:
        """Ask for `port` the way a user would: a NodePort Service that wants it."""
        try:
            self.core.create_namespaced_service(NS, svc("probe", type="NodePort", ports=[
                {"port": 80, "nodePort": port}]))
        except ApiException as err:
            assert_invalid(err, "probe", "spec.ports[0].nodePort",
                           f"Invalid value: {port}: {TAKEN}")
            return True
        self.core.delete_namespaced_service("probe", NS)
        return False

    def ip_is_taken(self, ip: str) -> bool:
        """Ask for `ip` the way a user would: a ClusterIP Service that wants it."""
        try:
            self.core.create_namespaced_service(NS, svc("probe", clusterIP=ip))
        except ApiException as err:
            assert_invalid(err, "probe", "spec.clusterIPs",
                           f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: '
                           f"{IP_TAKEN}")
            return True
        self.core.delete_namespaced_service("probe", NS)
        return False

    @contextlib.contextmanager
    def unchanged(self, *names: str) -> Iterator[None]:
        """The block changes neither the allocators nor the named Services."""
        allocations = self.allocations()
        before = {name: self.get(name) for name in names}
        yield
        assert self.allocations() == allocations
        assert {name: self.get(name) for name in names} == before

    def _plain(self, obj: Any) -> dict[str, Any]:
        plain: dict[str, Any] = self.core.api_client.sanitize_for_serialization(obj)
        return plain


@pytest.fixture
def kube(own_sandbox: Sandbox) -> Iterator[Cluster]:
    api = client_for(own_sandbox)
    yield Cluster(own_sandbox, client.CoreV1Api(api))
    api.close()


def refused(call: Callable[..., Any], *args: Any, **kwargs: Any) -> ApiException:
    """The ApiException `call(*args, **kwargs)` raises."""
    with pytest.raises(ApiException) as info:
        call(*args, **kwargs)
    return info.value


def body_of(err: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(err.body)
    return body


def assert_invalid(err: ApiException, name: str, field: str, detail: str) -> None:
    """422 Invalid with exactly one FieldValueInvalid cause, as `errors.NewInvalid` writes it."""
    assert err.status == 422
    assert body_of(err) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'Service "{name}" is invalid: {field}: {detail}', "reason": "Invalid",
        "details": {"name": name, "kind": "Service", "causes": [
            {"reason": "FieldValueInvalid", "message": detail, "field": field}]},
        "code": 422}


def assert_internal(err: ApiException, detail: str) -> None:
    """500 InternalError, as `errors.NewInternalError(err)` writes it."""
    assert err.status == 500
    assert body_of(err) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"Internal error occurred: {detail}", "reason": "InternalError",
        "details": {"causes": [{"message": detail}]}, "code": 500}


def assert_bare_500(err: ApiException, message: str) -> None:
    """A plain Go error from the registry: `ErrorToAPIStatus` makes it a 500 with no reason."""
    assert err.status == 500
    assert body_of(err) == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": message, "code": 500}


def ports_with(obj: dict[str, Any], node_ports: dict[int, int | None]) -> list[dict[str, Any]]:
    """`obj`'s ports, whole, with the nodePorts of the given indexes replaced (None: unset)."""
    ports = [dict(p) for p in obj["spec"]["ports"]]
    for index, node_port in node_ports.items():
        ports[index].pop("nodePort", None)
        if node_port is not None:
            ports[index]["nodePort"] = node_port
    return ports


def two_port_service(kube: Cluster, name: str = "b") -> dict[str, Any]:
    return kube.create(name, type="NodePort", ports=[
        {"name": "http", "port": 80, "nodePort": 30081},
        {"name": "https", "port": 443, "nodePort": 30082}])


def node_ports(obj: dict[str, Any]) -> list[int]:
    return [p["nodePort"] for p in obj["spec"]["ports"]]


# --- nodePort: taken, out of range ----------------------------------------------------------


@pytest.mark.parametrize("how", WRITERS)
def test_update_to_a_node_port_another_service_holds(kube: Cluster, how: str) -> None:
    kube.create("a", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    b = two_port_service(kube)
    with kube.unchanged("a", "b"):
        err = refused(kube.write, how, "b", {"ports": ports_with(b, {1: 30080})})
    assert_invalid(err, "b", "spec.ports[1].nodePort", f"Invalid value: 30080: {TAKEN}")
    # Both owners still hold their ports: asking for any of them is still refused.
    assert kube.port_is_taken(30080)
    assert kube.port_is_taken(30081)
    assert kube.port_is_taken(30082)
    # The same write to a free port goes through and frees the port it replaces.
    kube.write(how, "b", {"ports": ports_with(b, {1: 30083})})
    assert node_ports(kube.get("b")) == [30081, 30083]
    assert not kube.port_is_taken(30082)
    assert kube.port_is_taken(30083)


@pytest.mark.parametrize("how", WRITERS)
def test_failed_update_frees_the_ports_it_took(kube: Cluster, how: str) -> None:
    """ports[0] asks for a free port, which is reserved before ports[1] fails: it must be
    free again afterwards, and the Service's own ports still held."""
    kube.create("a", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    b = two_port_service(kube)
    with kube.unchanged("a", "b"):
        err = refused(kube.write, how, "b", {"ports": ports_with(b, {0: 30090, 1: 30080})})
    assert_invalid(err, "b", "spec.ports[1].nodePort", f"Invalid value: 30080: {TAKEN}")
    assert not kube.port_is_taken(30090)
    assert kube.port_is_taken(30081)
    assert kube.port_is_taken(30082)
    kube.create("c", type="NodePort", ports=[{"port": 80, "nodePort": 30090}])


@pytest.mark.parametrize("how", WRITERS)
@pytest.mark.parametrize("port", [32768, 29999])
def test_update_to_a_node_port_outside_the_range(kube: Cluster, how: str, port: int) -> None:
    b = two_port_service(kube)
    with kube.unchanged("b"):
        err = refused(kube.write, how, "b", {"ports": ports_with(b, {0: 30090, 1: port})})
    assert_invalid(err, "b", "spec.ports[1].nodePort", f"Invalid value: {port}: {OUT_OF_RANGE}")
    assert not kube.port_is_taken(30090)
    assert kube.port_is_taken(30081)


def test_create_with_a_taken_or_outside_node_port(kube: Cluster) -> None:
    kube.create("a", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    for port, detail in ((30080, TAKEN), (32768, OUT_OF_RANGE)):
        with kube.unchanged("a"):
            err = refused(kube.create, "c", type="NodePort", ports=[
                {"name": "http", "port": 80, "nodePort": 30090},
                {"name": "https", "port": 443, "nodePort": port}])
        assert_invalid(err, "c", "spec.ports[1].nodePort", f"Invalid value: {port}: {detail}")
        assert not kube.port_is_taken(30090)
    assert kube.port_is_taken(30080)


@pytest.mark.parametrize("how", WRITERS)
def test_type_change_to_a_taken_node_port_frees_the_drawn_ones(kube: Cluster, how: str) -> None:
    """ClusterIP -> NodePort: ports[0] gets a drawn nodePort before ports[1]'s request fails;
    the drawn one goes back to the pool (the allocators are exactly as before)."""
    kube.create("a", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    c = kube.create("c", ports=[{"name": "http", "port": 80}, {"name": "https", "port": 443}])
    with kube.unchanged("a", "c"):
        err = refused(kube.write, how, "c", {"type": "NodePort",
                                             "ports": ports_with(c, {1: 30080})})
    assert_invalid(err, "c", "spec.ports[1].nodePort", f"Invalid value: 30080: {TAKEN}")
    assert kube.port_is_taken(30080)


# --- two ports of one Service with the same nodePort ----------------------------------------


@pytest.mark.parametrize("how", WRITERS)
def test_duplicate_node_port_within_one_service_on_update(kube: Cluster, how: str) -> None:
    b = two_port_service(kube)
    with kube.unchanged("b"):
        err = refused(kube.write, how, "b", {"ports": ports_with(b, {1: 30081})})
    assert_bare_500(err, "duplicate nodePort: {TCP 30081}")
    with kube.unchanged("b"):
        err = refused(kube.write, how, "b", {"ports": ports_with(b, {0: 30095, 1: 30095})})
    assert_bare_500(err, "duplicate nodePort: {TCP 30095}")
    assert not kube.port_is_taken(30095)
    assert kube.port_is_taken(30081)
    assert kube.port_is_taken(30082)


def test_duplicate_node_port_within_one_service_on_create(kube: Cluster) -> None:
    with kube.unchanged():
        err = refused(kube.create, "c", type="NodePort", ports=[
            {"name": "http", "port": 80, "nodePort": 30095},
            {"name": "https", "port": 443, "nodePort": 30095}])
    assert_invalid(err, "c", "spec.ports[1].nodePort", f"Invalid value: 30095: {TAKEN}")
    assert not kube.port_is_taken(30095)


# --- healthCheckNodePort ----------------------------------------------------------------------


@pytest.mark.parametrize("how", WRITERS)
@pytest.mark.parametrize(("port", "why"), [(30080, TAKEN), (32768, OUT_OF_RANGE)])
def test_health_check_node_port_that_cannot_be_had_on_update(kube: Cluster, how: str, port: int,
                                                             why: str) -> None:
    """To LoadBalancer with externalTrafficPolicy Local: upstream wraps the health check port's
    allocation error in an InternalError. The nodePorts drawn for the new type are freed."""
    kube.create("a", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    kube.create("c", ports=[{"name": "http", "port": 80}, {"name": "https", "port": 443}])
    b = two_port_service(kube)
    for name in ("b", "c"):
        with kube.unchanged("a", "b", "c"):
            err = refused(kube.write, how, name, {
                "type": "LoadBalancer", "externalTrafficPolicy": "Local",
                "healthCheckNodePort": port})
        assert_internal(err, f"failed to allocate requested HealthCheck NodePort {port}: {why}")
    assert node_ports(kube.get("b")) == node_ports(b)
    assert kube.port_is_taken(30080)
    assert kube.port_is_taken(30081)


@pytest.mark.parametrize(("port", "why"), [(30080, TAKEN), (32768, OUT_OF_RANGE)])
def test_health_check_node_port_that_cannot_be_had_on_create(kube: Cluster, port: int,
                                                             why: str) -> None:
    kube.create("a", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    with kube.unchanged("a"):
        err = refused(kube.create, "lb", type="LoadBalancer", externalTrafficPolicy="Local",
                      healthCheckNodePort=port, ports=[{"port": 80, "nodePort": 30090}])
    assert_internal(err, f"failed to allocate requested HealthCheck NodePort {port}: {why}")
    assert not kube.port_is_taken(30090)
    assert kube.port_is_taken(30080)


# --- clusterIP ----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", WRITERS)
def test_external_name_to_cluster_ip_with_a_taken_ip(kube: Cluster, how: str) -> None:
    ip = kube.create("a")["spec"]["clusterIP"]
    kube.create("en", type="ExternalName", externalName="db.example.com")
    with kube.unchanged("a", "en"):
        err = refused(kube.write, how, "en", {"type": "ClusterIP", "clusterIP": ip})
    assert_invalid(err, "en", "spec.clusterIPs",
                   f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: {IP_TAKEN}')
    assert kube.ip_is_taken(ip)


@pytest.mark.parametrize("how", WRITERS)
def test_failed_external_name_conversion_frees_its_cluster_ip(kube: Cluster, how: str) -> None:
    """The requested clusterIP is reserved before the nodePort fails: free again afterwards."""
    kube.create("a", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    kube.create("en", type="ExternalName", externalName="db.example.com")
    with kube.unchanged("a", "en"):
        err = refused(kube.write, how, "en", {
            "type": "NodePort", "clusterIP": "10.96.0.200",
            "ports": [{"port": 80, "targetPort": 80, "nodePort": 30080}]})
    assert_invalid(err, "en", "spec.ports[0].nodePort", f"Invalid value: 30080: {TAKEN}")
    assert not kube.ip_is_taken("10.96.0.200")
    assert kube.port_is_taken(30080)


@pytest.mark.parametrize("how", WRITERS)
def test_dual_stack_upgrade_to_a_taken_or_outside_secondary_ip(kube: Cluster, how: str) -> None:
    taken = kube.create("d", ipFamilyPolicy="RequireDualStack")["spec"]["clusterIPs"][1]
    primary = kube.create("b")["spec"]["clusterIP"]
    for ip, why in ((taken, IP_TAKEN),
                    ("fd00:99::1", "the provided network does not match the current range")):
        with kube.unchanged("b", "d"):
            err = refused(kube.write, how, "b", {
                "ipFamilyPolicy": "RequireDualStack", "clusterIPs": [primary, ip]})
        assert_invalid(err, "b", "spec.clusterIPs",
                       f'Invalid value: []string{{"{primary}", "{ip}"}}: failed to allocate IP '
                       f"{ip}: {why}")


@pytest.mark.parametrize("how", WRITERS)
def test_changing_cluster_ip_to_a_taken_one_is_a_validation_error(kube: Cluster,
                                                                  how: str) -> None:
    """An update allocates no primary IP (upstream's updateClusterIPs): the change itself is
    refused, by ValidateServiceUpdate, and nothing is taken or released."""
    ip = kube.create("a")["spec"]["clusterIP"]
    own = kube.create("b")["spec"]["clusterIP"]
    with kube.unchanged("a", "b"):
        err = refused(kube.write, how, "b", {"clusterIP": ip, "clusterIPs": [ip]})
    assert_invalid(err, "b", "spec.clusterIPs[0]",
                   f'Invalid value: []string{{"{ip}"}}: may not change once set')
    assert kube.ip_is_taken(ip)
    assert kube.ip_is_taken(own)


def test_create_with_a_taken_or_outside_cluster_ip(kube: Cluster) -> None:
    ip = kube.create("a")["spec"]["clusterIP"]
    for wanted, why in ((ip, IP_TAKEN),
                        ("192.168.0.1", "the provided network does not match the current range"),
                        ("10.96.0.0", "provided IP 10.96.0.0 is not in the valid range")):
        with kube.unchanged("a"):
            err = refused(kube.create, "c", type="NodePort", clusterIP=wanted,
                          ports=[{"port": 80, "nodePort": 30090}])
        assert_invalid(err, "c", "spec.clusterIPs",
                       f'Invalid value: []string{{"{wanted}"}}: failed to allocate IP {wanted}: '
                       f"{why}")
        assert not kube.port_is_taken(30090)


# --- dry run ------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", WRITERS)
def test_dry_run_update_answers_but_takes_and_releases_nothing(kube: Cluster, how: str) -> None:
    b = two_port_service(kube)
    with kube.unchanged("b"):
        answer = kube.write(how, "b", {"ports": ports_with(b, {1: 30090})}, dry_run=True)
    assert [p.node_port for p in answer.spec.ports] == [30081, 30090]
    assert not kube.port_is_taken(30090)
    assert kube.port_is_taken(30082)
    kube.create("a", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    with kube.unchanged("a", "b"):
        err = refused(kube.write, how, "b", {"ports": ports_with(b, {1: 30080})},
                      dry_run=True)
    assert_invalid(err, "b", "spec.ports[1].nodePort", f"Invalid value: 30080: {TAKEN}")
