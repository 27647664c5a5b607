"""A node's (or the TAS's) identity: an Ethereum account and an X25519 key pair.

The account signs transactions and peer requests; the X25519 public key goes
on chain (bytes32) so the TAS can seal the node's ABE secret key to it.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, PrivateFormat, NoEncryption
from eth_account import Account
from eth_account.signers.local import LocalAccount

from fogfed.keys.keystore import KdfParams, MalformedKeystore, load_keystore, save_keystore

KIND = "node-identity"


def x25519_public_bytes(private: X25519PrivateKey) -> bytes:
    """The raw 32-byte public key of an X25519 private key."""
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class NodeIdentity:
    """An Ethereum account plus an X25519 key pair, kept together in one keystore."""

    def __init__(self, account: LocalAccount, enc_private: X25519PrivateKey) -> None:
        self.account = account
        self.enc_private = enc_private

    @classmethod
    def generate(cls) -> "NodeIdentity":
        """A fresh identity from the OS random generator."""
        return cls(Account.from_key(os.urandom(32)), X25519PrivateKey.generate())

    @property
    def address(self) -> str:
        """The account's checksummed Ethereum address."""
        return self.account.address

    @property
    def enc_public_key(self) -> bytes:
        """The 32-byte X25519 public key others seal to (stored on chain as bytes32)."""
        return x25519_public_bytes(self.enc_private)

    def save(self, path: str | os.PathLike, passphrase: str, *, overwrite: bool = False,
             kdf: KdfParams | None = None) -> None:
        """Write both private keys to an encrypted keystore (see fogfed.keys.keystore)."""
        secrets = {
            "eth_private_key": bytes(self.account.key),
            "x25519_private_key": self.enc_private.private_bytes(Encoding.Raw, PrivateFormat.Raw,
                                                                 NoEncryption()),
        }
        save_keystore(path, secrets, passphrase, kind=KIND, overwrite=overwrite, kdf=kdf)

    @classmethod
    def load(cls, path: str | os.PathLike, passphrase: str) -> "NodeIdentity":
        """Read an identity keystore; WrongPassphrase / MalformedKeystore on failure."""
        secrets = load_keystore(path, passphrase, kind=KIND)
        eth, x = secrets.get("eth_private_key"), secrets.get("x25519_private_key")
        if eth is None or x is None or len(eth) != 32 or len(x) != 32:
            raise MalformedKeystore(f"keystore {path} lacks a 32-byte Ethereum or X25519 key")
        try:
            account = Account.from_key(eth)
        except ValueError:
            raise MalformedKeystore(f"keystore {path} holds an invalid Ethereum key (out of range)") from None
        return cls(account, X25519PrivateKey.from_private_bytes(x))

    def __repr__(self) -> str:
        # Never print key material, even in tracebacks.
        return f"NodeIdentity(address={self.address}, enc_public_key={self.enc_public_key.hex()})"
