"""A Service's public IP: ours (`<stem>`, Standard, Static, tagged with the cluster and the
Service), or the user's, named (`azure-pip-name`) or found by its address
(`spec.loadBalancerIP`, `azure-load-balancer-ipv4`: ARM cannot create a public IP at a chosen
address, so one at that address must already exist).

Why separate from the load balancer: a public IP is a resource of its own, written before the
frontend that references it (ARM refuses a reference to a missing IP) and deleted only after
the LB write that dropped the frontend (ARM refuses to delete an IP in use). Ours carries the
ownership tags; one without them, or with another balancer's, is never touched: the Service
fails naming it. The user's is never changed or deleted; when a Service moves from ours to
theirs, ours goes once the frontend no longer uses it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import providers.azure.annotations as a
from providers.errors import PermanentError, TransientError

from . import names
from .client import ArmClient
from .desired import Desired
from .errors import ArmError
from .merge import covers
from .settings import AzureSettings

log = logging.getLogger(__name__)


SNAPSHOT_SECONDS = 10.0
"""How long one listing of a resource group's public IPs answers for all Services: a wave of
200 creates, or a resync of 300 Services, reads the group once instead of each IP."""


class PublicIps:
    """Thread-safe; one per provider (it holds the listings)."""

    def __init__(self, arm: ArmClient, settings: AzureSettings, cluster: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.arm, self.s, self.cluster = arm, settings, cluster
        self._clock = clock
        self._lock = threading.Lock()
        self._listed: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}

    def _listing(self, group: str, fresh: bool = False) -> dict[str, dict[str, Any]]:
        """The group's public IPs by name, listed at most every SNAPSHOT_SECONDS (the first
        caller lists, the others wait for its answer)."""
        with self._lock:
            held = self._listed.get(group)
            if held is not None and not fresh and self._clock() - held[0] < SNAPSHOT_SECONDS:
                return held[1]
            listed = {str(p["name"]): p for p in self.arm.list("publicIPAddresses", group)}
            self._listed[group] = (self._clock(), listed)
            return listed

    def _remember(self, group: str, body: dict[str, Any] | None, name: str) -> None:
        with self._lock:
            held = self._listed.get(group)
            if held is None:
                return
            if body is None:
                held[1].pop(name, None)
            else:
                held[1][name] = body

    def resolve(self, want: Desired) -> tuple[Desired, str | None]:
        """`want` with its frontend on the public IP, and that IP's address (internal: None).
        Creates ours when missing; refuses, naming the field, a user's IP that is not there,
        or is in use by another frontend."""
        if want.internal:
            return want, None
        if want.public_ip_ours:
            return want, self._ours(want)
        field = a.field(a.PIP_NAME) if want.public_ip_name else "spec.loadBalancerIP"
        found = self._theirs(want, field)
        config = (found.get("properties") or {}).get("ipConfiguration") or {}
        user = str(config.get("id", ""))
        frontend = want.parts.frontend["name"]
        if user and not user.lower().endswith(f"/frontendipconfigurations/{frontend}".lower()):
            raise PermanentError(field, f"public IP {found.get('name')} is in use by "
                                        f"{user.rsplit('/', 3)[-3]}/{user.rsplit('/', 1)[-1]}")
        address = (found.get("properties") or {}).get("ipAddress")
        if want.requested_ip and address != want.requested_ip:
            raise PermanentError(field, f"public IP {found.get('name')} holds {address}, not "
                                        f"{want.requested_ip}")
        resolved = want if want.public_ip_name else want.with_public_ip(str(found["id"]))
        return resolved, str(address) if address else None

    def _theirs(self, want: Desired, field: str) -> dict[str, Any]:
        group = want.public_ip_group
        if want.public_ip_name:
            found = self._listing(group).get(want.public_ip_name) or self.arm.get(
                "publicIPAddresses", group, want.public_ip_name)
            if found is None:
                raise PermanentError(field, f"no public IP {want.public_ip_name} in resource "
                                            f"group {group}")
            return found
        for fresh in (False, True):  # made since the listing? list again before refusing
            for pip in self._listing(group, fresh).values():
                if (pip.get("properties") or {}).get("ipAddress") == want.requested_ip:
                    return pip
        raise PermanentError(field, f"{want.requested_ip} is not the address of a public IP "
                                    f"in resource group {group}: create one first (az network "
                                    "public-ip create --sku Standard ...) and ask for its "
                                    "address, or name it with azure-pip-name")

    def _ours(self, want: Desired) -> str | None:
        assert want.public_ip_name is not None and want.public_ip is not None
        group, name = want.public_ip_group, want.public_ip_name
        found = self._listing(group).get(name)
        if found is None:  # not there a moment ago: create it (only if it still is not)
            try:
                found = self.arm.put("publicIPAddresses", group, name, body=want.public_ip,
                                     create_only=True)
            except ArmError as exc:
                if not exc.precondition_failed:
                    raise
                found = self.arm.get("publicIPAddresses", group, name)
                if found is None:
                    raise
            self._remember(group, found, name)
        if not names.is_owned(found.get("tags"), self.cluster, want.balancer):
            raise PermanentError("metadata.name", f"public IP {name} in {group} exists and "
                                                  "is not this Service's: lbctl leaves it alone")
        if not covers(want.public_ip, found):
            found = self.arm.put("publicIPAddresses", group, name, body=want.public_ip,
                                 if_match=str(found.get("etag") or "") or None)
            self._remember(group, found, name)
        address = (found.get("properties") or {}).get("ipAddress")
        return str(address) if address else None

    def release(self, balancer: str, group: str, keep: str | None = None,
                strict: bool = False) -> bool:
        """Delete our public IP of `balancer` (unless it is `keep`, the one in use) once no
        frontend uses it; answers whether one was deleted. `strict` (a delete): one still in
        use is a TransientError, so the Service keeps its finalizer and the delete is tried
        again, instead of leaving the IP behind."""
        name = names.public_ip(balancer)
        if name == keep:
            return False
        found = self.arm.get("publicIPAddresses", group, name)
        if found is None or not names.is_owned(found.get("tags"), self.cluster, balancer):
            return False
        user = ((found.get("properties") or {}).get("ipConfiguration") or {}).get("id")
        if user:
            if strict:
                raise TransientError(f"public IP {name} is still used by {user}: deleting it "
                                     "once that is gone")
            log.info("public IP %s is still in use: kept for now", name)
            return False
        self.arm.delete("publicIPAddresses", group, name)
        self._remember(group, None, name)
        return True
