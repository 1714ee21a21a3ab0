"""Pod IPs for simulated nodes: 127.0.20.1 .. 127.0.23.254, unique, released on delete.

Pods live on loopback so the sandbox's traffic process can really bind their addresses: 127.0.10.x
are the nodes, 127.0.20.0/22 the pods (addresses ending in .0 or .255 are skipped, so every IP
looks like an ordinary host address). Allocation moves round-robin through the range, like the
host-local IPAM plugin, so an address just freed is the last to be handed out again: clients
still holding the old endpoint do not reach a different pod. Addresses a pod already has (set by
someone else) are respected and reserved.
"""

from __future__ import annotations

import ipaddress

from ..storage.store import Key

FIRST, LAST = "127.0.20.1", "127.0.23.254"


class PodIPs:
    """Which pod holds which address of the range."""

    def __init__(self, first: str = FIRST, last: str = LAST) -> None:
        low, high = int(ipaddress.IPv4Address(first)), int(ipaddress.IPv4Address(last))
        self._pool = [str(ipaddress.IPv4Address(v)) for v in range(low, high + 1)
                      if v % 256 not in (0, 255)]
        self._index = {ip: i for i, ip in enumerate(self._pool)}
        self._holder: dict[str, Key] = {}
        self._by_pod: dict[Key, str] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._by_pod)

    @property
    def size(self) -> int:
        return len(self._pool)

    def of(self, pod: Key) -> str | None:
        return self._by_pod.get(pod)

    def observe(self, pod: Key, ip: str | None) -> None:
        """The stored pod has `ip`: reserve it when it is ours to hand out."""
        if not ip or self._by_pod.get(pod) == ip or ip not in self._index:
            return
        if self._holder.get(ip, pod) != pod:
            return  # someone else's already; the API does not stop a duplicate, we do not steal
        self.release(pod)
        self._holder[ip] = pod
        self._by_pod[pod] = ip

    def allocate(self, pod: Key) -> str | None:
        """The pod's address, a fresh one if it has none; None when the range is full."""
        held = self._by_pod.get(pod)
        if held is not None:
            return held
        for step in range(len(self._pool)):
            i = (self._next + step) % len(self._pool)
            ip = self._pool[i]
            if ip not in self._holder:
                self._holder[ip] = pod
                self._by_pod[pod] = ip
                self._next = i + 1
                return ip
        return None

    def release(self, pod: Key) -> None:
        ip = self._by_pod.pop(pod, None)
        if ip is not None and self._holder.get(ip) == pod:
            del self._holder[ip]
