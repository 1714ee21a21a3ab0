"""Node admission: core's ValidateNode and ValidateNodeUpdate.

The controller under test creates, taints, cordons and patches Nodes, and real clusters refuse
some of those writes (a second providerID, a changed podCIDR, a bad taint effect). The sandbox
must refuse the same ones with the same 422 messages, so these checks follow upstream,
including its quirk of reporting taint errors under `metadata.taints`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from lbctl.sandbox.admission.meta import (
    invalid_each,
    required_one_of,
    validate_object_meta,
    validate_object_meta_update,
)
from lbctl.sandbox.errors import FieldError, forbidden, invalid
from lbctl.sandbox.name_formats import CIDR_ERROR, is_label_value, is_qualified_name, parse_cidr

Obj = Mapping[str, Any]

TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
_TAINTS_PATH = "metadata.taints"  # sic: upstream validates spec.taints under this path
_POD_CIDRS = "spec.podCIDRs"
_POD_CIDR_CHANGED = 'node updates may not change podCIDR except from "" to valid'
_PROVIDER_ID_CHANGED = 'node updates may not change providerID except from "" to valid'


def _spec(node: Obj) -> Obj:
    spec = node.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def pod_cidrs(node: Obj) -> list[str]:
    """The node's CIDRs as the internal API sees them: v1's singular `podCIDR` wins when it is
    set and disagrees with `podCIDRs[0]`, and stands in when `podCIDRs` is empty."""
    spec = _spec(node)
    single, many = spec.get("podCIDR") or "", list(spec.get("podCIDRs") or [])
    if single and (not many or many[0] != single):
        return [single]
    return many


def _duplicate(path: str, value: Any, detail: str = "") -> FieldError:
    return FieldError("FieldValueDuplicate", path, value, detail)


def _taint_value(taint: Obj) -> dict[str, Any]:
    """A taint as json.Marshal prints it (core.Taint field order, omitempty honoured)."""
    out: dict[str, Any] = {"key": taint.get("key", "")}
    if taint.get("value"):
        out["value"] = taint["value"]
    out["effect"] = taint.get("effect", "")
    if taint.get("timeAdded"):
        out["timeAdded"] = taint["timeAdded"]
    return out


def validate_taints(taints: Sequence[Obj], path: str = _TAINTS_PATH) -> list[FieldError]:
    """validateNodeTaints: qualified keys, label values, known effects, unique (key, effect)."""
    errs: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(taints):
        at = f"{path}[{i}]"
        key, effect = taint.get("key", ""), taint.get("effect", "")
        errs += invalid_each(f"{at}.key", key, is_qualified_name(key))
        if msgs := is_label_value(taint.get("value", "")):
            errs.append(invalid(f"{at}.value", taint.get("value", ""), ";".join(msgs)))
        errs += required_one_of(f"{at}.effect", effect, TAINT_EFFECTS)
        if (key, effect) in seen:
            errs.append(_duplicate(at, _taint_value(taint),
                                   "taints must be unique by key and effect pair"))
            continue
        seen.add((key, effect))
    return errs


def _family(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> int:
    """Go counts an IPv4-mapped IPv6 CIDR as IPv4."""
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped:
        return 4
    return net.version


def _validate_pod_cidrs(cidrs: list[str]) -> list[FieldError]:
    errs = [invalid(f"{_POD_CIDRS}[{i}]", c, CIDR_ERROR)
            for i, c in enumerate(cidrs) if parse_cidr(c) is None]
    if len(cidrs) <= 1:
        return errs
    parsed = [parse_cidr(c) for c in cidrs]
    bad = next((c for c, p in zip(cidrs, parsed, strict=True) if p is None), None)
    if bad is not None:
        errs.append(FieldError("InternalError", _POD_CIDRS, detail=(
            "invalid PodCIDRs. failed to check with dual stack with error:failed to parse cidr "
            f'value:"{bad}" with error:invalid CIDR address: {bad}')))
    families = {_family(p) for p in parsed if p is not None}
    if bad is not None or families != {4, 6} or len(cidrs) > 2:
        errs.append(invalid(_POD_CIDRS, cidrs, "may specify no more than one CIDR for each IP "
                                               "family"))
    seen: set[str] = set()
    for i, cidr in enumerate(cidrs):
        if cidr in seen:
            errs.append(_duplicate(f"{_POD_CIDRS}[{i}]", cidr))
        seen.add(cidr)
    return errs


def validate_node(node: Obj) -> list[FieldError]:
    """ValidateNode, run on create and (first) on every update."""
    errs = validate_object_meta(node, False, "subdomain")
    if taints := _spec(node).get("taints"):
        errs += validate_taints(taints)
    if cidrs := pod_cidrs(node):
        errs += _validate_pod_cidrs(cidrs)
    return errs


def validate_node_update(old: Obj, new: Obj) -> list[FieldError]:
    """ValidateNodeUpdate: what may change on an existing node.

    The node strategy's update check is `validate_node(new) + validate_node_update(old, new)`
    (an error both find, like a bad taint, is then listed twice, as upstream lists it; the 422
    message aggregates duplicates away). The nodes/status subresource runs this one alone.
    """
    errs = validate_object_meta_update(old, new)
    seen: list[Any] = []
    for i, address in enumerate((new.get("status") or {}).get("addresses") or []):
        value = {"type": address.get("type", ""), "address": address.get("address", "")}
        if value in seen:
            errs.append(_duplicate(f"status.addresses[{i}]", value))
        seen.append(value)
    old_cidrs, new_cidrs = pod_cidrs(old), pod_cidrs(new)
    if old_cidrs and len(old_cidrs) != len(new_cidrs):
        errs.append(forbidden(_POD_CIDRS, _POD_CIDR_CHANGED))
    elif old_cidrs:
        errs.extend(forbidden(_POD_CIDRS, _POD_CIDR_CHANGED)
                    for was, now in zip(old_cidrs, new_cidrs, strict=True) if was != now)
    old_provider = _spec(old).get("providerID") or ""
    if old_provider and old_provider != (_spec(new).get("providerID") or ""):
        errs.append(forbidden("spec.providerID", _PROVIDER_ID_CHANGED))
    if taints := _spec(new).get("taints"):
        errs += validate_taints(taints)
    if (_spec(new).get("externalID") or "") != (_spec(old).get("externalID") or ""):
        errs.append(forbidden("spec.externalID", "may not be updated"))
    return errs

