"""CP-ABE engine: FABEO (default), FAME and BSW07 on BLS12-381, with a safe high-level API.

    from fogfed import abe
    pk, msk = abe.setup()                                   # scheme="fabeo" (default), "fame" or "bsw07"
    sk = abe.keygen(pk, msk, ["loc:riyadh", "svc:health"])
    ct = abe.encrypt(pk, "loc:riyadh and svc:health", file_key)
    file_key = abe.decrypt(pk, sk, ct)                      # PolicyNotSatisfied / DecryptionError

Low level, for research: ``fogfed.abe.fabeo.FABEO(group)``, ``fogfed.abe.fame.FAME(group)``,
``fogfed.abe.bsw07.BSW07(group)`` with ``fogfed.abe.group.group``.
See docs/abe.md for the policy grammar, formats and security notes.
"""

from fogfed.abe.api import DEFAULT_SCHEME, MAX_PAYLOAD, decrypt, encrypt, kem_decrypt, kem_encrypt, keygen, setup
from fogfed.abe.errors import (
    DecryptionError,
    KeyMismatchError,
    MalformedError,
    PolicyNotSatisfied,
    PolicySyntaxError,
    RepeatedAttributeError,
)
from fogfed.abe.group import PairingGroup, group
from fogfed.abe.keys import Ciphertext, KemCiphertext, MasterKey, PublicKey, SecretKey
from fogfed.abe.policy import Policy, normalise_attributes, parse_policy

__all__ = [
    "DEFAULT_SCHEME",
    "MAX_PAYLOAD",
    "Ciphertext",
    "DecryptionError",
    "KemCiphertext",
    "KeyMismatchError",
    "MalformedError",
    "MasterKey",
    "PairingGroup",
    "Policy",
    "PolicyNotSatisfied",
    "PolicySyntaxError",
    "PublicKey",
    "RepeatedAttributeError",
    "SecretKey",
    "decrypt",
    "encrypt",
    "group",
    "kem_decrypt",
    "kem_encrypt",
    "keygen",
    "normalise_attributes",
    "parse_policy",
    "setup",
]
