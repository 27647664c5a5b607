"""Deterministic test data that is streamed, never held whole in memory."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest


class PrngStream:
    """``size`` bytes from a seeded PRNG, produced as they are read."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.left, self._rng, self._buf = size, random.Random(seed), bytearray()

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        while len(self._buf) < n:  # fixed-size draws, so the bytes do not depend on read sizes
            self._buf += self._rng.randbytes(65_536)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self.left -= n
        return out


def prng_bytes(size: int, seed: int = 0) -> bytes:
    return PrngStream(size, seed).read()


def assert_stream_equals(pieces: Iterable[bytes], size: int, seed: int = 0) -> None:
    """Compare streamed pieces against the PRNG stream without joining either."""
    expected = PrngStream(size, seed)
    total = 0
    for piece in pieces:
        assert piece == expected.read(len(piece)), f"content differs within bytes {total}..{total + len(piece)}"
        total += len(piece)
    assert total == size


CHUNK = 262_144
SIZES = [0, 1, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 12_345]
# more than 174 chunks, so the balanced DAG gets a second level of internal nodes
TREE_SIZE = 176 * CHUNK + 4321

sizes = pytest.mark.parametrize("size", SIZES, ids=[f"{s}B" for s in SIZES])
