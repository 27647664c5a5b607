"""Sealed delivery of a node's CP-ABE secret key (paper Algorithm 3, FNSK) through the chain.

The TAS seals the key bytes to the node's X25519 key and signs the box with
its Ethereum account; the associated data binds the box to one chain,
contract, node, federation and epoch, so a box cannot be replayed to another
node, deployment or epoch. The node checks the signer is a TAS operator on
chain and that the key carries exactly the attributes expected.
"""

from __future__ import annotations

from collections.abc import Callable

from eth_account.signers.local import LocalAccount
from eth_utils import is_hex_address, to_canonical_address, to_checksum_address

from fogfed import abe
from fogfed.chain.connection import checksum
from fogfed.errors import InputError
from fogfed.keys.identity import NodeIdentity
from fogfed.keys.seal import FLAG_SIGNED, SealError, open_sealed, seal
from fogfed.protocol.attributes import federation_attribute

_DOMAIN = b"fogfed key delivery v1\x00"
MAX_SEALED_BYTES = 8192
# Byte offsets of the sender address in a signed sealed box (fogfed.keys.seal layout v1).
_SENDER = slice(66, 86)


class KeyDeliveryError(InputError):
    """A delivered key could not be opened or is not the key this node should hold."""


def key_aad(chain_id: int, contract: str, node: str, federation_id: int, epoch: int) -> bytes:
    """The associated data of one delivery: domain | chain id | contract | node | federation | epoch."""
    return (_DOMAIN + chain_id.to_bytes(8, "big") + to_canonical_address(contract)
            + to_canonical_address(node) + federation_id.to_bytes(4, "big") + epoch.to_bytes(4, "big"))


def seal_node_key(tas: LocalAccount, node_enc_pub: bytes, sk: abe.SecretKey, *, chain_id: int,
                  contract: str, node: str, federation_id: int, epoch: int) -> bytes:
    """The sealed box the TAS posts on chain for ``node``."""
    return seal(node_enc_pub, sk.to_bytes(), sender=tas,
                aad=key_aad(chain_id, contract, node, federation_id, epoch))


def open_node_key(identity: NodeIdentity, sealed: bytes, pk: abe.PublicKey, *, chain_id: int,
                  contract: str, federation_id: int, epoch: int,
                  is_operator: Callable[[str], bool]) -> abe.SecretKey:
    """Open a delivered key; checks the sender is a TAS operator and the key's system and attributes."""
    if not isinstance(sealed, (bytes, bytearray)) or not 0 < len(sealed) <= MAX_SEALED_BYTES:
        raise KeyDeliveryError("delivered key is empty or too large")
    sealed = bytes(sealed)
    if len(sealed) < _SENDER.stop or not sealed[1] & FLAG_SIGNED:
        raise KeyDeliveryError("delivered key is not signed by its sender", "ask the TAS to deliver it again")
    sender = to_checksum_address(sealed[_SENDER])
    if not is_operator(sender):
        raise KeyDeliveryError(f"delivered key was sealed by {sender}, which is not a TAS operator on chain",
                               "ignore it; only keys from the TAS are used")
    try:
        raw = open_sealed(identity, sealed, expected_sender=sender,
                          aad=key_aad(chain_id, contract, identity.address, federation_id, epoch))
        sk = abe.SecretKey.from_bytes(raw)
    except SealError as exc:
        raise KeyDeliveryError(f"delivered key for epoch {epoch} cannot be opened: {exc.message}",
                               "ask the TAS to deliver it again (tas sync)") from None
    except InputError as exc:
        raise KeyDeliveryError(f"delivered key for epoch {epoch} is malformed: {exc.message}") from None
    if sk.fingerprint != pk.fingerprint:
        raise KeyDeliveryError("delivered key belongs to another ABE system than the one on chain")
    have = set(sk.attributes)
    want = {federation_attribute(federation_id)}
    own_tree = f"ct:{federation_id}:"
    others = ({a for a in have if a.startswith("ff:")} - want
              | {a for a in have if a.startswith(("ct:", "ep:")) and not a.startswith(own_tree)})
    if not want <= have or others or not any(a.startswith(own_tree) for a in have):
        raise KeyDeliveryError(f"delivered key has attributes {sorted(have)}, expected "
                               f"{sorted(want)}, a path of its member tree and no other federation's")
    return sk


KEY_REFERENCE = b"FFK1"  # a delivery that names its sealed box in the content store instead of carrying it


def key_reference(digest: bytes) -> bytes:
    """The on-chain payload of a delivery whose sealed box (sha2-256 ``digest``) is in the content store.

    Calldata and log bytes are what a delivery costs (a 3.5 KB key: about
    180,000 gas inline); a 36-byte reference costs about 35,000. The box is
    sealed to the node, so storing it publicly reveals nothing.
    """
    if not isinstance(digest, (bytes, bytearray)) or len(digest) != 32:
        raise InputError("a key reference needs a 32-byte digest")
    return KEY_REFERENCE + bytes(digest)


def referenced_digest(payload: bytes) -> bytes | None:
    """The content-store digest a delivery payload names, or None for an inline sealed box."""
    if len(payload) == 36 and payload[:4] == KEY_REFERENCE:
        return bytes(payload[4:])
    return None


def check_address(address: object, what: str = "address") -> str:
    """A checksummed Ethereum address, or InputError (a mixed-case one must carry a valid checksum)."""
    if not isinstance(address, str) or not is_hex_address(address):
        raise InputError(f"{what} {address!r:.60} is not an Ethereum address")
    return checksum(address, what)
