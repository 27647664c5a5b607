"""The key bundle of a member-tree refresh (one transaction commits to it; every member finds its entry).

Binary, version 1: ``FFB1`` | chain id (8) | contract (20) | federation (4) |
epoch (4) | generation (4) | count (4), then per member in leaf order:
address (20) | length (2) | sealed box (the same box as a ``deliverKey``, bound
to chain, contract, node, federation and the refresh's epoch). The content
store names it by its CID; ``bumpEpoch`` puts that CID's digest on chain, so a
member checks the bundle it reads against the chain. The same format serves
batch enrollment (many sealed keys, one reference).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import to_canonical_address, to_checksum_address

from fogfed.errors import InputError

MAGIC = b"FFB1"
_HEAD = 4 + 8 + 20 + 4 + 4 + 4 + 4


@dataclass(frozen=True)
class Bundle:
    """The sealed keys of one refresh, in leaf order."""

    chain_id: int
    contract: str
    federation_id: int
    epoch: int
    generation: int
    entries: tuple[tuple[str, bytes], ...]  # (node, sealed box), leaf i = entries[i]

    def to_bytes(self) -> bytes:
        """The stored form."""
        out = [MAGIC, self.chain_id.to_bytes(8, "big"), to_canonical_address(self.contract),
               self.federation_id.to_bytes(4, "big"), self.epoch.to_bytes(4, "big"),
               self.generation.to_bytes(4, "big"), len(self.entries).to_bytes(4, "big")]
        for node, sealed in self.entries:
            if not 0 < len(sealed) < 1 << 16:
                raise InputError(f"sealed key for {node} has a bad length {len(sealed)}")
            out += [to_canonical_address(node), len(sealed).to_bytes(2, "big"), sealed]
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Bundle":
        """Parse a bundle; InputError naming what is malformed."""
        if len(data) < _HEAD or data[:4] != MAGIC:
            raise InputError("not a fogfed key bundle (version 1)")
        count = int.from_bytes(data[44:48], "big")
        entries, at = [], _HEAD
        for i in range(count):
            if at + 22 > len(data):
                raise InputError(f"key bundle is truncated at entry {i}")
            node = to_checksum_address(data[at:at + 20])
            size = int.from_bytes(data[at + 20:at + 22], "big")
            if at + 22 + size > len(data):
                raise InputError(f"key bundle is truncated at entry {i}")
            entries.append((node, bytes(data[at + 22:at + 22 + size])))
            at += 22 + size
        if at != len(data):
            raise InputError("key bundle has trailing bytes")
        return cls(int.from_bytes(data[4:12], "big"), to_checksum_address(data[12:32]),
                   int.from_bytes(data[32:36], "big"), int.from_bytes(data[36:40], "big"),
                   int.from_bytes(data[40:44], "big"), tuple(entries))

    def entry(self, node: str) -> tuple[int, bytes] | None:
        """(leaf, sealed box) of ``node``, or None when the bundle has none for it."""
        for leaf, (who, sealed) in enumerate(self.entries):
            if who == node:
                return leaf, sealed
        return None
