"""Service port validation: each `spec.ports[]` entry, then the nodePort and uniqueness rules.

Part of `ValidateService` (pkg/apis/core/validation/validation.go), split out because ports are
checked in two places of upstream's order: every entry (`validateServicePort`: name, port,
protocol, targetPort, appProtocol) early on, and, after the Service type is known, the rules
across entries (no nodePort on a ClusterIP Service, no nodePort used twice per protocol, no
port used twice per protocol, the last reported as a Go struct). Paths and texts are upstream's.
"""

from __future__ import annotations

from typing import Any

from lbctl.sandbox.admission.meta import invalid_each, required_one_of
from lbctl.sandbox.admission.services_fields import CLUSTER_IP, text
from lbctl.sandbox.admission.services_formats import GoRendered, go_service_port_key
from lbctl.sandbox.errors import FieldError, duplicate, forbidden, required
from lbctl.sandbox.name_formats import (
    is_dns1123_label,
    is_qualified_name,
    is_valid_port_name,
    is_valid_port_num,
)

PROTOCOLS = ["SCTP", "TCP", "UDP"]


def validate_port_num_or_name(port: Any, path: str) -> list[FieldError]:
    if isinstance(port, str):
        return invalid_each(path, port, is_valid_port_name(port))
    return invalid_each(path, port, is_valid_port_num(port))


def _validate_service_port(port: dict[str, Any], require_name: bool, names: set[str],
                           path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = text(port.get("name"))
    if require_name and not name:
        errs.append(required(f"{path}.name"))
    elif name:
        errs += invalid_each(f"{path}.name", name, is_dns1123_label(name))
        if name in names:
            errs.append(duplicate(f"{path}.name", name))
        names.add(name)
    number_value = port.get("port", 0)
    errs += invalid_each(f"{path}.port", number_value, is_valid_port_num(number_value))
    errs += required_one_of(f"{path}.protocol", port.get("protocol"), PROTOCOLS)
    errs += validate_port_num_or_name(port.get("targetPort", 0), f"{path}.targetPort")
    app_protocol = port.get("appProtocol")
    if app_protocol is not None:
        errs += invalid_each(f"{path}.appProtocol", app_protocol,
                             is_qualified_name(text(app_protocol)))
    return errs


def validate_service_ports(ports: list[dict[str, Any]]) -> list[FieldError]:
    """Every port entry; names are required once there are two ports, and must be unique."""
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        errs += _validate_service_port(port, len(ports) > 1, names, f"spec.ports[{i}]")
    return errs


def validate_port_uniqueness(kind: str, ports: list[dict[str, Any]]) -> list[FieldError]:
    """nodePorts only off ClusterIP, each (protocol, nodePort) and (protocol, port) once."""
    errs: list[FieldError] = []
    if kind == CLUSTER_IP:
        errs += [forbidden(f"spec.ports[{i}].nodePort",
                           "may not be used when `type` is 'ClusterIP'")
                 for i, port in enumerate(ports) if port.get("nodePort")]
    seen_node_ports: set[tuple[Any, Any]] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        node_port = port.get("nodePort")
        if node_port:
            if (port.get("protocol"), node_port) in seen_node_ports:
                errs.append(duplicate(f"spec.ports[{i}].nodePort", node_port))
            seen_node_ports.add((port.get("protocol"), node_port))
    for i, port in enumerate(ports):
        port_key = (port.get("protocol"), port.get("port", 0))
        if port_key in seen_ports:
            errs.append(GoRendered("FieldValueDuplicate", f"spec.ports[{i}]",
                                   rendered=go_service_port_key(*port_key)))
        seen_ports.add(port_key)
    return errs
