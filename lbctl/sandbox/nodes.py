"""The sandbox's nodes: `--nodes N` simulated ones or a `--nodes-file` describing each.

Simulated nodes live on loopback (InternalIP 127.0.10.K) so traffic can really reach them;
nodes from a file may carry any providerID and addresses (e.g. `aws:///us-east-1a/i-0abc`) so a
cloud provider's tests see the nodes that cloud would. A bad file is refused with a message naming
the entry and field, before the server starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbctl.parsing import YamlError, load_yaml

ZONES = ("sandbox-zone-a", "sandbox-zone-b", "sandbox-zone-c")
SIMULATED = "sandbox.lbctl.io/simulated"
"""Node annotation: "true" when the sandbox serves this node's traffic (kube-proxy role)."""
STOPPED = "sandbox.lbctl.io/stopped"
"""Node annotation: "true" stops the node (its NodePorts and pods stop answering; pods go
NotReady) until it is removed: how tests and the demo kill a node."""


class NodesFileError(ValueError):
    """A `--nodes-file` that cannot be used; the message names the entry and field."""


@dataclass(frozen=True)
class NodeSpec:
    name: str
    provider_id: str
    addresses: tuple[tuple[str, str], ...]
    labels: dict[str, str] = field(default_factory=dict)
    simulate: bool = True

    @property
    def internal_ip(self) -> str | None:
        return next((a for t, a in self.addresses if t == "InternalIP"), None)


def simulated(count: int) -> list[NodeSpec]:
    if not 0 <= count <= 250:
        raise NodesFileError("--nodes: must be between 0 and 250")
    out = []
    for k in range(1, count + 1):
        name = f"sandbox-node-{k}"
        zone = ZONES[(k - 1) % len(ZONES)]
        out.append(NodeSpec(name, f"sandbox://{name}",
                            (("InternalIP", f"127.0.10.{k}"), ("Hostname", name)),
                            {"topology.kubernetes.io/zone": zone,
                             "topology.kubernetes.io/region": "sandbox"}))
    return out


def from_file(path: str | Path) -> list[NodeSpec]:
    try:
        doc = load_yaml(Path(path).read_text())
    except (OSError, YamlError) as exc:
        raise NodesFileError(f"{path}: {exc}") from exc
    entries = doc.get("nodes") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise NodesFileError(f"{path}: expected a list of nodes (or a mapping with 'nodes')")
    specs = [_entry(e, f"{path}: nodes[{i}]") for i, e in enumerate(entries)]
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise NodesFileError(f"{path}: duplicate node name {dupes[0]!r}")
    return specs


def _entry(entry: Any, where: str) -> NodeSpec:
    if not isinstance(entry, dict):
        raise NodesFileError(f"{where}: must be a mapping")
    unknown = set(entry) - {"name", "providerID", "addresses", "labels", "simulate"}
    if unknown:
        raise NodesFileError(f"{where}.{sorted(unknown)[0]}: unknown field")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise NodesFileError(f"{where}.name: required")
    raw = entry.get("addresses") or []
    if isinstance(raw, dict):
        raw = [{"type": k, "address": v} for k, v in raw.items()]
    if not isinstance(raw, list):
        raise NodesFileError(f"{where}.addresses: must be a list of {{type, address}}")
    addresses = []
    for j, item in enumerate(raw):
        if not (isinstance(item, dict) and isinstance(item.get("type"), str)
                and isinstance(item.get("address"), str)):
            raise NodesFileError(f"{where}.addresses[{j}]: needs string 'type' and 'address'")
        addresses.append((item["type"], item["address"]))
    labels = entry.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise NodesFileError(f"{where}.labels: must map strings to strings")
    simulate = entry.get("simulate", True)
    if not isinstance(simulate, bool):
        raise NodesFileError(f"{where}.simulate: must be true or false")
    provider_id = entry.get("providerID", "")
    if not isinstance(provider_id, str):
        raise NodesFileError(f"{where}.providerID: must be a string")
    return NodeSpec(name, provider_id, tuple(addresses), dict(labels), simulate)


def node_object(spec: NodeSpec) -> dict[str, Any]:
    """The Node as a kubelet would register it."""
    labels = {"kubernetes.io/hostname": spec.name, "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", **spec.labels}
    node: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels,
                     "annotations": {SIMULATED: "true" if spec.simulate else "false"}},
        "spec": {},
        "status": {
            "addresses": [{"type": t, "address": a} for t, a in spec.addresses],
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "kubeProxyVersion": "v1.33.0",
                         "operatingSystem": "linux", "architecture": "amd64",
                         "containerRuntimeVersion": "sandbox://1.0", "osImage": "lbctl sandbox",
                         "kernelVersion": "", "machineID": "", "systemUUID": "",
                         "bootID": ""},
        },
    }
    if spec.provider_id:
        node["spec"]["providerID"] = spec.provider_id
    return node
