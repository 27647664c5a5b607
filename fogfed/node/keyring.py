"""A node's CP-ABE secret keys, one per (federation, epoch), in an encrypted keystore.

Old epochs are kept: files uploaded before a re-key stay readable with the key
of their epoch. The keystore is rewritten (temp file + rename) on every new key.
"""

from __future__ import annotations

import re
from pathlib import Path

from fogfed import abe
from fogfed.keys.keystore import KdfParams, MalformedKeystore, load_keystore, save_keystore

KIND = "node-abe-keys"
_NAME = re.compile(r"ep-([1-9][0-9]{0,9})-(0|[1-9][0-9]{0,9})\Z")
_MARKER = "fogfed-keyring"  # a keystore needs one secret even before the first key arrives


class Keyring:
    """Secret keys by (federation id, epoch); saved under the node's passphrase."""

    def __init__(self, path: Path, passphrase: str, keys: dict[tuple[int, int], abe.SecretKey],
                 kdf: KdfParams | None = None) -> None:
        self.path, self._passphrase, self._kdf = Path(path), passphrase, kdf
        self._keys = dict(keys)

    @classmethod
    def create(cls, path: Path, passphrase: str, kdf: KdfParams | None = None) -> "Keyring":
        """An empty keyring written to ``path`` (refuses to overwrite)."""
        ring = cls(path, passphrase, {}, kdf)
        save_keystore(path, ring._secrets(), passphrase, kind=KIND, kdf=kdf)
        return ring

    @classmethod
    def load(cls, path: Path, passphrase: str, kdf: KdfParams | None = None) -> "Keyring":
        """Read a keyring; WrongPassphrase / MalformedKeystore on failure."""
        keys = {}
        for name, raw in load_keystore(path, passphrase, kind=KIND).items():
            if name == _MARKER:
                continue
            m = _NAME.match(name)
            if not m:
                raise MalformedKeystore(f"keyring {path} holds an unexpected entry {name!r}")
            try:
                keys[(int(m[1]), int(m[2]))] = abe.SecretKey.from_bytes(raw)
            except abe.MalformedError:
                raise MalformedKeystore(f"keyring {path}: key {name} is not a valid ABE secret key") from None
        return cls(path, passphrase, keys, kdf)

    def _secrets(self) -> dict[str, bytes]:
        out = {_MARKER: b"1"}
        out.update({f"ep-{f}-{e}": sk.to_bytes() for (f, e), sk in self._keys.items()})
        return out

    def add(self, federation_id: int, epoch: int, sk: abe.SecretKey) -> bool:
        """Store a key; False if that (federation, epoch) was already held."""
        if (federation_id, epoch) in self._keys:
            return False
        self._keys[(federation_id, epoch)] = sk
        save_keystore(self.path, self._secrets(), self._passphrase, kind=KIND, overwrite=True, kdf=self._kdf)
        return True

    def get(self, federation_id: int, epoch: int) -> abe.SecretKey | None:
        """The key for exactly that federation and epoch, or None."""
        return self._keys.get((federation_id, epoch))

    def latest_epoch(self, federation_id: int) -> int | None:
        """The newest epoch held for a federation, or None."""
        epochs = [e for (f, e) in self._keys if f == federation_id]
        return max(epochs) if epochs else None

    def candidates(self) -> list[abe.SecretKey]:
        """Every key, newest epoch first (the order to try them in)."""
        return [self._keys[k] for k in sorted(self._keys, key=lambda k: (-k[1], k[0]))]

    def held(self) -> list[tuple[int, int]]:
        """The (federation id, epoch) pairs this keyring holds a key for, sorted."""
        return sorted(self._keys)

    def __len__(self) -> int:
        return len(self._keys)
