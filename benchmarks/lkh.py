"""Logical key hierarchy (LKH, Wong-Gouda-Lam / Wallner et al.): the key-tree baseline for benchmarks/mobility.py.

A binary key tree held by the key server: each leaf is a member's individual
key, each inner node a key shared by the members below it, the root the group
key. A member holds the keys on its path (depth + 1). Join and leave replace
every key on the affected path; each new key is wrapped (AES-256-GCM, real)
under the current key of each non-empty child, and each wrap is one message
(multicast) of 12 + 32 + 16 bytes. On a join the newcomer's own leaf key is
given to it over the registration channel (not counted, as for fogfed).
Moving = leave one tree + join another. Only for comparison; fogfed does not use it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY = 32
WRAP_BYTES = 12 + KEY + 16  # nonce + wrapped key + tag


@dataclass
class Cost:
    """One rekey: wraps (= messages), bytes sent, keys generated."""

    wraps: int = 0
    bytes: int = 0
    keys: int = 0

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.wraps + other.wraps, self.bytes + other.bytes, self.keys + other.keys)


class LKHTree:
    """A complete binary key tree with ``2**depth`` leaf slots (heap layout, node 1 is the root)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.keys: dict[int, bytes] = {}  # only nodes with members below them
        self.members: dict[str, int] = {}  # member -> leaf index
        self._free = list(range(2 ** (depth + 1) - 1, 2**depth - 1, -1))

    @classmethod
    def with_members(cls, n: int) -> "LKHTree":
        """A tree with room for ``n`` + 1 members, filled with ``n`` (built directly: setup is not measured)."""
        tree = cls(max(1, n.bit_length()))  # 2**bit_length(n) > n: room for one more
        for i in range(n):
            leaf = tree._free.pop()
            tree.members[f"m{i}"] = leaf
            node = leaf
            while node >= 1:
                tree.keys.setdefault(node, os.urandom(KEY))
                node //= 2
        return tree

    def keys_per_member(self) -> int:
        return self.depth + 1

    def _rekey_path(self, leaf: int) -> Cost:
        cost = Cost()
        node = leaf // 2
        while node >= 1:
            if not any(c in self.keys for c in (2 * node, 2 * node + 1)):
                self.keys.pop(node, None)  # empty subtree: no key to keep
            else:
                new = os.urandom(KEY)
                cost.keys += 1
                for child in (2 * node, 2 * node + 1):
                    kek = self.keys.get(child)
                    if kek is not None:
                        nonce = os.urandom(12)
                        AESGCM(kek).encrypt(nonce, new, node.to_bytes(4, "big"))
                        cost.wraps += 1
                        cost.bytes += WRAP_BYTES
                self.keys[node] = new
            node //= 2
        return cost

    def join(self, member: str) -> Cost:
        """Add ``member`` at a free leaf and rekey its path."""
        if not self._free:
            raise ValueError("tree full")
        leaf = self._free.pop()
        self.members[member] = leaf
        self.keys[leaf] = os.urandom(KEY)
        return self._rekey_path(leaf) + Cost(keys=1)

    def leave(self, member: str) -> Cost:
        """Remove ``member`` and rekey its path (its keys are no longer used as wrapping keys)."""
        leaf = self.members.pop(member)
        self.keys.pop(leaf, None)
        self._free.append(leaf)
        return self._rekey_path(leaf)


def move(src: LKHTree, dst: LKHTree, member: str) -> Cost:
    """Moving between two groups in LKH: leave one tree, join the other."""
    return src.leave(member) + dst.join(member)
