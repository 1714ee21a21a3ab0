"""Maglev consistent hashing (Eisenbud et al., NSDI 2016) for picking a target per client.

Why Maglev rather than a hash ring: its lookup table gives every backend an almost equal share
(each backend claims slots in turn, so shares differ by at most one slot: with a prime table size
M > 100 x backends the imbalance stays under 1%), lookup is one hash and one list index, and when
a backend leaves only a small fraction of the other backends' slots move. That is what keeps
`sessionAffinity: ClientIP` sticky across target changes, and what the nftables data plane can
reuse as a DNAT map. Hashes come from BLAKE2b with distinct personalisations, never Python's
`hash()`, so two balancer processes (or a restart) build the identical table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

PRIMES: tuple[int, ...] = (251, 509, 1021, 2039, 4099, 8191, 16411, 32771, 65537)
"""Table sizes to choose from: primes, roughly doubling; 65537 is the cap (Katran's ring size)."""

MIN_SLOTS_PER_BACKEND = 100


def table_size(backends: int) -> int:
    """The smallest listed prime greater than 100 x `backends` (65537 beyond 655 backends)."""
    want = MIN_SLOTS_PER_BACKEND * max(backends, 1)
    for prime in PRIMES:
        if prime > want:
            return prime
    return PRIMES[-1]


def _hash64(data: bytes, person: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, person=person).digest(), "little")


def client_hash(key: str) -> int:
    """Stable 64-bit hash of a client key (an IP, or IP:port for per-flow hashing)."""
    return _hash64(key.encode(), b"lbctl-mg-client")


def permutation(key: str, size: int) -> tuple[int, int]:
    """(offset, skip) of a backend's preference list: slot j is (offset + j * skip) mod size.

    `size` is prime and 1 <= skip < size, so every backend's list visits every slot once."""
    data = key.encode()
    offset = _hash64(data, b"lbctl-mg-offset") % size
    skip = _hash64(data, b"lbctl-mg-skip") % (size - 1) + 1
    return offset, skip


def populate(keys: Sequence[str], size: int) -> list[int]:
    """The lookup table: slot -> index into `keys`. Empty list when there are no keys.

    The paper's population loop: backends take turns, each claiming the next still-free slot
    of its own preference list, until all `size` slots are owned."""
    n = len(keys)
    if n == 0:
        return []
    if n > size:
        raise ValueError(f"{n} backends do not fit a table of {size} slots")
    offsets: list[int] = []
    skips: list[int] = []
    for key in keys:
        offset, skip = permutation(key, size)
        offsets.append(offset)
        skips.append(skip)
    table = [-1] * size
    filled = 0
    while True:
        for i in range(n):
            slot = offsets[i]
            skip = skips[i]
            while table[slot] >= 0:
                slot += skip
                if slot >= size:
                    slot -= size
            table[slot] = i
            nxt = slot + skip
            offsets[i] = nxt - size if nxt >= size else nxt
            filled += 1
            if filled == size:
                return table


class MaglevTable:
    """An immutable lookup table over `keys` (backend endpoints). Keys are sorted first, so
    the table depends only on the set of keys, never on the order a caller listed them in."""

    __slots__ = ("keys", "size", "table")

    def __init__(self, keys: Sequence[str], size: int | None = None) -> None:
        self.keys: tuple[str, ...] = tuple(sorted(keys))
        self.size: int = size if size is not None else table_size(len(self.keys))
        self.table: list[int] = populate(self.keys, self.size)

    def __len__(self) -> int:
        return len(self.keys)

    def slot(self, client_key: str) -> int:
        """The table slot a client key hashes to."""
        return client_hash(client_key) % self.size

    def lookup(self, client_key: str) -> str | None:
        """The backend key owning the client's slot; None when the table is empty."""
        if not self.table:
            return None
        return self.keys[self.table[self.slot(client_key)]]

    def lookup_excluding(self, client_key: str, exclude: str) -> str | None:
        """The owner of the client's slot, or of the next slot not owned by `exclude` (the
        fallback when the chosen backend just refused a connection)."""
        if not self.table:
            return None
        start = self.slot(client_key)
        for step in range(self.size):
            key = self.keys[self.table[(start + step) % self.size]]
            if key != exclude:
                return key
        return None

    def shares(self) -> dict[str, int]:
        """Slots owned per backend key (for tests and metrics)."""
        counts = dict.fromkeys(self.keys, 0)
        for index in self.table:
            counts[self.keys[index]] += 1
        return counts
