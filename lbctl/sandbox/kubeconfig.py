"""Writing the kubeconfig that points real clients (kubectl, the Python client) at a sandbox."""

from __future__ import annotations

import os
from pathlib import Path

import yaml


def render(server: str, token: str, name: str = "lbctl-sandbox") -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": f"{name}-admin", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin",
                                                "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write(path: str | os.PathLike[str], server: str, token: str) -> Path:
    """Write atomically with mode 0600 (it holds an admin token)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(render(server, token))
    tmp.replace(target)
    return target
