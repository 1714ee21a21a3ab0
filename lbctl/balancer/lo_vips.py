"""VIPs bound on `lo`: how a host that announces a VIP (L2 or BGP) receives its packets.

Why on `lo` as a /32 (/128): the userspace data plane binds VIP:port sockets, and the kernel
delivers a packet locally only to an address it owns; on `lo` the address is reachable through
every interface without being announced by the kernel on any of them, provided ARP is strict
(`arp_ignore=1`, `arp_announce=2`: metallb#153's lesson), which `prepare_interface` sets.
Each announcer marks its addresses (IPv4 by label, IPv6 by metric, since IPv6 addresses have
no labels) so `clean_stale_vips` removes what a crashed run of *that* announcer left, and
never the other's: L2 uses `lo:lbctl` / 47017, BGP `lo:lbctlbgp` / 47018.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

VIP_LABEL = "lo:lbctl"
VIP_METRIC = 47017
BGP_LABEL = "lo:lbctlbgp"
BGP_METRIC = 47018


def _norm(vip: str) -> str:
    return str(ipaddress.ip_address(vip))


def prepare_interface(interface: str, proc: Path = Path("/proc/sys/net/ipv4/conf")) -> None:
    """arp_ignore=1 (answer only for addresses on the receiving interface) and arp_announce=2
    (never use a VIP as ARP source) so the kernel stays silent about VIPs bound on lo.

    A value already in place is left alone: in a container `/proc/sys` is read-only, and the
    Helm chart sets them from a privileged init container; only a wrong value that cannot be
    written is an error (OSError naming the key and what to do)."""
    for key, value in (("arp_ignore", "1"), ("arp_announce", "2")):
        path = proc / interface / key
        if path.read_text().strip() == value:
            continue
        try:
            path.write_text(value)
        except OSError as exc:
            raise OSError(exc.errno, f"{path} is {path.read_text().strip()}, must be {value} "
                                     f"(set it before the daemon starts, e.g. the chart's init "
                                     f"container): {exc.strerror}", str(path)) from exc


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def bind_vip(vip: str, owned: bool, device: str = "lo", label: str = VIP_LABEL,
             metric: int = VIP_METRIC) -> None:
    """Add (owned) or remove the VIP as a host route address on `device`; idempotent."""
    net = ipaddress.ip_address(vip)
    prefix = f"{net}/{net.max_prefixlen}"
    if owned:
        extra = ["label", label] if net.version == 4 else ["nodad"]
        done = _ip("addr", "replace", prefix, "dev", device, *extra, "metric", str(metric))
    else:
        done = _ip("addr", "del", prefix, "dev", device)
        if done.returncode != 0 and ("not found" in done.stderr
                                     or "Cannot assign" in done.stderr):
            return  # not bound: nothing to do
    if done.returncode != 0:
        raise OSError(f"ip addr {'add' if owned else 'del'} {prefix} dev {device}: "
                      f"{done.stderr.strip()}")


def clean_stale_vips(label: str = VIP_LABEL, device: str = "lo",
                     keep: Iterable[str] = (), metric: int = VIP_METRIC) -> list[str]:
    """Remove the VIPs a previous (crashed) run left on `device`: IPv4 ones by label, IPv6 ones
    (which have no labels) by metric. Answers what was removed."""
    kept = {_norm(v) for v in keep}
    removed = []
    for vip in _listed(label, metric, device):
        if _norm(vip) not in kept:
            bind_vip(vip, False, device, label, metric)
            removed.append(vip)
    return removed


class LoBinding:
    """The VIPs one announcer keeps on `lo` (BGP: every VIP it may announce, bound while
    served, so packets routed to this host reach the userspace data plane's sockets; the
    kernel data plane DNATs before routing and does not need it). `ip` runs on one worker
    thread, in order, off the event loop. Loopback VIPs (demos, tests) are local already and
    left alone. Without the right to change addresses (not root, no CAP_NET_ADMIN) the error
    is kept for the status and logged once; the host must then route the VIPs to itself."""

    def __init__(self, label: str = BGP_LABEL, metric: int = BGP_METRIC) -> None:
        self.label = label
        self.metric = metric
        self.bound: set[str] = set()
        self.error = ""
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lbctl-lo")
        self._started = False

    async def keep(self, vips: Iterable[str]) -> None:
        wanted = {_norm(v) for v in vips if not ipaddress.ip_address(v).is_loopback}
        loop = asyncio.get_running_loop()
        if not self._started:
            self._started = True
            try:
                removed = await loop.run_in_executor(self._pool, self._clean, wanted)
            except OSError as exc:
                self._failed(str(exc))
                return
            if removed:
                log.warning("removed VIPs a previous run left bound on lo: %s",
                            ", ".join(removed))
        for vip in sorted(wanted - self.bound) + sorted(self.bound - wanted):
            owned = vip in wanted
            try:
                await loop.run_in_executor(self._pool, self._bind, vip, owned)
            except OSError as exc:
                self._failed(str(exc))
                return
            (self.bound.add if owned else self.bound.discard)(vip)
        self.error = ""

    def _clean(self, keep: set[str]) -> list[str]:
        removed = clean_stale_vips(self.label, keep=keep, metric=self.metric)
        self.bound = {_norm(v) for v in _listed(self.label, self.metric)}
        return removed

    def _bind(self, vip: str, owned: bool) -> None:
        bind_vip(vip, owned, label=self.label, metric=self.metric)

    def _failed(self, message: str) -> None:
        if message != self.error:
            log.warning("VIPs cannot be bound on lo (%s): the host must route them to "
                        "itself for the userspace data plane", message)
        self.error = message

    async def close(self) -> None:
        await self.keep(())
        self._pool.shutdown(wait=True)


def _listed(label: str, metric: int, device: str = "lo") -> list[str]:
    """The addresses on `device` that carry this announcer's mark."""
    done = _ip("-j", "addr", "show", "dev", device)
    if done.returncode != 0:
        raise OSError(f"ip addr show dev {device}: {done.stderr.strip()}")
    out = []
    for link in json.loads(done.stdout or "[]"):
        for info in link.get("addr_info", []):
            ours = info.get("label") == label if info.get("family") == "inet" \
                else info.get("metric") == metric
            if ours and info.get("local"):
                out.append(str(info["local"]))
    return out
