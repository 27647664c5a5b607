"""Peer messages under on-chain keys: to one node (its X25519 key from FogFed) or to a whole federation (CP-ABE).

A message is a versioned blob::

    "FFMSG" | version 1 | kind (1 node, 2 federation) | sender(20) | chain id(8) | contract(20)
    | nonce(16) | timestamp(8) | target
    node:       recipient(20) | recipient key(32) | sealed box (signed by the sender's account)
    federation: federation id(4) | epoch(4) | CP-ABE ciphertext | signature(65)

Everything before the payload is bound: for a node it is the sealed box's AAD
(the box's signature covers box and AAD); for a federation it is the ABE
ciphertext's AAD and the signature covers header and ciphertext. The receiver
checks the sender is an active member on chain *now* (a removed node cannot
talk to its former peers), the key the message was sealed to is the one the
chain shows for the receiver, the timestamp is fresh, and the nonce was not
seen before (SQLite store in the node home).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from eth_utils import to_canonical_address, to_checksum_address

from fogfed import abe
from fogfed.errors import FogfedError, InputError
from fogfed.keys.seal import SealError, open_sealed, seal
from fogfed.keys.signing import SIGNATURE_BYTES, recover_signer, sign
from fogfed.node.client import FogNode
from fogfed.protocol.attributes import federation_attribute, scoped_policy

MAGIC, VERSION = b"FFMSG", 1
TO_NODE, TO_FEDERATION = 1, 2
MAX_AGE = 3600
CLOCK_SKEW = 300
MAX_MESSAGE = 1 << 20
MAX_BLOB = MAX_MESSAGE + 64 * 1024
SEEN_DB = "messages.sqlite"
_HEAD = len(MAGIC) + 2 + 20 + 8 + 20 + 16 + 8  # up to the target


class MessageError(FogfedError):
    """A message could not be sent or was refused on receipt."""


class MalformedMessage(MessageError):
    """The bytes are not a fogfed message at all (bad input: exit code 2)."""

    exit_code = 2


class RecipientKeyChanged(MessageError):
    """The chain shows another key for the recipient than the one the sender pinned."""


class StaleRecipientKey(MessageError):
    """The message was sealed to a key the recipient no longer holds on chain (it rotated)."""


class MessageReplayed(MessageError):
    """This message (its nonce) was received before."""


@dataclass(frozen=True)
class Message:
    """A verified, opened message."""

    sender: str
    kind: str  # "node" or "federation"
    federation_id: int | None
    timestamp: int
    body: bytes


def send_to_node(node: FogNode, recipient: str, body: bytes, *, expected_key: bytes | None = None,
                 now: float | None = None) -> bytes:
    """Seal ``body`` to ``recipient``'s communication key published on chain; returns the message blob.

    ``expected_key`` pins the key from an earlier exchange: RecipientKeyChanged if the chain now
    shows another one."""
    _check_body(body)
    member = node.fed.member(recipient)
    if member.federation_id == 0 or not any(member.encryption_key):
        raise MessageError(f"{member.address} has no key on chain (never enrolled)", "check the recipient address")
    if not member.active:
        raise MessageError(f"{member.address} is not an active member (removed)", "it can no longer receive messages")
    if expected_key is not None and bytes(expected_key) != member.encryption_key:
        raise RecipientKeyChanged(f"{member.address} now has key {member.encryption_key.hex()[:16]}... on chain, "
                                  f"not the pinned {bytes(expected_key).hex()[:16]}...",
                                  "the recipient re-keyed (new enrollment); confirm its new key out of band")
    head = _header(node, TO_NODE, now) + to_canonical_address(member.address) + member.encryption_key
    return head + seal(member.encryption_key, body, aad=head, sender=node.account)


def send_to_federation(node: FogNode, federation_id: int, body: bytes, *, now: float | None = None) -> bytes:
    """Encrypt ``body`` for every current member of a federation (``ff:<fid>`` and its cover), signed."""
    _check_body(body)
    tree = node.member_tree(federation_id)
    epoch = tree.epoch
    head = _header(node, TO_FEDERATION, now) + federation_id.to_bytes(4, "big") + epoch.to_bytes(4, "big")
    ct = abe.encrypt(node.public_key(federation_id), scoped_policy(federation_attribute(federation_id), {federation_id: tree.clause()}), body, aad=head)
    return head + ct + sign(node.account, hashlib.sha256(head + ct).digest())


def receive(node: FogNode, blob: bytes, *, now: float | None = None) -> Message:
    """Verify and open a message for ``node``; MessageError (or a subclass) says why it is refused."""
    if not isinstance(blob, (bytes, bytearray)) or not _HEAD + 24 < len(blob) <= MAX_BLOB:
        raise MalformedMessage("not a fogfed message (wrong size)")
    blob = bytes(blob)
    if blob[:5] != MAGIC or blob[5] != VERSION or blob[6] not in (TO_NODE, TO_FEDERATION):
        raise MalformedMessage("not a fogfed message of a supported version")
    kind, sender = blob[6], to_checksum_address(blob[7:27])
    chain_id, contract = int.from_bytes(blob[27:35], "big"), to_checksum_address(blob[35:55])
    nonce, ts = blob[55:71], int.from_bytes(blob[71:79], "big")
    if (chain_id, contract) != (node.chain_id, node.fed.address):
        raise MessageError(f"message is for chain {chain_id} contract {contract}, not this deployment")
    t = time.time() if now is None else now
    if ts > t + CLOCK_SKEW or t - ts > MAX_AGE:
        raise MessageError(f"message timestamp {ts} is not within {MAX_AGE} s of now ({int(t)})",
                           "ask the sender to send it again")
    if not node.fed.member(sender).active:
        raise MessageError(f"sender {sender} is not an active member on chain", "ignore the message")
    body, fid = (_open_for_node if kind == TO_NODE else _open_for_federation)(node, blob, sender)
    _remember(node, nonce, sender, ts, t)
    return Message(sender, "node" if kind == TO_NODE else "federation", fid, ts, body)


def _open_for_node(node: FogNode, blob: bytes, sender: str) -> tuple[bytes, None]:
    recipient, key = to_checksum_address(blob[_HEAD:_HEAD + 20]), blob[_HEAD + 20:_HEAD + 52]
    if recipient != node.address:
        raise MessageError(f"message is for {recipient}, not this node {node.address}")
    if key != node.fed.member(node.address).encryption_key or key != node.identity.enc_public_key:
        raise StaleRecipientKey(f"message was sealed to key {key.hex()[:16]}..., which is not this node's key on "
                                "chain (it was rotated)", "ask the sender to send it again to the current key")
    try:
        return open_sealed(node.identity, blob[_HEAD + 52:], aad=blob[:_HEAD + 52], expected_sender=sender), None
    except SealError as exc:
        raise MessageError(f"message from {sender} refused: {exc.message}") from None


def _open_for_federation(node: FogNode, blob: bytes, sender: str) -> tuple[bytes, int]:
    head_end = _HEAD + 8
    head, ct, signature = blob[:head_end], blob[head_end:-SIGNATURE_BYTES], blob[-SIGNATURE_BYTES:]
    if recover_signer(hashlib.sha256(head + ct).digest(), signature) != sender:
        raise MessageError(f"federation message is not signed by its sender {sender} (tampered or forged)")
    fid = int.from_bytes(blob[_HEAD:_HEAD + 4], "big")
    pk = node.public_key(fid)
    node.refresh_keys()
    for sk in node.keyring.candidates():
        try:
            return abe.decrypt(pk, sk, ct, aad=head), fid
        except (abe.PolicyNotSatisfied, abe.DecryptionError):
            continue
        except InputError as exc:
            raise MalformedMessage(f"federation message is malformed: {exc.message}") from None
    raise MessageError(f"none of this node's keys opens the message for federation {fid}",
                       "it is for the federation's current members only")


def _header(node: FogNode, kind: int, now: float | None) -> bytes:
    ts = int(time.time() if now is None else now)
    return (MAGIC + bytes([VERSION, kind]) + to_canonical_address(node.address) + node.chain_id.to_bytes(8, "big")
            + to_canonical_address(node.fed.address) + os.urandom(16) + ts.to_bytes(8, "big"))


def _check_body(body: object) -> None:
    if not isinstance(body, (bytes, bytearray)) or len(body) > MAX_MESSAGE:
        raise InputError(f"a message must be bytes of at most {MAX_MESSAGE} bytes")


def _remember(node: FogNode, nonce: bytes, sender: str, ts: int, now: float) -> None:
    """Record the nonce; MessageReplayed if it was seen. Entries older than MAX_AGE are dropped:
    such messages are refused as stale anyway."""
    db = sqlite3.connect(Path(node.home) / SEEN_DB, timeout=10)
    try:
        with db:
            db.execute("CREATE TABLE IF NOT EXISTS seen (nonce BLOB PRIMARY KEY, sender TEXT, ts INTEGER)")
            db.execute("DELETE FROM seen WHERE ts < ?", (int(now) - MAX_AGE - CLOCK_SKEW,))
            try:
                db.execute("INSERT INTO seen VALUES (?, ?, ?)", (nonce + to_canonical_address(sender), sender, ts))
            except sqlite3.IntegrityError:
                raise MessageReplayed(f"message from {sender} was already received (replay)") from None
    finally:
        db.close()
