"""Key handling shared by the TAS and fog nodes: encrypted keystores, node
identities (Ethereum account + X25519), sealed key delivery and request signing.

A layer: it never imports the roles (tas, node, audit, cli).
"""

from fogfed.keys.identity import NodeIdentity
from fogfed.keys.keystore import (
    KdfParams,
    MalformedKeystore,
    PassphraseUnavailable,
    WrongPassphrase,
    load_keystore,
    passphrase_from_env_or_prompt,
    save_keystore,
)
from fogfed.keys.seal import SealError, open_sealed, seal

__all__ = [
    "KdfParams", "MalformedKeystore", "NodeIdentity", "PassphraseUnavailable", "SealError",
    "WrongPassphrase", "load_keystore", "open_sealed", "passphrase_from_env_or_prompt",
    "save_keystore", "seal",
]
