"""nodePort and healthCheckNodePort allocation for Services, after kube's `storage/alloc.go`.

`initNodePorts` gives a new NodePort or LoadBalancer Service the nodePorts it asks for and draws
the rest (one per port number, so TCP and UDP of the same port share it),
`txnUpdateNodePorts` reserves what an update adds and releases what it drops once it succeeds,
and `allocHealthCheckNodePort` serves LoadBalancers with externalTrafficPolicy Local. A taken or
out-of-range nodePort is a 422 naming the port; an exhausted range, or any health check port
failure, is upstream's 500. Reservations go through the request's `Transaction`.
"""

from __future__ import annotations

from typing import Any

from lbctl.sandbox.admission.allocators import AllocationError, RangeFullError
from lbctl.sandbox.admission.services_allocation import Transaction
from lbctl.sandbox.admission.services_fields import (
    CLUSTER_IP,
    EXTERNAL_NAME,
    needs_health_check,
    needs_node_port,
    node_ports,
    number,
    ports_of,
    service_type,
    should_allocate_node_ports,
    spec_of,
)
from lbctl.sandbox.admission.services_formats import rejected
from lbctl.sandbox.errors import ApiError, internal, invalid


def _take_node_port(svc: dict[str, Any], txn: Transaction, index: int, port: int) -> None:
    """Reserve the nodePort `spec.ports[index]` asks for, or refuse the Service."""
    try:
        txn.take_port(port)
    except AllocationError as err:
        raise rejected(svc, [invalid(f"spec.ports[{index}].nodePort", port, str(err))]) from None


def _next_node_port(txn: Transaction) -> int:
    try:
        return txn.next_port()
    except RangeFullError as err:
        raise internal(f"failed to allocate a nodePort: {err}") from None


def init_node_ports(svc: dict[str, Any], txn: Transaction) -> None:
    """`initNodePorts`: requested nodePorts, else new ones; one per port number, so TCP and
    UDP of the same port share it."""
    spec = svc["spec"]
    ports = ports_of(spec)
    by_number: dict[Any, int] = {}
    for i, port in enumerate(ports):
        requested = number(port.get("nodePort"))
        if requested == 0 and not should_allocate_node_ports(spec):
            continue
        key = port.get("port")
        given = by_number.get(key, 0)
        if given == 0:
            wanted = next((number(p.get("nodePort")) for p in ports
                           if p.get("port") == key and number(p.get("nodePort"))), 0)
            if wanted:
                _take_node_port(svc, txn, i, wanted)
            else:
                wanted = _next_node_port(txn)
            port["nodePort"] = by_number[key] = wanted
        elif requested != given:
            if requested == 0:
                port["nodePort"] = given
            else:
                _take_node_port(svc, txn, i, requested)


def update_node_ports(svc: dict[str, Any], old_svc: dict[str, Any], txn: Transaction) -> None:
    """`txnUpdateNodePorts`: allocate new nodePorts, release dropped ones on success."""
    spec, old = svc["spec"], spec_of(old_svc)
    if needs_node_port(old) and service_type(spec) in (EXTERNAL_NAME, CLUSTER_IP):
        for old_port in node_ports(old):
            txn.release_port_later(old_port)
    if needs_node_port(spec):
        old_numbers = node_ports(old)
        seen: list[tuple[Any, int]] = []
        taken_here: set[int] = set()
        for i, port in enumerate(ports_of(spec)):
            value = number(port.get("nodePort"))
            if value == 0 and not should_allocate_node_ports(spec):
                continue
            if value == 0:
                value = port["nodePort"] = _next_node_port(txn)
            elif value not in old_numbers and value not in taken_here:
                _take_node_port(svc, txn, i, value)
                taken_here.add(value)
            key = (port.get("protocol"), value)
            if key in seen:
                raise ApiError(500, "", f"duplicate nodePort: {{{key[0]} {value}}}")
            seen.append(key)
        kept = node_ports(spec)
        for value in old_numbers:
            if value not in kept:
                txn.release_port_later(value)
    if not needs_health_check(old) and needs_health_check(spec):
        alloc_health_check_port(svc, txn)
    elif (needs_health_check(old) and not needs_health_check(spec)
          and (previous := number(old.get("healthCheckNodePort")))):
        txn.release_port_later(previous)


def alloc_health_check_port(svc: dict[str, Any], txn: Transaction) -> None:
    """`allocHealthCheckNodePort`; upstream answers its failures with a 500."""
    spec = svc["spec"]
    wanted = number(spec.get("healthCheckNodePort"))
    try:
        if wanted:
            txn.take_port(wanted)
        else:
            spec["healthCheckNodePort"] = txn.next_port()
    except AllocationError as err:
        if wanted:
            raise internal(f"failed to allocate requested HealthCheck NodePort {wanted}: "
                           f"{err}") from None
        raise internal(f"failed to allocate a HealthCheck NodePort 0: {err}") from None
