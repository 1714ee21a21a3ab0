"""Writing the kubeconfig that points real clients (kubectl, the Python client) at a sandbox.

Under TLS the sandbox's own CA goes in as `certificate-authority-data`, so clients verify the
server exactly as they would a real cluster's, with no `insecure-skip-tls-verify`.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml


def render(server: str, token: str, name: str = "lbctl-sandbox",
           ca_pem: bytes | None = None, user: str = "admin") -> str:
    cluster: dict[str, str] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": f"{name}-{user}", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-{user}",
                                                "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write(path: str | os.PathLike[str], server: str, token: str,
          ca_pem: bytes | None = None, user: str = "admin") -> Path:
    """Write atomically with mode 0600 (it holds a token)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(render(server, token, ca_pem=ca_pem, user=user))
    tmp.replace(target)
    return target
