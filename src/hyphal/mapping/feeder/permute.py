"""A keyed pseudo-random permutation of ``range(n)`` for any n: a balanced Feistel network on the
smallest even bit width that holds n, with cycle-walking back into range (the format-preserving
construction; ZMap uses a cyclic group, yarrp a block cipher, for the same job).

Index i maps to ``perm[i]`` in O(1) memory: a /8 (or 2^80 IPv6 hosts) is never materialised.
The round function is keyed BLAKE2b, so the order is unpredictable without the key and the same
on every feeder instance that shares it.
"""

from __future__ import annotations

import hashlib

ROUNDS = 4


class Permutation:
    __slots__ = ("_half", "_key", "_mask", "n")

    def __init__(self, n: int, key: bytes) -> None:
        if n < 1:
            raise ValueError("a permutation needs n >= 1")
        self.n = n
        bits = max(2, (n - 1).bit_length())
        self._half = (bits + 1) // 2
        self._mask = (1 << self._half) - 1
        self._key = hashlib.blake2b(key, digest_size=32).digest()

    def _round(self, r: int, value: int) -> int:
        data = r.to_bytes(1, "big") + value.to_bytes(16, "big")
        digest = hashlib.blake2b(data, key=self._key, digest_size=16).digest()
        return int.from_bytes(digest, "big") & self._mask

    def _encrypt(self, x: int) -> int:
        left, right = x >> self._half, x & self._mask
        for r in range(ROUNDS):
            left, right = right, left ^ self._round(r, right)
        return (left << self._half) | right

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(i)
        if self.n == 1:
            return 0
        x = self._encrypt(i)
        while x >= self.n:  # cycle-walking: the domain is < 4n, so ~2 steps on average
            x = self._encrypt(x)
        return x

    def __len__(self) -> int:
        return self.n
